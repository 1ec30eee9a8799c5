//! The messages the store takes in and hands out, and the consume queue unit.

use std::collections::BTreeMap;

/// Bit 31 of [`NewMessage::flags`] / [`StoredMessage::flags`]: set on every record of an atomic
/// batch except the last. Reserved by the store; it is cleared from caller-provided flags.
pub const FLAG_BATCH_CONTINUES: u32 = 1 << 31;

/// A message to append, as the broker hands it over.
#[derive(Clone, Debug, Default)]
pub struct NewMessage {
    /// Topic: non-empty, at most 255 bytes, without `/` or NUL. The broker validates names; the
    /// store also accepts `%` for system topics such as `%RETRY%group`.
    pub topic: String,
    /// Queue of the topic the message goes to.
    pub queue_id: u32,
    /// Unique id given by the broker; indexed (see [`Store::lookup_msg_id`](super::Store::lookup_msg_id)).
    pub msg_id: String,
    /// Optional tag; its [`tag_hash`](super::tag_hash) goes into the consume queue unit.
    pub tag: Option<String>,
    /// Keys, each indexed per topic (see [`Store::lookup_key`](super::Store::lookup_key)).
    pub keys: Vec<String>,
    /// User and system properties.
    pub properties: BTreeMap<String, String>,
    /// The payload, stored byte for byte.
    pub body: Vec<u8>,
    /// Opaque to the store except bit 31 ([`FLAG_BATCH_CONTINUES`]), which it owns.
    pub flags: u32,
    /// When the producer made the message (epoch ms).
    pub born_ts: u64,
    /// How many times the message has been redelivered.
    pub reconsume_times: u32,
}

/// Where and when an appended message was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// Position of the record in the commit log.
    pub commit_offset: u64,
    /// Size of the record in bytes; `commit_offset + size` is where the next record starts.
    pub size: u32,
    /// Position of the message in its topic queue.
    pub queue_offset: u64,
    /// Store time (epoch ms). Non-decreasing in commit log order.
    pub store_ts: u64,
}

/// A message read back from the commit log.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    /// Position of the record in the commit log.
    pub commit_offset: u64,
    /// Size of the record in bytes.
    pub size: u32,
    /// Queue of the topic.
    pub queue_id: u32,
    /// Position in the topic queue.
    pub queue_offset: u64,
    /// Flags as appended (bit 31 is the store's batch continuation bit).
    pub flags: u32,
    /// When the producer made it (epoch ms).
    pub born_ts: u64,
    /// When the store appended it (epoch ms).
    pub store_ts: u64,
    /// How many times it has been redelivered.
    pub reconsume_times: u32,
    /// Topic.
    pub topic: String,
    /// Unique id.
    pub msg_id: String,
    /// Optional tag.
    pub tag: Option<String>,
    /// Keys.
    pub keys: Vec<String>,
    /// Properties.
    pub properties: BTreeMap<String, String>,
    /// Payload.
    pub body: Vec<u8>,
}

/// One 20-byte consume queue unit: where the message at `queue_offset` lives in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CqUnit {
    /// Position in the topic queue (the unit's index).
    pub queue_offset: u64,
    /// Position of the record in the commit log.
    pub commit_offset: u64,
    /// Size of the record in bytes.
    pub size: u32,
    /// [`tag_hash`](super::tag_hash) of the message's tag, 0 without a tag.
    pub tag_hash: u64,
}
