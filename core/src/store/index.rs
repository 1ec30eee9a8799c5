//! The hash index: msg_id and (topic, key) to commit offsets, in files under `index/` named
//! by the 20-digit commit offset of the first record they index (like RocketMQ's IndexFile).
//!
//! ```text
//! header   64 bytes, eight u64 words: magic, begin_offset, last_offset (commit offset of the
//!          newest record indexed), count (entries), slots, capacity, begin_ts, end_ts
//! slots    `slots` x u32: 1-based number of the newest entry whose hash falls in the slot
//! entries  `capacity` x 24 bytes: key hash u64, commit offset u64, previous entry of the same
//!          slot u32 (0 = none), padding u32
//! ```
//!
//! Hashes collide (64-bit FNV-1a of the key, and many keys share a slot), so every hit is a
//! candidate to verify against the record. Only the dispatcher writes; an entry is published
//! before the slot and the count point at it, so readers walking a chain see complete entries.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::hash::fnv1a64;
use super::meta::sync_dir;
use super::mmap::MappedFile;
use super::record::{u32_at, u64_at};
use super::segment::{file_name, parse_file_name};
use crate::{Error, Result};

const MAGIC: u64 = 0x5844_4959_5252_4546; // "FERRYIDX" little-endian
const HEADER_LEN: usize = 64;
const ENTRY_LEN: usize = 24;
const H_MAGIC: usize = 0;
const H_BEGIN: usize = 8;
const H_LAST: usize = 16;
const H_COUNT: usize = 24;
const H_SLOTS: usize = 32;
const H_CAPACITY: usize = 40;
const H_BEGIN_TS: usize = 48;
const H_END_TS: usize = 56;

/// Hash of the unique-id key of a message.
pub(crate) fn msg_id_hash(msg_id: &str) -> u64 {
    fnv1a64(&[b"U\0", msg_id.as_bytes()])
}

/// Hash of a (topic, key) pair.
pub(crate) fn key_hash(topic: &str, key: &str) -> u64 {
    fnv1a64(&[b"K\0", topic.as_bytes(), b"\0", key.as_bytes()])
}

/// Length of an index file with this geometry.
pub(crate) fn file_len(slots: u32, capacity: u32) -> u64 {
    atomic_end(slots.max(1)) as u64 + u64::from(capacity.max(1)) * ENTRY_LEN as u64
}

fn atomic_end(slots: u32) -> usize {
    (HEADER_LEN + slots as usize * 4).div_ceil(8) * 8
}

/// One index file.
#[derive(Debug)]
pub(crate) struct IndexFile {
    begin: u64,
    slots: u32,
    capacity: u32,
    entries_at: usize,
    file: MappedFile,
    flushed_count: AtomicU64,
}

impl IndexFile {
    fn create(dir: &Path, begin: u64, slots: u32, capacity: u32) -> Result<IndexFile> {
        let path = dir.join(file_name(begin));
        let entries_at = atomic_end(slots);
        let len = entries_at as u64 + u64::from(capacity) * ENTRY_LEN as u64;
        let file = MappedFile::open(&path, len, entries_at, true)?;
        let f = IndexFile { begin, slots, capacity, entries_at, file, flushed_count: AtomicU64::new(0) };
        f.word(H_BEGIN).store(begin, Ordering::Relaxed);
        f.word(H_SLOTS).store(u64::from(slots), Ordering::Relaxed);
        f.word(H_CAPACITY).store(u64::from(capacity), Ordering::Relaxed);
        f.word(H_MAGIC).store(MAGIC, Ordering::Release);
        Ok(f)
    }

    /// Opens an index file; with `verify`, also checks its entries and slots (recovery after
    /// an unclean stop).
    fn open(path: &Path, begin: u64, verify: bool) -> Result<IndexFile> {
        let mut header = [0u8; HEADER_LEN];
        fs::File::open(path).and_then(|mut f| f.read_exact(&mut header)).map_err(|e| Error::io(path, e))?;
        let corrupt = |reason: &str| Error::Corrupt { path: path.to_path_buf(), offset: 0, reason: reason.to_string() };
        if u64_at(&header, H_MAGIC) != MAGIC || u64_at(&header, H_BEGIN) != begin {
            return Err(corrupt("bad index header"));
        }
        let slots = u32::try_from(u64_at(&header, H_SLOTS)).map_err(|_| corrupt("bad slot count"))?;
        let capacity = u32::try_from(u64_at(&header, H_CAPACITY)).map_err(|_| corrupt("bad capacity"))?;
        if slots == 0 || capacity == 0 {
            return Err(corrupt("empty index geometry"));
        }
        let entries_at = atomic_end(slots);
        let len = entries_at as u64 + u64::from(capacity) * ENTRY_LEN as u64;
        let mut file = MappedFile::open(path, len, entries_at, false)?;
        let count = u64_at(&header, H_COUNT).min(u64::from(capacity));
        file.set_published(entries_at + count as usize * ENTRY_LEN);
        let f = IndexFile { begin, slots, capacity, entries_at, file, flushed_count: AtomicU64::new(count) };
        if verify {
            f.check_structure().map_err(|reason| corrupt(&reason))?;
        }
        Ok(f)
    }

    /// Checks what bit rot would break: every entry points into this file's range of the log
    /// and back to an older entry, every slot to an existing entry.
    fn check_structure(&self) -> std::result::Result<(), String> {
        let count = self.count();
        let last = self.last_offset();
        for i in 1..=count {
            let (_, off, prev) = self.entry(i).ok_or_else(|| format!("entry {i} unreadable"))?;
            if off < self.begin || off > last || u64::from(prev) >= i {
                return Err(format!("entry {i} is implausible"));
            }
        }
        for s in 0..self.slots as usize {
            let v = self.file.atomic_u32(HEADER_LEN + s * 4).map_or(0, |a| a.load(Ordering::Relaxed));
            if u64::from(v) > count {
                return Err(format!("slot {s} names entry {v} of {count}"));
            }
        }
        Ok(())
    }

    fn word(&self, at: usize) -> &AtomicU64 {
        // The header words are inside the atomic region by construction.
        self.file.atomic_u64(at).unwrap_or_else(|| unreachable!("header word {at} outside the atomic region"))
    }

    fn slot(&self, hash: u64) -> &AtomicU32 {
        let at = HEADER_LEN + (hash % u64::from(self.slots)) as usize * 4;
        self.file.atomic_u32(at).unwrap_or_else(|| unreachable!("slot {at} outside the atomic region"))
    }

    /// Entries written.
    pub(crate) fn count(&self) -> u64 {
        self.word(H_COUNT).load(Ordering::Acquire)
    }

    /// Commit offset of the first record indexed here (the file's name).
    pub(crate) fn begin(&self) -> u64 {
        self.begin
    }

    /// Commit offset of the newest record indexed here.
    pub(crate) fn last_offset(&self) -> u64 {
        self.word(H_LAST).load(Ordering::Acquire)
    }

    fn entry(&self, i: u64) -> Option<(u64, u64, u32)> {
        let at = self.entries_at + (i.checked_sub(1)? as usize) * ENTRY_LEN;
        let b = self.file.read(at, ENTRY_LEN)?;
        Some((u64_at(b, 0), u64_at(b, 8), u32_at(b, 16)))
    }

    /// Adds an entry; false if the file is full.
    fn put(&self, hash: u64, commit_offset: u64, store_ts: u64) -> Result<bool> {
        let count = self.word(H_COUNT).load(Ordering::Relaxed);
        if count >= u64::from(self.capacity) {
            return Ok(false);
        }
        let slot = self.slot(hash);
        let mut head = slot.load(Ordering::Relaxed);
        if u64::from(head) > count {
            head = 0;
        }
        let mut e = [0u8; ENTRY_LEN];
        e[0..8].copy_from_slice(&hash.to_le_bytes());
        e[8..16].copy_from_slice(&commit_offset.to_le_bytes());
        e[16..20].copy_from_slice(&head.to_le_bytes());
        let at = self.entries_at + count as usize * ENTRY_LEN;
        self.file.write(at, &e)?;
        self.file.publish(at + ENTRY_LEN);
        slot.store((count + 1) as u32, Ordering::Release);
        if count == 0 {
            self.word(H_BEGIN_TS).store(store_ts, Ordering::Relaxed);
        }
        self.word(H_END_TS).fetch_max(store_ts, Ordering::Relaxed);
        self.word(H_LAST).fetch_max(commit_offset, Ordering::Release);
        self.word(H_COUNT).store(count + 1, Ordering::Release);
        Ok(true)
    }

    /// Commit offsets of entries with exactly this hash, newest first.
    fn get(&self, hash: u64, out: &mut Vec<u64>) {
        // The entry a slot names was published before the slot was stored, and `entry`
        // refuses anything unpublished, so the walk only ever sees complete entries.
        let mut i = u64::from(self.slot(hash).load(Ordering::Acquire));
        while i != 0 {
            let Some((h, off, prev)) = self.entry(i) else {
                break;
            };
            if h == hash {
                out.push(off);
            }
            if u64::from(prev) >= i {
                break;
            }
            i = u64::from(prev);
        }
    }

    /// Drops entries past `count` (recovery): rebuilds the slot table from the kept entries.
    fn truncate(&mut self, count: u64) {
        let count = count.min(u64::from(self.capacity));
        self.file.set_published(self.entries_at + count as usize * ENTRY_LEN);
        for s in 0..self.slots as usize {
            if let Some(a) = self.file.atomic_u32(HEADER_LEN + s * 4) {
                a.store(0, Ordering::Relaxed);
            }
        }
        let mut last = 0;
        for i in 1..=count {
            if let Some((h, off, _)) = self.entry(i) {
                self.slot(h).store(i as u32, Ordering::Relaxed);
                last = last.max(off);
            }
        }
        self.word(H_LAST).store(last, Ordering::Relaxed);
        self.word(H_COUNT).store(count, Ordering::Release);
        self.flushed_count.store(0, Ordering::Relaxed);
    }

    fn flush(&self) -> std::io::Result<()> {
        let count = self.count();
        if count == self.flushed_count.load(Ordering::Acquire) {
            return Ok(());
        }
        self.file.flush_all()?;
        self.flushed_count.store(count, Ordering::Release);
        Ok(())
    }
}

/// Where the index stands, for the checkpoint: the active file and its entry count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IndexMark {
    /// `begin` of the active file (u64::MAX: no file yet).
    pub(crate) begin: u64,
    /// Entries in it.
    pub(crate) count: u64,
}

/// All index files of a store.
#[derive(Debug)]
pub(crate) struct Index {
    dir: PathBuf,
    slots: u32,
    capacity: u32,
    files: RwLock<Vec<Arc<IndexFile>>>,
    /// The newest entry made since loading: (commit offset, position among its record's
    /// entries). See [`Index::put_record`].
    made: Mutex<Option<(u64, usize)>>,
}

impl Index {
    /// Loads the index in `dir`. With `truncate_to`, recovery cuts it back to that mark
    /// (files after it are deleted, the marked file keeps its first `count` entries); if the
    /// mark names no file, every file is deleted and the caller re-indexes from the log start.
    /// Returns the index and whether it was wiped.
    pub(crate) fn load(
        dir: PathBuf,
        slots: u32,
        capacity: u32,
        truncate_to: Option<IndexMark>,
    ) -> Result<(Index, bool)> {
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            if let Some(begin) = entry.file_name().to_str().and_then(parse_file_name) {
                names.push((begin, entry.path()));
            }
        }
        names.sort();
        let mut wiped = false;
        let mut files = Vec::new();
        let remove = |p: &Path| fs::remove_file(p).map_err(|e| Error::io(p, e));
        match truncate_to {
            None => {
                for (begin, path) in names {
                    match IndexFile::open(&path, begin, false) {
                        Ok(f) => files.push(f),
                        Err(e) => {
                            // A clean stop never leaves a bad index file; treat it as
                            // missing data rather than refusing to start.
                            tracing::warn!(error = %e, "index file unreadable; rebuilding the index");
                            wiped = true;
                            break;
                        }
                    }
                }
            }
            Some(mark) => {
                let known = names.iter().any(|(b, _)| *b == mark.begin);
                for (begin, path) in names {
                    if !known || begin > mark.begin {
                        remove(&path)?;
                        continue;
                    }
                    match IndexFile::open(&path, begin, true) {
                        Ok(mut f) => {
                            if begin == mark.begin {
                                f.truncate(mark.count);
                            }
                            files.push(f);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "index file unreadable; rebuilding the index");
                            wiped = true;
                            break;
                        }
                    }
                }
                wiped |= !known && mark.begin != u64::MAX;
            }
        }
        if wiped {
            files.clear();
            for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                remove(&entry.path())?;
            }
        }
        sync_dir(&dir)?;
        Ok((
            Index {
                dir,
                slots: slots.max(1),
                capacity: capacity.max(1),
                files: RwLock::new(files.into_iter().map(Arc::new).collect()),
                made: Mutex::new(None),
            },
            wiped,
        ))
    }

    fn active(&self) -> Option<Arc<IndexFile>> {
        self.files.read().unwrap_or_else(|p| p.into_inner()).last().cloned()
    }

    /// Adds one entry for the record at `commit_offset`.
    fn put(&self, hash: u64, commit_offset: u64, store_ts: u64) -> Result<()> {
        if let Some(f) = self.active() {
            if f.put(hash, commit_offset, store_ts)? {
                return Ok(());
            }
        }
        let f = Arc::new(IndexFile::create(&self.dir, commit_offset, self.slots, self.capacity)?);
        sync_dir(&self.dir)?;
        self.files.write().unwrap_or_else(|p| p.into_inner()).push(f.clone());
        if !f.put(hash, commit_offset, store_ts)? {
            return Err(Error::invalid("/index_entries_per_file", "must be at least 1"));
        }
        Ok(())
    }

    /// Indexes the record at `commit_offset` under each of `hashes`, in order. Records come
    /// in log order; entries this index already made (the dispatcher indexes a chunk again
    /// when a full disk stopped it part-way, possibly inside a record) are skipped, so a retry
    /// adds nothing twice.
    pub(crate) fn put_record(
        &self,
        commit_offset: u64,
        store_ts: u64,
        hashes: impl IntoIterator<Item = u64>,
    ) -> Result<()> {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        for (nth, hash) in hashes.into_iter().enumerate() {
            if made.is_some_and(|done| (commit_offset, nth) <= done) {
                continue;
            }
            self.put(hash, commit_offset, store_ts)?;
            *made = Some((commit_offset, nth));
        }
        Ok(())
    }

    /// The active file and its count.
    pub(crate) fn mark(&self) -> IndexMark {
        match self.active() {
            Some(f) => IndexMark { begin: f.begin(), count: f.count() },
            None => IndexMark { begin: u64::MAX, count: 0 },
        }
    }

    /// Visits candidate commit offsets for `hash` (unverified) of records stored in
    /// `[from_ts, to_ts)`, skipping every file whose time range misses it: newest first, or
    /// oldest first, one file at a time, until `visit` returns false. Returns the number of
    /// files searched.
    pub(crate) fn search(
        &self,
        hash: u64,
        from_ts: u64,
        to_ts: u64,
        newest_first: bool,
        mut visit: impl FnMut(u64) -> bool,
    ) -> usize {
        let files: Vec<Arc<IndexFile>> = self.files.read().unwrap_or_else(|p| p.into_inner()).clone();
        let n = files.len();
        let order: Box<dyn Iterator<Item = usize>> = if newest_first { Box::new((0..n).rev()) } else { Box::new(0..n) };
        let mut searched = 0;
        let mut hits = Vec::new();
        for i in order {
            let f = &files[i];
            let begin_ts = f.word(H_BEGIN_TS).load(Ordering::Acquire);
            // The active file's end time can trail an entry being added: never prune it by it.
            let end_ts = if i + 1 == n { u64::MAX } else { f.word(H_END_TS).load(Ordering::Acquire) };
            if f.count() == 0 || begin_ts >= to_ts || end_ts < from_ts {
                continue;
            }
            searched += 1;
            hits.clear();
            f.get(hash, &mut hits);
            hits.sort_unstable();
            hits.dedup();
            if newest_first {
                hits.reverse();
            }
            for &off in &hits {
                if !visit(off) {
                    return searched;
                }
            }
        }
        searched
    }

    /// Candidate commit offsets for `hash`, ascending, deduplicated (unverified).
    pub(crate) fn candidates(&self, hash: u64) -> Vec<u64> {
        let files: Vec<Arc<IndexFile>> = self.files.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = Vec::new();
        for f in files.iter().rev() {
            f.get(hash, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// msyncs files with entries added since their last flush.
    pub(crate) fn flush(&self) -> std::io::Result<()> {
        let files: Vec<Arc<IndexFile>> = self.files.read().unwrap_or_else(|p| p.into_inner()).clone();
        for f in files {
            f.flush()?;
        }
        Ok(())
    }

    /// Deletes files (never the active one) whose records all lie below `log_min`.
    pub(crate) fn truncate_below(&self, log_min: u64) -> Result<usize> {
        let mut gone = Vec::new();
        {
            let mut files = self.files.write().unwrap_or_else(|p| p.into_inner());
            while files.len() > 1 && files[0].last_offset() < log_min {
                gone.push(files.remove(0));
            }
        }
        for f in &gone {
            let p = f.file.path();
            if let Err(e) = fs::remove_file(p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(Error::io(p, e));
                }
            }
        }
        Ok(gone.len())
    }

    /// Number of index files.
    #[cfg(test)]
    pub(crate) fn file_count(&self) -> usize {
        self.files.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn load(dir: &Path, slots: u32, cap: u32, mark: Option<IndexMark>) -> (Index, bool) {
        Index::load(dir.join("index"), slots, cap, mark).unwrap()
    }

    #[test]
    fn put_get_roll_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (idx, _) = load(dir.path(), 4, 3, None);
        for off in 0..10u64 {
            idx.put_record(off * 10, off, [msg_id_hash(&format!("m{}", off % 4))]).unwrap();
        }
        assert_eq!(idx.file_count(), 4);
        assert_eq!(idx.candidates(msg_id_hash("m1")), vec![10, 50, 90]);
        assert!(idx.candidates(msg_id_hash("nope")).is_empty());
        let mark = idx.mark();
        assert_eq!(mark, IndexMark { begin: 90, count: 1 });
        idx.flush().unwrap();
        drop(idx);
        let (idx, wiped) = load(dir.path(), 4, 3, None);
        assert!(!wiped);
        assert_eq!(idx.candidates(msg_id_hash("m1")), vec![10, 50, 90]);
        // Retention: files whose newest record is below 60 go (not the active one).
        assert_eq!(idx.truncate_below(60).unwrap(), 2);
        assert_eq!(idx.candidates(msg_id_hash("m1")), vec![90]);
    }

    #[test]
    fn truncate_to_mark_forgets_later_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (idx, _) = load(dir.path(), 2, 4, None);
        for off in 0..6u64 {
            idx.put_record(off, 0, [key_hash("t", "k")]).unwrap();
        }
        drop(idx);
        let mark = IndexMark { begin: 0, count: 2 };
        let (idx, wiped) = load(dir.path(), 2, 4, Some(mark));
        assert!(!wiped);
        assert_eq!(idx.file_count(), 1);
        assert_eq!(idx.candidates(key_hash("t", "k")), vec![0, 1]);
        idx.put_record(2, 0, [key_hash("t", "k")]).unwrap();
        assert_eq!(idx.candidates(key_hash("t", "k")), vec![0, 1, 2]);
        drop(idx);
        let (idx, wiped) = load(dir.path(), 2, 4, Some(IndexMark { begin: 77, count: 1 }));
        assert!(wiped);
        assert_eq!(idx.file_count(), 0);
    }

    /// The dispatcher publishes progress per chunk of records; when a full disk stops a chunk
    /// part-way it indexes the chunk again from its start. That must not add entries twice,
    /// nor create a second file under the name of one it already made (which held a full
    /// file's count and failed the dispatcher: "must be at least 1").
    #[test]
    fn indexing_records_again_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (idx, _) = load(dir.path(), 4, 3, None);
        let record = |off: u64| [msg_id_hash(&format!("m{off}")), key_hash("t", &format!("k{}", off % 2))];
        for off in 0..10u64 {
            idx.put_record(off * 10, off, record(off)).unwrap();
        }
        let files = idx.file_count();
        let mark = idx.mark();
        // Again from the start, and again from the middle of record 4 (its first entry made).
        for off in 0..10u64 {
            idx.put_record(off * 10, off, record(off)).unwrap();
        }
        idx.put_record(40, 4, record(4)[..1].iter().copied()).unwrap();
        for off in 4..10u64 {
            idx.put_record(off * 10, off, record(off)).unwrap();
        }
        assert_eq!(idx.file_count(), files);
        assert_eq!(idx.mark(), mark);
        assert_eq!(idx.candidates(key_hash("t", "k1")), vec![10, 30, 50, 70, 90]);
        assert_eq!(idx.candidates(msg_id_hash("m4")), vec![40]);
        // New records go on as before.
        idx.put_record(100, 10, record(10)).unwrap();
        assert_eq!(idx.candidates(key_hash("t", "k0")), vec![0, 20, 40, 60, 80, 100]);
    }

    #[test]
    fn search_skips_files_outside_the_time_range_and_stops_early() {
        let dir = tempfile::tempdir().unwrap();
        let (idx, _) = load(dir.path(), 4, 10, None);
        // Ten files of ten entries; entry k stored at time 1000 + k, all with the same key.
        for k in 0..100u64 {
            idx.put_record(k * 10, 1000 + k, [key_hash("t", "k")]).unwrap();
        }
        assert_eq!(idx.file_count(), 10);
        let mut got = Vec::new();
        let searched = idx.search(key_hash("t", "k"), 1035, 1045, false, |o| {
            got.push(o);
            true
        });
        assert_eq!(searched, 2, "only the two files covering the range");
        assert_eq!(got, (30..50).map(|k| k * 10).collect::<Vec<_>>());
        // Newest first, stop after three.
        let mut got = Vec::new();
        let searched = idx.search(key_hash("t", "k"), 0, u64::MAX, true, |o| {
            got.push(o);
            got.len() < 3
        });
        assert_eq!(searched, 1);
        assert_eq!(got, vec![990, 980, 970]);
    }

    proptest! {
        #[test]
        fn lookups_match_a_model(keys in proptest::collection::vec(0u8..20, 1..200), slots in 1u32..8, cap in 1u32..30) {
            let dir = tempfile::tempdir().unwrap();
            let (idx, _) = load(dir.path(), slots, cap, None);
            let mut model: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
            for (off, k) in keys.iter().enumerate() {
                idx.put_record(off as u64, 0, [key_hash("t", &k.to_string())]).unwrap();
                model.entry(*k).or_default().push(off as u64);
            }
            for k in 0..20u8 {
                let want = model.get(&k).cloned().unwrap_or_default();
                prop_assert_eq!(idx.candidates(key_hash("t", &k.to_string())), want);
            }
        }
    }
}
