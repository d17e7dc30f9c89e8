//! How big `__consumer_offsets` stays under many commits (issue 14's
//! figure): one combined `kraftd` (release), 4 groups each committing 10
//! partitions per OffsetCommit until `--commits` offsets (1,000,000) are
//! committed, then the partition logs' size on disk: right after the
//! commits, and once the log cleaner has had `--settle-seconds` (30) to
//! compact them. `offsets.topic.segment.bytes` is `--segment-bytes`
//! (1 MiB, Kafka's default is 100 MiB: the cleaner only cleans sealed
//! segments, so a smaller segment shows the bound sooner).
//!
//! The bound: per partition, the active segment (at most segment.bytes)
//! plus the cleaned sealed segments, which hold one record per live key.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, FindCoordinatorRequest, GroupId, OffsetCommitRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraft_kafka_client::KafkaClient;
use kraft_testkit::bench_support::arg;
use kraft_testkit::process::ProcessCluster;

const KRAFTD: &str = env!("CARGO_BIN_EXE_kraftd");
const GROUPS: usize = 4;
const PARTITIONS_PER_COMMIT: i32 = 10;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn main() -> Result<()> {
    let commits = arg("--commits", 1_000_000);
    let segment_bytes = arg("--segment-bytes", 1 << 20).to_string();
    let settle = Duration::from_secs(arg("--settle-seconds", 30));
    let cluster = ProcessCluster::start_combined(
        KRAFTD.as_ref(),
        &[
            ("offsets.topic.replication.factor", "1"),
            ("offsets.topic.segment.bytes", &segment_bytes),
        ],
    )?;
    let bootstrap = cluster.bootstrap_servers();
    let data = cluster.data_dir(cluster.broker_ids()[0]);
    println!(
        "one combined kraftd (release), offsets.topic.segment.bytes={segment_bytes}, \
         {GROUPS} groups x {PARTITIONS_PER_COMMIT} partitions"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    runtime.block_on(async {
        // Waits for the broker (and creates __consumer_offsets).
        coordinator_of(&bootstrap, "size-0").await?;
        let mut admin = KafkaClient::connect(bootstrap.as_str()).await?;
        let request = CreateTopicsRequest::default().with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(TopicName(s("commits")))
                .with_num_partitions(PARTITIONS_PER_COMMIT)
                .with_replication_factor(1),
        ]);
        let created = admin.send(5, &request).await?;
        if created.topics[0].error_code != 0 {
            bail!("CreateTopics: error {}", created.topics[0].error_code);
        }
        let per_group = commits / (GROUPS as u64 * PARTITIONS_PER_COMMIT as u64);
        let mut tasks = Vec::new();
        for g in 0..GROUPS {
            let group = format!("size-{g}");
            let addr = coordinator_of(&bootstrap, &group).await?;
            tasks.push(tokio::spawn(commit_loop(addr, group, per_group)));
        }
        for task in tasks {
            task.await??;
        }
        anyhow::Ok(())
    })?;
    let elapsed = started.elapsed();
    let (before, segments_before) = offsets_size(&data)?;
    println!(
        "{commits} offsets committed in {:.1} s ({:.0} offsets/s)",
        elapsed.as_secs_f64(),
        commits as f64 / elapsed.as_secs_f64()
    );
    println!(
        "__consumer_offsets on disk after the commits: {:.1} MiB in {segments_before} segments",
        before as f64 / 1048576.0
    );
    std::thread::sleep(settle);
    let (after, segments_after) = offsets_size(&data)?;
    println!(
        "after {} s of the log cleaner: {:.1} MiB in {segments_after} segments",
        settle.as_secs(),
        after as f64 / 1048576.0
    );
    Ok(())
}

/// Commits offsets 1..=`rounds` for every partition of `commits`, one
/// OffsetCommit per round.
async fn commit_loop(addr: String, group: String, rounds: u64) -> Result<()> {
    let mut client = KafkaClient::connect(addr.as_str()).await?;
    for offset in 1..=rounds as i64 {
        let partitions = (0..PARTITIONS_PER_COMMIT)
            .map(|p| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(offset)
                    .with_committed_metadata(Some(s("")))
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("commits")))
                .with_partitions(partitions)]);
        let response = client.send(8, &request).await?;
        if let Some(p) = response.topics[0]
            .partitions
            .iter()
            .find(|p| p.error_code != 0)
        {
            bail!("OffsetCommit: error {}", p.error_code);
        }
    }
    Ok(())
}

async fn coordinator_of(bootstrap: &str, group: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(mut client) = KafkaClient::connect(bootstrap).await {
            let request = FindCoordinatorRequest::default().with_key(s(group));
            if let Ok(r) = client.send(3, &request).await {
                if r.error_code == 0 {
                    return Ok(format!("{}:{}", r.host.as_str(), r.port));
                }
            }
        }
        if Instant::now() > deadline {
            bail!("no coordinator for {group}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bytes and `.log` segments of every `__consumer_offsets-*` directory
/// under `data`.
fn offsets_size(data: &Path) -> Result<(u64, usize)> {
    let mut bytes = 0;
    let mut segments = 0;
    for entry in std::fs::read_dir(data)? {
        let entry = entry?;
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("__consumer_offsets-")
        {
            continue;
        }
        for file in std::fs::read_dir(entry.path())? {
            let file = file?;
            bytes += file.metadata()?.len();
            if file.file_name().to_string_lossy().ends_with(".log") {
                segments += 1;
            }
        }
    }
    Ok((bytes, segments))
}
