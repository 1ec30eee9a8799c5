//! Consume queues: per topic and queue, an array of fixed 20-byte units (commit offset u64,
//! record size u32, tag hash u64, little-endian) in mmapped files
//! `consumequeue/<topic>/<queue_id>/<20-digit byte offset of the file's first unit>`.
//!
//! The queue offset of a message is the index of its unit. Only the dispatcher writes units,
//! in queue-offset order; readers see units below `max`, which is published after the unit is
//! written. A unit of size 0 is a hole (never written) and is skipped.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::message::CqUnit;
use super::meta::sync_dir;
use super::mmap::MappedFile;
use super::record::{u32_at, u64_at, MIN_RECORD_LEN};
use super::segment::{file_name, parse_file_name};
use crate::{Error, Result};

/// Bytes per unit.
pub(crate) const UNIT_LEN: usize = 20;

fn encode_unit(commit_offset: u64, size: u32, tag_hash: u64) -> [u8; UNIT_LEN] {
    let mut b = [0u8; UNIT_LEN];
    b[0..8].copy_from_slice(&commit_offset.to_le_bytes());
    b[8..12].copy_from_slice(&size.to_le_bytes());
    b[12..20].copy_from_slice(&tag_hash.to_le_bytes());
    b
}

fn decode_unit(queue_offset: u64, b: &[u8]) -> CqUnit {
    CqUnit { queue_offset, commit_offset: u64_at(b, 0), size: u32_at(b, 8), tag_hash: u64_at(b, 12) }
}

/// One file of a consume queue.
#[derive(Debug)]
struct CqFile {
    first_unit: u64,
    file: MappedFile,
}

/// The consume queue of one topic/queue.
#[derive(Debug)]
pub(crate) struct ConsumeQueue {
    topic: String,
    queue_id: u32,
    dir: PathBuf,
    units_per_file: u64,
    files: RwLock<Vec<Arc<CqFile>>>,
    min: AtomicU64,
    max: AtomicU64,
    flushed: AtomicU64,
}

impl ConsumeQueue {
    fn empty(topic: &str, queue_id: u32, dir: PathBuf, units_per_file: u64) -> ConsumeQueue {
        ConsumeQueue {
            topic: topic.to_string(),
            queue_id,
            dir,
            units_per_file,
            files: RwLock::new(Vec::new()),
            min: AtomicU64::new(0),
            max: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
        }
    }

    /// Loads the queue in `dir`, keeping units from the end backwards only once `keep` accepts
    /// one (the rest are zeroed): recovery uses it to drop units that point past the log's end
    /// or that will be re-dispatched. Files holding nothing below the new max are deleted.
    ///
    /// `known_max` (the end a clean shutdown recorded) spares the walk backwards over the
    /// empty tail of the last file (up to `units_per_file` units per queue, on every open): it
    /// is used if the unit before it is written and accepted by `keep` and the unit at it is
    /// empty; otherwise the walk runs as usual.
    pub(crate) fn load(
        topic: &str,
        queue_id: u32,
        dir: PathBuf,
        units_per_file: u64,
        known_max: Option<u64>,
        mut keep: impl FnMut(&CqUnit) -> bool,
    ) -> Result<ConsumeQueue> {
        let file_len = units_per_file * UNIT_LEN as u64;
        let mut files: Vec<CqFile> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name();
            let Some(start) = name.to_str().and_then(parse_file_name) else {
                continue;
            };
            if start % file_len != 0 {
                tracing::warn!(path = %entry.path().display(), "ignoring misaligned consume queue file");
                continue;
            }
            let file = MappedFile::open(&entry.path(), file_len, 0, false)?;
            files.push(CqFile { first_unit: start / UNIT_LEN as u64, file });
        }
        files.sort_by_key(|f| f.first_unit);

        let first_unit = files.first().map_or(0, |f| f.first_unit);
        let mut unit_bytes = |q: u64| -> Option<[u8; UNIT_LEN]> {
            let f = files.iter_mut().rev().find(|f| f.first_unit <= q)?;
            let i = (q - f.first_unit) as usize;
            let data = f.file.data_mut();
            data.get(i * UNIT_LEN..(i + 1) * UNIT_LEN).map(|b| b.try_into().unwrap_or([0; UNIT_LEN]))
        };
        let known = known_max.filter(|&m| {
            let after_empty = unit_bytes(m).is_none_or(|b| b.iter().all(|&x| x == 0));
            let before_ok = if m == first_unit {
                true
            } else {
                m > first_unit
                    && unit_bytes(m - 1).is_some_and(|b| {
                        let u = decode_unit(m - 1, &b);
                        u.size != 0 && keep(&u)
                    })
            };
            after_empty && before_ok
        });
        // Walk back from the end to the last unit worth keeping, zeroing everything after it.
        let mut max = known.unwrap_or(first_unit);
        'outer: for f in files.iter_mut().rev() {
            if known.is_some() {
                break;
            }
            let first = f.first_unit;
            let data = f.file.data_mut();
            for i in (0..units_per_file as usize).rev() {
                let b = &mut data[i * UNIT_LEN..(i + 1) * UNIT_LEN];
                if b.iter().all(|&x| x == 0) {
                    continue;
                }
                let unit = decode_unit(first + i as u64, b);
                if unit.size != 0 && keep(&unit) {
                    max = first + i as u64 + 1;
                    break 'outer;
                }
                b.fill(0);
            }
        }
        // Files entirely past `max` go, but the first file stays so an empty queue keeps its
        // position.
        let mut kept = Vec::new();
        for (i, f) in files.into_iter().enumerate() {
            if i > 0 && f.first_unit >= max {
                let path = f.file.path().to_path_buf();
                drop(f);
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            } else {
                kept.push(f);
            }
        }
        // Publish every kept unit; find min (first non-hole unit).
        let mut min = max;
        let mut found_min = false;
        for f in kept.iter_mut() {
            let upto = (max.saturating_sub(f.first_unit)).min(units_per_file) as usize;
            f.file.set_published(upto * UNIT_LEN);
            if !found_min {
                let data = f.file.data_mut();
                if let Some(i) = (0..upto).find(|&i| u32_at(&data[i * UNIT_LEN..], 8) != 0) {
                    min = f.first_unit + i as u64;
                    found_min = true;
                }
            }
        }
        let q = ConsumeQueue::empty(topic, queue_id, dir, units_per_file);
        *q.files.write().unwrap_or_else(|p| p.into_inner()) = kept.into_iter().map(Arc::new).collect();
        q.min.store(min, Ordering::Release);
        q.max.store(max, Ordering::Release);
        q.flushed.store(max, Ordering::Release);
        Ok(q)
    }

    /// Topic.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Queue id.
    pub(crate) fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// Lowest retained queue offset.
    pub(crate) fn min(&self) -> u64 {
        self.min.load(Ordering::Acquire)
    }

    /// Next queue offset to be dispatched.
    pub(crate) fn max(&self) -> u64 {
        self.max.load(Ordering::Acquire)
    }

    fn file_for(&self, queue_offset: u64) -> Option<Arc<CqFile>> {
        let files = self.files.read().unwrap_or_else(|p| p.into_inner());
        let i = files.partition_point(|f| f.first_unit <= queue_offset);
        let f = files.get(i.checked_sub(1)?)?;
        (queue_offset < f.first_unit + self.units_per_file).then(|| f.clone())
    }

    /// Writes the unit for `queue_offset` and publishes it. Dispatcher only. Returns false
    /// (and writes nothing) if the offset is already dispatched.
    pub(crate) fn put(&self, queue_offset: u64, commit_offset: u64, size: u32, tag_hash: u64) -> Result<bool> {
        let max = self.max();
        if queue_offset < max {
            return Ok(false);
        }
        let file = match self.file_for(queue_offset) {
            Some(f) => f,
            None => self.create_file(queue_offset)?,
        };
        let local = ((queue_offset - file.first_unit) as usize) * UNIT_LEN;
        file.file.write(local, &encode_unit(commit_offset, size, tag_hash))?;
        file.file.publish(local + UNIT_LEN);
        if max == self.min() && queue_offset > max {
            // First unit of an empty queue that starts late (e.g. a topic re-created after
            // delete_topic keeps counting): nothing below is retained.
            self.min.store(queue_offset, Ordering::Release);
        }
        self.max.store(queue_offset + 1, Ordering::Release);
        Ok(true)
    }

    fn create_file(&self, queue_offset: u64) -> Result<Arc<CqFile>> {
        let first_unit = queue_offset - queue_offset % self.units_per_file;
        let new_dir = !self.dir.exists();
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.dir.join(file_name(first_unit * UNIT_LEN as u64));
        let file = MappedFile::open(&path, self.units_per_file * UNIT_LEN as u64, 0, true)?;
        sync_dir(&self.dir)?;
        if new_dir {
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent)?;
                if let Some(root) = parent.parent() {
                    sync_dir(root)?;
                }
            }
        }
        let file = Arc::new(CqFile { first_unit, file });
        let mut files = self.files.write().unwrap_or_else(|p| p.into_inner());
        let i = files.partition_point(|f| f.first_unit < first_unit);
        files.insert(i, file.clone());
        Ok(file)
    }

    /// The unit at `queue_offset`, if dispatched, retained and not a hole.
    pub(crate) fn unit(&self, queue_offset: u64) -> Option<CqUnit> {
        if queue_offset >= self.max() || queue_offset < self.min() {
            return None;
        }
        let f = self.file_for(queue_offset)?;
        let local = ((queue_offset - f.first_unit) as usize) * UNIT_LEN;
        let u = decode_unit(queue_offset, f.file.read(local, UNIT_LEN)?);
        (u.size != 0).then_some(u)
    }

    /// Checks what bit rot would break: every unit (but holes) points at a record of a
    /// plausible size, after the previous unit's record, and below the log's `end`.
    pub(crate) fn check_structure(&self, end: u64) -> Result<()> {
        let mut prev_end = 0u64;
        let mut q = self.min();
        let max = self.max();
        while q < max {
            let units = self.read(q, 4096)?;
            if units.is_empty() {
                break;
            }
            for u in &units {
                let rec_end = u.commit_offset.saturating_add(u64::from(u.size));
                if (u.size as usize) < MIN_RECORD_LEN || u.commit_offset < prev_end || rec_end > end {
                    return Err(Error::Corrupt {
                        path: self.dir.clone(),
                        offset: u.queue_offset * UNIT_LEN as u64,
                        reason: format!("unit {} of {}/{} is implausible", u.queue_offset, self.topic, self.queue_id),
                    });
                }
                prev_end = rec_end;
                q = u.queue_offset + 1;
            }
        }
        Ok(())
    }

    /// The first unit at or after `queue_offset` that is not a hole (holes are left where
    /// repair quarantined a record), looking no further than the file holding `queue_offset`
    /// and the ones after it without a gap; `None` if that offset's file is gone.
    pub(crate) fn unit_at_or_after(&self, queue_offset: u64) -> Option<CqUnit> {
        let max = self.max();
        let mut q = queue_offset.max(self.min());
        while q < max {
            self.file_for(q)?;
            if let Some(u) = self.unit(q) {
                return Some(u);
            }
            q += 1;
        }
        None
    }

    /// Up to `n` units from `from` (clamped up to min). `from == max` gives nothing,
    /// `from > max` is an error.
    pub(crate) fn read(&self, from: u64, n: usize) -> Result<Vec<CqUnit>> {
        let max = self.max();
        let min = self.min();
        if from > max {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.clone(),
                queue_id: self.queue_id,
                offset: from,
                min,
                max,
            });
        }
        let mut q = from.max(min);
        let end = max.min(q.saturating_add(n as u64));
        let mut out = Vec::with_capacity((end.saturating_sub(q)) as usize);
        while q < end {
            let Some(f) = self.file_for(q) else {
                // Retention removed it meanwhile, or a gap: skip to the next file boundary.
                q = (q / self.units_per_file + 1) * self.units_per_file;
                continue;
            };
            let upto = end.min(f.first_unit + self.units_per_file);
            let local = ((q - f.first_unit) as usize) * UNIT_LEN;
            let count = (upto - q) as usize;
            if let Some(bytes) = f.file.read(local, count * UNIT_LEN) {
                for (i, b) in bytes.chunks_exact(UNIT_LEN).enumerate() {
                    let u = decode_unit(q + i as u64, b);
                    if u.size != 0 {
                        out.push(u);
                    }
                }
            }
            q = upto;
        }
        Ok(out)
    }

    /// msyncs units written since the last flush.
    pub(crate) fn flush(&self) -> std::io::Result<()> {
        let max = self.max();
        let flushed = self.flushed.load(Ordering::Acquire);
        if max <= flushed {
            return Ok(());
        }
        let files: Vec<Arc<CqFile>> = self
            .files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|f| f.first_unit + self.units_per_file > flushed && f.first_unit < max)
            .cloned()
            .collect();
        for f in files {
            let a = flushed.max(f.first_unit) - f.first_unit;
            let b = max.min(f.first_unit + self.units_per_file) - f.first_unit;
            f.file.flush_range(a as usize * UNIT_LEN, (b - a) as usize * UNIT_LEN)?;
        }
        self.flushed.fetch_max(max, Ordering::AcqRel);
        Ok(())
    }

    /// Deletes files (never the last) whose units all point below `log_min`, and moves `min`
    /// to the first unit at or above it. Returns files deleted.
    pub(crate) fn truncate_below(&self, log_min: u64) -> Result<usize> {
        let mut deleted = Vec::new();
        {
            let mut files = self.files.write().unwrap_or_else(|p| p.into_inner());
            while files.len() > 1 {
                let f = &files[0];
                let last = (self.units_per_file as usize - 1) * UNIT_LEN;
                let gone = match f.file.read(last, UNIT_LEN) {
                    Some(b) => {
                        let u = decode_unit(0, b);
                        u.size == 0 || u.commit_offset + u64::from(u.size) <= log_min
                    }
                    None => false,
                };
                if !gone {
                    break;
                }
                deleted.push(files.remove(0));
            }
        }
        for f in &deleted {
            let p = f.file.path();
            if let Err(e) = fs::remove_file(p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(Error::io(p, e));
                }
            }
        }
        // Binary search the first unit pointing at or above log_min (a hole, left by a
        // quarantined record, answers for the next unit after it).
        let (mut lo, mut hi) = (self.min(), self.max());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.unit_at_or_after(mid) {
                Some(u) if u.commit_offset >= log_min => hi = mid,
                _ => lo = mid + 1,
            }
        }
        self.min.fetch_max(lo, Ordering::AcqRel);
        Ok(deleted.len())
    }
}

/// All consume queues of a store: `consumequeue/<topic>/<queue_id>/`.
#[derive(Debug)]
pub(crate) struct ConsumeQueues {
    root: PathBuf,
    units_per_file: u64,
    /// Looked up for every dispatched record and every receive: FxHash, not SipHash.
    map: RwLock<rustc_hash::FxHashMap<String, BTreeMap<u32, Arc<ConsumeQueue>>>>,
}

impl ConsumeQueues {
    /// Loads every queue under `root` (created if missing) through [`ConsumeQueue::load`],
    /// with `keep(topic, queue_id, unit)`.
    pub(crate) fn load(
        root: PathBuf,
        units_per_file: u64,
        keep: impl FnMut(&str, u32, &CqUnit) -> bool,
    ) -> Result<ConsumeQueues> {
        Self::load_with_ends(root, units_per_file, &HashMap::new(), keep)
    }

    /// [`ConsumeQueues::load`] with the queue ends a clean shutdown recorded (see
    /// [`write_ends`]).
    pub(crate) fn load_with_ends(
        root: PathBuf,
        units_per_file: u64,
        ends: &HashMap<(String, u32), u64>,
        mut keep: impl FnMut(&str, u32, &CqUnit) -> bool,
    ) -> Result<ConsumeQueues> {
        fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let mut map: rustc_hash::FxHashMap<String, BTreeMap<u32, Arc<ConsumeQueue>>> = Default::default();
        for topic_entry in fs::read_dir(&root).map_err(|e| Error::io(&root, e))? {
            let topic_entry = topic_entry.map_err(|e| Error::io(&root, e))?;
            let Ok(topic) = topic_entry.file_name().into_string() else {
                continue;
            };
            if !topic_entry.path().is_dir() {
                continue;
            }
            let tdir = topic_entry.path();
            for q_entry in fs::read_dir(&tdir).map_err(|e| Error::io(&tdir, e))? {
                let q_entry = q_entry.map_err(|e| Error::io(&tdir, e))?;
                let Some(qid) = q_entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let known = ends.get(&(topic.clone(), qid)).copied();
                let q =
                    ConsumeQueue::load(&topic, qid, q_entry.path(), units_per_file, known, |u| keep(&topic, qid, u))?;
                map.entry(topic.clone()).or_default().insert(qid, Arc::new(q));
            }
        }
        Ok(ConsumeQueues { root, units_per_file, map: RwLock::new(map) })
    }

    /// The queue, if it exists.
    pub(crate) fn get(&self, topic: &str, queue_id: u32) -> Option<Arc<ConsumeQueue>> {
        self.map.read().unwrap_or_else(|p| p.into_inner()).get(topic)?.get(&queue_id).cloned()
    }

    /// The queue, created empty if missing (files appear with the first unit).
    pub(crate) fn get_or_create(&self, topic: &str, queue_id: u32) -> Arc<ConsumeQueue> {
        if let Some(q) = self.get(topic, queue_id) {
            return q;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.entry(topic.to_string())
            .or_default()
            .entry(queue_id)
            .or_insert_with(|| {
                Arc::new(ConsumeQueue::empty(
                    topic,
                    queue_id,
                    self.root.join(topic).join(queue_id.to_string()),
                    self.units_per_file,
                ))
            })
            .clone()
    }

    /// Queue ids of a topic, ascending.
    pub(crate) fn queue_ids(&self, topic: &str) -> Vec<u32> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Queues of a topic.
    pub(crate) fn topic_queues(&self, topic: &str) -> Vec<Arc<ConsumeQueue>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every queue.
    pub(crate) fn all(&self) -> Vec<Arc<ConsumeQueue>> {
        self.map.read().unwrap_or_else(|p| p.into_inner()).values().flat_map(|m| m.values().cloned()).collect()
    }

    /// Next queue offsets per topic and queue (to seed the appender after recovery).
    pub(crate) fn max_offsets(&self) -> super::commit_log::QueueOffsets {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(t, m)| (t.clone(), m.iter().map(|(q, cq)| (*q, cq.max())).collect()))
            .collect()
    }

    /// Drops every queue of `topic` and deletes its directory.
    pub(crate) fn remove_topic(&self, topic: &str) -> Result<()> {
        let removed = self.map.write().unwrap_or_else(|p| p.into_inner()).remove(topic);
        drop(removed);
        let dir = self.root.join(topic);
        match fs::remove_dir_all(&dir) {
            Ok(()) => sync_dir(&self.root),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&dir, e)),
        }
    }

    /// The root directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }
}

const ENDS_MAGIC: u64 = 0x5344_4e45_5152_4546; // "FERQENDS" little-endian

/// Records the end (max) of every queue at a clean shutdown, bound to the log end `log_end`
/// of its checkpoint, so that the next clean open need not walk each queue's empty tail.
/// Layout: magic u64, log_end u64, count u32, then per queue: topic length u16, topic,
/// queue id u32, max u64; a CRC32 of everything before it.
pub(crate) fn write_ends(path: &Path, log_end: u64, queues: &ConsumeQueues) -> Result<()> {
    let mut b = Vec::new();
    b.extend_from_slice(&ENDS_MAGIC.to_le_bytes());
    b.extend_from_slice(&log_end.to_le_bytes());
    let all = queues.all();
    b.extend_from_slice(&(all.len() as u32).to_le_bytes());
    for q in &all {
        b.extend_from_slice(&(q.topic().len() as u16).to_le_bytes());
        b.extend_from_slice(q.topic().as_bytes());
        b.extend_from_slice(&q.queue_id().to_le_bytes());
        b.extend_from_slice(&q.max().to_le_bytes());
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    super::meta::write_atomic(path, &b)
}

/// The queue ends [`write_ends`] recorded for the log end `log_end`; empty if the file is
/// missing, damaged or from another log end (then every queue is walked as before).
pub(crate) fn read_ends(path: &Path, log_end: u64) -> HashMap<(String, u32), u64> {
    let mut out = HashMap::new();
    let Ok(b) = fs::read(path) else { return out };
    if b.len() < 24 || crc32fast::hash(&b[..b.len() - 4]) != u32_at(&b, b.len() - 4) {
        return out;
    }
    if u64_at(&b, 0) != ENDS_MAGIC || u64_at(&b, 8) != log_end {
        return out;
    }
    let body = &b[..b.len() - 4];
    let mut at = 20;
    for _ in 0..u32_at(&b, 16) {
        let Some(len) = body.get(at..at + 2).map(|x| u16::from_le_bytes([x[0], x[1]]) as usize) else {
            return HashMap::new();
        };
        let Some(topic) = body.get(at + 2..at + 2 + len).and_then(|t| std::str::from_utf8(t).ok()) else {
            return HashMap::new();
        };
        let rest = at + 2 + len;
        if body.len() < rest + 12 {
            return HashMap::new();
        }
        out.insert((topic.to_string(), u32_at(body, rest)), u64_at(body, rest + 4));
        at = rest + 12;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn queues(dir: &Path, upf: u64) -> ConsumeQueues {
        ConsumeQueues::load(dir.join("cq"), upf, |_, _, _| true).unwrap()
    }

    #[test]
    fn put_read_bounds_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let qs = queues(dir.path(), 4);
        let q = qs.get_or_create("t", 3);
        for i in 0..10u64 {
            assert!(q.put(i, i * 100, 50, i).unwrap());
        }
        assert!(!q.put(5, 0, 1, 0).unwrap());
        assert_eq!((q.min(), q.max()), (0, 10));
        let units = q.read(2, 5).unwrap();
        assert_eq!(units.len(), 5);
        assert_eq!(units[0], CqUnit { queue_offset: 2, commit_offset: 200, size: 50, tag_hash: 2 });
        assert!(q.read(10, 5).unwrap().is_empty());
        assert!(matches!(q.read(11, 5), Err(Error::OffsetOutOfRange { offset: 11, .. })));
        assert_eq!(q.unit(9).unwrap().commit_offset, 900);
        q.flush().unwrap();
        drop((q, qs));
        // Three files of 4 units: 0, 80, 160.
        assert_eq!(fs::read_dir(dir.path().join("cq/t/3")).unwrap().count(), 3);
        let qs = queues(dir.path(), 4);
        let q = qs.get("t", 3).unwrap();
        assert_eq!((q.min(), q.max()), (0, 10));
        assert_eq!(q.read(0, 100).unwrap().len(), 10);
        assert_eq!(qs.queue_ids("t"), vec![3]);
        assert_eq!(qs.max_offsets()["t"][&3], 10);
    }

    #[test]
    fn load_drops_rejected_tail_units() {
        let dir = tempfile::tempdir().unwrap();
        {
            let qs = queues(dir.path(), 4);
            let q = qs.get_or_create("t", 0);
            for i in 0..10u64 {
                q.put(i, i * 100, 50, 0).unwrap();
            }
        }
        let qs = ConsumeQueues::load(dir.path().join("cq"), 4, |_, _, u| u.commit_offset < 500).unwrap();
        let q = qs.get("t", 0).unwrap();
        assert_eq!(q.max(), 5);
        // The file holding units 8..12 is gone; the next put lands at offset 5 again.
        assert_eq!(fs::read_dir(dir.path().join("cq/t/0")).unwrap().count(), 2);
        assert!(q.put(5, 777, 1, 0).unwrap());
        assert_eq!(q.unit(5).unwrap().commit_offset, 777);
    }

    #[test]
    fn recorded_ends_spare_the_walk_and_bad_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let qs = queues(dir.path(), 16);
            let q = qs.get_or_create("t", 0);
            for i in 0..5u64 {
                q.put(i, i * 100, 80, 0).unwrap();
            }
            // Garbage past the end that only the walk would look at.
            drop(q);
        }
        let f = dir.path().join("cq/t/0").join(file_name(0));
        let mut b = fs::read(&f).unwrap();
        b[9 * UNIT_LEN + 8] = 1;
        fs::write(&f, &b).unwrap();
        let ends_path = dir.path().join("ends");
        let load = |known: u64| {
            let mut ends = HashMap::new();
            ends.insert(("t".to_string(), 0u32), known);
            ConsumeQueues::load_with_ends(dir.path().join("cq"), 16, &ends, |_, _, _| true).unwrap()
        };
        // The recorded end is used: the walk (which would stop at the garbage) is skipped.
        assert_eq!(load(5).get("t", 0).unwrap().max(), 5);
        // A recorded end that does not fit the file (unit 6 is empty, unit 3 is not at an
        // end) falls back to the walk.
        assert_eq!(load(7).get("t", 0).unwrap().max(), 10);
        // Round trip through the file, bound to the log end.
        let qs = load(5);
        write_ends(&ends_path, 777, &qs).unwrap();
        assert_eq!(read_ends(&ends_path, 777).get(&("t".to_string(), 0)), Some(&5));
        assert!(read_ends(&ends_path, 778).is_empty());
        let mut raw = fs::read(&ends_path).unwrap();
        raw[10] ^= 1;
        fs::write(&ends_path, raw).unwrap();
        assert!(read_ends(&ends_path, 777).is_empty());
    }

    #[test]
    fn late_start_and_retention() {
        let dir = tempfile::tempdir().unwrap();
        let qs = queues(dir.path(), 4);
        let q = qs.get_or_create("t", 0);
        for i in 6..20u64 {
            q.put(i, i * 100, 100, 0).unwrap();
        }
        assert_eq!((q.min(), q.max()), (6, 20));
        assert_eq!(q.read(0, 2).unwrap()[0].queue_offset, 6);
        // Units 6..=11 point below 1200: file [4,8) goes, [8,12) goes, min moves to 12.
        assert_eq!(q.truncate_below(1200).unwrap(), 2);
        assert_eq!((q.min(), q.max()), (12, 20));
        // Everything below: all but the last file go, min == max.
        q.truncate_below(1_000_000).unwrap();
        assert_eq!((q.min(), q.max()), (20, 20));
        assert!(q.read(0, 10).unwrap().is_empty());
        q.put(20, 5000, 10, 0).unwrap();
        assert_eq!(q.read(0, 10).unwrap().len(), 1);
    }

    #[test]
    fn remove_topic_deletes_files() {
        let dir = tempfile::tempdir().unwrap();
        let qs = queues(dir.path(), 4);
        qs.get_or_create("t", 0).put(0, 0, 10, 0).unwrap();
        qs.remove_topic("t").unwrap();
        assert!(qs.get("t", 0).is_none());
        assert!(!dir.path().join("cq/t").exists());
        assert!(qs.queue_ids("t").is_empty());
    }

    proptest! {
        #[test]
        fn reads_match_a_model(upf in 1u64..6, n in 0u64..40, from in 0u64..45, count in 0usize..50) {
            let dir = tempfile::tempdir().unwrap();
            let qs = queues(dir.path(), upf);
            let q = qs.get_or_create("p", 1);
            for i in 0..n {
                q.put(i, i * 7 + 1, 3, i ^ 5).unwrap();
            }
            let got = q.read(from, count);
            if from > n {
                prop_assert!(got.is_err());
            } else {
                let want: Vec<u64> = (from..n.min(from + count as u64)).collect();
                let got: Vec<u64> = got.unwrap().iter().map(|u| u.queue_offset).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
