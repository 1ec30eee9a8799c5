//! The broker's public data types: what goes in, what comes out.
//!
//! These shapes mirror the contract in DESIGN.md ("Contract details") so that the gateway and the
//! SDKs can convert them field by field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Topic permission: who may publish to and consume from a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Perm {
    /// Publish and consume.
    #[default]
    #[serde(rename = "rw")]
    ReadWrite,
    /// Consume only.
    #[serde(rename = "r")]
    Read,
    /// Publish only.
    #[serde(rename = "w")]
    Write,
}

impl Perm {
    /// The wire name: `rw`, `r` or `w`.
    pub fn as_str(self) -> &'static str {
        match self {
            Perm::ReadWrite => "rw",
            Perm::Read => "r",
            Perm::Write => "w",
        }
    }

    /// Parses `rw`, `r` or `w`.
    pub fn parse(s: &str) -> crate::Result<Perm> {
        match s {
            "rw" => Ok(Perm::ReadWrite),
            "r" => Ok(Perm::Read),
            "w" => Ok(Perm::Write),
            other => Err(crate::Error::invalid("/perm", format!("{other:?} is not one of rw, r, w"))),
        }
    }

    /// Whether publishing is allowed.
    pub fn writable(self) -> bool {
        matches!(self, Perm::ReadWrite | Perm::Write)
    }

    /// Whether consuming is allowed.
    pub fn readable(self) -> bool {
        matches!(self, Perm::ReadWrite | Perm::Read)
    }
}

/// A topic as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Number of queues.
    pub queues: u32,
    /// Permission.
    pub perm: Perm,
}

/// Offsets of one queue of a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueOffsets {
    /// Queue id.
    pub queue_id: u32,
    /// Lowest retained offset.
    pub min: u64,
    /// Offset the next message will get.
    pub max: u64,
}

/// A topic with its queues' offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicDetail {
    /// The topic.
    pub topic: TopicInfo,
    /// One entry per queue, in queue order.
    pub queue_offsets: Vec<QueueOffsets>,
}

/// When a message should become visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    /// One of the configured delay levels, 1-based.
    Level(u32),
    /// This many milliseconds after the send.
    Millis(u64),
    /// At this epoch-millisecond time (in the past: at once).
    At(u64),
}

/// A message to publish.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutgoingMessage {
    /// Body bytes.
    pub body: Vec<u8>,
    /// Optional tag, used by tag filters.
    pub tag: Option<String>,
    /// Keys, indexed for lookup.
    pub keys: Vec<String>,
    /// Properties, used by SQL filters.
    pub properties: BTreeMap<String, String>,
    /// Optional delay.
    pub delay: Option<Delay>,
    /// FIFO group: messages with one sharding key always land in one queue.
    pub sharding_key: Option<String>,
    /// `Some(producer_group)` for a transactional (half) message.
    pub transaction: Option<String>,
    /// Deduplication key within the dedup window, per topic.
    pub idempotency_key: Option<String>,
    /// Creation time at the producer (epoch ms); now when absent.
    pub born_ts: Option<u64>,
}

/// What a send returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResult {
    /// The message id, stable for the message's life.
    pub msg_id: String,
    /// Queue it landed in; `None` while delayed or half.
    pub queue_id: Option<u32>,
    /// Its offset in that queue; `None` while delayed or half.
    pub queue_offset: Option<u64>,
    /// Set for transactional sends.
    pub transaction_id: Option<String>,
}

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageState {
    /// Visible in its topic.
    #[serde(rename = "stored")]
    Stored,
    /// Waiting for its delivery time.
    #[serde(rename = "scheduled")]
    Scheduled,
    /// A transactional half message, not yet committed.
    #[serde(rename = "half")]
    Half,
}

/// A message as delivered or looked up ("Message out" in the contract).
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Id, stable through delay, retry, DLQ and resend.
    pub msg_id: String,
    /// The topic it was published to (also for retried and dead letters).
    pub topic: String,
    /// Queue in its topic (`None` while scheduled or half).
    pub queue_id: Option<u32>,
    /// Offset in that queue (`None` while scheduled or half).
    pub queue_offset: Option<u64>,
    /// Offset of the record in the commit log (`None` while scheduled or half).
    pub commit_offset: Option<u64>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Tag.
    pub tag: Option<String>,
    /// Keys.
    pub keys: Vec<String>,
    /// User properties.
    pub properties: BTreeMap<String, String>,
    /// Creation time at the producer, epoch ms.
    pub born_ts: u64,
    /// Time the broker stored it, epoch ms.
    pub store_ts: u64,
    /// How many times it has been redelivered after a failure.
    pub reconsume_times: u32,
    /// Receipt handle when received for a group.
    pub receipt: Option<String>,
    /// Stored, scheduled or half.
    pub state: MessageState,
}

/// Clustering (each message to one member) or broadcasting (to every member).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ConsumeMode {
    /// Each message to one member of the group.
    #[default]
    #[serde(rename = "clustering")]
    Clustering,
    /// Each message to every member.
    #[serde(rename = "broadcasting")]
    Broadcasting,
}

impl ConsumeMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumeMode::Clustering => "clustering",
            ConsumeMode::Broadcasting => "broadcasting",
        }
    }
}

/// Where a group starts on a queue where it has no committed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// The earliest retained message.
    #[default]
    First,
    /// Only messages published from now on.
    Last,
    /// Messages stored at or after this epoch-ms time.
    Timestamp(u64),
}

/// A filter as written by a user: a tag expression or SQL92.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterSpec {
    /// Tag expression (`*`, `A`, `A || B`).
    #[serde(rename = "filter")]
    Tag(String),
    /// SQL92 over properties.
    #[serde(rename = "sql")]
    Sql(String),
}

impl FilterSpec {
    /// The filter as the wire's pair of `filter` (tag expression) and `sql`, one of them set.
    pub fn into_fields(self) -> (Option<String>, Option<String>) {
        match self {
            FilterSpec::Tag(t) => (Some(t), None),
            FilterSpec::Sql(q) => (None, Some(q)),
        }
    }
}

impl Default for FilterSpec {
    fn default() -> Self {
        FilterSpec::Tag("*".to_string())
    }
}

/// How a member reaches the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberTransport {
    /// A WebSocket subscriber run by the gateway.
    #[serde(rename = "ws")]
    Ws,
    /// A REST receiver.
    #[serde(rename = "rest")]
    Rest,
    /// A native client (embedded or over the low-level socket ops).
    #[serde(rename = "native")]
    Native,
}

impl MemberTransport {
    /// The wire name: `ws`, `rest` or `native`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberTransport::Ws => "ws",
            MemberTransport::Rest => "rest",
            MemberTransport::Native => "native",
        }
    }
}

/// A subscription of a group to a topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Topic.
    pub topic: String,
    /// Filter.
    pub filter: FilterSpec,
    /// Mode.
    pub mode: ConsumeMode,
}

/// A live member of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Client id, unique within the group.
    pub client_id: String,
    /// How it is connected.
    pub transport: MemberTransport,
    /// When it joined, epoch ms.
    pub since: u64,
}

/// Committed offset, max and lag of one queue for a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupOffset {
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

/// A group as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSummary {
    /// Name.
    pub group: String,
    /// Number of live members.
    pub members: usize,
    /// Topics it subscribes to or has offsets on.
    pub topics: Vec<String>,
}

/// A group in detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDetail {
    /// Name.
    pub group: String,
    /// Deliveries after which a failing message goes to the DLQ.
    pub max_reconsume_times: u32,
    /// Subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Live members.
    pub members: Vec<MemberInfo>,
    /// Offsets per subscribed queue.
    pub offsets: Vec<GroupOffset>,
}

/// Where to move a group's offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetTarget {
    /// First message stored at or after this epoch-ms time.
    Timestamp(u64),
    /// Earliest retained.
    Earliest,
    /// Latest: skip everything stored so far.
    Latest,
}

/// A low-level pull of one queue.
#[derive(Clone, Debug)]
pub struct PullRequest {
    /// Group pulling (for metrics and the retry topic).
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Queue.
    pub queue_id: u32,
    /// Offset to start from.
    pub offset: u64,
    /// At most this many messages.
    pub max: usize,
    /// Filter applied broker-side.
    pub filter: FilterSpec,
    /// Long-poll wait when nothing matches.
    pub wait: Duration,
}

/// What a pull returns.
#[derive(Clone, Debug)]
pub struct PullResult {
    /// Matching messages, in queue order.
    pub messages: Vec<Message>,
    /// The offset to pull from next (past filtered-out messages too).
    pub next_offset: u64,
    /// Lowest retained offset of the queue.
    pub min_offset: u64,
    /// Next offset to be written in the queue.
    pub max_offset: u64,
}

/// A lease-based receive (simple consumption).
#[derive(Clone, Debug)]
pub struct ReceiveRequest {
    /// Group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Filter; replaces the group's subscription to the topic when different.
    pub filter: FilterSpec,
    /// At most this many messages (1..=1000).
    pub max_messages: usize,
    /// Long-poll wait when nothing is available.
    pub wait: Duration,
    /// How long received messages stay invisible to others.
    pub invisible: Duration,
    /// The receiving member.
    pub client_id: String,
    /// How it is connected.
    pub transport: MemberTransport,
    /// Clustering or broadcasting (broadcasting state is kept per client id).
    pub mode: ConsumeMode,
    /// Where to start on queues without a committed offset.
    pub start: StartPosition,
    /// Orderly: per queue, hand out nothing while an earlier message of it is in flight.
    pub orderly: bool,
}

/// Why an ack or nack of a receipt did not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptFailure {
    /// The broker does not hold this receipt.
    Unknown,
    /// Its invisibility expired; the message went back to the group.
    Expired,
    /// It was acknowledged already.
    Acked,
}

impl ReceiptFailure {
    /// The wire name: `unknown`, `expired` or `acked`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptFailure::Unknown => "unknown",
            ReceiptFailure::Expired => "expired",
            ReceiptFailure::Acked => "acked",
        }
    }
}

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransactionStatus {
    /// Made visible.
    #[serde(rename = "committed")]
    Committed,
    /// Discarded.
    #[serde(rename = "rolled_back")]
    RolledBack,
}

/// The answer to a transaction check or end request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionResolution {
    /// Commit it.
    Commit,
    /// Roll it back.
    Rollback,
    /// Not known yet: ask again later.
    Unknown,
}

impl TransactionResolution {
    /// Parses `commit`, `rollback` or `unknown`.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "commit" => Ok(Self::Commit),
            "rollback" => Ok(Self::Rollback),
            "unknown" => Ok(Self::Unknown),
            other => {
                Err(crate::Error::invalid("/status", format!("{other:?} is not one of commit, rollback, unknown")))
            }
        }
    }
}

/// The outcome of ending a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionOutcome {
    /// Transaction id.
    pub transaction_id: String,
    /// Message id.
    pub msg_id: String,
    /// What happened.
    pub status: TransactionStatus,
}

/// A check-back the broker asks of a producer group about an unresolved half message.
#[derive(Clone, Debug)]
pub struct TransactionCheck {
    /// Transaction id.
    pub transaction_id: String,
    /// Message id.
    pub msg_id: String,
    /// Producer group asked.
    pub producer_group: String,
    /// 1 for the first check.
    pub check_times: u32,
    /// The half message.
    pub message: Message,
}

/// Sizes of the broker's per-message tables, for monitoring: under steady load each stays
/// bounded (by a cap, a time window, or the span between committed and handed-out offsets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableSizes {
    /// Lease consumption states, one per (owner, store topic, queue).
    pub queue_states: usize,
    /// Deliveries in flight.
    pub in_flight: usize,
    /// Runs of offsets done above their queue's committed offset (one entry per contiguous run,
    /// however many offsets it spans).
    pub done_above_committed: usize,
    /// Offsets handed out before that wait to be handed out again.
    pub returned: usize,
    /// Outcomes of ended receipts remembered (at most `MAX_ENDED_RECEIPTS`).
    pub ended_receipts: usize,
    /// Transactions remembered: pending, plus at most `MAX_ENDED_TRANSACTIONS` ended.
    pub transactions: usize,
    /// Ranges of delivered timer offsets above the lowest undelivered timer.
    pub timer_done: usize,
    /// DLQ positions re-sent (within the listed window of each DLQ).
    pub dlq_resent: usize,
    /// Idempotency keys remembered (at most `MAX_DEDUP_KEYS`).
    pub dedup_keys: usize,
    /// Lines of the dedup log (compacted when above twice the keys, plus 1,024).
    pub dedup_log_lines: usize,
}
