//! The records the coordinator keeps in `__consumer_offsets`, in Kafka's
//! own key and value schemas (group-coordinator's `OffsetCommitKey`,
//! `OffsetCommitValue`, `GroupMetadataKey`, `GroupMetadataValue`), so a
//! Kafka tool reading the topic understands them.
//!
//! A key starts with an `i16` saying which record it is: 0 or 1 an offset
//! commit (group, topic, partition), 2 group metadata (group). A value
//! starts with its schema version; a null value is a tombstone (the group
//! or offset was deleted). Values are written at version 3 (the last
//! non-flexible one, as Kafka 3.x writes them) and read at any version
//! 0–4 (4 is flexible: compact strings and tagged fields).
//!
//! In: [`CoordinatorRecord`]s to encode, or the key/value bytes of a
//! record read back from the log. Out: the other of the two, or a
//! [`RecordError`] for bytes that do not decode.

use bytes::{BufMut, Bytes, BytesMut};

/// Why a stored record does not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record ends early: {0} needs more bytes")]
    Truncated(&'static str),
    #[error("unknown key version {0}")]
    UnknownKeyVersion(i16),
    #[error("unknown {what} value version {version}")]
    UnknownValueVersion { what: &'static str, version: i16 },
    #[error("{0} is not UTF-8")]
    Utf8(&'static str),
    #[error("{0} is null but must not be")]
    Null(&'static str),
}

/// A committed offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// One member in stored group metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// Stored group metadata: a group's generation and members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

/// One record of `__consumer_offsets`; `None` values are tombstones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorRecord {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetValue>,
    },
    Group {
        group: String,
        value: Option<GroupValue>,
    },
}

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const VALUE_VERSION: i16 = 3;

impl CoordinatorRecord {
    /// The record's key and value bytes.
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut key = Writer::default();
        match self {
            CoordinatorRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                key.i16(OFFSET_KEY_VERSION);
                key.string(group);
                key.string(topic);
                key.i32(*partition);
                (key.done(), value.as_ref().map(encode_offset))
            }
            CoordinatorRecord::Group { group, value } => {
                key.i16(GROUP_KEY_VERSION);
                key.string(group);
                (key.done(), value.as_ref().map(encode_group))
            }
        }
    }

    /// Decodes a stored record.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<CoordinatorRecord, RecordError> {
        let mut k = Reader::new(key, false);
        match k.i16("key version")? {
            0 | 1 => Ok(CoordinatorRecord::Offset {
                group: k.string("group")?,
                topic: k.string("topic")?,
                partition: k.i32("partition")?,
                value: value.map(decode_offset).transpose()?,
            }),
            2 => Ok(CoordinatorRecord::Group {
                group: k.string("group")?,
                value: value.map(decode_group).transpose()?,
            }),
            other => Err(RecordError::UnknownKeyVersion(other)),
        }
    }

    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            CoordinatorRecord::Offset { group, .. } | CoordinatorRecord::Group { group, .. } => {
                group
            }
        }
    }
}

fn encode_offset(v: &OffsetValue) -> Bytes {
    let mut w = Writer::default();
    w.i16(VALUE_VERSION);
    w.i64(v.offset);
    w.i32(v.leader_epoch);
    w.string(&v.metadata);
    w.i64(v.commit_timestamp);
    w.done()
}

fn decode_offset(bytes: &[u8]) -> Result<OffsetValue, RecordError> {
    let version = Reader::new(bytes, false).i16("offset value version")?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnknownValueVersion {
            what: "offset commit",
            version,
        });
    }
    let mut r = Reader::new(&bytes[2..], version >= 4);
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        r.i32("leader epoch")?
    } else {
        -1
    };
    let metadata = r.string("metadata")?;
    let commit_timestamp = r.i64("commit timestamp")?;
    if version == 1 {
        r.i64("expire timestamp")?;
    }
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

fn encode_group(v: &GroupValue) -> Bytes {
    let mut w = Writer::default();
    w.i16(VALUE_VERSION);
    w.string(&v.protocol_type);
    w.i32(v.generation);
    w.nullable_string(v.protocol.as_deref());
    w.nullable_string(v.leader.as_deref());
    w.i64(v.current_state_timestamp);
    w.i32(v.members.len() as i32);
    for m in &v.members {
        w.string(&m.member_id);
        w.nullable_string(m.group_instance_id.as_deref());
        w.string(&m.client_id);
        w.string(&m.client_host);
        w.i32(m.rebalance_timeout);
        w.i32(m.session_timeout);
        w.bytes(&m.subscription);
        w.bytes(&m.assignment);
    }
    w.done()
}

fn decode_group(bytes: &[u8]) -> Result<GroupValue, RecordError> {
    let version = Reader::new(bytes, false).i16("group value version")?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnknownValueVersion {
            what: "group metadata",
            version,
        });
    }
    let mut r = Reader::new(&bytes[2..], version >= 4);
    let protocol_type = r.string("protocol type")?;
    let generation = r.i32("generation")?;
    let protocol = r.nullable_string("protocol")?;
    let leader = r.nullable_string("leader")?;
    let current_state_timestamp = if version >= 2 {
        r.i64("current state timestamp")?
    } else {
        -1
    };
    let count = r.array_len("members")?;
    let mut members = Vec::new();
    for _ in 0..count {
        let member_id = r.string("member id")?;
        let group_instance_id = if version >= 3 {
            r.nullable_string("group instance id")?
        } else {
            None
        };
        let client_id = r.string("client id")?;
        let client_host = r.string("client host")?;
        let rebalance_timeout = if version >= 1 {
            r.i32("rebalance timeout")?
        } else {
            0
        };
        let session_timeout = r.i32("session timeout")?;
        let subscription = r.bytes("subscription")?;
        let assignment = r.bytes("assignment")?;
        r.tagged_fields()?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout: if version >= 1 {
                rebalance_timeout
            } else {
                session_timeout
            },
            session_timeout,
            subscription,
            assignment,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

/// Big-endian, non-flexible writer (the transaction coordinator's records
/// use it too).
#[derive(Default)]
pub(crate) struct Writer(BytesMut);

impl Writer {
    pub(crate) fn i8(&mut self, v: i8) {
        self.0.put_i8(v);
    }
    pub(crate) fn i16(&mut self, v: i16) {
        self.0.put_i16(v);
    }
    pub(crate) fn i32(&mut self, v: i32) {
        self.0.put_i32(v);
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.put_i64(v);
    }
    pub(crate) fn string(&mut self, s: &str) {
        let len = s.len().min(i16::MAX as usize);
        self.0.put_i16(len as i16);
        self.0.put_slice(&s.as_bytes()[..len]);
    }
    fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.0.put_i16(-1),
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.put_i32(b.len() as i32);
        self.0.put_slice(b);
    }
    pub(crate) fn done(self) -> Bytes {
        self.0.freeze()
    }
}

/// A reader of Kafka's primitive types, flexible (compact lengths, tagged
/// fields) or not (the transaction coordinator's records use it too).
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    flexible: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], flexible: bool) -> Reader<'a> {
        Reader { buf, flexible }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        if self.buf.len() < n {
            return Err(RecordError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn i8(&mut self, what: &'static str) -> Result<i8, RecordError> {
        Ok(i8::from_be_bytes(self.fixed(what)?))
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.fixed(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.fixed(what)?))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.fixed(what)?))
    }

    fn varint(&mut self, what: &'static str) -> Result<u32, RecordError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = self.fixed::<1>(what)?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::Truncated(what))
    }

    /// A length: `None` for null.
    fn length(&mut self, what: &'static str, short: bool) -> Result<Option<usize>, RecordError> {
        let n = if self.flexible {
            i64::from(self.varint(what)?) - 1
        } else if short {
            i64::from(self.i16(what)?)
        } else {
            i64::from(self.i32(what)?)
        };
        Ok(usize::try_from(n).ok())
    }

    fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>, RecordError> {
        match self.length(what, true)? {
            None => Ok(None),
            Some(n) => {
                let raw = self.take(n, what)?;
                std::str::from_utf8(raw)
                    .map(|s| Some(s.to_string()))
                    .map_err(|_| RecordError::Utf8(what))
            }
        }
    }

    pub(crate) fn string(&mut self, what: &'static str) -> Result<String, RecordError> {
        self.nullable_string(what)?.ok_or(RecordError::Null(what))
    }

    fn bytes(&mut self, what: &'static str) -> Result<Bytes, RecordError> {
        match self.length(what, false)? {
            None => Ok(Bytes::new()),
            Some(n) => Ok(Bytes::copy_from_slice(self.take(n, what)?)),
        }
    }

    pub(crate) fn array_len(&mut self, what: &'static str) -> Result<usize, RecordError> {
        let n = self.length(what, false)?.unwrap_or(0);
        // Every element takes at least a byte.
        if n > self.buf.len() {
            return Err(RecordError::Truncated(what));
        }
        Ok(n)
    }

    pub(crate) fn tagged_fields(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        for _ in 0..self.varint("tagged fields")? {
            self.varint("tag")?;
            let size = self.varint("tagged field size")? as usize;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
