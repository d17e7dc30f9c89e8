//! `MetadataDelta::between`: the delta from one image to another (a
//! snapshot loaded over the image a broker has) reports what replaying the
//! records between them would, removals included.

mod common;

use std::collections::BTreeSet;

use common::*;
use kraft_metadata::{
    ConfigResource, ConfigResourceType, LocalReplicaChanges, MetadataDelta, MetadataImage,
};
use kraft_proto::metadata::PartitionChangeRecord;
use uuid::Uuid;

const TOPIC: ConfigResourceType = ConfigResourceType::ConfigResourceTopic;
const BROKER: ConfigResourceType = ConfigResourceType::ConfigResourceBroker;

/// The partitions `broker` hosts in `image`.
fn hosted(image: &MetadataImage, broker: i32) -> BTreeSet<(Uuid, i32)> {
    image
        .topics()
        .topics()
        .flat_map(|t| {
            t.partitions()
                .iter()
                .filter(|(_, reg)| reg.has_replica(broker))
                .map(move |(p, _)| (t.id(), *p))
        })
        .collect()
}

/// `hosted` after acting on `changes`, as the replica manager does.
fn act_on(
    mut hosted: BTreeSet<(Uuid, i32)>,
    changes: &LocalReplicaChanges,
) -> BTreeSet<(Uuid, i32)> {
    for key in changes.deletes.keys() {
        hosted.remove(key);
    }
    hosted.extend(changes.leaders.keys().chain(changes.followers.keys()));
    hosted
}

#[test]
fn from_the_empty_image_everything_is_new() {
    let image = replay_log(MetadataImage::empty(), &generate_log(3, 80));
    let delta = MetadataDelta::between(&MetadataImage::empty(), &image);
    assert_eq!(delta.offset(), image.offset());

    // What loading the image's records into an empty image reports.
    let mut replayed = MetadataDelta::new(MetadataImage::empty());
    for r in image.to_records() {
        replayed.replay(&r).unwrap();
    }
    let topics = delta.topics().unwrap();
    let replayed_topics = replayed.topics().unwrap();
    for broker in 0..6 {
        assert_eq!(
            topics.local_changes(broker),
            replayed_topics.local_changes(broker),
            "broker {broker}"
        );
    }
    assert_eq!(
        topics.changed_topics().collect::<Vec<_>>(),
        replayed_topics.changed_topics().collect::<Vec<_>>()
    );
    assert!(image.topics().topics().all(|t| topics.is_created(t.id())));
    assert_eq!(topics.deleted_topics().count(), 0);
    assert_eq!(
        delta
            .cluster()
            .unwrap()
            .changed_brokers()
            .collect::<Vec<_>>(),
        replayed
            .cluster()
            .unwrap()
            .changed_brokers()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        delta
            .configs()
            .unwrap()
            .changed_resources()
            .collect::<Vec<_>>(),
        replayed
            .configs()
            .unwrap()
            .changed_resources()
            .collect::<Vec<_>>()
    );
    assert_eq!(delta.apply(), image);
}

#[test]
fn equal_images_differ_in_nothing() {
    let image = replay_log(MetadataImage::empty(), &generate_log(5, 40));
    let mut later = image.clone();
    let mut delta = MetadataDelta::new(later);
    delta.set_offset(image.offset() + 10);
    later = delta.apply();
    let delta = MetadataDelta::between(&image, &later);
    assert!(delta.is_empty());
    assert_eq!(delta.offset(), image.offset() + 10);
    assert_eq!(delta.apply(), later);
}

/// The broker is behind while a topic is deleted, a partition it led is
/// moved away, another changes leader, a broker unregisters, configs and a
/// feature go; the snapshot it loads says all of it.
#[test]
fn what_the_snapshot_no_longer_holds_is_deleted() {
    let (moved, gone, led, kept) = (id(1), id(2), id(3), id(4));
    let base = apply(
        &MetadataImage::empty(),
        10,
        &[
            feature("metadata.version", 3),
            feature("old.feature", 1),
            register(1, 101, 1),
            register(2, 102, 1),
            register(3, 103, 1),
            topic("moved", moved),
            partition(moved, 0, &[1, 2]),
            topic("gone", gone),
            partition(gone, 0, &[1]),
            partition(gone, 1, &[2]),
            topic("led", led),
            partition(led, 0, &[1, 2]),
            topic("kept", kept),
            partition(kept, 0, &[1, 3]),
            config(TOPIC, "gone", "retention.ms", Some("1")),
            config(TOPIC, "kept", "retention.ms", Some("2")),
            config(BROKER, "", "log.retention.ms", Some("3")),
        ],
    );
    let target = apply(
        &base,
        50,
        &[
            feature("old.feature", 0),
            unregister(3, 1),
            wrap_change(PartitionChangeRecord {
                replicas: ids(&[2, 3]),
                isr: ids(&[2]),
                leader: Some(2),
                ..change(moved, 0)
            }),
            remove_topic(gone),
            wrap_change(PartitionChangeRecord {
                leader: Some(2),
                ..change(led, 0)
            }),
            config(BROKER, "", "log.retention.ms", None),
            // The name "gone" again, a new topic.
            topic("gone", id(5)),
            partition(id(5), 0, &[1]),
        ],
    );
    let delta = MetadataDelta::between(&base, &target);
    let topics = delta.topics().unwrap();

    let local1 = topics.local_changes(1);
    assert_eq!(
        local1.deletes.into_iter().collect::<Vec<_>>(),
        [((moved, 0), "moved".to_owned()), ((gone, 0), "gone".into())]
    );
    assert_eq!(local1.leaders.keys().collect::<Vec<_>>(), [&(id(5), 0)]);
    assert_eq!(local1.followers.keys().collect::<Vec<_>>(), [&(led, 0)]);
    let local2 = topics.local_changes(2);
    assert_eq!(local2.deletes.keys().collect::<Vec<_>>(), [&(gone, 1)]);
    assert_eq!(
        local2.leaders.keys().collect::<Vec<_>>(),
        [&(moved, 0), &(led, 0)]
    );
    // kept-0 did not change: nobody is told about it.
    let local3 = topics.local_changes(3);
    assert_eq!(local3.followers.keys().collect::<Vec<_>>(), [&(moved, 0)]);
    assert!(local3.leaders.is_empty() && local3.deletes.is_empty());

    assert_eq!(
        topics.deleted_topics().map(|t| t.id()).collect::<Vec<_>>(),
        [gone]
    );
    assert!(topics.is_created(id(5)) && !topics.is_created(moved));
    assert_eq!(
        topics.changed_topics().map(|t| t.id()).collect::<Vec<_>>(),
        [moved, led, id(5)]
    );
    assert_eq!(
        delta
            .cluster()
            .unwrap()
            .changed_brokers()
            .map(|(id, b)| (id, b.is_some()))
            .collect::<Vec<_>>(),
        [(3, false)]
    );
    assert_eq!(
        delta
            .configs()
            .unwrap()
            .changed_resources()
            .collect::<Vec<_>>(),
        [
            (&ConfigResource::topic("gone"), None),
            (&ConfigResource::broker(""), None)
        ]
    );
    assert_eq!(
        delta
            .features()
            .unwrap()
            .changed_features()
            .collect::<Vec<_>>(),
        [("old.feature", None)]
    );
    assert_eq!(delta.apply(), target);
}

/// Images no replay can produce still diff soundly: a partition missing
/// from a topic, a topic id under another name.
#[test]
fn a_lost_partition_or_a_renamed_id_is_a_delete() {
    let (t, u) = (id(1), id(2));
    let base = apply(
        &MetadataImage::empty(),
        5,
        &[
            topic("t", t),
            partition(t, 0, &[1]),
            partition(t, 1, &[1]),
            topic("u", u),
            partition(u, 0, &[1]),
        ],
    );
    let target = apply(
        &MetadataImage::empty(),
        9,
        &[
            topic("t", t),
            partition(t, 0, &[1]),
            topic("renamed", u),
            partition(u, 0, &[1]),
        ],
    );
    let delta = MetadataDelta::between(&base, &target);
    let topics = delta.topics().unwrap();
    let local = topics.local_changes(1);
    assert_eq!(
        local.deletes.into_iter().collect::<Vec<_>>(),
        [((t, 1), "t".to_owned()), ((u, 0), "u".into())]
    );
    assert_eq!(local.leaders.keys().collect::<Vec<_>>(), [&(u, 0)]);
    assert!(topics.is_created(u) && !topics.is_created(t));
    assert_eq!(delta.apply(), target);
}

/// Over random logs: from any image to any later one, the diff reports the
/// same local deletes as replaying the records between them, and acting on
/// it leaves each broker hosting exactly what the later image gives it.
#[test]
fn agrees_with_replaying_the_records_between() {
    for seed in 0..20 {
        let log = generate_log(seed, 60);
        let mut images = vec![MetadataImage::empty()];
        for (offset, batch) in &log {
            let mut delta = MetadataDelta::new(images.last().unwrap().clone());
            delta.replay_batch(*offset, batch).unwrap();
            images.push(delta.apply());
        }
        for (from, to) in [(0, 60), (10, 11), (10, 35), (30, 60), (45, 59)] {
            let (base, target) = (&images[from], &images[to]);
            let mut replayed = MetadataDelta::new(base.clone());
            for (offset, batch) in &log[from..to] {
                replayed.replay_batch(*offset, batch).unwrap();
            }
            let diff = MetadataDelta::between(base, target);
            let what = format!("seed {seed}, {from} -> {to}");
            assert_eq!(diff.offset(), target.offset(), "{what}");
            for broker in 0..6 {
                let by_diff = diff
                    .topics()
                    .map(|t| t.local_changes(broker))
                    .unwrap_or_default();
                let by_replay = replayed
                    .topics()
                    .map(|t| t.local_changes(broker))
                    .unwrap_or_default();
                assert_eq!(
                    by_diff.deletes, by_replay.deletes,
                    "{what}, broker {broker}"
                );
                // The diff leaves out only what a replay touched but left as it was.
                for (key, reg) in by_replay.leaders.iter().chain(&by_replay.followers) {
                    if !by_diff.leaders.contains_key(key) && !by_diff.followers.contains_key(key) {
                        assert_eq!(base.topics().partition(key.0, key.1), Some(reg), "{what}");
                    }
                }
                assert_eq!(
                    act_on(hosted(base, broker), &by_diff),
                    hosted(target, broker),
                    "{what}, broker {broker}"
                );
            }
            assert_eq!(diff.apply(), *target, "{what}");
        }
    }
}
