//! Recovery: turns whatever is on disk into a consistent log, consume queues and index.
//!
//! After a clean stop (no `abort` file) the checkpoint is trusted once a few checks pass: the
//! segments are contiguous and whole, the last record named by the shutdown checkpoint is
//! intact and ends at the checkpoint's end, and nothing follows it. No scan.
//!
//! Otherwise (the `abort` file exists, the checkpoint is missing or a check fails) recovery
//! scans forward from the start of the segment before the checkpoint's older position
//! (`min(log_flushed, dispatched)`; the first segment without a checkpoint) and validates each
//! record: length, magic, CRC, its own commit offset, and every field's bounds. What fails is
//! judged by where it lies. At or above the checkpoint's `log_flushed` (the durable position)
//! it is a torn tail: the log ends there (or at the start of a trailing batch whose last record
//! is missing), the rest of that segment is zeroed and later segments are deleted. Below it,
//! it is damage to data that was flushed and acknowledged (bit rot, a lost write), and is never
//! cut silently: recovery fails with [`Error::Corrupt`] naming the file and offset, having
//! changed nothing; or, with `StoreConfig::repair`, it scans the whole log, copies each damaged
//! region to `quarantine/`, covers it with a hole up to the next valid record (magic, CRC and
//! own commit offset), keeps every intact record, and rebuilds consume queues and index. Consume queue
//! units that point at or past the end (or past the checkpointed dispatch position, which is
//! about to be rebuilt) are cut, the index is cut back to the checkpoint's mark, and every
//! record from the checkpointed dispatch position to the end is dispatched again. Queue
//! offsets then continue from the rebuilt queues.

use std::fs;
use std::path::{Path, PathBuf};

use super::checkpoint::Checkpoint;
use super::commit_log::CommitLog;
use super::config::StoreConfig;
use super::consume_queue::{read_ends, ConsumeQueues};
use super::dispatcher::dispatch_range;
use super::index::{Index, IndexMark};
use super::meta::sync_dir;
use super::meta::write_atomic;
use super::record::{
    self, FILLER_RESERVE, HOLE_HEADER_LEN, MAGIC_BLANK, MAGIC_HOLE, MAGIC_MESSAGE, MIN_RECORD_LEN, TRAILER_LEN,
};
use super::segment::{parse_file_name, Segment};
use crate::{Error, Result};

/// What recovery hands to the store.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) log: CommitLog,
    pub(crate) queues: ConsumeQueues,
    pub(crate) index: Index,
    /// End of the log; everything below is msynced and dispatched.
    pub(crate) end: u64,
    /// Whether the previous stop was clean and trusted.
    pub(crate) clean: bool,
}

/// Outcome of the forward scan.
struct Scan {
    end: u64,
    last_record: u64,
    last_store_ts: u64,
    /// Start of the scan (a record boundary).
    from: u64,
    /// Whether the scan passed through this position as a record boundary.
    saw_boundary: bool,
    /// Damaged regions quarantined (repair).
    repaired: usize,
}

/// File (in the store directory) with each queue's end, written by a clean shutdown.
pub(crate) const QUEUE_ENDS: &str = "queue_ends";

/// Paths of the store's parts.
pub(crate) fn commitlog_dir(dir: &Path) -> PathBuf {
    dir.join("commitlog")
}

/// Recovers the store in `config.dir` (the caller holds the directory lock).
pub(crate) fn recover(config: &StoreConfig) -> Result<Recovered> {
    let dir = &config.dir;
    let log_dir = commitlog_dir(dir);
    fs::create_dir_all(&log_dir).map_err(|e| Error::io(&log_dir, e))?;
    let cp = Checkpoint::read(&dir.join("checkpoint"))?;
    let abort = dir.join("abort").exists();

    let durable = if config.repair { None } else { cp.map(|c| c.log_flushed) };
    let (mut segs, damaged) = load_segments(&log_dir, config.segment_bytes, durable)?;

    let clean_end = match cp {
        Some(cp) if !abort && !damaged => check_clean(&mut segs, &cp),
        _ => None,
    };
    let clean = clean_end.is_some();
    let mut rebuild = false;
    let (end, last_record, last_ts, redispatch_hint) = match clean_end {
        Some(end) => {
            let cp = cp.ok_or_else(|| Error::Unavailable("checkpoint vanished".into()))?;
            (end, cp.last_record, cp.last_store_ts, end)
        }
        None => {
            if abort {
                tracing::warn!(dir = %dir.display(), "the store was not stopped cleanly; recovering");
            } else if !segs.is_empty() {
                tracing::warn!(dir = %dir.display(), "checkpoint missing or inconsistent; recovering");
            }
            let cp_pos = cp.map(|c| c.log_flushed.min(c.dispatched));
            let quarantine = dir.join("quarantine");
            let policy = DamagePolicy {
                durable: cp.map_or(0, |c| c.log_flushed),
                repair: config.repair,
                quarantine: &quarantine,
            };
            let s = scan(&mut segs, cp_pos, cp.map(|c| c.dispatched), &policy)?;
            if s.repaired > 0 {
                // Queue offsets and index entries of the quarantined records must go: rebuild
                // both from the log.
                tracing::warn!(regions = s.repaired, "repair: rebuilding consume queues and index from the log");
                for sub in ["consumequeue", "index"] {
                    let p = dir.join(sub);
                    match fs::remove_dir_all(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(&p, e)),
                    }
                }
                sync_dir(dir)?;
                rebuild = true;
            }
            tracing::info!(from = s.from, end = s.end, "commit log scanned");
            // Re-dispatch from the checkpointed dispatch position if the scan confirmed it is
            // a record boundary below the end; otherwise from where the scan started.
            let hint = match cp {
                Some(c) if s.saw_boundary && c.dispatched <= s.end => c.dispatched,
                Some(c) if c.dispatched >= s.end => s.end.min(c.dispatched),
                _ => s.from,
            };
            let ts = s.last_store_ts.max(cp.map_or(0, |c| c.last_store_ts));
            (s.end, s.last_record, ts, hint)
        }
    };

    // Cut the log at `end`.
    let segs = truncate_log(segs, end, clean, &log_dir)?;
    let log_min = segs.first().map_or(end, Segment::base);
    let pwrite = config.flush == super::config::FlushMode::Sync;
    let log = CommitLog::new(log_dir, config.segment_bytes, pwrite, segs, end, last_record, last_ts)?;
    if !clean {
        let from = cp.map_or(log_min, |c| c.log_flushed.min(end)).max(log_min);
        log.flush(from, end).map_err(|e| Error::io(log.dir(), e))?;
    }

    // Index: trusted after a clean stop, cut back to the checkpoint's mark otherwise.
    let mark = if clean { None } else { Some(cp.map_or(IndexMark { begin: u64::MAX, count: 0 }, |c| c.index)) };
    let (index, wiped) = Index::load(dir.join("index"), config.index_slots, config.index_entries_per_file, mark)?;
    let mut redispatch_from =
        if wiped || rebuild || (!clean && cp.is_none()) { log_min } else { redispatch_hint.min(end) };
    redispatch_from = redispatch_from.max(log_min);

    // Consume queues: keep the newest unit that points into the log below the re-dispatch
    // position and matches its record. A unit below that position that does not match its
    // record is damage (it was flushed before the checkpoint that trusts it).
    let mismatch = std::cell::Cell::new(false);
    // A clean shutdown recorded every queue's end: no walk over the empty tails. The record is
    // consumed here; the next clean shutdown writes a new one.
    let ends_path = dir.join(QUEUE_ENDS);
    let ends = if clean { read_ends(&ends_path, end) } else { Default::default() };
    match fs::remove_file(&ends_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&ends_path, e)),
    }
    let cq_root = dir.join("consumequeue");
    let queues = ConsumeQueues::load_with_ends(cq_root, config.cq_units_per_file.max(1), &ends, |topic, qid, u| {
        let end_of = u.commit_offset.saturating_add(u64::from(u.size));
        if u.commit_offset >= redispatch_from || end_of > end {
            return false;
        }
        if u.commit_offset < log_min {
            return true; // its record was deleted by retention; nothing to compare
        }
        let ok = log
            .with_record(u.commit_offset, false, |v| {
                v.topic == topic && v.queue_id == qid && v.queue_offset == u.queue_offset && v.size == u.size
            })
            .unwrap_or(false);
        if !ok {
            mismatch.set(true);
        }
        ok
    })?;
    // After a clean stop queues are trusted like the log (only their newest unit is compared
    // with its record, above); after a crash, or when repairing, they are checked in full.
    let verify = !clean || config.repair;
    let damaged_queue = if mismatch.get() {
        Some("a unit does not match its record".to_string())
    } else if !verify {
        None
    } else {
        queues
            .all()
            .iter()
            .find_map(|q| q.check_structure(end).err().map(|e| e.to_string()))
            .or_else(|| check_tiling(&queues, &log, log_min).err())
    };
    let (queues, index) = match damaged_queue {
        None => (queues, index),
        Some(why) => {
            // Consume queues and index are derived from the log: rebuild both.
            tracing::warn!(reason = %why, "consume queue damaged; rebuilding consume queues and index from the log");
            drop((queues, index));
            for sub in ["consumequeue", "index"] {
                let p = dir.join(sub);
                fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
            }
            sync_dir(dir)?;
            redispatch_from = log_min;
            let (index, _) = Index::load(dir.join("index"), config.index_slots, config.index_entries_per_file, None)?;
            let queues =
                ConsumeQueues::load(dir.join("consumequeue"), config.cq_units_per_file.max(1), |_, _, _| false)?;
            (queues, index)
        }
    };

    if redispatch_from < end {
        let (reached, _) = dispatch_range(&log, &queues, &index, redispatch_from, end, usize::MAX)?;
        tracing::info!(from = redispatch_from, to = reached, "re-dispatched records");
    }
    // Queue minimums (and files) follow the log's retained start.
    for q in queues.all() {
        q.truncate_below(log_min)?;
    }
    index.truncate_below(log_min)?;
    log.set_queue_offsets(queues.max_offsets());
    Ok(Recovered { log, queues, index, end, clean })
}

/// Checks that the units of all consume queues together tile the log: merged in commit
/// offset order they never overlap, and every gap between two of them starts at something the
/// log can hold there (a record of a deleted topic, a filler, a hole). Every record belongs to
/// exactly one queue, so a damaged commit offset or size shows up as an overlap or as a gap
/// that starts inside a record. Reads each queue once, in order (a k-way merge). The tag hash
/// is not covered.
fn check_tiling(queues: &ConsumeQueues, log: &CommitLog, log_min: u64) -> Result<(), String> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let all = queues.all();
    let mut next_of = vec![0u64; all.len()];
    let mut buffers: Vec<std::collections::VecDeque<crate::store::CqUnit>> = vec![Default::default(); all.len()];
    let refill = |i: usize, next_of: &mut [u64], buffers: &mut [std::collections::VecDeque<crate::store::CqUnit>]| {
        if buffers[i].is_empty() {
            if let Ok(units) = all[i].read(next_of[i].max(all[i].min()), 1024) {
                if let Some(last) = units.last() {
                    next_of[i] = last.queue_offset + 1;
                }
                buffers[i].extend(units);
            }
        }
    };
    let mut heap = BinaryHeap::new();
    for i in 0..all.len() {
        refill(i, &mut next_of, &mut buffers);
        if let Some(u) = buffers[i].front() {
            heap.push(Reverse((u.commit_offset, i)));
        }
    }
    let mut prev_end: Option<u64> = None;
    while let Some(Reverse((_, i))) = heap.pop() {
        let Some(u) = buffers[i].pop_front() else { continue };
        refill(i, &mut next_of, &mut buffers);
        if let Some(n) = buffers[i].front() {
            heap.push(Reverse((n.commit_offset, i)));
        }
        if u.commit_offset < log_min {
            continue;
        }
        if let Some(pe) = prev_end {
            let q = &all[i];
            if u.commit_offset < pe {
                return Err(format!(
                    "unit {} of {}/{} overlaps another record",
                    u.queue_offset,
                    q.topic(),
                    q.queue_id()
                ));
            }
            if u.commit_offset > pe && !log.boundary_at(pe) {
                return Err(format!(
                    "a unit ends at {pe}, inside a record (next unit {} of {}/{})",
                    u.queue_offset,
                    q.topic(),
                    q.queue_id()
                ));
            }
        }
        prev_end = Some(u.commit_offset + u64::from(u.size));
    }
    Ok(())
}

/// Opens every segment file, oldest first, at its expected length. `damaged` is set when a
/// file's length does not match (truncated by hand, half-created, config changed). A file too
/// short to hold what the checkpoint says is durable (`refuse_below`) fails with
/// [`Error::Corrupt`] before any file is touched (opening would grow it).
fn load_segments(dir: &Path, segment_bytes: u64, refuse_below: Option<u64>) -> Result<(Vec<Segment>, bool)> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_file_name) {
            let len = entry.metadata().map_err(|e| Error::io(entry.path(), e))?.len();
            files.push((base, entry.path(), len));
        }
    }
    files.sort_by_key(|f| f.0);
    let mut damaged = false;
    let mut segs = Vec::with_capacity(files.len());
    for i in 0..files.len() {
        let (base, ref path, actual) = files[i];
        let len = match files.get(i + 1) {
            Some(next) => next.0 - base,
            None => actual.max(segment_bytes),
        };
        if actual != len {
            tracing::warn!(path = %path.display(), actual, expected = len, "segment has an unexpected length");
            damaged = true;
            if actual < len && refuse_below.is_some_and(|d| base + actual < d) {
                return Err(Error::Corrupt {
                    path: path.clone(),
                    offset: actual,
                    reason: format!(
                        "segment file is {actual} bytes instead of {len}, cut below the durable position {}; the \
                         files are left as they are: restore them, or start with repair (`ferrymq serve --repair`)",
                        refuse_below.unwrap_or(0)
                    ),
                });
            }
        }
        if len == 0 {
            return Err(Error::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: "two segments start at the same offset".into(),
            });
        }
        segs.push(Segment::open(path, base, len)?);
    }
    Ok((segs, damaged))
}

/// The checks that let a clean stop skip the scan; returns the log end if they pass.
fn check_clean(segs: &mut [Segment], cp: &Checkpoint) -> Option<u64> {
    let end = cp.log_flushed;
    if cp.dispatched != end {
        return None;
    }
    let Some(last) = segs.last() else {
        // No segment yet: only an empty log at 0 is consistent.
        return (end == 0).then_some(end);
    };
    if end < segs[0].base() || end > last.end() {
        return None;
    }
    // Nothing may follow the end: it lies in the last segment (or ends the one before it).
    let k = segs.iter().position(|s| s.contains(end)).unwrap_or(segs.len());
    if k + 1 < segs.len() {
        return None;
    }
    if k < segs.len() {
        let local = (end - segs[k].base()) as usize;
        let data = segs[k].file_mut().data_mut();
        if data.len() >= local + 8 && data[local..local + 8].iter().any(|&b| b != 0) {
            return None;
        }
    }
    // The last record is intact and reaches the end (directly or through a filler).
    if cp.last_record == u64::MAX {
        return (end == segs[0].base() && k == 0).then_some(end);
    }
    let j = segs.iter().position(|s| s.contains(cp.last_record))?;
    let seg = &mut segs[j];
    let seg_end = seg.end();
    let local = (cp.last_record - seg.base()) as usize;
    let data = seg.file_mut().data_mut();
    let head = data.get(local..local + 8)?;
    let (len, _) = record::peek(head);
    let bytes = data.get(local..local + len as usize)?;
    let view = record::parse(bytes, true).ok()?;
    if view.commit_offset != cp.last_record || view.batch_continues() {
        return None;
    }
    let rec_end = cp.last_record + u64::from(len);
    if rec_end == end {
        return Some(end);
    }
    let filler = data.get(local + len as usize..local + len as usize + 8)?;
    (record::peek(filler).1 == MAGIC_BLANK && seg_end == end).then_some(end)
}

/// What the scan does with damage below the durable position.
pub(crate) struct DamagePolicy<'a> {
    /// The checkpointed flushed position (0 without a checkpoint): damage below it is bit rot
    /// or a lost write, never a torn tail.
    pub(crate) durable: u64,
    /// Quarantine damaged regions and carry on (otherwise refuse to open).
    pub(crate) repair: bool,
    /// Where quarantined bytes go.
    pub(crate) quarantine: &'a Path,
}

/// What the scan found at one position.
enum Step {
    /// A valid message record.
    Record { len: u64, batch_continues: bool, store_ts: u64 },
    /// A valid hole (quarantined earlier).
    Hole(u64),
    /// A valid end-of-segment filler.
    Filler,
    /// Nothing valid starts here.
    Bad(&'static str),
}

/// Validates what starts at `local` of a segment at `base` holding `data`.
fn step_at(data: &[u8], base: u64, local: usize) -> Step {
    let seg_len = data.len() as u64;
    if local as u64 + FILLER_RESERVE > seg_len {
        return Step::Bad("record position inside the filler reserve");
    }
    let (len, magic) = record::peek(&data[local..local + 8]);
    match magic {
        MAGIC_BLANK => {
            let ok = u64::from(len) == seg_len - local as u64
                && record::read_trailer(&data[data.len() - TRAILER_LEN..]).is_some();
            if ok {
                Step::Filler
            } else {
                Step::Bad("damaged end-of-segment filler")
            }
        }
        MAGIC_HOLE => match record::read_hole(&data[local..], base + local as u64) {
            Some(l) if local as u64 + u64::from(l) <= seg_len => Step::Hole(u64::from(l)),
            _ => Step::Bad("damaged hole"),
        },
        MAGIC_MESSAGE => {
            let len = len as usize;
            if len < MIN_RECORD_LEN || (local + len) as u64 + FILLER_RESERVE > seg_len {
                return Step::Bad("bad record length");
            }
            match record::parse(&data[local..local + len], true) {
                Ok(v) if v.commit_offset == base + local as u64 => {
                    Step::Record { len: len as u64, batch_continues: v.batch_continues(), store_ts: v.store_ts }
                }
                Ok(_) => Step::Bad("record carries another commit offset"),
                Err(reason) => Step::Bad(reason),
            }
        }
        0 if len == 0 => Step::Bad("zeros where a record should be"),
        _ => Step::Bad("bad magic"),
    }
}

/// The next position after `from` (at least a hole header further) where something valid
/// starts: a record carrying its own offset and a good CRC, an intact filler or hole.
fn resync(data: &[u8], base: u64, from: usize) -> Option<usize> {
    let mut q = from + HOLE_HEADER_LEN;
    while q + 8 <= data.len() {
        let magic = record::u32_at(data, q + 4);
        if matches!(magic, MAGIC_MESSAGE | MAGIC_BLANK | MAGIC_HOLE) && !matches!(step_at(data, base, q), Step::Bad(_))
        {
            return Some(q);
        }
        q += 1;
    }
    None
}

/// How a repair ended.
enum Repaired {
    /// A hole now covers the damage; scanning continues here (segment-relative).
    At(usize),
    /// A filler now runs from the damage to the segment end.
    SegmentEnd,
    /// Nothing valid follows in the last segment: the log ends at the damage.
    EndHere,
}

/// Copies the damaged bytes at `local` of `seg` to the quarantine directory, then covers them
/// with a hole (up to the next valid record), a filler (to the end of a sealed segment), or
/// nothing (the log ends there; recovery cuts it), and msyncs the change.
fn repair(seg: &mut Segment, local: usize, last: bool, policy: &DamagePolicy<'_>, ts: u64) -> Result<Repaired> {
    let base = seg.base();
    let path = seg.path().to_path_buf();
    let seg_len = seg.len() as usize;
    let data = seg.file_mut().data_mut();
    let next = resync(data, base, local);
    let (upto, outcome) = match next {
        Some(q) => (q, Repaired::At(q)),
        None if !last => (seg_len, Repaired::SegmentEnd),
        None => {
            let durable_local = policy.durable.saturating_sub(base).min(seg_len as u64) as usize;
            (durable_local.max(local + 1), Repaired::EndHere)
        }
    };
    if matches!(outcome, Repaired::SegmentEnd) && seg_len - local < FILLER_RESERVE as usize {
        return Err(Error::Corrupt {
            path,
            offset: local as u64,
            reason: "damage too close to the segment end".into(),
        });
    }
    fs::create_dir_all(policy.quarantine).map_err(|e| Error::io(policy.quarantine, e))?;
    let qpath = policy.quarantine.join(format!("{:020}", base + local as u64));
    write_atomic(&qpath, &data[local..upto])?;
    if let Some(parent) = policy.quarantine.parent() {
        sync_dir(parent)?;
    }
    match outcome {
        Repaired::At(q) => record::write_hole(&mut data[local..q], base + local as u64),
        Repaired::SegmentEnd => record::write_filler(&mut data[local..], ts),
        Repaired::EndHere => {}
    }
    seg.file().flush_range(local, upto - local).map_err(|e| Error::io(&path, e))?;
    tracing::warn!(
        segment = %path.display(),
        offset = local,
        commit_offset = base + local as u64,
        len = upto - local,
        quarantine = %qpath.display(),
        "repair: moved damaged log bytes to the quarantine; the records in them are gone"
    );
    Ok(outcome)
}

/// Scans forward from the segment before `hint` (or the first segment; always the first when
/// repairing), validating records. Damage at or above `policy.durable` is a torn tail: the
/// log ends there. Damage below it fails with [`Error::Corrupt`] (naming the file and
/// offset, nothing changed), or with `policy.repair` is quarantined (see [`repair`]).
fn scan(
    segs: &mut [Segment],
    hint: Option<u64>,
    boundary_of_interest: Option<u64>,
    policy: &DamagePolicy<'_>,
) -> Result<Scan> {
    let Some(first) = segs.first() else {
        return Ok(Scan { end: 0, last_record: u64::MAX, last_store_ts: 0, from: 0, saw_boundary: false, repaired: 0 });
    };
    let mut start_idx = 0;
    if let Some(h) = hint.filter(|_| !policy.repair) {
        if h > first.base() {
            let probe = h - 1;
            start_idx = segs.iter().position(|s| s.contains(probe)).unwrap_or(segs.len() - 1);
        }
    }
    let from = segs[start_idx].base();
    let mut pos = from;
    let mut last_complete = u64::MAX;
    let mut last_ts = 0;
    let mut batch_start: Option<u64> = None;
    let mut saw = boundary_of_interest == Some(pos);
    let n = segs.len();
    let mut seg_ts = vec![0u64; n];
    let mut end = None;
    let mut repaired = 0;
    'segments: for (i, seg) in segs.iter_mut().enumerate().skip(start_idx) {
        let base = seg.base();
        let seg_len = seg.len();
        loop {
            let local = (pos - base) as usize;
            let step = step_at(seg.file_mut().data_mut(), base, local);
            match step {
                Step::Record { len, batch_continues, store_ts } => {
                    if batch_continues {
                        batch_start.get_or_insert(pos);
                    } else {
                        batch_start = None;
                        last_complete = pos;
                        last_ts = last_ts.max(store_ts);
                    }
                    pos += len;
                    seg_ts[i] = seg_ts[i].max(store_ts);
                }
                Step::Hole(len) => {
                    batch_start = None;
                    pos += len;
                }
                Step::Filler => {
                    pos = base + seg_len;
                    if boundary_of_interest == Some(pos) {
                        saw = true;
                    }
                    if i + 1 == n {
                        end = Some(pos);
                        break 'segments;
                    }
                    continue 'segments;
                }
                Step::Bad(reason) => {
                    if pos >= policy.durable {
                        end = Some(pos);
                        break 'segments;
                    }
                    if !policy.repair {
                        return Err(Error::Corrupt {
                            path: seg.path().to_path_buf(),
                            offset: local as u64,
                            reason: format!(
                                "{reason} at commit offset {pos}, below the durable position {}; the files are left \
                                 as they are: restore them, or start with repair (`ferrymq serve --repair`) to move \
                                 the damaged records to the quarantine directory",
                                policy.durable
                            ),
                        });
                    }
                    repaired += 1;
                    batch_start = None;
                    match repair(seg, local, i + 1 == n, policy, seg_ts[i])? {
                        Repaired::At(q) => pos = base + q as u64,
                        Repaired::SegmentEnd => {
                            pos = base + seg_len;
                            if i + 1 == n {
                                end = Some(pos);
                                break 'segments;
                            }
                            continue 'segments;
                        }
                        Repaired::EndHere => {
                            end = Some(pos);
                            break 'segments;
                        }
                    }
                }
            }
            if boundary_of_interest == Some(pos) {
                saw = true;
            }
        }
    }
    for (seg, ts) in segs.iter().zip(seg_ts) {
        seg.note_store_ts(ts);
    }
    let mut end = end.unwrap_or(pos);
    if let Some(b) = batch_start {
        if b < end {
            tracing::warn!(batch_start = b, "dropping an incomplete trailing batch");
            end = b;
            if boundary_of_interest.is_some_and(|x| x > end) {
                saw = false;
            }
        }
    }
    Ok(Scan {
        end,
        last_record: if last_complete < end { last_complete } else { u64::MAX },
        last_store_ts: last_ts,
        from,
        saw_boundary: saw,
        repaired,
    })
}

/// Zeroes the log after `end`, deletes later segments, publishes what remains and loads the
/// sealed segments' last store timestamps.
fn truncate_log(segs: Vec<Segment>, end: u64, clean: bool, dir: &Path) -> Result<Vec<Segment>> {
    let mut kept = Vec::with_capacity(segs.len());
    let mut removed = false;
    for seg in segs {
        if seg.base() > end {
            let path = seg.path().to_path_buf();
            drop(seg);
            tracing::warn!(path = %path.display(), "deleting a segment past the end of the log");
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed = true;
            continue;
        }
        if seg.contains(end) {
            let local = end - seg.base();
            let mut seg = if clean { seg } else { seg.truncate_tail(local)? };
            seg.set_published(local);
            kept.push(seg);
        } else {
            let mut seg = seg;
            let len = seg.len();
            seg.set_published(len);
            if let Some(ts) = seg.trailer_ts() {
                seg.note_store_ts(ts);
            } else if seg.end() <= end {
                let ts = last_ts_by_walking(&mut seg);
                seg.note_store_ts(ts);
            }
            kept.push(seg);
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(kept)
}

/// Newest store timestamp of a segment without a trailer, by walking its record headers.
fn last_ts_by_walking(seg: &mut Segment) -> u64 {
    let len = seg.len() as usize;
    let data = seg.file_mut().data_mut();
    let mut local = 0usize;
    let mut ts = 0;
    while local + record::HEADER_LEN <= len {
        let (l, magic) = record::peek(&data[local..local + 8]);
        if magic == MAGIC_HOLE && local + l as usize <= len && l as usize >= record::HOLE_HEADER_LEN {
            local += l as usize;
            continue;
        }
        if magic != MAGIC_MESSAGE || (l as usize) < MIN_RECORD_LEN || local + l as usize > len {
            break;
        }
        ts = ts.max(record::u64_at(data, local + 44));
        local += l as usize;
    }
    ts
}
