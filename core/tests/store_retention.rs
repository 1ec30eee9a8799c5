//! Retention by age and by disk usage: oldest segments go, queues, index and bounds follow.

mod common;

use std::fs;
use std::time::Duration;

use common::{assert_is_msg, msg, msg_id, open, tiny_config};
use ferrymq_core::store::{AppendResult, FlushMode, Store};
use ferrymq_core::Error;

const HOUR_MS: u64 = 3_600_000;

fn fill(store: &Store, n: u64) -> Vec<AppendResult> {
    (0..n).map(|i| store.append(msg("t", (i % 2) as u32, i / 2)).unwrap()).collect()
}

fn files(dir: &std::path::Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn old_segments_are_deleted_and_everything_follows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    let rs = fill(&store, 2000);
    let last = *rs.last().unwrap();
    assert!(store.wait_dispatched(last.commit_offset + u64::from(last.size), Duration::from_secs(10)));
    let segs = store.stats().segment_count;
    assert!(segs > 5);
    let cq_files_before = files(&dir.path().join("consumequeue/t/0"));
    let index_files_before = files(&dir.path().join("index"));
    assert!(cq_files_before > 3 && index_files_before > 3);

    // Nothing is old yet.
    assert_eq!(store.run_retention(last.store_ts).unwrap(), 0);
    // 73 hours later everything but the active segment is past the default 72 h.
    let deleted = store.run_retention(last.store_ts + 73 * HOUR_MS).unwrap();
    assert_eq!(deleted, segs - 1);
    let st = store.stats();
    assert_eq!(st.segment_count, 1);
    assert!(st.min_offset > 0);
    assert_eq!(files(&dir.path().join("commitlog")), 1);
    assert!(files(&dir.path().join("consumequeue/t/0")) < cq_files_before);
    assert!(files(&dir.path().join("index")) < index_files_before);

    // Bounds moved up; what is left is readable; what went is a typed error.
    for q in 0..2u32 {
        let (min, max) = store.queue_bounds("t", q);
        assert_eq!(max, 1000);
        assert!(min > 0 && min <= max);
        let units = store.read_queue("t", q, 0, usize::MAX).unwrap();
        assert_eq!(units.first().map(|u| u.queue_offset), Some(min).filter(|&m| m < max));
        for u in units {
            assert!(u.commit_offset >= st.min_offset);
            assert_is_msg(&store.read(u.commit_offset).unwrap(), "t", q, u.queue_offset);
        }
    }
    assert!(matches!(store.read(rs[0].commit_offset), Err(Error::OffsetOutOfRange { .. })));
    assert!(store.lookup_msg_id(&msg_id("t", 0, 0)).unwrap().is_empty());
    assert_eq!(store.lookup_msg_id(&msg_id("t", 1, 999)).unwrap(), vec![last.commit_offset]);

    // Appends carry on and a restart keeps the new bounds.
    let r = store.append(msg("t", 0, 1000)).unwrap();
    assert_eq!(r.queue_offset, 1000);
    let bounds = store.queue_bounds("t", 1);
    drop(store);
    let store = open(dir.path(), FlushMode::Async);
    assert_eq!(store.queue_bounds("t", 1), bounds);
    assert_eq!(store.stats().min_offset, st.min_offset);
}

#[test]
fn only_segments_past_retention_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = tiny_config(dir.path(), FlushMode::Async);
    c.retention = Duration::from_secs(3600);
    let store = Store::open(c).unwrap();
    let rs = fill(&store, 600);
    let segs = store.stats().segment_count;
    // Pretend the clock is exactly one hour past the store time of record 300: segments whose
    // newest record is older than that go (more than the retention old); the one holding
    // record 300 is exactly the retention old and stays.
    let pivot = rs[300];
    let now = pivot.store_ts + 3_600_000;
    let deleted = store.run_retention(now).unwrap();
    assert!(deleted < segs);
    for r in &rs {
        let kept = store.read(r.commit_offset).is_ok();
        if r.store_ts >= pivot.store_ts {
            assert!(kept, "record at {} newer than the cut must stay", r.commit_offset);
        }
    }
}

#[test]
fn disk_pressure_deletes_oldest_and_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), FlushMode::Async);
        fill(&store, 1000);
    }
    let mut c = tiny_config(dir.path(), FlushMode::Async);
    c.disk_max_used_ratio = 1e-9; // any real disk is fuller than this
    let store = Store::open(c).unwrap();
    let e = store.append(msg("t", 0, 5000)).unwrap_err();
    assert!(matches!(e, Error::InsufficientStorage { .. }), "{e:?}");
    assert_eq!(e.kind(), "insufficient-storage");
    let segs = store.stats().segment_count;
    assert!(segs > 1);
    // Young segments, but the disk is "full": all but the active one go, oldest first.
    assert_eq!(store.run_retention(0).unwrap(), segs - 1);
    assert_eq!(store.stats().segment_count, 1);
    assert!(matches!(store.append(msg("t", 0, 5000)), Err(Error::InsufficientStorage { .. })));
}
