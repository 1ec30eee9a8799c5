//! One queue assigned to a push consumer: its pull loop, its local buffer, the delivery of its
//! messages to the listener (or the stream), and its consumed offset.
//!
//! A [`ProcessQueue`] lives from the moment the rebalancer assigns the queue until it takes the
//! queue away (or the consumer closes). Its [`ProcessQueue::run`] task does, in order:
//!
//! 1. orderly clustering only: take the broker's lease on the queue, retrying until granted;
//! 2. find where to start: the group's committed offset (broadcasting: this member's own), or
//!    the consumer's start position;
//! 3. pull with long polling into a buffer bounded by `max_buffered_per_queue` permits, so a
//!    slow listener stops the pulling instead of filling memory;
//! 4. on stop: wait (bounded by `close_timeout`) for messages already handed to the listener,
//!    commit the offset, and release the lease.
//!
//! The committed offset is the lowest offset not yet done ([`OffsetTracker`]): a message is
//! done when the listener acked it, or when it was sent back through retry. Messages pulled
//! but not yet started when the queue stops stay below the commit, so the next owner gets them.

use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::broker::{ConsumeMode, FilterSpec, Message, PullRequest, StartPosition};
use crate::Error;

use super::push_consumer::{Delivery, Listener, ListenerError, Outcome, DELIVERY_ABANDONED, DELIVERY_QUEUED};
use super::rebalance::QueueRef;
use super::transport::{BrokerTimings, Transport};

/// Pause after a failed broker call before the queue tries again.
const ERROR_BACKOFF: Duration = Duration::from_millis(500);
/// Most time between two attempts at an orderly lease another member holds.
const LOCK_RETRY: Duration = Duration::from_millis(250);

/// The lowest offset of a queue not yet consumed, from the messages in flight.
///
/// `frontier` is the offset the next pull starts from; `pending` the offsets pulled and not
/// yet done. The offset to commit is the smallest pending one, or the frontier when nothing is
/// pending.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct OffsetTracker {
    frontier: u64,
    pending: BTreeSet<u64>,
    last_committed: Option<u64>,
}

impl OffsetTracker {
    /// A tracker starting at `offset`.
    pub(crate) fn new(offset: u64) -> Self {
        OffsetTracker { frontier: offset, ..OffsetTracker::default() }
    }

    /// The offset the next pull starts from.
    pub(crate) fn frontier(&self) -> u64 {
        self.frontier
    }

    /// A pulled message at `offset` is now in flight.
    pub(crate) fn add(&mut self, offset: u64) {
        self.pending.insert(offset);
    }

    /// The next pull starts at `next` (never moves back).
    pub(crate) fn advance(&mut self, next: u64) {
        self.frontier = self.frontier.max(next);
    }

    /// Restarts from `offset`, forgetting what was in flight (the queue was reset or truncated).
    pub(crate) fn reset(&mut self, offset: u64) {
        self.frontier = offset;
        self.pending.clear();
    }

    /// The message at `offset` is done.
    pub(crate) fn done(&mut self, offset: u64) {
        self.pending.remove(&offset);
    }

    /// How many messages are in flight.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The lowest offset not yet done.
    pub(crate) fn offset(&self) -> u64 {
        self.pending.first().copied().unwrap_or(self.frontier)
    }

    /// The offset to commit, if it changed since the last commit.
    pub(crate) fn to_commit(&self) -> Option<u64> {
        let offset = self.offset();
        (self.last_committed != Some(offset)).then_some(offset)
    }

    /// Records a successful commit of `offset`.
    pub(crate) fn committed(&mut self, offset: u64) {
        self.last_committed = Some(offset);
    }
}

/// Where the messages of a push consumer go.
pub(crate) enum Sink {
    /// A listener, called concurrently by up to `consume_workers` tasks.
    Listener(Listener),
    /// The consumer's stream; `None` once the consumer closed.
    Stream(Mutex<Option<mpsc::UnboundedSender<Delivery>>>),
}

/// What every queue of one push consumer shares.
pub(crate) struct ConsumerCore {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) group: String,
    pub(crate) topic: String,
    pub(crate) client_id: String,
    pub(crate) filter: FilterSpec,
    pub(crate) mode: ConsumeMode,
    pub(crate) orderly: bool,
    pub(crate) start: StartPosition,
    pub(crate) pull_batch: usize,
    pub(crate) max_buffered_per_queue: usize,
    pub(crate) pull_wait: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) timings: BrokerTimings,
    pub(crate) sink: Sink,
    /// Listener calls running at once, across all queues.
    pub(crate) workers: Arc<Semaphore>,
    /// Taken by the pulled batch that waits for workers (see [`ConsumerCore::take_workers`]).
    pub(crate) batch_turn: tokio::sync::Mutex<()>,
    /// The group's `max_reconsume_times`, learnt at start.
    pub(crate) max_reconsume_times: AtomicU32,
    /// Broadcasting: this member's offsets (in memory only; a restarted member begins at its
    /// start position again).
    pub(crate) local_offsets: Mutex<HashMap<QueueRef, u64>>,
}

impl ConsumerCore {
    /// Up to `n` workers for one call of a batch listener, at least one: waits for the first,
    /// then takes every other one free. One pulled batch at a time waits: the semaphore hands
    /// each freed worker to the next waiter, so with a backlog of batches all waiting each
    /// would get one worker, and each call one message.
    async fn take_workers(&self, n: usize) -> Result<tokio::sync::SemaphorePermit<'_>, tokio::sync::AcquireError> {
        let _turn = self.batch_turn.lock().await;
        let mut workers = self.workers.acquire().await?;
        while workers.num_permits() < n {
            match self.workers.try_acquire() {
                Ok(more) => workers.merge(more),
                Err(_) => break,
            }
        }
        Ok(workers)
    }

    fn max_reconsume_times(&self) -> u32 {
        self.max_reconsume_times.load(Ordering::Relaxed)
    }

    /// Whether the listener takes messages in batches (see [`Listener::batch`]).
    fn batched(&self) -> bool {
        matches!(&self.sink, Sink::Listener(listener) if listener.is_batch())
    }

    /// Hands one message to the listener or the stream and waits for the verdict.
    async fn deliver(&self, pq: &ProcessQueue, message: Message) -> Outcome {
        match &self.sink {
            Sink::Listener(listener) => match AssertUnwindSafe(listener.call(message)).catch_unwind().await {
                Ok(Ok(())) => Outcome::Ack,
                Ok(Err(e)) if e.is_not_started() => {
                    pq.stopped().await;
                    Outcome::Abandon
                }
                Ok(Err(e)) => {
                    tracing::debug!(group = %self.group, error = %e, "listener failed a message");
                    Outcome::Nack(e.retry_delay())
                }
                Err(_) => {
                    tracing::error!(group = %self.group, "listener panicked; the message counts as failed");
                    Outcome::Nack(None)
                }
            },
            Sink::Stream(sender) => {
                let Some(sender) = sender.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
                    return Outcome::Abandon;
                };
                let (reply, mut answer) = oneshot::channel();
                let state = Arc::new(AtomicU8::new(DELIVERY_QUEUED));
                if sender.send(Delivery { message, reply, state: state.clone() }).is_err() {
                    return Outcome::Abandon;
                }
                tokio::select! {
                    r = &mut answer => r.unwrap_or(if pq.is_stopped() { Outcome::Abandon } else { Outcome::Nack(None) }),
                    _ = pq.stopped() => {
                        let untaken = state
                            .compare_exchange(DELIVERY_QUEUED, DELIVERY_ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok();
                        if untaken {
                            return Outcome::Abandon;
                        }
                        // The application holds it: give it until the close timeout.
                        match tokio::time::timeout(self.close_timeout, answer).await {
                            Ok(Ok(outcome)) => outcome,
                            _ => Outcome::Abandon,
                        }
                    }
                }
            }
        }
    }

    /// Sends a failed message back through retry (or to the DLQ after the maximum).
    async fn send_back(&self, message: &Message, delay: Option<Duration>) -> bool {
        match self.transport.send_back(&self.group, message, delay).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(group = %self.group, msg_id = %message.msg_id, error = %e, "sending a failed message back failed; consuming it again here");
                false
            }
        }
    }
}

/// Counts a message task as finished when dropped (see `ProcessQueue::handlers`).
struct Finished<'a>(&'a AtomicUsize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A message pulled for an orderly queue, with its buffer slot.
type Pulled = (Message, u64, OwnedSemaphorePermit);

/// One assigned queue.
pub(crate) struct ProcessQueue {
    pub(crate) queue: QueueRef,
    is_retry: bool,
    stop: watch::Sender<bool>,
    tracker: Mutex<OffsetTracker>,
    /// Set once the start offset is known (commits before would store nonsense).
    started: AtomicBool,
    /// Becomes true once the start offset is fixed (under `StartPosition::Last`, committed for
    /// a clustering group), or once the queue gave up before that (stopped, or its orderly
    /// lease is held elsewhere): what [`ProcessQueue::settled`] waits for.
    settled: watch::Sender<bool>,
    /// Orderly clustering: the broker's lease is held.
    locked: AtomicBool,
    buffer: Arc<Semaphore>,
    /// Concurrent mode: message tasks not finished yet.
    handlers: AtomicUsize,
}

impl ProcessQueue {
    pub(crate) fn new(queue: QueueRef, is_retry: bool, buffer: usize) -> Arc<Self> {
        Arc::new(ProcessQueue {
            queue,
            is_retry,
            stop: watch::channel(false).0,
            tracker: Mutex::new(OffsetTracker::default()),
            started: AtomicBool::new(false),
            settled: watch::channel(false).0,
            locked: AtomicBool::new(false),
            buffer: Arc::new(Semaphore::new(buffer.max(1))),
            handlers: AtomicUsize::new(0),
        })
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, OffsetTracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the queue to stop: no new pulls, no new deliveries.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Whether this queue holds its orderly lease.
    pub(crate) fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Acquire)
    }

    /// Resolves once the queue's start offset is fixed, or once it will not be (see `settled`).
    pub(crate) async fn settled(&self) {
        let mut rx = self.settled.subscribe();
        let _ = rx.wait_for(|settled| *settled).await;
    }

    /// Resolves once the queue is asked to stop.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Sleeps `d`; false if the queue was stopped meanwhile.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.is_stopped(),
            _ = self.stopped() => false,
        }
    }

    fn done(&self, offset: u64) {
        self.tracker().done(offset);
    }

    /// The queue's life: lease, start offset, pulling, and the final commit. Returns once the
    /// queue is stopped and its offset committed.
    pub(crate) async fn run(self: Arc<Self>, core: Arc<ConsumerCore>) {
        let lease = core.orderly && core.mode == ConsumeMode::Clustering;
        if lease && !self.acquire_lease(&core).await {
            self.settled.send_replace(true);
            return;
        }
        let Some((offset, skip_before)) = self.start_offset(&core).await else {
            self.settled.send_replace(true);
            self.release_lease(&core, lease).await;
            return;
        };
        *self.tracker() = OffsetTracker::new(offset);
        self.started.store(true, Ordering::Release);
        if core.start == StartPosition::Last {
            self.commit(&core).await;
        }
        self.settled.send_replace(true);
        tracing::debug!(group = %core.group, queue = ?self.queue, offset, "queue assigned");

        let orderly = if core.orderly {
            let (tx, rx) = mpsc::unbounded_channel();
            Some((tx, tokio::spawn(self.clone().consume_orderly(core.clone(), rx))))
        } else {
            None
        };
        self.pull_loop(&core, orderly.as_ref().map(|(tx, _)| tx), skip_before).await;

        // Stopped: let what is running finish, bounded by the close timeout.
        let deadline = tokio::time::Instant::now() + core.close_timeout;
        match orderly {
            Some((tx, task)) => {
                drop(tx);
                if tokio::time::timeout_at(deadline, task).await.is_err() {
                    tracing::warn!(group = %core.group, queue = ?self.queue, "an orderly listener did not finish before the close timeout");
                }
            }
            None => {
                while self.handlers.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        self.commit(&core).await;
        self.release_lease(&core, lease).await;
        tracing::debug!(group = %core.group, queue = ?self.queue, offset = self.tracker().offset(), "queue released");
    }

    /// Takes the orderly lease, retrying while another member holds it; false if stopped first.
    async fn acquire_lease(&self, core: &ConsumerCore) -> bool {
        let retry = (core.timings.lease_ttl / 6).clamp(Duration::from_millis(20), LOCK_RETRY);
        loop {
            if self.is_stopped() {
                return false;
            }
            match core.transport.lock_queue(&core.group, &self.queue.topic, self.queue.queue_id, &core.client_id).await
            {
                Ok(true) => {
                    self.locked.store(true, Ordering::Release);
                    return true;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(group = %core.group, queue = ?self.queue, error = %e, "taking a queue lease failed")
                }
            }
            // Held elsewhere for now (a member that has not let go yet): whoever holds it
            // decides where the queue stands, and `start` does not wait for it.
            self.settled.send_replace(true);
            if !self.pause(retry).await {
                return false;
            }
        }
    }

    async fn release_lease(&self, core: &ConsumerCore, lease: bool) {
        if lease && self.locked.swap(false, Ordering::AcqRel) {
            if let Err(e) =
                core.transport.unlock_queue(&core.group, &self.queue.topic, self.queue.queue_id, &core.client_id).await
            {
                tracing::warn!(group = %core.group, queue = ?self.queue, error = %e, "releasing a queue lease failed");
            }
        }
    }

    /// Renews the orderly lease; false when another member took it.
    pub(crate) async fn renew_lease(&self, core: &ConsumerCore) -> bool {
        if !self.is_locked() || self.is_stopped() {
            return true;
        }
        match core.transport.lock_queue(&core.group, &self.queue.topic, self.queue.queue_id, &core.client_id).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(group = %core.group, queue = ?self.queue, error = %e, "renewing a queue lease failed");
                true
            }
        }
    }

    /// Where to start, and for a timestamp start the store time before which messages are
    /// skipped. `None` if stopped before it could be found.
    async fn start_offset(&self, core: &ConsumerCore) -> Option<(u64, Option<u64>)> {
        loop {
            if self.is_stopped() {
                return None;
            }
            let committed = match core.mode {
                ConsumeMode::Broadcasting => {
                    Ok(core.local_offsets.lock().unwrap_or_else(|e| e.into_inner()).get(&self.queue).copied())
                }
                ConsumeMode::Clustering => {
                    core.transport.committed_offset(&core.group, &self.queue.topic, self.queue.queue_id).await
                }
            };
            let found = match committed {
                Ok(Some(offset)) => Ok((offset, None)),
                Ok(None) if self.is_retry => Ok((0, None)),
                Ok(None) => match core.start {
                    StartPosition::First => Ok((0, None)),
                    StartPosition::Timestamp(ts) => Ok((0, Some(ts))),
                    StartPosition::Last => core.transport.topic(&self.queue.topic).await.map(|t| {
                        let max =
                            t.queue_offsets.iter().find(|q| q.queue_id == self.queue.queue_id).map_or(0, |q| q.max);
                        (max, None)
                    }),
                },
                Err(e) => Err(e),
            };
            match found {
                Ok(start) => return Some(start),
                Err(e) => {
                    tracing::warn!(group = %core.group, queue = ?self.queue, error = %e, "finding the start offset failed");
                    if !self.pause(ERROR_BACKOFF).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Stores the queue's consumed offset if it moved: on the broker (clustering) or locally
    /// (broadcasting).
    pub(crate) async fn commit(&self, core: &ConsumerCore) {
        if !self.started.load(Ordering::Acquire) {
            return;
        }
        let Some(offset) = self.tracker().to_commit() else { return };
        let result = match core.mode {
            ConsumeMode::Broadcasting => {
                core.local_offsets.lock().unwrap_or_else(|e| e.into_inner()).insert(self.queue.clone(), offset);
                Ok(())
            }
            ConsumeMode::Clustering => {
                core.transport.commit_offset(&core.group, &self.queue.topic, self.queue.queue_id, offset).await
            }
        };
        match result {
            Ok(()) => self.tracker().committed(offset),
            Err(e) => {
                tracing::warn!(group = %core.group, queue = ?self.queue, offset, error = %e, "committing an offset failed")
            }
        }
    }

    /// Pulls until stopped, handing each message to a task (concurrent) or the queue's
    /// consumer (orderly).
    async fn pull_loop(
        self: &Arc<Self>,
        core: &Arc<ConsumerCore>,
        orderly: Option<&mpsc::UnboundedSender<Pulled>>,
        skip_before: Option<u64>,
    ) {
        // A retry queue holds copies whose offsets in it are not in the messages: pulling one
        // at a time tells each one's place (`next_offset - 1`).
        let batch = if self.is_retry { 1 } else { core.pull_batch.clamp(1, 1000) };
        loop {
            let permits = tokio::select! {
                p = self.buffer.clone().acquire_many_owned(batch as u32) => p,
                _ = self.stopped() => return,
            };
            let Ok(mut permits) = permits else { return };
            let offset = self.tracker().frontier();
            let request = PullRequest {
                group: core.group.clone(),
                topic: self.queue.topic.clone(),
                queue_id: self.queue.queue_id,
                offset,
                max: batch,
                filter: core.filter.clone(),
                wait: core.pull_wait,
            };
            let pulled = tokio::select! {
                r = core.transport.pull(request) => r,
                _ = self.stopped() => return,
            };
            let result = match pulled {
                Ok(result) => result,
                Err(Error::OffsetOutOfRange { max, .. }) => {
                    tracing::warn!(group = %core.group, queue = ?self.queue, offset, max, "pull offset past the queue's end; restarting at its end");
                    self.tracker().reset(max);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(group = %core.group, queue = ?self.queue, error = %e, "pull failed");
                    if !self.pause(ERROR_BACKOFF).await {
                        return;
                    }
                    continue;
                }
            };
            let mut items = Vec::with_capacity(result.messages.len());
            {
                let mut tracker = self.tracker();
                for (i, message) in result.messages.into_iter().enumerate() {
                    let position = if self.is_retry {
                        result.next_offset.saturating_sub(1)
                    } else {
                        message.queue_offset.unwrap_or(offset + i as u64)
                    };
                    if skip_before.is_some_and(|ts| message.store_ts < ts) {
                        continue;
                    }
                    let Some(slot) = permits.split(1) else { break };
                    tracker.add(position);
                    items.push((message, position, slot));
                }
                tracker.advance(result.next_offset);
            }
            drop(permits);
            if orderly.is_none() && core.batched() {
                if !items.is_empty() {
                    self.handlers.fetch_add(1, Ordering::AcqRel);
                    tokio::spawn(self.clone().consume_batch(core.clone(), items));
                }
                continue;
            }
            for (message, position, slot) in items {
                match orderly {
                    Some(tx) => {
                        if tx.send((message, position, slot)).is_err() {
                            return;
                        }
                    }
                    None => {
                        self.handlers.fetch_add(1, Ordering::AcqRel);
                        tokio::spawn(self.clone().consume_one(core.clone(), message, position, slot, None));
                    }
                }
            }
        }
    }

    /// Concurrent mode: consumes one message, sending it back through retry on failure.
    /// `first` is the verdict of a delivery already made (by [`Self::consume_batch`]).
    async fn consume_one(
        self: Arc<Self>,
        core: Arc<ConsumerCore>,
        mut message: Message,
        position: u64,
        _slot: OwnedSemaphorePermit,
        mut first: Option<Outcome>,
    ) {
        let _finished = Finished(&self.handlers);
        loop {
            let outcome = match first.take() {
                Some(outcome) => outcome,
                None => {
                    let worker = tokio::select! {
                        w = core.workers.acquire() => w,
                        _ = self.stopped() => return, // not started: stays pending for the next owner
                    };
                    if worker.is_err() || self.is_stopped() {
                        return;
                    }
                    let outcome = core.deliver(&self, message.clone()).await;
                    drop(worker);
                    outcome
                }
            };
            match outcome {
                Outcome::Ack => return self.done(position),
                Outcome::Abandon => return,
                Outcome::Nack(delay) => {
                    // Broadcasting members, and members whose transport cannot send back,
                    // retry in place until the group's maximum.
                    let in_place = core.mode == ConsumeMode::Broadcasting || !core.transport.supports_send_back();
                    let redeliver_here = in_place && message.reconsume_times < core.max_reconsume_times();
                    if !redeliver_here && core.send_back(&message, delay).await {
                        return self.done(position);
                    }
                    // In place, or because the send-back failed: consume it again here.
                    if !self.pause(delay.unwrap_or(core.timings.orderly_suspend)).await {
                        return;
                    }
                    message.reconsume_times += 1;
                }
            }
        }
    }

    /// Concurrent mode with a batch listener: consumes one pulled batch in as few calls as
    /// free workers allow (each call takes every worker free at that moment, at least one,
    /// one per message). Each acked message is done at once; each failed one goes on alone
    /// through [`Self::consume_one`] (retry, or redelivery in place). Messages not yet handed
    /// out when the queue stops stay pending for the next owner, as in `consume_one`.
    async fn consume_batch(self: Arc<Self>, core: Arc<ConsumerCore>, items: Vec<(Message, u64, OwnedSemaphorePermit)>) {
        let _finished = Finished(&self.handlers);
        let Sink::Listener(listener) = &core.sink else { return };
        let mut messages = Vec::with_capacity(items.len());
        let mut rest = std::collections::VecDeque::with_capacity(items.len());
        for (message, position, slot) in items {
            messages.push(message);
            rest.push_back((position, slot));
        }
        let mut messages = messages.into_iter();
        while !rest.is_empty() {
            let workers = tokio::select! {
                w = core.take_workers(rest.len()) => w,
                _ = self.stopped() => return,
            };
            let Ok(workers) = workers else { return };
            if self.is_stopped() {
                return;
            }
            let chunk: Vec<Message> = messages.by_ref().take(workers.num_permits()).collect();
            let verdicts = match AssertUnwindSafe(listener.call_batch(&chunk)).catch_unwind().await {
                Ok(verdicts) => verdicts,
                Err(_) => {
                    tracing::error!(group = %core.group, "listener panicked; its messages count as failed");
                    chunk.iter().map(|_| Err(ListenerError::new("the listener panicked"))).collect()
                }
            };
            drop(workers);
            for (message, verdict) in chunk.into_iter().zip(verdicts) {
                let Some((position, slot)) = rest.pop_front() else { return };
                match verdict {
                    Ok(()) => self.done(position),
                    Err(e) if e.is_not_started() => {
                        // Left pending below the commit for the next owner; only once the
                        // queue stops, so that this queue cannot run past it.
                        self.stopped().await;
                        drop(slot);
                    }
                    Err(e) => {
                        tracing::debug!(group = %core.group, error = %e, "listener failed a message");
                        let failed = Outcome::Nack(e.retry_delay());
                        self.handlers.fetch_add(1, Ordering::AcqRel);
                        tokio::spawn(self.clone().consume_one(core.clone(), message, position, slot, Some(failed)));
                    }
                }
            }
        }
    }

    /// Orderly mode: consumes the queue's messages one at a time, in queue order. A failure
    /// suspends the queue and retries the same message; after the group's maximum it goes to
    /// the dead-letter queue and the queue moves on.
    async fn consume_orderly(self: Arc<Self>, core: Arc<ConsumerCore>, mut rx: mpsc::UnboundedReceiver<Pulled>) {
        loop {
            let next = tokio::select! {
                n = rx.recv() => n,
                _ = self.stopped() => None,
            };
            let Some((mut message, position, slot)) = next else { return };
            loop {
                if self.is_stopped() {
                    return;
                }
                let Ok(worker) = core.workers.acquire().await else { return };
                let outcome = core.deliver(&self, message.clone()).await;
                drop(worker);
                match outcome {
                    Outcome::Ack => {
                        self.done(position);
                        break;
                    }
                    Outcome::Abandon => return,
                    Outcome::Nack(delay) => {
                        if message.reconsume_times >= core.max_reconsume_times() && core.send_back(&message, None).await
                        {
                            self.done(position);
                            break;
                        }
                        if !self.pause(delay.unwrap_or(core.timings.orderly_suspend)).await {
                            return;
                        }
                        message.reconsume_times += 1;
                    }
                }
            }
            drop(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_commits_the_lowest_offset_not_done() {
        let mut t = OffsetTracker::new(10);
        assert_eq!(t.offset(), 10);
        for o in 10..15 {
            t.add(o);
        }
        t.advance(15);
        assert_eq!(t.offset(), 10);
        t.done(11);
        t.done(12);
        assert_eq!(t.offset(), 10, "10 is still in flight");
        t.done(10);
        assert_eq!(t.offset(), 13);
        t.done(14);
        t.done(13);
        assert_eq!(t.offset(), 15, "nothing pending: the frontier");
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn tracker_reports_only_changes_and_never_moves_back() {
        let mut t = OffsetTracker::new(3);
        assert_eq!(t.to_commit(), Some(3));
        t.committed(3);
        assert_eq!(t.to_commit(), None);
        t.advance(2);
        assert_eq!(t.frontier(), 3);
        t.advance(7);
        assert_eq!(t.to_commit(), Some(7));
        t.add(7);
        t.reset(4);
        assert_eq!((t.offset(), t.in_flight()), (4, 0));
    }
}
