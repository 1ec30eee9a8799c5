//! Sending: validation, queue selection, idempotency, and the one path by which every message
//! (plain, delayed, half) reaches the store.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::dedup::{fingerprint, DedupEntry};
use super::props;
use super::topic::{SCHEDULE_TOPIC, TIMER_TOPIC, TRANS_HALF_TOPIC};
use super::types::{Delay, OutgoingMessage, SendResult, TopicInfo};
use super::{now_ms, Broker};
use crate::store::NewMessage;
use crate::{Error, Result};

/// How long a send waits for its message to be dispatched before answering anyway.
const DISPATCH_WAIT: Duration = Duration::from_secs(10);

/// A publish in flight (see [`Broker::send_batch_pipelined`]): resolves to its results.
pub type SendCompletion = futures::future::BoxFuture<'static, Result<Vec<SendResult>>>;

/// Where one outgoing message is headed in the store.
enum Placement {
    Visible,
    Scheduled,
    Half { transaction_id: String },
}

impl Broker {
    /// Publishes one message. The topic is created on first use when `auto_create_topics` is on.
    /// Returns once the message is stored (fsynced under `sync` flush) and dispatched, so a
    /// receive that starts afterwards sees it.
    pub async fn send(&self, topic: &str, msg: OutgoingMessage) -> Result<SendResult> {
        let mut results = self.send_messages(topic, vec![msg], None, "").await?;
        Ok(results.remove(0))
    }

    /// Publishes a batch atomically: all of it is stored, or none. `batch_key` makes the whole
    /// batch idempotent.
    pub async fn send_batch(
        &self,
        topic: &str,
        msgs: Vec<OutgoingMessage>,
        batch_key: Option<String>,
    ) -> Result<Vec<SendResult>> {
        self.check_batch(&msgs)?;
        self.send_messages(topic, msgs, batch_key, "/messages").await
    }

    /// Publishes a batch atomically like [`Broker::send_batch`], in two steps, for a caller
    /// that keeps several batches in flight and needs them stored in the order of its calls
    /// (a WebSocket connection's publishes): this returns once the batch is appended, or with
    /// the error `send_batch` would give before storing anything; the [`SendCompletion`]
    /// resolves to `send_batch`'s answer once the batch is durable and dispatched. A batch
    /// with idempotency keys (per message, or `batch_key`) is deduplicated and stored
    /// completely before this returns.
    pub async fn send_batch_pipelined(
        &self,
        topic: &str,
        msgs: Vec<OutgoingMessage>,
        batch_key: Option<String>,
    ) -> Result<SendCompletion> {
        self.check_batch(&msgs)?;
        self.send_pipelined(topic, msgs, batch_key, "/messages").await
    }

    /// Publishes one message in two steps, as [`Broker::send_batch_pipelined`] does a batch;
    /// its errors are those of [`Broker::send`].
    pub async fn send_one_pipelined(&self, topic: &str, msg: OutgoingMessage) -> Result<SendCompletion> {
        self.send_pipelined(topic, vec![msg], None, "").await
    }

    /// Publishes single sends that arrived together (none with an idempotency key) as one
    /// atomic batch, in two steps like [`Broker::send_batch_pipelined`]. A batch refused
    /// before anything is stored gives its messages back with the error, so the caller can
    /// send each on its own and give every sender its own answer; an error from the store
    /// itself gives none back, and is every sender's answer.
    pub fn send_together_pipelined(
        &self,
        topic: &str,
        msgs: Vec<OutgoingMessage>,
    ) -> std::result::Result<SendCompletion, (Error, Vec<OutgoingMessage>)> {
        let checked = self.check_batch(&msgs).and_then(|()| {
            if msgs.iter().any(|m| m.idempotency_key.is_some()) {
                return Err(Error::invalid("", "sends with an idempotency key are not sent together"));
            }
            msgs.iter().try_for_each(|m| self.validate_message(m, ""))?;
            self.topic_for_write(topic)
        });
        match checked {
            Ok(topic) => match self.append_messages(&topic, msgs) {
                Ok(done) => Ok(Box::pin(done)),
                Err(err) => Err((err, Vec::new())),
            },
            Err(err) => Err((err, msgs)),
        }
    }

    async fn send_pipelined(
        &self,
        topic: &str,
        msgs: Vec<OutgoingMessage>,
        batch_key: Option<String>,
        field: &str,
    ) -> Result<SendCompletion> {
        if batch_key.is_some() || msgs.iter().any(|m| m.idempotency_key.is_some()) {
            let results = self.send_messages(topic, msgs, batch_key, field).await?;
            return Ok(Box::pin(std::future::ready(Ok(results))));
        }
        for (i, m) in msgs.iter().enumerate() {
            let f = if field.is_empty() { String::new() } else { format!("{field}/{i}") };
            self.validate_message(m, &f)?;
        }
        let topic = self.topic_for_write(topic)?;
        Ok(Box::pin(self.append_messages(&topic, msgs)?))
    }

    /// The batch limits: at least one message, at most `max_batch_messages` and
    /// `max_batch_bytes` of bodies.
    fn check_batch(&self, msgs: &[OutgoingMessage]) -> Result<()> {
        if msgs.is_empty() {
            return Err(Error::invalid("/messages", "a batch needs at least one message"));
        }
        if msgs.len() > self.config.max_batch_messages {
            return Err(Error::BatchTooLarge {
                unit: "messages",
                size: msgs.len(),
                max: self.config.max_batch_messages,
            });
        }
        let bytes: usize = msgs.iter().map(|m| m.body.len()).sum();
        if bytes > self.config.max_batch_bytes {
            return Err(Error::BatchTooLarge { unit: "body bytes", size: bytes, max: self.config.max_batch_bytes });
        }
        Ok(())
    }

    async fn send_messages(
        &self,
        topic_name: &str,
        msgs: Vec<OutgoingMessage>,
        batch_key: Option<String>,
        field: &str,
    ) -> Result<Vec<SendResult>> {
        for (i, m) in msgs.iter().enumerate() {
            let f = if field.is_empty() { String::new() } else { format!("{field}/{i}") };
            self.validate_message(m, &f)?;
        }
        let topic = self.topic_for_write(topic_name)?;
        let keyed = batch_key.is_some() || msgs.iter().any(|m| m.idempotency_key.is_some());
        if !keyed {
            return self.store_messages(&topic, msgs).await;
        }
        // Sends sharing a key are serialised, so two concurrent repeats cannot both store;
        // sends with other keys (or on other topics) go on at the same time.
        let keys: Vec<String> = match &batch_key {
            Some(key) => vec![batch_key_name(key)],
            None => msgs.iter().filter_map(|m| m.idempotency_key.clone()).collect(),
        };
        let _guards = self.idempotency_locks.lock_all(topic_name, keys).await;
        let window = self.config.dedup_window.as_millis() as u64;
        if let Some(key) = &batch_key {
            let fp = fingerprint(&msgs);
            if let Some(seen) = self.dedup.get(topic_name, &batch_key_name(key), window) {
                return if seen.fingerprint == fp {
                    Ok(seen.results)
                } else {
                    Err(Error::IdempotencyConflict { key: key.clone() })
                };
            }
            let results = self.store_messages(&topic, msgs).await?;
            let entry = DedupEntry { fingerprint: fp, results: results.clone(), at_ms: now_ms() };
            let (topic_owned, entries) = (topic_name.to_string(), vec![(batch_key_name(key), entry)]);
            self.off_runtime(move |b| b.dedup.insert(&topic_owned, entries, window)).await?;
            return Ok(results);
        }
        // Per-message keys: repeats answer from the table; a key repeated inside the batch is
        // one message, whose result every repeat gets; the rest are stored together.
        let mut answers: Vec<Option<SendResult>> = vec![None; msgs.len()];
        let mut fresh: Vec<(usize, OutgoingMessage)> = Vec::new();
        let mut fresh_keys: HashMap<String, (usize, u64)> = HashMap::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (i, m) in msgs.into_iter().enumerate() {
            if let Some(key) = &m.idempotency_key {
                let fp = fingerprint([&m]);
                if let Some(seen) = self.dedup.get(topic_name, key, window) {
                    if seen.fingerprint != fp {
                        return Err(Error::IdempotencyConflict { key: key.clone() });
                    }
                    answers[i] = seen.results.into_iter().next();
                    continue;
                }
                if let Some(&(first, first_fp)) = fresh_keys.get(key) {
                    if first_fp != fp {
                        return Err(Error::IdempotencyConflict { key: key.clone() });
                    }
                    repeats.push((i, first));
                    continue;
                }
                fresh_keys.insert(key.clone(), (i, fp));
            }
            fresh.push((i, m));
        }
        if !fresh.is_empty() {
            let (idx, fresh_msgs): (Vec<usize>, Vec<OutgoingMessage>) = fresh.into_iter().unzip();
            let keys: Vec<Option<String>> = fresh_msgs.iter().map(|m| m.idempotency_key.clone()).collect();
            let results = self.store_messages(&topic, fresh_msgs).await?;
            let mut entries = Vec::new();
            for ((i, key), r) in idx.into_iter().zip(keys).zip(results) {
                if let Some(key) = key {
                    let fp = fresh_keys.get(&key).map(|(_, fp)| *fp).unwrap_or(0);
                    entries.push((key, DedupEntry { fingerprint: fp, results: vec![r.clone()], at_ms: now_ms() }));
                }
                answers[i] = Some(r);
            }
            let topic_owned = topic_name.to_string();
            self.off_runtime(move |b| b.dedup.insert(&topic_owned, entries, window)).await?;
        }
        for (i, first) in repeats {
            answers[i] = answers[first].clone();
        }
        answers
            .into_iter()
            .map(|a| a.ok_or_else(|| Error::Unavailable("idempotent send lost its result".into())))
            .collect()
    }

    fn validate_message(&self, m: &OutgoingMessage, field: &str) -> Result<()> {
        if m.body.len() > self.config.store.max_message_bytes {
            return Err(Error::MessageTooLarge { size: m.body.len(), max: self.config.store.max_message_bytes });
        }
        if let Some(tag) = &m.tag {
            if tag.is_empty() || tag.len() > 255 || tag.contains("||") {
                return Err(Error::invalid(format!("{field}/tag"), "must be 1 to 255 characters without '||'"));
            }
        }
        for (i, k) in m.keys.iter().enumerate() {
            if k.is_empty() || k.len() > 255 {
                return Err(Error::invalid(format!("{field}/keys/{i}"), "keys must be 1 to 255 characters"));
            }
        }
        props::validate_user_properties(&m.properties, field)?;
        let max_delay_ms = u64::try_from(self.config.max_delay.as_millis()).unwrap_or(u64::MAX);
        let levels = self.config.delay_levels.len();
        match m.delay {
            Some(Delay::Level(l)) if l == 0 || l as usize > levels => {
                return Err(Error::invalid(format!("{field}/delay_level"), format!("must be 1 to {levels}")));
            }
            Some(Delay::Millis(ms)) if ms == 0 || ms > max_delay_ms => {
                return Err(Error::invalid(format!("{field}/delay_ms"), format!("must be 1 to {max_delay_ms} ms")));
            }
            Some(Delay::At(at)) if at == 0 || at > now_ms().saturating_add(max_delay_ms) => {
                return Err(Error::invalid(
                    format!("{field}/deliver_at"),
                    "must be positive and at most max_delay ahead",
                ));
            }
            _ => {}
        }
        if let Some(group) = &m.transaction {
            super::validate_group_name(group).map_err(|_| {
                Error::invalid(format!("{field}/producer_group"), "a transactional send needs a valid producer_group")
            })?;
        }
        if let Some(key) = &m.idempotency_key {
            if key.is_empty() || key.len() > 255 {
                return Err(Error::invalid(format!("{field}/idempotency_key"), "must be 1 to 255 characters"));
            }
        }
        Ok(())
    }

    /// Picks a queue: the hash of the sharding key, or round robin.
    pub(crate) fn select_queue(&self, topic: &TopicInfo, sharding_key: Option<&str>) -> u32 {
        match sharding_key {
            Some(key) => (crate::store::tag_hash(key) % u64::from(topic.queues)) as u32,
            None => self.round_robin.fetch_add(1, Ordering::Relaxed) % topic.queues,
        }
    }

    /// Stores validated messages of one topic in one atomic append and waits for dispatch.
    async fn store_messages(&self, topic: &TopicInfo, msgs: Vec<OutgoingMessage>) -> Result<Vec<SendResult>> {
        self.append_messages(topic, msgs)?.await
    }

    /// Queues validated messages of one topic for one atomic append now; the returned future
    /// waits for the append, durability and dispatch and gives the results.
    fn append_messages(
        &self,
        topic: &TopicInfo,
        msgs: Vec<OutgoingMessage>,
    ) -> Result<impl Future<Output = Result<Vec<SendResult>>> + Send + 'static> {
        let me = self.me.upgrade().ok_or_else(|| Error::Unavailable("the broker is shutting down".into()))?;
        let now = now_ms();
        let mut records = Vec::with_capacity(msgs.len());
        let mut placements = Vec::with_capacity(msgs.len());
        let mut bytes = 0u64;
        for m in msgs {
            bytes += m.body.len() as u64;
            let msg_id = self.ids.next();
            let mut rec = NewMessage {
                topic: topic.name.clone(),
                queue_id: 0,
                msg_id,
                tag: m.tag,
                keys: m.keys,
                properties: m.properties,
                body: m.body,
                flags: 0,
                born_ts: m.born_ts.unwrap_or(now),
                reconsume_times: 0,
            };
            if let Some(key) = &m.sharding_key {
                rec.properties.insert(props::SHARDING_KEY.into(), key.clone());
            }
            let placement = if let Some(group) = m.transaction {
                // Random, not from the id counter: a transaction id must not be guessable.
                let transaction_id = format!("{:032X}", rand::random::<u128>());
                rec.properties.insert(props::REAL_TOPIC.into(), topic.name.clone());
                rec.properties.insert(props::TX_ID.into(), transaction_id.clone());
                rec.properties.insert(props::PRODUCER_GROUP.into(), group);
                if let Some(delay) = m.delay {
                    rec.properties.insert(props::DELIVER_AT.into(), self.due_time(delay, now).0.to_string());
                }
                rec.topic = TRANS_HALF_TOPIC.into();
                Placement::Half { transaction_id }
            } else if let Some(delay) = m.delay.filter(|d| !matches!(d, Delay::At(at) if *at <= now)) {
                self.schedule_record(&mut rec, delay, now, &topic.name);
                Placement::Scheduled
            } else {
                // Also a `deliver_at` that has come already: nothing to wait for.
                rec.queue_id = self.select_queue(topic, m.sharding_key.as_deref());
                Placement::Visible
            };
            records.push(rec);
            placements.push(placement);
        }
        let msg_ids: Vec<String> = records.iter().map(|r| r.msg_id.clone()).collect();
        let appended = self.append_records(records)?;
        let topic_name = topic.name.clone();
        Ok(async move {
            let appended = appended.await?;
            Ok(me.send_results(&topic_name, bytes, placements, appended, msg_ids))
        })
    }

    /// What a send answers for appended messages; registers half messages with the
    /// transaction table.
    fn send_results(
        &self,
        topic: &str,
        bytes: u64,
        placements: Vec<Placement>,
        appended: Vec<Appended>,
        msg_ids: Vec<String>,
    ) -> Vec<SendResult> {
        self.counters.published(topic, appended.len() as u64, bytes);
        let mut results = Vec::with_capacity(appended.len());
        for ((placement, res), msg_id) in placements.into_iter().zip(&appended).zip(msg_ids) {
            results.push(match placement {
                Placement::Visible => SendResult {
                    msg_id,
                    queue_id: Some(res.queue_id),
                    queue_offset: Some(res.queue_offset),
                    transaction_id: None,
                },
                Placement::Scheduled => SendResult { msg_id, queue_id: None, queue_offset: None, transaction_id: None },
                Placement::Half { transaction_id } => {
                    let half = super::transaction::HalfInfo {
                        msg_id: &msg_id,
                        topic,
                        offset: res.commit_offset,
                        created_ms: res.store_ts,
                    };
                    self.transactions.add_half(&transaction_id, half, res.group.clone());
                    SendResult { msg_id, queue_id: None, queue_offset: None, transaction_id: Some(transaction_id) }
                }
            });
        }
        results
    }

    /// Turns `rec` into a scheduled record for `real_topic`: a delay level goes to its queue of
    /// the schedule topic, an arbitrary time to the timer topic.
    pub(crate) fn schedule_record(&self, rec: &mut NewMessage, delay: Delay, now: u64, real_topic: &str) {
        let (due, level) = self.due_time(delay, now);
        rec.properties.insert(props::REAL_TOPIC.into(), real_topic.to_string());
        rec.properties.insert(props::DELIVER_AT.into(), due.to_string());
        match level {
            Some(level) => {
                rec.topic = SCHEDULE_TOPIC.into();
                rec.queue_id = level - 1;
            }
            None => {
                rec.topic = TIMER_TOPIC.into();
                rec.queue_id = 0;
            }
        }
    }

    /// When a delay is due (epoch ms), and its level if it is one. Arbitrary times round up to
    /// the timer precision: never early.
    pub(crate) fn due_time(&self, delay: Delay, now: u64) -> (u64, Option<u32>) {
        let precision = self.config.timer_precision.as_millis().max(1) as u64;
        let round_up = |t: u64| t.div_ceil(precision).saturating_mul(precision);
        match delay {
            Delay::Level(l) => {
                let idx = (l.max(1) as usize - 1).min(self.config.delay_levels.len() - 1);
                let level_ms = u64::try_from(self.config.delay_levels[idx].as_millis()).unwrap_or(u64::MAX);
                (now.saturating_add(level_ms), Some(idx as u32 + 1))
            }
            Delay::Millis(ms) => (round_up(now.saturating_add(ms)), None),
            Delay::At(at) => (round_up(at.max(now)), None),
        }
    }

    /// Appends records atomically and waits until the dispatcher has made them visible.
    pub(crate) async fn append_and_dispatch(&self, records: Vec<NewMessage>) -> Result<Vec<Appended>> {
        self.append_records(records)?.await
    }

    /// Queues records for one atomic append by the store's writer thread now, and returns the
    /// rest of the work: a future that waits until they are written, durable (under `sync`
    /// flush; a group commit the store's sync thread shares with every other append) and
    /// dispatched. No thread waits meanwhile, and records queued one call after another are
    /// appended in that order even while the earlier futures are still pending.
    pub(crate) fn append_records(
        &self,
        records: Vec<NewMessage>,
    ) -> Result<impl Future<Output = Result<Vec<Appended>>> + Send + 'static> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Unavailable("the broker is shutting down".into()));
        }
        let groups: Vec<Option<String>> =
            records.iter().map(|r| r.properties.get(props::PRODUCER_GROUP).cloned()).collect();
        let queue_ids: Vec<u32> = records.iter().map(|r| r.queue_id).collect();
        let appending = self.store.append_batch_queued(records)?;
        let store = self.store.clone();
        Ok(async move {
            let (results, end) = appending.await?;
            // In sync mode dispatched means durable too, so one wake-up serves both; short of
            // it (a full disk stalls dispatch, a poisoned store never gets there) durability
            // decides, and its error is the answer.
            let durable_first = !store.dispatch_implies_durable();
            if durable_first {
                store.durable(end).await?;
            }
            if !matches!(tokio::time::timeout(DISPATCH_WAIT, store.dispatched(end)).await, Ok(true)) {
                if !durable_first {
                    store.durable(end).await?;
                }
                tracing::warn!(offset = end, "dispatch is slow; answering before it");
            }
            Ok(results
                .into_iter()
                .zip(groups)
                .zip(queue_ids)
                .map(|((r, group), queue_id)| Appended {
                    commit_offset: r.commit_offset,
                    queue_id,
                    queue_offset: r.queue_offset,
                    store_ts: r.store_ts,
                    group,
                })
                .collect())
        })
    }
}

/// One appended record.
#[derive(Debug, Clone)]
pub(crate) struct Appended {
    pub(crate) commit_offset: u64,
    pub(crate) queue_id: u32,
    pub(crate) queue_offset: u64,
    pub(crate) store_ts: u64,
    pub(crate) group: Option<String>,
}

fn batch_key_name(key: &str) -> String {
    format!("batch:{key}")
}
