//! A replayed log and a loaded snapshot give the same image, at every
//! prefix of a generated log; and an image written back as records replays
//! into itself.

mod common;

use common::*;
use kraft_metadata::{snapshot, MetadataDelta, MetadataImage};
use kraft_proto::metadata::SnapshotHeader;

const SEEDS: [u64; 3] = [1, 0x5eed, 0xdead_beef];
const BATCHES: usize = 120;

fn header(offset: u64) -> SnapshotHeader {
    SnapshotHeader {
        offset,
        term: 3,
        timestamp_ms: 1_700_000_000_000,
        voters: vec![1, 2, 3],
        learners: vec![4],
    }
}

/// The image after each prefix of `log`: `images[k]` = first `k` batches.
fn prefix_images(log: &[(u64, kraft_proto::metadata::RecordBatch)]) -> Vec<MetadataImage> {
    let mut images = vec![MetadataImage::empty()];
    for entry in log {
        let next = replay_log(
            images[images.len() - 1].clone(),
            std::slice::from_ref(entry),
        );
        images.push(next);
    }
    images
}

#[test]
fn generated_logs_are_rich() {
    // Guard against a generator that silently stops exercising things.
    let log = generate_log(SEEDS[0], BATCHES);
    let images = prefix_images(&log);
    let max_topics = images.iter().map(|i| i.topics().len()).max().unwrap();
    let max_brokers = images.iter().map(|i| i.cluster().len()).max().unwrap();
    let max_configs = images.iter().map(|i| i.configs().len()).max().unwrap();
    let max_features = images.iter().map(|i| i.features().len()).max().unwrap();
    assert!(max_topics >= 3 && max_brokers >= 3 && max_configs >= 2 && max_features >= 1);
    let epochs = images[BATCHES]
        .topics()
        .topics()
        .flat_map(|t| {
            t.partitions()
                .values()
                .map(|p| p.leader_epoch)
                .collect::<Vec<_>>()
        })
        .max();
    assert!(epochs.unwrap_or(0) >= 1, "no partition changes generated");
}

#[test]
fn image_to_records_replays_into_itself() {
    for seed in SEEDS {
        let log = generate_log(seed, BATCHES);
        for image in prefix_images(&log) {
            let replayed = apply(&MetadataImage::empty(), image.offset(), &image.to_records());
            assert_eq!(replayed, image, "seed {seed}, offset {}", image.offset());
        }
    }
}

#[test]
fn one_delta_for_the_whole_log_equals_one_per_batch() {
    for seed in SEEDS {
        let log = generate_log(seed, BATCHES);
        let mut delta = MetadataDelta::new(MetadataImage::empty());
        for (offset, batch) in &log {
            delta.replay_batch(*offset, batch).unwrap();
        }
        assert_eq!(delta.apply(), replay_log(MetadataImage::empty(), &log));
    }
}

#[test]
fn snapshot_at_every_prefix_equals_replay_and_resumes() {
    for seed in SEEDS {
        let log = generate_log(seed, BATCHES);
        let images = prefix_images(&log);
        let full = &images[BATCHES];
        for (k, image) in images.iter().enumerate() {
            assert_eq!(image.offset(), k as u64);
            let bytes = snapshot::encode(&header(image.offset()), image);
            let (decoded_header, decoded) =
                snapshot::decode(&bytes).unwrap_or_else(|e| panic!("seed {seed}, prefix {k}: {e}"));
            assert_eq!(decoded_header, header(image.offset()));
            assert_eq!(snapshot::decode_header(&bytes).unwrap(), decoded_header);
            assert_eq!(
                &decoded, image,
                "seed {seed}, prefix {k}: snapshot differs from replay"
            );
            let resumed = replay_log(decoded, &log[k..]);
            assert_eq!(
                &resumed, full,
                "seed {seed}, prefix {k}: resumed replay differs"
            );
        }
    }
}

#[test]
fn encoding_is_deterministic() {
    let log = generate_log(SEEDS[1], BATCHES);
    let a = replay_log(MetadataImage::empty(), &log);
    let b = replay_log(MetadataImage::empty(), &log);
    assert_eq!(
        snapshot::encode(&header(a.offset()), &a),
        snapshot::encode(&header(b.offset()), &b)
    );
}
