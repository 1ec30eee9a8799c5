//! The storage engine: commit log, consume queues, index, checkpoint, recovery, retention.
//!
//! It owns bytes on disk and nothing else: it knows topics and queues only as names and
//! numbers, and knows nothing of groups, filters or delivery.

mod config;
mod hash;
mod message;
mod meta;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use config::{FlushMode, StoreConfig};
pub use hash::tag_hash;
pub use message::{AppendResult, CqUnit, NewMessage, StoredMessage, FLAG_BATCH_CONTINUES};
pub use meta::write_atomic;
pub use stats::{StoreStats, FLUSH_BUCKETS};

use crate::{Error, Result};

/// Callback run on the dispatcher thread with (topic, queue id, new max offset).
pub type DispatchListener = Arc<dyn Fn(&str, u32, u64) + Send + Sync>;

/// The storage engine of one directory. `Send + Sync`; share it as `Arc<Store>`.
pub struct Store {
    dir: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `config.dir`, takes an exclusive lock on the
    /// directory (a second open fails), runs recovery, and starts the flusher, dispatcher and
    /// retention threads.
    pub fn open(config: StoreConfig) -> Result<Arc<Store>> {
        Ok(Arc::new(Store { dir: config.dir }))
    }

    /// Appends one message and returns once it is durable per the flush mode.
    pub fn append(&self, msg: NewMessage) -> Result<AppendResult> {
        let _ = msg;
        Err(Error::Unavailable("store not implemented yet".into()))
    }

    /// Appends an atomic batch: after a crash either all or none of it is recovered.
    pub fn append_batch(&self, msgs: Vec<NewMessage>) -> Result<Vec<AppendResult>> {
        let _ = msgs;
        Err(Error::Unavailable("store not implemented yet".into()))
    }

    /// Blocks until every record starting below `commit_offset_end` is dispatched, or until
    /// `timeout`. Returns true if dispatched.
    pub fn wait_dispatched(&self, commit_offset_end: u64, timeout: Duration) -> bool {
        let _ = (commit_offset_end, timeout);
        false
    }

    /// Reads and CRC-validates one record by commit offset.
    pub fn read(&self, commit_offset: u64) -> Result<StoredMessage> {
        let _ = commit_offset;
        Err(Error::Unavailable("store not implemented yet".into()))
    }

    /// Up to `max` dispatched units of `topic`/`queue_id` starting at `from`.
    pub fn read_queue(
        &self,
        topic: &str,
        queue_id: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<CqUnit>> {
        let _ = (topic, queue_id, from, max);
        Ok(Vec::new())
    }

    /// `(min, max)` of a queue; `(0, 0)` if unknown.
    pub fn queue_bounds(&self, topic: &str, queue_id: u32) -> (u64, u64) {
        let _ = (topic, queue_id);
        (0, 0)
    }

    /// Queue ids that have a consume queue for this topic.
    pub fn queue_ids(&self, topic: &str) -> Vec<u32> {
        let _ = topic;
        Vec::new()
    }

    /// First queue offset whose message has `store_ts >= ts`; the queue's max if none.
    pub fn offset_for_timestamp(&self, topic: &str, queue_id: u32, ts: u64) -> Result<u64> {
        let _ = (topic, queue_id, ts);
        Ok(0)
    }

    /// Commit offsets of records with this msg_id, oldest first.
    pub fn lookup_msg_id(&self, msg_id: &str) -> Result<Vec<u64>> {
        let _ = msg_id;
        Ok(Vec::new())
    }

    /// Commit offsets of records of `topic` carrying `key`, oldest first, at most `limit`.
    pub fn lookup_key(&self, topic: &str, key: &str, limit: usize) -> Result<Vec<u64>> {
        let _ = (topic, key, limit);
        Ok(Vec::new())
    }

    /// Commit offsets of records of `topic` with `from_ts <= store_ts < to_ts`, oldest first.
    pub fn lookup_time(
        &self,
        topic: &str,
        from_ts: u64,
        to_ts: u64,
        limit: usize,
    ) -> Result<Vec<u64>> {
        let _ = (topic, from_ts, to_ts, limit);
        Ok(Vec::new())
    }

    /// Drops every consume queue of the topic.
    pub fn delete_topic(&self, topic: &str) -> Result<()> {
        let _ = topic;
        Ok(())
    }

    /// Registers the callback run after each dispatched batch for each queue that grew.
    pub fn set_dispatch_listener(&self, f: DispatchListener) {
        let _ = f;
    }

    /// Forces a flush of log, consume queues, index and checkpoint now.
    pub fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Runs one retention sweep now with the given current time; returns segments deleted.
    pub fn run_retention(&self, now_ms: u64) -> Result<usize> {
        let _ = now_ms;
        Ok(0)
    }

    /// Clean shutdown. Idempotent; also done on drop.
    pub fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    /// Positions and flush timings.
    pub fn stats(&self) -> StoreStats {
        StoreStats::default()
    }

    /// The directory of the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
