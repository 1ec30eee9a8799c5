//! [`PushConsumer`]: a member of a consumer group that learns the group, takes its share of
//! the topic's queues, pulls them with long polling, and hands messages to a listener (or to
//! the application through [`PushConsumer::recv`] when there is none).
//!
//! Its background task heartbeats every `lease_ttl / 3` (the broker forgets members after
//! `lease_ttl`), renews its orderly leases on the same beat, and rebalances: at once when the
//! broker reports a membership change (embedded), when a look at the member list (every
//! heartbeat, and every 2 s over a transport without notifications) finds it changed, and on
//! a timer (`rebalance_interval`, 20 s by default, as in RocketMQ). Each member runs the same
//! [`Strategy`] over the same members and queues, so shares never overlap at steady state.
//!
//! Each assigned queue is a [`ProcessQueue`] (see `process_queue.rs`). When a queue moves away,
//! the old owner stops pulling, lets running listeners finish, commits and only then (orderly)
//! releases its lease, so the new owner starts exactly after the last message done.
//!
//! Clustering members share the group's offsets on the broker and, unless orderly, also
//! consume the group's retry queue (`%RETRY%<group>`, queue 0), allocated like any other
//! queue. Broadcasting members consume every queue and keep their offsets in memory: a member
//! that restarts begins at its start position again.
//!
//! As in RocketMQ, every member of a group must subscribe the same topic with the same filter,
//! mode and strategy: each computes the allocation alone, so members that disagree on the
//! queues or the rule can both claim a queue, or leave one unclaimed. Delivery is at least
//! once: while queues move (a member joins, or one vanishes without closing) a message can be
//! consumed again by its new owner; at steady state and across clean closes it is not.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::broker::{retry_topic, ConsumeMode, FilterSpec, MemberTransport, Message, StartPosition, Subscription};
use crate::{Error, Result};

use super::process_queue::{ConsumerCore, ProcessQueue, Sink};
use super::rebalance::{Member, QueueRef, Strategy};
use super::transport::Transport;

/// Rebalance period when none is given, as in RocketMQ.
pub const DEFAULT_REBALANCE_INTERVAL: Duration = Duration::from_secs(20);

/// Longest time between two looks at the member list when the transport cannot report
/// membership changes.
const MEMBERSHIP_POLL: Duration = Duration::from_secs(2);
/// The longest `start` waits for the first rebalance's queues to fix where they start.
const START_SETTLE: Duration = Duration::from_secs(10);

/// The verdict on one delivered message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Consumed.
    Ack,
    /// Failed: redeliver, after this delay if given.
    Nack(Option<Duration>),
    /// Not consumed because the queue stopped first: leave it to the next owner.
    Abandon,
}

pub(crate) const DELIVERY_QUEUED: u8 = 0;
pub(crate) const DELIVERY_TAKEN: u8 = 1;
pub(crate) const DELIVERY_ABANDONED: u8 = 2;

/// A message on its way to the application through the stream.
pub(crate) struct Delivery {
    pub(crate) message: Message,
    pub(crate) reply: oneshot::Sender<Outcome>,
    /// Queued, taken by the application, or abandoned because its queue stopped first.
    pub(crate) state: Arc<AtomicU8>,
}

/// A listener's failure: the message is redelivered (through retry, or in place for orderly
/// and broadcasting consumers).
///
/// Any error type converts into it with `?`; [`ListenerError::new`] makes one from text.
#[derive(Debug)]
pub struct ListenerError {
    message: String,
    retry_after: Option<Duration>,
    not_started: bool,
}

impl ListenerError {
    /// A failure with this description.
    pub fn new(message: impl Into<String>) -> Self {
        ListenerError { message: message.into(), retry_after: None, not_started: false }
    }

    /// Not a failure: the consumer is closing and the message was never given to the
    /// application (a binding that queues messages before its listener runs them). The
    /// message stays for the queue's next owner, without counting a reconsume, as one not yet
    /// handed out would; if its queue is still running, this waits until the queue stops.
    pub fn not_started() -> Self {
        ListenerError { not_started: true, ..ListenerError::new("the consumer closed before the listener started") }
    }

    /// Whether this is [`ListenerError::not_started`].
    pub fn is_not_started(&self) -> bool {
        self.not_started
    }

    /// Asks for redelivery after `delay` instead of the default retry delay.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// The redelivery delay asked for, if any.
    pub fn retry_delay(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for ListenerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for ListenerError {
    fn from(e: E) -> Self {
        ListenerError::new(e.to_string())
    }
}

type ListenerFn = dyn Fn(Message) -> BoxFuture<'static, std::result::Result<(), ListenerError>> + Send + Sync;

/// The verdicts of one call of a batch listener, one per message and in their order.
pub type BatchVerdicts = Vec<std::result::Result<(), ListenerError>>;

type BatchListenerFn = dyn Fn(&[Message]) -> BoxFuture<'static, BatchVerdicts> + Send + Sync;

#[derive(Clone)]
enum ListenerKind {
    One(Arc<ListenerFn>),
    Batch(Arc<BatchListenerFn>),
}

/// What a push consumer calls for each message: `Ok(())` consumes it, an error (or a panic)
/// fails it.
#[derive(Clone)]
pub struct Listener(ListenerKind);

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Listener")
    }
}

impl Listener {
    /// An async listener.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), ListenerError>> + Send + 'static,
    {
        Listener(ListenerKind::One(Arc::new(move |m| f(m).boxed())))
    }

    /// A blocking listener, run on Tokio's blocking threads (for code that does blocking I/O,
    /// and for the SDKs' synchronous callbacks).
    pub fn blocking<F>(f: F) -> Self
    where
        F: Fn(Message) -> std::result::Result<(), ListenerError> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        Listener(ListenerKind::One(Arc::new(move |m| {
            let f = f.clone();
            async move {
                tokio::task::spawn_blocking(move || f(m))
                    .await
                    .unwrap_or_else(|e| Err(ListenerError::new(format!("listener failed: {e}"))))
            }
            .boxed()
        })))
    }

    /// A listener called with several messages at once, for listeners whose cost is per call
    /// rather than per message (a language binding that crosses to another thread or
    /// runtime for each call). It must answer one verdict per message, in their order; a
    /// missing verdict (or a panic) fails the message. `f` borrows the messages: what it needs
    /// later it copies before returning its future.
    ///
    /// A concurrent consumer hands it up to `consume_workers` messages of one pulled batch per
    /// call (each message still takes one worker until its call has answered, so
    /// `consume_workers` still bounds the messages being consumed at once); a message that
    /// failed is retried alone. An orderly consumer calls it with one message at a time.
    pub fn batch<F, Fut>(f: F) -> Self
    where
        F: Fn(&[Message]) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = BatchVerdicts> + Send + 'static,
    {
        Listener(ListenerKind::Batch(Arc::new(move |m| f(m).boxed())))
    }

    /// Whether this listener takes messages in batches.
    pub(crate) fn is_batch(&self) -> bool {
        matches!(self.0, ListenerKind::Batch(_))
    }

    pub(crate) fn call(&self, message: Message) -> BoxFuture<'static, std::result::Result<(), ListenerError>> {
        match &self.0 {
            ListenerKind::One(f) => f(message),
            ListenerKind::Batch(f) => {
                let verdicts = f(std::slice::from_ref(&message));
                async move { verdicts.await.into_iter().next().unwrap_or_else(|| Err(missing_verdict())) }.boxed()
            }
        }
    }

    /// Calls a batch listener with `messages`: one verdict per message, in order (a missing
    /// one fails its message). A one-message listener is called for each in turn.
    pub(crate) fn call_batch(&self, messages: &[Message]) -> BoxFuture<'static, BatchVerdicts> {
        let n = messages.len();
        match &self.0 {
            ListenerKind::Batch(f) => {
                let verdicts = f(messages);
                async move {
                    let mut verdicts = verdicts.await;
                    verdicts.truncate(n);
                    verdicts.resize_with(n, || Err(missing_verdict()));
                    verdicts
                }
                .boxed()
            }
            ListenerKind::One(f) => {
                let calls: Vec<_> = messages.iter().map(|m| f(m.clone())).collect();
                futures::future::join_all(calls).boxed()
            }
        }
    }
}

fn missing_verdict() -> ListenerError {
    ListenerError::new("the batch listener gave no verdict for this message")
}

/// A change of this member's queues: what a rebalance (or `close`) took away and what it gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rebalance {
    /// Queues this member no longer consumes: stopped, so no new message of theirs is handed
    /// out; after a rebalance their last offsets are committed in the background, after
    /// `close` they are committed already. Sorted.
    pub revoked: Vec<QueueRef>,
    /// Queues this member consumes from now on. Sorted.
    pub assigned: Vec<QueueRef>,
}

type RebalanceFn = dyn Fn(&Rebalance) + Send + Sync;

/// Told of every change of a push consumer's queues (see [`Rebalance`]), for applications that
/// keep per-queue state (caches, transactions, external offsets). It runs on the consumer's
/// own task, after the change and outside its locks (so it may call
/// [`PushConsumer::assignment`]); it must return quickly. `close` reports every queue revoked.
#[derive(Clone)]
pub struct RebalanceListener(Arc<RebalanceFn>);

impl fmt::Debug for RebalanceListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RebalanceListener")
    }
}

impl RebalanceListener {
    /// A listener calling `f` with each change.
    pub fn new(f: impl Fn(&Rebalance) + Send + Sync + 'static) -> Self {
        RebalanceListener(Arc::new(f))
    }

    fn notify(&self, change: &Rebalance) {
        if !change.revoked.is_empty() || !change.assigned.is_empty() {
            (self.0)(change);
        }
    }
}

/// A [`RebalanceListener`] that hands each change, in order, to a task of the caller's, and
/// counts the changes not yet reported: for hooks that must run elsewhere than the consumer's
/// task (a language binding's callbacks, on the thread that holds its interpreter), so that
/// closing can wait until the final revoke has been reported.
#[derive(Debug, Default)]
pub struct RebalanceReports {
    pending: std::sync::Mutex<usize>,
    idle: tokio::sync::Notify,
}

impl RebalanceReports {
    /// The counter, the changes to report (in order; call [`RebalanceReports::reported_one`]
    /// after each), and the listener to put in the consumer's options.
    pub fn channel() -> (Arc<RebalanceReports>, tokio::sync::mpsc::UnboundedReceiver<Rebalance>, RebalanceListener) {
        let reports = Arc::new(RebalanceReports::default());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Rebalance>();
        let counter = reports.clone();
        let listener = RebalanceListener::new(move |change: &Rebalance| {
            *counter.lock() += 1;
            if tx.send(change.clone()).is_err() {
                counter.reported_one();
            }
        });
        (reports, rx, listener)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One change taken from the channel has been reported (or dropped).
    pub fn reported_one(&self) {
        let mut pending = self.lock();
        *pending = pending.saturating_sub(1);
        if *pending == 0 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until every change handed out so far has been reported.
    pub async fn all_reported(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if *self.lock() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// How a push consumer consumes. Every field has a default; set what differs.
#[derive(Clone, Debug)]
pub struct PushConsumerOptions {
    /// Tag expression or SQL92 filter, applied by the broker (default: every message).
    pub filter: FilterSpec,
    /// Clustering (each message to one member, the default) or broadcasting (to every member).
    pub mode: ConsumeMode,
    /// Orderly: one message at a time per queue, in queue order, under a broker lease.
    pub orderly: bool,
    /// How the group's queues are shared among its members (default `average`).
    pub strategy: Strategy,
    /// Where to begin on a queue the group has no committed offset for (default: the first
    /// retained message).
    pub start: StartPosition,
    /// Called for each message; without one, read messages with [`PushConsumer::recv`].
    pub listener: Option<Listener>,
    /// Most listener calls running at once, across all queues (default 16); without a
    /// listener, the most messages handed out by [`PushConsumer::recv`] and not yet answered.
    pub consume_workers: usize,
    /// Most messages one pull asks for (default 32).
    pub pull_batch: usize,
    /// Most messages pulled and not yet done per queue; pulling pauses above it (default 1000).
    pub max_buffered_per_queue: usize,
    /// How long one pull waits for new messages (default 5 s).
    pub pull_wait: Duration,
    /// Rebalance period (default 20 s); membership changes also rebalance at once.
    pub rebalance_interval: Duration,
    /// Heartbeat period (default: a third of the broker's `lease_ttl`).
    pub heartbeat_interval: Option<Duration>,
    /// How often consumed offsets are committed (default 1 s); also on every queue release.
    pub commit_interval: Duration,
    /// Pause before an orderly (or broadcasting) retry in place (default: the broker's
    /// `orderly_suspend`).
    pub orderly_suspend: Option<Duration>,
    /// How long closing, or releasing a queue, waits for running listeners (default 10 s).
    pub close_timeout: Duration,
    /// Told when this member's queues change (default: nobody).
    pub on_rebalance: Option<RebalanceListener>,
}

impl Default for PushConsumerOptions {
    fn default() -> Self {
        PushConsumerOptions {
            filter: FilterSpec::default(),
            mode: ConsumeMode::Clustering,
            orderly: false,
            strategy: Strategy::Average,
            start: StartPosition::First,
            listener: None,
            consume_workers: 16,
            pull_batch: 32,
            max_buffered_per_queue: 1000,
            pull_wait: Duration::from_secs(5),
            rebalance_interval: DEFAULT_REBALANCE_INTERVAL,
            heartbeat_interval: None,
            commit_interval: Duration::from_secs(1),
            orderly_suspend: None,
            close_timeout: Duration::from_secs(10),
            on_rebalance: None,
        }
    }
}

impl PushConsumerOptions {
    /// Filters by tag expression (`*`, `TagA`, `TagA || TagB`).
    pub fn tag_filter(mut self, expression: impl Into<String>) -> Self {
        self.filter = FilterSpec::Tag(expression.into());
        self
    }

    /// Filters by SQL92 over properties.
    pub fn sql_filter(mut self, expression: impl Into<String>) -> Self {
        self.filter = FilterSpec::Sql(expression.into());
        self
    }

    /// Sets clustering or broadcasting.
    pub fn mode(mut self, mode: ConsumeMode) -> Self {
        self.mode = mode;
        self
    }

    /// Consumes each queue in order, one message at a time.
    pub fn orderly(mut self, orderly: bool) -> Self {
        self.orderly = orderly;
        self
    }

    /// Sets the allocation strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the start position for queues the group has not consumed yet.
    pub fn start(mut self, start: StartPosition) -> Self {
        self.start = start;
        self
    }

    /// Sets the listener.
    pub fn listener(mut self, listener: Listener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Sets the listener told of each change of this member's queues.
    pub fn on_rebalance(mut self, listener: RebalanceListener) -> Self {
        self.on_rebalance = Some(listener);
        self
    }

    /// Sets the rebalance period.
    pub fn rebalance_interval(mut self, interval: Duration) -> Self {
        self.rebalance_interval = interval;
        self
    }

    /// Sets how many listener calls may run at once.
    pub fn consume_workers(mut self, workers: usize) -> Self {
        self.consume_workers = workers;
        self
    }

    fn validate(&self) -> Result<()> {
        crate::broker::compile_filter(&self.filter)?;
        if self.consume_workers == 0 {
            return Err(Error::invalid("/consume_workers", "must be at least 1"));
        }
        if self.pull_batch == 0 || self.pull_batch > 1000 {
            return Err(Error::invalid("/pull_batch", "must be 1 to 1000"));
        }
        if self.max_buffered_per_queue < self.pull_batch {
            return Err(Error::invalid("/max_buffered_per_queue", "must be at least pull_batch"));
        }
        if self.pull_wait > Duration::from_secs(30) {
            return Err(Error::invalid("/pull_wait", "must be at most 30 s"));
        }
        for (field, d) in [("/rebalance_interval", self.rebalance_interval), ("/commit_interval", self.commit_interval)]
        {
            if d.is_zero() {
                return Err(Error::invalid(field, "must be longer than zero"));
            }
        }
        if self.heartbeat_interval.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid("/heartbeat_interval", "must be longer than zero"));
        }
        Ok(())
    }
}

/// A message handed to the application by [`PushConsumer::recv`]. Call [`ack`](Self::ack)
/// once it is consumed or [`nack`](Self::nack) to have it redelivered; dropping it without
/// either counts as a nack.
///
/// For an orderly consumer the next message of the same queue comes only after this one is
/// acked.
#[derive(Debug)]
pub struct ReceivedMessage {
    message: Message,
    reply: oneshot::Sender<Outcome>,
}

impl ReceivedMessage {
    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Marks it consumed.
    pub fn ack(self) {
        let _ = self.reply.send(Outcome::Ack);
    }

    /// Marks it failed: redelivered after the retry delay (in place after `orderly_suspend`
    /// for orderly and broadcasting consumers).
    pub fn nack(self) {
        let _ = self.reply.send(Outcome::Nack(None));
    }

    /// Marks it failed, to be redelivered after `delay`.
    pub fn nack_after(self, delay: Duration) {
        let _ = self.reply.send(Outcome::Nack(Some(delay)));
    }
}

impl std::ops::Deref for ReceivedMessage {
    type Target = Message;

    fn deref(&self) -> &Message {
        &self.message
    }
}

/// An assigned queue and the task that runs it.
struct Running {
    pq: Arc<ProcessQueue>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    started: bool,
    closed: bool,
    assigned: BTreeMap<QueueRef, Running>,
    /// Queues taken away whose final commit may still be running; a queue that comes back
    /// waits for it.
    releasing: HashMap<QueueRef, JoinHandle<()>>,
    main: Option<JoinHandle<()>>,
    /// Member list of the last rebalance.
    members: Vec<String>,
}

pub(crate) struct Inner {
    core: Arc<ConsumerCore>,
    strategy: Strategy,
    heartbeat_interval: Duration,
    rebalance_interval: Duration,
    commit_interval: Duration,
    retry_topic: String,
    state: Mutex<State>,
    stop: watch::Sender<bool>,
    stream: Option<tokio::sync::Mutex<mpsc::UnboundedReceiver<Delivery>>>,
    close_started: AtomicBool,
    on_rebalance: Option<RebalanceListener>,
}

/// A push consumer: one member of a consumer group on one topic.
///
/// Created by [`Client::push_consumer`](super::Client::push_consumer); nothing happens until
/// [`start`](Self::start). [`close`](Self::close) leaves cleanly (offsets committed, leases
/// released, the group told at once); dropping the consumer only stops its tasks, and the
/// group notices when the member's heartbeat lapses.
pub struct PushConsumer {
    inner: Arc<Inner>,
}

impl fmt::Debug for PushConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushConsumer")
            .field("group", &self.inner.core.group)
            .field("topic", &self.inner.core.topic)
            .field("client_id", &self.inner.core.client_id)
            .finish_non_exhaustive()
    }
}

impl PushConsumer {
    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        group: &str,
        topic: &str,
        client_id: String,
        options: PushConsumerOptions,
    ) -> Result<Self> {
        crate::broker::validate_group_name(group)?;
        crate::broker::validate_topic_name(topic)?;
        options.validate()?;
        let mut timings = transport.timings();
        if let Some(d) = options.orderly_suspend {
            timings.orderly_suspend = d;
        }
        let heartbeat_interval =
            options.heartbeat_interval.unwrap_or(timings.lease_ttl / 3).max(Duration::from_millis(10));
        let (sink, stream) = match options.listener {
            Some(listener) => (Sink::Listener(listener), None),
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Sink::Stream(Mutex::new(Some(tx))), Some(tokio::sync::Mutex::new(rx)))
            }
        };
        let core = Arc::new(ConsumerCore {
            transport,
            group: group.to_string(),
            topic: topic.to_string(),
            client_id,
            filter: options.filter,
            mode: options.mode,
            orderly: options.orderly,
            start: options.start,
            pull_batch: options.pull_batch,
            max_buffered_per_queue: options.max_buffered_per_queue,
            pull_wait: options.pull_wait,
            close_timeout: options.close_timeout,
            timings,
            sink,
            workers: Arc::new(Semaphore::new(options.consume_workers)),
            batch_turn: tokio::sync::Mutex::new(()),
            max_reconsume_times: AtomicU32::new(timings.max_reconsume_times),
            local_offsets: Mutex::new(HashMap::new()),
        });
        Ok(PushConsumer {
            inner: Arc::new(Inner {
                core,
                strategy: options.strategy,
                heartbeat_interval,
                rebalance_interval: options.rebalance_interval,
                commit_interval: options.commit_interval,
                retry_topic: retry_topic(group),
                state: Mutex::new(State::default()),
                stop: watch::channel(false).0,
                stream,
                close_started: AtomicBool::new(false),
                on_rebalance: options.on_rebalance,
            }),
        })
    }

    pub(crate) fn closer(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.inner.core.group
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.inner.core.topic
    }

    /// This member's client id, unique in the group.
    pub fn client_id(&self) -> &str {
        &self.inner.core.client_id
    }

    /// The queues this member consumes now, sorted (the retry queue appears under the group's
    /// retry topic).
    pub fn assignment(&self) -> Vec<QueueRef> {
        self.inner.state().assigned.keys().cloned().collect()
    }

    /// Joins the group and starts consuming: registers with a heartbeat, takes a share of the
    /// queues, and starts the background task. From [`StartPosition::Last`] it returns once
    /// those queues know where they start (bounded by 10 s), so a message sent after `start`
    /// returns is consumed. [`Error::NotFound`] when the topic does not exist;
    /// [`Error::Conflict`] when started twice or after close.
    pub async fn start(&self) -> Result<()> {
        {
            let mut state = self.inner.state();
            if state.started || state.closed {
                return Err(Error::Conflict("the push consumer was started already".into()));
            }
            state.started = true;
        }
        let started = self.inner.clone().begin().await;
        if let Err(e) = started {
            self.inner.state().started = false;
            return Err(e);
        }
        Ok(())
    }

    /// The next message, for a consumer without a listener; `None` once the consumer is closed
    /// (or if it has a listener).
    pub async fn recv(&self) -> Option<ReceivedMessage> {
        let stream = self.inner.stream.as_ref()?;
        let mut rx = stream.lock().await;
        loop {
            let delivery = rx.recv().await?;
            let taken = delivery
                .state
                .compare_exchange(DELIVERY_QUEUED, DELIVERY_TAKEN, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if taken {
                return Some(ReceivedMessage { message: delivery.message, reply: delivery.reply });
            }
        }
    }

    /// The messages as a stream, for a consumer without a listener; it ends when the consumer
    /// closes.
    pub fn stream(&self) -> impl futures::Stream<Item = ReceivedMessage> + '_ {
        futures::stream::unfold(self, |c| async move { c.recv().await.map(|m| (m, c)) })
    }

    /// Leaves the group cleanly: stops pulling, waits (up to `close_timeout`) for running
    /// listeners, commits every queue's offset, releases orderly leases and tells the broker
    /// the member left, so the others take its queues at once. Idempotent.
    pub async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

impl Drop for PushConsumer {
    fn drop(&mut self) {
        // Without close: stop the tasks; the group notices when the heartbeat lapses.
        self.inner.stop.send_replace(true);
        let state = self.inner.state();
        for running in state.assigned.values() {
            running.pq.stop();
        }
    }
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    async fn begin(self: Arc<Self>) -> Result<()> {
        let core = &self.core;
        // Watched from before this member joins: a member that joins right after it (before
        // the background task first runs) is a change it sees, not one it misses until the
        // next heartbeat.
        let membership = core.transport.watch_membership();
        core.transport.topic(&core.topic).await?;
        self.heartbeat().await?;
        if let Ok(group) = core.transport.group(&core.group).await {
            core.max_reconsume_times.store(group.max_reconsume_times, Ordering::Relaxed);
        }
        self.rebalance().await;
        // From the last offset, where each queue of the first rebalance starts is fixed
        // before `start` returns, so that a message sent after it is consumed. Bounded: a
        // broker that does not answer leaves the queues to keep trying on their own. Other
        // starts do not depend on the moment, and do not wait.
        if core.start == StartPosition::Last {
            let queues: Vec<Arc<ProcessQueue>> = self.state().assigned.values().map(|r| r.pq.clone()).collect();
            let settled = futures::future::join_all(queues.iter().map(|pq| pq.settled()));
            if tokio::time::timeout(START_SETTLE, settled).await.is_err() {
                tracing::warn!(group = %core.group, "start offsets not fixed yet; starting anyway");
            }
        }
        let task = tokio::spawn(self.clone().run(membership));
        self.state().main = Some(task);
        Ok(())
    }

    async fn heartbeat(&self) -> Result<()> {
        let core = &self.core;
        let subscription = Subscription { topic: core.topic.clone(), filter: core.filter.clone(), mode: core.mode };
        core.transport.heartbeat(&core.group, &core.client_id, vec![subscription]).await
    }

    /// The background task: heartbeats, lease renewal, rebalancing and offset commits.
    async fn run(self: Arc<Self>, mut membership: Option<watch::Receiver<u64>>) {
        let start = tokio::time::Instant::now();
        let mut heartbeat = tokio::time::interval_at(start + self.heartbeat_interval, self.heartbeat_interval);
        let mut rebalance = tokio::time::interval_at(start + self.rebalance_interval, self.rebalance_interval);
        let mut commit = tokio::time::interval_at(start + self.commit_interval, self.commit_interval);
        for t in [&mut heartbeat, &mut rebalance, &mut commit] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        // Without notifications from the broker, look at the member list often enough to
        // rebalance within seconds of a join or leave.
        let mut poll = membership.is_none().then(|| {
            let every = self.heartbeat_interval.min(MEMBERSHIP_POLL);
            let mut poll = tokio::time::interval_at(start + every, every);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            poll
        });
        let mut stop = self.stop.subscribe();
        loop {
            tokio::select! {
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                _ = heartbeat.tick() => {
                    if let Err(e) = self.heartbeat().await {
                        tracing::warn!(group = %self.core.group, error = %e, "heartbeat failed");
                    }
                    self.renew_leases().await;
                    if self.members_changed().await {
                        self.rebalance().await;
                    }
                }
                _ = rebalance.tick() => self.rebalance().await,
                _ = membership_changed(&mut membership) => self.rebalance().await,
                _ = tick(&mut poll) => {
                    if self.members_changed().await {
                        self.rebalance().await;
                    }
                }
                _ = commit.tick() => self.commit_all().await,
            }
        }
    }

    fn running_queues(&self) -> Vec<Arc<ProcessQueue>> {
        self.state().assigned.values().map(|r| r.pq.clone()).collect()
    }

    async fn commit_all(&self) {
        for pq in self.running_queues() {
            pq.commit(&self.core).await;
        }
    }

    /// Renews every orderly lease; a queue whose lease another member took stops, and the
    /// next rebalance brings it back if it is still ours.
    async fn renew_leases(&self) {
        if !self.core.orderly || self.core.mode != ConsumeMode::Clustering {
            return;
        }
        for pq in self.running_queues() {
            if !pq.renew_lease(&self.core).await {
                tracing::warn!(group = %self.core.group, queue = ?pq.queue, "lost the lease on a queue");
                let mut state = self.state();
                if state.assigned.get(&pq.queue).is_some_and(|r| Arc::ptr_eq(&r.pq, &pq)) {
                    if let Some(r) = state.assigned.remove(&pq.queue) {
                        r.pq.stop();
                        state.releasing.insert(pq.queue.clone(), r.task);
                    }
                }
            }
        }
    }

    /// The group's members that run the member logic themselves (native clients), by id.
    async fn native_members(&self) -> Result<Vec<String>> {
        let members = self.core.transport.members(&self.core.group).await?;
        let mut ids: Vec<String> =
            members.into_iter().filter(|m| m.transport == MemberTransport::Native).map(|m| m.client_id).collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn members_changed(&self) -> bool {
        match self.native_members().await {
            Ok(ids) => self.state().members != ids,
            Err(_) => false,
        }
    }

    /// The queues this member should consume now.
    async fn target(&self) -> Result<BTreeSet<QueueRef>> {
        let core = &self.core;
        let topic = core.transport.topic(&core.topic).await?;
        let mut queues: Vec<QueueRef> =
            topic.queue_offsets.iter().map(|q| QueueRef::new(core.topic.clone(), q.queue_id)).collect();
        if core.mode == ConsumeMode::Broadcasting {
            return Ok(queues.into_iter().collect());
        }
        if !core.orderly && core.transport.supports_send_back() {
            queues.push(QueueRef::new(self.retry_topic.clone(), 0));
        }
        let ids = self.native_members().await?;
        self.state().members = ids.clone();
        let members: Vec<Member> = ids.iter().map(Member::new).collect();
        Ok(self.strategy.allocate(&core.client_id, &members, &queues).into_iter().collect())
    }

    /// Computes this member's share and starts and stops queues to match.
    async fn rebalance(&self) {
        if self.is_stopping() {
            return;
        }
        let target = match self.target().await {
            Ok(t) => t,
            Err(Error::NotFound { .. }) => BTreeSet::new(),
            Err(e) => {
                tracing::warn!(group = %self.core.group, error = %e, "rebalance failed; keeping the current queues");
                return;
            }
        };
        let mut change = Rebalance::default();
        {
            let mut state = self.state();
            if state.closed || self.is_stopping() {
                return;
            }
            self.apply(&mut state, target, &mut change);
        }
        if let Some(listener) = &self.on_rebalance {
            listener.notify(&change);
        }
    }

    /// Starts and stops queues so that `state` holds exactly `target`, recording the change.
    fn apply(&self, state: &mut State, target: BTreeSet<QueueRef>, change: &mut Rebalance) {
        state.releasing.retain(|_, task| !task.is_finished());
        let gone: Vec<QueueRef> = state.assigned.keys().filter(|q| !target.contains(q)).cloned().collect();
        change.revoked.clone_from(&gone);
        for queue in gone {
            if let Some(running) = state.assigned.remove(&queue) {
                running.pq.stop();
                state.releasing.insert(queue, running.task);
            }
        }
        for queue in target {
            if state.assigned.contains_key(&queue) {
                continue;
            }
            change.assigned.push(queue.clone());
            let is_retry = queue.topic == self.retry_topic;
            let pq = ProcessQueue::new(queue.clone(), is_retry, self.core.max_buffered_per_queue);
            let previous = state.releasing.remove(&queue);
            let core = self.core.clone();
            let run = pq.clone();
            let task = tokio::spawn(async move {
                if let Some(previous) = previous {
                    let _ = previous.await;
                }
                run.run(core).await;
            });
            state.assigned.insert(queue, Running { pq, task });
        }
        tracing::debug!(group = %self.core.group, client_id = %self.core.client_id, queues = ?state.assigned.keys().collect::<Vec<_>>(), "rebalanced");
    }

    pub(crate) async fn close(&self) -> Result<()> {
        if self.close_started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop.send_replace(true);
        let mut change = Rebalance::default();
        let (main, tasks, started) = {
            let mut state = self.state();
            state.closed = true;
            let mut tasks: Vec<JoinHandle<()>> = Vec::new();
            for (queue, running) in std::mem::take(&mut state.assigned) {
                running.pq.stop();
                tasks.push(running.task);
                change.revoked.push(queue);
            }
            tasks.extend(state.releasing.drain().map(|(_, t)| t));
            (state.main.take(), tasks, state.started)
        };
        if let Some(main) = main {
            let _ = main.await;
        }
        for task in tasks {
            let _ = task.await;
        }
        if let Some(listener) = &self.on_rebalance {
            listener.notify(&change);
        }
        if let Sink::Stream(sender) = &self.core.sink {
            sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        if started {
            self.core.transport.release_client(&self.core.group, &self.core.client_id).await?;
        }
        Ok(())
    }
}

/// Resolves at the interval's next tick; never, without one.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Resolves when the broker's membership counter moves; never, when there is none.
async fn membership_changed(watch: &mut Option<watch::Receiver<u64>>) {
    match watch {
        Some(w) => {
            if w.changed().await.is_err() {
                *watch = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rebalance_reports_hand_changes_over_in_order_and_count_them() {
        let (reports, mut changes, listener) = RebalanceReports::channel();
        let change = |q: u32| Rebalance { revoked: Vec::new(), assigned: vec![QueueRef::new("t", q)] };
        listener.notify(&change(0));
        listener.notify(&Rebalance::default()); // nothing changed: not reported
        listener.notify(&change(1));
        assert!(futures::FutureExt::now_or_never(reports.all_reported()).is_none(), "two changes are pending");
        for q in 0..2 {
            assert_eq!(changes.recv().await.unwrap().assigned, vec![QueueRef::new("t", q)]);
            reports.reported_one();
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), reports.all_reported()).await.unwrap();
        // A change nobody will take (the reporting task is gone) does not hold up a close.
        drop(changes);
        listener.notify(&change(2));
        tokio::time::timeout(std::time::Duration::from_secs(5), reports.all_reported()).await.unwrap();
    }
}
