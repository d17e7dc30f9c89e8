//! Shared by the integration tests: record builders and a deterministic
//! generator of valid metadata logs.

#![allow(dead_code)]

use bytes::Bytes;
use kraft_metadata::{record, ConfigResourceType, MetadataDelta, MetadataImage};
use kraft_proto::metadata::{self as pb, metadata_record::Record, MetadataRecord, RecordBatch};
use uuid::Uuid;

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn raw(id: Uuid) -> Bytes {
    Bytes::copy_from_slice(id.as_bytes())
}

pub fn register(broker_id: i32, incarnation: u128, epoch: i64) -> MetadataRecord {
    record(Record::RegisterBroker(pb::RegisterBrokerRecord {
        broker_id,
        incarnation_id: raw(id(incarnation)),
        broker_epoch: epoch,
        endpoints: vec![pb::Endpoint {
            name: "PLAINTEXT".into(),
            host: format!("broker-{broker_id}"),
            port: 9092,
            security_protocol: "PLAINTEXT".into(),
        }],
        rack: Some(format!("rack-{}", broker_id % 2)),
        fenced: true,
        in_controlled_shutdown: false,
    }))
}

pub fn fence(broker_id: i32, broker_epoch: i64) -> MetadataRecord {
    record(Record::FenceBroker(pb::FenceBrokerRecord {
        broker_id,
        broker_epoch,
    }))
}

pub fn unfence(broker_id: i32, broker_epoch: i64) -> MetadataRecord {
    record(Record::UnfenceBroker(pb::UnfenceBrokerRecord {
        broker_id,
        broker_epoch,
    }))
}

pub fn shutdown(broker_id: i32, broker_epoch: i64) -> MetadataRecord {
    record(Record::BrokerControlledShutdown(
        pb::BrokerControlledShutdownRecord {
            broker_id,
            broker_epoch,
        },
    ))
}

pub fn unregister(broker_id: i32, broker_epoch: i64) -> MetadataRecord {
    record(Record::UnregisterBroker(pb::UnregisterBrokerRecord {
        broker_id,
        broker_epoch,
    }))
}

pub fn topic(name: &str, topic_id: Uuid) -> MetadataRecord {
    record(Record::Topic(pb::TopicRecord {
        name: name.into(),
        topic_id: raw(topic_id),
    }))
}

pub fn partition(topic_id: Uuid, partition_id: i32, replicas: &[i32]) -> MetadataRecord {
    record(Record::Partition(pb::PartitionRecord {
        topic_id: raw(topic_id),
        partition_id,
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader: replicas.first().copied().unwrap_or(-1),
        leader_epoch: 0,
        partition_epoch: 0,
        removing_replicas: vec![],
        adding_replicas: vec![],
    }))
}

/// A change record with no fields set; fill in with struct update syntax.
pub fn change(topic_id: Uuid, partition_id: i32) -> pb::PartitionChangeRecord {
    pb::PartitionChangeRecord {
        topic_id: raw(topic_id),
        partition_id,
        ..Default::default()
    }
}

pub fn ids(ids: &[i32]) -> Option<pb::BrokerIds> {
    Some(pb::BrokerIds { ids: ids.to_vec() })
}

pub fn wrap_change(c: pb::PartitionChangeRecord) -> MetadataRecord {
    record(Record::PartitionChange(c))
}

pub fn remove_topic(topic_id: Uuid) -> MetadataRecord {
    record(Record::RemoveTopic(pb::RemoveTopicRecord {
        topic_id: raw(topic_id),
    }))
}

pub fn config(
    ty: ConfigResourceType,
    name: &str,
    key: &str,
    value: Option<&str>,
) -> MetadataRecord {
    record(Record::Config(pb::ConfigRecord {
        resource_type: ty as i32,
        resource_name: name.into(),
        name: key.into(),
        value: value.map(str::to_owned),
    }))
}

pub fn feature(name: &str, level: i32) -> MetadataRecord {
    record(Record::FeatureLevel(pb::FeatureLevelRecord {
        name: name.into(),
        feature_level: level,
    }))
}

pub fn noop() -> MetadataRecord {
    record(Record::NoOp(pb::NoOpRecord {}))
}

pub fn batch(records: Vec<MetadataRecord>) -> RecordBatch {
    RecordBatch { records }
}

/// Replays records one by one (panicking on error) into a delta over
/// `base`, then applies it at `offset`.
pub fn apply(base: &MetadataImage, offset: u64, records: &[MetadataRecord]) -> MetadataImage {
    let mut delta = MetadataDelta::new(base.clone());
    for (i, r) in records.iter().enumerate() {
        delta
            .replay(r)
            .unwrap_or_else(|e| panic!("record {i} {r:?}: {e}"));
    }
    delta.set_offset(offset);
    delta.apply()
}

/// Replays `(offset, batch)` pairs on top of `base`, one delta per batch.
pub fn replay_log(base: MetadataImage, log: &[(u64, RecordBatch)]) -> MetadataImage {
    log.iter().fold(base, |image, (offset, batch)| {
        let mut delta = MetadataDelta::new(image);
        delta
            .replay_batch(*offset, batch)
            .unwrap_or_else(|e| panic!("batch at {offset}: {e}"));
        delta.apply()
    })
}

/// Knuth's MMIX linear congruential generator: deterministic, no deps.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len() as u64) as usize)
        }
    }

    fn broker_ids(&mut self, max: usize) -> Vec<i32> {
        let mut out = Vec::new();
        let n = 1 + self.below(max as u64) as usize;
        while out.len() < n {
            let b = self.below(6) as i32;
            if !out.contains(&b) {
                out.push(b);
            }
        }
        out
    }
}

/// A log of `batches` valid batches at offsets 1, 2, ...: every kind of
/// record, chosen by an LCG seeded with `seed`. Records are chosen against
/// the state so far (including earlier records of the same batch).
pub fn generate_log(seed: u64, batches: usize) -> Vec<(u64, RecordBatch)> {
    let mut rng = Lcg::new(seed);
    let mut state = MetadataImage::empty();
    let mut next_topic = 0u128;
    let mut log = Vec::new();
    for offset in 1..=batches as u64 {
        let mut records = Vec::new();
        for _ in 0..1 + rng.below(4) {
            for r in generate_op(&mut rng, &state, offset, &mut next_topic) {
                state = apply(&state, 0, std::slice::from_ref(&r));
                records.push(r);
            }
        }
        log.push((offset, batch(records)));
    }
    log
}

fn generate_op(
    rng: &mut Lcg,
    state: &MetadataImage,
    offset: u64,
    next_topic: &mut u128,
) -> Vec<MetadataRecord> {
    let brokers: Vec<_> = state.cluster().brokers().map(|b| (b.id, b.epoch)).collect();
    let topics: Vec<_> = state
        .topics()
        .topics()
        .map(|t| (t.id(), t.name().to_owned()))
        .collect();
    match rng.below(13) {
        0 | 1 => {
            let broker_id = rng.below(6) as i32;
            vec![register(broker_id, u128::from(rng.next()), offset as i64)]
        }
        2 | 3 => match rng.pick(&brokers) {
            Some(&(b, epoch)) => vec![match rng.below(7) {
                0 | 1 => fence(b, epoch),
                2..=4 => unfence(b, epoch),
                5 => shutdown(b, epoch),
                _ => unregister(b, epoch),
            }],
            None => vec![noop()],
        },
        4 | 5 | 12 => {
            *next_topic += 1;
            let topic_id = id((u128::from(rng.next()) << 64) | *next_topic);
            let mut out = vec![topic(&format!("topic-{next_topic}"), topic_id)];
            for p in 0..1 + rng.below(4) as i32 {
                out.push(partition(topic_id, p, &rng.broker_ids(3)));
            }
            out
        }
        6 | 7 => {
            let Some((topic_id, _)) = rng.pick(&topics).cloned() else {
                return vec![noop()];
            };
            let parts: Vec<i32> = match state.topics().topic(topic_id) {
                Some(t) => t.partitions().keys().copied().collect(),
                None => vec![],
            };
            let Some(&p) = rng.pick(&parts) else {
                return vec![noop()];
            };
            let mut c = change(topic_id, p);
            if rng.chance(50) {
                c.leader = Some(rng.below(7) as i32 - 1);
            }
            if rng.chance(50) {
                c.isr = ids(&rng.broker_ids(3));
            }
            if rng.chance(20) {
                c.replicas = ids(&rng.broker_ids(4));
            }
            if rng.chance(15) {
                c.adding_replicas = ids(&rng.broker_ids(2));
            }
            if rng.chance(15) {
                c.removing_replicas = if rng.chance(50) {
                    ids(&[])
                } else {
                    ids(&rng.broker_ids(2))
                };
            }
            vec![wrap_change(c)]
        }
        8 => match rng.pick(&topics) {
            Some((topic_id, _)) => vec![remove_topic(*topic_id)],
            None => vec![noop()],
        },
        9 | 10 => {
            let (ty, name) = match (rng.below(3), rng.pick(&topics)) {
                (0, Some((_, name))) => (ConfigResourceType::ConfigResourceTopic, name.clone()),
                (1, _) => (
                    ConfigResourceType::ConfigResourceBroker,
                    rng.below(3).to_string(),
                ),
                _ => (ConfigResourceType::ConfigResourceBroker, String::new()),
            };
            let key = format!("key.{}", rng.below(4));
            let value = rng.chance(70).then(|| format!("v{}", rng.next()));
            vec![config(ty, &name, &key, value.as_deref())]
        }
        _ => match rng.below(3) {
            0 => vec![noop()],
            _ => vec![feature(
                &format!("feature.{}", rng.below(3)),
                rng.below(4) as i32,
            )],
        },
    }
}
