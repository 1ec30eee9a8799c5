//! Deleted topics whose records are still in the log (it keeps them until retention): where
//! each deletion cut the log. Lookups by id, key and time leave out a deleted topic's records
//! below its cut, so a deleted topic's messages are not found, and once a topic of the same
//! name is created again its old messages do not show among the new ones (whose queue offsets
//! start at 0 again).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::meta::MetaFile;
use crate::Result;

/// The cuts, saved in `meta/dropped_topics.json`.
#[derive(Debug)]
pub(crate) struct DroppedTopics {
    file: MetaFile,
    /// Topic → commit offset: its records below this were written before it was deleted.
    cuts: Mutex<BTreeMap<String, u64>>,
}

impl DroppedTopics {
    pub(crate) fn open(file: MetaFile) -> Result<DroppedTopics> {
        Ok(DroppedTopics { cuts: Mutex::new(file.load()?), file })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.cuts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `topic` was deleted when the log ended at `cut`, and forgets the cuts
    /// that lie at or below `log_start` (the oldest record retained): nothing is left to hide.
    pub(crate) fn record(&self, topic: &str, cut: u64, log_start: u64) -> Result<()> {
        let mut cuts = self.lock();
        let at = cuts.entry(topic.to_owned()).or_default();
        *at = (*at).max(cut);
        cuts.retain(|_, cut| *cut > log_start);
        self.file.save(&*cuts)
    }

    /// Where `topic`'s last deletion cut the log: its records below belong to a deleted
    /// incarnation.
    pub(crate) fn cut(&self, topic: &str) -> Option<u64> {
        self.lock().get(topic).copied()
    }

    /// Whether the record of `topic` at `commit_offset` belongs to a deleted incarnation.
    pub(crate) fn hides(&self, topic: &str, commit_offset: u64) -> bool {
        self.cut(topic).is_some_and(|cut| commit_offset < cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_only_move_up_survive_a_reopen_and_go_once_retention_passed_them() {
        let dir = tempfile::tempdir().unwrap();
        let dropped = DroppedTopics::open(MetaFile::new(dir.path(), "dropped_topics.json").unwrap()).unwrap();
        dropped.record("a", 100, 0).unwrap();
        dropped.record("a", 50, 0).unwrap();
        dropped.record("b", 300, 0).unwrap();
        assert_eq!((dropped.cut("a"), dropped.cut("b"), dropped.cut("c")), (Some(100), Some(300), None));
        // The log now starts at 200: nothing of `a` below its cut is left.
        dropped.record("c", 400, 200).unwrap();
        let reopened = DroppedTopics::open(MetaFile::new(dir.path(), "dropped_topics.json").unwrap()).unwrap();
        assert_eq!((reopened.cut("a"), reopened.cut("b"), reopened.cut("c")), (None, Some(300), Some(400)));
    }
}
