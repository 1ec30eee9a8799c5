//! The dispatcher: follows the commit log and builds consume queue units and index entries
//! for every record, on its own thread (and synchronously during recovery).
//!
//! Progress (`dispatched`) only moves to batch boundaries, so a reader never sees part of an
//! atomic batch in the queues, and the checkpoint never points into the middle of one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::commit_log::CommitLog;
use super::consume_queue::{ConsumeQueue, ConsumeQueues};
use super::hash::tag_hash;
use super::index::{key_hash, msg_id_hash, Index, IndexMark};
use super::record::{self, MAGIC_BLANK, MAGIC_HOLE, MAGIC_MESSAGE};
use super::wakers::Wakers;
use super::DispatchListener;
use crate::{Error, Result};

/// Records dispatched before progress is published (at the next batch boundary).
const CHUNK_RECORDS: usize = 512;

/// Indexes one record (already validated) into its consume queue and the index.
pub(crate) fn dispatch_record(
    view: &record::RecordView<'_>,
    commit_offset: u64,
    queues: &ConsumeQueues,
    index: &Index,
    cache: &mut Option<Arc<ConsumeQueue>>,
) -> Result<Arc<ConsumeQueue>> {
    let cq = match cache {
        Some(q) if q.queue_id() == view.queue_id && q.topic() == view.topic => q.clone(),
        _ => {
            let q = queues.get_or_create(view.topic, view.queue_id);
            *cache = Some(q.clone());
            q
        }
    };
    let th = view.tag.map_or(0, tag_hash);
    if !cq.put(view.queue_offset, commit_offset, view.size, th)? {
        tracing::debug!(
            topic = view.topic,
            queue_id = view.queue_id,
            queue_offset = view.queue_offset,
            "queue offset already dispatched; skipping"
        );
    }
    let msg_id = (!view.msg_id.is_empty()).then(|| msg_id_hash(view.msg_id));
    let keys = view.keys().map(|key| key_hash(view.topic, key));
    index.put_record(commit_offset, view.store_ts, msg_id.into_iter().chain(keys))?;
    Ok(cq)
}

/// Dispatches records of `[from, to)` (both record boundaries), stopping early at a batch
/// boundary after `max_records`. Returns the position reached and the queues that grew.
pub(crate) fn dispatch_range(
    log: &CommitLog,
    queues: &ConsumeQueues,
    index: &Index,
    from: u64,
    to: u64,
    max_records: usize,
) -> Result<(u64, Vec<Arc<ConsumeQueue>>)> {
    let mut pos = from;
    let mut boundary = from;
    let mut grown: Vec<Arc<ConsumeQueue>> = Vec::new();
    let mut cache = None;
    let mut n = 0;
    while pos < to {
        let seg = log.segment_for(pos).ok_or_else(|| Error::Corrupt {
            path: log.dir().to_path_buf(),
            offset: pos,
            reason: "no segment holds this dispatch position".into(),
        })?;
        while pos < to && pos < seg.end() {
            let local = pos - seg.base();
            let corrupt = |reason: &str| Error::Corrupt {
                path: seg.path().to_path_buf(),
                offset: local,
                reason: reason.to_string(),
            };
            let head = seg.read(local, 8).ok_or_else(|| corrupt("record header not readable"))?;
            let (len, magic) = record::peek(head);
            if magic == MAGIC_BLANK {
                pos = seg.end();
                boundary = pos;
                break;
            }
            if magic == MAGIC_HOLE {
                // Quarantined bytes (see recovery): nothing to index.
                let hole = seg.read(local, len as usize).and_then(|b| record::read_hole(b, pos));
                if hole.is_none() {
                    return Err(corrupt("damaged hole while dispatching"));
                }
                pos += u64::from(len);
                boundary = pos;
                continue;
            }
            if magic != MAGIC_MESSAGE {
                return Err(corrupt("bad magic while dispatching"));
            }
            let bytes = seg.read(local, len as usize).ok_or_else(|| corrupt("record not readable"))?;
            let view = record::parse(bytes, false).map_err(corrupt)?;
            let cq = dispatch_record(&view, pos, queues, index, &mut cache)?;
            if !grown.iter().any(|g| Arc::ptr_eq(g, &cq)) {
                grown.push(cq);
            }
            pos += u64::from(len);
            n += 1;
            if !view.batch_continues() {
                boundary = pos;
                if n >= max_records {
                    return Ok((boundary, grown));
                }
            }
        }
    }
    Ok((boundary, grown))
}

/// How the dispatcher frees and takes back the store's space reserve (see reserve.rs).
pub(crate) struct SpaceHooks<'a> {
    /// Frees the reserve; whether there was one.
    pub(crate) release: &'a dyn Fn() -> bool,
    /// Allocates the reserve if missing; whether it is there.
    pub(crate) refill: &'a dyn Fn() -> bool,
}

/// Dispatch progress, its waiters and the dispatcher thread's wake-up.
pub(crate) struct Dispatcher {
    dispatched: AtomicU64,
    /// `(dispatched, index mark)` published together for the checkpoint.
    mark: Mutex<(u64, IndexMark)>,
    progress: Mutex<()>,
    progress_cv: Condvar,
    waiting: AtomicUsize,
    sleeping: AtomicBool,
    wake_lock: Mutex<()>,
    wake_cv: Condvar,
    stop: AtomicBool,
    /// Held while dispatching a chunk; `delete_topic` takes it to not race file creation.
    work: Mutex<()>,
    listener: RwLock<Option<DispatchListener>>,
    /// Futures waiting for a dispatched end.
    wakers: Wakers,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("dispatched", &self.dispatched()).finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher that has dispatched everything below `dispatched`.
    pub(crate) fn new(dispatched: u64, mark: IndexMark) -> Dispatcher {
        Dispatcher {
            dispatched: AtomicU64::new(dispatched),
            mark: Mutex::new((dispatched, mark)),
            progress: Mutex::new(()),
            progress_cv: Condvar::new(),
            waiting: AtomicUsize::new(0),
            sleeping: AtomicBool::new(false),
            wake_lock: Mutex::new(()),
            wake_cv: Condvar::new(),
            stop: AtomicBool::new(false),
            work: Mutex::new(()),
            listener: RwLock::new(None),
            wakers: Wakers::default(),
        }
    }

    /// Every record below this offset is in the queues and the index.
    pub(crate) fn dispatched(&self) -> u64 {
        self.dispatched.load(Ordering::SeqCst)
    }

    /// `(dispatched, index mark)` consistent with each other.
    pub(crate) fn mark(&self) -> (u64, IndexMark) {
        *self.mark.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the listener.
    pub(crate) fn set_listener(&self, f: DispatchListener) {
        *self.listener.write().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// Takes the work lock (no dispatch runs while it is held).
    pub(crate) fn pause(&self) -> MutexGuard<'_, ()> {
        self.work.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the dispatcher thread if it sleeps (cheap when it does not).
    pub(crate) fn notify(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            let _g = self.wake_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.wake_cv.notify_one();
        }
    }

    /// Asks the thread to finish what is written and exit.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wakers.close();
        let _g = self.wake_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.wake_cv.notify_one();
    }

    fn publish(&self, pos: u64, index: IndexMark) {
        {
            let mut m = self.mark.lock().unwrap_or_else(|p| p.into_inner());
            *m = (pos, index);
            self.dispatched.store(pos, Ordering::SeqCst);
        }
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _g = self.progress.lock().unwrap_or_else(|p| p.into_inner());
            self.progress_cv.notify_all();
        }
        self.wakers.wake_reached(pos);
    }

    /// `Ready(true)` once every record below `end` is dispatched; `Ready(false)` once the
    /// dispatcher stopped short of it.
    pub(crate) fn poll_dispatched(&self, end: u64, cx: &mut Context<'_>) -> Poll<bool> {
        if self.dispatched() >= end {
            return Poll::Ready(true);
        }
        self.wakers.register(end, cx.waker());
        // Checked again: a publish between the first check and the registration woke nobody.
        if self.dispatched() >= end {
            return Poll::Ready(true);
        }
        if self.wakers.is_closed() {
            return Poll::Ready(false);
        }
        Poll::Pending
    }

    /// Blocks until `dispatched >= end` or the timeout passes (Condvar, no polling).
    pub(crate) fn wait(&self, end: u64, timeout: Duration) -> bool {
        if self.dispatched() >= end {
            return true;
        }
        let deadline = Instant::now() + timeout;
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut g = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        let ok = loop {
            if self.dispatched() >= end {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            g = self.progress_cv.wait_timeout(g, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        };
        drop(g);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        ok
    }

    /// The dispatcher thread: follows the log up to `limit()` (the write position; in sync
    /// mode the durable position, so no reader sees a record that a power loss could still
    /// take back) until stopped.
    ///
    /// A full disk (creating a consume queue or index file failed with ENOSPC) makes the log
    /// refuse appends and new segments ([`CommitLog::refuse_growth`]) and calls
    /// `space.release` (the store frees its space reserve, which no segment can take now): if
    /// that freed something it retries at once, else every 100 ms until space is freed.
    /// Appends are taken again once `space.refill` could allocate the reserve again. Any other error, or no progress below the end, is fatal: it calls
    /// `fatal` (the store poisons itself, so nothing more is acknowledged that consumers would
    /// never see) and stops dispatching instead of spinning.
    pub(crate) fn run(
        &self,
        log: &CommitLog,
        queues: &ConsumeQueues,
        index: &Index,
        limit: &dyn Fn() -> u64,
        space: &SpaceHooks<'_>,
        fatal: &dyn Fn(&Error),
    ) {
        loop {
            let end = limit().min(log.write_pos());
            let pos = self.dispatched();
            // Caught up after a full disk: take the reserve back before accepting appends.
            if pos >= end && log.growth_refused() && log.allow_growth_if(space.refill) {
                tracing::info!("space reserve allocated again; accepting appends");
            }
            if pos < end {
                let result = {
                    let _g = self.pause();
                    // The sync thread may have dispatched meanwhile (see `dispatch_inline`).
                    let pos = self.dispatched();
                    if pos >= end {
                        continue;
                    }
                    dispatch_range(log, queues, index, pos, end, CHUNK_RECORDS).map(|(reached, grown)| {
                        if reached > pos {
                            self.publish(reached, index.mark());
                        }
                        (reached, grown)
                    })
                };
                match result {
                    Ok((reached, grown)) if reached > pos => {
                        self.tell_listener(grown);
                        continue;
                    }
                    Err(e) if super::is_no_space(&e) => {
                        let first = !log.growth_refused();
                        if log.refuse_growth(space.release) {
                            tracing::warn!(error = %e, pos, "the disk is full: freed the space reserve to dispatch; refusing appends");
                            continue;
                        }
                        if first {
                            tracing::warn!(error = %e, pos, "dispatch stalled: the disk is full; retrying");
                        }
                        if self.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        self.sleep(Duration::from_millis(100), || false);
                        continue;
                    }
                    Ok(_) => {
                        // Only an unterminated batch below the published end could cause this;
                        // the appender never publishes one.
                        let e = Error::Corrupt {
                            path: log.dir().to_path_buf(),
                            offset: pos,
                            reason: format!("dispatch made no progress below the end {end}"),
                        };
                        tracing::error!(error = %e, "dispatch failed; the store stops accepting writes");
                        fatal(&e);
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, pos, "dispatch failed; the store stops accepting writes");
                        fatal(&e);
                        break;
                    }
                }
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            // While out of space, come back soon to try taking the reserve back.
            let nap = if log.growth_refused() { 50 } else { 200 };
            self.sleep(Duration::from_millis(nap), || limit() > pos || self.stop.load(Ordering::SeqCst));
        }
        // Failed: wait for the stop without touching anything.
        while !self.stop.load(Ordering::SeqCst) {
            self.sleep(Duration::from_millis(500), || self.stop.load(Ordering::SeqCst));
        }
    }

    /// Dispatches what lies below `end` on the calling thread when that is at most
    /// `max_bytes` and no dispatch is running; anything else (more, busy, an error, a full
    /// disk) is left to the dispatcher thread, which is notified. The sync thread calls this
    /// right after its msync: at a modest rate a flush covers a few records, and dispatching
    /// them at once spares a thread wake-up on the way from durable to deliverable.
    pub(crate) fn dispatch_inline(
        &self,
        log: &CommitLog,
        queues: &ConsumeQueues,
        index: &Index,
        end: u64,
        max_bytes: u64,
    ) {
        let pos = self.dispatched();
        if pos >= end {
            return;
        }
        if end - pos > max_bytes || self.stop.load(Ordering::SeqCst) || log.growth_refused() {
            self.notify();
            return;
        }
        let grown = {
            let Ok(_g) = self.work.try_lock() else {
                self.notify();
                return;
            };
            let pos = self.dispatched();
            if pos >= end {
                return;
            }
            match dispatch_range(log, queues, index, pos, end, CHUNK_RECORDS) {
                Ok((reached, grown)) if reached > pos => {
                    self.publish(reached, index.mark());
                    if reached < end {
                        self.notify();
                    }
                    grown
                }
                // The dispatcher thread retries and handles it (dispatching is idempotent).
                _ => {
                    self.notify();
                    return;
                }
            }
        };
        self.tell_listener(grown);
    }

    /// Tells the dispatch listener which queues grew.
    fn tell_listener(&self, grown: Vec<Arc<ConsumeQueue>>) {
        let listener = self.listener.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(l) = listener {
            for q in grown {
                // A panicking listener must not take the dispatcher down.
                let call = std::panic::AssertUnwindSafe(|| l(q.topic(), q.queue_id(), q.max()));
                if std::panic::catch_unwind(call).is_err() {
                    tracing::error!(topic = q.topic(), "dispatch listener panicked");
                }
            }
        }
    }

    fn sleep(&self, timeout: Duration, ready: impl Fn() -> bool) {
        let g = self.wake_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.sleeping.store(true, Ordering::SeqCst);
        if !ready() {
            let _ = self.wake_cv.wait_timeout(g, timeout);
        }
        self.sleeping.store(false, Ordering::SeqCst);
    }
}
