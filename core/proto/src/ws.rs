//! The frames of the WebSocket protocol (`/v1/ws`, documented in `openapi/asyncapi.yaml`):
//! JSON text frames with an `op` field. [`ClientFrame`] is what a client may send,
//! [`ServerFrame`] what the server sends. Both serialize and deserialize, so the gateway and
//! the native clients share them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::group::{MemberOut, ModeOut};
use crate::json::from_value;
use crate::message::{MessageOut, PublishBatch, PublishMessage, PublishRequest, SendResultOut};
use crate::problem::{FieldError, Problem};
use crate::transaction::TransactionStatusOut;

/// Names of the client ops, for the error on an unknown one.
pub const OPS: &[&str] = &[
    "subscribe",
    "ack",
    "nack",
    "credit",
    "unsubscribe",
    "publish",
    "register_producer",
    "end_transaction",
    "heartbeat",
    "pull",
    "commit",
    "lock",
    "unlock",
    "send_back",
    "query_offset",
];

/// Where a new subscription starts: `"first"`, `"last"` or `{"timestamp": ms}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StartIn {
    /// `first` or `last`.
    Named(StartName),
    /// Messages stored at or after this time.
    At {
        /// Epoch ms.
        timestamp: u64,
    },
}

/// A named start position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartName {
    /// The earliest retained message.
    First,
    /// Only messages published from now on.
    Last,
}

/// `subscribe`: join `group` on `topic` as a full member; messages arrive as `message` frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscribeFrame {
    /// Subscription id chosen by the client, echoed on its frames.
    pub id: String,
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Tag expression (default `*`).
    #[serde(default)]
    pub filter: Option<String>,
    /// SQL92 filter, instead of `filter`.
    #[serde(default)]
    pub sql: Option<String>,
    /// Clustering (default) or broadcasting.
    #[serde(default)]
    pub mode: Option<ModeOut>,
    /// Where to start where the group has no committed offset (default `first`).
    #[serde(default)]
    pub start: Option<StartIn>,
    /// Orderly: per queue, nothing new while an earlier message is in flight.
    #[serde(default)]
    pub orderly: Option<bool>,
    /// Window: most messages in flight (default 100).
    #[serde(default)]
    pub credits: Option<u32>,
    /// Lease of each delivered message (default 30 000 ms).
    #[serde(default)]
    pub invisible_ms: Option<u64>,
    /// The member's id (default: the connection's). A broadcasting member that names a stable
    /// one keeps its position across reconnects.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// `ack`: a delivered message is done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AckFrame {
    /// Its receipt.
    pub receipt: String,
}

/// `nack`: a delivered message failed; it comes back after `delay_ms` or the retry delay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NackFrame {
    /// Its receipt.
    pub receipt: String,
    /// Redelivery delay.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// `credit`: widens a subscription's window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreditFrame {
    /// Subscription id.
    pub id: String,
    /// How many more messages may be in flight.
    pub n: u32,
}

/// `unsubscribe`: ends a subscription.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnsubscribeFrame {
    /// Subscription id.
    pub id: String,
}

/// `publish`: one message (the fields of a JSON publish) or `messages` (a batch).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PublishFrame {
    /// Request id, echoed on `published` or `error`.
    pub req_id: String,
    /// Topic.
    pub topic: String,
    /// The rest of the frame: a message, or `{"messages": [...], "idempotency_key"?}`.
    #[serde(flatten)]
    pub body: PublishBody,
}

/// What a `publish` frame publishes: its own fields are those of one message, unless it has
/// `messages`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PublishBody {
    /// `messages`, stored atomically; `idempotency_key` makes the whole batch idempotent.
    Batch {
        /// The messages, in order.
        messages: Vec<PublishMessage>,
        /// Deduplication key of the whole batch.
        #[serde(skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
    },
    /// One message.
    Single(Box<PublishMessage>),
}

impl PublishFrame {
    /// A frame publishing one message.
    pub fn single(req_id: String, topic: String, message: PublishMessage) -> Self {
        PublishFrame { req_id, topic, body: PublishBody::Single(Box::new(message)) }
    }

    /// A frame publishing a batch.
    pub fn batch(req_id: String, topic: String, batch: PublishBatch) -> Self {
        PublishFrame { req_id, topic, body: PublishBody::Batch { messages: batch.messages, idempotency_key: None } }
    }
}

/// A `publish` frame read in one pass, straight into its types: the frame's own keys, the
/// message's fields and the batch's. A key given twice keeps its last value, as in a `Value`
/// tree. Every error (a wrong type, a key this reading does not know to be the message's)
/// sends the frame the general way, which words the error.
#[derive(Default)]
struct HotPublish {
    op: Option<String>,
    id: Option<String>,
    req_id: Option<String>,
    topic: Option<String>,
    message: PublishMessage,
    messages: Option<Vec<PublishMessage>>,
}

impl<'de> Deserialize<'de> for HotPublish {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_map(HotPublishVisitor)
    }
}

struct HotPublishVisitor;

impl<'de> serde::de::Visitor<'de> for HotPublishVisitor {
    type Value = HotPublish;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a publish frame")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<HotPublish, A::Error> {
        let mut frame = HotPublish::default();
        let m = &mut frame.message;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "op" => frame.op = Some(map.next_value()?),
                "id" => frame.id = map.next_value::<Value>()?.as_str().map(String::from),
                "req_id" => frame.req_id = Some(map.next_value()?),
                "topic" => frame.topic = Some(map.next_value()?),
                "messages" => frame.messages = Some(map.next_value()?),
                "body" => m.body = map.next_value()?,
                "body_base64" => m.body_base64 = map.next_value()?,
                "tag" => m.tag = map.next_value()?,
                "keys" => m.keys = map.next_value::<Option<_>>()?.unwrap_or_default(),
                "properties" => m.properties = map.next_value::<Option<_>>()?.unwrap_or_default(),
                "delay_level" => m.delay_level = map.next_value()?,
                "delay_ms" => m.delay_ms = map.next_value()?,
                "deliver_at" => m.deliver_at = map.next_value()?,
                "sharding_key" => m.sharding_key = map.next_value()?,
                "transaction" => m.transaction = map.next_value::<Option<_>>()?.unwrap_or_default(),
                "producer_group" => m.producer_group = map.next_value()?,
                "idempotency_key" => m.idempotency_key = map.next_value()?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(frame)
    }
}

impl HotPublish {
    /// The frame, when it is a whole `publish` frame.
    fn into_frame(self) -> Option<(ClientFrame, FrameIds)> {
        let HotPublish { op, id, req_id, topic, message, messages } = self;
        if op.as_deref() != Some("publish") {
            return None;
        }
        let (req_id, topic) = (req_id?, topic?);
        let ids = FrameIds { id, req_id: Some(req_id.clone()) };
        let body = match messages {
            Some(messages) => PublishBody::Batch { messages, idempotency_key: message.idempotency_key },
            None => PublishBody::Single(Box::new(message)),
        };
        Some((ClientFrame::Publish(PublishFrame { req_id, topic, body }), ids))
    }
}

impl PublishRequest {
    /// A REST publish body read in one pass, the way a `publish` frame is: a batch when it has
    /// `messages`, else one message. `None` when it does not read so; the caller then reads it
    /// the general way, which words the error. A frame's own keys (`op`, `req_id`, `topic`)
    /// mean nothing here and are skipped like any other unknown key.
    pub fn parse_hot(body: &[u8]) -> Option<PublishRequest> {
        let hot = serde_json::from_slice::<HotPublish>(body).ok()?;
        Some(match hot.messages {
            Some(messages) => PublishRequest::Batch(PublishBatch { messages }),
            None => PublishRequest::Single(Box::new(hot.message)),
        })
    }
}

/// `register_producer`: this connection answers transaction checks of `group`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisterProducerFrame {
    /// Producer group.
    pub group: String,
}

/// `end_transaction`: answers a `check`, or ends a transaction unprompted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndTransactionFrame {
    /// Transaction id.
    pub transaction_id: String,
    /// `commit`, `rollback` or `unknown`.
    pub status: String,
    /// When set, the server answers `transaction_ended`.
    #[serde(default)]
    pub req_id: Option<String>,
}

/// A subscription announced in a `heartbeat`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionIn {
    /// Topic.
    pub topic: String,
    /// Tag expression (default `*`).
    #[serde(default)]
    pub filter: Option<String>,
    /// SQL92 filter.
    #[serde(default)]
    pub sql: Option<String>,
    /// Mode (default clustering).
    #[serde(default)]
    pub mode: Option<ModeOut>,
}

/// `heartbeat` (native clients): keeps `client_id` a member of `group`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatFrame {
    /// When set, the server answers `heartbeat_ack` with the group's members.
    #[serde(default)]
    pub req_id: Option<String>,
    /// Consumer group.
    pub group: String,
    /// The member's id (default: the connection's id).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its subscriptions.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionIn>,
}

/// `pull` (native clients): reads one queue from an offset, long polling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullFrame {
    /// Request id, echoed on `pulled`.
    pub req_id: String,
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Queue.
    pub queue_id: u32,
    /// First offset to read.
    pub offset: u64,
    /// At most this many messages (default 32, at most 1 000).
    #[serde(default)]
    pub max: Option<u32>,
    /// Tag expression (default `*`).
    #[serde(default)]
    pub filter: Option<String>,
    /// SQL92 filter.
    #[serde(default)]
    pub sql: Option<String>,
    /// Long poll (default 0, at most 30 000).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// `commit` (native clients): stores the group's offset of a queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitFrame {
    /// When set, the server answers `committed`.
    #[serde(default)]
    pub req_id: Option<String>,
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Queue.
    pub queue_id: u32,
    /// The next offset to consume.
    pub offset: u64,
}

/// `query_offset` (native clients): the group's committed offset of one queue, or none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryOffsetFrame {
    /// Request id, echoed on the `offset` answer.
    pub req_id: String,
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Queue.
    pub queue_id: u32,
}

/// `lock` / `unlock` (native orderly clients): the lease on one queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockFrame {
    /// Request id; `lock` always answers `locked`, `unlock` answers `unlocked` when set.
    #[serde(default)]
    pub req_id: Option<String>,
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Queue.
    pub queue_id: u32,
    /// The member (default: the connection's id).
    #[serde(default)]
    pub client_id: Option<String>,
}

/// `send_back` (native clients): a pulled message failed; it goes to the group's retry topic
/// with `reconsume_times + 1` (or to the DLQ after `max_reconsume_times`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendBackFrame {
    /// When set, the server answers `sent_back`.
    #[serde(default)]
    pub req_id: Option<String>,
    /// Consumer group.
    pub group: String,
    /// The message's id.
    pub msg_id: String,
    /// The topic it was pulled from.
    pub topic: String,
    /// Its `commit_offset`, as pulled.
    pub commit_offset: u64,
    /// Deliveries after failures so far (as pulled, or more after in-place retries).
    #[serde(default)]
    pub reconsume_times: u32,
    /// Redelivery delay (default: the retry delay of level `3 + reconsume_times`; 0: at once).
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// A client frame. Serializes with its `op`; [`ClientFrame::parse`] reads one with errors that
/// name the failing field.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientFrame {
    /// `subscribe`
    Subscribe(SubscribeFrame),
    /// `ack`
    Ack(AckFrame),
    /// `nack`
    Nack(NackFrame),
    /// `credit`
    Credit(CreditFrame),
    /// `unsubscribe`
    Unsubscribe(UnsubscribeFrame),
    /// `publish`
    Publish(PublishFrame),
    /// `register_producer`
    RegisterProducer(RegisterProducerFrame),
    /// `end_transaction`
    EndTransaction(EndTransactionFrame),
    /// `heartbeat`
    Heartbeat(HeartbeatFrame),
    /// `pull`
    Pull(PullFrame),
    /// `commit`
    Commit(CommitFrame),
    /// `lock`
    Lock(LockFrame),
    /// `unlock`
    Unlock(LockFrame),
    /// `send_back`
    SendBack(SendBackFrame),
    /// `query_offset`
    QueryOffset(QueryOffsetFrame),
}

/// The ids a frame carries, to echo on its `error` even when the rest does not parse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameIds {
    /// `id`, if a string.
    pub id: Option<String>,
    /// `req_id`, if a string.
    pub req_id: Option<String>,
}

impl ClientFrame {
    /// Parses a text frame. On failure, the error and whatever ids could be read.
    pub fn parse(text: &str) -> Result<(ClientFrame, FrameIds), (FieldError, FrameIds)> {
        if let Some(parsed) = ClientFrame::parse_hot(text) {
            return Ok(parsed);
        }
        let value: Value = crate::json::parse(text.as_bytes()).map_err(|e| (e, FrameIds::default()))?;
        let ids = FrameIds {
            id: value.get("id").and_then(Value::as_str).map(String::from),
            req_id: value.get("req_id").and_then(Value::as_str).map(String::from),
        };
        match ClientFrame::from_value(value) {
            Ok(op) => Ok((op, ids)),
            Err(err) => Err((err, ids)),
        }
    }

    /// The frames a busy connection sends most (`publish`, `ack`, `nack`, `credit`), read
    /// straight from the text into their types rather than through a `Value` tree. `None`
    /// when the frame is another op or does not parse so: [`ClientFrame::parse`] then reads it
    /// the general way, which also words every error, so both ways accept the same frames
    /// and reject them with the same errors.
    fn parse_hot(text: &str) -> Option<(ClientFrame, FrameIds)> {
        // A publish carries bodies: read it once, straight into its types, rather than once
        // for the op and again for the frame (each pass checks every byte of every body).
        if text.contains("\"publish\"") {
            if let Some(parsed) = serde_json::from_str::<HotPublish>(text).ok().and_then(HotPublish::into_frame) {
                return Some(parsed);
            }
        }
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(borrow)]
            op: std::borrow::Cow<'a, str>,
            #[serde(default)]
            id: Option<String>,
            #[serde(default)]
            req_id: Option<String>,
        }
        let head: Head<'_> = serde_json::from_str(text).ok()?;
        let ids = FrameIds { id: head.id, req_id: head.req_id };
        let frame = match &*head.op {
            "ack" => ClientFrame::Ack(serde_json::from_str(text).ok()?),
            "nack" => ClientFrame::Nack(serde_json::from_str(text).ok()?),
            "credit" => ClientFrame::Credit(serde_json::from_str(text).ok()?),
            _ => return None,
        };
        Some((frame, ids))
    }

    fn from_value(value: Value) -> Result<ClientFrame, FieldError> {
        let Value::Object(mut map) = value else {
            return Err(FieldError::new("", "a frame is a JSON object with an `op`"));
        };
        let op = match map.remove("op") {
            Some(Value::String(op)) => op,
            Some(_) => return Err(FieldError::new("/op", "must be a string")),
            None => return Err(FieldError::new("/op", "missing field `op`")),
        };
        let value = Value::Object(map);
        Ok(match op.as_str() {
            "subscribe" => ClientFrame::Subscribe(from_value(value, "")?),
            "ack" => ClientFrame::Ack(from_value(value, "")?),
            "nack" => ClientFrame::Nack(from_value(value, "")?),
            "credit" => ClientFrame::Credit(from_value(value, "")?),
            "unsubscribe" => ClientFrame::Unsubscribe(from_value(value, "")?),
            "publish" => ClientFrame::Publish(publish_frame(value)?),
            "register_producer" => ClientFrame::RegisterProducer(from_value(value, "")?),
            "end_transaction" => ClientFrame::EndTransaction(from_value(value, "")?),
            "heartbeat" => ClientFrame::Heartbeat(from_value(value, "")?),
            "pull" => ClientFrame::Pull(from_value(value, "")?),
            "commit" => ClientFrame::Commit(from_value(value, "")?),
            "lock" => ClientFrame::Lock(from_value(value, "")?),
            "unlock" => ClientFrame::Unlock(from_value(value, "")?),
            "send_back" => ClientFrame::SendBack(from_value(value, "")?),
            "query_offset" => ClientFrame::QueryOffset(from_value(value, "")?),
            other => {
                return Err(FieldError::new("/op", format!("unknown op {other:?}; known ops: {}", OPS.join(", "))))
            }
        })
    }
}

fn publish_frame(value: Value) -> Result<PublishFrame, FieldError> {
    let Value::Object(mut map) = value else {
        return Err(FieldError::new("", "a frame is a JSON object"));
    };
    let req_id = match map.remove("req_id") {
        Some(Value::String(id)) => id,
        Some(_) => return Err(FieldError::new("/req_id", "must be a string")),
        None => return Err(FieldError::new("/req_id", "missing field `req_id`: publish needs one")),
    };
    let topic = match map.remove("topic") {
        Some(Value::String(topic)) => topic,
        Some(_) => return Err(FieldError::new("/topic", "must be a string")),
        None => return Err(FieldError::new("/topic", "missing field `topic`")),
    };
    let body = if map.contains_key("messages") {
        let idempotency_key = match map.remove("idempotency_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) => Some(key),
            Some(_) => return Err(FieldError::new("/idempotency_key", "must be a string")),
        };
        let batch: PublishBatch = from_value(Value::Object(map), "")?;
        PublishBody::Batch { messages: batch.messages, idempotency_key }
    } else {
        PublishBody::Single(Box::new(from_value(Value::Object(map), "")?))
    };
    Ok(PublishFrame { req_id, topic, body })
}

/// A `check` frame: the broker asks this producer how a transaction ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckFrame {
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

/// The body of an `error` frame: the problem fields plus the ids of the failing frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// Subscription id, when the error concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Request id, when the failing frame had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_id: Option<String>,
    /// `urn:ferrymq:error:<kind>`, as in REST.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// The status REST would have answered.
    pub status: u16,
    /// What went wrong.
    pub detail: String,
    /// For validation errors: each invalid field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// For a failed ack or nack: the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// For a failed ack or nack: `unknown`, `expired` or `acked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ErrorFrame {
    /// The frame for `problem`, echoing `ids`.
    pub fn new(problem: Problem, ids: FrameIds) -> Self {
        let Problem { kind, title, status, detail, errors } = problem;
        ErrorFrame { id: ids.id, req_id: ids.req_id, kind, title, status, detail, errors, receipt: None, reason: None }
    }

    /// The problem this frame carries.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: self.kind.clone(),
            title: self.title.clone(),
            status: self.status,
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        }
    }
}

/// Everything the server sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A subscription started.
    Subscribed {
        /// Its id.
        id: String,
    },
    /// A subscription ended.
    Unsubscribed {
        /// Its id.
        id: String,
    },
    /// A delivered message, with its receipt.
    Message {
        /// Subscription id.
        id: String,
        /// The message.
        #[serde(flatten)]
        message: MessageOut,
    },
    /// A publish was stored.
    Published {
        /// Request id.
        req_id: String,
        /// The result, or `results` for a batch.
        #[serde(flatten)]
        result: PublishedBody,
    },
    /// A transaction check.
    Check(CheckFrame),
    /// Something failed.
    Error(ErrorFrame),
    /// Answer to a `heartbeat` with a `req_id`.
    HeartbeatAck {
        /// Request id.
        req_id: String,
        /// Group.
        group: String,
        /// Its live members.
        members: Vec<MemberOut>,
    },
    /// Answer to a `pull`.
    Pulled {
        /// Request id.
        req_id: String,
        /// Matching messages in queue order.
        messages: Vec<MessageOut>,
        /// Offset to pull from next.
        next_offset: u64,
        /// Lowest retained offset.
        min_offset: u64,
        /// Next offset to be written.
        max_offset: u64,
    },
    /// Answer to a `commit` with a `req_id`.
    Committed {
        /// Request id.
        req_id: String,
    },
    /// Answer to a `lock`.
    Locked {
        /// Request id.
        req_id: String,
        /// Whether this member holds the queue now.
        locked: bool,
    },
    /// Answer to an `unlock` with a `req_id`.
    Unlocked {
        /// Request id.
        req_id: String,
    },
    /// Answer to a `send_back` with a `req_id`.
    SentBack {
        /// Request id.
        req_id: String,
    },
    /// Answer to a `query_offset`: `null` when the group has no committed offset there, so
    /// the client applies its start position.
    Offset {
        /// Request id.
        req_id: String,
        /// The committed offset (the next to consume), if any.
        offset: Option<u64>,
    },
    /// Answer to an `end_transaction` with a `req_id`.
    TransactionEnded {
        /// Request id.
        req_id: String,
        /// Transaction id.
        transaction_id: String,
        /// Message id.
        msg_id: String,
        /// `committed` or `rolled_back`.
        status: TransactionStatusOut,
    },
}

/// The result part of a `published` frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PublishedBody {
    /// One message.
    Single(SendResultOut),
    /// A batch.
    Batch {
        /// One result per message.
        results: Vec<SendResultOut>,
    },
}

impl ServerFrame {
    /// An `error` frame for `problem`.
    pub fn error(problem: Problem, ids: FrameIds) -> Self {
        ServerFrame::Error(ErrorFrame::new(problem, ids))
    }

    /// Reads a server frame.
    pub fn parse(text: &str) -> Result<ServerFrame, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The frame as JSON text: the same document as `serde_json::to_string`, written by hand
    /// for `message` frames (the bulk of what a server sends), whose base64 body needs no
    /// escaping and whose text body rarely does; serde_json checks every byte of every string
    /// for escapes one at a time, which cost about a tenth of the server's CPU when streaming.
    pub fn to_json(&self) -> String {
        match self {
            ServerFrame::Message { id, message } => fast_json::message_frame(id, message),
            ServerFrame::Published { req_id, result: PublishedBody::Single(result) } => {
                fast_json::published_frame(req_id, result)
            }
            other => serde_json::to_string(other).unwrap_or_else(|e| {
                // Every field is a string, number, bool, list or string map: serialising
                // cannot fail. Should it, the client gets a well-formed error frame.
                let problem = Problem::new(crate::ErrorKind::Internal, format!("cannot encode a frame: {e}"));
                serde_json::to_string(&ServerFrame::error(problem, FrameIds::default())).unwrap_or_default()
            }),
        }
    }
}

/// Hand-written JSON for the hot frames; `ServerFrame::to_json` is the entry point.
mod fast_json {
    use super::{MessageOut, SendResultOut};

    /// The frame's names, punctuation, numbers and quotes: everything but the strings' text.
    const FRAME_FIXED: usize = 400;

    /// The length of `id`'s frame for `m` when none of its strings needs escaping, so the
    /// frame is written without growing (growing copied the body, about 2 KB, each time).
    pub(super) fn capacity(id: &str, m: &MessageOut) -> usize {
        FRAME_FIXED
            + id.len()
            + m.msg_id.len()
            + m.topic.len()
            + m.body_base64.len()
            + m.body.as_ref().map_or(0, String::len)
            + m.tag.as_ref().map_or(0, String::len)
            + m.keys.iter().map(|k| k.len() + 3).sum::<usize>()
            + m.properties.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>()
            + m.receipt.as_ref().map_or(0, String::len)
    }

    pub(super) fn message_frame(id: &str, m: &MessageOut) -> String {
        let mut out = String::with_capacity(capacity(id, m));
        out.push_str("{\"op\":\"message\",\"id\":");
        string(&mut out, id);
        out.push_str(",\"msg_id\":");
        string(&mut out, &m.msg_id);
        out.push_str(",\"topic\":");
        string(&mut out, &m.topic);
        out.push_str(",\"queue_id\":");
        opt_number(&mut out, m.queue_id.map(u64::from));
        out.push_str(",\"queue_offset\":");
        opt_number(&mut out, m.queue_offset);
        out.push_str(",\"commit_offset\":");
        opt_number(&mut out, m.commit_offset);
        out.push_str(",\"body_base64\":");
        string(&mut out, &m.body_base64);
        out.push_str(",\"body\":");
        opt_string(&mut out, m.body.as_deref());
        out.push_str(",\"tag\":");
        opt_string(&mut out, m.tag.as_deref());
        out.push_str(",\"keys\":[");
        for (i, key) in m.keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(&mut out, key);
        }
        out.push_str("],\"properties\":{");
        for (i, (k, v)) in m.properties.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(&mut out, k);
            out.push(':');
            string(&mut out, v);
        }
        out.push_str("},\"born_ts\":");
        number(&mut out, m.born_ts);
        out.push_str(",\"store_ts\":");
        number(&mut out, m.store_ts);
        out.push_str(",\"reconsume_times\":");
        number(&mut out, u64::from(m.reconsume_times));
        out.push_str(",\"receipt\":");
        opt_string(&mut out, m.receipt.as_deref());
        out.push_str(",\"state\":\"");
        out.push_str(m.state.as_str());
        out.push_str("\"}");
        out
    }

    /// A `published` frame for one message (one per publish the server answers).
    pub(super) fn published_frame(req_id: &str, r: &SendResultOut) -> String {
        let extra = r.transaction_id.as_ref().map_or(0, |t| t.len() + 20);
        let mut out = String::with_capacity(100 + req_id.len() + r.msg_id.len() + extra);
        out.push_str("{\"op\":\"published\",\"req_id\":");
        string(&mut out, req_id);
        out.push_str(",\"msg_id\":");
        string(&mut out, &r.msg_id);
        out.push_str(",\"queue_id\":");
        opt_number(&mut out, r.queue_id.map(u64::from));
        out.push_str(",\"queue_offset\":");
        opt_number(&mut out, r.queue_offset);
        if let Some(t) = &r.transaction_id {
            out.push_str(",\"transaction_id\":");
            string(&mut out, t);
        }
        out.push('}');
        out
    }

    fn number(out: &mut String, n: u64) {
        out.push_str(itoa::Buffer::new().format(n));
    }

    fn opt_number(out: &mut String, n: Option<u64>) {
        match n {
            Some(n) => number(out, n),
            None => out.push_str("null"),
        }
    }

    fn opt_string(out: &mut String, s: Option<&str>) {
        match s {
            Some(s) => string(out, s),
            None => out.push_str("null"),
        }
    }

    /// A JSON string literal: copied as it is when nothing in it needs escaping (checked 32
    /// bytes at a time without branching inside a block, which the compiler vectorises), else
    /// escaped by serde_json.
    fn string(out: &mut String, s: &str) {
        let needs_escape = s
            .as_bytes()
            .chunks(32)
            .any(|block| block.iter().fold(false, |acc, &b| acc | (b < 0x20) | (b == b'"') | (b == b'\\')));
        if needs_escape {
            match serde_json::to_string(s) {
                Ok(quoted) => out.push_str(&quoted),
                // A &str always serialises.
                Err(_) => out.push_str("\"\""),
            }
        } else {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_op_is_an_error_with_ids() {
        let (err, ids) = ClientFrame::parse(r#"{"op": "dance", "id": "s1"}"#).unwrap_err();
        assert_eq!(ids.id.as_deref(), Some("s1"));
        assert_eq!(err.field, "/op");
    }

    #[test]
    fn publish_needs_a_req_id() {
        let (err, _) = ClientFrame::parse(r#"{"op": "publish", "topic": "t", "body": "x"}"#).unwrap_err();
        assert!(err.message.contains("req_id"));
    }

    #[test]
    fn subscribe_parses_a_timestamp_start() {
        let (op, _) = ClientFrame::parse(
            r#"{"op": "subscribe", "id": "a", "group": "g", "topic": "t", "start": {"timestamp": 5}}"#,
        )
        .expect("parses");
        let ClientFrame::Subscribe(frame) = op else { panic!("not a subscribe") };
        assert_eq!(frame.start, Some(StartIn::At { timestamp: 5 }));
    }

    #[test]
    fn wrong_field_type_names_the_field() {
        let (err, _) = ClientFrame::parse(r#"{"op": "credit", "id": "a", "n": "many"}"#).unwrap_err();
        assert_eq!(err.field, "/n");
    }

    /// The general way of reading a frame, which the hot ops skip.
    fn parse_through_value(text: &str) -> Result<(ClientFrame, FrameIds), (FieldError, FrameIds)> {
        let value: Value = crate::json::parse(text.as_bytes()).map_err(|e| (e, FrameIds::default()))?;
        let ids = FrameIds {
            id: value.get("id").and_then(Value::as_str).map(String::from),
            req_id: value.get("req_id").and_then(Value::as_str).map(String::from),
        };
        ClientFrame::from_value(value).map(|op| (op, ids.clone())).map_err(|e| (e, ids))
    }

    #[test]
    fn hot_frames_read_the_same_both_ways() {
        let frames = [
            r#"{"op": "ack", "receipt": "r1.x"}"#,
            r#"{"op": "ack", "id": "s1", "receipt": "r1.x", "extra": [1, {"a": null}]}"#,
            r#"{"receipt": "r", "op": "nack", "delay_ms": 250}"#,
            r#"{"op": "nack", "receipt": "r", "delay_ms": null}"#,
            r#"{"op": "credit", "id": "s", "n": 500}"#,
            r#"{"op": "publish", "req_id": "p1", "topic": "t", "body": "h\u00e9\"", "tag": "A", "keys": ["k"]}"#,
            r#"{"op": "publish", "req_id": "p2", "topic": "t", "messages": [{"body": "a"}, {"body_base64": "eA=="}],
                "idempotency_key": "i"}"#,
            r#"{"op": "ack", "id": 5, "receipt": "r"}"#,
            r#"{"op": "ack", "receipt": "a", "receipt": "b"}"#,
            r#"{"op": "credit", "id": "s", "n": -1}"#,
            r#"{"op": "credit", "id": "s", "n": 1.5}"#,
            r#"{"op": "ack"}"#,
            r#"{"op": "publish", "topic": "t", "body": "x"}"#,
            r#"{"op": "publish", "req_id": 7, "topic": "t", "body": "x"}"#,
            r#"{"op": "ack", "receipt": "r"} trailing"#,
            r#"[1, 2]"#,
            r#"{"op":"publish","req_id":"p3","topic":"t","id":"s1","body":"x"}"#,
            r#"{"op":"publish","req_id":"p4","topic":"t","id":9,"body":"x"}"#,
            r#"{"op":"publish","op":"ack","receipt":"r","req_id":"p5","topic":"t"}"#,
            r#"{"op":"ack","receipt":"r","op":"publish","req_id":"p6","topic":"t","body":"y"}"#,
            r#"{"op":"publish","req_id":"p7","req_id":"p8","topic":"t","body":"x"}"#,
            r#"{"op":"subscribe","id":"s","group":"publish","topic":"publish"}"#,
            r#"{"op":"publish","req_id":"p9","topic":"t","body":"x"} trailing"#,
            r#"{"op":"publish","req_id":"p10","topic":"t","properties":{"op":"publish"},"body":"x"}"#,
        ];
        for text in frames {
            assert_eq!(ClientFrame::parse(text), parse_through_value(text), "{text}");
        }
        assert!(ClientFrame::parse_hot(frames[0]).is_some(), "an ack takes the hot path");
        assert!(ClientFrame::parse_hot(frames[5]).is_some(), "a publish takes the hot path");
        assert!(ClientFrame::parse_hot(frames[6]).is_some(), "a batch takes the hot path");
    }

    #[test]
    fn the_hot_publish_reads_every_field_of_a_message() {
        // A value of the right type, not the default, for every field a message has: a field
        // the one-pass reading did not know would be left at its default there.
        let mut fields = 0;
        let example = serde_json::to_value(PublishMessage::default()).expect("serializes");
        for key in example.as_object().expect("an object").keys() {
            let value = match key.as_str() {
                "keys" => serde_json::json!(["k1", "k2"]),
                "properties" => serde_json::json!({"a": "1"}),
                "delay_level" | "delay_ms" | "deliver_at" => serde_json::json!(3),
                "transaction" => serde_json::json!(true),
                _ => serde_json::json!("some text"),
            };
            for frame in [
                serde_json::json!({"op": "publish", "req_id": "r", "topic": "t", key.as_str(): value}),
                serde_json::json!({"op": "publish", "req_id": "r", "topic": "t", key.as_str(): null}),
                serde_json::json!({"op": "publish", "req_id": "r", "topic": "t", "messages": [{key.as_str(): value}],
                    key.as_str(): value}),
            ] {
                let text = frame.to_string();
                let hot = ClientFrame::parse_hot(&text);
                assert!(hot.is_some(), "{text} takes the hot path");
                assert_eq!(hot.map(Ok), Some(parse_through_value(&text)), "{text}");
            }
            fields += 1;
        }
        assert_eq!(fields, 12, "every field of a message was tried");
    }

    #[test]
    fn client_frames_round_trip_with_their_op() {
        let frames = vec![
            ClientFrame::Pull(PullFrame {
                req_id: "r1".into(),
                group: "g".into(),
                topic: "t".into(),
                queue_id: 3,
                offset: 7,
                max: Some(32),
                filter: None,
                sql: Some("a > 1".into()),
                wait_ms: Some(100),
            }),
            ClientFrame::Unlock(LockFrame {
                req_id: None,
                group: "g".into(),
                topic: "t".into(),
                queue_id: 1,
                client_id: Some("c".into()),
            }),
            ClientFrame::Publish(PublishFrame::single(
                "r2".into(),
                "t".into(),
                PublishMessage { body: Some("x".into()), tag: Some("A".into()), ..Default::default() },
            )),
            ClientFrame::RegisterProducer(RegisterProducerFrame { group: "pg".into() }),
        ];
        for frame in frames {
            let text = serde_json::to_string(&frame).expect("serializes");
            let (back, _) = ClientFrame::parse(&text).expect("parses");
            assert_eq!(back, frame, "{text}");
        }
    }

    fn any_message() -> impl proptest::strategy::Strategy<Value = MessageOut> {
        use crate::message::MessageStateOut;
        use proptest::prelude::*;
        // Text with quotes, backslashes, control characters and non-ASCII, and plain text.
        let text = || prop_oneof!["[ -~]{0,40}", "\\PC{0,20}", ".{0,10}", "[a\"\\\\\u{0}-\u{1f}\u{7f}é€😀]{0,12}"];
        (
            (text(), text(), any::<Option<u32>>(), any::<Option<u64>>(), any::<Option<u64>>(), "[A-Za-z0-9+/=]{0,64}"),
            (proptest::option::of(text()), proptest::option::of(text()), proptest::collection::vec(text(), 0..3)),
            (proptest::collection::btree_map(text(), text(), 0..3), any::<u64>(), any::<u64>(), any::<u32>()),
            (
                proptest::option::of(text()),
                prop_oneof![
                    Just(MessageStateOut::Stored),
                    Just(MessageStateOut::Scheduled),
                    Just(MessageStateOut::Half)
                ],
            ),
        )
            .prop_map(
                |(
                    (msg_id, topic, queue_id, queue_offset, commit_offset, body_base64),
                    (body, tag, keys),
                    (properties, born_ts, store_ts, reconsume_times),
                    (receipt, state),
                )| MessageOut {
                    msg_id,
                    topic,
                    queue_id,
                    queue_offset,
                    commit_offset,
                    body_base64,
                    body,
                    tag,
                    keys,
                    properties,
                    born_ts,
                    store_ts,
                    reconsume_times,
                    receipt,
                    state,
                },
            )
    }

    proptest::proptest! {
        #[test]
        fn message_frames_are_written_exactly_as_serde_writes_them(id in "\\PC{0,12}", message in any_message()) {
            let frame = ServerFrame::Message { id, message };
            let by_serde = serde_json::to_string(&frame).expect("serializes");
            proptest::prop_assert_eq!(frame.to_json(), by_serde);
        }

        #[test]
        fn published_frames_are_written_exactly_as_serde_writes_them(
            req_id in "\\PC{0,12}",
            msg_id in "\\PC{0,40}",
            queue_id in proptest::option::of(proptest::prelude::any::<u32>()),
            queue_offset in proptest::option::of(proptest::prelude::any::<u64>()),
            transaction_id in proptest::option::of("\\PC{0,40}"),
        ) {
            let result = SendResultOut { msg_id, queue_id, queue_offset, transaction_id };
            let frame = ServerFrame::Published { req_id, result: PublishedBody::Single(result) };
            let by_serde = serde_json::to_string(&frame).expect("serializes");
            proptest::prop_assert_eq!(frame.to_json(), by_serde);
        }
    }

    #[test]
    fn a_message_frame_is_written_into_the_room_reserved_for_it() {
        use crate::message::MessageStateOut;
        use std::collections::BTreeMap;
        let message = MessageOut {
            msg_id: "01A251580310F493758C0921B7C40336".into(),
            topic: "orders".into(),
            queue_id: Some(u32::MAX),
            queue_offset: Some(u64::MAX),
            commit_offset: Some(u64::MAX),
            body_base64: "aGVsbG8=".repeat(200),
            body: Some("hello".repeat(320)),
            tag: Some("scheduled-tag".into()),
            keys: vec!["k1".into(), "order-42".into()],
            properties: [("a".to_string(), "1".to_string()), ("region".to_string(), "eu".to_string())].into(),
            born_ts: u64::MAX,
            store_ts: u64::MAX,
            reconsume_times: u32::MAX,
            receipt: Some("r1.67.74.5.0.027a568e4d8f3022.5c0d57fe".into()),
            state: MessageStateOut::Scheduled,
        };
        let frame = fast_json::message_frame("sub-1", &message);
        assert!(frame.len() <= fast_json::capacity("sub-1", &message), "{} bytes", frame.len());
        assert_eq!(frame.capacity(), fast_json::capacity("sub-1", &message), "the frame grew");
        let empty = MessageOut { tag: None, keys: Vec::new(), properties: BTreeMap::new(), receipt: None, ..message };
        let frame = fast_json::message_frame("", &empty);
        assert_eq!(frame.capacity(), fast_json::capacity("", &empty), "the frame grew");
    }

    #[test]
    fn other_frames_are_serde_json() {
        let frame = ServerFrame::Subscribed { id: "a\"b".into() };
        assert_eq!(frame.to_json(), serde_json::to_string(&frame).expect("serializes"));
    }

    #[test]
    fn server_frames_round_trip() {
        let message = MessageOut {
            msg_id: "m".into(),
            topic: "t".into(),
            queue_id: Some(1),
            queue_offset: Some(2),
            commit_offset: Some(3),
            body_base64: "eA==".into(),
            body: Some("x".into()),
            tag: None,
            keys: vec![],
            properties: Default::default(),
            born_ts: 1,
            store_ts: 2,
            reconsume_times: 0,
            receipt: Some("r".into()),
            state: crate::message::MessageStateOut::Stored,
        };
        let frames = vec![
            ServerFrame::Subscribed { id: "a".into() },
            ServerFrame::Message { id: "a".into(), message: message.clone() },
            ServerFrame::Published {
                req_id: "r".into(),
                result: PublishedBody::Single(SendResultOut {
                    msg_id: "m".into(),
                    queue_id: None,
                    queue_offset: None,
                    transaction_id: Some("x".into()),
                }),
            },
            ServerFrame::Pulled {
                req_id: "r".into(),
                messages: vec![message],
                next_offset: 3,
                min_offset: 0,
                max_offset: 3,
            },
            ServerFrame::Offset { req_id: "r".into(), offset: None },
            ServerFrame::error(Problem::invalid(vec![FieldError::new("/n", "bad")]), FrameIds::default()),
        ];
        for frame in frames {
            let text = serde_json::to_string(&frame).expect("serializes");
            assert_eq!(ServerFrame::parse(&text).expect("parses"), frame, "{text}");
        }
        let json = serde_json::to_value(ServerFrame::Subscribed { id: "a".into() }).expect("serializes");
        assert_eq!(json, serde_json::json!({"op": "subscribed", "id": "a"}));
    }
}
