//! Flushing the commit log: group commit for `FlushMode::Sync`, the same path for the periodic
//! flush of `FlushMode::Async`, flush timings, and the poison flag.
//!
//! Group commit: an appender that needs its bytes durable waits for `flushed >= its end`. If
//! nobody is flushing, it becomes the flusher: it msyncs everything written so far (not just
//! its own record), publishes the new `flushed` and wakes all waiters. Appenders that arrive
//! during an msync wait for it and the next one covers all of them, so concurrent appends
//! share one msync. With several concurrent appenders the flusher first waits briefly
//! (bounded by a fraction of the last msync's duration) for appenders that are still copying
//! their records, which keeps batches from alternating between "those who were waiting" and
//! "those who just woke up".
//!
//! A failed msync poisons the store: nobody knows what reached the disk, so every later write
//! fails with [`Error::Poisoned`] instead of retrying and pretending.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::commit_log::CommitLog;
use super::stats::FLUSH_BUCKETS;
use crate::{Error, Result};

#[derive(Debug, Default)]
struct FlushState {
    flushed: u64,
    flushing: bool,
    /// Appenders waiting in `wait_durable`.
    waiters: usize,
    /// Nanoseconds the last msync took.
    last_nanos: u64,
    /// Recent peak of concurrent appenders (waiting or appending), times 256, decaying.
    peak_x256: u64,
}

/// Flush timings for metrics.
#[derive(Clone, Debug, Default)]
pub(crate) struct FlushTimings {
    pub(crate) count: u64,
    pub(crate) seconds_sum: f64,
    pub(crate) buckets: [u64; FLUSH_BUCKETS.len()],
}

/// Group commit and poison state of the log.
#[derive(Debug)]
pub(crate) struct Flusher {
    state: Mutex<FlushState>,
    done: Condvar,
    /// Wakes a flusher that is gathering appenders.
    gather: Condvar,
    poisoned: AtomicBool,
    /// Appenders between the start of `append` and their durability wait.
    in_flight: AtomicUsize,
    timings: Mutex<FlushTimings>,
}

impl Flusher {
    /// A flusher whose log is durable below `flushed`.
    pub(crate) fn new(flushed: u64) -> Flusher {
        Flusher {
            state: Mutex::new(FlushState { flushed, ..FlushState::default() }),
            done: Condvar::new(),
            gather: Condvar::new(),
            poisoned: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            timings: Mutex::new(FlushTimings::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FlushState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a flush has failed.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Marks the store poisoned (a flush of the log, queues or index failed).
    pub(crate) fn poison(&self, what: &str, err: &std::io::Error) {
        if !self.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %err, what, "flush failed; the store is poisoned and refuses writes");
        }
        let _g = self.lock();
        self.done.notify_all();
        self.gather.notify_all();
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

    /// Counts an appender in (call before taking the append lock, with a matching
    /// [`Flusher::leave`] or [`Flusher::wait_durable`]).
    pub(crate) fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts an appender out without waiting (async mode or a failed append).
    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Blocks until the log is durable below `target` (group commit). Counts the appender out.
    pub(crate) fn wait_durable(&self, log: &CommitLog, target: u64) -> Result<()> {
        let mut st = self.lock();
        st.waiters += 1;
        let appending = self.in_flight.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        let concurrent = (st.waiters + appending) as u64;
        st.peak_x256 = st.peak_x256.max(concurrent * 256);
        if st.flushing && st.waiters as u64 * 256 >= st.peak_x256 {
            self.gather.notify_one();
        }
        let result = self.flush_until(st, log, target, true);
        result.1
    }

    /// Flushes everything written so far (periodic flush, `Store::flush`, shutdown) and returns
    /// the durable end.
    pub(crate) fn flush_all(&self, log: &CommitLog) -> Result<u64> {
        let target = log.write_pos();
        let st = self.lock();
        let (st, r) = self.flush_until(st, log, target, false);
        r.map(|()| st.flushed)
    }

    fn flush_until<'a>(
        &'a self,
        mut st: MutexGuard<'a, FlushState>,
        log: &CommitLog,
        target: u64,
        waiter: bool,
    ) -> (MutexGuard<'a, FlushState>, Result<()>) {
        let result = loop {
            if self.is_poisoned() {
                break Err(Error::Poisoned);
            }
            if st.flushed >= target {
                break Ok(());
            }
            if st.flushing {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.flushing = true;
            if waiter {
                st = self.gather_appenders(st);
            }
            let from = st.flushed;
            drop(st);
            let to = log.write_pos();
            let started = Instant::now();
            let r = log.flush(from, to);
            let took = started.elapsed();
            self.record(took);
            st = self.lock();
            st.flushing = false;
            st.last_nanos = took.as_nanos().min(u128::from(u64::MAX)) as u64;
            st.peak_x256 -= st.peak_x256 / 16;
            match r {
                Ok(()) => st.flushed = st.flushed.max(to),
                Err(e) => {
                    drop(st);
                    self.poison("commit log", &e);
                    st = self.lock();
                }
            }
            self.done.notify_all();
        };
        if waiter {
            st.waiters -= 1;
        }
        (st, result)
    }

    /// Before an msync that other appenders could join, waits until as many appenders are
    /// waiting as recently ran concurrently (a decaying peak), or a quarter of the last msync's
    /// duration (at most 2 ms) has passed. A lone appender never waits.
    fn gather_appenders<'a>(&'a self, mut st: MutexGuard<'a, FlushState>) -> MutexGuard<'a, FlushState> {
        let budget = Duration::from_nanos((st.last_nanos / 4).min(2_000_000));
        let deadline = Instant::now() + budget;
        while (st.waiters as u64) * 256 < st.peak_x256 && !self.is_poisoned() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = self.gather.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
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
