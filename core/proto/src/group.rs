//! Consumer groups: listing, detail, settings and offset resets.

use serde::{Deserialize, Serialize};

/// Clustering or broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ModeOut {
    /// Each message to one member.
    #[default]
    Clustering,
    /// Each message to every member.
    Broadcasting,
}

/// How a member is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransportOut {
    /// A WebSocket subscriber.
    Ws,
    /// A REST receiver.
    Rest,
    /// A native client.
    Native,
}

/// A group as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupSummaryOut {
    /// Name.
    pub group: String,
    /// Number of live members.
    pub members: usize,
    /// Topics it subscribes to or has offsets on.
    pub topics: Vec<String>,
}

/// Every group.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupList {
    /// The groups.
    pub groups: Vec<GroupSummaryOut>,
}

/// A subscription: `filter` (tag expression) or `sql`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionOut {
    /// Topic.
    pub topic: String,
    /// Tag expression, when the filter is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// SQL92 expression, when the filter is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Mode.
    pub mode: ModeOut,
}

/// A live member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberOut {
    /// Client id.
    pub client_id: String,
    /// How it is connected.
    pub transport: TransportOut,
    /// When it joined, epoch ms.
    pub since: u64,
}

/// Committed offset, max and lag of one queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupOffsetOut {
    /// Topic.
    pub topic: String,
    /// Queue.
    pub queue_id: u32,
    /// First offset not yet consumed.
    pub committed: u64,
    /// Offset the next message will get.
    pub max: u64,
    /// `max - committed`.
    pub lag: u64,
}

/// A group in detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupDetailOut {
    /// Name.
    pub group: String,
    /// Deliveries after the first before a failing message goes to the DLQ.
    pub max_reconsume_times: u32,
    /// Subscriptions.
    pub subscriptions: Vec<SubscriptionOut>,
    /// Live members.
    pub members: Vec<MemberOut>,
    /// Offsets per queue.
    pub offsets: Vec<GroupOffsetOut>,
}

/// Group settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PutGroup {
    /// Deliveries after the first before a failing message goes to the DLQ.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1000))]
    pub max_reconsume_times: Option<u32>,
}

/// Where to move offsets without a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResetTo {
    /// The earliest retained message.
    Earliest,
    /// Past everything stored so far.
    Latest,
}

/// Moves a group's offsets on one topic: give `timestamp` or `to`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetBody {
    /// Topic.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,127}$"))]
    pub topic: String,
    /// First message stored at or after this epoch-ms time.
    #[serde(default)]
    pub timestamp: Option<u64>,
    /// `earliest` or `latest`.
    #[serde(default)]
    pub to: Option<ResetTo>,
}

/// A queue's new offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueOffsetOut {
    /// Queue.
    pub queue_id: u32,
    /// The group's next offset there.
    pub offset: u64,
}

/// Result of a reset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetResult {
    /// One entry per queue.
    pub offsets: Vec<QueueOffsetOut>,
}
