//! Retention: deletes the oldest segments when their newest record is older than the
//! retention period, or (oldest first) while the disk is fuller than `disk_max_used_ratio`.
//!
//! Never deletes the active segment, nor a segment holding records that are not yet dispatched
//! and checkpointed. Consume queue files and index files that only point into deleted segments
//! follow, and queue minimum offsets move up.

use std::path::Path;
use std::time::Duration;

use super::commit_log::CommitLog;
use super::consume_queue::ConsumeQueues;
use super::index::Index;
use super::mmap::disk_used_ratio;
use crate::{Error, Result};

/// Retention policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retention {
    /// Maximum age of a segment's newest record.
    pub(crate) max_age: Duration,
    /// Disk usage above which the oldest segments go regardless of age.
    pub(crate) max_used_ratio: f64,
}

/// What a sweep did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SweepOutcome {
    /// Segments deleted.
    pub(crate) segments: usize,
    /// Disk usage after the sweep (None if it could not be measured).
    pub(crate) used_ratio: Option<f64>,
}

/// Measures disk usage of the file system holding `dir`, logging failures.
pub(crate) fn measure(dir: &Path) -> Option<f64> {
    match disk_used_ratio(dir) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "statvfs failed");
            None
        }
    }
}

impl Retention {
    /// Runs one sweep at time `now_ms`. `safe_limit`: segments must end at or below it (the
    /// checkpointed dispatch and flush positions).
    pub(crate) fn sweep(
        &self,
        dir: &Path,
        log: &CommitLog,
        queues: &ConsumeQueues,
        index: &Index,
        now_ms: u64,
        safe_limit: u64,
    ) -> Result<SweepOutcome> {
        let max_age_ms = u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX);
        let mut used = measure(dir);
        let mut deleted = 0;
        loop {
            let (expired, pressure) = {
                let segs = log.segments();
                if segs.len() < 2 {
                    break;
                }
                let expired = now_ms.saturating_sub(segs[0].last_store_ts()) > max_age_ms;
                (expired, used.is_some_and(|r| r > self.max_used_ratio))
            };
            if !expired && !pressure {
                break;
            }
            let Some(seg) = log.remove_oldest(safe_limit) else {
                break;
            };
            let path = seg.path().to_path_buf();
            // Readers may still hold the segment; its space is freed when the last one lets go.
            drop(seg);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
            tracing::info!(
                path = %path.display(),
                expired,
                pressure,
                "retention deleted a commit log segment"
            );
            deleted += 1;
            if pressure {
                used = measure(dir);
            }
        }
        if deleted > 0 {
            let min = log.min_offset();
            for q in queues.all() {
                q.truncate_below(min)?;
            }
            index.truncate_below(min)?;
            super::meta::sync_dir(log.dir())?;
        }
        Ok(SweepOutcome { segments: deleted, used_ratio: used })
    }
}
