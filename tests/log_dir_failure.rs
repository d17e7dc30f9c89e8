//! A broker whose log dir fails (an fsync error, injected with kraft-log's
//! `DiskFault`) takes the dir offline: its partitions there answer
//! KAFKA_STORAGE_ERROR, the fsync is never tried again, and the next
//! heartbeat reports the dir and its partitions to the controller, which
//! takes the broker out of their ISRs and moves leadership to another ISR
//! member. A broker whose every log dir failed (here its only one) asks to
//! be fenced, so no new replica or leadership is placed on it; it stays
//! registered until it restarts.
//!
//! Cluster: controller 1, brokers 2, 3 and 4; `t`-0 on [2, 3, 4], led by 2.

mod common;

use std::time::Duration;

use common::create_topic;
use common::raw::{batch, try_produce};
use common::replication::{create_assigned, kafka, wait_partition};
use kraft_broker::replica::PartitionLookup;
use kraft_testkit::{wait_for, TestCluster};

const KAFKA_STORAGE_ERROR: i16 = 56;

/// Produces one batch to `t`-0 through `broker` until the answer is `want`.
async fn produce_until(cluster: &TestCluster, broker: i32, want: i16, what: &str) {
    let mut client = kafka(cluster, broker).await;
    let mut last = None;
    let deadline = tokio::time::Instant::now() + kraft_testkit::DEADLINE;
    while tokio::time::Instant::now() < deadline {
        let answer = try_produce(&mut client, "t", 0, batch(&["v"])).await;
        match answer {
            Ok((code, _)) if code == want => return,
            Ok((code, _)) => last = Some(code),
            Err(_) => client = kafka(cluster, broker).await,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: broker {broker} never answered {want}; last answer {last:?}");
}

/// Produces to `t`-0 through broker 2, whose only dir failed, until it is
/// refused: with KAFKA_STORAGE_ERROR, or by a closed connection once the
/// controller has fenced broker 2 (a broker that counts itself fenced hangs
/// up on clients, so they turn to another). Which one a client sees depends
/// on whether its produce beats the heartbeat that asks for fencing.
async fn refused_while_offline(cluster: &TestCluster) {
    let fenced = || {
        cluster
            .image(1)
            .and_then(|image| image.cluster().broker(2).map(|b| b.fenced))
            .unwrap_or(false)
    };
    let mut last = None;
    let deadline = tokio::time::Instant::now() + kraft_testkit::DEADLINE;
    while tokio::time::Instant::now() < deadline {
        let mut client = kafka(cluster, 2).await;
        match try_produce(&mut client, "t", 0, batch(&["v"])).await {
            Ok((KAFKA_STORAGE_ERROR, _)) => return,
            Ok((code, _)) => last = Some(code),
            Err(_) if fenced() => return,
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("broker 2 with its dir offline was never refused: last answer {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_takes_the_dir_offline_and_leadership_moves() {
    let cluster = TestCluster::builder(1)
        .brokers(3)
        // Flush after every message, so the maintenance task fsyncs.
        .prop("log.flush.interval.messages", "1")
        .prop("auto.leader.rebalance.enable", "false")
        .start()
        .await
        .unwrap();
    create_assigned(&cluster, "t", &[&[2, 3, 4]]).await;
    let before = wait_partition(&cluster, "t", 0, "led by 2, all in sync", |p| {
        p.leader == 2 && p.isr.len() == 3
    })
    .await;
    produce_until(&cluster, 2, 0, "a healthy produce").await;

    // Broker 2's disk starts failing every fsync of the partition.
    let topic_id = cluster
        .image(1)
        .and_then(|i| i.topics().topic_by_name("t").map(|t| t.id()))
        .expect("topic t");
    let partition = match cluster.broker(2).unwrap().replicas().lookup(topic_id, 0) {
        PartitionLookup::Hosted(p) => p,
        _ => panic!("broker 2 hosts t-0"),
    };
    partition.log().disk_fault().fail_syncs();
    let mut client = kafka(&cluster, 2).await;
    // Whatever this one is answered, it leaves an fsync to do.
    let _ = try_produce(&mut client, "t", 0, batch(&["doomed fsync"])).await;
    wait_for("the failing fsync", || async {
        (partition.log().disk_fault().failed_syncs() > 0).then_some(())
    })
    .await
    .unwrap();

    // The partition refuses produce with KAFKA_STORAGE_ERROR (or, once the
    // broker is fenced for having no dir left, the broker hangs up) ...
    refused_while_offline(&cluster).await;
    // ... the controller, told in a heartbeat, moves leadership off broker
    // 2 and takes it out of the ISR ...
    let after = wait_partition(
        &cluster,
        "t",
        0,
        "led by 3 or 4 without 2 in the ISR",
        |p| (p.leader == 3 || p.leader == 4) && !p.isr.contains(&2),
    )
    .await;
    assert!(after.leader_epoch > before.leader_epoch);
    assert_eq!(after.replicas, vec![2, 3, 4], "the replica stays assigned");
    let image = cluster.image(1).unwrap();
    assert!(
        image.cluster().broker(2).is_some(),
        "broker 2 stays registered"
    );
    // ... its only dir is gone, so it is fenced: new topics go elsewhere ...
    wait_for("broker 2 fenced", || async {
        let image = cluster.image(1)?;
        image.cluster().broker(2)?.fenced.then_some(())
    })
    .await
    .unwrap();
    create_topic(&cluster.bootstrap_servers(), "fresh", 6, 2, &[]).await;
    let fresh = wait_for("topic fresh in the image", || async {
        let image = cluster.image(1)?;
        let topic = image.topics().topic_by_name("fresh")?;
        Some(
            (0..6)
                .filter_map(|p| topic.partition(p).map(|r| r.replicas.clone()))
                .collect::<Vec<_>>(),
        )
    })
    .await
    .unwrap();
    assert!(
        fresh.iter().all(|replicas| !replicas.contains(&2)),
        "a replica was placed on broker 2, whose only log dir is offline: {fresh:?}"
    );
    // ... the new leader takes writes ...
    produce_until(&cluster, after.leader, 0, "produce to the new leader").await;
    // ... and the controller stays with its decision.
    let later = wait_partition(&cluster, "t", 0, "unchanged", |p| p.leader == after.leader).await;
    assert!(!later.isr.contains(&2));
    // Broker 2 never tried the failed fsync again, though its maintenance
    // ran many times meanwhile (flush.messages=1 would ask at once).
    assert_eq!(
        partition.log().disk_fault().failed_syncs(),
        1,
        "the failed fsync was retried"
    );
    cluster.shutdown().await;
}
