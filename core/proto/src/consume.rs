//! Simple (lease) consumption over REST: receive, ack, nack, change_invisible.

use serde::{Deserialize, Serialize};

/// A lease-based receive.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiveBody {
    /// Topic.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,127}$"))]
    pub topic: String,
    /// Tag expression (default `*`).
    #[serde(default)]
    pub filter: Option<String>,
    /// SQL92 filter over properties, instead of `filter`.
    #[serde(default)]
    pub sql: Option<String>,
    /// At most this many messages (default 16).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub max_messages: Option<u32>,
    /// Long poll: wait up to this long for a first message (default 0).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 30000))]
    pub wait_ms: Option<u64>,
    /// How long received messages stay invisible to others (default 30 000).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1000, maximum = 43200000))]
    pub invisible_ms: Option<u64>,
}

/// Acknowledges receipts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckBody {
    /// Receipts of received messages.
    pub receipts: Vec<String>,
}

/// Why a receipt was not acknowledged or negatively acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Not held by the broker.
    Unknown,
    /// Its invisibility expired; the message went back to the group.
    Expired,
    /// Acknowledged already.
    Acked,
}

/// One receipt that did not apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailedReceipt {
    /// The receipt as given.
    pub receipt: String,
    /// Why.
    pub reason: FailureReason,
}

/// Result of an ack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckResult {
    /// How many receipts were acknowledged.
    pub acked: usize,
    /// The others.
    pub failed: Vec<FailedReceipt>,
}

/// Negatively acknowledges receipts: the messages come back after a delay.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NackBody {
    /// Receipts of received messages.
    pub receipts: Vec<String>,
    /// Redeliver after this long (default: the retry delay of the message's reconsume count).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub delay_ms: Option<u64>,
}

/// Result of a nack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NackResult {
    /// How many receipts were negatively acknowledged.
    pub nacked: usize,
    /// The others.
    pub failed: Vec<FailedReceipt>,
}

/// Extends or shortens a lease.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeInvisibleBody {
    /// The current receipt.
    pub receipt: String,
    /// New invisibility from now.
    #[cfg_attr(feature = "openapi", schema(minimum = 1000, maximum = 43200000))]
    pub invisible_ms: u64,
}

/// A receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptOut {
    /// The new receipt; the old one no longer works.
    pub receipt: String,
}
