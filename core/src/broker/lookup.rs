//! Lookups by message id, key and store time, for replay and troubleshooting.

use super::props::{self, TX_ID};
use super::topic::{SCHEDULE_TOPIC, TIMER_TOPIC, TRANS_HALF_TOPIC};
use super::types::{Message, MessageState};
use super::Broker;
use crate::{Error, Result};

impl Broker {
    /// The message with this id, wherever it stands: stored in its topic (or its retry/DLQ
    /// copy), scheduled, or half. `NotFound` if unknown.
    pub async fn message(&self, msg_id: &str) -> Result<Message> {
        if !super::msg_id::is_well_formed(msg_id) {
            return Err(Error::not_found("message", msg_id));
        }
        let id = msg_id.to_string();
        let records = self
            .blocking(move |s| {
                s.lookup_msg_id(&id)?.into_iter().map(|o| Ok((o, s.read(o)?))).collect::<Result<Vec<_>>>()
            })
            .await?;
        let mut scheduled = None;
        let mut half = None;
        let mut stored = None;
        for (offset, rec) in records {
            match rec.topic.as_str() {
                SCHEDULE_TOPIC | TIMER_TOPIC => scheduled = Some(rec),
                TRANS_HALF_TOPIC => half = Some(rec),
                t if t.starts_with("RMQ_SYS_") => {}
                t if t.starts_with('%') => {
                    if stored.is_none() {
                        stored = Some(rec);
                    }
                }
                // Stored in a topic deleted since.
                t if self.dropped.hides(t, offset) => {}
                _ => stored = Some(rec),
            }
        }
        if let Some(rec) = stored {
            return Ok(props::to_message(rec, MessageState::Stored));
        }
        if let Some(rec) = scheduled {
            return Ok(props::to_message(rec, MessageState::Scheduled));
        }
        if let Some(rec) = half {
            let pending = rec.properties.get(TX_ID).is_some_and(|tx| self.transactions.is_pending(tx));
            if pending {
                return Ok(props::to_message(rec, MessageState::Half));
            }
        }
        Err(Error::not_found("message", msg_id))
    }

    /// Messages of `topic` by key and/or store-time range (`from_ts` inclusive, `to_ts`
    /// exclusive), oldest first, at most `limit` (1..=1000).
    pub async fn find_messages(
        &self,
        topic: &str,
        key: Option<&str>,
        from_ts: Option<u64>,
        to_ts: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        if limit == 0 || limit > 1000 {
            return Err(Error::invalid("/limit", "must be 1 to 1000"));
        }
        self.topics.get(topic).ok_or_else(|| Error::not_found("topic", topic))?;
        let from = from_ts.unwrap_or(0);
        let to = to_ts.unwrap_or(u64::MAX);
        if from >= to {
            return Ok(Vec::new());
        }
        // Records of an earlier topic of this name, deleted since, lie below its cut.
        let since = self.dropped.cut(topic).unwrap_or(0);
        let topic = topic.to_string();
        let key = key.map(str::to_string);
        let records = self
            .blocking(move |s| {
                let offsets = match &key {
                    Some(k) => s.lookup_key(&topic, k, 100_000)?,
                    None => s.lookup_time(&topic, from, to, limit)?,
                };
                let mut out = Vec::new();
                for o in offsets.into_iter().filter(|o| *o >= since) {
                    let rec = s.read(o)?;
                    if rec.topic == topic && rec.store_ts >= from && rec.store_ts < to {
                        out.push(rec);
                        if out.len() >= limit {
                            break;
                        }
                    }
                }
                Ok(out)
            })
            .await?;
        Ok(records.into_iter().map(|r| props::to_message(r, MessageState::Stored)).collect())
    }
}
