//! Committed consumer offsets per group, topic and queue, persisted in `meta/offsets.json`.
//!
//! Commits land in memory at once and are written out by the broker's housekeeping task when
//! dirty (every 200 ms) and at shutdown, as RocketMQ does: after a crash a group may see the last
//! moments' messages again (at-least-once), never skip one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::meta::MetaFile;
use crate::Result;

type Doc = BTreeMap<String, BTreeMap<String, BTreeMap<u32, u64>>>;

/// group → topic → queue → committed offset.
#[derive(Debug)]
pub(crate) struct OffsetTable {
    file: MetaFile,
    doc: Mutex<Doc>,
    dirty: AtomicBool,
}

impl OffsetTable {
    pub(crate) fn open(file: MetaFile) -> Result<OffsetTable> {
        let doc = file.load()?;
        Ok(OffsetTable { file, doc: Mutex::new(doc), dirty: AtomicBool::new(false) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Doc> {
        self.doc.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, group: &str, topic: &str, queue_id: u32) -> Option<u64> {
        self.lock().get(group)?.get(topic)?.get(&queue_id).copied()
    }

    pub(crate) fn set(&self, group: &str, topic: &str, queue_id: u32, offset: u64) {
        let mut doc = self.lock();
        let slot = doc.entry(group.to_string()).or_default().entry(topic.to_string()).or_default();
        if slot.get(&queue_id) != Some(&offset) {
            slot.insert(queue_id, offset);
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Topics on which `group` has offsets.
    pub(crate) fn topics_of(&self, group: &str) -> Vec<String> {
        self.lock().get(group).map(|t| t.keys().cloned().collect()).unwrap_or_default()
    }

    /// Groups that have offsets.
    pub(crate) fn groups(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Drops every group's offsets on `topic`.
    pub(crate) fn remove_topic(&self, topic: &str) {
        let mut doc = self.lock();
        for topics in doc.values_mut() {
            if topics.remove(topic).is_some() {
                self.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Writes the table out if anything changed since the last write.
    pub(crate) fn persist_if_dirty(&self) -> Result<()> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let snapshot = self.lock().clone();
        self.file.save(&snapshot).inspect_err(|_| self.dirty.store(true, Ordering::Release))
    }
}
