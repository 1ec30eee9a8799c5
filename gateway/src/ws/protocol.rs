//! The frames of the WebSocket protocol (`openapi/asyncapi.yaml` documents them): JSON text
//! frames with an `op` field. [`Op`] is what a client may send, [`ServerFrame`] what the
//! server sends.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::extract::from_value;
use crate::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::wire::{MemberOut, MessageOut, ModeOut, SendResultOut, TransactionStatusOut};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartName {
    /// The earliest retained message.
    First,
    /// Only messages published from now on.
    Last,
}

/// `subscribe`: join `group` on `topic` as a full member; messages arrive as `message` frames.
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
pub struct AckFrame {
    /// Its receipt.
    pub receipt: String,
}

/// `nack`: a delivered message failed; it comes back after `delay_ms` or the retry delay.
#[derive(Clone, Debug, Deserialize)]
pub struct NackFrame {
    /// Its receipt.
    pub receipt: String,
    /// Redelivery delay.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// `credit`: widens a subscription's window.
#[derive(Clone, Debug, Deserialize)]
pub struct CreditFrame {
    /// Subscription id.
    pub id: String,
    /// How many more messages may be in flight.
    pub n: u32,
}

/// `unsubscribe`: ends a subscription.
#[derive(Clone, Debug, Deserialize)]
pub struct UnsubscribeFrame {
    /// Subscription id.
    pub id: String,
}

/// `publish`: one message (the fields of a JSON publish) or `messages` (a batch).
#[derive(Clone, Debug)]
pub struct PublishFrame {
    /// Request id, echoed on `published` or `error`.
    pub req_id: String,
    /// Topic.
    pub topic: String,
    /// The rest of the frame: a message, or `{"messages": [...], "idempotency_key"?}`.
    pub body: serde_json::Map<String, Value>,
}

/// `register_producer`: this connection answers transaction checks of `group`.
#[derive(Clone, Debug, Deserialize)]
pub struct RegisterProducerFrame {
    /// Producer group.
    pub group: String,
}

/// `end_transaction`: answers a `check`, or ends a transaction unprompted.
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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

/// A client frame, parsed.
#[derive(Clone, Debug)]
pub enum Op {
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

impl Op {
    /// Parses a text frame. On failure, the error and whatever ids could be read.
    pub fn parse(text: &str) -> Result<(Op, FrameIds), (ApiError, FrameIds)> {
        let value: Value = crate::extract::parse_json(text.as_bytes()).map_err(|e| (e, FrameIds::default()))?;
        let ids = FrameIds {
            id: value.get("id").and_then(Value::as_str).map(String::from),
            req_id: value.get("req_id").and_then(Value::as_str).map(String::from),
        };
        match Op::from_value(value) {
            Ok(op) => Ok((op, ids)),
            Err(err) => Err((err, ids)),
        }
    }

    fn from_value(value: Value) -> ApiResult<Op> {
        let Value::Object(mut map) = value else {
            return Err(ApiError::invalid("", "a frame is a JSON object with an `op`"));
        };
        let op = match map.remove("op") {
            Some(Value::String(op)) => op,
            Some(_) => return Err(ApiError::invalid("/op", "must be a string")),
            None => return Err(ApiError::invalid("/op", "missing field `op`")),
        };
        let value = Value::Object(map);
        Ok(match op.as_str() {
            "subscribe" => Op::Subscribe(from_value(value, "")?),
            "ack" => Op::Ack(from_value(value, "")?),
            "nack" => Op::Nack(from_value(value, "")?),
            "credit" => Op::Credit(from_value(value, "")?),
            "unsubscribe" => Op::Unsubscribe(from_value(value, "")?),
            "publish" => Op::Publish(publish_frame(value)?),
            "register_producer" => Op::RegisterProducer(from_value(value, "")?),
            "end_transaction" => Op::EndTransaction(from_value(value, "")?),
            "heartbeat" => Op::Heartbeat(from_value(value, "")?),
            "pull" => Op::Pull(from_value(value, "")?),
            "commit" => Op::Commit(from_value(value, "")?),
            "lock" => Op::Lock(from_value(value, "")?),
            "unlock" => Op::Unlock(from_value(value, "")?),
            "send_back" => Op::SendBack(from_value(value, "")?),
            "query_offset" => Op::QueryOffset(from_value(value, "")?),
            other => {
                return Err(ApiError::invalid("/op", format!("unknown op {other:?}; known ops: {}", OPS.join(", "))))
            }
        })
    }
}

fn publish_frame(value: Value) -> ApiResult<PublishFrame> {
    let Value::Object(mut map) = value else {
        return Err(ApiError::invalid("", "a frame is a JSON object"));
    };
    let req_id = match map.remove("req_id") {
        Some(Value::String(id)) => id,
        Some(_) => return Err(ApiError::invalid("/req_id", "must be a string")),
        None => return Err(ApiError::invalid("/req_id", "missing field `req_id`: publish needs one")),
    };
    let topic = match map.remove("topic") {
        Some(Value::String(topic)) => topic,
        Some(_) => return Err(ApiError::invalid("/topic", "must be a string")),
        None => return Err(ApiError::invalid("/topic", "missing field `topic`")),
    };
    Ok(PublishFrame { req_id, topic, body: map })
}

/// A `check` frame: the broker asks this producer how a transaction ended.
#[derive(Clone, Debug, Serialize)]
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
#[derive(Clone, Debug, Serialize)]
pub struct ErrorFrame {
    /// Subscription id, when the error concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Request id, when the failing frame had one.
    #[serde(skip_serializing_if = "Option::is_none")]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// For a failed ack or nack: the receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// For a failed ack or nack: `unknown`, `expired` or `acked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ErrorFrame {
    /// The frame for `err`, echoing `ids`.
    pub fn new(err: &ApiError, ids: FrameIds) -> Self {
        let Problem { kind, title, status, detail, errors } = err.problem();
        ErrorFrame { id: ids.id, req_id: ids.req_id, kind, title, status, detail, errors, receipt: None, reason: None }
    }
}

/// Everything the server sends.
#[derive(Clone, Debug, Serialize)]
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
#[derive(Clone, Debug, Serialize)]
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
    /// An `error` frame for `err`.
    pub fn error(err: &ApiError, ids: FrameIds) -> Self {
        ServerFrame::Error(ErrorFrame::new(err, ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_op_is_an_error_with_ids() {
        let (err, ids) = Op::parse(r#"{"op": "dance", "id": "s1"}"#).unwrap_err();
        assert_eq!(ids.id.as_deref(), Some("s1"));
        assert_eq!(err.problem().kind, "urn:ferrymq:error:invalid-argument");
    }

    #[test]
    fn publish_needs_a_req_id() {
        let (err, _) = Op::parse(r#"{"op": "publish", "topic": "t", "body": "x"}"#).unwrap_err();
        assert!(err.problem().detail.contains("req_id"));
    }

    #[test]
    fn subscribe_parses_a_timestamp_start() {
        let (op, _) =
            Op::parse(r#"{"op": "subscribe", "id": "a", "group": "g", "topic": "t", "start": {"timestamp": 5}}"#)
                .expect("parses");
        let Op::Subscribe(frame) = op else { panic!("not a subscribe") };
        assert_eq!(frame.start, Some(StartIn::At { timestamp: 5 }));
    }

    #[test]
    fn wrong_field_type_names_the_field() {
        let (err, _) = Op::parse(r#"{"op": "credit", "id": "a", "n": "many"}"#).unwrap_err();
        let problem = err.problem();
        assert_eq!(problem.errors.expect("field errors")[0].field, "/n");
    }

    #[test]
    fn message_frames_flatten_the_message() {
        let frame = ServerFrame::Subscribed { id: "a".into() };
        let json = serde_json::to_value(frame).expect("serializes");
        assert_eq!(json, serde_json::json!({"op": "subscribed", "id": "a"}));
    }
}
