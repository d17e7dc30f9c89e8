//! Benchmark of a 3-voter controller quorum of real `kraftd` processes
//! (release build, default settings). Prints figures; asserts nothing.
//!
//! - committed metadata records per second, batched (concurrent writers,
//!   100 config records per write);
//! - commit latency p50/p99 of single-record writes, one at a time;
//! - failover: SIGKILL of the leader process until a write commits through
//!   the new leader, over N kills (min/median/max).
//!
//! Run with `scripts/bench-quorum [--kills N] [--seconds S] [--settle-ms MS]`;
//! after each kill the victim restarts and gets `--settle-ms` (3000) to
//! reload its log before the next kill.

use std::path::Path;
use std::time::{Duration, Instant};

use kraft_controller::{ControllerConnection, QuorumClient};
use kraft_proto::controller::{
    controller_request::Body, controller_response, AlterConfigsRequest, DescribeQuorumRequest,
};
use kraft_proto::metadata::{ConfigRecord, ConfigResourceType};
use kraft_testkit::bench_support::{arg, ms, percentile};
use kraft_testkit::process::ProcessCluster;

const KRAFTD: &str = env!("CARGO_BIN_EXE_kraftd");

fn changes(prefix: &str, n: usize, value: u64) -> Body {
    Body::AlterConfigs(AlterConfigsRequest {
        changes: (0..n)
            .map(|i| ConfigRecord {
                resource_type: ConfigResourceType::ConfigResourceBroker as i32,
                resource_name: String::new(),
                name: format!("{prefix}.{i}"),
                value: Some(value.to_string()),
            })
            .collect(),
        validate_only: false,
    })
}

async fn leader(cluster: &ProcessCluster, ids: &[i32]) -> (i32, u64) {
    let addrs = ids.iter().map(|id| cluster.addr(*id).to_string()).collect();
    let mut client = QuorumClient::new(addrs, &cluster.cluster_id);
    loop {
        if let Ok(resp) = client
            .call_leader(
                Body::DescribeQuorum(DescribeQuorumRequest {}),
                Duration::from_secs(30),
            )
            .await
        {
            if let Some(controller_response::Body::DescribeQuorum(q)) = resp.body {
                let healthy = ids.iter().all(|id| {
                    q.voters.iter().any(|v| {
                        v.id == *id && v.lag == 0 && (0..500).contains(&v.last_caught_up_ms_ago)
                    })
                });
                if healthy {
                    return (q.leader_id, q.leader_epoch);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn throughput(cluster: &ProcessCluster, seconds: u64) {
    let (leader_id, _) = leader(cluster, &cluster.ids()).await;
    let addr = cluster.addr(leader_id).to_string();
    let writers = 8;
    let per_write = 100;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let addr = addr.clone();
        let cluster_id = cluster.cluster_id.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = ControllerConnection::connect(&addr, &cluster_id)
                .await
                .expect("connect");
            let mut records = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                conn.call(changes(&format!("bench.w{w}"), per_write, n))
                    .await
                    .expect("write");
                records += per_write as u64;
            }
            records
        }));
    }
    let start = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("writer");
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "throughput: {:.0} records/s committed ({writers} writers x {per_write} records per write, {total} records in {elapsed:.1} s)",
        total as f64 / elapsed
    );
}

async fn latency(cluster: &ProcessCluster, n: usize) {
    let (leader_id, _) = leader(cluster, &cluster.ids()).await;
    let mut conn = ControllerConnection::connect(cluster.addr(leader_id), &cluster.cluster_id)
        .await
        .expect("connect");
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        conn.call(changes("latency", 1, i as u64))
            .await
            .expect("write");
        samples.push(start.elapsed());
    }
    samples.sort();
    println!(
        "commit latency (1 record, sequential, {n} writes): p50 {} p99 {} max {}",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        ms(samples[samples.len() - 1])
    );
}

async fn failover(cluster: &mut ProcessCluster, kills: usize, settle: Duration) {
    let mut samples = Vec::with_capacity(kills);
    for round in 0..kills {
        let all = cluster.ids();
        let (old, epoch) = leader(cluster, &all).await;
        let survivors: Vec<String> = all
            .iter()
            .filter(|id| **id != old)
            .map(|id| cluster.addr(*id).to_string())
            .collect();
        let mut client = QuorumClient::new(survivors.clone(), &cluster.cluster_id);
        cluster.kill9(old).expect("kill");
        let start = Instant::now();
        let cluster_id = cluster.cluster_id.clone();
        let elected = tokio::spawn(async move {
            loop {
                for addr in &survivors {
                    if let Ok(mut c) = ControllerConnection::connect(addr, &cluster_id).await {
                        if let Ok(r) = c.call(Body::DescribeQuorum(DescribeQuorumRequest {})).await
                        {
                            if let Some(controller_response::Body::DescribeQuorum(q)) = r.body {
                                if q.leader_epoch > epoch {
                                    return start.elapsed();
                                }
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        client
            .call_leader(
                changes("failover", 1, round as u64),
                Duration::from_secs(30),
            )
            .await
            .expect("no new leader");
        let took = start.elapsed();
        samples.push(took);
        let elected = elected.await.expect("watcher");
        let (new, new_epoch) = leader(
            cluster,
            &all.iter()
                .copied()
                .filter(|id| *id != old)
                .collect::<Vec<_>>(),
        )
        .await;
        println!(
            "  kill {:>2}: leader {old} (epoch {epoch}) -> {new} (epoch {new_epoch}): elected after {}, first commit after {}",
            round + 1,
            ms(elected),
            ms(took)
        );
        cluster.spawn(old).expect("restart");
        // Let the restarted node reload its log before the next kill: two
        // failures in quick succession are another benchmark.
        tokio::time::sleep(settle).await;
    }
    samples.sort();
    println!(
        "failover over {kills} leader kills (SIGKILL -> first commit through the new leader): min {} median {} max {}",
        ms(samples[0]),
        ms(percentile(&samples, 0.5)),
        ms(samples[samples.len() - 1])
    );
}

fn main() {
    let kills = arg("--kills", 20) as usize;
    let seconds = arg("--seconds", 5);
    let settle = Duration::from_millis(arg("--settle-ms", 3000));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut cluster = ProcessCluster::start(Path::new(KRAFTD), 3, &[]).expect("start cluster");
        println!(
            "kraft quorum benchmark: 3 controller processes, default settings, {}",
            KRAFTD
        );
        throughput(&cluster, seconds).await;
        latency(&cluster, 2000).await;
        failover(&mut cluster, kills, settle).await;
    });
}
