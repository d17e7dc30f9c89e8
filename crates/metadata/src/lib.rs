//! Kraft's cluster metadata as data: the immutable [`MetadataImage`], the
//! [`MetadataDelta`] that records are replayed into, and the [`snapshot`]
//! file format. Shared by the controller and the broker.
//!
//! It is also the one home of Kafka's rules that both sides apply: the
//! topic configs ([`topic_config`], with their types and checks in
//! [`config_kind`]) and the topic names ([`topic_name`]).
//!
//! Pure code: no I/O, no threads, no async.
//!
//! # How data moves through it
//!
//! - **In:** metadata records (`kraft_proto::metadata::MetadataRecord`),
//!   one committed Raft entry ([`RecordBatch`](kraft_proto::metadata::RecordBatch))
//!   at a time, through [`MetadataDelta::replay_batch`], or a snapshot's
//!   bytes through [`snapshot::decode`].
//! - **Out:** a new [`MetadataImage`] from [`MetadataDelta::apply`], plus,
//!   before applying, what changed (`delta.topics()`, `delta.cluster()`, ...)
//!   for publishers; records again from [`MetadataImage::to_records`]; and
//!   snapshot bytes from [`snapshot::encode`].
//! - **Between two images** (a snapshot loaded over the image a broker
//!   has): [`MetadataDelta::between`], the delta whose publishers see
//!   everything the snapshot added, changed or no longer holds.
//!
//! An image is made of one sub-image per concern ([`FeaturesImage`],
//! [`ClusterImage`], [`TopicsImage`], [`ConfigurationsImage`]), each built on
//! persistent maps, so cloning an image is cheap and an applied delta shares
//! every sub-image it did not touch with its base.
//!
//! ```
//! use kraft_metadata::{record, MetadataDelta, MetadataImage};
//! use kraft_proto::metadata::{metadata_record::Record, FeatureLevelRecord, RecordBatch};
//!
//! let batch = RecordBatch {
//!     records: vec![record(Record::FeatureLevel(FeatureLevelRecord {
//!         name: "metadata.version".into(),
//!         feature_level: 1,
//!     }))],
//! };
//! let mut delta = MetadataDelta::new(MetadataImage::empty());
//! delta.replay_batch(1, &batch)?;
//! let image = delta.apply();
//! assert_eq!(image.offset(), 1);
//! assert_eq!(image.features().level("metadata.version"), Some(1));
//! # Ok::<(), kraft_metadata::MetadataError>(())
//! ```

#![forbid(unsafe_code)]

mod cluster;
pub mod config_kind;
mod configs;
mod delta;
mod diff;
mod error;
mod features;
mod image;
pub mod partition;
mod producer_ids;
mod record;
pub mod snapshot;
pub mod topic_config;
pub mod topic_name;
mod topics;
mod topics_delta;

pub use cluster::{BrokerRegistration, ClusterDelta, ClusterImage, Endpoint};
pub use config_kind::{list_items, ConfigKind, ConfigType, InvalidConfig};
pub use configs::{ConfigResource, ConfigurationsDelta, ConfigurationsImage, ResourceConfigs};
pub use delta::MetadataDelta;
pub use error::{MetadataError, SnapshotError};
pub use features::{FeaturesDelta, FeaturesImage};
pub use image::MetadataImage;
pub use kraft_proto::metadata::ConfigResourceType;
pub use partition::{PartitionRegistration, NO_LEADER};
pub use producer_ids::ProducerIdsImage;
pub use record::{record, RECORD_VERSION};
pub use topic_config::{
    topic_config, validate_topic_config, TopicConfigDef, TopicConfigError, TOPIC_CONFIGS,
};
pub use topic_name::{
    is_internal, validate_topic_name, InvalidTopicName, CONSUMER_OFFSETS, TRANSACTION_STATE,
};
pub use topics::{TopicImage, TopicsImage};
pub use topics_delta::{LocalReplicaChanges, TopicsDelta};
