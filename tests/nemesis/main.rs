//! The nemesis: a seeded randomized fault test that looks for replication
//! bugs by itself. One seed stands for a [`Schedule`] of faults on a cluster
//! of three controllers and four brokers: broker kills and restarts, broker
//! pauses (a zombie leader that keeps its tasks and its clients), kills of
//! the active controller, links cut between brokers and between a broker
//! and the controllers, and admin changes meanwhile (reassignments to random
//! replica sets, preferred-leader elections, topics created and deleted),
//! with snapshots every few kilobytes of metadata. Throughout, an acks=all
//! and an acks=1 producer write every partition of a topic with
//! replication factor 3 and `min.insync.replicas=2`.
//!
//! After healing, [`checker`] asserts that every ISR is whole again, that no
//! broker leads what the metadata does not give it, that the replicas'
//! logs are byte-identical below the high watermark, and that every acks=all
//! acknowledgement is read back at its offset, in order. On failure the
//! seed and the schedule are printed; `scripts/soak --seed S --faults N`
//! replays it (through [`soak`], ignored in the normal suite).

#[path = "../common/mod.rs"]
mod common;

mod checker;
mod schedule;
mod workload;

use std::time::Duration;

use kraft::kafka_admin::{self, replication};
use kraft_testkit::{wait_for, TestCluster};

use schedule::{Fault, Schedule, BROKERS, CONTROLLERS, PARTITIONS, TOPIC};
use workload::Workload;

/// Prints the schedule if the test panics, whatever panicked.
struct PrintOnPanic(String);

impl Drop for PrintOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("nemesis FAILED; {}", self.0);
        }
    }
}

/// Runs the faults of `seed`, heals, and checks. Panics with the seed on
/// any violation.
async fn run(seed: u64, faults: usize) {
    let schedule = Schedule::generate(seed, faults);
    eprintln!("nemesis: KRAFT_NEMESIS_SEED={seed} KRAFT_NEMESIS_FAULTS={faults}");
    let _print = PrintOnPanic(format!(
        "replay with scripts/soak --seed {seed} --faults {faults}\n{schedule}"
    ));
    let fail = |what: String| -> ! { panic!("nemesis seed {seed}: {what}") };

    let mut cluster = TestCluster::builder(CONTROLLERS.len())
        .brokers(BROKERS.len())
        .prop("replica.lag.time.max.ms", 2000)
        .prop("broker.session.timeout.ms", 3000)
        .prop("broker.heartbeat.interval.ms", 300)
        .prop("metadata.log.max.record.bytes.between.snapshots", 4096)
        .start()
        .await
        .expect("cluster starts");
    let bootstrap = cluster.bootstrap_servers();
    common::create_topic(
        &bootstrap,
        TOPIC,
        PARTITIONS,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await;
    let workload = Workload::start(&bootstrap);
    let acks = workload.acks.clone();
    wait_for("a first write to every partition", || async {
        (0..PARTITIONS).all(|p| acks.all_on(p) > 0).then_some(())
    })
    .await
    .unwrap_or_else(|e| fail(e.to_string()));

    let mut nemesis = Nemesis {
        cluster: &mut cluster,
        controllers_down: Vec::new(),
    };
    for (i, step) in schedule.steps.iter().enumerate() {
        match nemesis.apply(&step.fault).await {
            Ok(note) => eprintln!("nemesis step {}: {}: {note}", i + 1, step.fault),
            Err(e) => fail(format!("step {} ({}): {e:#}", i + 1, step.fault)),
        }
        tokio::time::sleep(Duration::from_millis(step.then_ms)).await;
    }

    eprintln!("nemesis: healing, restarting every node");
    nemesis
        .heal_everything()
        .await
        .unwrap_or_else(|e| fail(format!("{e:#}")));
    let before: Vec<usize> = (0..PARTITIONS).map(|p| acks.all_on(p)).collect();
    wait_for(
        "acks=all writes to every partition again after healing",
        || async {
            (0..PARTITIONS)
                .all(|p| acks.all_on(p) > before[p as usize])
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| fail(e.to_string()));
    let attempted = workload.stop().await;

    // Every check runs, so one report shows all that is wrong.
    let mut violations = Vec::new();
    let mut note = |checked: Result<(), String>| violations.extend(checked.err());
    note(checker::isr_whole(&cluster).await);
    note(checker::leaders_match(&cluster).await);
    let watermarks = match checker::replicas_identical(&cluster).await {
        Ok((watermarks, differ)) => {
            violations.extend(differ);
            watermarks
        }
        Err(e) => fail(format!("{violations:?} and {e}")),
    };
    let tally = checker::acks_read_back(&bootstrap, &watermarks, &acks).await;
    eprintln!(
        "nemesis: seed {seed}, {faults} faults, {attempted} writes attempted, high watermarks \
         {watermarks:?}; acks=all {} acknowledged, {} lost; acks=1 {} acknowledged, {} lost",
        tally.all_acked, tally.all_lost, tally.one_acked, tally.one_lost
    );
    violations.extend(tally.problems);
    if tally.more_problems > 0 {
        violations.push(format!("... and {} more", tally.more_problems));
    }
    if !violations.is_empty() {
        fail(violations.join("\n"));
    }
    cluster.shutdown().await;
}

/// Applies faults to the cluster and remembers what it took down.
struct Nemesis<'a> {
    cluster: &'a mut TestCluster,
    controllers_down: Vec<i32>,
}

/// How long an admin request may take before the nemesis moves on (it may
/// well not be answered while links are cut).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

impl Nemesis<'_> {
    /// Applies one fault; returns a note for the log. Admin requests that
    /// fail are noted, not errors: faults make them fail.
    async fn apply(&mut self, fault: &Fault) -> anyhow::Result<String> {
        let cluster = &mut *self.cluster;
        Ok(match fault {
            Fault::KillBroker(b) => {
                cluster.kill(*b).await;
                "killed".into()
            }
            Fault::RestartBroker(b) => {
                cluster.restart(*b).await?;
                "restarted".into()
            }
            Fault::PauseBroker(b) => {
                cluster.pause(*b);
                "paused".into()
            }
            Fault::ResumeBroker(b) => {
                cluster.resume(*b);
                "resumed".into()
            }
            Fault::KillActiveController => {
                let found = tokio::time::timeout(ADMIN_TIMEOUT, async {
                    wait_for("an active controller", || cluster.active_controller()).await
                })
                .await;
                match found {
                    Ok(Ok(id)) => {
                        cluster.kill(id).await;
                        self.controllers_down.push(id);
                        format!("killed controller {id}")
                    }
                    _ => "no active controller to kill".into(),
                }
            }
            Fault::RestartControllers => {
                for id in self.controllers_down.drain(..) {
                    cluster.restart(id).await?;
                }
                "restarted".into()
            }
            Fault::CutBrokers(a, b) => {
                cluster.faults().cut(*a, *b);
                "cut".into()
            }
            Fault::CutFromControllers(b) => {
                cluster.partition(&[*b], &CONTROLLERS);
                "cut".into()
            }
            Fault::Heal => {
                cluster.heal();
                "healed".into()
            }
            admin => self.admin(admin).await,
        })
    }

    /// Sends an admin request through a broker that runs and is not paused.
    async fn admin(&self, fault: &Fault) -> String {
        let cluster = &*self.cluster;
        let Some(broker) = BROKERS
            .into_iter()
            .find(|b| cluster.broker(*b).is_some() && !cluster.faults().is_paused(*b))
        else {
            return "no broker to ask".into();
        };
        let request = async {
            let mut client = kafka_admin::connect(cluster.broker_addr(broker)).await?;
            match fault {
                Fault::Reassign {
                    partition,
                    replicas,
                } => {
                    let plan = replication::ReassignmentPlan {
                        topic: TOPIC.to_string(),
                        partition: *partition,
                        replicas: Some(replicas.clone()),
                    };
                    let outcome = replication::alter_reassignments(&mut client, &[plan]).await?;
                    Ok(format!("{outcome:?}"))
                }
                Fault::PreferredElection => {
                    let outcomes = replication::elect_leaders(
                        &mut client,
                        replication::ElectionType::Preferred,
                        None,
                    )
                    .await?;
                    Ok(format!("{} partitions answered", outcomes.len()))
                }
                Fault::CreateTopic(name) => {
                    let configs = [("min.insync.replicas".to_string(), "2".to_string())];
                    kafka_admin::create_topic(&mut client, name, 2, 3, &configs).await
                }
                Fault::DeleteTopic(name) => kafka_admin::delete_topic(&mut client, name)
                    .await
                    .map(|()| "deleted".to_string()),
                other => Ok(format!("{other} is not an admin request")),
            }
        };
        match tokio::time::timeout(ADMIN_TIMEOUT, request).await {
            Ok(Ok(note)) => format!("via broker {broker}: {note}"),
            Ok(Err(e)) => format!("via broker {broker} failed: {e:#}"),
            Err(_) => format!("via broker {broker}: no answer in {ADMIN_TIMEOUT:?}"),
        }
    }

    /// Heals every link and starts every node that is down.
    async fn heal_everything(&mut self) -> anyhow::Result<()> {
        self.cluster.heal();
        for id in self.controllers_down.drain(..) {
            self.cluster.restart(id).await?;
        }
        for b in BROKERS {
            if self.cluster.broker(b).is_none() {
                self.cluster.restart(b).await?;
            }
        }
        self.cluster.wait_for_brokers().await
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The slice CI runs: a fixed seed and a few dozen faults (about half a
/// minute). `scripts/soak` runs long ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nemesis_fixed_seed() {
    run(1, 30).await;
}

/// What `scripts/soak` runs: `KRAFT_NEMESIS_SEED` (else the clock) and
/// `KRAFT_NEMESIS_FAULTS` (else 100) faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long soak; run by scripts/soak"]
async fn soak() {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    run(
        env_or("KRAFT_NEMESIS_SEED", clock),
        env_or("KRAFT_NEMESIS_FAULTS", 100),
    )
    .await;
}
