//! Topics: create, list, detail, and message lookups.

use serde::{Deserialize, Serialize};

/// Topic permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PermOut {
    /// Publish and consume.
    #[serde(rename = "rw")]
    ReadWrite,
    /// Consume only.
    #[serde(rename = "r")]
    Read,
    /// Publish only.
    #[serde(rename = "w")]
    Write,
}

/// Creates a topic.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateTopic {
    /// Name, `[A-Za-z0-9_-]{1,127}`; system names are reserved.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,127}$"))]
    pub name: String,
    /// Number of queues (default: the server's `default_queues`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1024))]
    pub queues: Option<u32>,
    /// Permission (default `rw`).
    #[serde(default)]
    pub perm: Option<PermOut>,
}

/// A topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicOut {
    /// Name.
    pub name: String,
    /// Number of queues.
    pub queues: u32,
    /// Permission.
    pub perm: PermOut,
}

/// Every topic.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicList {
    /// The topics.
    pub topics: Vec<TopicOut>,
}

/// Offsets of one queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueOffsetsOut {
    /// Queue id.
    pub queue_id: u32,
    /// Lowest retained offset.
    pub min: u64,
    /// Offset the next message will get.
    pub max: u64,
}

/// A topic with its queues' offsets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicDetailOut {
    /// Name.
    pub name: String,
    /// Number of queues.
    pub queues: u32,
    /// Permission.
    pub perm: PermOut,
    /// One entry per queue.
    pub queue_offsets: Vec<QueueOffsetsOut>,
}

/// Filters of a message lookup; each is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams, utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct FindMessagesQuery {
    /// A key the message carries.
    pub key: Option<String>,
    /// Stored at or after this epoch-ms time.
    pub from_ts: Option<u64>,
    /// Stored before this epoch-ms time.
    pub to_ts: Option<u64>,
    /// At most this many (default 100).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000))]
    pub limit: Option<u32>,
}
