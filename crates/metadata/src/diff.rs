//! The difference between two images, as the [`MetadataDelta`] publishers
//! already understand: what a broker publishes when it loads a snapshot
//! over the image it has ([`MetadataDelta::between`]).
//!
//! In: the current image and the snapshot's. Out: one sub-delta per concern
//! that differs, whose result is the snapshot's sub-image and whose change
//! sets say what differs. As in Kafka's `MetadataLoader` (each sub-delta's
//! `finishSnapshot`), anything the snapshot does not hold is gone: a topic
//! (deleted), a partition's replica on a broker (moved away), a broker
//! registration (unregistered), a config resource or key, a feature. Only
//! what differs is reported, so a partition whose registration is the same
//! in both images is left alone.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::{
    ClusterDelta, ClusterImage, ConfigResource, ConfigurationsDelta, ConfigurationsImage,
    FeaturesDelta, FeaturesImage, TopicImage, TopicsDelta, TopicsImage,
};

/// The features whose level differs (removed ones included); `None` if
/// none does.
pub(crate) fn features(base: &FeaturesImage, target: &FeaturesImage) -> Option<FeaturesDelta> {
    if base == target {
        return None;
    }
    let changed: BTreeSet<String> = base
        .iter()
        .chain(target.iter())
        .map(|(name, _)| name)
        .filter(|name| base.level(name) != target.level(name))
        .map(str::to_owned)
        .collect();
    Some(FeaturesDelta::from_diff(target.clone(), changed))
}

/// The brokers whose registration differs: new, changed, or unregistered.
pub(crate) fn cluster(base: &ClusterImage, target: &ClusterImage) -> Option<ClusterDelta> {
    if base == target {
        return None;
    }
    let changed: BTreeSet<i32> = base
        .brokers()
        .chain(target.brokers())
        .map(|b| b.id)
        .filter(|id| base.broker(*id) != target.broker(*id))
        .collect();
    Some(ClusterDelta::from_diff(target.clone(), changed))
}

/// The config resources whose keys differ (a resource with no keys left is
/// reported with none).
pub(crate) fn configs(
    base: &ConfigurationsImage,
    target: &ConfigurationsImage,
) -> Option<ConfigurationsDelta> {
    if base == target {
        return None;
    }
    let changed: BTreeSet<ConfigResource> = base
        .resources()
        .chain(target.resources())
        .map(|(resource, _)| resource)
        .filter(|resource| base.resource(resource) != target.resource(resource))
        .cloned()
        .collect();
    Some(ConfigurationsDelta::from_diff(target.clone(), changed))
}

/// Topics by id: one only in `target` is created; one only in `base` is
/// deleted; one in both has its differing partitions changed (those it
/// lost included). A topic id whose name differs is deleted and created
/// again, as a replay would report it.
pub(crate) fn topics(base: &TopicsImage, target: &TopicsImage) -> Option<TopicsDelta> {
    if base == target {
        return None;
    }
    let all_partitions = |t: &TopicImage| t.partitions().keys().copied().collect::<BTreeSet<_>>();
    let mut changed: BTreeMap<Uuid, BTreeSet<i32>> = BTreeMap::new();
    let mut created = BTreeSet::new();
    let mut deleted = BTreeSet::new();
    for topic in target.topics() {
        let id = topic.id();
        match base.topic(id) {
            Some(old) if old.name() == topic.name() => {
                if old.partitions() == topic.partitions() {
                    continue;
                }
                let differing: BTreeSet<i32> = old
                    .partitions()
                    .keys()
                    .chain(topic.partitions().keys())
                    .copied()
                    .filter(|p| old.partition(*p) != topic.partition(*p))
                    .collect();
                changed.insert(id, differing);
            }
            Some(_) => {
                deleted.insert(id);
                created.insert(id);
                changed.insert(id, all_partitions(topic));
            }
            None => {
                created.insert(id);
                changed.insert(id, all_partitions(topic));
            }
        }
    }
    deleted.extend(
        base.topics()
            .map(TopicImage::id)
            .filter(|id| target.topic(*id).is_none()),
    );
    Some(TopicsDelta::from_diff(
        base.clone(),
        target.clone(),
        changed,
        created,
        deleted,
    ))
}
