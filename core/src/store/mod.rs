//! The storage engine: commit log, consume queues, index, checkpoint, recovery, retention.
//!
//! It owns bytes on disk and nothing else: it knows topics and queues only as names and
//! numbers, and knows nothing of groups, filters or delivery. Its blocking API does I/O on the
//! caller's thread (appends, reads) and on its own threads (dispatcher, flusher, retention);
//! async code calls it through `spawn_blocking`, or appends through the writer thread's queue
//! ([`Store::append_batch_queued`]) and awaits [`Store::durable`] and [`Store::dispatched`],
//! futures woken by the threads that move those positions (no thread waits per append).
//!
//! On disk, under the store directory:
//!
//! ```text
//! lock                      flock'ed while a Store has the directory open
//! abort                     exists while the store runs; left behind by a crash
//! checkpoint                durable positions (see checkpoint.rs)
//! queue_ends                every consume queue's end, from the last clean shutdown
//! reserve                   space held back for the dispatcher when the disk fills
//! commitlog/<offset>        segments, named by their 20-digit starting commit offset
//! consumequeue/<topic>/<queue_id>/<offset>   20-byte units, see consume_queue.rs
//! index/<offset>            hash index files, see index.rs
//! quarantine/<offset>       damaged log bytes moved aside by a repairing open (recovery.rs)
//! ```

mod checkpoint;
mod commit_log;
mod config;
mod consume_queue;
mod dispatcher;
#[cfg(feature = "failpoints")]
pub mod fault;
#[cfg(not(feature = "failpoints"))]
mod fault;
mod flush;
mod hash;
mod index;
mod message;
mod meta;
mod mmap;
mod record;
mod recovery;
mod reserve;
mod retention;
mod segment;
mod stats;
mod wakers;

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use config::{FlushMode, StoreConfig};
pub use hash::tag_hash;
pub use message::{AppendResult, CqUnit, NewMessage, StoredMessage, FLAG_BATCH_CONTINUES};
pub use meta::write_atomic;
pub use stats::{StoreStats, FLUSH_BUCKETS};

use checkpoint::Checkpoint;
use commit_log::CommitLog;
use consume_queue::ConsumeQueues;
use dispatcher::Dispatcher;
use flush::Flusher;
use index::{key_hash, msg_id_hash, Index, IndexMark};
use meta::sync_dir;
use record::EncodedTail;
use retention::Retention;

use crate::{Error, Result};

/// Callback run on the dispatcher thread with (topic, queue id, new max offset).
pub type DispatchListener = Arc<dyn Fn(&str, u32, u64) + Send + Sync>;

/// In async mode the prepare thread keeps the active segment faulted in ahead of the write
/// position by eight intervals' worth of recent appends, at most `PREPARE_AHEAD`,
/// in steps of at most `PREPARE_CHUNK`, checking every `PREPARE_INTERVAL` (see
/// `CommitLog::prepare_step`). An idle store prepares nothing.
const PREPARE_AHEAD: u64 = 64 << 20;
const PREPARE_CHUNK: u64 = 4 << 20;
const PREPARE_INTERVAL: Duration = Duration::from_millis(10);

/// In sync mode the zero thread keeps the active segment zero-written from `ZERO_GAP` past
/// the write position to eight intervals' worth of recent appends ahead of it, at least
/// `ZERO_AHEAD_MIN` and at most `PREPARE_AHEAD`, checking every `PREPARE_INTERVAL` (see
/// `CommitLog::zero_step`), while group commits are small. An idle store zeroes nothing.
const ZERO_GAP: u64 = 1 << 20;
const ZERO_AHEAD_MIN: u64 = 4 << 20;
/// The zero thread runs only while the log's group commits average at most this many bytes.
const ZERO_MAX_GROUP: u64 = 64 << 10;

/// How fast the log grows, for the threads that prepare ahead of the appender.
struct AppendRate {
    last: u64,
    /// Bytes appended per interval, a peak decaying by an eighth per interval.
    peak: u64,
}

impl AppendRate {
    fn new(pos: u64) -> AppendRate {
        AppendRate { last: pos, peak: 0 }
    }

    /// Bytes appended since the last step (the log is at `pos` now), and the decayed peak.
    fn step(&mut self, pos: u64) -> (u64, u64) {
        let appended = pos.saturating_sub(self.last);
        self.last = pos;
        self.peak = appended.max(self.peak - self.peak / 8);
        (appended, self.peak)
    }
}

/// Smallest accepted `segment_bytes`.
const MIN_SEGMENT_BYTES: u64 = 4096;

/// Wakes the background threads when the store stops (no sleep loops).
#[derive(Debug, Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl StopSignal {
    /// Waits up to `d`; true once stopped.
    fn wait(&self, d: Duration) -> bool {
        let g = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self.cv.wait_timeout_while(g, d, |s| !*s).unwrap_or_else(|p| p.into_inner());
        *g
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }
}

/// A flush of the consume queues and the index: every record below `dispatched` was in them,
/// with the index at `mark`.
#[derive(Clone, Copy, Debug)]
struct DispatchFlushed {
    dispatched: u64,
    mark: IndexMark,
    at: Instant,
}

/// How much a checkpoint flushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    /// Consume queues and index too, now.
    Full,
    /// Consume queues and index only once `dispatch_flush_interval` has passed since their last
    /// flush; the log (async mode) and the checkpoint always.
    Periodic,
}

/// State shared by the store handle and its threads.
struct Inner {
    config: StoreConfig,
    log: CommitLog,
    queues: ConsumeQueues,
    index: Index,
    dispatcher: Dispatcher,
    flusher: Flusher,
    retention: Retention,
    closed: AtomicBool,
    /// Last measured disk usage (f64 bits) and whether it is above the limit.
    disk_ratio: AtomicU64,
    disk_full: AtomicBool,
    stop: StopSignal,
    /// Serialises checkpoint writers; holds the last checkpoint written.
    last_checkpoint: Mutex<Option<Checkpoint>>,
    /// What the last flush of consume queues and index covered, and when it ran: a checkpoint
    /// claims no more dispatch than that.
    dispatch_flushed: Mutex<Option<DispatchFlushed>>,
    /// The flock'ed lock file; dropped (unlocked) by a clean shutdown so the directory can be
    /// reopened while this handle still serves reads.
    dir_lock: Mutex<Option<File>>,
    /// Space held back for the dispatcher when the disk fills (see reserve.rs).
    reserve: reserve::Reserve,
    /// The queue of the writer thread; `None` once the store stops.
    writer: Mutex<Option<std::sync::mpsc::Sender<WriteRequest>>>,
}

/// The storage engine of one directory. `Send + Sync`; share it as `Arc<Store>`.
pub struct Store {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shut_down: Mutex<bool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.config.dir)
            .field("max_offset", &self.inner.log.write_pos())
            .finish_non_exhaustive()
    }
}

/// A batch waiting for the writer thread.
struct WriteRequest {
    tails: Vec<EncodedTail>,
    done: futures::channel::oneshot::Sender<Result<(Vec<AppendResult>, u64)>>,
}

/// The future of [`Store::append_batch_queued`].
#[must_use = "a future does nothing unless awaited"]
pub struct Appending {
    rx: futures::channel::oneshot::Receiver<Result<(Vec<AppendResult>, u64)>>,
}

impl Future for Appending {
    type Output = Result<(Vec<AppendResult>, u64)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A request the writer dropped unanswered: the store stopped.
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

/// The future of [`Store::durable`].
#[must_use = "a future does nothing unless awaited"]
pub struct Durable {
    inner: Arc<Inner>,
    end: u64,
}

impl Future for Durable {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.inner.config.flush == FlushMode::Async {
            return Poll::Ready(self.inner.flusher.check());
        }
        self.inner.flusher.poll_durable(self.end, cx)
    }
}

/// The future of [`Store::dispatched`].
#[must_use = "a future does nothing unless awaited"]
pub struct Dispatched {
    inner: Arc<Inner>,
    end: u64,
}

impl Future for Dispatched {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        match self.inner.dispatcher.poll_dispatched(self.end, cx) {
            // Poisoned: nothing more becomes durable, so (in sync mode) nothing more is
            // dispatched; the poison wakes every dispatch waiter to see this.
            Poll::Pending if self.inner.flusher.is_poisoned() => Poll::Ready(false),
            other => other,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Takes the store directory's lock. A process that forks (any thread starting a child
/// process) holds a copy of every open file description until the child calls exec, so a
/// lock this process released a moment ago can still be held for a while: retry for up to
/// half a second before calling the directory taken.
fn lock_dir(lock: &File) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        match mmap::lock_exclusive(lock) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

/// Most bytes of flushed records the sync thread dispatches itself (about sixty 1 KiB
/// messages, some 100 µs of work); more is left to the dispatcher thread, so the next msync
/// does not wait for it.
const INLINE_DISPATCH_BYTES: u64 = 64 << 10;

/// Bytes of the space reserve: one consume queue file and one index file, each rounded up to
/// 64 KiB.
fn reserve_len(c: &StoreConfig) -> u64 {
    let round = |n: u64| n.div_ceil(64 << 10) * (64 << 10);
    let cq = c.cq_units_per_file * consume_queue::UNIT_LEN as u64;
    round(cq) + round(index::file_len(c.index_slots, c.index_entries_per_file))
}

/// Whether `e` says the file system is full.
fn is_no_space(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)),
        Error::InsufficientStorage { .. } => true,
        _ => false,
    }
}

fn validate_config(c: &StoreConfig) -> Result<()> {
    if c.segment_bytes < MIN_SEGMENT_BYTES || c.segment_bytes > u64::from(u32::MAX) * 4 {
        return Err(Error::invalid("/segment_bytes", format!("must be between {MIN_SEGMENT_BYTES} and 16 GiB")));
    }
    if c.cq_units_per_file == 0 || c.cq_units_per_file > (1 << 40) {
        return Err(Error::invalid("/cq_units_per_file", "must be at least 1"));
    }
    if c.index_slots == 0 || c.index_entries_per_file == 0 {
        return Err(Error::invalid("/index_slots", "index geometry must be at least 1"));
    }
    if !(c.disk_max_used_ratio > 0.0 && c.disk_max_used_ratio <= 1.0) {
        return Err(Error::invalid("/disk_max_used_ratio", "must be in (0, 1]"));
    }
    if c.flush_interval.is_zero() || c.retention_check_interval.is_zero() || c.dispatch_flush_interval.is_zero() {
        return Err(Error::invalid("/flush_interval", "intervals must be positive"));
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store in `config.dir`, takes an exclusive lock on the
    /// directory (a second open of the same directory, from this or another process, fails
    /// with [`Error::Conflict`]), runs recovery, and starts the flusher, dispatcher and
    /// retention threads.
    pub fn open(config: StoreConfig) -> Result<Arc<Store>> {
        validate_config(&config)?;
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        if let Err(e) = lock_dir(&lock) {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Err(Error::Conflict(format!(
                    "the store directory {} is already open (its lock file is held)",
                    dir.display()
                )));
            }
            return Err(Error::io(&lock_path, e));
        }

        let rec = recovery::recover(&config)?;
        let end = rec.end;
        let abort = dir.join("abort");
        File::create(&abort).and_then(|f| f.sync_all()).map_err(|e| Error::io(&abort, e))?;
        sync_dir(&dir)?;

        let dispatcher = Dispatcher::new(end, rec.index.mark());
        let retention = Retention { max_age: config.retention, max_used_ratio: config.disk_max_used_ratio };
        let inner = Arc::new(Inner {
            log: rec.log,
            queues: rec.queues,
            index: rec.index,
            dispatcher,
            flusher: Flusher::new(end),
            retention,
            closed: AtomicBool::new(false),
            disk_ratio: AtomicU64::new(0f64.to_bits()),
            disk_full: AtomicBool::new(false),
            stop: StopSignal::default(),
            last_checkpoint: Mutex::new(None),
            dispatch_flushed: Mutex::new(None),
            dir_lock: Mutex::new(Some(lock)),
            reserve: reserve::Reserve::new(&dir, reserve_len(&config)),
            writer: Mutex::new(None),
            config,
        });
        // A poisoned store dispatches nothing more: wake whoever waits for dispatch to see it.
        let weak = Arc::downgrade(&inner);
        inner.flusher.set_on_poison(Box::new(move || {
            if let Some(i) = weak.upgrade() {
                i.dispatcher.wake_waiters();
            }
        }));
        if !inner.reserve.ensure() {
            tracing::warn!(dir = %dir.display(), "no room for the space reserve; a full disk may delay dispatch");
        }
        if !rec.clean {
            // Make the recovered state the new starting point, so a crash right away does not
            // redo the work.
            inner.checkpoint(Flush::Full)?;
        }
        inner.update_disk(retention::measure(&dir));
        tracing::info!(dir = %dir.display(), end, clean = rec.clean, "store opened");

        // The handle exists before the threads, so a failed spawn drops it and its Drop stops
        // and joins the threads already started.
        let store =
            Arc::new(Store { inner: inner.clone(), threads: Mutex::new(Vec::new()), shut_down: Mutex::new(false) });
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| -> Result<()> {
            let h = std::thread::Builder::new().name(name.to_string()).spawn(f).map_err(|e| Error::io(&dir, e))?;
            store.threads.lock().unwrap_or_else(|p| p.into_inner()).push(h);
            Ok(())
        };
        let i = inner.clone();
        spawn(
            "ferrymq-dispatch",
            Box::new(move || {
                let sync = i.config.flush == FlushMode::Sync;
                let limit = || if sync { i.flusher.flushed() } else { i.log.write_pos() };
                let fatal = |e: &Error| i.flusher.poison("dispatch", &std::io::Error::other(e.to_string()));
                let space = dispatcher::SpaceHooks { release: &|| i.reserve.release(), refill: &|| i.reserve.ensure() };
                i.dispatcher.run(&i.log, &i.queues, &i.index, &limit, &space, &fatal)
            }),
        )?;
        let (writer, requests) = std::sync::mpsc::channel::<WriteRequest>();
        *inner.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(writer);
        let i = inner.clone();
        spawn(
            "ferrymq-write",
            Box::new(move || {
                let sync = i.config.flush == FlushMode::Sync;
                while let Ok(req) = requests.recv() {
                    let written = i.write_tails(req.tails, false);
                    if let (true, Ok((_, end))) = (sync, &written) {
                        i.flusher.request(*end);
                    }
                    let _ = req.done.send(written);
                }
            }),
        )?;
        if inner.config.flush == FlushMode::Sync {
            let i = inner.clone();
            // Right after its msync the sync thread dispatches a small flushed range itself.
            let after_flush = move || {
                let end = i.flusher.flushed().min(i.log.write_pos());
                i.dispatcher.dispatch_inline(&i.log, &i.queues, &i.index, end, INLINE_DISPATCH_BYTES)
            };
            let j = inner.clone();
            spawn("ferrymq-sync", Box::new(move || j.flusher.run_syncer(&j.log, &after_flush)))?;
        }
        let i = inner.clone();
        spawn(
            "ferrymq-flush",
            Box::new(move || {
                while !i.stop.wait(i.config.flush_interval) {
                    if let Err(e) = i.checkpoint(Flush::Periodic) {
                        tracing::warn!(error = %e, "periodic flush failed");
                    }
                }
            }),
        )?;
        // Sync mode writes with pwrite, which allocates page-cache pages itself, and msyncs
        // only what group commit asks for; its zero thread writes zeros ahead of the appender
        // (below) so that those msyncs find written blocks. Faulting pages in there cost more
        // than it saved (BENCHMARKS.md, issue 14).
        if inner.config.flush == FlushMode::Sync {
            let i = inner.clone();
            spawn(
                "ferrymq-zero",
                Box::new(move || {
                    let mut rate = AppendRate::new(i.log.write_pos());
                    let mut last_flushes = i.flusher.timings().count;
                    while !i.stop.wait(PREPARE_INTERVAL) {
                        let (appended, rate) = rate.step(i.log.write_pos());
                        let flushes = i.flusher.timings().count;
                        let groups = flushes.saturating_sub(last_flushes);
                        last_flushes = flushes;
                        // Zeroing pays where group commits are small (then the block-state
                        // metadata is most of an msync); with large ones it only doubles the
                        // bytes written (REST batch runs came out up to 8% slower: BENCHMARKS.md).
                        if rate == 0 || appended > groups.saturating_mul(ZERO_MAX_GROUP) {
                            continue;
                        }
                        let ahead = rate.saturating_mul(8).clamp(ZERO_AHEAD_MIN, PREPARE_AHEAD);
                        while i.log.zero_step(ahead, ZERO_GAP) && !i.closed.load(Ordering::Acquire) {}
                    }
                }),
            )?;
        }
        if inner.config.flush == FlushMode::Async {
            let i = inner.clone();
            spawn(
                "ferrymq-prepare",
                Box::new(move || {
                    let mut rate = AppendRate::new(i.log.write_pos());
                    while !i.stop.wait(PREPARE_INTERVAL) {
                        let (_, rate) = rate.step(i.log.write_pos());
                        let ahead = rate.saturating_mul(8).min(PREPARE_AHEAD);
                        if ahead == 0 {
                            continue;
                        }
                        let chunk = ahead.clamp(64 << 10, PREPARE_CHUNK);
                        while i.log.prepare_step(ahead, chunk) && !i.closed.load(Ordering::Acquire) {}
                    }
                }),
            )?;
        }
        let i = inner.clone();
        spawn(
            "ferrymq-retention",
            Box::new(move || {
                while !i.stop.wait(i.config.retention_check_interval) {
                    if let Err(e) = i.run_retention(now_ms()) {
                        tracing::warn!(error = %e, "retention sweep failed");
                    }
                }
            }),
        )?;
        Ok(store)
    }

    /// Appends one message: assigns its queue offset (next of topic/queue_id) and commit
    /// offset under the append lock and writes it. Returns once it is durable per the flush
    /// mode: `Sync`, after an msync covering it (shared with concurrent appenders); `Async`,
    /// once written to the mapped log. Does not wait for dispatch (in sync mode records are
    /// dispatched, i.e. visible in consume queues and lookups, only once durable; see
    /// [`Store::wait_dispatched`]).
    ///
    /// Errors: [`Error::InvalidArgument`] for a bad topic or field, [`Error::MessageTooLarge`],
    /// [`Error::InsufficientStorage`], [`Error::Poisoned`], [`Error::Closed`], I/O errors.
    pub fn append(&self, msg: NewMessage) -> Result<AppendResult> {
        let mut r = self.append_batch(vec![msg])?;
        r.pop().ok_or_else(|| Error::Unavailable("append produced no result".into()))
    }

    /// Appends an atomic batch: contiguous records and one durability wait. After a crash
    /// either all or none of the batch is recovered (every record but the last carries
    /// [`FLAG_BATCH_CONTINUES`]; recovery drops an incomplete trailing batch). Messages may
    /// target different topics and queues. An empty batch does nothing.
    pub fn append_batch(&self, msgs: Vec<NewMessage>) -> Result<Vec<AppendResult>> {
        let inner = &self.inner;
        let sync = inner.config.flush == FlushMode::Sync;
        let (results, end) = inner.write_tails(inner.encode(msgs)?, sync)?;
        if sync && !results.is_empty() {
            // The leader of the msync wakes the dispatcher once for everything it made durable;
            // nothing is dispatched (visible to consumers) before that.
            inner.flusher.wait_durable(&inner.log, end, &|| inner.dispatcher.notify())?;
        }
        Ok(results)
    }

    /// Validates and encodes an atomic batch on the calling thread (CPU only; a bad message
    /// fails here, with the errors of [`Store::append_batch`]) and hands it to the store's
    /// writer thread; the future resolves to the batch's results and its end offset once it is
    /// written (await [`Store::durable`] with that end for durability, [`Store::dispatched`] for
    /// visibility; an empty batch gives `(vec![], 0)`). Batches queued from one thread are written in the order of the
    /// calls, so an async caller can queue the next batch before the last one is written and
    /// still keep them in order; the writer takes whatever is queued one batch after another
    /// without a thread switch per batch. Nothing blocks the caller.
    pub fn append_batch_queued(&self, msgs: Vec<NewMessage>) -> Result<Appending> {
        self.inner.check_writable()?;
        let tails = self.inner.encode(msgs)?;
        let (done, rx) = futures::channel::oneshot::channel();
        let queued = match &*self.inner.writer.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(writer) => writer.send(WriteRequest { tails, done }).is_ok(),
            None => false,
        };
        if !queued {
            return Err(Error::Closed);
        }
        Ok(Appending { rx })
    }

    /// Resolves once the log is durable below `end` (in `Async` flush mode: at once, as
    /// [`Store::append_batch`] returns at once). Fails with [`Error::Poisoned`] if a flush
    /// failed and [`Error::Closed`] if the store shut down without making `end` durable.
    pub fn durable(&self, end: u64) -> Durable {
        Durable { inner: self.inner.clone(), end }
    }

    /// Resolves to `true` once every record below `end` is in the consume queues and the
    /// index, or to `false` once the dispatcher stopped before (shutdown) or the store is
    /// poisoned short of it. Bound it with a timeout: a full disk stalls dispatch. In `Sync`
    /// flush mode dispatch follows durability, so `true` also means durable (see
    /// [`Store::dispatch_implies_durable`]).
    pub fn dispatched(&self, end: u64) -> Dispatched {
        Dispatched { inner: self.inner.clone(), end }
    }

    /// Whether a record that is dispatched is also durable: in `Sync` flush mode nothing is
    /// dispatched (visible to consumers) before it is durable, so waiting for
    /// [`Store::dispatched`] is enough (one wake-up instead of two).
    pub fn dispatch_implies_durable(&self) -> bool {
        self.inner.config.flush == FlushMode::Sync
    }

    /// Blocks until the dispatcher has built consume queue and index entries for every record
    /// that starts below `commit_offset_end` (e.g. `result.commit_offset + result.size`), or
    /// until `timeout`. Returns true if dispatched. Waits on a condition variable.
    pub fn wait_dispatched(&self, commit_offset_end: u64, timeout: Duration) -> bool {
        self.inner.dispatcher.wait(commit_offset_end, timeout)
    }

    /// Reads one record by commit offset, copying only that record.
    ///
    /// Its CRC is checked unless this process wrote the record and it still lies in the
    /// recent tail ([`Store::is_recent`]): those bytes come back from the page cache that
    /// this process's own write filled, and checking them again cost a twentieth of the
    /// server's CPU per consumed message (BENCHMARKS.md). Whatever may have come from the
    /// disk (written before the store was opened, or older than the tail) is checked. Kafka's
    /// broker and RocketMQ's do not check on reads at all.
    ///
    /// Errors: [`Error::OffsetOutOfRange`] (empty topic) for an offset outside the retained
    /// log, [`Error::InvalidArgument`] when no record starts there, [`Error::Corrupt`] when
    /// a checked record fails its CRC.
    pub fn read(&self, commit_offset: u64) -> Result<StoredMessage> {
        let log = &self.inner.log;
        let own_and_recent = commit_offset >= log.opened_at() && self.is_recent(commit_offset);
        log.read(commit_offset, !own_and_recent)
    }

    /// Whether the record at `commit_offset` lies in the log's recent tail, the last quarter
    /// of the machine's memory written: what was written that lately is taken to be in the
    /// page cache, so reading it costs memory copies and not disk reads (RocketMQ's
    /// `accessMessageInMemoryMaxRatio` makes the same call, at 40%).
    pub fn is_recent(&self, commit_offset: u64) -> bool {
        self.inner.log.write_pos().saturating_sub(commit_offset) <= recent_bytes()
    }

    /// Up to `max` dispatched units of `topic`/`queue_id` starting at `from`. `from` below the
    /// queue's min is clamped up to it; `from == max` gives an empty vec; `from > max` is
    /// [`Error::OffsetOutOfRange`]. An unknown topic or queue gives an empty vec.
    pub fn read_queue(&self, topic: &str, queue_id: u32, from: u64, max: usize) -> Result<Vec<CqUnit>> {
        match self.inner.queues.get(topic, queue_id) {
            Some(q) => q.read(from, max),
            None => Ok(Vec::new()),
        }
    }

    /// `(min, max)` of a queue: min is the lowest retained offset, max the next offset to be
    /// dispatched. `(0, 0)` if unknown.
    pub fn queue_bounds(&self, topic: &str, queue_id: u32) -> (u64, u64) {
        self.inner.queues.get(topic, queue_id).map_or((0, 0), |q| (q.min(), q.max()))
    }

    /// Queue ids that have a consume queue for this topic, ascending.
    pub fn queue_ids(&self, topic: &str) -> Vec<u32> {
        self.inner.queues.queue_ids(topic)
    }

    /// First queue offset whose message has `store_ts >= ts` (binary search over the consume
    /// queue, reading store timestamps from the log); the queue's max if none, 0 for an
    /// unknown queue.
    pub fn offset_for_timestamp(&self, topic: &str, queue_id: u32, ts: u64) -> Result<u64> {
        let Some(q) = self.inner.queues.get(topic, queue_id) else {
            return Ok(0);
        };
        Ok(self.inner.first_at_or_after(&q, ts))
    }

    /// Commit offsets of records with this msg_id, oldest first. A msg_id can be stored more
    /// than once (delay and retry re-store it). Index hits are verified against the record.
    pub fn lookup_msg_id(&self, msg_id: &str) -> Result<Vec<u64>> {
        let log = &self.inner.log;
        Ok(self
            .inner
            .index
            .candidates(msg_id_hash(msg_id))
            .into_iter()
            .filter(|&off| log.with_record(off, false, |v| v.msg_id == msg_id).unwrap_or(false))
            .collect())
    }

    /// Commit offsets of records of `topic` carrying `key`, oldest first, at most `limit`.
    /// Stops searching index files once `limit` are found.
    pub fn lookup_key(&self, topic: &str, key: &str, limit: usize) -> Result<Vec<u64>> {
        self.lookup_key_where(topic, key, 0, u64::MAX, limit, false)
    }

    /// Commit offsets of records of `topic` carrying `key` with `from_ts <= store_ts < to_ts`,
    /// newest first, at most `limit`. Index files whose store-time range misses the range are
    /// not searched, and the search stops once `limit` are found, so the cost follows the
    /// range and the limit rather than the retention.
    pub fn lookup_key_newest(
        &self,
        topic: &str,
        key: &str,
        from_ts: u64,
        to_ts: u64,
        limit: usize,
    ) -> Result<Vec<u64>> {
        self.lookup_key_where(topic, key, from_ts, to_ts, limit, true)
    }

    fn lookup_key_where(
        &self,
        topic: &str,
        key: &str,
        from_ts: u64,
        to_ts: u64,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<u64>> {
        let log = &self.inner.log;
        let mut out = Vec::new();
        if limit == 0 || from_ts >= to_ts {
            return Ok(out);
        }
        self.inner.index.search(key_hash(topic, key), from_ts, to_ts, newest_first, |off| {
            let hit = log
                .with_record(off, false, |v| {
                    v.topic == topic && v.store_ts >= from_ts && v.store_ts < to_ts && v.keys().any(|k| k == key)
                })
                .unwrap_or(false);
            if hit && out.last() != Some(&off) {
                out.push(off);
            }
            out.len() < limit
        });
        Ok(out)
    }

    /// Commit offsets of records of `topic` with `from_ts <= store_ts < to_ts`, oldest first,
    /// at most `limit`. Answered per queue by binary search on the consume queue, then merged.
    pub fn lookup_time(&self, topic: &str, from_ts: u64, to_ts: u64, limit: usize) -> Result<Vec<u64>> {
        let inner = &self.inner;
        let mut out = Vec::new();
        if from_ts >= to_ts || limit == 0 {
            return Ok(out);
        }
        for q in inner.queues.topic_queues(topic) {
            let mut next = inner.first_at_or_after(&q, from_ts);
            let mut taken = 0;
            'queue: while taken < limit {
                let units = q.read(next, 256.min(limit - taken))?;
                if units.is_empty() {
                    break;
                }
                for u in &units {
                    match inner.log.store_ts_at(u.commit_offset) {
                        Ok(ts) if ts >= to_ts => break 'queue,
                        Ok(ts) if ts >= from_ts => {
                            out.push(u.commit_offset);
                            taken += 1;
                        }
                        _ => {}
                    }
                    next = u.queue_offset + 1;
                }
            }
        }
        out.sort_unstable();
        out.truncate(limit);
        Ok(out)
    }

    /// Drops every consume queue of the topic (its records stay in the log until retention).
    /// Waits (up to 5 s) for records already appended to be dispatched first, so they do not
    /// bring the queues back; the next append to the topic starts a new queue at offset 0.
    pub fn delete_topic(&self, topic: &str) -> Result<()> {
        record::validate_topic(topic)?;
        let inner = &self.inner;
        inner.dispatcher.wait(inner.log.write_pos(), Duration::from_secs(5));
        {
            let _paused = inner.dispatcher.pause();
            inner.log.forget_queue_offsets(topic);
            inner.queues.remove_topic(topic)?;
        }
        inner.checkpoint(Flush::Full)
    }

    /// Registers a callback run on the dispatcher thread after each dispatched batch, with
    /// (topic, queue_id, new max offset) for each queue that grew. Used for long-poll wake-ups;
    /// it must be cheap. Replaces any earlier listener.
    pub fn set_dispatch_listener(&self, f: DispatchListener) {
        self.inner.dispatcher.set_listener(f);
    }

    /// Forces a flush of the log, consume queues, index and checkpoint now.
    pub fn flush(&self) -> Result<()> {
        self.inner.checkpoint(Flush::Full)
    }

    /// Runs one retention sweep now with the given current time (epoch ms); returns the number
    /// of segments deleted. Also refreshes the disk usage that gates appends.
    pub fn run_retention(&self, now_ms: u64) -> Result<usize> {
        self.inner.run_retention(now_ms)
    }

    /// Clean shutdown: refuses new appends, stops the threads, dispatches and flushes
    /// everything, writes the checkpoint and removes the abort file. Idempotent; also done on
    /// drop (best effort). Reads keep working afterwards; the directory lock is released, so the
    /// directory can be opened again (by this process or another) while this handle lives.
    pub fn shutdown(&self) -> Result<()> {
        let mut done = self.shut_down.lock().unwrap_or_else(|p| p.into_inner());
        if *done {
            return Ok(());
        }
        *done = true;
        let result = self.shut_down_once();
        // Whatever the final flush did not make durable never will be.
        self.inner.flusher.close();
        result
    }

    fn shut_down_once(&self) -> Result<()> {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::SeqCst);
        inner.stop.stop();
        inner.dispatcher.stop();
        inner.flusher.stop_syncer();
        // The writer thread ends once its queue is empty and closed; what is still queued is
        // refused (the store is closed).
        inner.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let threads: Vec<_> = self.threads.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a store thread panicked");
            }
        }
        // Appends that were already past the closed check have finished once we hold the
        // append lock (tail_snapshot takes it).
        let (end, last_record, last_ts) = inner.log.tail_snapshot();
        // A poisoned store does not know what is durable: dispatch nothing more, claim nothing.
        inner.flusher.check()?;
        if inner.dispatcher.dispatched() < end {
            let from = inner.dispatcher.dispatched();
            let (reached, _) =
                dispatcher::dispatch_range(&inner.log, &inner.queues, &inner.index, from, end, usize::MAX)?;
            if reached < end {
                return Err(Error::Unavailable("dispatch did not reach the log end".into()));
            }
        }
        inner.flush_queues_and_index()?;
        let flushed = inner.flusher.flush_all(&inner.log)?;
        if flushed < end {
            return Err(Error::Poisoned);
        }
        let cp = Checkpoint {
            log_flushed: end,
            dispatched: end,
            index: inner.index.mark(),
            last_record,
            last_store_ts: last_ts,
        };
        inner.write_checkpoint(cp)?;
        // Lets the next clean open skip walking each queue's empty tail (best effort).
        let ends = inner.config.dir.join(recovery::QUEUE_ENDS);
        if let Err(e) = consume_queue::write_ends(&ends, end, &inner.queues) {
            tracing::warn!(error = %e, "recording the consume queue ends failed; the next open walks them");
        }
        let abort = inner.config.dir.join("abort");
        std::fs::remove_file(&abort).map_err(|e| Error::io(&abort, e))?;
        sync_dir(&inner.config.dir)?;
        inner.dir_lock.lock().unwrap_or_else(|p| p.into_inner()).take();
        tracing::info!(dir = %inner.config.dir.display(), end, "store shut down cleanly");
        Ok(())
    }

    /// Counters for metrics and tests.
    pub fn stats(&self) -> StoreStats {
        let inner = &self.inner;
        let t = inner.flusher.timings();
        StoreStats {
            max_offset: inner.log.write_pos(),
            min_offset: inner.log.min_offset(),
            flushed_offset: inner.flusher.flushed(),
            dispatched_offset: inner.dispatcher.dispatched(),
            segment_count: inner.log.segment_count(),
            flush_count: t.count,
            flush_seconds_sum: t.seconds_sum,
            flush_buckets: t.buckets,
            poisoned: inner.flusher.is_poisoned(),
        }
    }

    /// The directory of the store (the broker keeps its metadata in a `meta/` subfolder).
    pub fn dir(&self) -> &Path {
        &self.inner.config.dir
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "store shutdown on drop failed; the next open will recover");
        }
    }
}

impl Inner {
    /// Validates and encodes messages into records (all but their placement): CPU only.
    fn encode(&self, msgs: Vec<NewMessage>) -> Result<Vec<EncodedTail>> {
        let max_record = self.log.max_record_len();
        let mut tails = Vec::with_capacity(msgs.len());
        for msg in msgs {
            record::validate(&msg, self.config.max_message_bytes)?;
            let body = msg.body.len();
            let tail = record::encode_tail(msg);
            let len = tail.record_len() as u64;
            if len > max_record {
                return Err(Error::MessageTooLarge { size: body, max: (max_record - (len - body as u64)) as usize });
            }
            tails.push(tail);
        }
        Ok(tails)
    }

    /// Appends encoded records as one atomic batch (see [`Store::append_batch`]). With `enter`,
    /// the appender is counted in for the group commit's gathering (a blocking append that
    /// waits next).
    fn write_tails(&self, mut tails: Vec<EncodedTail>, enter: bool) -> Result<(Vec<AppendResult>, u64)> {
        self.check_writable()?;
        if tails.is_empty() {
            return Ok((Vec::new(), 0));
        }
        if enter {
            self.flusher.enter();
        }
        let (results, end) = match self.log.append(&mut tails, now_ms()) {
            Ok(r) => r,
            Err((e, poison)) => {
                if enter {
                    self.flusher.leave();
                }
                if poison {
                    self.flusher.poison("commit log append", &std::io::Error::other(e.to_string()));
                }
                return Err(self.storage_error(e));
            }
        };
        if self.config.flush == FlushMode::Async {
            self.dispatcher.notify();
        }
        Ok((results, end))
    }

    fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.flusher.check()?;
        if self.log.growth_refused() {
            return Err(Error::InsufficientStorage {
                used_ratio: retention::measure(&self.config.dir).unwrap_or(1.0),
                max_ratio: self.config.disk_max_used_ratio,
            });
        }
        if self.disk_full.load(Ordering::Acquire) {
            return Err(Error::InsufficientStorage {
                used_ratio: f64::from_bits(self.disk_ratio.load(Ordering::Acquire)),
                max_ratio: self.config.disk_max_used_ratio,
            });
        }
        Ok(())
    }

    /// Reports a full file system (ENOSPC, EDQUOT) as [`Error::InsufficientStorage`]; other
    /// errors pass unchanged.
    fn storage_error(&self, e: Error) -> Error {
        if !is_no_space(&e) {
            return e;
        }
        tracing::warn!(error = %e, "the file system is full; refusing the write");
        Error::InsufficientStorage {
            used_ratio: retention::measure(&self.config.dir).unwrap_or(1.0),
            max_ratio: self.config.disk_max_used_ratio,
        }
    }

    fn update_disk(&self, ratio: Option<f64>) {
        if let Some(r) = ratio {
            self.disk_ratio.store(r.to_bits(), Ordering::Release);
            let full = r > self.config.disk_max_used_ratio;
            if full != self.disk_full.swap(full, Ordering::AcqRel) {
                if full {
                    tracing::warn!(used = r, "disk usage above the limit; refusing appends");
                } else {
                    tracing::info!(used = r, "disk usage back under the limit");
                }
            }
        }
    }

    fn first_at_or_after(&self, q: &consume_queue::ConsumeQueue, ts: u64) -> u64 {
        let (mut lo, mut hi) = (q.min(), q.max());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = q.unit_at_or_after(mid).and_then(|u| self.log.store_ts_at(u.commit_offset).ok()).unwrap_or(0);
            if at >= ts {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    fn flush_queues_and_index(&self) -> Result<()> {
        for q in self.queues.all() {
            if let Err(e) = q.flush() {
                self.flusher.poison("consume queue", &e);
                return Err(Error::io(self.queues.root(), e));
            }
        }
        if let Err(e) = self.index.flush() {
            self.flusher.poison("index", &e);
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    /// Flushes queues and index (as `how` says), then the log, then writes the checkpoint (if
    /// it changed).
    fn checkpoint(&self, how: Flush) -> Result<()> {
        self.flusher.check()?;
        let DispatchFlushed { dispatched, mark, .. } = {
            let mut last = self.dispatch_flushed.lock().unwrap_or_else(|p| p.into_inner());
            match *last {
                Some(d) if how == Flush::Periodic && d.at.elapsed() < self.config.dispatch_flush_interval => d,
                _ => {
                    let (dispatched, mark) = self.dispatcher.mark();
                    self.flush_queues_and_index()?;
                    *last.insert(DispatchFlushed { dispatched, mark, at: Instant::now() })
                }
            }
        };
        let flushed = self.flusher.flush_all(&self.log)?;
        let (_, _, last_ts) = self.log.tail_snapshot();
        self.write_checkpoint(Checkpoint {
            log_flushed: flushed,
            dispatched,
            index: mark,
            last_record: u64::MAX,
            last_store_ts: last_ts,
        })
    }

    fn write_checkpoint(&self, cp: Checkpoint) -> Result<()> {
        let mut last = self.last_checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        if *last == Some(cp) {
            return Ok(());
        }
        if let Err(e) = cp.write(&self.config.dir.join("checkpoint")) {
            // A full disk fails the temporary file before the rename: the old checkpoint
            // stands and stays true, so that is no reason to poison. Anything else (a failed
            // fsync) is.
            if is_no_space(&e) {
                return Err(self.storage_error(e));
            }
            if let Error::Io { source, .. } = &e {
                self.flusher.poison("checkpoint", source);
            }
            return Err(e);
        }
        *last = Some(cp);
        Ok(())
    }

    fn run_retention(&self, now_ms: u64) -> Result<usize> {
        // Never delete below what the checkpoint covers: recovery starts scanning there.
        let safe = if self.flusher.is_poisoned() {
            0
        } else {
            self.checkpoint(Flush::Full)?;
            self.last_checkpoint
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map_or(0, |cp| cp.log_flushed.min(cp.dispatched))
        };
        let out = self.retention.sweep(&self.config.dir, &self.log, &self.queues, &self.index, now_ms, safe)?;
        self.update_disk(out.used_ratio);
        Ok(out.segments)
    }
}

/// A quarter of the machine's memory (256 MiB where it cannot be read).
fn recent_bytes() -> u64 {
    static RECENT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *RECENT.get_or_init(|| memory_bytes().map_or(256 << 20, |total| total / 4))
}

/// The machine's memory: `MemTotal` of `/proc/meminfo`.
fn memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(dir: &Path, flush: FlushMode) -> StoreConfig {
        let mut c = StoreConfig::new(dir);
        c.segment_bytes = 8192;
        c.flush = flush;
        c.cq_units_per_file = 16;
        c.index_slots = 16;
        c.index_entries_per_file = 32;
        c
    }

    fn msg(i: u64, body: usize) -> NewMessage {
        NewMessage {
            topic: "t".into(),
            queue_id: (i % 2) as u32,
            msg_id: format!("id{i}"),
            keys: vec![format!("k{i}")],
            body: vec![7; body],
            ..NewMessage::default()
        }
    }

    #[test]
    fn the_recent_tail_is_a_quarter_of_memory_back_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path(), FlushMode::Async)).unwrap();
        let first = store.append(msg(0, 10)).unwrap();
        let last = store.append(msg(1, 10)).unwrap();
        assert!(store.is_recent(first.commit_offset) && store.is_recent(last.commit_offset));
        let memory = memory_bytes().expect("MemTotal in /proc/meminfo");
        assert!(memory > 0);
        assert_eq!(recent_bytes(), memory / 4);
    }

    #[test]
    fn records_from_the_disk_are_crc_checked_and_own_recent_ones_are_not_again() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let store = Store::open(config(dir.path(), FlushMode::Sync)).unwrap();
            let r = store.append(msg(0, 100)).unwrap();
            store.shutdown().unwrap();
            r
        };
        let store = Store::open(config(dir.path(), FlushMode::Sync)).unwrap();
        let own = store.append(msg(1, 100)).unwrap();
        assert_eq!(before.commit_offset / 8192, own.commit_offset / 8192, "one segment");
        let segment = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.path().join("commitlog").join(segment::file_name(0)))
            .unwrap();
        // The last body byte of each record, flipped behind the store's back.
        for r in [before, own] {
            let at = r.commit_offset + u64::from(r.size) - 1;
            let mut b = [0u8];
            segment.read_exact_at(&mut b, at).unwrap();
            segment.write_all_at(&[b[0] ^ 0x40], at).unwrap();
        }
        assert!(matches!(store.read(before.commit_offset), Err(Error::Corrupt { .. })));
        let m = store.read(own.commit_offset).expect("this process's own record is not checked again");
        assert_eq!(m.body[..99], [7; 99]);
        assert_eq!(m.body[99], 7 ^ 0x40);
    }

    #[test]
    fn sync_appends_beside_the_zero_thread_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), FlushMode::Sync);
        c.segment_bytes = 6 << 20;
        c.cq_units_per_file = 4096;
        c.index_slots = 1024;
        c.index_entries_per_file = 8192;
        let store = Store::open(c.clone()).unwrap();
        let results: Vec<AppendResult> = std::thread::scope(|s| {
            let writers: Vec<_> = (0..4u64)
                .map(|t| {
                    let store = &store;
                    s.spawn(move || {
                        let mut out = Vec::new();
                        for i in 0..1500 {
                            out.push(store.append(msg(t * 10_000 + i, 1000 + (i as usize % 7) * 100)).unwrap());
                            if i % 100 == 0 {
                                // Pauses let the zero thread see a rate and get ahead.
                                std::thread::sleep(Duration::from_millis(15));
                            }
                        }
                        out
                    })
                })
                .collect();
            writers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        assert!(store.stats().segment_count >= 2, "the log rolled while zeroing");
        store.shutdown().unwrap();
        let store = Store::open(c).unwrap();
        for r in &results {
            let m = store.read(r.commit_offset).expect("every acknowledged record reads back, CRC checked");
            assert!(m.body.iter().all(|&b| b == 7));
        }
    }

    #[test]
    fn a_failed_flush_poisons_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path(), FlushMode::Sync)).unwrap();
        let r = store.append(msg(0, 10)).unwrap();
        store.inner.flusher.poison("test", &std::io::Error::other("injected EIO"));
        assert!(matches!(store.append(msg(1, 10)), Err(Error::Poisoned)));
        assert!(matches!(store.append_batch(vec![msg(1, 10)]), Err(Error::Poisoned)));
        assert!(matches!(store.flush(), Err(Error::Poisoned)));
        assert!(store.stats().poisoned);
        // Reads still work; shutdown refuses to claim a clean stop.
        assert_eq!(store.read(r.commit_offset).unwrap().msg_id, "id0");
        assert!(store.shutdown().is_err());
        drop(store);
        assert!(dir.path().join("abort").exists(), "a poisoned store is recovered on the next open");
        let store = Store::open(config(dir.path(), FlushMode::Sync)).unwrap();
        assert_eq!(store.read(r.commit_offset).unwrap().msg_id, "id0");
        assert_eq!(store.append(msg(1, 10)).unwrap().queue_offset, 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// Whatever the cut: segments whose newest record is past retention go (never the
        /// active one), newer records stay, queues start at their first retained record and
        /// every retained unit reads back.
        #[test]
        fn retention_keeps_exactly_the_young(
            bodies in proptest::collection::vec(0usize..900, 20..120),
            cut in any::<prop::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut c = config(dir.path(), FlushMode::Async);
            c.retention = Duration::from_millis(1000);
            let store = Store::open(c).unwrap();
            let mut rs = Vec::new();
            for (i, b) in bodies.iter().enumerate() {
                rs.push(store.append(msg(i as u64, *b)).unwrap());
            }
            // Async appends are dispatched in the background: let the queues catch up, or a
            // unit dispatched between `queue_bounds` and `read_queue` below reads as one too many.
            let last = rs[rs.len() - 1];
            prop_assert!(store.wait_dispatched(last.commit_offset + u64::from(last.size), Duration::from_secs(10)));
            let pivot = rs[cut.index(rs.len())];
            let now = pivot.store_ts + 1001;
            let before = store.stats().segment_count;
            let deleted = store.run_retention(now).unwrap();
            let st = store.stats();
            prop_assert_eq!(st.segment_count, before - deleted);
            prop_assert!(st.segment_count >= 1);
            for (i, r) in rs.iter().enumerate() {
                let kept = store.read(r.commit_offset).is_ok();
                prop_assert_eq!(kept, r.commit_offset >= st.min_offset, "record {}", i);
                if r.store_ts > pivot.store_ts {
                    prop_assert!(kept, "young record {} deleted", i);
                }
            }
            for q in 0..2u32 {
                let (min, max) = store.queue_bounds("t", q);
                let units = store.read_queue("t", q, 0, usize::MAX).unwrap();
                prop_assert_eq!(units.len() as u64, max - min);
                for u in &units {
                    prop_assert!(store.read(u.commit_offset).is_ok());
                }
                if let Some(first) = units.first() {
                    prop_assert_eq!(first.queue_offset, min);
                }
            }
        }
    }
}
