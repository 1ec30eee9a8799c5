//! Internal message properties: how the broker remembers, inside a stored record, where a
//! delayed, retried, dead-lettered or half message really belongs.
//!
//! They all start with `__` and are never shown to users; users may not set properties with
//! that prefix.

use std::collections::BTreeMap;

use super::types::{Message, MessageState};
use crate::store::StoredMessage;
use crate::{Error, Result};

/// Prefix of every internal property.
pub(crate) const PREFIX: &str = "__";
/// The topic a scheduled, retried or dead-lettered message is to be delivered to.
pub(crate) const REAL_TOPIC: &str = "__REAL_TOPIC";
/// The topic it was published to (for retry and DLQ copies).
pub(crate) const ORIGIN_TOPIC: &str = "__ORIGIN_TOPIC";
/// Queue and offset in the topic it was published to.
pub(crate) const ORIGIN_QUEUE: &str = "__ORIGIN_QID";
pub(crate) const ORIGIN_OFFSET: &str = "__ORIGIN_QOFF";
/// Epoch ms at which a scheduled message is due.
pub(crate) const DELIVER_AT: &str = "__DELIVER_AT";
/// The sharding key (queue selection on re-store).
pub(crate) const SHARDING_KEY: &str = "__SHARDING_KEY";
/// Transaction id of a half message.
pub(crate) const TX_ID: &str = "__TX_ID";
/// Producer group of a half message.
pub(crate) const PRODUCER_GROUP: &str = "__PRODUCER_GROUP";
/// Operation recorded in the transaction op topic.
pub(crate) const TX_OP: &str = "__TX_OP";
/// Commit offset of the half message an op refers to.
pub(crate) const TX_HALF_OFFSET: &str = "__TX_HALF_OFFSET";

/// Rejects user properties that use the internal prefix.
pub(crate) fn validate_user_properties(props: &BTreeMap<String, String>, field: &str) -> Result<()> {
    for name in props.keys() {
        if name.is_empty() {
            return Err(Error::invalid(format!("{field}/properties"), "property names must not be empty"));
        }
        if name.starts_with(PREFIX) {
            return Err(Error::invalid(
                format!("{field}/properties/{name}"),
                format!("property names starting with {PREFIX:?} are reserved"),
            ));
        }
    }
    Ok(())
}

/// The user's properties of a record, without internal ones.
pub(crate) fn user_properties(props: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    props.iter().filter(|(k, _)| !k.starts_with(PREFIX)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Turns a stored record into the message users see.
///
/// For a record in a system or retry topic the message shows its original topic and place; a
/// scheduled or half message has no place in its topic yet.
pub(crate) fn to_message(rec: StoredMessage, state: MessageState) -> Message {
    let p = &rec.properties;
    let origin = p.get(ORIGIN_TOPIC).or_else(|| p.get(REAL_TOPIC)).cloned();
    let (topic, queue_id, queue_offset, commit_offset) = match (state, origin) {
        (MessageState::Stored, None) => {
            (rec.topic.clone(), Some(rec.queue_id), Some(rec.queue_offset), Some(rec.commit_offset))
        }
        (MessageState::Stored, Some(origin)) => (
            origin,
            p.get(ORIGIN_QUEUE).and_then(|v| v.parse().ok()).or(Some(rec.queue_id)),
            p.get(ORIGIN_OFFSET).and_then(|v| v.parse().ok()).or(Some(rec.queue_offset)),
            Some(rec.commit_offset),
        ),
        (_, origin) => (origin.unwrap_or_else(|| rec.topic.clone()), None, None, None),
    };
    Message {
        msg_id: rec.msg_id,
        topic,
        queue_id,
        queue_offset,
        commit_offset,
        properties: user_properties(&rec.properties),
        body: rec.body,
        tag: rec.tag,
        keys: rec.keys,
        born_ts: rec.born_ts,
        store_ts: rec.store_ts,
        reconsume_times: rec.reconsume_times,
        receipt: None,
        state,
    }
}
