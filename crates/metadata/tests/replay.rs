//! Fixed records -> expected image, and what the deltas report as changed.

mod common;

use common::*;
use kraft_metadata::{
    ConfigResource, ConfigResourceType, Endpoint, MetadataDelta, MetadataImage,
    PartitionRegistration,
};

const TOPIC: ConfigResourceType = ConfigResourceType::ConfigResourceTopic;
const BROKER: ConfigResourceType = ConfigResourceType::ConfigResourceBroker;

#[test]
fn broker_lifecycle() {
    let image = apply(
        &MetadataImage::empty(),
        10,
        &[register(1, 100, 10), register(2, 200, 10)],
    );
    let b1 = image.cluster().broker(1).unwrap();
    assert_eq!(b1.incarnation_id, id(100));
    assert_eq!(b1.epoch, 10);
    assert!(b1.fenced && !b1.in_controlled_shutdown);
    assert_eq!(
        b1.endpoint("PLAINTEXT"),
        Some(&Endpoint {
            name: "PLAINTEXT".into(),
            host: "broker-1".into(),
            port: 9092,
            security_protocol: "PLAINTEXT".into(),
        })
    );
    assert_eq!(b1.rack.as_deref(), Some("rack-1"));
    assert_eq!(image.cluster().unfenced_brokers().count(), 0);

    let image = apply(&image, 11, &[unfence(1, 10), unfence(2, 10)]);
    assert_eq!(image.cluster().unfenced_brokers().count(), 2);

    let image = apply(&image, 12, &[fence(2, 10), shutdown(1, 10)]);
    assert!(image.cluster().broker(2).unwrap().fenced);
    assert!(image.cluster().broker(1).unwrap().in_controlled_shutdown);

    // Broker 1 restarts: a new incarnation replaces the registration, fenced.
    let image = apply(&image, 13, &[register(1, 101, 13)]);
    let b1 = image.cluster().broker(1).unwrap();
    assert_eq!((b1.incarnation_id, b1.epoch), (id(101), 13));
    assert!(b1.fenced && !b1.in_controlled_shutdown);
    // Records about the old incarnation are stale now.
    let mut delta = MetadataDelta::new(image.clone());
    assert!(delta.replay(&unfence(1, 10)).is_err());
    let image = apply(&image, 14, &[unfence(1, 13), unregister(2, 10)]);
    assert!(!image.cluster().broker(1).unwrap().fenced);
    assert!(image.cluster().broker(2).is_none());
    assert_eq!(image.cluster().len(), 1);
}

#[test]
fn topics_partitions_and_epochs() {
    let orders = id(0xAA);
    let image = apply(
        &MetadataImage::empty(),
        5,
        &[
            topic("orders", orders),
            partition(orders, 0, &[1, 2, 3]),
            partition(orders, 1, &[2, 3, 1]),
            partition(orders, 2, &[3, 1, 2]),
        ],
    );
    let t = image.topics().topic_by_name("orders").unwrap();
    assert_eq!((t.name(), t.id()), ("orders", orders));
    assert_eq!(t.partitions().len(), 3);
    assert_eq!(image.topics().topic_id("orders"), Some(orders));
    let p0 = image.topics().partition(orders, 0).unwrap();
    assert_eq!(
        p0,
        &PartitionRegistration {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader: 1,
            ..Default::default()
        }
    );

    // ISR shrink: partition epoch only.
    let image = apply(
        &image,
        6,
        &[wrap_change(kraft_proto::metadata::PartitionChangeRecord {
            isr: ids(&[1, 2]),
            ..change(orders, 0)
        })],
    );
    let p0 = image.topics().partition(orders, 0).unwrap();
    assert_eq!(
        (
            p0.isr.clone(),
            p0.leader,
            p0.leader_epoch,
            p0.partition_epoch
        ),
        (vec![1, 2], 1, 0, 1)
    );

    // Leader change with ISR change: both epochs.
    let image = apply(
        &image,
        7,
        &[wrap_change(kraft_proto::metadata::PartitionChangeRecord {
            leader: Some(2),
            isr: ids(&[2]),
            ..change(orders, 0)
        })],
    );
    let p0 = image.topics().partition(orders, 0).unwrap();
    assert_eq!((p0.leader, p0.leader_epoch, p0.partition_epoch), (2, 1, 2));
    assert_eq!(p0.isr, vec![2]);
    assert_eq!(p0.replicas, vec![1, 2, 3]);

    // Reassignment fields.
    let image = apply(
        &image,
        8,
        &[wrap_change(kraft_proto::metadata::PartitionChangeRecord {
            replicas: ids(&[1, 2, 3, 4]),
            adding_replicas: ids(&[4]),
            ..change(orders, 1)
        })],
    );
    let p1 = image.topics().partition(orders, 1).unwrap();
    assert_eq!(
        (p1.replicas.clone(), p1.adding_replicas.clone()),
        (vec![1, 2, 3, 4], vec![4])
    );
    assert_eq!((p1.leader_epoch, p1.partition_epoch), (0, 1));
    // Other partitions untouched.
    assert_eq!(
        image.topics().partition(orders, 2).unwrap().partition_epoch,
        0
    );
}

#[test]
fn remove_topic_drops_partitions_and_configs() {
    let a = id(1);
    let b = id(2);
    let image = apply(
        &MetadataImage::empty(),
        3,
        &[
            topic("a", a),
            partition(a, 0, &[1]),
            topic("b", b),
            partition(b, 0, &[1]),
            config(TOPIC, "a", "retention.ms", Some("1000")),
            config(TOPIC, "b", "retention.ms", Some("2000")),
            config(BROKER, "1", "log.retention.ms", Some("5")),
        ],
    );
    let mut delta = MetadataDelta::new(image.clone());
    delta.replay(&remove_topic(a)).unwrap();
    let deleted: Vec<_> = delta
        .topics()
        .unwrap()
        .deleted_topics()
        .map(|t| t.name().to_owned())
        .collect();
    assert_eq!(deleted, ["a"]);
    let changed: Vec<_> = delta.configs().unwrap().changed_resources().collect();
    assert_eq!(changed, [(&ConfigResource::topic("a"), None)]);
    delta.set_offset(4);
    let image = delta.apply();
    assert!(image.topics().topic(a).is_none());
    assert!(image.topics().topic_by_name("a").is_none());
    assert!(image
        .configs()
        .resource(&ConfigResource::topic("a"))
        .is_none());
    assert_eq!(
        image
            .configs()
            .get(&ConfigResource::topic("b"), "retention.ms"),
        Some("2000")
    );
    assert_eq!(
        image
            .configs()
            .get(&ConfigResource::broker("1"), "log.retention.ms"),
        Some("5")
    );

    // The name is free again, under a new id.
    let image = apply(&image, 5, &[topic("a", id(3))]);
    assert_eq!(image.topics().topic_id("a"), Some(id(3)));
    assert_eq!(image.topics().len(), 2);

    // Removing a topic without configs leaves the configs sub-image alone.
    let mut delta = MetadataDelta::new(image);
    delta.replay(&remove_topic(id(3))).unwrap();
    assert!(delta.configs().is_none());
}

#[test]
fn configs_set_overwrite_delete() {
    let r = ConfigResource::broker("");
    let image = apply(
        &MetadataImage::empty(),
        1,
        &[
            config(BROKER, "", "a", Some("1")),
            config(BROKER, "", "b", Some("2")),
            config(BROKER, "", "a", Some("3")),
            config(BROKER, "", "missing", None),
        ],
    );
    assert_eq!(image.configs().get(&r, "a"), Some("3"));
    assert_eq!(image.configs().resource(&r).unwrap().len(), 2);
    let image = apply(&image, 2, &[config(BROKER, "", "a", None)]);
    assert_eq!(image.configs().get(&r, "a"), None);
    assert_eq!(image.configs().get(&r, "b"), Some("2"));
    let image = apply(&image, 3, &[config(BROKER, "", "b", None)]);
    assert!(image.configs().resource(&r).is_none());
    assert!(image.configs().is_empty());
}

#[test]
fn features_set_and_remove() {
    let image = apply(
        &MetadataImage::empty(),
        1,
        &[
            feature("metadata.version", 1),
            feature("group.version", 1),
            feature("metadata.version", 3),
        ],
    );
    assert_eq!(image.features().level("metadata.version"), Some(3));
    assert_eq!(image.features().len(), 2);
    let mut delta = MetadataDelta::new(image);
    delta.replay(&feature("group.version", 0)).unwrap();
    let changed: Vec<_> = delta.features().unwrap().changed_features().collect();
    assert_eq!(changed, [("group.version", None)]);
    let image = delta.apply();
    assert_eq!(image.features().level("group.version"), None);
    assert_eq!(
        image.features().iter().collect::<Vec<_>>(),
        [("metadata.version", 3)]
    );
}

#[test]
fn noop_changes_nothing_but_the_offset() {
    let image = apply(
        &MetadataImage::empty(),
        1,
        &[feature("f", 1), register(1, 1, 1)],
    );
    let mut delta = MetadataDelta::new(image.clone());
    delta.replay_batch(2, &batch(vec![noop(), noop()])).unwrap();
    assert!(delta.is_empty());
    let next = delta.apply();
    assert_eq!(next.offset(), 2);
    assert_eq!(next.features(), image.features());
    assert_eq!(next.cluster(), image.cluster());
}

#[test]
fn deltas_report_changes() {
    let t = id(7);
    let image = apply(
        &MetadataImage::empty(),
        1,
        &[
            register(1, 1, 1),
            register(2, 2, 1),
            topic("t", t),
            partition(t, 0, &[1, 2]),
            partition(t, 1, &[2, 3]),
        ],
    );
    let mut delta = MetadataDelta::new(image.clone());
    delta.replay(&unfence(2, 1)).unwrap();
    delta
        .replay(&wrap_change(kraft_proto::metadata::PartitionChangeRecord {
            leader: Some(2),
            ..change(t, 0)
        }))
        .unwrap();
    delta
        .replay(&wrap_change(kraft_proto::metadata::PartitionChangeRecord {
            replicas: ids(&[2, 3]),
            ..change(t, 1)
        }))
        .unwrap();
    let changed: Vec<_> = delta
        .cluster()
        .unwrap()
        .changed_brokers()
        .map(|(b, r)| (b, r.is_some()))
        .collect();
    assert_eq!(changed, [(2, true)]);
    assert!(delta.features().is_none() && delta.configs().is_none());
    let topics = delta.topics().unwrap();
    assert_eq!(
        topics.changed_topics().map(|t| t.id()).collect::<Vec<_>>(),
        [t]
    );
    assert!(!topics.is_created(t));
    assert_eq!(
        topics
            .changed_partitions(t)
            .map(|(p, _)| p)
            .collect::<Vec<_>>(),
        [0, 1]
    );

    let local1 = topics.local_changes(1);
    assert!(local1.leaders.is_empty());
    assert_eq!(local1.followers.keys().collect::<Vec<_>>(), [&(t, 0)]);
    assert!(local1.deletes.is_empty());
    let local2 = topics.local_changes(2);
    // Broker 2 leads partition 0 now and still leads partition 1.
    assert_eq!(
        local2.leaders.keys().collect::<Vec<_>>(),
        [&(t, 0), &(t, 1)]
    );
    assert!(local2.followers.is_empty());
    let local3 = topics.local_changes(3);
    assert_eq!(local3.followers.keys().collect::<Vec<_>>(), [&(t, 1)]);

    // Move partition 0 off broker 1: a local delete for broker 1. Then
    // delete the topic: local deletes for every replica broker 2 had.
    let image = delta.apply();
    let mut delta = MetadataDelta::new(image.clone());
    delta
        .replay(&wrap_change(kraft_proto::metadata::PartitionChangeRecord {
            replicas: ids(&[2]),
            ..change(t, 0)
        }))
        .unwrap();
    assert_eq!(
        delta
            .topics()
            .unwrap()
            .local_changes(1)
            .deletes
            .keys()
            .collect::<Vec<_>>(),
        [&(t, 0)]
    );
    delta.replay(&remove_topic(t)).unwrap();
    let topics = delta.topics().unwrap();
    assert_eq!(topics.changed_topics().count(), 0);
    let deletes = topics.local_changes(2).deletes;
    assert_eq!(deletes.keys().collect::<Vec<_>>(), [&(t, 0), &(t, 1)]);
    assert_eq!(deletes.values().next().map(String::as_str), Some("t"));

    // A topic created and removed in one delta is neither created nor deleted.
    let mut delta = MetadataDelta::new(MetadataImage::empty());
    delta.replay(&topic("x", id(9))).unwrap();
    assert!(delta.topics().unwrap().is_created(id(9)));
    delta.replay(&remove_topic(id(9))).unwrap();
    let topics = delta.topics().unwrap();
    assert_eq!(
        (
            topics.changed_topics().count(),
            topics.deleted_topics().count()
        ),
        (0, 0)
    );
}
