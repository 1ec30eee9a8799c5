//! Messages: the message out (REST responses, WebSocket `message` frames, SDK objects), the
//! message in (JSON publish) with its validation, and publish results.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::null_as_default;
use crate::problem::FieldError;

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageStateOut {
    /// Visible in its topic.
    Stored,
    /// Waiting for its delivery time.
    Scheduled,
    /// A transactional half message, not yet committed.
    Half,
}

impl MessageStateOut {
    /// The contract's spelling (`stored`, `scheduled`, `half`), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStateOut::Stored => "stored",
            MessageStateOut::Scheduled => "scheduled",
            MessageStateOut::Half => "half",
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageOut {
    /// Id, stable through delay, retry, DLQ, resend and transaction commit.
    pub msg_id: String,
    /// The topic it was published to (also for retried and dead letters).
    pub topic: String,
    /// Queue in its topic; `null` while scheduled or half.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub queue_id: Option<u32>,
    /// Offset in that queue; `null` while scheduled or half.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub queue_offset: Option<u64>,
    /// Offset of the record in the commit log; `null` while scheduled or half.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub commit_offset: Option<u64>,
    /// The body, base64 (standard alphabet, padded).
    pub body_base64: String,
    /// The body as UTF-8 text, `null` when it is not valid UTF-8.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub body: Option<String>,
    /// Tag.
    #[cfg_attr(feature = "openapi", schema(required = true))]
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
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub receipt: Option<String>,
    /// `stored`, `scheduled` (delayed) or `half` (uncommitted transaction).
    pub state: MessageStateOut,
}

/// A list of messages.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageList {
    /// The messages, oldest first.
    pub messages: Vec<MessageOut>,
}

// ---------------------------------------------------------------------------------------------
// Publishing

/// A message to publish. Give `body` (text) or `body_base64`, and at most one of
/// `delay_level`, `delay_ms` and `deliver_at`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub delay_level: Option<u32>,
    /// Delay in milliseconds, > 0 and at most `max_delay`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub delay_ms: Option<u64>,
    /// Delivery time, epoch ms, > 0 and at most `max_delay` ahead; in the past: at once.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishBatch {
    /// The messages, in order.
    pub messages: Vec<PublishMessage>,
}

/// The JSON body of a publish: one message or a batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Decodes standard base64, padded or not.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD.decode(text).or_else(|_| STANDARD_NO_PAD.decode(text)).ok()
}

/// The result of one publish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendResultOut {
    /// The message id.
    pub msg_id: String,
    /// Queue it landed in; `null` for delayed and transactional sends.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub queue_id: Option<u32>,
    /// Offset in that queue; `null` for delayed and transactional sends.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub queue_offset: Option<u64>,
    /// Only for transactional sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

/// The results of a batch publish, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResult {
    /// One result per message.
    pub results: Vec<SendResultOut>,
}

/// What a publish returns: one result, or a batch's results.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum PublishResponse {
    /// For a batch.
    Batch(BatchResult),
    /// For one message.
    Single(SendResultOut),
}

impl MessageOut {
    /// The body's bytes (decoded from `body_base64`); `None` when that is not valid base64.
    pub fn body_bytes(&self) -> Option<Vec<u8>> {
        decode_base64(&self.body_base64)
    }

    /// Fills `body_base64` and `body` from the body's bytes.
    pub fn set_body(&mut self, body: Vec<u8>) {
        self.body_base64 = encode_base64(&body);
        self.body = String::from_utf8(body).ok();
    }
}

/// Encodes standard base64, padded (SIMD where the CPU has it: every delivered message
/// carries its body this way).
pub fn encode_base64(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

/// How a message's delivery is delayed, as validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayIn {
    /// A configured delay level, 1-based.
    Level(u32),
    /// This many milliseconds from now.
    Millis(u64),
    /// At this epoch-millisecond time.
    At(u64),
}

/// A message in, validated: what the broker stores.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageIn {
    /// The body.
    pub body: Vec<u8>,
    /// Tag.
    pub tag: Option<String>,
    /// Keys.
    pub keys: Vec<String>,
    /// Properties.
    pub properties: BTreeMap<String, String>,
    /// Delay, if any.
    pub delay: Option<DelayIn>,
    /// FIFO group.
    pub sharding_key: Option<String>,
    /// The producer group of a transactional message.
    pub transaction: Option<String>,
    /// Deduplication key.
    pub idempotency_key: Option<String>,
}

impl PublishMessage {
    /// Validates the message and turns it into a [`MessageIn`]. `prefix` is this message's
    /// JSON Pointer (`""` or `/messages/3`); every field error is reported under it.
    pub fn validate(self, prefix: &str, ctx: &PublishContext) -> Result<MessageIn, Vec<FieldError>> {
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
            Some(DelayIn::Level(level))
        } else if let Some(ms) = self.delay_ms {
            if ms == 0 {
                bad("delay_ms", "must be greater than 0");
            } else if u128::from(ms) > ctx.max_delay.as_millis() {
                bad("delay_ms", &format!("must be at most max_delay ({} ms)", ctx.max_delay.as_millis()));
            }
            Some(DelayIn::Millis(ms))
        } else if let Some(at) = self.deliver_at {
            if at == 0 {
                bad("deliver_at", "must be a positive epoch-millisecond time");
            } else if u128::from(at) > u128::from(crate::now_ms()) + ctx.max_delay.as_millis() {
                bad("deliver_at", "must be at most max_delay ahead");
            }
            Some(DelayIn::At(at))
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
            return Err(errors);
        }
        let mut properties = self.properties;
        if let Some(traceparent) = &ctx.traceparent {
            properties.entry("traceparent".to_string()).or_insert_with(|| traceparent.clone());
        }
        Ok(MessageIn {
            body,
            tag: self.tag,
            keys: self.keys,
            properties,
            delay,
            sharding_key: self.sharding_key,
            transaction,
            idempotency_key: self.idempotency_key,
        })
    }
}

impl From<MessageIn> for PublishMessage {
    /// The JSON publish of a message: `body` when it is UTF-8 text that JSON escapes into no
    /// more than base64 would take (so not NUL-filled text), else `body_base64`.
    fn from(m: MessageIn) -> Self {
        let (body, body_base64) = match String::from_utf8(m.body) {
            Ok(text) if escaped_len(&text) <= text.len().div_ceil(3) * 4 => (Some(text), None),
            Ok(text) => (None, Some(encode_base64(text.as_bytes()))),
            Err(e) => (None, Some(encode_base64(e.as_bytes()))),
        };
        let (delay_level, delay_ms, deliver_at) = match m.delay {
            Some(DelayIn::Level(level)) => (Some(level), None, None),
            Some(DelayIn::Millis(ms)) => (None, Some(ms), None),
            Some(DelayIn::At(at)) => (None, None, Some(at)),
            None => (None, None, None),
        };
        PublishMessage {
            body,
            body_base64,
            tag: m.tag,
            keys: m.keys,
            properties: m.properties,
            delay_level,
            delay_ms,
            deliver_at,
            sharding_key: m.sharding_key,
            transaction: m.transaction.is_some(),
            producer_group: m.transaction,
            idempotency_key: m.idempotency_key,
        }
    }
}

/// The length of `text` as the inside of a JSON string: a quote, a backslash and the short
/// escapes take two bytes, every other control character six (`\u0000`).
fn escaped_len(text: &str) -> usize {
    text.len()
        + text
            .bytes()
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
                0..=0x1f => 5,
                _ => 0,
            })
            .sum::<usize>()
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
        let errors = msg.validate("/messages/2", &ctx()).unwrap_err();
        assert_eq!(errors[0].field, "/messages/2/body_base64");
    }

    proptest::proptest! {
        /// The SIMD encoder writes what the `base64` crate writes, and it decodes back.
        #[test]
        fn base64_encoding_is_standard_and_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let encoded = encode_base64(&bytes);
            proptest::prop_assert_eq!(&encoded, &base64::engine::general_purpose::STANDARD.encode(&bytes));
            proptest::prop_assert_eq!(decode_base64(&encoded), Some(bytes));
        }
    }

    #[test]
    fn base64_body_is_decoded() {
        let msg = PublishMessage { body_base64: Some("AP8=".into()), ..Default::default() };
        assert_eq!(msg.validate("", &ctx()).expect("valid").body, vec![0, 255]);
    }

    #[test]
    fn traceparent_becomes_a_property() {
        let msg = PublishMessage { body: Some("x".into()), ..Default::default() };
        let ctx = PublishContext { traceparent: Some("00-abc-def-01".into()), ..ctx() };
        let out = msg.validate("", &ctx).expect("valid");
        assert_eq!(out.properties.get("traceparent").map(String::as_str), Some("00-abc-def-01"));
    }

    #[test]
    fn two_delays_are_rejected() {
        let msg =
            PublishMessage { body: Some("x".into()), delay_level: Some(1), delay_ms: Some(5), ..Default::default() };
        assert!(msg.validate("", &ctx()).is_err());
    }

    #[test]
    fn delays_are_bounded() {
        for (msg, field) in [
            (PublishMessage { delay_level: Some(19), ..Default::default() }, "/delay_level"),
            (PublishMessage { delay_level: Some(0), ..Default::default() }, "/delay_level"),
            (PublishMessage { delay_ms: Some(0), ..Default::default() }, "/delay_ms"),
            (PublishMessage { delay_ms: Some(3_600_001), ..Default::default() }, "/delay_ms"),
            (PublishMessage { deliver_at: Some(0), ..Default::default() }, "/deliver_at"),
            (PublishMessage { deliver_at: Some(u64::MAX), ..Default::default() }, "/deliver_at"),
        ] {
            let msg = PublishMessage { body: Some("x".into()), ..msg };
            let errors = msg.validate("", &ctx()).unwrap_err();
            assert_eq!(errors[0].field, field);
        }
    }

    #[test]
    fn transaction_needs_a_producer_group() {
        let msg = PublishMessage { body: Some("x".into()), transaction: true, ..Default::default() };
        let errors = msg.validate("", &ctx()).unwrap_err();
        assert_eq!(errors[0].field, "/producer_group");
    }

    #[test]
    fn a_message_in_round_trips_through_its_json_publish() {
        for body in [b"text".to_vec(), vec![0xff, 0x00]] {
            let original = MessageIn {
                body,
                tag: Some("TagA".into()),
                keys: vec!["k1".into()],
                properties: BTreeMap::from([("a".to_string(), "1".to_string())]),
                delay: Some(DelayIn::Millis(5)),
                sharding_key: Some("s".into()),
                transaction: Some("pg".into()),
                idempotency_key: Some("i".into()),
            };
            let json = serde_json::to_string(&PublishMessage::from(original.clone())).expect("serializes");
            let back: PublishMessage = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back.validate("", &ctx()).expect("valid"), original);
        }
    }

    #[test]
    fn text_goes_as_text_unless_escaping_would_make_it_longer_than_base64() {
        let publish = |body: &[u8]| PublishMessage::from(MessageIn { body: body.to_vec(), ..MessageIn::default() });
        let plain = publish("line one\nline \"two\"".as_bytes());
        assert_eq!((plain.body.as_deref(), plain.body_base64), (Some("line one\nline \"two\""), None));
        let zeros = publish(&[0; 30]);
        assert_eq!((zeros.body, zeros.body_base64.as_deref()), (None, Some("A".repeat(40).as_str())));
        assert_eq!(escaped_len("a\u{0}\"\u{1f}é"), 1 + 6 + 2 + 6 + 2);
    }

    #[test]
    fn null_lists_read_as_empty() {
        let msg: PublishMessage = serde_json::from_str(r#"{"body": "x", "keys": null, "properties": null}"#).unwrap();
        assert!(msg.keys.is_empty() && msg.properties.is_empty());
    }
}
