//! Registered brokers: [`ClusterImage`] and the [`ClusterDelta`] that
//! broker lifecycle records (register, fence, unfence, controlled shutdown,
//! unregister) are replayed into.
//!
//! A registration is identified by its broker epoch (the Raft offset of its
//! `RegisterBrokerRecord`). Every later record about the broker quotes that
//! epoch; a record quoting another epoch refers to an older incarnation and
//! is rejected as stale.

use std::collections::BTreeSet;

use imbl::OrdMap;
use kraft_proto::metadata::{
    self as pb, metadata_record::Record, MetadataRecord, RegisterBrokerRecord,
};
use uuid::Uuid;

use crate::record::{parse_uuid, uuid_bytes};
use crate::{record, MetadataError};

/// A listener a broker advertises, e.g. `PLAINTEXT://10.0.0.1:9092`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: String,
}

/// One broker's current registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: i32,
    /// New each time the broker process starts.
    pub incarnation_id: Uuid,
    /// The Raft offset of the registering record.
    pub epoch: i64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

impl BrokerRegistration {
    fn from_record(r: &RegisterBrokerRecord) -> Result<Self, MetadataError> {
        let endpoints = r
            .endpoints
            .iter()
            .map(|e| {
                let port = u16::try_from(e.port).map_err(|_| MetadataError::InvalidPort {
                    broker_id: r.broker_id,
                    endpoint: e.name.clone(),
                    port: e.port,
                })?;
                Ok(Endpoint {
                    name: e.name.clone(),
                    host: e.host.clone(),
                    port,
                    security_protocol: e.security_protocol.clone(),
                })
            })
            .collect::<Result<Vec<_>, MetadataError>>()?;
        Ok(Self {
            id: r.broker_id,
            incarnation_id: parse_uuid("incarnation_id", &r.incarnation_id)?,
            epoch: r.broker_epoch,
            endpoints,
            rack: r.rack.clone(),
            fenced: r.fenced,
            in_controlled_shutdown: r.in_controlled_shutdown,
        })
    }

    /// The record that recreates this registration exactly.
    pub fn to_record(&self) -> MetadataRecord {
        record(Record::RegisterBroker(RegisterBrokerRecord {
            broker_id: self.id,
            incarnation_id: uuid_bytes(self.incarnation_id),
            broker_epoch: self.epoch,
            endpoints: self
                .endpoints
                .iter()
                .map(|e| pb::Endpoint {
                    name: e.name.clone(),
                    host: e.host.clone(),
                    port: i32::from(e.port),
                    security_protocol: e.security_protocol.clone(),
                })
                .collect(),
            rack: self.rack.clone(),
            fenced: self.fenced,
            in_controlled_shutdown: self.in_controlled_shutdown,
        }))
    }

    /// The endpoint of the listener called `name`, if the broker has one.
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}

/// Registered brokers by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterImage {
    brokers: OrdMap<i32, BrokerRegistration>,
}

impl ClusterImage {
    /// No registered brokers.
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// Every registered broker, by id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> + '_ {
        self.brokers.values()
    }

    /// Registered brokers that are not fenced, by id.
    pub fn unfenced_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> + '_ {
        self.brokers.values().filter(|b| !b.fenced)
    }

    pub fn len(&self) -> usize {
        self.brokers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.brokers.is_empty()
    }

    /// Appends one `RegisterBrokerRecord` per broker, carrying its current
    /// fencing and shutdown state.
    pub fn write_records(&self, out: &mut Vec<MetadataRecord>) {
        out.extend(self.brokers.values().map(BrokerRegistration::to_record));
    }
}

/// Changes to [`ClusterImage`]: a working copy plus the broker ids touched.
#[derive(Debug, Clone)]
pub struct ClusterDelta {
    image: ClusterImage,
    changed: BTreeSet<i32>,
}

impl ClusterDelta {
    pub fn new(base: ClusterImage) -> Self {
        Self {
            image: base,
            changed: BTreeSet::new(),
        }
    }

    /// A delta whose result is `image`, reporting `changed` (built by
    /// [`MetadataDelta::between`](crate::MetadataDelta::between)).
    pub(crate) fn from_diff(image: ClusterImage, changed: BTreeSet<i32>) -> Self {
        Self { image, changed }
    }

    /// Registers a broker, replacing any previous registration of its id.
    pub(crate) fn replay_register(
        &mut self,
        r: &RegisterBrokerRecord,
    ) -> Result<(), MetadataError> {
        let registration = BrokerRegistration::from_record(r)?;
        self.image.brokers.insert(r.broker_id, registration);
        self.changed.insert(r.broker_id);
        Ok(())
    }

    pub(crate) fn replay_unregister(
        &mut self,
        r: &pb::UnregisterBrokerRecord,
    ) -> Result<(), MetadataError> {
        self.current(r.broker_id, r.broker_epoch)?;
        self.image.brokers.remove(&r.broker_id);
        self.changed.insert(r.broker_id);
        Ok(())
    }

    pub(crate) fn replay_fence(&mut self, r: &pb::FenceBrokerRecord) -> Result<(), MetadataError> {
        self.modify(r.broker_id, r.broker_epoch, |b| b.fenced = true)
    }

    pub(crate) fn replay_unfence(
        &mut self,
        r: &pb::UnfenceBrokerRecord,
    ) -> Result<(), MetadataError> {
        self.modify(r.broker_id, r.broker_epoch, |b| b.fenced = false)
    }

    pub(crate) fn replay_controlled_shutdown(
        &mut self,
        r: &pb::BrokerControlledShutdownRecord,
    ) -> Result<(), MetadataError> {
        self.modify(r.broker_id, r.broker_epoch, |b| {
            b.in_controlled_shutdown = true
        })
    }

    /// The registration of `broker_id`, if `epoch` is its current epoch.
    fn current(&self, broker_id: i32, epoch: i64) -> Result<&BrokerRegistration, MetadataError> {
        let current = self
            .image
            .brokers
            .get(&broker_id)
            .ok_or(MetadataError::UnknownBroker { broker_id })?;
        if current.epoch != epoch {
            return Err(MetadataError::StaleBrokerEpoch {
                broker_id,
                record_epoch: epoch,
                current_epoch: current.epoch,
            });
        }
        Ok(current)
    }

    fn modify(
        &mut self,
        broker_id: i32,
        epoch: i64,
        change: impl FnOnce(&mut BrokerRegistration),
    ) -> Result<(), MetadataError> {
        let mut updated = self.current(broker_id, epoch)?.clone();
        change(&mut updated);
        self.image.brokers.insert(broker_id, updated);
        self.changed.insert(broker_id);
        Ok(())
    }

    /// The brokers this delta touched, with their new registration (`None`
    /// = unregistered).
    pub fn changed_brokers(&self) -> impl Iterator<Item = (i32, Option<&BrokerRegistration>)> + '_ {
        self.changed.iter().map(|id| (*id, self.image.broker(*id)))
    }

    /// The state so far, as it will be after [`apply`](Self::apply).
    pub fn image(&self) -> &ClusterImage {
        &self.image
    }

    pub fn apply(self) -> ClusterImage {
        self.image
    }
}
