//! [`GroupPublisher`]: the metadata publisher that tells the group
//! coordinator which `__consumer_offsets` partitions this broker leads (and
//! the transaction coordinator which `__transaction_state` partitions).
//!
//! In: each metadata delta (registered after the replica manager's
//! publisher, so the partition already exists locally). Out:
//! [`Leadership`] events on a channel — `Lead` for a partition this broker
//! now leads (with its leader epoch), `Resign` for one it follows or no
//! longer hosts. The coordinator loads and unloads on its own task, so
//! publishing never waits for a load.

use std::sync::Arc;

use kraft_metadata::{MetadataDelta, MetadataImage, CONSUMER_OFFSETS};
use tokio::sync::mpsc;

use super::Leadership;
use crate::metadata_loader::MetadataPublisher;

/// Publishes `__consumer_offsets` leadership changes to the coordinator.
pub struct GroupPublisher {
    topic: &'static str,
    node_id: i32,
    events: mpsc::UnboundedSender<Leadership>,
}

impl GroupPublisher {
    pub fn new(node_id: i32, events: mpsc::UnboundedSender<Leadership>) -> GroupPublisher {
        GroupPublisher::for_topic(CONSUMER_OFFSETS, node_id, events)
    }

    /// The same for another coordinator's internal topic
    /// (`__transaction_state`).
    pub fn for_topic(
        topic: &'static str,
        node_id: i32,
        events: mpsc::UnboundedSender<Leadership>,
    ) -> GroupPublisher {
        GroupPublisher {
            topic,
            node_id,
            events,
        }
    }

    /// The leadership events a delta means for this broker.
    pub fn events(&self, delta: &MetadataDelta, image: &MetadataImage) -> Vec<Leadership> {
        let Some(topics) = delta.topics() else {
            return Vec::new();
        };
        let changes = topics.local_changes(self.node_id);
        let is_offsets_topic = |id| {
            image
                .topics()
                .topic(id)
                .is_some_and(|t| t.name() == self.topic)
        };
        let mut events = Vec::new();
        for ((_, partition), name) in &changes.deletes {
            if name == self.topic {
                events.push(Leadership::Resign {
                    partition: *partition,
                });
            }
        }
        for (id, partition) in changes.followers.keys() {
            if is_offsets_topic(*id) {
                events.push(Leadership::Resign {
                    partition: *partition,
                });
            }
        }
        for ((id, partition), registration) in &changes.leaders {
            if is_offsets_topic(*id) {
                events.push(Leadership::Lead {
                    partition: *partition,
                    topic_id: *id,
                    leader_epoch: registration.leader_epoch,
                });
            }
        }
        events
    }
}

impl MetadataPublisher for GroupPublisher {
    fn publish(&mut self, delta: &MetadataDelta, image: &Arc<MetadataImage>) {
        for event in self.events(delta, image) {
            // The coordinator is gone only when the broker is stopping.
            let _ = self.events.send(event);
        }
    }
}
