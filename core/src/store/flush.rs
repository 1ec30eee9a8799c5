//! Flushing the commit log: group commit for `FlushMode::Sync`, the same path for the periodic
//! flush of `FlushMode::Async`, flush timings, and the poison flag.
//!
//! Group commit: an appender that needs its bytes durable waits until `flushed` covers its
//! end. If nobody is flushing it becomes the leader: it msyncs everything written so far (not
//! just its own record), publishes the new `flushed`, wakes exactly the waiters that flush
//! covered, and hands the leader role to one waiter it did not cover (one that appended while
//! the msync ran), which flushes next for all of those. Concurrent appends thus share one msync,
//! and nobody is woken just to go back to sleep.
//!
//! Before its msync a leader waits briefly for more appenders when recent concurrency says
//! they are coming (at most a quarter of the last msync's duration, never for a lone
//! appender), so batches do not shrink to "whoever happened to be waiting".
//!
//! Appends that do not wait on a thread ([`super::Store::append_batch_queued`]) ask for a
//! flush instead: the sync thread ([`Flusher::run_syncer`]) joins the same group commit for the
//! highest end asked for, and every flush, whoever leads it, wakes the futures it covered.
//! While it flushes, further appends gather for the next one. (Waiting before its msync for as
//! many requests as recent flushes had bought nothing in two A/Bs, 2026-12-07: peer-bench
//! produce and e2e, and 64 async producers in `store_rounds`; it is gone.)
//!
//! A failed msync poisons the store: nobody knows what reached the disk, so every later write
//! fails with [`Error::Poisoned`] instead of retrying and pretending.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::commit_log::CommitLog;
use super::stats::FLUSH_BUCKETS;
use super::wakers::Wakers;
use crate::{Error, Result};

const WAITING: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;
const LEAD: u8 = 3;

/// One parked waiter.
#[derive(Debug)]
struct Waiter {
    target: u64,
    thread: Thread,
    state: AtomicU8,
}

#[derive(Debug, Default)]
struct FlushState {
    flushed: u64,
    /// A leader is flushing (or gathering).
    flushing: bool,
    waiters: VecDeque<Arc<Waiter>>,
    /// The gathering leader, woken when enough waiters have arrived.
    gathering: Option<Thread>,
    /// Nanoseconds the last msync took.
    last_nanos: u64,
    /// Recent peak of concurrent appenders (waiting or appending), times 256, decaying.
    peak_x256: u64,
    /// The highest end a future waits to see durable; the sync thread flushes up to it.
    requested: u64,
    /// The sync thread stops.
    syncer_stopped: bool,
}

/// Flush timings for metrics.
#[derive(Clone, Debug, Default)]
pub(crate) struct FlushTimings {
    pub(crate) count: u64,
    pub(crate) seconds_sum: f64,
    pub(crate) buckets: [u64; FLUSH_BUCKETS.len()],
}

/// Group commit and poison state of the log.
pub(crate) struct Flusher {
    state: Mutex<FlushState>,
    poisoned: AtomicBool,
    /// Appenders between the start of `append` and their durability wait.
    in_flight: AtomicUsize,
    timings: Mutex<FlushTimings>,
    /// Futures waiting for a durable end.
    durable: Wakers,
    /// Wakes the sync thread when a future asks for a flush.
    sync_cv: Condvar,
    /// Runs once the store is poisoned (the store wakes what waits for dispatch there).
    on_poison: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher").field("poisoned", &self.is_poisoned()).finish_non_exhaustive()
    }
}

impl Flusher {
    /// A flusher whose log is durable below `flushed`.
    pub(crate) fn new(flushed: u64) -> Flusher {
        Flusher {
            state: Mutex::new(FlushState { flushed, ..FlushState::default() }),
            poisoned: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            timings: Mutex::new(FlushTimings::default()),
            durable: Wakers::default(),
            sync_cv: Condvar::new(),
            on_poison: std::sync::OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FlushState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a flush has failed.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Marks the store poisoned (a flush of the log, queues or index failed) and fails every
    /// waiter.
    pub(crate) fn poison(&self, what: &str, err: &std::io::Error) {
        if !self.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %err, what, "flush failed; the store is poisoned and refuses writes");
        }
        let waiters: Vec<_> = self.lock().waiters.drain(..).collect();
        for w in waiters {
            w.state.store(FAILED, Ordering::Release);
            w.thread.unpark();
        }
        self.durable.wake_all();
        self.poisoned_hook();
    }

    /// Sets what runs once the store is poisoned (once; later calls are ignored).
    pub(crate) fn set_on_poison(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_poison.set(f);
    }

    fn poisoned_hook(&self) {
        if let Some(f) = self.on_poison.get() {
            f();
        }
    }

    /// Ready once the log is durable below `target`; asks the sync thread for a flush
    /// meanwhile. `Err(Poisoned)` once a flush failed, `Err(Closed)` once the store closed
    /// without making `target` durable.
    pub(crate) fn poll_durable(&self, target: u64, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let st = self.lock();
        if st.flushed >= target {
            return Poll::Ready(Ok(()));
        }
        if self.is_poisoned() {
            return Poll::Ready(Err(Error::Poisoned));
        }
        if self.durable.is_closed() {
            return Poll::Ready(Err(Error::Closed));
        }
        // Registered under the state lock: a leader publishes `flushed` under it and wakes
        // after, so this waker is either covered by that wake or saw the new `flushed`.
        self.durable.register(target, cx.waker());
        self.request_locked(st, target);
        Poll::Pending
    }

    /// Asks the sync thread to make the log durable below `target` (the writer thread does as
    /// soon as it has written a batch, so the flush does not wait for the appender's task to
    /// be polled).
    pub(crate) fn request(&self, target: u64) {
        let st = self.lock();
        if st.flushed < target {
            self.request_locked(st, target);
        }
    }

    fn request_locked(&self, mut st: MutexGuard<'_, FlushState>, target: u64) {
        if st.requested < target {
            st.requested = target;
            drop(st);
            self.sync_cv.notify_one();
        }
    }

    /// The sync thread: flushes whenever a future waits for more than is durable, as one more
    /// participant of the group commit, until [`Flusher::stop_syncer`].
    pub(crate) fn run_syncer(&self, log: &CommitLog, after_flush: &dyn Fn()) {
        let mut st = self.lock();
        loop {
            while !st.syncer_stopped && (st.requested <= st.flushed || self.is_poisoned()) {
                st = self.sync_cv.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.syncer_stopped {
                return;
            }
            let target = st.requested;
            // A failure poisons the store and wakes every future; nothing more to do here.
            let _ = self.wait_locked(st, log, target, false, after_flush);
            st = self.lock();
        }
    }

    /// Stops the sync thread.
    pub(crate) fn stop_syncer(&self) {
        self.lock().syncer_stopped = true;
        self.sync_cv.notify_all();
    }

    /// The store is closed: futures still waiting fail with `Closed` (after the final flush,
    /// only those the log could not make durable).
    pub(crate) fn close(&self) {
        self.durable.close();
    }

    /// Fails with [`Error::Poisoned`] once poisoned.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_poisoned() {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    /// The log is durable below this offset.
    pub(crate) fn flushed(&self) -> u64 {
        self.lock().flushed
    }

    /// Flush timings so far.
    pub(crate) fn timings(&self) -> FlushTimings {
        self.timings.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Counts an appender in (before it takes the append lock); pair with [`Flusher::leave`]
    /// or [`Flusher::wait_durable`].
    pub(crate) fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts an appender out without waiting (a failed append).
    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Blocks until the log is durable below `target` (group commit) and counts the appender
    /// out. `after_flush` runs after each successful msync this thread leads, once the new
    /// durable end is published (the store wakes the dispatcher there: in sync mode nothing is
    /// dispatched before it is durable; once per msync rather than once per append).
    pub(crate) fn wait_durable(&self, log: &CommitLog, target: u64, after_flush: &dyn Fn()) -> Result<()> {
        let mut st = self.lock();
        let appending = self.in_flight.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        let concurrent = (st.waiters.len() + 1 + appending) as u64;
        st.peak_x256 = st.peak_x256.max(concurrent * 256);
        self.wait_locked(st, log, target, true, after_flush)
    }

    /// Flushes everything written so far (periodic flush, `Store::flush`, shutdown) and returns
    /// the durable end.
    pub(crate) fn flush_all(&self, log: &CommitLog) -> Result<u64> {
        let target = log.write_pos();
        let st = self.lock();
        self.wait_locked(st, log, target, false, &|| {})?;
        Ok(self.lock().flushed)
    }

    fn wait_locked<'a>(
        &'a self,
        mut st: MutexGuard<'a, FlushState>,
        log: &CommitLog,
        target: u64,
        gather: bool,
        after_flush: &dyn Fn(),
    ) -> Result<()> {
        self.check()?;
        if st.flushed >= target {
            return Ok(());
        }
        if !st.flushing {
            st.flushing = true;
            return self.lead(st, log, gather, after_flush);
        }
        let w = Arc::new(Waiter { target, thread: std::thread::current(), state: AtomicU8::new(WAITING) });
        st.waiters.push_back(w.clone());
        if (st.waiters.len() as u64 + 1) * 256 >= st.peak_x256 {
            if let Some(leader) = &st.gathering {
                leader.unpark();
            }
        }
        drop(st);
        loop {
            match w.state.load(Ordering::Acquire) {
                DONE => return Ok(()),
                FAILED => return Err(Error::Poisoned),
                LEAD => return self.lead(self.lock(), log, gather, after_flush),
                _ => std::thread::park(),
            }
        }
    }

    /// Runs one flush as the leader (the caller set `flushing`), then wakes the covered
    /// waiters and hands the role to an uncovered one. The leader's own bytes were published
    /// before it got here, so the flush always covers them.
    fn lead<'a>(
        &'a self,
        mut st: MutexGuard<'a, FlushState>,
        log: &CommitLog,
        gather: bool,
        after_flush: &dyn Fn(),
    ) -> Result<()> {
        if gather {
            st = self.gather(st);
        }
        let from = st.flushed;
        drop(st);
        let to = log.write_pos();
        let started = Instant::now();
        let r = log.flush(from, to);
        let took = started.elapsed();
        self.record(took);
        if let Err(e) = &r {
            self.poisoned.store(true, Ordering::Release);
            tracing::error!(error = %e, "msync of the commit log failed; the store is poisoned and refuses writes");
        }
        let mut st = self.lock();
        st.last_nanos = took.as_nanos().min(u128::from(u64::MAX)) as u64;
        st.peak_x256 -= st.peak_x256 / 16;
        let poisoned = self.is_poisoned();
        if !poisoned {
            st.flushed = st.flushed.max(to);
        }
        let flushed = st.flushed;
        let mut wake = Vec::new();
        let mut i = 0;
        while i < st.waiters.len() {
            if poisoned || st.waiters[i].target <= flushed {
                if let Some(w) = st.waiters.remove(i) {
                    w.state.store(if poisoned { FAILED } else { DONE }, Ordering::Release);
                    wake.push(w);
                }
            } else {
                i += 1;
            }
        }
        let next = st.waiters.pop_front();
        st.flushing = next.is_some();
        drop(st);
        if poisoned {
            self.durable.wake_all();
            self.poisoned_hook();
        } else {
            self.durable.wake_reached(flushed);
        }
        if !poisoned {
            after_flush();
        }
        if let Some(n) = next {
            n.state.store(LEAD, Ordering::Release);
            n.thread.unpark();
        }
        for w in wake {
            w.thread.unpark();
        }
        if poisoned {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Waits (parked, bounded by a quarter of the last msync, at most 2 ms) until as many
    /// appenders are waiting as recently ran concurrently. A lone appender never waits.
    fn gather<'a>(&'a self, mut st: MutexGuard<'a, FlushState>) -> MutexGuard<'a, FlushState> {
        let budget = Duration::from_nanos((st.last_nanos / 4).min(2_000_000));
        let deadline = Instant::now() + budget;
        while (st.waiters.len() as u64 + 1) * 256 < st.peak_x256 && !self.is_poisoned() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st.gathering = Some(std::thread::current());
            drop(st);
            std::thread::park_timeout(deadline - now);
            st = self.lock();
            st.gathering = None;
        }
        st
    }

    fn record(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let mut t = self.timings.lock().unwrap_or_else(|p| p.into_inner());
        t.count += 1;
        t.seconds_sum += secs;
        for (i, bound) in FLUSH_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                t.buckets[i] += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let f = Flusher::new(0);
        f.record(Duration::from_micros(300));
        f.record(Duration::from_millis(30));
        let t = f.timings();
        assert_eq!(t.count, 2);
        assert_eq!(t.buckets[0], 1);
        assert_eq!(t.buckets[FLUSH_BUCKETS.len() - 1], 2);
        assert!((t.seconds_sum - 0.0303).abs() < 1e-9);
    }

    #[test]
    fn poison_fails_checks() {
        let f = Flusher::new(0);
        f.check().unwrap();
        f.poison("test", &std::io::Error::other("boom"));
        assert!(matches!(f.check(), Err(Error::Poisoned)));
        assert!(f.is_poisoned());
    }
}
