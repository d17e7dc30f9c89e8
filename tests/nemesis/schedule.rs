//! The nemesis' schedule: the list of faults one seed stands for, drawn
//! before the run so it can be printed, replayed and read on failure.
//!
//! In: a seed and a number of faults. Out: a [`Schedule`], each [`Step`] a
//! fault and how long to let the cluster run afterwards. The generator
//! keeps a model of what is down so every step makes sense when it runs: at
//! most one broker down or paused and at most one controller down at a
//! time (three of four brokers and two of three controllers stay), so the
//! cluster can always make progress once links heal.

use std::fmt;

use kraft_testkit::SplitMix;

/// Controller ids (a quorum of three).
pub const CONTROLLERS: [i32; 3] = [1, 2, 3];
/// Broker ids.
pub const BROKERS: [i32; 4] = [4, 5, 6, 7];
/// The topic the producers write: replication factor 3, min ISR 2.
pub const TOPIC: &str = "nemesis";
pub const PARTITIONS: i32 = 3;

/// One fault or admin change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    KillBroker(i32),
    RestartBroker(i32),
    PauseBroker(i32),
    ResumeBroker(i32),
    KillActiveController,
    RestartControllers,
    CutBrokers(i32, i32),
    CutFromControllers(i32),
    /// Heals every cut link and resumes a paused broker.
    Heal,
    Reassign {
        partition: i32,
        replicas: Vec<i32>,
    },
    PreferredElection,
    CreateTopic(String),
    DeleteTopic(String),
}

/// A fault, then `then_ms` of running before the next.
#[derive(Clone, Debug)]
pub struct Step {
    pub fault: Fault,
    pub then_ms: u64,
}

#[derive(Clone, Debug)]
pub struct Schedule {
    pub seed: u64,
    pub steps: Vec<Step>,
}

/// What the generator believes is out while drawing.
#[derive(Default)]
struct Model {
    broker_down: Option<i32>,
    broker_paused: Option<i32>,
    controller_down: bool,
    scratch: Vec<String>,
    created: u32,
}

impl Schedule {
    /// The `faults` steps seed `seed` stands for.
    pub fn generate(seed: u64, faults: usize) -> Schedule {
        let mut rng = SplitMix::new(seed);
        let mut model = Model::default();
        let steps = (0..faults)
            .map(|_| Step {
                fault: draw(&mut rng, &mut model),
                then_ms: rng.between(200, 1200),
            })
            .collect();
        Schedule { seed, steps }
    }
}

fn draw(rng: &mut SplitMix, m: &mut Model) -> Fault {
    let any_broker = |rng: &mut SplitMix| rng.pick(&BROKERS).unwrap_or(BROKERS[0]);
    match rng.below(13) {
        0 | 1 => {
            if let Some(b) = m.broker_down.take() {
                Fault::RestartBroker(b)
            } else if let Some(b) = m.broker_paused.take() {
                Fault::ResumeBroker(b)
            } else {
                let b = any_broker(rng);
                if rng.below(2) == 0 {
                    m.broker_down = Some(b);
                    Fault::KillBroker(b)
                } else {
                    m.broker_paused = Some(b);
                    Fault::PauseBroker(b)
                }
            }
        }
        2 => {
            m.controller_down = !m.controller_down;
            if m.controller_down {
                Fault::KillActiveController
            } else {
                Fault::RestartControllers
            }
        }
        3 | 4 => {
            let pair = rng.choose(&BROKERS, 2);
            Fault::CutBrokers(pair[0], pair[1])
        }
        5 => Fault::CutFromControllers(any_broker(rng)),
        6 => {
            m.broker_paused = None;
            Fault::Heal
        }
        7 | 8 => Fault::Reassign {
            partition: rng.below(PARTITIONS as u64) as i32,
            replicas: rng.choose(&BROKERS, 3),
        },
        9 => Fault::PreferredElection,
        10 | 11 if m.scratch.len() < 3 => {
            m.created += 1;
            let name = format!("scratch-{}", m.created);
            m.scratch.push(name.clone());
            Fault::CreateTopic(name)
        }
        _ => match m.scratch.is_empty() {
            true => Fault::PreferredElection,
            false => {
                let i = rng.below(m.scratch.len() as u64) as usize;
                Fault::DeleteTopic(m.scratch.remove(i))
            }
        },
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::KillBroker(b) => write!(f, "kill broker {b}"),
            Fault::RestartBroker(b) => write!(f, "restart broker {b}"),
            Fault::PauseBroker(b) => write!(f, "pause broker {b}"),
            Fault::ResumeBroker(b) => write!(f, "resume broker {b}"),
            Fault::KillActiveController => write!(f, "kill the active controller"),
            Fault::RestartControllers => write!(f, "restart the killed controller"),
            Fault::CutBrokers(a, b) => write!(f, "cut broker {a} <-> broker {b}"),
            Fault::CutFromControllers(b) => write!(f, "cut broker {b} <-> controllers"),
            Fault::Heal => write!(f, "heal all links"),
            Fault::Reassign {
                partition,
                replicas,
            } => write!(f, "reassign {TOPIC}-{partition} to {replicas:?}"),
            Fault::PreferredElection => write!(f, "preferred-leader election, all partitions"),
            Fault::CreateTopic(t) => write!(f, "create topic {t}"),
            Fault::DeleteTopic(t) => write!(f, "delete topic {t}"),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "schedule of seed {} ({} faults):",
            self.seed,
            self.steps.len()
        )?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(
                f,
                "  {:>3}. {}, then {} ms",
                i + 1,
                step.fault,
                step.then_ms
            )?;
        }
        Ok(())
    }
}

#[test]
fn a_seed_stands_for_one_schedule() {
    let a = Schedule::generate(42, 200).to_string();
    assert_eq!(a, Schedule::generate(42, 200).to_string());
    assert_ne!(a, Schedule::generate(43, 200).to_string());
    // The model keeps at most one broker out (down or paused) at a time.
    let (mut down, mut paused) = (0, 0);
    for step in Schedule::generate(42, 500).steps {
        match step.fault {
            Fault::KillBroker(_) => down += 1,
            Fault::RestartBroker(_) => down -= 1,
            Fault::PauseBroker(_) => paused += 1,
            Fault::ResumeBroker(_) | Fault::Heal if paused > 0 => paused -= 1,
            _ => {}
        }
        assert!(down + paused <= 1, "{down} down and {paused} paused");
    }
}
