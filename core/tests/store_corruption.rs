//! Recovery from damaged files: bytes flipped or cut at the log's tail (also in the middle of
//! the last record), garbage after the end, a half-written batch, a lost checkpoint or index.
//! Recovery must keep every record before the damage, never panic, and let appends continue.
//! Damage above the checkpointed (durable) position is a torn tail and is cut; damage below it
//! makes a plain open refuse, and an open with `repair` keep every intact record.
//!
//! An unclean stop is simulated by copying the directory of a running store (the `abort` file
//! included), which is what a process kill leaves behind.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{assert_is_msg, msg, msg_id, open, tiny_config};
use ferrymq_core::store::{AppendResult, FlushMode, Store};
use ferrymq_core::Error;

const SEGMENT: u64 = 64 * 1024;

/// The segment file and in-file position of a commit offset (tiny segments are all equal).
fn locate(dir: &Path, commit_offset: u64) -> (PathBuf, u64) {
    let base = commit_offset - commit_offset % SEGMENT;
    (dir.join("commitlog").join(format!("{base:020}")), commit_offset - base)
}

fn flip(dir: &Path, commit_offset: u64, rel: u64) {
    let (path, pos) = locate(dir, commit_offset);
    let mut f = fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(pos + rel)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x5A;
    f.seek(SeekFrom::Start(pos + rel)).unwrap();
    f.write_all(&b).unwrap();
}

/// Copies a (possibly running) store directory: what a kill -9 at this moment leaves.
fn snapshot(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            snapshot(&e.path(), &target);
        } else if e.file_name() != "lock" {
            match fs::copy(e.path(), target) {
                Ok(_) => {}
                // A checkpoint's temporary file renamed away meanwhile.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => panic!("copying {}: {err}", e.path().display()),
            }
        }
    }
}

/// Appends `n` messages to `t`/0 and returns their results.
fn fill(store: &Store, n: u64) -> Vec<AppendResult> {
    (0..n).map(|i| store.append(msg("t", 0, i)).unwrap()).collect()
}

/// Checks that exactly the first `kept` of `rs` survive, all intact and dispatched, and that
/// appends continue with the next queue offset.
fn check_kept(dir: &Path, rs: &[AppendResult], kept: usize) {
    let lost: Vec<usize> = (kept..rs.len()).collect();
    check_survivors(dir, rs, &lost, false);
}

/// Damage below the durable position: a plain open refuses (naming a commit log file and
/// leaving every file as it was); an open with `repair` keeps every record but `lost`.
fn check_refused_then_repaired(dir: &Path, rs: &[AppendResult], lost: &[usize]) {
    let before = files_of(dir);
    let err = Store::open(tiny_config(dir, FlushMode::Sync)).unwrap_err();
    match &err {
        Error::Corrupt { path, .. } => assert!(path.starts_with(dir.join("commitlog")), "{err}"),
        e => panic!("expected Corrupt, got {e}"),
    }
    assert!(err.to_string().contains("repair"), "{err}");
    assert_eq!(files_of(dir), before, "a refused open must not change any file");
    check_survivors(dir, rs, lost, true);
    assert!(fs::read_dir(dir.join("quarantine")).unwrap().count() >= 1, "nothing quarantined");
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

/// Opens (with `repair` if asked) and checks that every record of `rs` but `lost` survives,
/// intact, dispatched and indexed, that the lost ones are gone, and that appends continue.
fn check_survivors(dir: &Path, rs: &[AppendResult], lost: &[usize], repair: bool) {
    let mut c = tiny_config(dir, FlushMode::Sync);
    c.repair = repair;
    let store = Store::open(c).unwrap();
    let kept: Vec<usize> = (0..rs.len()).filter(|i| !lost.contains(i)).collect();
    let next = kept.last().map_or(0, |&i| i as u64 + 1);
    assert_eq!(store.queue_bounds("t", 0).1, next);
    for &i in &kept {
        assert_is_msg(&store.read(rs[i].commit_offset).unwrap(), "t", 0, i as u64);
    }
    for &i in lost {
        assert!(store.read(rs[i].commit_offset).is_err(), "damaged record {i} must be gone");
        assert!(store.lookup_msg_id(&msg_id("t", 0, i as u64)).unwrap().is_empty());
    }
    let units = store.read_queue("t", 0, 0, usize::MAX).unwrap();
    assert_eq!(units.len(), kept.len());
    assert!(units
        .iter()
        .zip(&kept)
        .all(|(u, &i)| u.commit_offset == rs[i].commit_offset && u.queue_offset == i as u64));
    for &i in kept.iter().step_by(7).chain(kept.last()) {
        assert_eq!(store.lookup_msg_id(&msg_id("t", 0, i as u64)).unwrap(), vec![rs[i].commit_offset]);
    }
    let r = store.append(msg("t", 0, next)).unwrap();
    assert_eq!(r.queue_offset, next);
    assert!(store.wait_dispatched(r.commit_offset + 1, Duration::from_secs(10)));
    assert_is_msg(&store.read(r.commit_offset).unwrap(), "t", 0, next);
    assert_eq!(store.lookup_msg_id(&msg_id("t", 0, next)).unwrap(), vec![r.commit_offset]);
    store.shutdown().unwrap();
    drop(store);
    // And once more, cleanly, without repair.
    let store = open(dir, FlushMode::Sync);
    assert_eq!(store.queue_bounds("t", 0).1, next + 1);
    for &i in &kept {
        assert_is_msg(&store.read(rs[i].commit_offset).unwrap(), "t", 0, i as u64);
    }
}

#[test]
fn flipped_byte_in_last_record_after_clean_stop() {
    // Header (length, magic, CRC), fixed fields, strings and body of the last record.
    for rel in [0u64, 5, 9, 20, 30, 60, 70, 200] {
        let dir = tempfile::tempdir().unwrap();
        let rs = {
            let store = open(dir.path(), FlushMode::Sync);
            let rs = fill(&store, 200);
            store.shutdown().unwrap();
            rs
        };
        flip(dir.path(), rs[199].commit_offset, rel);
        // A clean stop made every record durable: this is bit rot, not a torn tail.
        check_refused_then_repaired(dir.path(), &rs, &[199]);
    }
}

#[test]
fn flipped_byte_in_last_record_after_unclean_stop() {
    for rel in [1u64, 10, 44, 100, 300] {
        let dir = tempfile::tempdir().unwrap();
        let crashed = tempfile::tempdir().unwrap();
        // The checkpoint covers the first 299 records only: the last one is a torn tail.
        let store = open_no_background_flush(dir.path());
        let mut rs = fill(&store, 299);
        store.flush().unwrap();
        rs.push(store.append(msg("t", 0, 299)).unwrap());
        let last = rs.last().unwrap();
        assert!(store.wait_dispatched(last.commit_offset + u64::from(last.size), Duration::from_secs(10)));
        snapshot(dir.path(), crashed.path());
        drop(store);
        assert!(crashed.path().join("abort").exists());
        flip(crashed.path(), rs[299].commit_offset, rel);
        check_kept(crashed.path(), &rs, 299);
    }
}

/// A store whose checkpoint only moves when the test calls `flush` (no periodic flush, no
/// retention sweep).
fn open_no_background_flush(dir: &Path) -> std::sync::Arc<Store> {
    let mut c = tiny_config(dir, FlushMode::Async);
    c.flush_interval = Duration::from_secs(3600);
    c.retention_check_interval = Duration::from_secs(3600);
    Store::open(c).unwrap()
}

#[test]
fn damage_in_the_middle_of_the_tail_drops_everything_after_it() {
    // A torn write can leave damage a few records before the end; everything from the first
    // bad record on goes (it may have been acknowledged only in async mode, never in sync).
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    let rs = fill(&store, 100);
    snapshot(dir.path(), crashed.path());
    drop(store);
    // Make the checkpoint older than the damage so recovery scans over it.
    fs::remove_file(crashed.path().join("checkpoint")).unwrap();
    flip(crashed.path(), rs[95].commit_offset, 80);
    check_kept(crashed.path(), &rs, 95);
}

#[test]
fn truncated_segment_file() {
    let dir = tempfile::tempdir().unwrap();
    let rs = {
        let store = open(dir.path(), FlushMode::Sync);
        let rs = fill(&store, 150);
        store.shutdown().unwrap();
        rs
    };
    let last = rs[149];
    let (path, pos) = locate(dir.path(), last.commit_offset);
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(pos + u64::from(last.size) / 2).unwrap();
    drop(f);
    check_refused_then_repaired(dir.path(), &rs, &[149]);
}

#[test]
fn garbage_after_the_end_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let rs = {
        let store = open(dir.path(), FlushMode::Sync);
        let rs = fill(&store, 50);
        store.shutdown().unwrap();
        rs
    };
    let end = rs[49].commit_offset + u64::from(rs[49].size);
    let (path, pos) = locate(dir.path(), end);
    let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(pos)).unwrap();
    f.write_all(&[0xEE; 300]).unwrap();
    drop(f);
    check_kept(dir.path(), &rs, 50);
}

#[test]
fn incomplete_trailing_batch_is_dropped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    let mut rs = fill(&store, 20);
    let batch: Vec<_> = (20..26).map(|i| msg("t", 0, i)).collect();
    rs.extend(store.append_batch(batch).unwrap());
    snapshot(dir.path(), crashed.path());
    drop(store);
    // Damage the fifth record of the batch: the batch's first four are intact but must go too.
    flip(crashed.path(), rs[24].commit_offset, 100);
    check_kept(crashed.path(), &rs, 20);
}

#[test]
fn lost_checkpoint_and_index_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    let rs = fill(&store, 400);
    let last = rs.last().unwrap();
    assert!(store.wait_dispatched(last.commit_offset + u64::from(last.size), Duration::from_secs(10)));
    snapshot(dir.path(), crashed.path());
    drop(store);
    fs::remove_file(crashed.path().join("checkpoint")).unwrap();
    fs::remove_dir_all(crashed.path().join("index")).unwrap();
    fs::remove_dir_all(crashed.path().join("consumequeue")).unwrap();
    check_kept(crashed.path(), &rs, 400);
    let store = open(crashed.path(), FlushMode::Sync);
    for i in [0u64, 123, 399] {
        assert_eq!(store.lookup_key("t", &format!("k{i}"), 5).unwrap(), vec![rs[i as usize].commit_offset]);
    }
}

#[test]
fn damaged_checkpoint_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let rs = {
        let store = open(dir.path(), FlushMode::Sync);
        let rs = fill(&store, 80);
        store.shutdown().unwrap();
        rs
    };
    fs::write(dir.path().join("checkpoint"), b"not a checkpoint").unwrap();
    check_kept(dir.path(), &rs, 80);
}

#[test]
fn consume_queue_pointing_past_the_end_is_cut() {
    // The queue files claim more than the log holds (e.g. the log's tail was lost in a
    // machine crash while queue pages reached the disk).
    let dir = tempfile::tempdir().unwrap();
    let rs = {
        let store = open(dir.path(), FlushMode::Sync);
        let rs = fill(&store, 60);
        store.shutdown().unwrap();
        rs
    };
    // Cut the log back to 40 records by zeroing from record 40 on and dropping the
    // checkpoint; queue units 40..60 now point past the end.
    let (path, pos) = locate(dir.path(), rs[40].commit_offset);
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(pos).unwrap();
    f.set_len(SEGMENT).unwrap();
    drop(f);
    for later in fs::read_dir(dir.path().join("commitlog")).unwrap() {
        let p = later.unwrap().path();
        if p > path {
            fs::remove_file(p).unwrap();
        }
    }
    fs::write(dir.path().join("abort"), b"").unwrap();
    // The checkpoint says all 60 were flushed: losing 20 of them is damage, not a torn tail.
    let lost: Vec<usize> = (40..60).collect();
    check_refused_then_repaired(dir.path(), &rs, &lost);
}

#[test]
fn recovery_never_panics_on_random_damage() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let rs = {
            let store = open(dir.path(), FlushMode::Async);
            let rs = fill(&store, 120);
            store.shutdown().unwrap();
            rs
        };
        // Scribble over a random stretch of the last 20 records.
        let from = rs[100].commit_offset;
        let end = rs[119].commit_offset + u64::from(rs[119].size);
        let at = rng.gen_range(from..end);
        let (path, pos) = locate(dir.path(), at);
        let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(pos)).unwrap();
        let junk: Vec<u8> = (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect();
        f.write_all(&junk).unwrap();
        drop(f);
        if round % 2 == 0 {
            fs::write(dir.path().join("abort"), b"").unwrap();
        }
        let hit =
            |r: &AppendResult| r.commit_offset < at + junk.len() as u64 && at < r.commit_offset + u64::from(r.size);
        // Everything was durable. A plain open refuses and changes nothing when its scan meets
        // the damage; a clean stop's open scans nothing, and a damaged record then fails its
        // CRC when read. Either way no intact record is lost.
        let copy = tempfile::tempdir().unwrap();
        snapshot(dir.path(), copy.path());
        let before = files_of(dir.path());
        match Store::open(tiny_config(dir.path(), FlushMode::Sync)) {
            Err(Error::Corrupt { .. }) => assert_eq!(files_of(dir.path()), before),
            Err(e) => panic!("round {round}: {e}"),
            Ok(store) => {
                for (i, r) in rs.iter().enumerate() {
                    match store.read(r.commit_offset) {
                        Ok(m) if !hit(r) => assert_is_msg(&m, "t", 0, i as u64),
                        Ok(m) => {
                            assert_eq!(m.body, common::body("t", 0, i as u64), "round {round}: junk read as a record")
                        }
                        Err(e) => assert!(hit(r), "round {round}: intact record {i} unreadable: {e}"),
                    }
                }
            }
        }
        // Repair keeps every record the junk did not touch, before and after it.
        let mut c = tiny_config(copy.path(), FlushMode::Sync);
        c.repair = true;
        let store = Store::open(c).unwrap();
        for (i, r) in rs.iter().enumerate() {
            if !hit(r) {
                assert_is_msg(&store.read(r.commit_offset).unwrap(), "t", 0, i as u64);
            }
        }
        let (_, max) = store.queue_bounds("t", 0);
        let units = store.read_queue("t", 0, 0, usize::MAX).unwrap();
        assert!(units.len() >= rs.iter().filter(|r| !hit(r)).count(), "round {round}");
        let r = store.append(msg("t", 0, max)).unwrap();
        assert_eq!(r.queue_offset, max);
    }
}
