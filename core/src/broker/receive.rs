//! Simple consumption (RocketMQ 5 style leases): `receive` hands out messages with a receipt and
//! makes them invisible to the rest of the group; `ack` marks them done; `nack` or an expired
//! lease sends them back through retry (or, orderly and broadcasting, redelivers in place).
//!
//! Per (owner, store topic, queue) the broker keeps the lowest offset not yet done
//! (`committed`, written through to the offset table), the done offsets above it, and the
//! deliveries in flight. A message is done when acked, skipped by the filter, or moved to retry
//! or the DLQ. At most one member holds a message at a time.
//!
//! Reads here are mmap reads of recent data from the caller's task; appends (retry copies) go
//! through the store's blocking path.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::long_poll::{enable_all, wait_any};
use super::offset_ranges::OffsetRanges;
use super::props::{self, ORIGIN_TOPIC};
use super::receipt::{Receipt, ReceiptPrefix};
use super::topic::retry_topic;
use super::types::*;
use super::{compile_filter, validate_group_name, Broker, Filter};
use crate::store::{CqUnit, Store};
use crate::{Error, Result};

/// Most units one receive scans in one queue (bounds the time the state lock is held).
const SCAN_LIMIT: u64 = 4096;
/// Most ended receipts remembered (the oldest are forgotten first, then answer `unknown`).
pub const MAX_ENDED_RECEIPTS: usize = 10_000;
/// Most messages a receive makes room for up front (a larger `max_messages` grows its batch
/// as it fills).
const MAX_RESERVED: usize = 256;
/// How long the outcome of an ended receipt is remembered, to answer `acked` or `expired`.
const ENDED_MEMORY: Duration = Duration::from_secs(600);
/// Most expired deliveries sent back in one append.
const EXPIRE_BATCH: usize = 256;
/// How long a failing delivery stays invisible while its retry copy is stored.
const FAILING_HOLD: Duration = Duration::from_secs(24 * 3600);

type Key = (String, String, u32);

#[derive(Debug, Clone)]
struct Inflight {
    nonce: u64,
    deadline: Instant,
    client_id: Arc<str>,
    in_place: bool,
    user_topic: Arc<str>,
    reconsume_times: u32,
    commit_offset: u64,
    /// Handed out by an orderly receive: a failure returns every later delivery of its queue.
    orderly: bool,
    /// Being sent back to retry or the DLQ: not to be handed out, not to expire again.
    failing: bool,
}

/// Per (owner, store topic, queue). Every offset in `[committed, cursor)` is done, in
/// flight, or returned; offsets from `cursor` on have not been looked at yet.
#[derive(Debug, Default)]
struct QueueState {
    /// Lowest offset not yet done.
    committed: u64,
    /// Next offset never examined: new messages are scanned from here, whatever stays in
    /// flight below it.
    cursor: u64,
    done: OffsetRanges,
    inflight: BTreeMap<u64, Inflight>,
    /// Offsets below `cursor` to hand out again (failed in place, left by a member, a failed
    /// send-back, or another topic's message in the shared retry queue).
    returned: BTreeMap<u64, Returned>,
    suspended_until: Option<Instant>,
    in_place_reconsume: HashMap<u64, u32>,
}

/// A message to hand out again.
#[derive(Debug, Clone, Default)]
struct Returned {
    /// Not before this time.
    not_before: Option<Instant>,
    /// The user topic whose receives take it (`None`: any).
    topic: Option<Arc<str>>,
}

/// What one receive offers from one queue.
struct Offer<'a> {
    req: &'a ReceiveRequest,
    topic: &'a TopicInfo,
    store_topic: &'a str,
    queue_id: u32,
    is_retry: bool,
    filter: &'a Filter,
    in_place: bool,
    deadline: Instant,
    /// Shared by every delivery of this receive.
    client_id: &'a Arc<str>,
    user_topic: &'a Arc<str>,
    receipt: ReceiptPrefix,
}

/// What a receive read for one unit, outside the lock.
enum Candidate {
    /// Ruled out by the tag hash, or unreadable: done for this owner.
    Filtered,
    /// The record.
    Record(Box<crate::store::StoredMessage>),
}

#[derive(Debug, PartialEq, Eq)]
enum Offered {
    Delivered,
    Skipped,
    /// The receive is full (its byte budget); the message stays where it is.
    Full,
}

impl QueueState {
    /// Takes a delivery out of its member's hands for a nack or an expiry. A delivery retried
    /// in place (orderly, broadcasting) that has tries left becomes visible again at once with
    /// its reconsume count raised; an orderly one also returns every later delivery of its
    /// queue still in flight (their nonces go to `revoked`) and suspends the queue for
    /// `pause`, so that nothing later is delivered before it; a broadcasting one comes back
    /// after `pause`, without holding back the rest of its queue. Any other delivery stays
    /// invisible (under a fresh nonce, so the old receipt no longer works) until its retry or
    /// DLQ copy is stored, then is finished: a concurrent receive cannot hand it out meanwhile.
    /// Returns the delivery as it was and whether it was retried in place.
    fn hold_for_failure(
        &mut self,
        offset: u64,
        max_reconsume_times: u32,
        pause: impl FnOnce(&Inflight) -> Duration,
        revoked: &mut Vec<u64>,
    ) -> Option<(Inflight, bool)> {
        let inflight = self.inflight.get(&offset)?.clone();
        let in_place = inflight.in_place && inflight.reconsume_times < max_reconsume_times;
        if in_place {
            let pause = pause(&inflight);
            self.inflight.remove(&offset);
            let not_before = (!inflight.orderly && !pause.is_zero()).then(|| Instant::now() + pause);
            self.returned.insert(offset, Returned { not_before, topic: None });
            self.in_place_reconsume.insert(offset, inflight.reconsume_times + 1);
            if inflight.orderly {
                let later: Vec<u64> = self
                    .inflight
                    .range(offset + 1..)
                    .filter(|(_, i)| i.orderly && !i.failing)
                    .map(|(o, _)| *o)
                    .collect();
                for o in later {
                    if let Some(i) = self.inflight.remove(&o) {
                        self.returned.insert(o, Returned::default());
                        revoked.push(i.nonce);
                    }
                }
                if !pause.is_zero() {
                    self.suspended_until = Some(Instant::now() + pause);
                }
            }
        } else if let Some(held) = self.inflight.get_mut(&offset) {
            held.nonce = rand::random();
            held.deadline = Instant::now() + FAILING_HOLD;
            held.failing = true;
        }
        Some((inflight, in_place))
    }

    fn finish(&mut self, offset: u64) {
        self.inflight.remove(&offset);
        self.returned.remove(&offset);
        self.in_place_reconsume.remove(&offset);
        if offset >= self.committed {
            self.done.insert(offset);
        }
        self.committed = self.done.take_run_from(self.committed);
    }
}

/// Outcomes of ended receipts: kept for [`ENDED_MEMORY`] and at most [`MAX_ENDED_RECEIPTS`]
/// of them, oldest forgotten first.
///
/// A ring in the order they ended, with no index: every ack and nack adds one (a push at
/// the end, where a hash map's insert and removal missed the cache twice), and only an ack
/// or nack of a receipt that already ended looks one up, scanning back from the newest.
#[derive(Debug, Default)]
struct EndedReceipts {
    order: VecDeque<Ended>,
}

#[derive(Debug)]
struct Ended {
    nonce: u64,
    at: Instant,
    outcome: ReceiptFailure,
}

impl EndedReceipts {
    fn insert(&mut self, nonce: u64, outcome: ReceiptFailure, at: Instant) {
        if self.order.len() >= MAX_ENDED_RECEIPTS {
            self.order.pop_front();
        }
        self.order.push_back(Ended { nonce, at, outcome });
    }

    /// The latest outcome of the receipt with `nonce`, if remembered.
    fn get(&self, nonce: u64) -> Option<ReceiptFailure> {
        self.order.iter().rev().find(|e| e.nonce == nonce).map(|e| e.outcome)
    }

    /// Forgets outcomes older than `ENDED_MEMORY`.
    fn expire(&mut self, now: Instant) {
        while self.order.front().is_some_and(|e| now.duration_since(e.at) >= ENDED_MEMORY) {
            self.order.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.order.len()
    }
}

/// One queue's state, locked on its own: receives, acks and nacks of different groups,
/// topics or queues never wait for each other.
type SharedQueue = Arc<Mutex<QueueState>>;

/// Lease-based consumption state of every group: a map of per-queue states (its lock is held
/// only to find or add a queue) and the ended receipts.
#[derive(Debug, Default)]
pub(crate) struct LeaseTable {
    queues: Mutex<HashMap<Key, SharedQueue>>,
    ended: Mutex<EndedReceipts>,
}

fn lock_queue(q: &SharedQueue) -> std::sync::MutexGuard<'_, QueueState> {
    q.lock().unwrap_or_else(|e| e.into_inner())
}

/// A delivery taken out of flight by a nack or an expiry, to be sent back.
pub(crate) struct Failed {
    owner: String,
    key: Key,
    offset: u64,
    inflight: Inflight,
    delay: Option<Duration>,
    /// Already visible again in place; only waiters need waking.
    in_place: bool,
}

impl LeaseTable {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, SharedQueue>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ended(&self) -> std::sync::MutexGuard<'_, EndedReceipts> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of one queue, if it has one.
    fn queue(&self, key: &Key) -> Option<SharedQueue> {
        self.map().get(key).cloned()
    }

    /// The state of one queue, made by `init` (outside the map's lock) if it has none yet.
    fn queue_or_insert(&self, key: &Key, init: impl FnOnce() -> Result<QueueState>) -> Result<SharedQueue> {
        if let Some(q) = self.queue(key) {
            return Ok(q);
        }
        let fresh = Arc::new(Mutex::new(init()?));
        Ok(self.map().entry(key.clone()).or_insert(fresh).clone())
    }

    /// Every queue state.
    fn all(&self) -> Vec<(Key, SharedQueue)> {
        self.map().iter().map(|(k, q)| (k.clone(), q.clone())).collect()
    }

    pub(crate) fn reset(&self, group: &str, topic: &str, queue_id: u32, offset: u64) {
        if let Some(q) = self.queue(&(group.to_string(), topic.to_string(), queue_id)) {
            let mut state = lock_queue(&q);
            state.committed = offset;
            state.cursor = offset;
            state.returned.clear();
            state.done.clear();
            state.suspended_until = None;
            state.in_place_reconsume.clear();
        }
    }

    pub(crate) fn remove_topic(&self, topic: &str) {
        self.map().retain(|(_, t, _), _| t != topic);
    }

    /// Drops a broadcasting member's position (it will not come back under this id).
    pub(crate) fn forget_broadcast_member(&self, group: &str, client_id: &str) {
        let owner = format!("{group}\0{client_id}");
        self.map().retain(|(o, _, _), _| *o != owner);
    }

    /// Returns what `client_id` held in `group` to the group at once; returns the user topics
    /// to wake.
    pub(crate) fn release_client(&self, group: &str, client_id: &str) -> HashSet<String> {
        let broadcast_owner = format!("{group}\0{client_id}");
        let mut topics = HashSet::new();
        for ((owner, _, _), q) in self.all() {
            // A broadcasting member keeps its position under its client id, for when it comes
            // back; what it held is handed to it again then.
            if owner != group && owner != broadcast_owner {
                continue;
            }
            let mut state = lock_queue(&q);
            let gone: Vec<u64> = state
                .inflight
                .iter()
                .filter(|(_, i)| &*i.client_id == client_id && !i.failing)
                .map(|(o, _)| *o)
                .collect();
            for offset in gone {
                if let Some(i) = state.inflight.remove(&offset) {
                    topics.insert(i.user_topic.to_string());
                    state.returned.insert(offset, Returned { not_before: None, topic: Some(i.user_topic) });
                }
            }
        }
        topics
    }

    /// Takes the deliveries of `receipts` out of flight and offers them again at once, without
    /// counting a reconsume: for messages a receive took that never reached its receiver.
    /// Returns the user topics to wake.
    fn give_back<'r>(&self, receipts: impl Iterator<Item = &'r str>) -> HashSet<String> {
        let mut topics = HashSet::new();
        for receipt in receipts {
            let Ok(r) = Receipt::parse(receipt) else { continue };
            let Some(q) = self.queue(&(r.owner.clone(), r.topic.clone(), r.queue_id)) else { continue };
            let mut state = lock_queue(&q);
            if !state.inflight.get(&r.offset).is_some_and(|i| i.nonce == r.nonce && !i.failing) {
                continue;
            }
            if let Some(i) = state.inflight.remove(&r.offset) {
                topics.insert(i.user_topic.to_string());
                state.returned.insert(r.offset, Returned { not_before: None, topic: Some(i.user_topic) });
            }
        }
        topics
    }

    fn take_expired(&self, max_reconsume_times: impl Fn(&str) -> u32, orderly_suspend: Duration) -> Vec<Failed> {
        let now = Instant::now();
        self.ended().expire(now);
        let mut failed = Vec::new();
        for (key, q) in self.all() {
            let mut state = lock_queue(&q);
            let expired: Vec<u64> =
                state.inflight.iter().filter(|(_, i)| !i.failing && i.deadline <= now).map(|(o, _)| *o).collect();
            if expired.is_empty() {
                continue;
            }
            let max = max_reconsume_times(key.0.split('\0').next().unwrap_or_default());
            for offset in expired {
                let mut revoked = Vec::new();
                // An expired orderly lease suspends its queue like a nack.
                let pause = |i: &Inflight| if i.orderly { orderly_suspend } else { Duration::ZERO };
                let held = state.hold_for_failure(offset, max, pause, &mut revoked);
                if let Some((inflight, in_place)) = held {
                    let mut ended = self.ended();
                    ended.insert(inflight.nonce, ReceiptFailure::Expired, now);
                    for nonce in revoked {
                        ended.insert(nonce, ReceiptFailure::Expired, now);
                    }
                    failed.push(Failed {
                        owner: key.0.clone(),
                        key: key.clone(),
                        offset,
                        inflight,
                        delay: Some(Duration::ZERO),
                        in_place,
                    });
                }
            }
        }
        failed
    }

    /// Sizes of the consumption tables: (queue states, in flight, done above committed,
    /// returned, ended receipts).
    pub(crate) fn sizes(&self) -> (usize, usize, usize, usize, usize) {
        let all = self.all();
        let mut sizes = (all.len(), 0, 0, 0, self.ended().len());
        for (_, q) in all {
            let state = lock_queue(&q);
            sizes.1 += state.inflight.len();
            sizes.2 += state.done.ranges();
            sizes.3 += state.returned.len();
        }
        sizes
    }

    fn release_hold(&self, key: &Key, offset: u64) {
        if let Some(q) = self.queue(key) {
            let mut state = lock_queue(&q);
            if let Some(i) = state.inflight.remove(&offset) {
                state.returned.insert(offset, Returned { not_before: None, topic: Some(i.user_topic) });
            }
        }
    }

    fn mark_done(&self, key: &Key, offset: u64) -> Option<u64> {
        let q = self.queue(key)?;
        let mut state = lock_queue(&q);
        state.finish(offset);
        Some(state.committed)
    }
}

fn owner_of(group: &str, client_id: &str, mode: ConsumeMode) -> String {
    match mode {
        ConsumeMode::Clustering => group.to_string(),
        ConsumeMode::Broadcasting => format!("{group}\0{client_id}"),
    }
}

/// Messages a receive took into flight, on their way to its caller. If the receive is dropped
/// before they reach it (a closed subscription, a long poll whose client went away, while the
/// collect ran on a blocking thread), they go back to the group at once instead of waiting out
/// their lease.
struct Taken {
    broker: std::sync::Weak<Broker>,
    messages: Vec<Message>,
}

impl Taken {
    fn hand_out(mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if self.messages.is_empty() {
            return;
        }
        let Some(broker) = self.broker.upgrade() else { return };
        for topic in broker.consumption.give_back(self.messages.iter().filter_map(|m| m.receipt.as_deref())) {
            broker.waiters.wake(&topic);
        }
    }
}

impl Broker {
    /// Receives up to `max_messages` messages for a group, each with a receipt, invisible to the
    /// rest of the group for `invisible`. Waits up to `wait` when nothing is available and wakes
    /// the moment something is.
    pub async fn receive(&self, req: ReceiveRequest) -> Result<Vec<Message>> {
        validate_group_name(&req.group)?;
        if req.max_messages == 0 || req.max_messages > 1000 {
            return Err(Error::invalid("/max_messages", "must be 1 to 1000"));
        }
        let invisible_ms = req.invisible.as_millis();
        if !(1_000..=43_200_000).contains(&invisible_ms) {
            return Err(Error::invalid("/invisible_ms", "must be 1000 to 43200000"));
        }
        if req.wait > Duration::from_secs(30) {
            return Err(Error::invalid("/wait_ms", "must be at most 30000"));
        }
        if req.client_id.is_empty() {
            return Err(Error::invalid("/client_id", "must not be empty"));
        }
        let topic = self.topic_for_read(&req.topic)?;
        let filter = compile_filter(&req.filter)?;
        let sub = Subscription { topic: req.topic.clone(), filter: req.filter.clone(), mode: req.mode };
        if !self.groups.has_subscription(&req.group, &sub) {
            // A new or changed subscription is saved (fsync) off the runtime.
            let group = req.group.clone();
            self.off_runtime(move |b| b.groups.subscribe(&group, sub)).await?;
        }
        let read_from = self.groups.touch(&req.group, &req.client_id, req.transport);
        let owner = owner_of(&req.group, &req.client_id, req.mode);
        let retry = retry_topic(&req.group);
        let notifiers = [self.waiters.notifier(&topic.name), self.waiters.notifier(&retry)];
        let deadline = tokio::time::Instant::now() + req.wait;
        // While it runs, this receive is a waiting member that shares what arrives.
        let _ready =
            (req.mode == ConsumeMode::Clustering).then(|| self.ready.enter(&req.group, &req.topic, &req.client_id));
        let mut woken = false;
        loop {
            let notified = enable_all(&notifiers);
            // Woken by new arrivals after finding nothing, what there is to read was just
            // dispatched; a member whose last receive read from the log's recent tail reads on
            // from there. Either way the reads are memory copies (page cache) and run here,
            // without two thread hand-offs per receive.
            let recent = woken || read_from.is_some_and(|offset| self.store.is_recent(offset));
            let (messages, next_ready) = if recent {
                self.collect(&req, &owner, &topic, &retry, &filter)?
            } else {
                // Otherwise the reads may go to disk: on a blocking thread, not a runtime
                // worker.
                let (req, owner, topic, retry, filter) =
                    (req.clone(), owner.clone(), topic.clone(), retry.clone(), filter.clone());
                self.off_runtime(move |b| b.collect(&req, &owner, &topic, &retry, &filter)).await?
            };
            // Past the last await: from here the messages reach the caller.
            let messages = messages.hand_out();
            if let Some(lowest) = messages.iter().filter_map(|m| m.commit_offset).min() {
                self.groups.note_read(&req.group, &req.client_id, lowest);
            }
            if !messages.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(messages);
            }
            // A suspended queue becomes ready without a dispatch: wake for it too.
            let wake = next_ready.map_or(deadline, |at| deadline.min(tokio::time::Instant::from_std(at)));
            wait_any(notified, wake).await;
            woken = true;
            // Deleted meanwhile: the receive ends as one on a missing topic does.
            if !self.topics.contains(&req.topic) {
                return Err(Error::not_found("topic", &req.topic));
            }
        }
    }

    /// Fixes where a new subscription starts on each queue of `topic` its owner holds no
    /// position on yet, as of this call. The WebSocket gateway calls it before it answers
    /// `subscribed`, so that `start: "last"` delivers everything stored after that answer, not
    /// only what is stored after the subscription's first receive.
    pub fn fix_start(
        &self,
        group: &str,
        client_id: &str,
        topic: &str,
        mode: ConsumeMode,
        start: StartPosition,
    ) -> Result<()> {
        validate_group_name(group)?;
        let topic = self.topic_for_read(topic)?;
        let owner = owner_of(group, client_id, mode);
        for queue_id in 0..topic.queues {
            let key = (owner.clone(), topic.name.clone(), queue_id);
            let bounds = self.store.queue_bounds(&topic.name, queue_id);
            self.consumption
                .queue_or_insert(&key, || self.first_state(&owner, mode, start, &topic.name, queue_id, bounds))?;
        }
        Ok(())
    }

    /// The state of a queue its owner has not read in this process: at the committed offset
    /// (clustering groups commit theirs to the offset table; broadcasting members keep their
    /// own position in memory), else where `start` says, within `(min, max)`.
    fn first_state(
        &self,
        owner: &str,
        mode: ConsumeMode,
        start: StartPosition,
        store_topic: &str,
        queue_id: u32,
        (min, max): (u64, u64),
    ) -> Result<QueueState> {
        let clustering = mode == ConsumeMode::Clustering;
        let stored = if clustering { self.offsets.get(owner, store_topic, queue_id) } else { None };
        let committed = match stored {
            Some(c) => c,
            None => {
                let start = match start {
                    StartPosition::First => min,
                    StartPosition::Last => max,
                    StartPosition::Timestamp(ts) => self.store.offset_for_timestamp(store_topic, queue_id, ts)?,
                };
                if clustering && start != min {
                    self.offsets.set(owner, store_topic, queue_id, start);
                }
                start
            }
        };
        Ok(QueueState { committed, cursor: committed, ..QueueState::default() })
    }

    fn collect(
        &self,
        req: &ReceiveRequest,
        owner: &str,
        topic: &TopicInfo,
        retry: &str,
        filter: &Filter,
    ) -> Result<(Taken, Option<Instant>)> {
        let store: &Store = &self.store;
        let now = Instant::now();
        let mut next_ready: Option<Instant> = None;
        let mut queues: Vec<(String, u32)> = (0..topic.queues).map(|q| (topic.name.clone(), q)).collect();
        if req.mode == ConsumeMode::Clustering && !req.orderly && store.queue_bounds(retry, 0).1 > 0 {
            queues.push((retry.to_string(), topic.queues));
        }
        // Waiting members of a clustering group share the queues (the retry queue counting as
        // index `topic.queues`).
        if req.mode == ConsumeMode::Clustering {
            if let Some((index, members)) = self.ready.share(&req.group, &topic.name, &req.client_id) {
                queues.retain(|(_, j)| *j as usize % members == index);
            }
        }
        let mut queues: Vec<(String, u32)> =
            queues.into_iter().map(|(t, j)| if t == topic.name { (t, j) } else { (t, 0) }).collect();
        // Whatever is taken into flight goes back if this collect fails half-way.
        let mut taken = Taken { broker: self.me.clone(), messages: Vec::new() };
        if queues.is_empty() {
            return Ok((taken, None));
        }
        let start = self.round_robin.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as usize % queues.len();
        queues.rotate_left(start);
        let in_place = req.orderly || req.mode == ConsumeMode::Broadcasting;
        let deadline = Instant::now() + req.invisible;
        let client_id: Arc<str> = Arc::from(req.client_id.as_str());
        let user_topic: Arc<str> = Arc::from(topic.name.as_str());
        let out = &mut taken.messages;
        out.reserve(req.max_messages.min(MAX_RESERVED));
        // Body bytes in `out`, kept as messages are added.
        let mut out_bytes = 0usize;
        let mut bytes_full = false;
        for (store_topic, queue_id) in queues {
            if out.len() >= req.max_messages || bytes_full {
                break;
            }
            let is_retry = store_topic != topic.name;
            let key = (owner.to_string(), store_topic.clone(), queue_id);
            let (min, max) = store.queue_bounds(&store_topic, queue_id);
            let queue = self.consumption.queue_or_insert(&key, || {
                // A retry queue is read from its start.
                let start = if is_retry { StartPosition::First } else { req.start };
                self.first_state(owner, req.mode, start, &store_topic, queue_id, (min, max))
            })?;
            let receipt = ReceiptPrefix::new(owner, &store_topic, queue_id);
            let offer = Offer {
                req,
                topic,
                store_topic: &store_topic,
                queue_id,
                is_retry,
                filter,
                in_place,
                deadline,
                client_id: &client_id,
                user_topic: &user_topic,
                receipt,
            };
            // Under the queue's lock: what came back and may go out again, and where the scan
            // of new messages starts.
            let (again, before) = {
                let mut state = lock_queue(&queue);
                if state.committed < min {
                    state.committed = min;
                    state.done.retain_from(min);
                }
                if state.cursor < state.committed {
                    state.cursor = state.committed;
                }
                let committed = state.committed;
                state.returned.retain(|o, _| *o >= committed);
                if req.orderly {
                    if let Some(until) = state.suspended_until.filter(|t| *t > now) {
                        next_ready = Some(next_ready.map_or(until, |n| n.min(until)));
                        continue;
                    }
                    if !state.inflight.is_empty() {
                        continue;
                    }
                }
                state.suspended_until = None;
                // First what was handed out before and came back, in order; then what is new,
                // from the cursor on. The committed offset only says what is done: one long
                // lease does not hold back the scan.
                let again: Vec<u64> = state
                    .returned
                    .iter()
                    .filter(|(_, r)| !matches!(r.topic.as_deref(), Some(t) if t != topic.name))
                    .filter(|(_, r)| match r.not_before {
                        Some(at) if at > now => {
                            next_ready = Some(next_ready.map_or(at, |n| n.min(at)));
                            false
                        }
                        _ => true,
                    })
                    .map(|(o, _)| *o)
                    .take(req.max_messages - out.len())
                    .collect();
                (again, state.committed)
            };
            // Reads happen outside the lock; what they found is applied under it, checked
            // again against what other receives did meanwhile.
            let mut full = false;
            if !again.is_empty() {
                let mut found = Vec::with_capacity(again.len());
                for offset in again {
                    if let Some(unit) = store.read_queue(&store_topic, queue_id, offset, 1)?.into_iter().next() {
                        found.push(self.read_candidate(&offer, unit));
                    }
                }
                let mut state = lock_queue(&queue);
                for (unit, rec) in found {
                    if out.len() >= req.max_messages {
                        full = true;
                        break;
                    }
                    if !state.returned.contains_key(&unit.queue_offset) {
                        continue; // taken by another receive meanwhile
                    }
                    if self.offer(&offer, &mut state, unit, rec, out, &mut out_bytes) == Offered::Full {
                        full = true;
                        bytes_full = true;
                        break;
                    }
                }
            }
            let mut scanned = 0u64;
            while !full && out.len() < req.max_messages && scanned < SCAN_LIMIT {
                let cursor = lock_queue(&queue).cursor;
                if cursor >= max {
                    break;
                }
                // No more records read than this receive can still take (the rest would be
                // read again by the next one).
                let want = (req.max_messages - out.len()).clamp(1, 64);
                let units = store.read_queue(&store_topic, queue_id, cursor, want)?;
                if units.is_empty() {
                    break;
                }
                scanned += units.len() as u64;
                let found: Vec<_> = units.into_iter().map(|u| self.read_candidate(&offer, u)).collect();
                let mut state = lock_queue(&queue);
                for (unit, rec) in found {
                    if out.len() >= req.max_messages {
                        full = true;
                        break;
                    }
                    let offset = unit.queue_offset;
                    if offset != state.cursor {
                        // Another receive (or a reset) moved the cursor meanwhile.
                        if offset > state.cursor || !state.returned.contains_key(&offset) {
                            continue;
                        }
                    }
                    if self.offer(&offer, &mut state, unit, rec, out, &mut out_bytes) == Offered::Full {
                        full = true;
                        bytes_full = true;
                        break;
                    }
                    state.cursor = state.cursor.max(offset + 1);
                }
            }
            let committed = lock_queue(&queue).committed;
            if committed != before && req.mode == ConsumeMode::Clustering {
                self.offsets.set(owner, &store_topic, queue_id, committed);
            }
        }
        if !out.is_empty() {
            self.counters.delivered(&topic.name, &req.group, out.len() as u64);
        }
        Ok((taken, next_ready))
    }

    /// Reads the record of a unit a receive may hand out, outside any lock: `None` when the
    /// tag hash already rules it out.
    fn read_candidate(&self, o: &Offer<'_>, unit: CqUnit) -> (CqUnit, Candidate) {
        if !o.is_retry && !o.filter.may_match_hash(unit.tag_hash) {
            return (unit, Candidate::Filtered);
        }
        match self.store.read(unit.commit_offset) {
            Ok(rec) => (unit, Candidate::Record(Box::new(rec))),
            Err(e) => {
                tracing::error!(error = %e, topic = %o.store_topic, queue_id = o.queue_id, offset = unit.queue_offset, "unreadable message skipped");
                (unit, Candidate::Filtered)
            }
        }
    }

    /// Hands out the message of `unit` if it is deliverable: skips what is done or in flight,
    /// finishes what the filter rejects (or what cannot be read), leaves another topic's retry
    /// to its own receives.
    fn offer(
        &self,
        o: &Offer<'_>,
        state: &mut QueueState,
        unit: CqUnit,
        rec: Candidate,
        out: &mut Vec<Message>,
        out_bytes: &mut usize,
    ) -> Offered {
        let offset = unit.queue_offset;
        if state.done.contains(offset) || state.inflight.contains_key(&offset) {
            state.returned.remove(&offset);
            return Offered::Skipped;
        }
        let rec = match rec {
            Candidate::Filtered => {
                state.finish(offset);
                return Offered::Skipped;
            }
            Candidate::Record(rec) => *rec,
        };
        if o.is_retry {
            let origin = rec.properties.get(ORIGIN_TOPIC).cloned().unwrap_or_default();
            if origin != o.topic.name {
                // Another topic's retry: left for its own receives.
                state.returned.insert(offset, Returned { not_before: None, topic: Some(Arc::from(origin)) });
                return Offered::Skipped;
            }
        }
        if !o.filter.matches(rec.tag.as_deref(), &props::user_properties(&rec.properties)) {
            state.finish(offset);
            return Offered::Skipped;
        }
        // At most max_receive_bytes of bodies, but always at least one message.
        if !out.is_empty() && *out_bytes + rec.body.len() > self.config.max_receive_bytes {
            return Offered::Full;
        }
        state.returned.remove(&offset);
        let nonce = rand::random::<u64>();
        let reconsume_times = state.in_place_reconsume.get(&offset).copied().unwrap_or(rec.reconsume_times);
        state.inflight.insert(
            offset,
            Inflight {
                nonce,
                deadline: o.deadline,
                client_id: o.client_id.clone(),
                in_place: o.in_place,
                user_topic: o.user_topic.clone(),
                reconsume_times,
                commit_offset: unit.commit_offset,
                orderly: o.req.orderly,
                failing: false,
            },
        );
        let mut m = props::to_message(rec, MessageState::Stored);
        m.reconsume_times = reconsume_times;
        m.receipt = Some(o.receipt.receipt(offset, nonce));
        *out_bytes += m.body.len();
        out.push(m);
        Offered::Delivered
    }

    fn parse_receipt(group: &str, receipt: &str) -> Result<Option<(Receipt, Key)>> {
        let r = Receipt::parse(receipt)?;
        if r.group() != group {
            return Ok(None);
        }
        let key = (r.owner.clone(), r.topic.clone(), r.queue_id);
        Ok(Some((r, key)))
    }

    /// Checks that `receipt` has the form this broker issues, without acting on it: the
    /// `InvalidArgument` that `ack` and `nack` would return for it, or `Ok`.
    pub fn validate_receipt(&self, receipt: &str) -> Result<()> {
        Receipt::parse(receipt).map(|_| ())
    }

    /// Whether `receipt` names a delivery of `group` that is still in flight: false once it
    /// was acked, nacked, expired, or returned with an earlier orderly failure. Subscribers use
    /// it to free window slots of deliveries the broker took back.
    pub fn holds_receipt(&self, group: &str, receipt: &str) -> bool {
        let Ok(Some((r, key))) = Self::parse_receipt(group, receipt) else { return false };
        let Some(q) = self.consumption.queue(&key) else { return false };
        let state = lock_queue(&q);
        state.inflight.get(&r.offset).is_some_and(|i| i.nonce == r.nonce && !i.failing)
    }

    /// Acknowledges a received message. `Err` only for a receipt that does not parse; a receipt
    /// that cannot be acked is `Ok(Err(reason))`.
    pub async fn ack(&self, group: &str, receipt: &str) -> Result<Result<(), ReceiptFailure>> {
        let Some((r, key)) = Self::parse_receipt(group, receipt)? else { return Ok(Err(ReceiptFailure::Unknown)) };
        if let Some(q) = self.consumption.queue(&key) {
            let mut state = lock_queue(&q);
            if let Some(i) = state.inflight.get(&r.offset).filter(|i| i.nonce == r.nonce && !i.failing) {
                // An orderly queue waits for this ack before it hands out the next message.
                let wake = i.orderly.then(|| i.user_topic.clone());
                state.finish(r.offset);
                self.consumption.ended().insert(r.nonce, ReceiptFailure::Acked, Instant::now());
                if !r.owner.contains('\0') {
                    self.offsets.set(&r.owner, &r.topic, r.queue_id, state.committed);
                }
                drop(state);
                if let Some(topic) = wake {
                    self.waiters.wake(&topic);
                }
                return Ok(Ok(()));
            }
        }
        Ok(Err(self.consumption.ended().get(r.nonce).unwrap_or(ReceiptFailure::Unknown)))
    }

    /// Gives a received message back: it returns to the group with `reconsume_times + 1` after
    /// `delay` (default: the retry delay of level `3 + reconsume_times`), or goes to the DLQ
    /// after the group's `max_reconsume_times`.
    pub async fn nack(
        &self,
        group: &str,
        receipt: &str,
        delay: Option<Duration>,
    ) -> Result<Result<(), ReceiptFailure>> {
        let Some((r, key)) = Self::parse_receipt(group, receipt)? else { return Ok(Err(ReceiptFailure::Unknown)) };
        self.validate_redelivery_delay(delay)?;
        let max = self.max_reconsume_times(group);
        let suspend = self.config.orderly_suspend;
        let failed = {
            let mut revoked = Vec::new();
            // Orderly: the queue pauses for the delay or `orderly_suspend`; broadcasting: the
            // message comes back after the delay or the retry delay of its level.
            let pause = |i: &Inflight| match (i.orderly, delay) {
                (true, Some(d)) if !d.is_zero() => d,
                (true, _) => suspend,
                (false, Some(d)) => d,
                (false, None) => self.retry_delay(i.reconsume_times),
            };
            let taken = self.consumption.queue(&key).and_then(|q| {
                let mut state = lock_queue(&q);
                let held = state.inflight.get(&r.offset).is_some_and(|i| i.nonce == r.nonce && !i.failing);
                if held {
                    state.hold_for_failure(r.offset, max, pause, &mut revoked)
                } else {
                    None
                }
            });
            let mut ended = self.consumption.ended();
            let now = Instant::now();
            for nonce in revoked {
                ended.insert(nonce, ReceiptFailure::Expired, now);
            }
            match taken {
                Some((inflight, in_place)) => {
                    Failed { owner: r.owner.clone(), key, offset: r.offset, inflight, delay, in_place }
                }
                None => {
                    return Ok(Err(ended.get(r.nonce).unwrap_or(ReceiptFailure::Unknown)));
                }
            }
        };
        self.fail_delivery(failed).await?;
        Ok(Ok(()))
    }

    /// Extends or shortens a received message's invisibility; returns the new receipt (the old
    /// one stops working). `NotFound` when the receipt is no longer held.
    pub async fn change_invisible(&self, group: &str, receipt: &str, invisible: Duration) -> Result<String> {
        let ms = invisible.as_millis();
        if !(1_000..=43_200_000).contains(&ms) {
            return Err(Error::invalid("/invisible_ms", "must be 1000 to 43200000"));
        }
        let not_held = || Error::not_found("receipt", receipt);
        let (r, key) = Self::parse_receipt(group, receipt)?.ok_or_else(not_held)?;
        let q = self.consumption.queue(&key).ok_or_else(not_held)?;
        let mut state = lock_queue(&q);
        let inflight =
            state.inflight.get_mut(&r.offset).filter(|i| i.nonce == r.nonce && !i.failing).ok_or_else(not_held)?;
        inflight.nonce = rand::random();
        inflight.deadline = Instant::now() + invisible;
        Ok(Receipt { nonce: inflight.nonce, ..r }.encode())
    }

    /// Sends a failed delivery back: in place (orderly, broadcasting) or through the retry topic,
    /// or to the DLQ when it has been delivered `max_reconsume_times + 1` times.
    async fn fail_delivery(&self, f: Failed) -> Result<()> {
        let group = f.owner.split('\0').next().unwrap_or_default().to_string();
        if f.in_place {
            self.waiters.wake(&f.inflight.user_topic);
            return Ok(());
        }
        let commit_offset = f.inflight.commit_offset;
        let sent_back = async {
            let mut rec = self.blocking(move |s| s.read(commit_offset)).await?;
            rec.reconsume_times = f.inflight.reconsume_times;
            self.send_back(&group, rec, &f.inflight.user_topic, f.delay).await
        };
        if let Err(e) = sent_back.await {
            tracing::error!(error = %e, "a failed message could not be sent back; it is visible again");
            self.consumption.release_hold(&f.key, f.offset);
            return Err(e);
        }
        if let Some(committed) = self.consumption.mark_done(&f.key, f.offset) {
            if !f.owner.contains('\0') {
                self.offsets.set(&f.key.0, &f.key.1, f.key.2, committed);
            }
        }
        Ok(())
    }

    /// The retry delay of a message failed `reconsume_times` times before: level
    /// `3 + reconsume_times`, capped at the last level.
    pub(crate) fn retry_delay(&self, reconsume_times: u32) -> Duration {
        let levels = &self.config.delay_levels;
        let level = (3 + reconsume_times as usize).min(levels.len());
        levels[level - 1]
    }

    /// Makes expired leases' messages visible again at once, counting a reconsume. The retry
    /// and DLQ copies of one round are stored in one append.
    pub(crate) async fn expire_leases(&self) {
        let expired =
            self.consumption.take_expired(|group| self.max_reconsume_times(group), self.config.orderly_suspend);
        let (in_place, sent_back): (Vec<Failed>, Vec<Failed>) = expired.into_iter().partition(|f| f.in_place);
        for f in in_place {
            self.waiters.wake(&f.inflight.user_topic);
        }
        for chunk in sent_back.chunks(EXPIRE_BATCH) {
            if let Err(e) = self.send_back_expired(chunk).await {
                tracing::error!(error = %e, "returning expired messages failed; they are visible again");
                for f in chunk {
                    self.consumption.release_hold(&f.key, f.offset);
                }
            }
        }
    }

    /// Stores the retry (or DLQ) copies of expired deliveries in one append, then finishes them.
    async fn send_back_expired(&self, failed: &[Failed]) -> Result<()> {
        let offsets: Vec<u64> = failed.iter().map(|f| f.inflight.commit_offset).collect();
        let records =
            self.blocking(move |s| offsets.into_iter().map(|o| s.read(o)).collect::<Result<Vec<_>>>()).await?;
        let copies = failed
            .iter()
            .zip(records)
            .map(|(f, mut rec)| {
                rec.reconsume_times = f.inflight.reconsume_times;
                let group = f.owner.split('\0').next().unwrap_or_default();
                self.send_back_copy(group, &rec, &f.inflight.user_topic, f.delay)
            })
            .collect();
        self.append_and_dispatch(copies).await?;
        for f in failed {
            if let Some(committed) = self.consumption.mark_done(&f.key, f.offset) {
                if !f.owner.contains('\0') {
                    self.offsets.set(&f.key.0, &f.key.1, f.key.2, committed);
                }
            }
            self.waiters.wake(&f.inflight.user_topic);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_receipts_answer_the_latest_outcome_within_their_bound_and_memory() {
        let t0 = Instant::now();
        let mut ended = EndedReceipts::default();
        ended.insert(7, ReceiptFailure::Expired, t0);
        ended.insert(8, ReceiptFailure::Acked, t0);
        ended.insert(7, ReceiptFailure::Acked, t0);
        assert_eq!(ended.get(7), Some(ReceiptFailure::Acked), "the latest outcome of a nonce");
        assert_eq!(ended.get(8), Some(ReceiptFailure::Acked));
        assert_eq!(ended.get(9), None);

        // The oldest go first once the bound is reached.
        for nonce in 100..100 + MAX_ENDED_RECEIPTS as u64 - 1 {
            ended.insert(nonce, ReceiptFailure::Expired, t0 + Duration::from_secs(1));
        }
        assert_eq!(ended.len(), MAX_ENDED_RECEIPTS);
        assert_eq!(ended.get(8), None, "forgotten: the oldest beyond the bound");
        assert_eq!(ended.get(7), Some(ReceiptFailure::Acked));
        assert_eq!(ended.get(100), Some(ReceiptFailure::Expired));

        // And after ENDED_MEMORY, whatever the count.
        ended.expire(t0 + ENDED_MEMORY);
        assert_eq!(ended.get(7), None);
        assert_eq!(ended.get(100), Some(ReceiptFailure::Expired), "ended a second later");
        ended.expire(t0 + ENDED_MEMORY + Duration::from_secs(1));
        assert_eq!(ended.len(), 0);
    }
}
