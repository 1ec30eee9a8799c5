//! JSON shapes of the REST API and the WebSocket frames ("Contract details" in DESIGN.md), with
//! their OpenAPI schemas and the conversions from and to the broker's types.
//!
//! Field names here are the public contract: add fields freely, never rename one.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ferrymq_core::broker::{
    ConsumeMode, Delay, FilterSpec, GroupDetail, GroupOffset, GroupSummary, MemberInfo, Message, MessageState,
    OutgoingMessage, Perm, QueueOffsets, ReceiptFailure, SendResult, Subscription, TopicDetail, TopicInfo, Transport,
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::problem::{ApiError, ApiResult, FieldError};

/// Treats an explicit `null` like an absent field.
fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// Current time in epoch milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// ---------------------------------------------------------------------------------------------
// Messages out

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStateOut {
    /// Visible in its topic.
    Stored,
    /// Waiting for its delivery time.
    Scheduled,
    /// A transactional half message, not yet committed.
    Half,
}

impl From<MessageState> for MessageStateOut {
    fn from(state: MessageState) -> Self {
        match state {
            MessageState::Stored => MessageStateOut::Stored,
            MessageState::Scheduled => MessageStateOut::Scheduled,
            MessageState::Half => MessageStateOut::Half,
        }
    }
}

/// The fields of [`MessageOut`] that the contract fixes; every one is always present.
pub const MESSAGE_FIELDS: [&str; 15] = [
    "msg_id",
    "topic",
    "queue_id",
    "queue_offset",
    "commit_offset",
    "body_base64",
    "body",
    "tag",
    "keys",
    "properties",
    "born_ts",
    "store_ts",
    "reconsume_times",
    "receipt",
    "state",
];

/// A message as delivered or looked up. Every field is always present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageOut {
    /// Id, stable through delay, retry, DLQ, resend and transaction commit.
    pub msg_id: String,
    /// The topic it was published to (also for retried and dead letters).
    pub topic: String,
    /// Queue in its topic; `null` while scheduled or half.
    #[schema(required = true)]
    pub queue_id: Option<u32>,
    /// Offset in that queue; `null` while scheduled or half.
    #[schema(required = true)]
    pub queue_offset: Option<u64>,
    /// Offset of the record in the commit log; `null` while scheduled or half.
    #[schema(required = true)]
    pub commit_offset: Option<u64>,
    /// The body, base64 (standard alphabet, padded).
    pub body_base64: String,
    /// The body as UTF-8 text, `null` when it is not valid UTF-8.
    #[schema(required = true)]
    pub body: Option<String>,
    /// Tag.
    #[schema(required = true)]
    pub tag: Option<String>,
    /// Keys (indexed for lookup).
    pub keys: Vec<String>,
    /// User properties.
    pub properties: BTreeMap<String, String>,
    /// Creation time at the producer, epoch ms.
    pub born_ts: u64,
    /// Time the broker stored it, epoch ms.
    pub store_ts: u64,
    /// Redeliveries after failures so far.
    pub reconsume_times: u32,
    /// Receipt handle when received for a group, else `null`.
    #[schema(required = true)]
    pub receipt: Option<String>,
    /// `stored`, `scheduled` (delayed) or `half` (uncommitted transaction).
    pub state: MessageStateOut,
}

impl From<Message> for MessageOut {
    fn from(m: Message) -> Self {
        let body_base64 = base64::engine::general_purpose::STANDARD.encode(&m.body);
        let body = String::from_utf8(m.body).ok();
        MessageOut {
            msg_id: m.msg_id,
            topic: m.topic,
            queue_id: m.queue_id,
            queue_offset: m.queue_offset,
            commit_offset: m.commit_offset,
            body_base64,
            body,
            tag: m.tag,
            keys: m.keys,
            properties: m.properties,
            born_ts: m.born_ts,
            store_ts: m.store_ts,
            reconsume_times: m.reconsume_times,
            receipt: m.receipt,
            state: m.state.into(),
        }
    }
}

/// A list of messages.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageList {
    /// The messages, oldest first.
    pub messages: Vec<MessageOut>,
}

impl MessageList {
    /// Converts broker messages.
    pub fn from_messages(messages: Vec<Message>) -> Self {
        MessageList { messages: messages.into_iter().map(MessageOut::from).collect() }
    }
}

// ---------------------------------------------------------------------------------------------
// Publishing

/// A message to publish. Give `body` (text) or `body_base64`, and at most one of
/// `delay_level`, `delay_ms` and `deliver_at`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct PublishMessage {
    /// Body as UTF-8 text.
    #[serde(default)]
    pub body: Option<String>,
    /// Body as base64 (standard alphabet).
    #[serde(default)]
    pub body_base64: Option<String>,
    /// Tag, for tag filters.
    #[serde(default)]
    pub tag: Option<String>,
    /// Keys, indexed for lookup.
    #[serde(default, deserialize_with = "null_as_default")]
    pub keys: Vec<String>,
    /// Properties, for SQL filters.
    #[serde(default, deserialize_with = "null_as_default")]
    pub properties: BTreeMap<String, String>,
    /// Delay level, 1 … number of configured levels.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub delay_level: Option<u32>,
    /// Delay in milliseconds, > 0 and at most `max_delay`.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub delay_ms: Option<u64>,
    /// Delivery time, epoch ms, > 0 and at most `max_delay` ahead; in the past: at once.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub deliver_at: Option<u64>,
    /// FIFO group: one sharding key always lands in one queue.
    #[serde(default)]
    pub sharding_key: Option<String>,
    /// A transactional (half) message; needs `producer_group`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub transaction: bool,
    /// Producer group that answers transaction check-backs.
    #[serde(default)]
    pub producer_group: Option<String>,
    /// Deduplication key within the dedup window, per topic.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// A batch of messages, stored atomically.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PublishBatch {
    /// The messages, in order.
    pub messages: Vec<PublishMessage>,
}

/// The JSON body of a publish: one message or a batch.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PublishRequest {
    /// A batch (`{"messages": [...]}`).
    Batch(PublishBatch),
    /// One message.
    Single(Box<PublishMessage>),
}

/// What the gateway adds to a published message from the request around it.
#[derive(Clone, Debug, Default)]
pub struct PublishContext {
    /// Number of configured delay levels.
    pub delay_levels: usize,
    /// Furthest ahead a delay may reach.
    pub max_delay: Duration,
    /// The `traceparent` header, kept as a property.
    pub traceparent: Option<String>,
}

impl PublishMessage {
    /// Validates and converts to the broker's message. `prefix` is this message's JSON Pointer
    /// (`""` or `/messages/3`); every field error is reported under it.
    pub fn into_outgoing(self, prefix: &str, ctx: &PublishContext) -> ApiResult<OutgoingMessage> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: &str| {
            errors.push(FieldError { field: format!("{prefix}/{field}"), message: message.to_string() });
        };
        let body = match (self.body, self.body_base64) {
            (Some(_), Some(_)) => {
                bad("body_base64", "give body or body_base64, not both");
                Vec::new()
            }
            (Some(text), None) => text.into_bytes(),
            (None, Some(encoded)) => match decode_base64(&encoded) {
                Some(bytes) => bytes,
                None => {
                    bad("body_base64", "is not valid base64");
                    Vec::new()
                }
            },
            (None, None) => {
                bad("body", "one of body or body_base64 is required");
                Vec::new()
            }
        };
        let delays = [self.delay_level.is_some(), self.delay_ms.is_some(), self.deliver_at.is_some()];
        let delay = if delays.iter().filter(|d| **d).count() > 1 {
            bad("delay_ms", "give at most one of delay_level, delay_ms and deliver_at");
            None
        } else if let Some(level) = self.delay_level {
            if level == 0 || level as usize > ctx.delay_levels {
                bad("delay_level", &format!("must be between 1 and {}", ctx.delay_levels));
            }
            Some(Delay::Level(level))
        } else if let Some(ms) = self.delay_ms {
            if ms == 0 {
                bad("delay_ms", "must be greater than 0");
            } else if u128::from(ms) > ctx.max_delay.as_millis() {
                bad("delay_ms", &format!("must be at most max_delay ({} ms)", ctx.max_delay.as_millis()));
            }
            Some(Delay::Millis(ms))
        } else if let Some(at) = self.deliver_at {
            if at == 0 {
                bad("deliver_at", "must be a positive epoch-millisecond time");
            } else if u128::from(at) > u128::from(now_ms()) + ctx.max_delay.as_millis() {
                bad("deliver_at", "must be at most max_delay ahead");
            }
            Some(Delay::At(at))
        } else {
            None
        };
        let transaction = if self.transaction {
            match self.producer_group.filter(|g| !g.is_empty()) {
                Some(group) => Some(group),
                None => {
                    bad("producer_group", "a transactional message needs a producer_group");
                    None
                }
            }
        } else {
            None
        };
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let mut properties = self.properties;
        if let Some(traceparent) = &ctx.traceparent {
            properties.entry("traceparent".to_string()).or_insert_with(|| traceparent.clone());
        }
        Ok(OutgoingMessage {
            body,
            tag: self.tag,
            keys: self.keys,
            properties,
            delay,
            sharding_key: self.sharding_key,
            transaction,
            idempotency_key: self.idempotency_key,
            born_ts: None,
        })
    }
}

/// Decodes standard base64, padded or not.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD.decode(text).or_else(|_| STANDARD_NO_PAD.decode(text)).ok()
}

/// The result of one publish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SendResultOut {
    /// The message id.
    pub msg_id: String,
    /// Queue it landed in; `null` for delayed and transactional sends.
    #[schema(required = true)]
    pub queue_id: Option<u32>,
    /// Offset in that queue; `null` for delayed and transactional sends.
    #[schema(required = true)]
    pub queue_offset: Option<u64>,
    /// Only for transactional sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

impl From<SendResult> for SendResultOut {
    fn from(r: SendResult) -> Self {
        SendResultOut {
            msg_id: r.msg_id,
            queue_id: r.queue_id,
            queue_offset: r.queue_offset,
            transaction_id: r.transaction_id,
        }
    }
}

/// The results of a batch publish, in order.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    /// One result per message.
    pub results: Vec<SendResultOut>,
}

/// What a publish returns: one result, or a batch's results.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PublishResponse {
    /// For a batch.
    Batch(BatchResult),
    /// For one message.
    Single(SendResultOut),
}

// ---------------------------------------------------------------------------------------------
// Topics

/// Topic permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

impl From<Perm> for PermOut {
    fn from(p: Perm) -> Self {
        match p {
            Perm::ReadWrite => PermOut::ReadWrite,
            Perm::Read => PermOut::Read,
            Perm::Write => PermOut::Write,
        }
    }
}

impl From<PermOut> for Perm {
    fn from(p: PermOut) -> Self {
        match p {
            PermOut::ReadWrite => Perm::ReadWrite,
            PermOut::Read => Perm::Read,
            PermOut::Write => Perm::Write,
        }
    }
}

/// Creates a topic.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateTopic {
    /// Name, `[A-Za-z0-9_-]{1,127}`; system names are reserved.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,127}$")]
    pub name: String,
    /// Number of queues (default: the server's `default_queues`).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1024)]
    pub queues: Option<u32>,
    /// Permission (default `rw`).
    #[serde(default)]
    pub perm: Option<PermOut>,
}

/// A topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopicOut {
    /// Name.
    pub name: String,
    /// Number of queues.
    pub queues: u32,
    /// Permission.
    pub perm: PermOut,
}

impl From<TopicInfo> for TopicOut {
    fn from(t: TopicInfo) -> Self {
        TopicOut { name: t.name, queues: t.queues, perm: t.perm.into() }
    }
}

/// Every topic.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicList {
    /// The topics.
    pub topics: Vec<TopicOut>,
}

/// Offsets of one queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueOffsetsOut {
    /// Queue id.
    pub queue_id: u32,
    /// Lowest retained offset.
    pub min: u64,
    /// Offset the next message will get.
    pub max: u64,
}

impl From<QueueOffsets> for QueueOffsetsOut {
    fn from(q: QueueOffsets) -> Self {
        QueueOffsetsOut { queue_id: q.queue_id, min: q.min, max: q.max }
    }
}

/// A topic with its queues' offsets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

impl From<TopicDetail> for TopicDetailOut {
    fn from(d: TopicDetail) -> Self {
        TopicDetailOut {
            name: d.topic.name,
            queues: d.topic.queues,
            perm: d.topic.perm.into(),
            queue_offsets: d.queue_offsets.into_iter().map(Into::into).collect(),
        }
    }
}

/// Filters of a message lookup; each is optional.
#[derive(Clone, Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct FindMessagesQuery {
    /// A key the message carries.
    pub key: Option<String>,
    /// Stored at or after this epoch-ms time.
    pub from_ts: Option<u64>,
    /// Stored before this epoch-ms time.
    pub to_ts: Option<u64>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Simple consumption

/// A lease-based receive.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiveBody {
    /// Topic.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,127}$")]
    pub topic: String,
    /// Tag expression (default `*`).
    #[serde(default)]
    pub filter: Option<String>,
    /// SQL92 filter over properties, instead of `filter`.
    #[serde(default)]
    pub sql: Option<String>,
    /// At most this many messages (default 16).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_messages: Option<u32>,
    /// Long poll: wait up to this long for a first message (default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 30000)]
    pub wait_ms: Option<u64>,
    /// How long received messages stay invisible to others (default 30 000).
    #[serde(default)]
    #[schema(minimum = 1000, maximum = 43200000)]
    pub invisible_ms: Option<u64>,
}

/// Acknowledges receipts.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AckBody {
    /// Receipts of received messages.
    pub receipts: Vec<String>,
}

/// Why a receipt was not acknowledged or negatively acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Not held by the broker.
    Unknown,
    /// Its invisibility expired; the message went back to the group.
    Expired,
    /// Acknowledged already.
    Acked,
}

impl From<ReceiptFailure> for FailureReason {
    fn from(f: ReceiptFailure) -> Self {
        match f {
            ReceiptFailure::Unknown => FailureReason::Unknown,
            ReceiptFailure::Expired => FailureReason::Expired,
            ReceiptFailure::Acked => FailureReason::Acked,
        }
    }
}

/// One receipt that did not apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FailedReceipt {
    /// The receipt as given.
    pub receipt: String,
    /// Why.
    pub reason: FailureReason,
}

/// Result of an ack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AckResult {
    /// How many receipts were acknowledged.
    pub acked: usize,
    /// The others.
    pub failed: Vec<FailedReceipt>,
}

/// Negatively acknowledges receipts: the messages come back after a delay.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NackBody {
    /// Receipts of received messages.
    pub receipts: Vec<String>,
    /// Redeliver after this long (default: the retry delay of the message's reconsume count).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub delay_ms: Option<u64>,
}

/// Result of a nack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NackResult {
    /// How many receipts were negatively acknowledged.
    pub nacked: usize,
    /// The others.
    pub failed: Vec<FailedReceipt>,
}

/// Extends or shortens a lease.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangeInvisibleBody {
    /// The current receipt.
    pub receipt: String,
    /// New invisibility from now.
    #[schema(minimum = 1000, maximum = 43200000)]
    pub invisible_ms: u64,
}

/// A receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptOut {
    /// The new receipt; the old one no longer works.
    pub receipt: String,
}

// ---------------------------------------------------------------------------------------------
// Groups

/// Clustering or broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModeOut {
    /// Each message to one member.
    #[default]
    Clustering,
    /// Each message to every member.
    Broadcasting,
}

impl From<ConsumeMode> for ModeOut {
    fn from(m: ConsumeMode) -> Self {
        match m {
            ConsumeMode::Clustering => ModeOut::Clustering,
            ConsumeMode::Broadcasting => ModeOut::Broadcasting,
        }
    }
}

impl From<ModeOut> for ConsumeMode {
    fn from(m: ModeOut) -> Self {
        match m {
            ModeOut::Clustering => ConsumeMode::Clustering,
            ModeOut::Broadcasting => ConsumeMode::Broadcasting,
        }
    }
}

/// How a member is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransportOut {
    /// A WebSocket subscriber.
    Ws,
    /// A REST receiver.
    Rest,
    /// A native client.
    Native,
}

impl From<Transport> for TransportOut {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Ws => TransportOut::Ws,
            Transport::Rest => TransportOut::Rest,
            Transport::Native => TransportOut::Native,
        }
    }
}

/// A group as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupSummaryOut {
    /// Name.
    pub group: String,
    /// Number of live members.
    pub members: usize,
    /// Topics it subscribes to or has offsets on.
    pub topics: Vec<String>,
}

impl From<GroupSummary> for GroupSummaryOut {
    fn from(g: GroupSummary) -> Self {
        GroupSummaryOut { group: g.group, members: g.members, topics: g.topics }
    }
}

/// Every group.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupList {
    /// The groups.
    pub groups: Vec<GroupSummaryOut>,
}

/// A subscription: `filter` (tag expression) or `sql`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

impl From<Subscription> for SubscriptionOut {
    fn from(s: Subscription) -> Self {
        let (filter, sql) = match s.filter {
            FilterSpec::Tag(t) => (Some(t), None),
            FilterSpec::Sql(q) => (None, Some(q)),
        };
        SubscriptionOut { topic: s.topic, filter, sql, mode: s.mode.into() }
    }
}

/// A live member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberOut {
    /// Client id.
    pub client_id: String,
    /// How it is connected.
    pub transport: TransportOut,
    /// When it joined, epoch ms.
    pub since: u64,
}

impl From<MemberInfo> for MemberOut {
    fn from(m: MemberInfo) -> Self {
        MemberOut { client_id: m.client_id, transport: m.transport.into(), since: m.since }
    }
}

/// Committed offset, max and lag of one queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

impl From<GroupOffset> for GroupOffsetOut {
    fn from(o: GroupOffset) -> Self {
        GroupOffsetOut { topic: o.topic, queue_id: o.queue_id, committed: o.committed, max: o.max, lag: o.lag }
    }
}

/// A group in detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

impl From<GroupDetail> for GroupDetailOut {
    fn from(g: GroupDetail) -> Self {
        GroupDetailOut {
            group: g.group,
            max_reconsume_times: g.max_reconsume_times,
            subscriptions: g.subscriptions.into_iter().map(Into::into).collect(),
            members: g.members.into_iter().map(Into::into).collect(),
            offsets: g.offsets.into_iter().map(Into::into).collect(),
        }
    }
}

/// Group settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct PutGroup {
    /// Deliveries after the first before a failing message goes to the DLQ.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    pub max_reconsume_times: Option<u32>,
}

/// Where to move offsets without a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResetTo {
    /// The earliest retained message.
    Earliest,
    /// Past everything stored so far.
    Latest,
}

/// Moves a group's offsets on one topic: give `timestamp` or `to`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ResetBody {
    /// Topic.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,127}$")]
    pub topic: String,
    /// First message stored at or after this epoch-ms time.
    #[serde(default)]
    pub timestamp: Option<u64>,
    /// `earliest` or `latest`.
    #[serde(default)]
    pub to: Option<ResetTo>,
}

/// A queue's new offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueOffsetOut {
    /// Queue.
    pub queue_id: u32,
    /// The group's next offset there.
    pub offset: u64,
}

/// Result of a reset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResetResult {
    /// One entry per queue.
    pub offsets: Vec<QueueOffsetOut>,
}

// ---------------------------------------------------------------------------------------------
// Transactions, producers, tickets, health

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransactionStatusOut {
    /// Made visible.
    Committed,
    /// Discarded.
    RolledBack,
}

/// The outcome of ending a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransactionOut {
    /// Transaction id.
    pub transaction_id: String,
    /// Message id.
    pub msg_id: String,
    /// `committed` or `rolled_back`.
    pub status: TransactionStatusOut,
}

impl From<ferrymq_core::broker::TransactionOutcome> for TransactionOut {
    fn from(o: ferrymq_core::broker::TransactionOutcome) -> Self {
        TransactionOut {
            transaction_id: o.transaction_id,
            msg_id: o.msg_id,
            status: match o.status {
                ferrymq_core::broker::TransactionStatus::Committed => TransactionStatusOut::Committed,
                ferrymq_core::broker::TransactionStatus::RolledBack => TransactionStatusOut::RolledBack,
            },
        }
    }
}

/// Registers a producer group's check-back URL.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ProducerBody {
    /// `http://` URL the broker POSTs check-backs to.
    pub check_url: String,
}

/// A producer group's registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProducerOut {
    /// Producer group.
    pub group: String,
    /// Its check-back URL.
    pub check_url: String,
}

/// What the broker POSTs to a check URL.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckRequest {
    /// Transaction id.
    pub transaction_id: String,
    /// Message id.
    pub msg_id: String,
    /// Producer group asked.
    pub producer_group: String,
    /// 1 for the first check.
    pub check_times: u32,
    /// The half message.
    pub message: MessageOut,
}

/// What a check URL answers.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckAnswer {
    /// `commit`, `rollback` or `unknown`.
    pub status: String,
}

/// A single-use WebSocket ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TicketOut {
    /// Pass as `?ticket=` to `/v1/ws`.
    pub ticket: String,
    /// Expiry, epoch ms.
    pub expires_at: u64,
}

/// Health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthOut {
    /// `ok`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PublishContext {
        PublishContext { delay_levels: 18, max_delay: Duration::from_secs(3600), traceparent: None }
    }

    #[test]
    fn body_and_base64_together_are_rejected_under_the_prefix() {
        let msg = PublishMessage { body: Some("a".into()), body_base64: Some("YQ==".into()), ..Default::default() };
        let Err(ApiError::Invalid(errors)) = msg.into_outgoing("/messages/2", &ctx()) else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "/messages/2/body_base64");
    }

    #[test]
    fn base64_body_is_decoded() {
        let msg = PublishMessage { body_base64: Some("AP8=".into()), ..Default::default() };
        let out = msg.into_outgoing("", &ctx()).expect("valid");
        assert_eq!(out.body, vec![0, 255]);
    }

    #[test]
    fn traceparent_becomes_a_property() {
        let msg = PublishMessage { body: Some("x".into()), ..Default::default() };
        let ctx = PublishContext { traceparent: Some("00-abc-def-01".into()), ..ctx() };
        let out = msg.into_outgoing("", &ctx).expect("valid");
        assert_eq!(out.properties.get("traceparent").map(String::as_str), Some("00-abc-def-01"));
    }

    #[test]
    fn two_delays_are_rejected() {
        let msg =
            PublishMessage { body: Some("x".into()), delay_level: Some(1), delay_ms: Some(5), ..Default::default() };
        assert!(matches!(msg.into_outgoing("", &ctx()), Err(ApiError::Invalid(_))));
    }

    #[test]
    fn transaction_needs_a_producer_group() {
        let msg = PublishMessage { body: Some("x".into()), transaction: true, ..Default::default() };
        let Err(ApiError::Invalid(errors)) = msg.into_outgoing("", &ctx()) else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "/producer_group");
    }

    #[test]
    fn message_out_has_every_field() {
        let m = Message {
            msg_id: "id".into(),
            topic: "t".into(),
            queue_id: None,
            queue_offset: None,
            commit_offset: None,
            body: vec![0xff],
            tag: None,
            keys: vec![],
            properties: BTreeMap::new(),
            born_ts: 1,
            store_ts: 2,
            reconsume_times: 0,
            receipt: None,
            state: MessageState::Scheduled,
        };
        let json = serde_json::to_value(MessageOut::from(m)).expect("serializes");
        for field in MESSAGE_FIELDS {
            assert!(json.get(field).is_some(), "{field} missing");
        }
        assert!(json["body"].is_null());
        assert_eq!(json["body_base64"], "/w==");
        assert_eq!(json["state"], "scheduled");
    }
}
