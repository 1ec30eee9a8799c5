//! Broker semantics on top of the store: topics, sending, pulling with filters, consumer groups
//! and offsets, leases, delay, retry and dead letters, transactions, long polling.
//!
//! The [`Broker`] is the one entry point; the gateway and the embedded client call it. It is
//! async: the store's blocking calls (metadata saves that fsync, reads that may go to the
//! disk) run on `spawn_blocking` threads, never on a runtime worker; appends are queued to the
//! store's writer thread and awaited as futures. The one read on a worker is a long-polling
//! receive's after new arrivals woke it: those records were just written and are in memory.
//! It knows nothing of HTTP.

mod config;
mod consumer_back;
mod dedup;
mod delay;
mod dropped;
pub mod filter;
mod group;
mod long_poll;
mod lookup;
mod meta;
mod metrics;
mod msg_id;
mod offset;
mod offset_ranges;
mod props;
mod pull;
mod queue_lock;
mod receipt;
mod receive;
mod retry;
mod send;
mod sharing;
mod topic;
mod transaction;
mod types;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// Store settings and figures that a server configures and reports through the broker.
pub use crate::store::{FlushMode, StoreConfig, StoreStats, FLUSH_BUCKETS};
pub use config::{default_delay_levels, BrokerConfig};
pub use dedup::MAX_DEDUP_KEYS;
pub use filter::Filter;
pub use metrics::BrokerMetrics;
pub use receive::MAX_ENDED_RECEIPTS;
pub use send::SendCompletion;
pub use sharing::ReadyGuard;
pub use topic::{
    dlq_topic, retry_topic, validate_group_name, validate_topic_name, SCHEDULE_TOPIC, TIMER_TOPIC, TRANS_HALF_TOPIC,
    TRANS_OP_TOPIC,
};
pub use transaction::MAX_ENDED_TRANSACTIONS;
pub use types::*;

use crate::store::Store;
use crate::{Error, Result};

/// Current time in epoch milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// One broker: a store plus the state that gives its bytes meaning.
pub struct Broker {
    /// This broker's own `Arc`, so that `&self` methods can move work to blocking threads.
    me: std::sync::Weak<Broker>,
    config: BrokerConfig,
    store: Arc<Store>,
    topics: topic::TopicTable,
    groups: group::GroupCoordinator,
    offsets: offset::OffsetTable,
    consumption: receive::LeaseTable,
    ready: Arc<sharing::ReadyTable>,
    queue_locks: queue_lock::QueueLocks,
    waiters: Arc<long_poll::PollWaiters>,
    dedup: dedup::DedupTable,
    idempotency_locks: dedup::KeyLocks,
    counters: metrics::Counters,
    ids: msg_id::IdGen,
    round_robin: AtomicU32,
    delay: delay::DelayScheduler,
    transactions: transaction::TransactionTable,
    checks: broadcast::Sender<TransactionCheck>,
    check_urls: Mutex<std::collections::BTreeMap<String, String>>,
    check_url_file: meta::MetaFile,
    dlq_resent: retry::DlqResent,
    dropped: dropped::DroppedTopics,
    shutdown: watch::Sender<bool>,
    closed: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("dir", &self.store.dir()).finish_non_exhaustive()
    }
}

impl Broker {
    /// Opens the broker on `config.store.dir`: recovers the store, loads metadata, rebuilds
    /// transaction and timer state from the log, and starts the background services (delay
    /// scheduler, transaction check-back, lease expiry, offset persistence).
    pub async fn open(config: BrokerConfig) -> Result<Arc<Broker>> {
        validate_config(&config)?;
        let store_config = config.store.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(store_config))
            .await
            .map_err(|e| Error::Unavailable(format!("store open task failed: {e}")))??;
        let dir = store.dir().to_path_buf();
        let waiters = Arc::new(long_poll::PollWaiters::default());
        let w = waiters.clone();
        store.set_dispatch_listener(Arc::new(move |topic: &str, _queue: u32, _max: u64| w.wake(topic)));
        let check_url_file = meta::MetaFile::new(&dir, "producers.json")?;
        let broker = Broker {
            me: std::sync::Weak::new(),
            topics: topic::TopicTable::open(meta::MetaFile::new(&dir, "topics.json")?)?,
            groups: group::GroupCoordinator::open(meta::MetaFile::new(&dir, "groups.json")?)?,
            offsets: offset::OffsetTable::open(meta::MetaFile::new(&dir, "offsets.json")?)?,
            consumption: receive::LeaseTable::default(),
            ready: Arc::default(),
            queue_locks: queue_lock::QueueLocks::default(),
            waiters,
            dedup: dedup::DedupTable::open(
                meta::MetaFile::new(&dir, "dedup.json")?,
                dir.join("meta").join("dedup.log"),
            )?,
            idempotency_locks: dedup::KeyLocks::default(),
            counters: metrics::Counters::default(),
            ids: msg_id::IdGen::new(&config.broker_name),
            round_robin: AtomicU32::new(rand::random::<u32>() % 1024),
            delay: delay::DelayScheduler::open(meta::MetaFile::new(&dir, "delay.json")?)?,
            transactions: transaction::TransactionTable::default(),
            checks: broadcast::channel(1024).0,
            check_urls: Mutex::new(check_url_file.load()?),
            check_url_file,
            dlq_resent: retry::DlqResent::open(
                meta::MetaFile::new(&dir, "dlq_resent.json")?,
                meta::MetaFile::new(&dir, "dlq_removed.json")?,
                &store,
            )?,
            dropped: dropped::DroppedTopics::open(meta::MetaFile::new(&dir, "dropped_topics.json")?)?,
            shutdown: watch::channel(false).0,
            closed: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            store,
            config,
        };
        let broker = Arc::new_cyclic(move |me| Broker { me: me.clone(), ..broker });
        broker.clone().rebuild_transactions().await?;
        let tasks = vec![
            tokio::spawn(broker.clone().run_delay_scheduler()),
            tokio::spawn(broker.clone().run_transaction_checks()),
            tokio::spawn(broker.clone().run_housekeeping()),
        ];
        *broker.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        Ok(broker)
    }

    /// Stops the background services, persists offsets, and shuts the store down cleanly.
    /// Idempotent.
    pub async fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        self.offsets.persist_if_dirty()?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.shutdown())
            .await
            .map_err(|e| Error::Unavailable(format!("store shutdown task failed: {e}")))?
    }

    /// The configuration the broker runs with.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The storage engine underneath (for its statistics).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Runs a blocking store operation off the async runtime.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Store) -> Result<T> + Send + 'static) -> Result<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Unavailable("the broker is shutting down".into()));
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Error::Unavailable(format!("store task failed: {e}")))?
    }

    /// Runs `f` on this broker on a blocking thread: metadata saves (write, fsync, rename) and
    /// store reads stay off the async runtime's workers.
    pub(crate) async fn off_runtime<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Broker) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.me.upgrade().ok_or_else(|| Error::Unavailable("the broker is shutting down".into()))?;
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| Error::Unavailable(format!("blocking task failed: {e}")))?
    }

    fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    // ----- topics -----

    /// Creates a topic. `Conflict` if it exists; `InvalidArgument` for a bad or reserved name.
    pub fn create_topic(&self, name: &str, queues: Option<u32>, perm: Option<Perm>) -> Result<TopicInfo> {
        self.topics.create(name, queues.unwrap_or(self.config.default_queues), perm.unwrap_or_default())
    }

    /// Every topic.
    pub fn topics(&self) -> Vec<TopicInfo> {
        self.topics.list()
    }

    /// One topic with its queues' offsets; `NotFound` if it does not exist.
    pub fn topic(&self, name: &str) -> Result<TopicDetail> {
        let topic = self.topics.get(name).ok_or_else(|| Error::not_found("topic", name))?;
        let queue_offsets = (0..topic.queues)
            .map(|queue_id| {
                let (min, max) = self.store.queue_bounds(name, queue_id);
                QueueOffsets { queue_id, min, max }
            })
            .collect();
        Ok(TopicDetail { topic, queue_offsets })
    }

    /// Deletes a topic: its queues and every group's offsets and subscriptions on it.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        self.topics.remove(name)?;
        self.offsets.remove_topic(name);
        self.consumption.remove_topic(name);
        self.groups.remove_topic(name)?;
        self.dedup.remove_topic(name);
        let topic = name.to_string();
        let deleted = self
            .blocking(move |s| {
                s.delete_topic(&topic)?;
                let stats = s.stats();
                Ok((stats.max_offset, stats.min_offset))
            })
            .await;
        // Long polls on the topic look again, and find it gone.
        self.waiters.wake(name);
        let (cut, log_start) = deleted?;
        let topic = name.to_string();
        self.off_runtime(move |b| b.dropped.record(&topic, cut, log_start)).await
    }

    fn topic_for_write(&self, name: &str) -> Result<TopicInfo> {
        validate_topic_name(name)?;
        let topic = match self.topics.get(name) {
            Some(t) => t,
            None if self.config.auto_create_topics => self.topics.get_or_create(name, self.config.default_queues)?,
            None => return Err(Error::not_found("topic", name)),
        };
        if !topic.perm.writable() {
            return Err(Error::Forbidden(format!("topic {name:?} is read-only")));
        }
        Ok(topic)
    }

    fn topic_for_read(&self, name: &str) -> Result<TopicInfo> {
        let topic = self.topics.get(name).ok_or_else(|| Error::not_found("topic", name))?;
        if !topic.perm.readable() {
            return Err(Error::Forbidden(format!("topic {name:?} is write-only")));
        }
        Ok(topic)
    }

    // ----- groups -----

    /// Whether a group exists: it received, subscribed or was `PUT`, or has offsets (a reset).
    pub(crate) fn group_exists(&self, name: &str) -> bool {
        self.groups.exists(name) || !self.offsets.topics_of(name).is_empty()
    }

    /// Registers or refreshes a member with its subscriptions (native clients and gateway
    /// subscribers call this periodically).
    pub fn heartbeat(
        &self,
        group: &str,
        client_id: &str,
        transport: MemberTransport,
        subscriptions: Vec<Subscription>,
    ) -> Result<()> {
        validate_group_name(group)?;
        if client_id.is_empty() {
            return Err(Error::invalid("/client_id", "must not be empty"));
        }
        for sub in subscriptions {
            compile_filter(&sub.filter)?;
            self.groups.subscribe(group, sub)?;
        }
        self.groups.touch(group, client_id, transport);
        Ok(())
    }

    /// Live members of a group.
    pub fn members(&self, group: &str) -> Vec<MemberInfo> {
        self.groups.members(group)
    }

    /// A counter that changes whenever some group's membership or subscriptions change; push
    /// consumers rebalance when it moves.
    pub fn watch_membership(&self) -> watch::Receiver<u64> {
        self.groups.watch()
    }

    /// A member leaves at once: its queue locks are released and messages it held unacknowledged
    /// go back to the group at once, without counting a reconsume.
    pub fn release_client(&self, group: &str, client_id: &str) {
        self.groups.leave(group, client_id);
        self.queue_locks.release_client(group, client_id);
        for topic in self.consumption.release_client(group, client_id) {
            self.waiters.wake(&topic);
        }
    }

    /// Marks `client_id` as waiting for messages of `topic` in clustering `group` until the
    /// guard drops, so that what arrives is shared with it (see [`ReadyGuard`]). A receive
    /// counts as waiting by itself; a subscriber that receives in steps (a WebSocket
    /// subscription with free credits) holds a guard between them.
    pub fn ready_receiver(&self, group: &str, topic: &str, client_id: &str) -> ReadyGuard {
        self.ready.enter(group, topic, client_id)
    }

    /// How many members of clustering `group` wait for messages of `topic` now.
    pub fn waiting_receivers(&self, group: &str, topic: &str) -> usize {
        self.ready.members(group, topic).len()
    }

    /// Forgets a broadcasting member's position for good: for members whose id will not come
    /// back (a connection's own id), so that their state does not stay behind. A member that
    /// leaves with [`Broker::release_client`] keeps its position for its return.
    pub fn forget_broadcast_member(&self, group: &str, client_id: &str) {
        self.consumption.forget_broadcast_member(group, client_id);
    }

    /// Takes or renews an orderly lease on a queue; false while another member holds it.
    pub fn lock_queue(&self, group: &str, topic: &str, queue_id: u32, client_id: &str) -> Result<bool> {
        validate_group_name(group)?;
        Ok(self.queue_locks.lock(group, topic, queue_id, client_id, self.config.lease_ttl))
    }

    /// Releases an orderly lease held by `client_id`.
    pub fn unlock_queue(&self, group: &str, topic: &str, queue_id: u32, client_id: &str) {
        self.queue_locks.unlock(group, topic, queue_id, client_id)
    }

    /// Every group with its member count and topics.
    pub fn groups(&self) -> Vec<GroupSummary> {
        let mut names = self.groups.names();
        names.extend(self.offsets.groups());
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|group| {
                let topics = self.group_topics(&group);
                GroupSummary { members: self.groups.members(&group).len(), topics, group }
            })
            .collect()
    }

    fn group_topics(&self, group: &str) -> Vec<String> {
        let mut topics: Vec<String> = self.groups.subscriptions(group).into_iter().map(|s| s.topic).collect();
        topics.extend(self.offsets.topics_of(group).into_iter().filter(|t| self.topics.get(t).is_some()));
        topics.sort();
        topics.dedup();
        topics
    }

    /// A group in detail; `NotFound` for a group never seen.
    pub fn group(&self, name: &str) -> Result<GroupDetail> {
        if !self.group_exists(name) {
            return Err(Error::not_found("group", name));
        }
        let mut offsets = Vec::new();
        for topic in self.group_topics(name) {
            let Some(info) = self.topics.get(&topic) else { continue };
            for queue_id in 0..info.queues {
                let (min, max) = self.store.queue_bounds(&topic, queue_id);
                let committed = self.offsets.get(name, &topic, queue_id).unwrap_or(min).clamp(min, max);
                offsets.push(GroupOffset { topic: topic.clone(), queue_id, committed, max, lag: max - committed });
            }
        }
        Ok(GroupDetail {
            group: name.to_string(),
            max_reconsume_times: self.max_reconsume_times(name),
            subscriptions: self.groups.subscriptions(name),
            members: self.groups.members(name),
            offsets,
        })
    }

    /// Creates a group or changes its settings.
    pub fn put_group(&self, name: &str, max_reconsume_times: Option<u32>) -> Result<GroupDetail> {
        validate_group_name(name)?;
        if let Some(n) = max_reconsume_times {
            if n > 1000 {
                return Err(Error::invalid("/max_reconsume_times", "must be at most 1000"));
            }
        }
        self.groups.put(name, max_reconsume_times)?;
        self.group(name)
    }

    fn max_reconsume_times(&self, group: &str) -> u32 {
        self.groups.max_reconsume_times(group).unwrap_or(self.config.max_reconsume_times)
    }

    /// Commits a consumed offset (the next offset to consume) for a group's queue.
    pub fn commit_offset(&self, group: &str, topic: &str, queue_id: u32, offset: u64) -> Result<()> {
        validate_group_name(group)?;
        let (_, max) = self.store.queue_bounds(topic, queue_id);
        if offset > max {
            return Err(Error::OffsetOutOfRange { topic: topic.into(), queue_id, offset, min: 0, max });
        }
        self.offsets.set(group, topic, queue_id, offset);
        Ok(())
    }

    /// The committed offset of a group's queue, if any.
    pub fn committed_offset(&self, group: &str, topic: &str, queue_id: u32) -> Option<u64> {
        self.offsets.get(group, topic, queue_id)
    }

    /// Moves a group's offsets on `topic` to a timestamp, the earliest or the latest message.
    /// Applies at once to pulls and receives; messages leased before may still be acked.
    pub async fn reset_offsets(&self, group: &str, topic: &str, target: ResetTarget) -> Result<Vec<(u32, u64)>> {
        validate_group_name(group)?;
        let info = self.topics.get(topic).ok_or_else(|| Error::not_found("topic", topic))?;
        let name = topic.to_string();
        let targets = self
            .blocking(move |s| {
                (0..info.queues)
                    .map(|q| {
                        let (min, max) = s.queue_bounds(&name, q);
                        let offset = match target {
                            ResetTarget::Earliest => min,
                            ResetTarget::Latest => max,
                            ResetTarget::Timestamp(ts) => s.offset_for_timestamp(&name, q, ts)?,
                        };
                        Ok((q, offset))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        self.groups.put(group, None)?;
        for &(q, offset) in &targets {
            self.offsets.set(group, topic, q, offset);
            self.consumption.reset(group, topic, q, offset);
        }
        self.off_runtime(|b| b.offsets.persist_if_dirty()).await?;
        self.waiters.wake(topic);
        Ok(targets)
    }

    // ----- metrics -----

    /// Sizes of the per-message tables (see [`TableSizes`]).
    pub fn table_sizes(&self) -> TableSizes {
        let (queue_states, in_flight, done_above_committed, returned, ended_receipts) = self.consumption.sizes();
        TableSizes {
            queue_states,
            in_flight,
            done_above_committed,
            returned,
            ended_receipts,
            transactions: self.transactions.len(),
            timer_done: self.delay.timer_done_len(),
            dlq_resent: self.dlq_resent.len(),
            dedup_keys: self.dedup.len(),
            dedup_log_lines: self.dedup.log_lines(),
        }
    }

    /// Counters for `/metrics`, with a zero for every topic and group that exists.
    pub fn metrics(&self) -> BrokerMetrics {
        let mut m = self.counters.snapshot();
        for t in self.topics.list() {
            m.messages_in.entry(t.name.clone()).or_default();
            m.bytes_in.entry(t.name).or_default();
        }
        for g in self.groups() {
            if let Ok(detail) = self.group(&g.group) {
                for topic in &g.topics {
                    m.messages_out.entry((topic.clone(), g.group.clone())).or_default();
                    let lag = detail.offsets.iter().filter(|o| &o.topic == topic).map(|o| o.lag).sum();
                    m.consumer_lag.insert((g.group.clone(), topic.clone()), lag);
                }
            }
        }
        m
    }

    // ----- housekeeping -----

    async fn run_housekeeping(self: Arc<Self>) {
        let mut stop = self.shutdown_signal();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            n += 1;
            self.expire_leases().await;
            for (group, client) in self.groups.expire(self.config.lease_ttl) {
                self.queue_locks.release_client(&group, &client);
            }
            if n.is_multiple_of(2) {
                if let Err(e) = self.off_runtime(|b| b.offsets.persist_if_dirty()).await {
                    tracing::error!(error = %e, "persisting consumer offsets failed");
                }
            }
        }
    }
}

fn validate_config(c: &BrokerConfig) -> Result<()> {
    if c.delay_levels.is_empty() || c.delay_levels.iter().any(|d| d.is_zero()) {
        return Err(Error::invalid("/delay_levels", "needs at least one level, each longer than zero"));
    }
    if c.default_queues == 0 || c.default_queues > topic::MAX_QUEUES {
        return Err(Error::invalid("/default_queues", format!("must be 1 to {}", topic::MAX_QUEUES)));
    }
    if c.timer_precision.is_zero() {
        return Err(Error::invalid("/timer_precision", "must be longer than zero"));
    }
    if c.max_delay > MAX_DELAY_BOUND {
        return Err(Error::invalid("/max_delay", "must be at most 3650 days"));
    }
    if c.delay_levels.iter().any(|d| *d > MAX_DELAY_BOUND) {
        return Err(Error::invalid("/delay_levels", "each level must be at most 3650 days"));
    }
    if c.timer_precision > MAX_DELAY_BOUND || c.orderly_suspend > MAX_DELAY_BOUND || c.lease_ttl > MAX_DELAY_BOUND {
        return Err(Error::invalid("/orderly_suspend", "durations must be at most 3650 days"));
    }
    Ok(())
}

/// Longest delay the broker accepts anywhere (ten years), so that `now + delay` never
/// overflows a clock.
const MAX_DELAY_BOUND: Duration = Duration::from_secs(3650 * 24 * 3600);

impl Broker {
    /// Checks a redelivery delay given to `nack` or `send_message_back`: at most `max_delay`.
    pub(crate) fn validate_redelivery_delay(&self, delay: Option<Duration>) -> Result<()> {
        match delay {
            Some(d) if d > self.config.max_delay => Err(Error::invalid(
                "/delay_ms",
                format!("must be at most max_delay ({} ms)", self.config.max_delay.as_millis()),
            )),
            _ => Ok(()),
        }
    }
}

/// Compiles a user filter.
pub fn compile_filter(spec: &FilterSpec) -> Result<Filter> {
    match spec {
        FilterSpec::Tag(expr) => Filter::tag(expr),
        FilterSpec::Sql(expr) => Filter::sql(expr),
    }
}
