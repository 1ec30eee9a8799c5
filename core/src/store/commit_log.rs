//! The commit log: every record of every topic, appended to a chain of fixed-size segments.
//!
//! One append lock serialises writers: it assigns the commit offset, the queue offset (next
//! of the topic/queue) and a non-decreasing store timestamp, copies the pre-encoded record into
//! the active segment and publishes the new end (`write_pos`) when the whole append (or batch)
//! is in place. Readers and the dispatcher never look at or past `write_pos`.
//!
//! How the bytes get in: in async mode the record is copied through the mapping (a memcpy, no
//! system call). In sync mode it is copied into the same page cache with pwrite(2), and only
//! read through the mapping. The reason is the msync that follows every group commit: msync of
//! pages written through a shared mapping must write-protect them again (a TLB shootdown to
//! every CPU running the process, and a page fault on the next append to the page). Measured
//! with 16 sync appenders on this project's 2-vCPU test machine, that made each group-commit
//! msync about 60 µs (30 %) slower. Pages written with pwrite are never mapped writable, so the
//! msync only writes them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::message::{AppendResult, StoredMessage};
use super::meta::sync_dir;
use super::record::{self, EncodedTail, Placement, RecordView, FILLER_RESERVE, MAGIC_MESSAGE};
use super::segment::Segment;
use crate::{Error, Result};

/// The next offset of every queue, by topic and queue id: looked up twice per appended
/// record by the writer thread, so hashed with FxHash rather than SipHash (topic names come
/// from operators, queue ids are small).
pub(crate) type QueueOffsets = rustc_hash::FxHashMap<String, rustc_hash::FxHashMap<u32, u64>>;

/// The append side: held under the append lock.
struct Appender {
    active: Arc<Segment>,
    pos: u64,
    last_record: u64,
    last_store_ts: u64,
    queue_offsets: QueueOffsets,
}

/// The commit log of one store.
pub(crate) struct CommitLog {
    dir: PathBuf,
    segment_bytes: u64,
    /// Write records with pwrite(2) rather than through the mapping (sync mode; see
    /// `MappedFile::pwrite`).
    pwrite: bool,
    segments: RwLock<Vec<Arc<Segment>>>,
    write_pos: AtomicU64,
    /// The log end when this process opened the store: every record from here on was
    /// written by this process.
    opened_at: u64,
    min_offset: AtomicU64,
    appender: Mutex<Appender>,
    /// Set while the dispatcher uses the space reserve (see [`CommitLog::refuse_growth`]).
    growth_refused: AtomicBool,
}

impl std::fmt::Debug for CommitLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitLog")
            .field("dir", &self.dir)
            .field("write_pos", &self.write_pos())
            .finish_non_exhaustive()
    }
}

/// Why an offset does not name a record.
fn out_of_range(offset: u64, min: u64, max: u64) -> Error {
    Error::OffsetOutOfRange { topic: String::new(), queue_id: 0, offset, min, max }
}

impl CommitLog {
    /// Builds the log from recovered segments (sorted, contiguous, the last one active) whose
    /// published ends are set, with `end` the log end inside or at the end of the last segment.
    pub(crate) fn new(
        dir: PathBuf,
        segment_bytes: u64,
        pwrite: bool,
        segments: Vec<Segment>,
        end: u64,
        last_record: u64,
        last_store_ts: u64,
    ) -> Result<CommitLog> {
        let mut segments: Vec<Arc<Segment>> = segments.into_iter().map(Arc::new).collect();
        if segments.last().is_none_or(|s| end >= s.end()) {
            let base = segments.last().map_or(end, |s| s.end());
            let seg = Segment::create(&dir, base, segment_bytes)?;
            sync_dir(&dir)?;
            segments.push(Arc::new(seg));
        }
        let active = segments.last().cloned().ok_or_else(|| Error::Unavailable("no segment".into()))?;
        let min = segments.first().map_or(end, |s| s.base());
        let pos = end.max(active.base());
        Ok(CommitLog {
            dir,
            segment_bytes,
            pwrite,
            segments: RwLock::new(segments),
            write_pos: AtomicU64::new(pos),
            opened_at: pos,
            min_offset: AtomicU64::new(min),
            appender: Mutex::new(Appender {
                active,
                pos,
                last_record,
                last_store_ts,
                queue_offsets: QueueOffsets::default(),
            }),
            growth_refused: AtomicBool::new(false),
        })
    }

    /// From now on refuses appends and new segments (the dispatcher needs the space reserve,
    /// which `free` deletes, for the queue and index entries of what is already
    /// acknowledged); returns what `free` returned. Taken under the append lock, so no append
    /// that passed the check before can create a segment in the freed space after.
    pub(crate) fn refuse_growth(&self, free: &dyn Fn() -> bool) -> bool {
        let _a = self.lock();
        self.growth_refused.store(true, Ordering::SeqCst);
        free()
    }

    /// Takes appends again if `take` (allocating the space reserve again) succeeds; whether
    /// it did.
    pub(crate) fn allow_growth_if(&self, take: &dyn Fn() -> bool) -> bool {
        let _a = self.lock();
        if !take() {
            return false;
        }
        self.growth_refused.store(false, Ordering::SeqCst);
        true
    }

    /// Whether appends are refused for lack of space (see [`CommitLog::refuse_growth`]).
    pub(crate) fn growth_refused(&self) -> bool {
        self.growth_refused.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Appender> {
        self.appender.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory of the segments.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// End of the published log: every record below is complete.
    pub(crate) fn write_pos(&self) -> u64 {
        self.write_pos.load(Ordering::Acquire)
    }

    /// Lowest retained commit offset.
    pub(crate) fn min_offset(&self) -> u64 {
        self.min_offset.load(Ordering::Acquire)
    }

    /// Largest record (header included) that fits into a segment.
    pub(crate) fn max_record_len(&self) -> u64 {
        self.segment_bytes.saturating_sub(FILLER_RESERVE)
    }

    /// Seeds the next queue offsets (after recovery).
    pub(crate) fn set_queue_offsets(&self, table: QueueOffsets) {
        self.lock().queue_offsets = table;
    }

    /// Forgets a deleted topic's next queue offsets: a topic created again under its name
    /// starts its queues at 0, as it does after a restart (which rebuilds the offsets from the
    /// consume queues, and the deleted topic has none).
    pub(crate) fn forget_queue_offsets(&self, topic: &str) {
        self.lock().queue_offsets.remove(topic);
    }

    /// `(write_pos, start of the last record or u64::MAX, last store ts)` under the append
    /// lock, for the shutdown checkpoint.
    pub(crate) fn tail_snapshot(&self) -> (u64, u64, u64) {
        let a = self.lock();
        (a.pos, a.last_record, a.last_store_ts)
    }

    /// Appends the records in order, as one contiguous batch when there is more than one. On
    /// success the records are published; returns their placements and the new log end.
    ///
    /// Every segment the batch will need is created (allocated, mapped, its directory
    /// fsynced) before the first byte is written, so a full disk fails the append with the log
    /// unchanged and a later append can try again. On error the flag says whether the store
    /// must be poisoned: a directory fsync failed, or a write failed in the middle of a batch
    /// (its first records are already in place). A failed write of the batch's first record
    /// leaves nothing published; the next append overwrites those bytes.
    pub(crate) fn append(
        &self,
        tails: &mut [EncodedTail],
        now_ms: u64,
    ) -> Result<(Vec<AppendResult>, u64), (Error, bool)> {
        let mut a = self.lock();
        let mut fresh = self.create_segments(&a, tails)?;
        let store_ts = now_ms.max(a.last_store_ts);
        a.last_store_ts = store_ts;
        let mut results = Vec::with_capacity(tails.len());
        let n = tails.len();
        // In pwrite mode the records of one segment go out in one pwrite: they are copied into
        // `staged` (starting at `staged_at` in the active segment) and written before a roll and
        // at the end. Until the first write succeeds the appender's state can be put back.
        let mut staged: Vec<u8> = if self.pwrite {
            // Sized once: growing it by doubling copied a batch about twice more.
            Vec::with_capacity(tails.iter().map(|t| t.record_len()).sum::<usize>())
        } else {
            Vec::new()
        };
        let mut staged_at = 0usize;
        let mut written_before = false;
        let start = (a.pos, a.last_record);
        // Nothing of the batch is in the log yet: the appender's state goes back to `start`.
        let fail = |a: &mut Appender, tails: &[EncodedTail], results: &[AppendResult], e: Error, written: bool| {
            if !written {
                (a.pos, a.last_record) = start;
                for (tail, r) in tails.iter().zip(results).rev() {
                    if let Some(next) = a.queue_offsets.get_mut(&tail.topic).and_then(|m| m.get_mut(&tail.queue_id)) {
                        *next = r.queue_offset;
                    }
                }
            }
            (e, written)
        };
        for i in 0..n {
            let len = tails[i].record_len() as u64;
            if a.pos - a.active.base() + len + FILLER_RESERVE > a.active.len() {
                if !staged.is_empty() {
                    if let Err(e) = write_staged(&a.active, staged_at, &mut staged) {
                        return Err(fail(&mut a, tails, &results, e, written_before));
                    }
                    written_before = true;
                }
                let Some(seg) = fresh.pop() else {
                    let e = Error::Unavailable("no segment prepared".into());
                    return Err(fail(&mut a, tails, &results, e, written_before));
                };
                if let Err(e) = self.roll(&mut a, seg) {
                    return Err(fail(&mut a, tails, &results, e, written_before || i > 0));
                }
                if i == 0 {
                    // A filler ends the old segment: the new start is a valid log end.
                    self.write_pos.store(a.pos, Ordering::SeqCst);
                }
                written_before |= i > 0;
            }
            let tail = &mut tails[i];
            let queue_offset =
                a.queue_offsets.get(&tail.topic).and_then(|m| m.get(&tail.queue_id)).copied().unwrap_or(0);
            let p = Placement { queue_offset, commit_offset: a.pos, store_ts, batch_continues: i + 1 < n };
            let local = (a.pos - a.active.base()) as usize;
            let rec = tail.finish(p);
            if self.pwrite {
                if staged.is_empty() {
                    staged_at = local;
                }
                staged.extend_from_slice(rec);
            } else {
                let file = a.active.file();
                if let Err(e) = file.write(local, rec) {
                    return Err(fail(&mut a, tails, &results, e, i > 0));
                }
                file.publish(local + len as usize);
            }
            a.active.note_store_ts(store_ts);
            match a.queue_offsets.get_mut(&tail.topic) {
                Some(m) => {
                    m.insert(tail.queue_id, queue_offset + 1);
                }
                None => {
                    let m = rustc_hash::FxHashMap::from_iter([(tail.queue_id, queue_offset + 1)]);
                    a.queue_offsets.insert(tail.topic.clone(), m);
                }
            }
            results.push(AppendResult { commit_offset: a.pos, size: len as u32, queue_offset, store_ts });
            a.last_record = a.pos;
            a.pos += len;
        }
        if !staged.is_empty() {
            if let Err(e) = write_staged(&a.active, staged_at, &mut staged) {
                return Err(fail(&mut a, tails, &results, e, written_before));
            }
        }
        let end = a.pos;
        self.write_pos.store(end, Ordering::SeqCst);
        Ok((results, end))
    }

    /// Creates the segments that appending `tails` at the current position will roll into
    /// (in reverse order, so `pop` gives the next). On failure removes the ones it created;
    /// the flag says whether the store must be poisoned (the directory fsync failed).
    fn create_segments(&self, a: &Appender, tails: &[EncodedTail]) -> Result<Vec<Segment>, (Error, bool)> {
        let mut pos = a.pos;
        let (mut seg_base, mut seg_len) = (a.active.base(), a.active.len());
        let mut bases = Vec::new();
        for tail in tails {
            let len = tail.record_len() as u64;
            if pos - seg_base + len + FILLER_RESERVE > seg_len {
                seg_base += seg_len;
                seg_len = self.segment_bytes;
                bases.push(seg_base);
                pos = seg_base;
            }
            pos += len;
        }
        if bases.is_empty() {
            return Ok(Vec::new());
        }
        if self.growth_refused() {
            let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
            return Err((Error::io(&self.dir, e), false));
        }
        let mut made = Vec::with_capacity(bases.len());
        let discard = |made: Vec<Segment>| {
            for seg in made {
                let path = seg.path().to_path_buf();
                drop(seg);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "removing an unused segment failed");
                }
            }
        };
        for base in bases {
            match Segment::create(&self.dir, base, self.segment_bytes) {
                Ok(seg) => made.push(seg),
                Err(e) => {
                    discard(made);
                    return Err((e, false));
                }
            }
        }
        if let Err(e) = sync_dir(&self.dir) {
            discard(made);
            return Err((e, true));
        }
        made.reverse();
        Ok(made)
    }

    /// Seals the active segment with a filler and makes `seg` (created for this position)
    /// the active one.
    fn roll(&self, a: &mut Appender, seg: Segment) -> Result<()> {
        if a.pos < a.active.end() {
            let local = (a.pos - a.active.base()) as usize;
            let len = a.active.len() as usize - local;
            // The segment's own newest record, not the store time of the append that rolls.
            let ts = a.active.last_store_ts();
            let file = a.active.file();
            file.write_with(local, len, |dst| record::write_filler(dst, ts))?;
            file.publish(local + len);
            a.pos = a.active.end();
        }
        if seg.base() != a.pos {
            return Err(Error::Unavailable(format!("segment prepared at {} for position {}", seg.base(), a.pos)));
        }
        let seg = Arc::new(seg);
        self.segments.write().unwrap_or_else(|p| p.into_inner()).push(seg.clone());
        a.active = seg;
        tracing::debug!(base = a.pos, "commit log rolled to a new segment");
        Ok(())
    }

    /// One step of preparing the active segment ahead of the appender (async mode, which
    /// writes through the mapping): faults in the next `chunk` bytes if less than `ahead`
    /// bytes past the write position are prepared, which keeps page-cache allocation and
    /// zeroing off the append path. Returns whether it did anything (call again until it does
    /// not). It never msyncs: every msync of the log is a group commit (see `Flusher::lead`),
    /// so the msync that learns of a write-back error is always one that decides what is
    /// acknowledged.
    pub(crate) fn prepare_step(&self, ahead: u64, chunk: u64) -> bool {
        let Some(seg) = self.segments.read().unwrap_or_else(|p| p.into_inner()).last().cloned() else {
            return false;
        };
        let local = self.write_pos().saturating_sub(seg.base());
        seg.prepare(local, local.saturating_add(ahead), chunk)
    }

    /// One step of zero-writing the active segment ahead of the appender (sync mode, which
    /// writes with pwrite and msyncs every group commit): zeroes the next chunk between `gap`
    /// and `ahead` bytes past the write position, so group commits land on blocks the file
    /// system counts as written (see [`MappedFile::zero_ahead`](super::mmap::MappedFile)).
    /// Returns whether it did anything (call again until it does not).
    pub(crate) fn zero_step(&self, ahead: u64, gap: u64) -> bool {
        let Some(seg) = self.segments.read().unwrap_or_else(|p| p.into_inner()).last().cloned() else {
            return false;
        };
        let local = self.write_pos().saturating_sub(seg.base());
        seg.zero_ahead(local, local.saturating_add(ahead), gap)
    }

    /// The segment holding `offset`, if retained.
    pub(crate) fn segment_for(&self, offset: u64) -> Option<Arc<Segment>> {
        let segs = self.segments.read().unwrap_or_else(|p| p.into_inner());
        let i = segs.partition_point(|s| s.base() <= offset);
        let seg = segs.get(i.checked_sub(1)?)?;
        seg.contains(offset).then(|| seg.clone())
    }

    /// All segments, oldest first.
    pub(crate) fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Number of segments.
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// msyncs `[from, to)` of the log.
    pub(crate) fn flush(&self, from: u64, to: u64) -> std::io::Result<()> {
        if to <= from {
            return Ok(());
        }
        let segs: Vec<Arc<Segment>> = {
            let segs = self.segments.read().unwrap_or_else(|p| p.into_inner());
            segs.iter().filter(|s| s.end() > from && s.base() < to).cloned().collect()
        };
        for s in segs {
            let a = from.max(s.base()) - s.base();
            let b = to.min(s.end()) - s.base();
            s.file().flush_range(a as usize, (b - a) as usize)?;
        }
        Ok(())
    }

    /// Calls `f` with the parsed record at `offset` (no copy, CRC checked only if
    /// `verify_crc`).
    pub(crate) fn with_record<R>(
        &self,
        offset: u64,
        verify_crc: bool,
        f: impl FnOnce(&RecordView<'_>) -> R,
    ) -> Result<R> {
        let max = self.write_pos();
        let min = self.min_offset();
        if offset >= max || offset < min {
            return Err(out_of_range(offset, min, max));
        }
        let seg = self.segment_for(offset).ok_or_else(|| out_of_range(offset, min, max))?;
        let local = offset - seg.base();
        let bytes = record_bytes(&seg, local, offset)?;
        let view = record::parse(bytes, verify_crc).map_err(|reason| Error::Corrupt {
            path: seg.path().to_path_buf(),
            offset: local,
            reason: reason.to_string(),
        })?;
        if view.commit_offset != offset {
            return Err(no_record(offset));
        }
        Ok(f(&view))
    }

    /// The log end when this process opened the store: records from here on are its own.
    pub(crate) fn opened_at(&self) -> u64 {
        self.opened_at
    }

    /// Reads the record at `offset`, copying only that record, and checks its CRC if
    /// `verify_crc`.
    pub(crate) fn read(&self, offset: u64, verify_crc: bool) -> Result<StoredMessage> {
        let max = self.write_pos();
        let min = self.min_offset();
        if offset >= max || offset < min {
            return Err(out_of_range(offset, min, max));
        }
        let seg = self.segment_for(offset).ok_or_else(|| out_of_range(offset, min, max))?;
        let local = offset - seg.base();
        let bytes = record_bytes(&seg, local, offset)?;
        let msg = record::decode(bytes, verify_crc).map_err(|reason| Error::Corrupt {
            path: seg.path().to_path_buf(),
            offset: local,
            reason: reason.to_string(),
        })?;
        if msg.commit_offset != offset {
            return Err(no_record(offset));
        }
        Ok(msg)
    }

    /// Whether something the log can hold starts at `offset`: a message record carrying that
    /// commit offset, an end-of-segment filler, or a hole; or `offset` is a segment start.
    pub(crate) fn boundary_at(&self, offset: u64) -> bool {
        let Some(seg) = self.segment_for(offset) else {
            return false;
        };
        let local = offset - seg.base();
        if local == 0 {
            return true;
        }
        let Some(h) = seg.read(local, 8) else {
            return false;
        };
        let (len, magic) = record::peek(h);
        match magic {
            MAGIC_MESSAGE => seg.read(local, record::HEADER_LEN).is_some_and(|h| record::u64_at(h, 24) == offset),
            record::MAGIC_BLANK => u64::from(len) == seg.len() - local,
            record::MAGIC_HOLE => {
                seg.read(local, record::HOLE_HEADER_LEN).and_then(|h| record::read_hole(h, offset)).is_some()
            }
            _ => false,
        }
    }

    /// Store timestamp of the record at `offset`, reading only its header.
    pub(crate) fn store_ts_at(&self, offset: u64) -> Result<u64> {
        let max = self.write_pos();
        let min = self.min_offset();
        if offset >= max || offset < min {
            return Err(out_of_range(offset, min, max));
        }
        let seg = self.segment_for(offset).ok_or_else(|| out_of_range(offset, min, max))?;
        let h = seg.read(offset - seg.base(), record::HEADER_LEN).ok_or_else(|| no_record(offset))?;
        if record::peek(h).1 != MAGIC_MESSAGE || record::u64_at(h, 24) != offset {
            return Err(no_record(offset));
        }
        Ok(record::u64_at(h, 44))
    }

    /// Removes the oldest segment if it ends at or below `limit` and is not the active one.
    /// Returns it (its file is deleted by the caller).
    pub(crate) fn remove_oldest(&self, limit: u64) -> Option<Arc<Segment>> {
        let mut segs = self.segments.write().unwrap_or_else(|p| p.into_inner());
        if segs.len() < 2 || segs[0].end() > limit {
            return None;
        }
        let seg = segs.remove(0);
        self.min_offset.store(segs[0].base(), Ordering::Release);
        Some(seg)
    }
}

fn no_record(offset: u64) -> Error {
    Error::invalid("/commit_offset", format!("no record starts at commit offset {offset}"))
}

/// The bytes of the message record starting at `local` in `seg`.
fn record_bytes(seg: &Segment, local: u64, offset: u64) -> Result<&[u8]> {
    let head = seg.read(local, 8).ok_or_else(|| no_record(offset))?;
    let (len, magic) = record::peek(head);
    if magic != MAGIC_MESSAGE || (len as usize) < record::MIN_RECORD_LEN {
        return Err(no_record(offset));
    }
    seg.read(local, len as usize).ok_or_else(|| no_record(offset))
}

/// Writes the staged records of `seg` at `at` with one pwrite and makes them readable.
fn write_staged(seg: &Segment, at: usize, staged: &mut Vec<u8>) -> Result<()> {
    let file = seg.file();
    file.pwrite(at, staged)?;
    file.publish(at + staged.len());
    staged.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::message::NewMessage;
    use crate::store::record::{read_trailer, MAGIC_BLANK, TRAILER_LEN};
    use proptest::prelude::*;

    fn tail(i: usize, body: usize) -> EncodedTail {
        record::encode_tail(NewMessage {
            topic: "t".into(),
            queue_id: (i % 3) as u32,
            msg_id: format!("m{i}"),
            body: vec![i as u8; body],
            ..NewMessage::default()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Records never span segments, every sealed segment ends with a filler and a trailer,
        /// and every record reads back at its offset.
        #[test]
        fn segment_roll_over(bodies in proptest::collection::vec(0usize..1500, 1..120), batch in 1usize..4) {
            let dir = tempfile::tempdir().unwrap();
            let seg_bytes = 4096u64;
            let log = CommitLog::new(dir.path().to_path_buf(), seg_bytes, false, Vec::new(), 0, u64::MAX, 0).unwrap();
            let mut placed = Vec::new();
            for (chunk_no, chunk) in bodies.chunks(batch).enumerate() {
                let mut tails: Vec<_> = chunk.iter().enumerate().map(|(k, &b)| tail(chunk_no * batch + k, b)).collect();
                let (rs, end) = log.append(&mut tails, 1000 + chunk_no as u64).map_err(|(e, _)| e).unwrap();
                prop_assert_eq!(end, log.write_pos());
                placed.extend(rs.into_iter().zip(chunk.iter().copied()));
            }
            let mut next_q = [0u64; 3];
            for (i, (r, body)) in placed.iter().enumerate() {
                let seg = log.segment_for(r.commit_offset).unwrap();
                prop_assert!(r.commit_offset + u64::from(r.size) + FILLER_RESERVE <= seg.end(), "record spans or eats the filler reserve");
                let m = log.read(r.commit_offset, true).unwrap();
                prop_assert_eq!(m.msg_id, format!("m{i}"));
                prop_assert_eq!(m.body.len(), *body);
                prop_assert_eq!(m.queue_offset, next_q[i % 3]);
                next_q[i % 3] += 1;
            }
            let segs = log.segments();
            for w in segs.windows(2) {
                prop_assert_eq!(w[0].end(), w[1].base());
                let last = placed.iter().rev().find(|(r, _)| w[0].contains(r.commit_offset));
                if let Some((r, _)) = last {
                    let filler_at = r.commit_offset + u64::from(r.size) - w[0].base();
                    let head = w[0].read(filler_at, 8).unwrap();
                    prop_assert_eq!(record::peek(head).1, MAGIC_BLANK);
                    let t = w[0].read(seg_bytes - TRAILER_LEN as u64, TRAILER_LEN).unwrap();
                    prop_assert_eq!(read_trailer(t), Some(r.store_ts));
                }
            }
        }
    }

    #[test]
    fn a_record_that_fills_a_segment_exactly_up_to_the_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let log = CommitLog::new(dir.path().to_path_buf(), 4096, false, Vec::new(), 0, u64::MAX, 0).unwrap();
        let probe = tail(0, 0).record_len() as u64;
        let body = (log.max_record_len() - probe) as usize;
        let (rs, end) = log.append(&mut [tail(0, body)], 1).map_err(|(e, _)| e).unwrap();
        assert_eq!(rs[0].commit_offset, 0);
        assert_eq!(end, 4096 - FILLER_RESERVE);
        let (rs, _) = log.append(&mut [tail(1, 10)], 2).map_err(|(e, _)| e).unwrap();
        assert_eq!(rs[0].commit_offset, 4096, "rolled to the next segment");
        assert_eq!(log.read(0, true).unwrap().body.len(), body);
    }

    /// While the dispatcher holds the space reserve no segment is created (it would take the
    /// space freed for the queue and index files); appends into the active segment still
    /// work at this level (the store refuses them before they get here).
    #[test]
    fn no_segment_is_created_while_growth_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = CommitLog::new(dir.path().to_path_buf(), 4096, false, Vec::new(), 0, u64::MAX, 0).unwrap();
        let (first, _) = log.append(&mut [tail(0, 1000)], 1).map_err(|(e, _)| e).unwrap();
        assert!(!log.growth_refused());
        let freed = std::cell::Cell::new(false);
        assert!(log.refuse_growth(&|| {
            freed.set(true);
            true
        }));
        assert!(freed.get() && log.growth_refused());

        let (fits, _) = log.append(&mut [tail(1, 1000)], 2).map_err(|(e, _)| e).unwrap();
        let end = log.write_pos();
        let err = log.append(&mut [tail(2, 3000)], 3).map(|_| ()).unwrap_err();
        assert!(matches!(&err.0, Error::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC)), "{err:?}");
        assert!(!err.1, "refusal does not poison");
        assert_eq!(log.write_pos(), end);
        assert_eq!(log.segments().len(), 1);

        assert!(!log.allow_growth_if(&|| false), "no reserve, no growth");
        assert!(log.growth_refused());
        assert!(log.allow_growth_if(&|| true));
        let (rolled, _) = log.append(&mut [tail(2, 3000)], 4).map_err(|(e, _)| e).unwrap();
        assert_eq!(rolled[0].commit_offset, 4096);
        assert_eq!(log.read(first[0].commit_offset, true).unwrap().body.len(), 1000);
        assert_eq!(log.read(fits[0].commit_offset, true).unwrap().body.len(), 1000);
    }
}
