//! The records that cross the FFI: a message to publish ([`FfiOutgoing`]), a stored or
//! received message ([`FfiMessage`]) and a publish result ([`FfiSendResult`]), with their
//! conversions to and from the client's types. Numbers are signed (`Long`, `Int` in Kotlin,
//! which Java reads too); a negative one is an invalid argument.

use std::collections::HashMap;
use std::time::Duration;

use ferrymq_core::client::{Delay, Message, MessageState, OutgoingMessage, SendResult};

use crate::error::FfiError;

/// A message to publish.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiOutgoing {
    /// The body, stored byte for byte.
    pub body: Vec<u8>,
    /// The tag, which tag filters match.
    pub tag: Option<String>,
    /// Keys, indexed for lookup.
    pub keys: Vec<String>,
    /// Properties, which SQL filters match.
    pub properties: HashMap<String, String>,
    /// One of the broker's delay levels (1-based).
    pub delay_level: Option<i32>,
    /// Delivery this many milliseconds after the send.
    pub delay_ms: Option<i64>,
    /// Delivery at this epoch-millisecond time.
    pub deliver_at: Option<i64>,
    /// The FIFO group: one sharding key, one queue.
    pub sharding_key: Option<String>,
    /// A repeat with this key within the dedup window returns the first result.
    pub idempotency_key: Option<String>,
}

/// A message as stored: the contract's "Message out".
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiMessage {
    /// Unique id, stable through delay, retry, DLQ and transaction commit.
    pub msg_id: String,
    /// The topic it was published to.
    pub topic: String,
    /// Its queue (none yet for scheduled and half messages).
    pub queue_id: Option<i32>,
    /// Its offset in the queue.
    pub queue_offset: Option<i64>,
    /// Its position in the commit log.
    pub commit_offset: Option<i64>,
    /// The body.
    pub body: Vec<u8>,
    /// The tag.
    pub tag: Option<String>,
    /// The keys.
    pub keys: Vec<String>,
    /// The properties.
    pub properties: HashMap<String, String>,
    /// When the producer made it (epoch ms).
    pub born_ts: i64,
    /// When the broker stored it (epoch ms).
    pub store_ts: i64,
    /// Deliveries before this one that failed.
    pub reconsume_times: i32,
    /// The lease receipt, for messages received by a simple consumer.
    pub receipt: Option<String>,
    /// `stored`, `scheduled` or `half`.
    pub state: String,
}

/// The result of a publish.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FfiSendResult {
    /// The new message's id.
    pub msg_id: String,
    /// Its queue (none for delayed and transactional sends).
    pub queue_id: Option<i32>,
    /// Its queue offset (none for delayed and transactional sends).
    pub queue_offset: Option<i64>,
    /// The transaction, for transactional sends.
    pub transaction_id: Option<String>,
}

/// `value` as an unsigned number, or an invalid argument naming `field`.
pub(crate) fn unsigned(field: &str, value: i64) -> Result<u64, FfiError> {
    u64::try_from(value).map_err(|_| FfiError::invalid(field, format!("must not be negative, got {value}")))
}

/// `ms` as a duration, or an invalid argument naming `field`.
pub(crate) fn millis(field: &str, ms: i64) -> Result<Duration, FfiError> {
    unsigned(field, ms).map(Duration::from_millis)
}

pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl FfiOutgoing {
    /// The client's message; at most one of the three delays may be set.
    pub(crate) fn into_core(self) -> Result<OutgoingMessage, FfiError> {
        let delays = [self.delay_level.is_some(), self.delay_ms.is_some(), self.deliver_at.is_some()];
        if delays.iter().filter(|&&set| set).count() > 1 {
            return Err(FfiError::invalid("/delay", "give at most one of delay_level, delay_ms and deliver_at"));
        }
        let delay = if let Some(level) = self.delay_level {
            let level = u32::try_from(level).map_err(|_| FfiError::invalid("/delay_level", "must be 1 or more"))?;
            Some(Delay::Level(level))
        } else if let Some(ms) = self.delay_ms {
            Some(Delay::Millis(unsigned("/delay_ms", ms)?))
        } else if let Some(at) = self.deliver_at {
            Some(Delay::At(unsigned("/deliver_at", at)?))
        } else {
            None
        };
        Ok(OutgoingMessage {
            body: self.body,
            tag: self.tag,
            keys: self.keys,
            properties: self.properties.into_iter().collect(),
            delay,
            sharding_key: self.sharding_key,
            idempotency_key: self.idempotency_key,
            ..OutgoingMessage::default()
        })
    }
}

pub(crate) fn state_name(state: MessageState) -> &'static str {
    match state {
        MessageState::Stored => "stored",
        MessageState::Scheduled => "scheduled",
        MessageState::Half => "half",
    }
}

impl From<Message> for FfiMessage {
    fn from(m: Message) -> Self {
        FfiMessage {
            msg_id: m.msg_id,
            topic: m.topic,
            queue_id: m.queue_id.map(|q| i32::try_from(q).unwrap_or(i32::MAX)),
            queue_offset: m.queue_offset.map(signed),
            commit_offset: m.commit_offset.map(signed),
            body: m.body,
            tag: m.tag,
            keys: m.keys,
            properties: m.properties.into_iter().collect(),
            born_ts: signed(m.born_ts),
            store_ts: signed(m.store_ts),
            reconsume_times: i32::try_from(m.reconsume_times).unwrap_or(i32::MAX),
            receipt: m.receipt,
            state: state_name(m.state).to_string(),
        }
    }
}

impl FfiMessage {
    /// The client's message again (a simple consumer acks by the receipt it carries).
    pub(crate) fn into_core(self) -> Message {
        Message {
            msg_id: self.msg_id,
            topic: self.topic,
            queue_id: self.queue_id.and_then(|q| u32::try_from(q).ok()),
            queue_offset: self.queue_offset.and_then(|o| u64::try_from(o).ok()),
            commit_offset: self.commit_offset.and_then(|o| u64::try_from(o).ok()),
            body: self.body,
            tag: self.tag,
            keys: self.keys,
            properties: self.properties.into_iter().collect(),
            born_ts: u64::try_from(self.born_ts).unwrap_or(0),
            store_ts: u64::try_from(self.store_ts).unwrap_or(0),
            reconsume_times: u32::try_from(self.reconsume_times).unwrap_or(0),
            receipt: self.receipt,
            state: match self.state.as_str() {
                "scheduled" => MessageState::Scheduled,
                "half" => MessageState::Half,
                _ => MessageState::Stored,
            },
        }
    }
}

impl From<SendResult> for FfiSendResult {
    fn from(r: SendResult) -> Self {
        FfiSendResult {
            msg_id: r.msg_id,
            queue_id: r.queue_id.map(|q| i32::try_from(q).unwrap_or(i32::MAX)),
            queue_offset: r.queue_offset.map(signed),
            transaction_id: r.transaction_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing() -> FfiOutgoing {
        FfiOutgoing {
            body: b"b".to_vec(),
            tag: Some("t".into()),
            keys: vec!["k".into()],
            properties: HashMap::from([("p".into(), "v".into())]),
            delay_level: None,
            delay_ms: None,
            deliver_at: None,
            sharding_key: None,
            idempotency_key: None,
        }
    }

    #[test]
    fn one_delay_at_most() {
        let m = FfiOutgoing { delay_ms: Some(5), ..outgoing() }.into_core().expect("valid");
        assert_eq!(m.delay, Some(Delay::Millis(5)));
        let both = FfiOutgoing { delay_ms: Some(5), delay_level: Some(1), ..outgoing() }.into_core();
        assert!(matches!(both, Err(FfiError::Failure { field: Some(ref f), .. }) if f == "/delay"));
        let negative = FfiOutgoing { deliver_at: Some(-1), ..outgoing() }.into_core();
        assert!(matches!(negative, Err(FfiError::Failure { field: Some(ref f), .. }) if f == "/deliver_at"));
    }

    #[test]
    fn messages_round_trip() {
        let m = Message {
            msg_id: "id".into(),
            topic: "t".into(),
            queue_id: Some(3),
            queue_offset: Some(7),
            commit_offset: None,
            body: vec![0, 255],
            tag: None,
            keys: vec![],
            properties: Default::default(),
            born_ts: 1,
            store_ts: 2,
            reconsume_times: 1,
            receipt: Some("r".into()),
            state: MessageState::Half,
        };
        assert_eq!(FfiMessage::from(m.clone()).into_core(), m);
    }
}
