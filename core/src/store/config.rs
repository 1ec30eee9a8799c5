//! Store configuration: where the files live, how big they grow, and how durable an append is.

use std::path::PathBuf;
use std::time::Duration;

use crate::config as keys;

/// When an append counts as done, and therefore what survives a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushMode {
    /// An append returns once its bytes are in the memory-mapped commit log (the page cache).
    /// A background thread msyncs every `flush_interval`.
    ///
    /// Survives a process crash (kill -9): yes, everything acknowledged.
    /// Survives a machine crash or power loss: everything flushed before the last background
    /// flush; at most the last `flush_interval` of acknowledged appends can be lost.
    Async,
    /// An append returns only after an msync covering its bytes has completed. Concurrent
    /// appenders share one msync (group commit), so throughput grows with concurrency.
    ///
    /// Survives a process crash and a machine crash: yes, everything acknowledged.
    ///
    /// Costs: the active segment is pre-allocated (faulted in and msynced) ahead of the
    /// appender, which writes those blocks twice; records are copied into the page cache with
    /// pwrite(2) rather than through the mapping (see the commit log's docs).
    Sync,
}

/// Everything the store needs to know to open a directory.
///
/// Build it with [`StoreConfig::new`] and change the fields you care about.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreConfig {
    /// The store's directory; it holds `commitlog/`, `consumequeue/`, `index/`, `checkpoint`,
    /// `abort` and `lock`.
    pub dir: PathBuf,
    /// Size of each commit log segment file in bytes (key `segment_bytes`). A record never spans
    /// segments, so a record must fit into one with room for the end-of-segment marker.
    pub segment_bytes: u64,
    /// Durability of an append (key `flush`).
    pub flush: FlushMode,
    /// Period of the background flush of the log (async mode) and of the checkpoint (key
    /// `flush_interval`).
    pub flush_interval: Duration,
    /// Least time between two background flushes of the consume queues and the index (default
    /// 10 s). They are derived from the log: after a machine crash recovery dispatches again
    /// what they had not flushed, so this bounds that work, not what is kept. Their flush is
    /// mostly random 4 KiB writes (each message's id lands in a random slot of the index), and
    /// on every `flush_interval` those writes queued up in front of the log's group commits.
    pub dispatch_flush_interval: Duration,
    /// Number of 20-byte units per consume queue file (default 300 000, i.e. 6 MB files).
    pub cq_units_per_file: u64,
    /// Largest accepted message body in bytes (key `max_message_bytes`).
    pub max_message_bytes: usize,
    /// Segments whose newest record is older than this are deleted (key `retention_hours`).
    pub retention: Duration,
    /// Share of the data disk in use above which appends fail with
    /// [`Error::InsufficientStorage`](crate::Error::InsufficientStorage) and retention deletes
    /// the oldest segments early (key `disk_max_used_ratio`).
    pub disk_max_used_ratio: f64,
    /// Period of the background retention sweep (default 10 s).
    pub retention_check_interval: Duration,
    /// Hash slots per index file (default 1 048 576). Tests use small values to make index
    /// files roll over.
    pub index_slots: u32,
    /// Entries per index file (default 4 194 304, about 100 MB per file).
    pub index_entries_per_file: u32,
    /// What recovery does with damaged records below the durable (checkpointed) position
    /// (default false). Without repair, [`Store::open`](super::Store::open) refuses with
    /// [`Error::Corrupt`](crate::Error::Corrupt) naming the file and offset and changes
    /// nothing. With repair, it copies each damaged region to `<dir>/quarantine/<commit
    /// offset>`, covers it with a hole, keeps every intact record before and after it (it
    /// scans the whole log for that), rebuilds consume queues and index, logs what it removed,
    /// and opens. A torn tail above the durable position is cut either way.
    pub repair: bool,
}

impl StoreConfig {
    /// A configuration with the defaults for the store at `dir`: those of configuration keys
    /// come from the table in [`crate::config`], the rest (not configurable) are here.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            dir: dir.into(),
            segment_bytes: keys::SEGMENT_BYTES.default(),
            flush: keys::FLUSH.default(),
            flush_interval: keys::FLUSH_INTERVAL.default(),
            cq_units_per_file: 300_000,
            max_message_bytes: keys::MAX_MESSAGE_BYTES.default(),
            retention: Duration::from_secs(keys::RETENTION_HOURS.default() * 3600),
            disk_max_used_ratio: keys::DISK_MAX_USED_RATIO.default(),
            retention_check_interval: Duration::from_secs(10),
            dispatch_flush_interval: Duration::from_secs(10),
            index_slots: 1 << 20,
            index_entries_per_file: 4 << 20,
            repair: false,
        }
    }
}
