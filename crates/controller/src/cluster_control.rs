//! ClusterControl: broker registration, heartbeats and sessions.
//!
//! Replicated broker state (registered, fenced, in controlled shutdown)
//! lives in the image and changes only through records. [`ClusterControl`]
//! holds what is *not* replicated: when each broker last heartbeated, the
//! session timeout, and which brokers asked to shut down. A new active
//! controller starts it afresh with [`ClusterControl::reset`], giving every
//! registered broker a full session.
//!
//! Data enters as the image (the controller's `latest`, including its own
//! uncommitted writes), a registration or heartbeat request, and the time
//! (an [`Instant`] passed in; nothing here reads a clock). What leaves is
//! the records to append plus the response, or a Kafka error. The methods
//! only update the heartbeat bookkeeping; the records change nothing until
//! the caller replays them.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kraft_metadata::{record, MetadataDelta, MetadataImage};
use kraft_proto::controller::{
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerRegistrationRequest,
    BrokerRegistrationResponse,
};
use kraft_proto::metadata::{metadata_record::Record, MetadataRecord, RegisterBrokerRecord};
use uuid::Uuid;

use crate::broker_fencing::{
    controlled_shutdown, fence_broker, leader_count, leave_offline_replicas, unfence_broker,
};
use crate::controller_result::ControllerResult;
use crate::error::{code, ControllerError};

/// Heartbeat sessions of the registered brokers; see the module docs.
#[derive(Debug, Clone)]
pub struct ClusterControl {
    session_timeout: Duration,
    last_heartbeat: HashMap<i32, Instant>,
    shutting_down: HashSet<i32>,
}

impl ClusterControl {
    /// `session_timeout` is `broker.session.timeout.ms`.
    pub fn new(session_timeout: Duration) -> Self {
        Self {
            session_timeout,
            last_heartbeat: HashMap::new(),
            shutting_down: HashSet::new(),
        }
    }

    /// Forgets all sessions and starts a fresh one at `now` for every
    /// registered broker. Call it when this controller becomes active.
    pub fn reset(&mut self, image: &MetadataImage, now: Instant) {
        self.last_heartbeat = image.cluster().brokers().map(|b| (b.id, now)).collect();
        self.shutting_down = image
            .cluster()
            .brokers()
            .filter(|b| b.in_controlled_shutdown)
            .map(|b| b.id)
            .collect();
    }

    /// Whether `broker_id` has asked for a controlled shutdown since it
    /// registered.
    #[cfg(test)]
    pub fn is_shutting_down(&self, broker_id: i32) -> bool {
        self.shutting_down.contains(&broker_id)
    }

    /// When the next unfenced broker's session runs out if it stays silent,
    /// for the caller's timer.
    pub fn next_expiry(&self, image: &MetadataImage) -> Option<Instant> {
        image
            .cluster()
            .unfenced_brokers()
            .filter_map(|b| self.last_heartbeat.get(&b.id))
            .min()
            .map(|t| *t + self.session_timeout)
    }

    fn session_alive(&self, broker_id: i32, now: Instant) -> bool {
        self.last_heartbeat
            .get(&broker_id)
            .is_some_and(|t| now.saturating_duration_since(*t) <= self.session_timeout)
    }

    /// Registers a broker (fenced) with a new epoch. A retry with the
    /// incarnation already registered gets that registration's epoch and no
    /// records. A new incarnation replaces the old one unless the old one is
    /// unfenced with a live session (DUPLICATE_BROKER_REGISTRATION: two
    /// processes claim the id); an unfenced old incarnation is fenced first,
    /// so leadership moves off it.
    ///
    /// The new epoch is `max(image offset, highest registered epoch) + 1`.
    /// The image includes this controller's uncommitted writes but its
    /// offset only moves when batches commit, so the offset alone could
    /// repeat for two registrations in flight; the highest epoch already
    /// handed out (it is in the image as soon as its record is written)
    /// breaks the tie. Epochs are therefore unique and increase, and a
    /// broker whose metadata offset reaches its epoch has seen at least
    /// everything committed before it registered.
    pub fn register_broker(
        &mut self,
        image: &MetadataImage,
        request: &BrokerRegistrationRequest,
        now: Instant,
    ) -> Result<ControllerResult<BrokerRegistrationResponse>, ControllerError> {
        let id = request.broker_id;
        let incarnation = validate_registration(request)?;
        let mut records = Vec::new();
        if let Some(existing) = image.cluster().broker(id) {
            if existing.incarnation_id == incarnation {
                self.last_heartbeat.insert(id, now);
                let response = BrokerRegistrationResponse {
                    broker_epoch: existing.epoch,
                };
                return Ok(ControllerResult::response_only(response));
            }
            if !existing.fenced && self.session_alive(id, now) {
                return Err(ControllerError::new(
                    code(ResponseError::DuplicateBrokerRegistration),
                    format!(
                        "Another broker is registered with broker id {id} (incarnation {}); \
                         retry after its session times out",
                        existing.incarnation_id
                    ),
                ));
            }
            records.extend(fence_broker(image, id));
        }
        let offset = i64::try_from(image.offset()).unwrap_or(i64::MAX);
        let highest = image
            .cluster()
            .brokers()
            .map(|b| b.epoch)
            .max()
            .unwrap_or(0);
        let epoch = offset.max(highest).saturating_add(1);
        records.push(record(Record::RegisterBroker(RegisterBrokerRecord {
            broker_id: id,
            incarnation_id: Bytes::copy_from_slice(incarnation.as_bytes()),
            broker_epoch: epoch,
            endpoints: request.listeners.clone(),
            rack: request.rack.clone(),
            fenced: true,
            in_controlled_shutdown: false,
        })));
        self.last_heartbeat.insert(id, now);
        self.shutting_down.remove(&id);
        let response = BrokerRegistrationResponse {
            broker_epoch: epoch,
        };
        Ok(ControllerResult::new(records, response))
    }

    /// Handles a heartbeat: renews the session, then at most one state
    /// change. Shutting down: move leadership away and, once the broker
    /// leads nothing, fence it and tell it to stop. Fenced, caught up
    /// (metadata offset >= broker epoch) and not asking to stay fenced:
    /// unfence. Unfenced and asking to be fenced: fence. The response
    /// describes the state after the records apply. An unfenced broker's
    /// offline partitions (a failed log dir) then leave ISRs and leadership.
    pub fn heartbeat(
        &mut self,
        image: &MetadataImage,
        request: &BrokerHeartbeatRequest,
        now: Instant,
    ) -> Result<ControllerResult<BrokerHeartbeatResponse>, ControllerError> {
        let id = request.broker_id;
        let broker = image.cluster().broker(id).ok_or_else(|| {
            ControllerError::new(
                code(ResponseError::BrokerIdNotRegistered),
                format!("Broker {id} is not registered."),
            )
        })?;
        if broker.epoch != request.broker_epoch {
            return Err(ControllerError::new(
                code(ResponseError::StaleBrokerEpoch),
                format!(
                    "Broker {id} has epoch {}, but the heartbeat quotes {}.",
                    broker.epoch, request.broker_epoch
                ),
            ));
        }
        self.last_heartbeat.insert(id, now);
        let caught_up = request.current_metadata_offset >= u64::try_from(broker.epoch).unwrap_or(0);

        let (mut records, fenced, should_shutdown) =
            if request.want_shutdown || broker.in_controlled_shutdown {
                self.shutting_down.insert(id);
                if broker.fenced {
                    (Vec::new(), true, true)
                } else {
                    let mut records = controlled_shutdown(image, id);
                    let after = replay(image, &records)?;
                    if leader_count(&after, id) == 0 {
                        records.extend(fence_broker(&after, id));
                        (records, true, true)
                    } else {
                        (records, false, false)
                    }
                }
            } else if broker.fenced {
                if caught_up && !request.want_fence {
                    (unfence_broker(image, id), false, false)
                } else {
                    (Vec::new(), true, false)
                }
            } else if request.want_fence {
                (fence_broker(image, id), true, false)
            } else {
                (Vec::new(), false, false)
            };
        if !fenced && !request.offline_partitions.is_empty() {
            let after = replay(image, &records)?;
            let moves = leave_offline_replicas(&after, id, &request.offline_partitions);
            if !moves.is_empty() {
                tracing::warn!(broker_id = id, dirs = ?request.offline_log_dirs, changes = moves.len(), "moving off replicas in failed log dirs");
            }
            records.extend(moves);
        }
        let response = BrokerHeartbeatResponse {
            is_caught_up: caught_up,
            is_fenced: fenced,
            should_shutdown,
        };
        Ok(ControllerResult::new(records, response))
    }

    /// Fences every unfenced broker whose last heartbeat is more than the
    /// session timeout before `now`. Each broker's records are computed on
    /// the image with the previous brokers' records already replayed, so
    /// the whole list applies cleanly as one batch.
    pub fn expire_sessions(&mut self, image: &MetadataImage, now: Instant) -> Vec<MetadataRecord> {
        self.last_heartbeat
            .retain(|id, _| image.cluster().broker(*id).is_some());
        let mut expired = Vec::new();
        for broker in image.cluster().unfenced_brokers() {
            // A broker with no session yet (registered before reset) gets one.
            let last = *self.last_heartbeat.entry(broker.id).or_insert(now);
            if now.saturating_duration_since(last) > self.session_timeout {
                expired.push(broker.id);
            }
        }
        let mut current = image.clone();
        let mut records = Vec::new();
        for id in expired {
            let fenced = fence_broker(&current, id);
            match replay(&current, &fenced) {
                Ok(next) => {
                    current = next;
                    records.extend(fenced);
                }
                Err(e) => {
                    tracing::error!(broker_id = id, error = %e, "fencing records do not replay");
                    break;
                }
            }
        }
        records
    }
}

fn validate_registration(request: &BrokerRegistrationRequest) -> Result<Uuid, ControllerError> {
    let invalid = |msg: String| {
        Err(ControllerError::new(
            code(ResponseError::InvalidRequest),
            msg,
        ))
    };
    if request.broker_id < 0 {
        return invalid(format!("Broker id {} is negative.", request.broker_id));
    }
    let Ok(incarnation) = Uuid::from_slice(&request.incarnation_id) else {
        return invalid(format!(
            "An incarnation id is 16 bytes, not {}.",
            request.incarnation_id.len()
        ));
    };
    if request.listeners.is_empty() {
        return invalid("A broker must register at least one listener.".into());
    }
    let mut names = HashSet::new();
    for l in &request.listeners {
        if l.name.is_empty() || !names.insert(l.name.as_str()) {
            return invalid(format!("Listener name '{}' is empty or repeated.", l.name));
        }
        if !(1..=65535).contains(&l.port) {
            return invalid(format!("Listener {} has invalid port {}.", l.name, l.port));
        }
    }
    Ok(incarnation)
}

/// `image` with `records` replayed on top (an error here is a bug).
fn replay(
    image: &MetadataImage,
    records: &[MetadataRecord],
) -> Result<MetadataImage, ControllerError> {
    let mut delta = MetadataDelta::new(image.clone());
    for r in records {
        delta.replay(r).map_err(|e| {
            ControllerError::new(code(ResponseError::UnknownServerError), e.to_string())
        })?;
    }
    Ok(delta.apply())
}

#[cfg(test)]
mod tests {
    use kraft_metadata::NO_LEADER;
    use kraft_proto::metadata::Endpoint;

    use super::*;
    use crate::partition_change::test_image::{
        apply, broker, epoch, fence, image, partition, topic,
    };

    const TIMEOUT: Duration = Duration::from_secs(9);

    fn registration(id: i32, incarnation: u128) -> BrokerRegistrationRequest {
        BrokerRegistrationRequest {
            broker_id: id,
            incarnation_id: Bytes::copy_from_slice(Uuid::from_u128(incarnation).as_bytes()),
            listeners: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
                security_protocol: "PLAINTEXT".into(),
            }],
            rack: Some("r1".into()),
        }
    }

    fn beat(id: i32, epoch: i64, offset: u64) -> BrokerHeartbeatRequest {
        BrokerHeartbeatRequest {
            broker_id: id,
            broker_epoch: epoch,
            current_metadata_offset: offset,
            ..Default::default()
        }
    }

    /// Brokers 1-3 unfenced; t-0 [1,2,3] led by 1, t-1 [1,2] led by 1.
    fn cluster() -> MetadataImage {
        let id = Uuid::from_u128(1);
        image(vec![
            broker(1, None),
            broker(2, None),
            broker(3, None),
            topic("t", id),
            partition(id, 0, &[1, 2, 3], &[1, 2, 3], 1),
            partition(id, 1, &[1, 2], &[1, 2], 1),
        ])
    }

    #[test]
    fn registration_is_fenced_idempotent_and_epochs_increase() {
        let mut cc = ClusterControl::new(TIMEOUT);
        let t0 = Instant::now();
        let img = cluster();
        let first = cc.register_broker(&img, &registration(4, 40), t0).unwrap();
        assert_eq!(
            first.response.broker_epoch,
            epoch(3) + 1,
            "above every epoch and offset"
        );
        let Some(Record::RegisterBroker(r)) = &first.records[0].record else {
            panic!("expected a registration: {:?}", first.records);
        };
        assert!(r.fenced && r.rack.as_deref() == Some("r1"));
        let img = apply(&img, &first.records);

        // A retry of the same incarnation: same epoch, nothing to write.
        let retry = cc.register_broker(&img, &registration(4, 40), t0).unwrap();
        assert!(retry.records.is_empty());
        assert_eq!(retry.response.broker_epoch, first.response.broker_epoch);

        // Another registration in flight gets a higher epoch even though the
        // offset has not moved.
        let other = cc.register_broker(&img, &registration(5, 50), t0).unwrap();
        assert!(other.response.broker_epoch > first.response.broker_epoch);

        for bad in [
            registration(-1, 1),
            BrokerRegistrationRequest {
                incarnation_id: Bytes::from_static(b"x"),
                ..registration(6, 1)
            },
            BrokerRegistrationRequest {
                listeners: vec![],
                ..registration(6, 1)
            },
        ] {
            assert_eq!(
                cc.register_broker(&img, &bad, t0).unwrap_err().code,
                code(ResponseError::InvalidRequest)
            );
        }
    }

    #[test]
    fn new_incarnation_waits_for_the_old_session_then_fences_it() {
        let mut cc = ClusterControl::new(TIMEOUT);
        let t0 = Instant::now();
        let img = cluster();
        cc.reset(&img, t0);
        let err = cc
            .register_broker(&img, &registration(1, 77), t0 + TIMEOUT)
            .unwrap_err();
        assert_eq!(err.code, code(ResponseError::DuplicateBrokerRegistration));

        let later = t0 + TIMEOUT + Duration::from_millis(1);
        let result = cc
            .register_broker(&img, &registration(1, 77), later)
            .unwrap();
        // The old incarnation is fenced (its leadership moved) before the
        // new registration record.
        let fence = result
            .records
            .iter()
            .position(|r| matches!(r.record, Some(Record::FenceBroker(_))));
        let register = result
            .records
            .iter()
            .position(|r| matches!(r.record, Some(Record::RegisterBroker(_))));
        assert!(fence.is_some() && fence < register, "{:?}", result.records);
        let after = apply(&img, &result.records);
        let b1 = after.cluster().broker(1).unwrap();
        assert_eq!((b1.incarnation_id, b1.fenced), (Uuid::from_u128(77), true));
        assert_eq!(b1.epoch, result.response.broker_epoch);
        assert_eq!(
            after
                .topics()
                .partition(Uuid::from_u128(1), 0)
                .unwrap()
                .leader,
            2
        );
    }

    #[test]
    fn heartbeat_checks_identity_and_unfences_when_caught_up() {
        let mut cc = ClusterControl::new(TIMEOUT);
        let t0 = Instant::now();
        let img = image(vec![broker(1, None), fence(1)]);
        assert_eq!(
            cc.heartbeat(&img, &beat(2, 1, 0), t0).unwrap_err().code,
            code(ResponseError::BrokerIdNotRegistered)
        );
        assert_eq!(
            cc.heartbeat(&img, &beat(1, 5, 0), t0).unwrap_err().code,
            code(ResponseError::StaleBrokerEpoch)
        );

        let behind = cc.heartbeat(&img, &beat(1, epoch(1), 3), t0).unwrap();
        assert!(behind.records.is_empty());
        assert!(behind.response.is_fenced && !behind.response.is_caught_up);

        let caught_up = cc.heartbeat(&img, &beat(1, epoch(1), 200), t0).unwrap();
        assert!(!caught_up.response.is_fenced && caught_up.response.is_caught_up);
        let img = apply(&img, &caught_up.records);
        assert!(!img.cluster().broker(1).unwrap().fenced);

        let want_fence = BrokerHeartbeatRequest {
            want_fence: true,
            ..beat(1, epoch(1), 200)
        };
        let fenced = cc.heartbeat(&img, &want_fence, t0).unwrap();
        assert!(fenced.response.is_fenced);
        assert!(
            apply(&img, &fenced.records)
                .cluster()
                .broker(1)
                .unwrap()
                .fenced
        );
    }

    #[test]
    fn controlled_shutdown_moves_leadership_then_fences() {
        let mut cc = ClusterControl::new(TIMEOUT);
        let t0 = Instant::now();
        let img = cluster();
        let request = BrokerHeartbeatRequest {
            want_shutdown: true,
            ..beat(1, epoch(1), 200)
        };
        let result = cc.heartbeat(&img, &request, t0).unwrap();
        assert!(cc.is_shutting_down(1));
        assert!(result.response.should_shutdown && result.response.is_fenced);
        let after = apply(&img, &result.records);
        let b1 = after.cluster().broker(1).unwrap();
        assert!(b1.fenced && b1.in_controlled_shutdown);
        assert_eq!(leader_count(&after, 1), 0);
        let p0 = after.topics().partition(Uuid::from_u128(1), 0).unwrap();
        assert_eq!((p0.leader, p0.isr.clone()), (2, vec![2, 3]));
        let shutdown_records = result
            .records
            .iter()
            .filter(|r| matches!(r.record, Some(Record::BrokerControlledShutdown(_))))
            .count();
        assert_eq!(shutdown_records, 1);
        // Asking again changes nothing and still says stop.
        let again = cc.heartbeat(&after, &request, t0).unwrap();
        assert!(again.records.is_empty() && again.response.should_shutdown);
    }

    #[test]
    fn two_sessions_expire_at_once_and_their_records_compose() {
        let mut cc = ClusterControl::new(TIMEOUT);
        let t0 = Instant::now();
        let img = cluster();
        cc.reset(&img, t0);
        let later = t0 + TIMEOUT + Duration::from_secs(1);
        cc.heartbeat(&img, &beat(3, epoch(3), 200), later).unwrap();
        assert!(cc.expire_sessions(&img, t0 + TIMEOUT).is_empty(), "not yet");
        assert_eq!(cc.next_expiry(&img), Some(t0 + TIMEOUT));

        let records = cc.expire_sessions(&img, later);
        let after = apply(&img, &records);
        let fenced: Vec<i32> = after
            .cluster()
            .brokers()
            .filter(|b| b.fenced)
            .map(|b| b.id)
            .collect();
        assert_eq!(fenced, vec![1, 2]);
        let id = Uuid::from_u128(1);
        let p0 = after.topics().partition(id, 0).unwrap();
        assert_eq!((p0.leader, p0.isr.clone()), (3, vec![3]));
        let p1 = after.topics().partition(id, 1).unwrap();
        assert_eq!(
            (p1.leader, p1.isr.clone()),
            (NO_LEADER, vec![2]),
            "last ISR member kept"
        );
        assert!(cc.expire_sessions(&after, later).is_empty());
    }
}
