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
use crate::store::{NewMessage, Store, StoredMessage};
use crate::{Error, Result};

/// Most dead letters listed at once.
const DLQ_LIST_LIMIT: u64 = 1000;

/// Dead letters re-sent out of each group's DLQ, by their position (queue offset) in
/// `%DLQ%<group>`: a message that fails again after a resend lands at a new position and is a
/// dead letter again, however often that happens. Positions that have left the listed window
/// (the last [`DLQ_LIST_LIMIT`] of the queue) are dropped, so the table stays bounded.
#[derive(Debug)]
pub(crate) struct DlqResent {
    file: MetaFile,
    positions: Mutex<BTreeMap<String, BTreeSet<u64>>>,
}

impl DlqResent {
    /// Opens the table. `legacy` is the file of an older version, which kept message ids: each
    /// id becomes the positions it had in the DLQ then, and the old file is removed.
    pub(crate) fn open(file: MetaFile, legacy: MetaFile, store: &Store) -> Result<DlqResent> {
        let mut positions: BTreeMap<String, BTreeSet<u64>> = file.load()?;
        if legacy.exists() {
            let ids: BTreeMap<String, BTreeSet<String>> = legacy.load()?;
            for (group, ids) in ids {
                let topic = dlq_topic(&group);
                let (min, max) = store.queue_bounds(&topic, 0);
                let from = min.max(max.saturating_sub(DLQ_LIST_LIMIT));
                for unit in store.read_queue(&topic, 0, from, (max - from) as usize)? {
                    if ids.contains(&store.read(unit.commit_offset)?.msg_id) {
                        positions.entry(group.clone()).or_default().insert(unit.queue_offset);
                    }
                }
            }
            file.save(&positions)?;
            legacy.remove()?;
        }
        Ok(DlqResent { file, positions: Mutex::new(positions) })
    }

    /// Positions remembered, over all groups.
    pub(crate) fn len(&self) -> usize {
        self.lock().values().map(BTreeSet::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<u64>>> {
        self.positions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn contains(&self, group: &str, position: u64) -> bool {
        self.lock().get(group).is_some_and(|s| s.contains(&position))
    }

    /// Records a resend; forgets positions below `keep_from` (no longer listed).
    fn insert(&self, group: &str, position: u64, keep_from: u64) -> Result<()> {
        let snapshot = {
            let mut positions = self.lock();
            let set = positions.entry(group.to_string()).or_default();
            set.insert(position);
            set.retain(|p| *p >= keep_from);
            positions.clone()
        };
        self.file.save(&snapshot)
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
        let copy = self.send_back_copy(group, &rec, user_topic, delay);
        self.append_and_dispatch(vec![copy]).await?;
        Ok(())
    }

    /// The record that sends `rec` back to `group`: its retry copy (scheduled after `delay`,
    /// see [`Broker::send_back`]) or, past the group's `max_reconsume_times`, its dead letter.
    pub(crate) fn send_back_copy(
        &self,
        group: &str,
        rec: &StoredMessage,
        user_topic: &str,
        delay: Option<Duration>,
    ) -> NewMessage {
        let mut copy = copy_for(rec, user_topic);
        if rec.reconsume_times >= self.max_reconsume_times(group) {
            copy.topic = dlq_topic(group);
            tracing::info!(group, msg_id = %rec.msg_id, "message moved to the dead-letter queue");
            return copy;
        }
        copy.reconsume_times = rec.reconsume_times + 1;
        let retry = retry_topic(group);
        let levels = self.config.delay_levels.len() as u32;
        let delay = match delay {
            None => Some(Delay::Level((3 + rec.reconsume_times).min(levels))),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(Delay::Millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
        };
        match delay {
            Some(delay) => self.schedule_record(&mut copy, delay, now_ms(), &retry),
            None => copy.topic = retry,
        }
        copy
    }

    /// The listed dead letters (not re-sent) with their DLQ position, and the first position
    /// still listed.
    async fn dlq_records(&self, group: &str) -> Result<(Vec<StoredMessage>, u64)> {
        validate_group_name(group)?;
        if !self.group_exists(group) {
            return Err(Error::not_found("group", group));
        }
        let topic = dlq_topic(group);
        let (records, from) = self
            .blocking(move |s| {
                let (min, max) = s.queue_bounds(&topic, 0);
                let from = min.max(max.saturating_sub(DLQ_LIST_LIMIT));
                let units = s.read_queue(&topic, 0, from, (max - from) as usize)?;
                let records = units.into_iter().map(|u| s.read(u.commit_offset)).collect::<Result<Vec<_>>>()?;
                Ok((records, from))
            })
            .await?;
        let listed = records.into_iter().filter(|r| !self.dlq_resent.contains(group, r.queue_offset)).collect();
        Ok((listed, from))
    }

    /// The group's dead letters, oldest first.
    pub async fn dlq(&self, group: &str) -> Result<Vec<Message>> {
        let (records, _) = self.dlq_records(group).await?;
        Ok(records.into_iter().map(|r| props::to_message(r, MessageState::Stored)).collect())
    }

    /// Moves a dead letter back to its topic with `reconsume_times` 0 and the same `msg_id`.
    /// Should it fail again, it goes back to the DLQ and can be re-sent again.
    pub async fn resend_dlq(&self, group: &str, msg_id: &str) -> Result<SendResult> {
        let (records, listed_from) = self.dlq_records(group).await?;
        let rec = records
            .into_iter()
            .rev()
            .find(|r| r.msg_id == msg_id)
            .ok_or_else(|| Error::not_found("dead letter", msg_id))?;
        let position = rec.queue_offset;
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
        let group_name = group.to_string();
        self.off_runtime(move |b| b.dlq_resent.insert(&group_name, position, listed_from)).await?;
        Ok(SendResult {
            msg_id: msg_id.to_string(),
            queue_id: Some(queue_id),
            queue_offset: appended.first().map(|a| a.queue_offset),
            transaction_id: None,
        })
    }
}
