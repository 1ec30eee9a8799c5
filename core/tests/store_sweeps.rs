//! Corruption sweeps instead of hand-picked bytes: every truncation length of the last record
//! (a torn tail above the durable position, cut silently; the same below it, refused, then
//! repaired), a bit flip in each field of a record, damage in sealed segments below the
//! checkpoint, damage in consume queue and index files.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_is_msg, msg, msg_id, tiny_config};
use ferrymq_core::store::{AppendResult, FlushMode, NewMessage, Store, StoreConfig};
use ferrymq_core::Error;

const SEGMENT: u64 = 64 * 1024;

/// A config whose checkpoint only moves when the test calls `flush`.
fn manual_config(dir: &Path) -> StoreConfig {
    let mut c = tiny_config(dir, FlushMode::Async);
    c.flush_interval = Duration::from_secs(3600);
    c.retention_check_interval = Duration::from_secs(3600);
    c
}

fn repair_config(dir: &Path) -> StoreConfig {
    let mut c = tiny_config(dir, FlushMode::Sync);
    c.repair = true;
    c
}

fn segment_of(dir: &Path, commit_offset: u64) -> (PathBuf, u64) {
    let base = commit_offset - commit_offset % SEGMENT;
    (dir.join("commitlog").join(format!("{base:020}")), commit_offset - base)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "lock" {
            match fs::copy(e.path(), target) {
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => panic!("{err}"),
            }
        }
    }
}

/// Every file under `dir` (but the lock) with its length and CRC.
fn files_of(dir: &Path) -> BTreeMap<PathBuf, (usize, u32)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else if e.file_name() != "lock" {
                let b = fs::read(e.path()).unwrap();
                out.insert(e.path(), (b.len(), crc32fast::hash(&b)));
            }
        }
    }
    out
}

fn flip(path: &Path, at: u64, mask: u8) {
    let mut b = fs::read(path).unwrap();
    b[at as usize] ^= mask;
    fs::write(path, b).unwrap();
}

/// A small last message (so the sweep is short).
fn small(i: u64) -> NewMessage {
    NewMessage { topic: "t".into(), queue_id: 0, msg_id: msg_id("t", 0, i), body: vec![b'x'], ..NewMessage::default() }
}

/// Asserts a plain open refuses with `Corrupt` at `path`/`offset` (if given), changing no file.
fn assert_refused(dir: &Path, path: &Path, offset: Option<u64>) {
    let before = files_of(dir);
    match Store::open(tiny_config(dir, FlushMode::Sync)) {
        Err(Error::Corrupt { path: p, offset: o, reason }) => {
            assert_eq!(p, path, "{reason}");
            if let Some(offset) = offset {
                assert_eq!(o, offset, "{reason}");
            }
        }
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("damage below the durable position was not refused"),
    }
    assert_eq!(files_of(dir), before, "a refused open changed files");
}

/// Opens (repairing if asked) and checks that exactly `kept` of `rs` (queue `t`/0, message
/// `i` at index `i`) are there and dispatched, the rest gone, and appends continue.
fn check(store: &Arc<Store>, rs: &[AppendResult], kept: &[usize]) {
    let next = kept.last().map_or(0, |&i| i as u64 + 1);
    assert_eq!(store.queue_bounds("t", 0).1, next);
    let units = store.read_queue("t", 0, 0, usize::MAX).unwrap();
    assert_eq!(units.len(), kept.len());
    for (u, &i) in units.iter().zip(kept) {
        assert_eq!((u.queue_offset, u.commit_offset), (i as u64, rs[i].commit_offset));
    }
    for (i, r) in rs.iter().enumerate() {
        assert_eq!(store.read(r.commit_offset).is_ok(), kept.contains(&i), "record {i}");
        let found = store.lookup_msg_id(&msg_id("t", 0, i as u64)).unwrap();
        assert_eq!(found.is_empty(), !kept.contains(&i), "lookup of {i}");
    }
    let r = store.append(small(next)).unwrap();
    assert_eq!(r.queue_offset, next);
    assert!(store.wait_dispatched(r.commit_offset + 1, Duration::from_secs(10)));
}

/// A crashed store of 30 messages plus a small last one, with the checkpoint covering either
/// the 30 (`last_durable` false: the last record is above the durable position) or all 31.
fn crashed_store(dir: &Path, last_durable: bool) -> Vec<AppendResult> {
    let live = tempfile::tempdir().unwrap();
    let store = Store::open(manual_config(live.path())).unwrap();
    let mut rs: Vec<AppendResult> = (0..30).map(|i| store.append(msg("t", 0, i)).unwrap()).collect();
    store.flush().unwrap();
    rs.push(store.append(small(30)).unwrap());
    if last_durable {
        store.flush().unwrap();
    }
    assert!(store.wait_dispatched(store.stats().max_offset, Duration::from_secs(10)));
    copy_dir(live.path(), dir);
    assert!(dir.join("abort").exists());
    rs
}

#[test]
fn every_truncation_of_a_torn_last_record_is_cut() {
    let base = tempfile::tempdir().unwrap();
    let rs = crashed_store(base.path(), false);
    let last = rs[30];
    let all: Vec<usize> = (0..31).collect();
    for k in 0..=u64::from(last.size) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let (path, pos) = segment_of(dir.path(), last.commit_offset);
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(pos + k).unwrap();
        let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap_or_else(|e| panic!("cut at {k}: {e}"));
        let kept = if k == u64::from(last.size) { &all[..] } else { &all[..30] };
        check(&store, &rs, kept);
    }
}

#[test]
fn every_truncation_of_a_durable_last_record_is_refused_then_repaired() {
    let base = tempfile::tempdir().unwrap();
    let rs = crashed_store(base.path(), true);
    let last = rs[30];
    let kept: Vec<usize> = (0..30).collect();
    for k in 0..u64::from(last.size) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let (path, pos) = segment_of(dir.path(), last.commit_offset);
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(pos + k).unwrap();
        assert_refused(dir.path(), &path, None);
        let store = Store::open(repair_config(dir.path())).unwrap_or_else(|e| panic!("cut at {k}: {e}"));
        check(&store, &rs, &kept);
    }
}

#[test]
fn a_bit_flip_in_each_field_of_a_record_is_refused_then_repaired() {
    // Record 20 of 40 (all in the first segment): "t-0-20", topic "t", tag "tag2", key "k20",
    // property n=20, then the body.
    let fields: [(&str, u64); 19] = [
        ("total_len", 0),
        ("magic", 4),
        ("crc", 8),
        ("queue_id", 12),
        ("queue_offset", 16),
        ("commit_offset", 24),
        ("flags", 32),
        ("born_ts", 36),
        ("store_ts", 44),
        ("reconsume_times", 52),
        ("msg_id len", 56),
        ("msg_id", 58),
        ("topic len", 64),
        ("topic", 65),
        ("tag marker", 66),
        ("tag", 69),
        ("key", 77),
        ("property value", 89),
        ("body len", 91),
    ];
    let base = tempfile::tempdir().unwrap();
    let rs = {
        let store = Store::open(tiny_config(base.path(), FlushMode::Sync)).unwrap();
        let rs: Vec<AppendResult> = (0..40).map(|i| store.append(msg("t", 0, i)).unwrap()).collect();
        store.shutdown().unwrap();
        rs
    };
    assert!(rs[39].commit_offset < SEGMENT, "one segment");
    // A crash after the last checkpoint: recovery scans the segment.
    fs::write(base.path().join("abort"), b"").unwrap();
    let victim = rs[20];
    let kept: Vec<usize> = (0..40).filter(|&i| i != 20).collect();
    let mut cases: Vec<(&str, u64, u8)> = fields.iter().map(|&(n, off)| (n, off, 0x01)).collect();
    cases.push(("batch flag", 35, 0x80));
    cases.push(("body", u64::from(victim.size) - 1, 0x40));
    for (name, off, mask) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let (path, pos) = segment_of(dir.path(), victim.commit_offset);
        let original = fs::read(&path).unwrap()[pos as usize..(pos + u64::from(victim.size)) as usize].to_vec();
        flip(&path, pos + off, mask);
        assert_refused(dir.path(), &path, Some(pos));
        let store = Store::open(repair_config(dir.path())).unwrap_or_else(|e| panic!("{name}: {e}"));
        check(&store, &rs, &kept);
        let q = fs::read(dir.path().join("quarantine").join(format!("{:020}", victim.commit_offset))).unwrap();
        let mut want = original.clone();
        want[off as usize] ^= mask;
        assert_eq!(q, want, "{name}: the quarantine holds the damaged record, exactly");
    }
}

#[test]
fn damage_in_sealed_segments_below_the_checkpoint() {
    let live = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(manual_config(live.path())).unwrap();
    let mut rs = Vec::new();
    while store.stats().segment_count < 3 {
        rs.push(store.append(msg("t", 0, rs.len() as u64)).unwrap());
    }
    for _ in 0..10 {
        rs.push(store.append(msg("t", 0, rs.len() as u64)).unwrap());
    }
    // Dispatched and flushed: recovery starts scanning at the third segment.
    assert!(store.wait_dispatched(store.stats().max_offset, Duration::from_secs(10)));
    store.flush().unwrap();
    let checkpointed = rs.len();
    while store.stats().segment_count < 5 {
        rs.push(store.append(msg("t", 0, rs.len() as u64)).unwrap());
    }
    assert!(store.wait_dispatched(store.stats().max_offset, Duration::from_secs(10)));
    copy_dir(live.path(), dir.path());
    drop(store);

    // One damaged record in the first segment (a sealed one recovery does not scan without
    // repair) and one in the third (sealed, holding the checkpoint, scanned).
    let in_seg = |k: u64| {
        rs.iter().enumerate().filter(|(_, r)| r.commit_offset / SEGMENT == k).map(|(i, _)| i).collect::<Vec<_>>()
    };
    let first = in_seg(0)[in_seg(0).len() / 2];
    let third = in_seg(2)[3];
    assert!(third + 1 < checkpointed, "the damage lies below the checkpoint");
    for &i in &[first, third] {
        let (path, pos) = segment_of(dir.path(), rs[i].commit_offset);
        flip(&path, pos + 100, 0x10);
    }
    let (third_path, third_pos) = segment_of(dir.path(), rs[third].commit_offset);
    assert_refused(dir.path(), &third_path, Some(third_pos));
    let store = Store::open(repair_config(dir.path())).unwrap();
    let kept: Vec<usize> = (0..rs.len()).filter(|&i| i != first && i != third).collect();
    let units = store.read_queue("t", 0, 0, usize::MAX).unwrap();
    assert_eq!(units.len(), kept.len());
    for &i in &kept {
        assert_is_msg(&store.read(rs[i].commit_offset).unwrap(), "t", 0, i as u64);
    }
    for &i in &[first, third] {
        assert!(store.read(rs[i].commit_offset).is_err());
        assert!(store.lookup_msg_id(&msg_id("t", 0, i as u64)).unwrap().is_empty());
    }
    assert_eq!(fs::read_dir(dir.path().join("quarantine")).unwrap().count(), 2);
    store.shutdown().unwrap();
    drop(store);
    // Repaired for good: a plain open accepts it now.
    let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
    assert_eq!(store.read_queue("t", 0, 0, usize::MAX).unwrap().len(), kept.len());
}

/// A store with 60 messages on `t`/0 and `t`/1 (interleaved), stopped cleanly and then marked
/// as crashed after its last checkpoint, so that recovery checks queues and index in full.
fn two_queue_store(dir: &Path) -> Vec<(u32, u64, AppendResult)> {
    let store = Store::open(tiny_config(dir, FlushMode::Sync)).unwrap();
    let rs: Vec<_> = (0..60u64)
        .map(|n| {
            let (q, i) = ((n % 2) as u32, n / 2);
            (q, i, store.append(msg("t", q, i)).unwrap())
        })
        .collect();
    store.shutdown().unwrap();
    fs::write(dir.join("abort"), b"").unwrap();
    rs
}

/// Everything is back: queues dense and pointing at their records, lookups find them all.
fn check_rebuilt(dir: &Path, rs: &[(u32, u64, AppendResult)], what: &str) {
    let store = Store::open(tiny_config(dir, FlushMode::Sync)).unwrap_or_else(|e| panic!("{what}: {e}"));
    for q in 0..2u32 {
        let units = store.read_queue("t", q, 0, usize::MAX).unwrap();
        let want: Vec<u64> = rs.iter().filter(|r| r.0 == q).map(|r| r.2.commit_offset).collect();
        let got: Vec<u64> = units.iter().map(|u| u.commit_offset).collect();
        assert_eq!(got, want, "{what}: queue {q}");
        for u in &units {
            let m = store.read(u.commit_offset).unwrap();
            assert_eq!((m.queue_id, m.queue_offset, m.size), (q, u.queue_offset, u.size), "{what}");
        }
    }
    for (q, i, r) in rs {
        assert_eq!(store.lookup_msg_id(&msg_id("t", *q, *i)).unwrap(), vec![r.commit_offset], "{what}: {q}/{i}");
        assert_eq!(store.lookup_key("t", &format!("k{i}"), 10).unwrap().len(), 2, "{what}: key k{i}");
    }
    let r = store.append(msg("t", 0, 30)).unwrap();
    assert_eq!(r.queue_offset, 30, "{what}");
}

#[test]
fn damage_in_a_consume_queue_file_is_rebuilt_from_the_log() {
    let base = tempfile::tempdir().unwrap();
    let rs = two_queue_store(base.path());
    let cq = |dir: &Path| dir.join("consumequeue/t/0").join(format!("{:020}", 0));
    // Unit 10 of t/0 (units 0..64 share the first file): each byte of its commit offset and
    // size, the high bit flipped; and the last unit, which recovery compares with its record.
    let mut cases: Vec<(String, u64)> = (0..12).map(|b| (format!("unit 10 byte {b}"), 10 * 20 + b)).collect();
    cases.push(("last unit, size".into(), 29 * 20 + 8));
    for (what, at) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        flip(&cq(dir.path()), at, 0x80);
        check_rebuilt(dir.path(), &rs, &what);
    }
}

#[test]
fn damage_in_an_index_file_is_rebuilt_from_the_log() {
    let base = tempfile::tempdir().unwrap();
    let rs = two_queue_store(base.path());
    let first = |dir: &Path| {
        let mut files: Vec<PathBuf> = fs::read_dir(dir.join("index")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files[0].clone()
    };
    // Header words (magic, begin, last offset, count, slots, capacity), a slot, and an
    // entry's commit offset and back link. Index files: 64-byte header, 64 slots of 4 bytes,
    // then 24-byte entries.
    let entries_at = 64 + 64 * 4;
    let cases: [(&str, u64); 9] = [
        ("magic", 0),
        ("begin", 8),
        ("last offset", 16 + 7),
        ("count", 24 + 7),
        ("slots", 32),
        ("capacity", 40 + 7),
        ("a slot", 64 + 4 * 5 + 3),
        ("entry 3 commit offset", entries_at + 2 * 24 + 8 + 7),
        ("entry 3 back link", entries_at + 2 * 24 + 16 + 3),
    ];
    for (what, at) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        flip(&first(dir.path()), at, 0x80);
        check_rebuilt(dir.path(), &rs, what);
    }
}
