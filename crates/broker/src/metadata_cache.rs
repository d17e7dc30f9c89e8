//! The broker's [`MetadataCache`]: the latest committed [`MetadataImage`]
//! this broker has applied, and the queries the Kafka handlers ask of it.
//!
//! In: images published on a `tokio::sync::watch` channel by whoever applies
//! the metadata log (the broker's metadata loader; in tests, a controller's
//! own image). Out: `Arc<MetadataImage>` snapshots for handlers — a handler
//! takes one image and answers a whole request from it, so a response is
//! never a mix of two offsets — and [`MetadataCache::wait_for_offset`], which
//! a handler uses after a controller write so that the client's next request
//! sees the change.
//!
//! The query helpers live on the [`CacheQueries`] trait, implemented for
//! [`MetadataImage`], so they work on any snapshot.

use std::sync::Arc;
use std::time::Duration;

use kraft_metadata::{
    BrokerRegistration, Endpoint, MetadataImage, PartitionRegistration, TopicImage,
};
use tokio::sync::watch;

/// A cheap-to-clone handle on the broker's current metadata image.
#[derive(Clone, Debug)]
pub struct MetadataCache {
    images: watch::Receiver<Arc<MetadataImage>>,
}

impl MetadataCache {
    /// A cache that follows the images published on `images`.
    pub fn new(images: watch::Receiver<Arc<MetadataImage>>) -> MetadataCache {
        MetadataCache { images }
    }

    /// The latest image. Answer a whole request from one image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.images.borrow().clone()
    }

    /// The metadata offset of the latest image.
    pub fn offset(&self) -> u64 {
        self.images.borrow().offset()
    }

    /// Waits until the cache has applied `offset` (image offset >= `offset`)
    /// or `timeout` passes. Returns whether the offset was reached. If the
    /// publisher is gone, answers from the last image at once.
    pub async fn wait_for_offset(&self, offset: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |image| image.offset() >= offset)
            .await
    }

    /// Waits until an image satisfies `done` or `timeout` passes. Returns
    /// whether one did. If the publisher is gone, asks the last image.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&MetadataImage) -> bool,
    ) -> bool {
        let mut images = self.images.clone();
        let reached = tokio::time::timeout(timeout, images.wait_for(|image| done(image))).await;
        match reached {
            Ok(Ok(_)) => true,
            Ok(Err(_closed)) => done(&self.image()),
            Err(_elapsed) => false,
        }
    }
}

/// The questions Kafka handlers ask of a metadata image.
pub trait CacheQueries {
    /// Brokers that are registered and not fenced, by id.
    fn alive_brokers(&self) -> Vec<&BrokerRegistration>;
    /// Whether `broker_id` is registered and not fenced.
    fn is_broker_alive(&self, broker_id: i32) -> bool;
    /// The endpoint of `listener` on a registered broker.
    fn broker_endpoint(&self, broker_id: i32, listener: &str) -> Option<&Endpoint>;
    /// The replicas of `partition` that are fenced or not registered.
    fn offline_replicas(&self, partition: &PartitionRegistration) -> Vec<i32>;
    /// A topic by name.
    fn topic_named(&self, name: &str) -> Option<&TopicImage>;
    /// A topic's partitions in id order, if the topic exists.
    fn partitions_of(&self, topic: &str) -> Option<Vec<(i32, &PartitionRegistration)>>;
}

impl CacheQueries for MetadataImage {
    fn alive_brokers(&self) -> Vec<&BrokerRegistration> {
        self.cluster().unfenced_brokers().collect()
    }

    fn is_broker_alive(&self, broker_id: i32) -> bool {
        self.cluster().broker(broker_id).is_some_and(|b| !b.fenced)
    }

    fn broker_endpoint(&self, broker_id: i32, listener: &str) -> Option<&Endpoint> {
        self.cluster().broker(broker_id)?.endpoint(listener)
    }

    fn offline_replicas(&self, partition: &PartitionRegistration) -> Vec<i32> {
        partition
            .replicas
            .iter()
            .copied()
            .filter(|id| !self.is_broker_alive(*id))
            .collect()
    }

    fn topic_named(&self, name: &str) -> Option<&TopicImage> {
        self.topics().topic_by_name(name)
    }

    fn partitions_of(&self, topic: &str) -> Option<Vec<(i32, &PartitionRegistration)>> {
        let topic = self.topics().topic_by_name(topic)?;
        Some(topic.partitions().iter().map(|(id, p)| (*id, p)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_for_offset_sees_later_images() {
        let (tx, rx) = watch::channel(Arc::new(MetadataImage::empty()));
        let cache = MetadataCache::new(rx);
        assert_eq!(cache.offset(), 0);
        assert!(cache.wait_for_offset(0, Duration::from_millis(1)).await);
        assert!(!cache.wait_for_offset(1, Duration::from_millis(10)).await);
        drop(tx);
        assert!(!cache.wait_for_offset(1, Duration::from_secs(5)).await);
    }
}
