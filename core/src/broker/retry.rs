//! Retry and dead letters: a failed message goes to `%RETRY%<group>` with a growing delay and
//! `reconsume_times + 1`, and after the group's `max_reconsume_times` to `%DLQ%<group>`, where it
//! can be listed and re-sent to its topic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use super::meta::MetaFile;
use super::props::{self, ORIGIN_OFFSET, ORIGIN_QUEUE, ORIGIN_TOPIC};
use super::topic::{dlq_topic, retry_topic};
use super::types::{Delay, Message, MessageState, SendResult};
use super::{now_ms, validate_group_name, Broker};
use crate::store::{NewMessage, StoredMessage};
use crate::{Error, Result};

/// Most dead letters listed at once.
const DLQ_LIST_LIMIT: u64 = 1000;

/// Message ids re-sent out of each group's DLQ (they no longer count as dead letters).
#[derive(Debug)]
pub(crate) struct DlqRemoved {
    file: MetaFile,
    ids: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl DlqRemoved {
    pub(crate) fn open(file: MetaFile) -> Result<DlqRemoved> {
        let ids = file.load()?;
        Ok(DlqRemoved { file, ids: Mutex::new(ids) })
    }

    fn contains(&self, group: &str, msg_id: &str) -> bool {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).get(group).is_some_and(|s| s.contains(msg_id))
    }

    fn insert(&self, group: &str, msg_id: &str) -> Result<()> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.entry(group.to_string()).or_default().insert(msg_id.to_string());
        self.file.save(&*ids)
    }
}

/// A copy of `rec` for re-storing elsewhere, remembering where it was first published.
fn copy_for(rec: &StoredMessage, user_topic: &str) -> NewMessage {
    let mut properties = rec.properties.clone();
    properties.remove(props::REAL_TOPIC);
    properties.remove(props::DELIVER_AT);
    properties.entry(ORIGIN_TOPIC.into()).or_insert_with(|| user_topic.to_string());
    properties.entry(ORIGIN_QUEUE.into()).or_insert_with(|| rec.queue_id.to_string());
    properties.entry(ORIGIN_OFFSET.into()).or_insert_with(|| rec.queue_offset.to_string());
    NewMessage {
        topic: String::new(),
        queue_id: 0,
        msg_id: rec.msg_id.clone(),
        tag: rec.tag.clone(),
        keys: rec.keys.clone(),
        properties,
        body: rec.body.clone(),
        flags: 0,
        born_ts: rec.born_ts,
        reconsume_times: rec.reconsume_times,
    }
}

impl Broker {
    /// Sends a failed message back to `group`. `delay`: `None` for the retry delay of level
    /// `3 + reconsume_times`, zero for at once.
    pub(crate) async fn send_back(
        &self,
        group: &str,
        rec: StoredMessage,
        user_topic: &str,
        delay: Option<Duration>,
    ) -> Result<()> {
        let mut copy = copy_for(&rec, user_topic);
        if rec.reconsume_times >= self.max_reconsume_times(group) {
            copy.topic = dlq_topic(group);
            tracing::info!(group, msg_id = %rec.msg_id, "message moved to the dead-letter queue");
            self.append_and_dispatch(vec![copy]).await?;
            return Ok(());
        }
        copy.reconsume_times = rec.reconsume_times + 1;
        let retry = retry_topic(group);
        let levels = self.config.delay_levels.len() as u32;
        let delay = match delay {
            None => Some(Delay::Level((3 + rec.reconsume_times).min(levels))),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(Delay::Millis(d.as_millis() as u64)),
        };
        match delay {
            Some(delay) => self.schedule_record(&mut copy, delay, now_ms(), &retry),
            None => copy.topic = retry,
        }
        self.append_and_dispatch(vec![copy]).await?;
        Ok(())
    }

    async fn dlq_records(&self, group: &str) -> Result<Vec<StoredMessage>> {
        validate_group_name(group)?;
        let topic = dlq_topic(group);
        let records = self
            .blocking(move |s| {
                let (min, max) = s.queue_bounds(&topic, 0);
                let from = min.max(max.saturating_sub(DLQ_LIST_LIMIT));
                let units = s.read_queue(&topic, 0, from, (max - from) as usize)?;
                units.into_iter().map(|u| s.read(u.commit_offset)).collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(records.into_iter().filter(|r| !self.dlq_removed.contains(group, &r.msg_id)).collect())
    }

    /// The group's dead letters, oldest first.
    pub async fn dlq(&self, group: &str) -> Result<Vec<Message>> {
        Ok(self.dlq_records(group).await?.into_iter().map(|r| props::to_message(r, MessageState::Stored)).collect())
    }

    /// Moves a dead letter back to its topic with `reconsume_times` 0 and the same `msg_id`.
    pub async fn resend_dlq(&self, group: &str, msg_id: &str) -> Result<SendResult> {
        let rec = self
            .dlq_records(group)
            .await?
            .into_iter()
            .rev()
            .find(|r| r.msg_id == msg_id)
            .ok_or_else(|| Error::not_found("dead letter", msg_id))?;
        let topic_name = rec.properties.get(ORIGIN_TOPIC).cloned().unwrap_or_else(|| rec.topic.clone());
        let topic = self.topic_for_write(&topic_name)?;
        let mut copy = copy_for(&rec, &topic_name);
        for p in [ORIGIN_TOPIC, ORIGIN_QUEUE, ORIGIN_OFFSET] {
            copy.properties.remove(p);
        }
        copy.reconsume_times = 0;
        copy.topic = topic.name.clone();
        copy.queue_id = self.select_queue(&topic, copy.properties.get(props::SHARDING_KEY).map(String::as_str));
        let queue_id = copy.queue_id;
        let appended = self.append_and_dispatch(vec![copy]).await?;
        self.dlq_removed.insert(group, msg_id)?;
        Ok(SendResult {
            msg_id: msg_id.to_string(),
            queue_id: Some(queue_id),
            queue_offset: appended.first().map(|a| a.queue_offset),
            transaction_id: None,
        })
    }
}
