//! The members of a classic group and what the group state machine takes
//! in and gives out: a member's registration (protocols, timeouts, its
//! assignment, whether a JoinGroup or SyncGroup of it is parked), the
//! requests as the state machine sees them, and the answers it produces.
//!
//! Nothing here does I/O: parked requests are named by a [`WaiterId`] that
//! the caller maps to a reply channel.

use bytes::Bytes;

/// Names a parked JoinGroup or SyncGroup request; the caller keeps the
/// channel its answer goes to.
pub type WaiterId = u64;

/// One protocol a member supports (for consumers, an assignor such as
/// `range`), with the member's metadata for it (its subscription).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

/// A member of a group.
#[derive(Clone, Debug)]
pub struct Member {
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// What the leader assigned it in the current generation.
    pub assignment: Bytes,
    /// Its JoinGroup, parked until the rebalance completes.
    pub awaiting_join: Option<WaiterId>,
    /// Its SyncGroup, parked until the leader's assignment is stored.
    pub awaiting_sync: Option<WaiterId>,
    /// Joined in the rebalance in progress and never completed one.
    pub is_new: bool,
    /// When its session expires unless it heartbeats (ms since the epoch).
    pub session_deadline_ms: i64,
}

impl Member {
    /// The metadata this member sent for `protocol` (empty if none).
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Whether this member supports `protocol`.
    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }
}

/// A JoinGroup as the state machine sees it.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    /// v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and a member
    /// id, and must join again with it.
    pub require_known_member_id: bool,
}

/// One member in the leader's JoinGroup answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinResult {
    pub error: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata, for the leader only.
    pub members: Vec<JoinedMember>,
    /// v9: the leader need not assign (a static leader rejoined a stable
    /// group).
    pub skip_assignment: bool,
}

impl JoinResult {
    /// A failed join.
    pub fn error(member_id: &str, error: i16) -> JoinResult {
        JoinResult {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    /// A failed sync.
    pub fn error(error: i16) -> SyncResult {
        SyncResult {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A SyncGroup as the state machine sees it.
#[derive(Clone, Debug)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// From the leader: member id -> assignment.
    pub assignments: Vec<(String, Bytes)>,
}

/// Who a Heartbeat, LeaveGroup or OffsetCommit speaks for.
#[derive(Clone, Debug, Default)]
pub struct MemberRef {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
}
