//! Counters the store exposes for metrics and tests.

/// Upper bounds (seconds) of the flush-duration histogram buckets in [`StoreStats`].
pub const FLUSH_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// A snapshot of the store's positions and flush timings.
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    /// Commit offset the next record will get (end of the log).
    pub max_offset: u64,
    /// Lowest commit offset still retained (start of the oldest segment).
    pub min_offset: u64,
    /// The log is durable (msynced) below this commit offset.
    pub flushed_offset: u64,
    /// Consume queues and index hold every record below this commit offset.
    pub dispatched_offset: u64,
    /// Number of commit log segment files.
    pub segment_count: usize,
    /// Number of log flushes (msync calls covering appended data) so far.
    pub flush_count: u64,
    /// Total seconds spent in those flushes.
    pub flush_seconds_sum: f64,
    /// Cumulative counts per bucket of [`FLUSH_BUCKETS`] (flushes taking at most that long),
    /// ready for a Prometheus histogram `ferrymq_store_flush_duration_seconds`.
    pub flush_buckets: [u64; FLUSH_BUCKETS.len()],
    /// True once a flush failed: the store refuses writes.
    pub poisoned: bool,
}
