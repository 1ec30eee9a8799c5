//! Messages across the edge: [`MessageData`] (a message out, as a plain object),
//! [`MessageBatch`] (many messages out in one crossing), [`SendResultData`], and
//! [`OutgoingSpec`], a message to publish as `index.js` normalizes it (the body already a
//! `Buffer`).

use std::collections::{BTreeMap, HashMap};

use ferrymq_core::client::{Delay, Message, MessageState, OutgoingMessage, SendResult};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use serde::Serialize;

use crate::errors::invalid;

/// A message as delivered or looked up: the contract's "Message out".
#[napi(object)]
pub struct MessageData {
    pub msg_id: String,
    pub topic: String,
    pub queue_id: Option<u32>,
    pub queue_offset: Option<i64>,
    pub commit_offset: Option<i64>,
    pub body: Buffer,
    pub tag: Option<String>,
    pub keys: Vec<String>,
    pub properties: HashMap<String, String>,
    pub born_ts: i64,
    pub store_ts: i64,
    pub reconsume_times: u32,
    pub receipt: Option<String>,
    /// `stored`, `scheduled` or `half`.
    pub state: String,
}

/// A u64 offset or time as a JS number (exact below 2^53, which offsets and epoch ms are).
pub fn num(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl From<Message> for MessageData {
    fn from(m: Message) -> Self {
        MessageData {
            msg_id: m.msg_id,
            topic: m.topic,
            queue_id: m.queue_id,
            queue_offset: m.queue_offset.map(num),
            commit_offset: m.commit_offset.map(num),
            body: m.body.into(),
            tag: m.tag,
            keys: m.keys,
            properties: m.properties.into_iter().collect(),
            born_ts: num(m.born_ts),
            store_ts: num(m.store_ts),
            reconsume_times: m.reconsume_times,
            receipt: m.receipt,
            state: state_name(m.state).to_string(),
        }
    }
}

/// Messages handed to JS in one crossing: their fields as one JSON array of arrays
/// (`JSON.parse` builds them several times faster than an N-API call per field, and arrays
/// without field names are half the text to write and to parse), their bodies concatenated in
/// one buffer, each `bodyLength` bytes after the previous one's (`index.js`'s `unpack` makes
/// the objects and gives each message a view of its part).
#[napi(object)]
pub struct MessageBatch {
    pub meta: String,
    pub bodies: Buffer,
    /// For a listener's batch: the id of its first message (the others follow in order), by
    /// which the verdicts are reported.
    pub first_id: Option<i64>,
}

/// One message's fields in a [`MessageBatch`], in this order (`unpack` in index.js reads
/// them by position): those of [`MessageData`] but the body, then the body's length.
#[derive(Serialize)]
struct Meta<'a>(
    &'a str,                      // msgId
    &'a str,                      // topic
    Option<u32>,                  // queueId
    Option<i64>,                  // queueOffset
    Option<i64>,                  // commitOffset
    Option<&'a str>,              // tag
    &'a [String],                 // keys
    &'a BTreeMap<String, String>, // properties
    i64,                          // bornTs
    i64,                          // storeTs
    u32,                          // reconsumeTimes
    Option<&'a str>,              // receipt
    &'static str,                 // state
    usize,                        // bodyLength
);

fn state_name(state: MessageState) -> &'static str {
    match state {
        MessageState::Stored => "stored",
        MessageState::Scheduled => "scheduled",
        MessageState::Half => "half",
    }
}

fn meta(m: &Message) -> Meta<'_> {
    Meta(
        &m.msg_id,
        &m.topic,
        m.queue_id,
        m.queue_offset.map(num),
        m.commit_offset.map(num),
        m.tag.as_deref(),
        &m.keys,
        &m.properties,
        num(m.born_ts),
        num(m.store_ts),
        m.reconsume_times,
        m.receipt.as_deref(),
        state_name(m.state),
        m.body.len(),
    )
}

impl MessageBatch {
    /// The batch of `messages`.
    pub fn new<'a>(messages: impl IntoIterator<Item = &'a Message>) -> MessageBatch {
        let mut metas = Vec::new();
        let mut bodies = Vec::new();
        for m in messages {
            metas.push(meta(m));
            bodies.extend_from_slice(&m.body);
        }
        // Strings, integers and maps of strings: serializing them cannot fail.
        let meta = serde_json::to_string(&metas).unwrap_or_else(|_| "[]".into());
        MessageBatch { meta, bodies: bodies.into(), first_id: None }
    }
}

/// Part of a listener's batch, serialized while the client lends the messages: their
/// fields as JSON array elements and their bodies, concatenated.
pub struct MetaChunk {
    meta: Vec<u8>,
    bodies: Vec<u8>,
    len: usize,
}

impl MetaChunk {
    pub fn new(messages: &[Message]) -> MetaChunk {
        let mut meta = Vec::with_capacity(messages.len() * 256);
        let mut bodies = Vec::with_capacity(messages.iter().map(|m| m.body.len()).sum());
        for (i, m) in messages.iter().enumerate() {
            if i > 0 {
                meta.push(b',');
            }
            // Strings, integers and maps of strings into a Vec: writing them cannot fail.
            let _ = serde_json::to_writer(&mut meta, &self::meta(m));
            bodies.extend_from_slice(&m.body);
        }
        MetaChunk { meta, bodies, len: messages.len() }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// One batch of `chunks`, its first message numbered `first_id`.
    pub fn batch(chunks: Vec<MetaChunk>, first_id: u64) -> MessageBatch {
        let mut meta = Vec::with_capacity(chunks.iter().map(|c| c.meta.len() + 1).sum::<usize>() + 2);
        meta.push(b'[');
        for (i, chunk) in chunks.iter().enumerate() {
            if i > 0 {
                meta.push(b',');
            }
            meta.extend_from_slice(&chunk.meta);
        }
        meta.push(b']');
        // JSON that serde_json wrote: UTF-8.
        let meta = String::from_utf8(meta).unwrap_or_else(|_| "[]".into());
        let bodies = if chunks.len() == 1 {
            chunks.into_iter().next().map(|c| c.bodies).unwrap_or_default()
        } else {
            let mut bodies = Vec::with_capacity(chunks.iter().map(|c| c.bodies.len()).sum());
            for chunk in &chunks {
                bodies.extend_from_slice(&chunk.bodies);
            }
            bodies
        };
        MessageBatch { meta, bodies: bodies.into(), first_id: Some(i64::try_from(first_id).unwrap_or(i64::MAX)) }
    }
}

/// Where a send landed; `queue_id` and `queue_offset` are absent for delayed and
/// transactional sends, `transaction_id` present for transactional ones.
#[napi(object)]
pub struct SendResultData {
    pub msg_id: String,
    pub queue_id: Option<u32>,
    pub queue_offset: Option<i64>,
    pub transaction_id: Option<String>,
}

impl From<SendResult> for SendResultData {
    fn from(r: SendResult) -> Self {
        SendResultData {
            msg_id: r.msg_id,
            queue_id: r.queue_id,
            queue_offset: r.queue_offset.map(num),
            transaction_id: r.transaction_id,
        }
    }
}

/// A message to publish: the body and the attributes of `producer.send()`.
#[napi(object)]
pub struct OutgoingSpec {
    pub body: Buffer,
    pub tag: Option<String>,
    pub keys: Option<Vec<String>>,
    pub properties: Option<HashMap<String, String>>,
    pub delay_level: Option<i64>,
    pub delay_ms: Option<i64>,
    pub deliver_at: Option<i64>,
    pub sharding_key: Option<String>,
    pub idempotency_key: Option<String>,
}

/// A non-negative integer from JS.
pub fn non_negative(field: &str, value: i64) -> napi::Result<u64> {
    u64::try_from(value).map_err(|_| invalid(field, "must not be negative"))
}

/// Milliseconds from JS.
pub fn millis(field: &str, value: i64) -> napi::Result<std::time::Duration> {
    non_negative(field, value).map(std::time::Duration::from_millis)
}

impl OutgoingSpec {
    /// The client's message; `prefix` is the JSON Pointer of this message in its call
    /// (`""` for one message, `/messages/3` in a batch).
    pub fn into_outgoing(self, prefix: &str) -> napi::Result<OutgoingMessage> {
        let field = |name: &str| format!("{prefix}/{name}");
        let mut delays = Vec::new();
        if let Some(level) = self.delay_level {
            let level = u32::try_from(level).map_err(|_| invalid(&field("delay_level"), "must be 1 or more"))?;
            delays.push(Delay::Level(level));
        }
        if let Some(ms) = self.delay_ms {
            delays.push(Delay::Millis(non_negative(&field("delay_ms"), ms)?));
        }
        if let Some(at) = self.deliver_at {
            delays.push(Delay::At(non_negative(&field("deliver_at"), at)?));
        }
        if delays.len() > 1 {
            return Err(invalid(&field("delay"), "give at most one of delayLevel, delayMs and deliverAt"));
        }
        Ok(OutgoingMessage {
            body: self.body.to_vec(),
            tag: self.tag,
            keys: self.keys.unwrap_or_default(),
            properties: self.properties.unwrap_or_default().into_iter().collect(),
            delay: delays.pop(),
            sharding_key: self.sharding_key,
            transaction: None,
            idempotency_key: self.idempotency_key,
            born_ts: None,
        })
    }
}
