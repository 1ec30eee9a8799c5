//! Faults injected through the store's real I/O paths (`--features failpoints`): each ends in
//! the documented outcome, never in an acknowledged message that is then lost.
//!
//! - EIO from an msync or fsync on any thread that flushes (group-commit leader, periodic
//!   flusher; commit log, consume queue, index, checkpoint) poisons the store: no later
//!   append is acknowledged, what was acknowledged stays readable and survives a reopen.
//! - ENOSPC when allocating a new segment fails that append with `InsufficientStorage`; an EIO
//!   from mmap fails it with an I/O error. Neither poisons, and the next append works (the
//!   half-created file is gone).
//! - A short write of a record fails that append; nothing half-written is ever read or
//!   recovered.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{assert_is_msg, msg, tiny_config};
use ferrymq_core::store::fault::{self, Fault, Point};
use ferrymq_core::store::{AppendResult, FlushMode, Store};
use ferrymq_core::Error;

fn inject(dir: &Path, point: Point, errno: i32, thread: Option<&str>, times: u32) {
    fault::inject(Fault { point, path_prefix: dir.to_path_buf(), thread: thread.map(str::to_string), errno, times });
}

fn this_thread() -> String {
    std::thread::current().name().expect("test threads are named").to_string()
}

/// Appends to `t`/0 until an append fails, for at most 10 s: the call that hits the fault may
/// report the I/O error itself, every later one `Poisoned`. Collects what was acknowledged.
fn append_until_poisoned(store: &Store, acked: &mut Vec<AppendResult>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the store was never poisoned");
        match store.append(msg("t", 0, acked.len() as u64)) {
            Ok(r) => acked.push(r),
            Err(Error::Poisoned | Error::Io { .. }) => break,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(store.stats().poisoned);
    for _ in 0..3 {
        assert!(matches!(store.append(msg("t", 0, 0)), Err(Error::Poisoned)));
    }
}

/// After poisoning: reads work, a clean shutdown is refused, and a reopen recovers every
/// acknowledged append (the one append that failed may or may not be there: its outcome is
/// unknown, which is what the error says).
fn check_after_poison(dir: &Path, store: std::sync::Arc<Store>, acked: &[AppendResult], flush: FlushMode) {
    for (i, r) in acked.iter().enumerate() {
        assert_is_msg(&store.read(r.commit_offset).unwrap(), "t", 0, i as u64);
    }
    assert!(store.shutdown().is_err(), "a poisoned store must not claim a clean stop");
    drop(store);
    fault::clear(dir);
    let store = Store::open(tiny_config(dir, flush)).unwrap();
    for (i, r) in acked.iter().enumerate() {
        assert_is_msg(&store.read(r.commit_offset).unwrap(), "t", 0, i as u64);
    }
    let (_, max) = store.queue_bounds("t", 0);
    assert!(max == acked.len() as u64 || max == acked.len() as u64 + 1, "{max} after {} acks", acked.len());
    let r = store.append(msg("t", 0, max)).unwrap();
    assert_eq!(r.queue_offset, max);
}

#[test]
fn eio_on_group_commit_msync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
    let mut acked = vec![store.append(msg("t", 0, 0)).unwrap()];
    inject(&dir.path().join("commitlog"), Point::Msync, libc::EIO, Some(&this_thread()), 1);
    append_until_poisoned(&store, &mut acked);
    check_after_poison(dir.path(), store, &acked, FlushMode::Sync);
}

#[test]
fn eio_on_periodic_log_msync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Async)).unwrap();
    let mut acked = Vec::new();
    inject(&dir.path().join("commitlog"), Point::Msync, libc::EIO, Some("ferrymq-flush"), 1);
    append_until_poisoned(&store, &mut acked);
    check_after_poison(dir.path(), store, &acked, FlushMode::Async);
}

#[test]
fn eio_on_consume_queue_msync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Async)).unwrap();
    let mut acked = Vec::new();
    inject(&dir.path().join("consumequeue"), Point::Msync, libc::EIO, Some("ferrymq-flush"), 1);
    append_until_poisoned(&store, &mut acked);
    check_after_poison(dir.path(), store, &acked, FlushMode::Async);
}

#[test]
fn eio_on_index_msync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
    let mut acked = Vec::new();
    inject(&dir.path().join("index"), Point::Msync, libc::EIO, Some("ferrymq-flush"), 1);
    append_until_poisoned(&store, &mut acked);
    check_after_poison(dir.path(), store, &acked, FlushMode::Sync);
}

/// The periodic flush leaves consume queues and index to their own, longer interval
/// (`dispatch_flush_interval`; their msync is mostly random writes that queued up in front of
/// the log's): a failure waiting in the index's msync is not met by the periodic flushes that
/// make the log durable, only by a full flush.
#[test]
fn periodic_flushes_leave_the_index_to_its_own_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), FlushMode::Async);
    config.dispatch_flush_interval = Duration::from_secs(3600);
    let store = Store::open(config).unwrap();
    inject(&dir.path().join("index"), Point::Msync, libc::EIO, None, 1);
    for i in 0..5 {
        let r = store.append(msg("t", 0, i)).unwrap();
        let end = r.commit_offset + u64::from(r.size);
        assert!(store.wait_dispatched(end, Duration::from_secs(10)));
        // In async mode only the periodic flush makes the log durable.
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.stats().flushed_offset < end {
            assert!(!store.stats().poisoned, "a periodic flush met the index's fault");
            assert!(Instant::now() < deadline, "no periodic flush reached {end}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(!store.stats().poisoned);
    assert!(store.flush().is_err(), "a full flush msyncs the index");
    assert!(store.stats().poisoned);
}

#[test]
fn eio_on_checkpoint_fsync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Async)).unwrap();
    let mut acked = Vec::new();
    inject(dir.path(), Point::Fsync, libc::EIO, Some("ferrymq-flush"), 1);
    append_until_poisoned(&store, &mut acked);
    check_after_poison(dir.path(), store, &acked, FlushMode::Async);
}

#[test]
fn eio_on_directory_fsync_of_a_new_segment_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
    let mut acked = Vec::new();
    inject(&dir.path().join("commitlog"), Point::DirSync, libc::EIO, Some(&this_thread()), 1);
    append_until_poisoned(&store, &mut acked);
    assert!(acked.len() > 10, "the first roll failed: {} appends", acked.len());
    check_after_poison(dir.path(), store, &acked, FlushMode::Sync);
}

/// Appends until the first roll fails with `expect`, then checks the store carries on.
fn roll_fails_then_recovers(point: Point, errno: i32, flush: FlushMode, expect: fn(&Error) -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), flush)).unwrap();
    let segments = store.stats().segment_count;
    inject(&dir.path().join("commitlog"), point, errno, Some(&this_thread()), 1);
    let mut acked = Vec::new();
    let err = loop {
        match store.append(msg("t", 0, acked.len() as u64)) {
            Ok(r) => acked.push(r),
            Err(e) => break e,
        }
        assert!(acked.len() < 10_000);
    };
    assert!(expect(&err), "{point:?}: {err}");
    assert!(!store.stats().poisoned);
    assert_eq!(store.stats().segment_count, segments, "no segment was added");
    let names: Vec<_> = std::fs::read_dir(dir.path().join("commitlog")).unwrap().collect();
    assert_eq!(names.len(), segments, "the half-created segment file is gone");
    // The next appends roll fine.
    for _ in 0..50 {
        acked.push(store.append(msg("t", 0, acked.len() as u64)).unwrap());
    }
    assert!(store.stats().segment_count > segments);
    let end = store.stats().max_offset;
    assert!(store.wait_dispatched(end, Duration::from_secs(10)));
    let units = store.read_queue("t", 0, 0, usize::MAX).unwrap();
    assert_eq!(units.len(), acked.len());
    for (i, r) in acked.iter().enumerate() {
        assert_eq!(units[i].commit_offset, r.commit_offset);
        assert_is_msg(&store.read(r.commit_offset).unwrap(), "t", 0, i as u64);
    }
    store.shutdown().unwrap();
    fault::clear(dir.path());
}

#[test]
fn enospc_on_segment_allocation_is_insufficient_storage() {
    for flush in [FlushMode::Async, FlushMode::Sync] {
        roll_fails_then_recovers(Point::Allocate, libc::ENOSPC, flush, |e| {
            matches!(e, Error::InsufficientStorage { .. })
        });
    }
}

#[test]
fn failed_mmap_of_a_new_segment_is_an_io_error() {
    roll_fails_then_recovers(Point::Mmap, libc::ENOMEM, FlushMode::Async, |e| matches!(e, Error::Io { .. }));
}

#[test]
fn short_write_fails_the_append_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
    let mut acked: Vec<AppendResult> = (0..5).map(|i| store.append(msg("t", 0, i)).unwrap()).collect();
    inject(&dir.path().join("commitlog"), Point::Pwrite, libc::EIO, Some(&this_thread()), 1);
    assert!(matches!(store.append(msg("t", 0, 5)), Err(Error::Io { .. })));
    // Half of record 5 lies past the end: a crash now must recover exactly 0..5.
    fault::power_loss_image(dir.path(), crashed.path()).unwrap();
    {
        let store = Store::open(tiny_config(crashed.path(), FlushMode::Sync)).unwrap();
        assert_eq!(store.queue_bounds("t", 0), (0, 5));
    }
    // The running store overwrites the half record.
    for i in 5..20 {
        acked.push(store.append(msg("t", 0, i)).unwrap());
    }
    assert_eq!(acked[5].commit_offset, acked[4].commit_offset + u64::from(acked[4].size));
    for (i, r) in acked.iter().enumerate() {
        assert_is_msg(&store.read(r.commit_offset).unwrap(), "t", 0, i as u64);
    }
    store.shutdown().unwrap();
    drop(store);
    let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
    assert_eq!(store.queue_bounds("t", 0), (0, 20));
    fault::clear(dir.path());
}

#[test]
fn in_sync_mode_a_record_is_visible_only_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
    let ok = store.append(msg("t", 0, 0)).unwrap();
    assert!(store.wait_dispatched(ok.commit_offset + u64::from(ok.size), Duration::from_secs(10)));
    // The next append's msync fails: the record is in the page cache but not durable, and a
    // power loss could take it back. No consumer may see it (a producer told `Poisoned` may
    // retry it elsewhere), and no lookup may find it.
    inject(&dir.path().join("commitlog"), Point::Msync, libc::EIO, Some(&this_thread()), 1);
    assert!(store.append(msg("t", 0, 1)).is_err());
    let end = store.stats().max_offset;
    assert!(end > ok.commit_offset + u64::from(ok.size), "the record was written");
    assert!(!store.wait_dispatched(end, Duration::from_millis(500)));
    assert_eq!(store.queue_bounds("t", 0), (0, 1));
    assert!(store.lookup_msg_id(&common::msg_id("t", 0, 1)).unwrap().is_empty());
    drop(store);
    fault::clear(dir.path());
}

#[test]
fn dispatch_out_of_space_refuses_appends_until_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Async)).unwrap();
    inject(&dir.path().join("consumequeue"), Point::Allocate, libc::ENOSPC, Some("ferrymq-dispatch"), u32::MAX);
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        assert!(Instant::now() < deadline, "appends were never refused");
        match store.append(msg("t", 0, acked.len() as u64)) {
            Ok(r) => acked.push(r),
            Err(e) => break e,
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(matches!(err, Error::InsufficientStorage { .. }), "{err}");
    assert!(!store.stats().poisoned);
    assert_eq!(store.queue_bounds("t", 0), (0, 0), "nothing could be dispatched");
    fault::clear(dir.path());
    // Dispatch resumes by itself, and appends with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "appends never resumed");
        match store.append(msg("t", 0, acked.len() as u64)) {
            Ok(r) => {
                acked.push(r);
                break;
            }
            Err(Error::InsufficientStorage { .. }) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(store.wait_dispatched(store.stats().max_offset, Duration::from_secs(10)));
    let units = store.read_queue("t", 0, 0, usize::MAX).unwrap();
    assert_eq!(units.len(), acked.len());
    for (i, r) in acked.iter().enumerate() {
        assert_eq!(units[i].commit_offset, r.commit_offset);
    }
    store.shutdown().unwrap();
}

#[test]
fn a_dispatch_error_poisons_instead_of_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
    inject(&dir.path().join("index"), Point::Mmap, libc::EIO, Some("ferrymq-dispatch"), u32::MAX);
    let mut acked = Vec::new();
    append_until_poisoned(&store, &mut acked);
    check_after_poison(dir.path(), store, &acked, FlushMode::Sync);
}

/// Waits `wait` while producers append, then images `dir` into `image` as a power loss at
/// that instant would leave it, stops the producers, and returns what was acknowledged before
/// the instant: all of it must survive.
fn power_loss_after<T: Clone>(
    wait: Duration,
    dir: &Path,
    image: &Path,
    acked: &std::sync::Mutex<Vec<T>>,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<T> {
    std::thread::sleep(wait);
    let before = acked.lock().unwrap().clone();
    fault::power_loss_image(dir, image).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    before
}

/// Shuts the store down and stops the power-loss model for its directory.
fn stop_tracked(store: std::sync::Arc<Store>, dir: &Path) {
    store.shutdown().unwrap();
    drop(store);
    fault::untrack(dir);
}

/// The power-loss model: while several threads append in sync mode, the directory is imaged
/// as a machine crash at that instant would leave it (every byte no completed msync covered
/// is dropped; see `fault::power_loss_image`). Recovery of the image must hold every append
/// acknowledged before the instant, intact, with dense queues and working lookups. (A SIGKILL
/// keeps the page cache and cannot show this.)
///
/// Odd rounds leave consume queues and index unflushed after the open (a long
/// `dispatch_flush_interval`): recovery rebuilds them from the log.
#[test]
fn power_loss_keeps_every_sync_acknowledged_append() {
    use std::sync::Mutex;
    let config = |dir: &Path, round: u64| {
        let mut c = tiny_config(dir, FlushMode::Sync);
        if round % 2 == 1 {
            c.dispatch_flush_interval = Duration::from_secs(3600);
        }
        c
    };
    for round in 0..4u64 {
        let dir = tempfile::tempdir().unwrap();
        let image = tempfile::tempdir().unwrap();
        fault::track_durable(dir.path());
        let store = Store::open(config(dir.path(), round)).unwrap();
        let acked: Mutex<Vec<(u32, u64, AppendResult)>> = Mutex::new(Vec::new());
        let stop = std::sync::atomic::AtomicBool::new(false);
        let taken = std::thread::scope(|s| {
            for q in 0..3u32 {
                let (store, acked, stop) = (&store, &acked, &stop);
                s.spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let r = store.append(msg("t", q, i)).unwrap();
                        acked.lock().unwrap().push((q, i, r));
                        i += 1;
                    }
                });
            }
            power_loss_after(Duration::from_millis(150 + 35 * round), dir.path(), image.path(), &acked, &stop)
        });
        stop_tracked(store, dir.path());
        assert!(taken.len() > 20, "round {round}: only {} appends", taken.len());

        let store = Store::open(config(image.path(), round)).unwrap();
        assert!(store.wait_dispatched(store.stats().max_offset, Duration::from_secs(10)));
        for (q, i, r) in &taken {
            let got = store.read(r.commit_offset).unwrap_or_else(|e| panic!("round {round}: acked {q}/{i} lost: {e}"));
            assert_is_msg(&got, "t", *q, *i);
        }
        for q in 0..3u32 {
            let units = store.read_queue("t", q, 0, usize::MAX).unwrap();
            let acked_here = taken.iter().filter(|(qq, _, _)| *qq == q).count();
            assert!(units.len() >= acked_here, "round {round}: queue {q} has {} of {acked_here}", units.len());
            for (n, u) in units.iter().enumerate() {
                assert_eq!(u.queue_offset, n as u64, "queue {q} is dense");
                assert_is_msg(&store.read(u.commit_offset).unwrap(), "t", q, n as u64);
            }
        }
        for (q, i, r) in taken.iter().step_by(5) {
            assert_eq!(store.lookup_msg_id(&common::msg_id("t", *q, *i)).unwrap(), vec![r.commit_offset]);
        }
        eprintln!("power loss round {round}: {} acknowledged appends survived", taken.len());
    }
}

/// The power-loss model for queued batches: three producers keep several batches of one to
/// three messages queued each, so the writer thread appends batches of different producers
/// in one write. Recovery of an image taken at an instant holds every batch acknowledged
/// durable before it, and every batch whole or not at all: each queue ends at a batch
/// boundary.
#[test]
fn power_loss_keeps_queued_batches_whole() {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    for round in 0..3u64 {
        let dir = tempfile::tempdir().unwrap();
        let image = tempfile::tempdir().unwrap();
        fault::track_durable(dir.path());
        let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
        // Per queue: the index after each queued batch; the acknowledged (queue, i, result).
        let boundaries: Mutex<Vec<Vec<u64>>> = Mutex::new(vec![vec![0]; 3]);
        let acked: Mutex<Vec<(u32, u64, AppendResult)>> = Mutex::new(Vec::new());
        let stop = std::sync::atomic::AtomicBool::new(false);
        let taken = std::thread::scope(|s| {
            for q in 0..3u32 {
                let (store, boundaries, acked, stop) = (&store, &boundaries, &acked, &stop);
                s.spawn(move || {
                    let (mut i, mut k) = (0u64, 0u64);
                    let mut queued = VecDeque::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let n = 1 + k % 3;
                        let batch: Vec<_> = (i..i + n).map(|j| msg("t", q, j)).collect();
                        boundaries.lock().unwrap()[q as usize].push(i + n);
                        queued.push_back((i, store.append_batch_queued(batch).unwrap()));
                        (i, k) = (i + n, k + 1);
                        if queued.len() == 4 {
                            let (first, appending) = queued.pop_front().unwrap();
                            let (results, end) = futures::executor::block_on(appending).unwrap();
                            futures::executor::block_on(store.durable(end)).unwrap();
                            let mut acked = acked.lock().unwrap();
                            acked.extend(results.into_iter().zip(first..).map(|(r, j)| (q, j, r)));
                        }
                    }
                    for (_, appending) in queued {
                        let _ = futures::executor::block_on(appending);
                    }
                });
            }
            power_loss_after(Duration::from_millis(150 + 40 * round), dir.path(), image.path(), &acked, &stop)
        });
        stop_tracked(store, dir.path());
        assert!(taken.len() > 20, "round {round}: only {} appends", taken.len());

        let store = Store::open(tiny_config(image.path(), FlushMode::Sync)).unwrap();
        assert!(store.wait_dispatched(store.stats().max_offset, Duration::from_secs(10)));
        for (q, i, r) in &taken {
            let got = store.read(r.commit_offset).unwrap_or_else(|e| panic!("round {round}: acked {q}/{i} lost: {e}"));
            assert_is_msg(&got, "t", *q, *i);
        }
        let boundaries = boundaries.into_inner().unwrap();
        for q in 0..3u32 {
            let units = store.read_queue("t", q, 0, usize::MAX).unwrap();
            for (n, u) in units.iter().enumerate() {
                assert_eq!(u.queue_offset, n as u64, "queue {q} is dense");
                assert_is_msg(&store.read(u.commit_offset).unwrap(), "t", q, n as u64);
            }
            let len = units.len() as u64;
            assert!(boundaries[q as usize].contains(&len), "round {round}: queue {q} ends inside a batch at {len}");
        }
        eprintln!("power loss round {round}: {} acknowledged messages survived", taken.len());
    }
}

/// A pending append whose group commit fails is never reported durable: its future fails with
/// `Poisoned`, and so does every later one; its dispatch future resolves `false`.
#[test]
fn a_failed_group_commit_fails_the_durable_futures_of_pending_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
    let (_, first) = futures::executor::block_on(store.append_batch_queued(vec![msg("t", 0, 0)]).unwrap()).unwrap();
    futures::executor::block_on(store.durable(first)).unwrap();
    assert!(futures::executor::block_on(store.dispatched(first)));
    // The sync thread runs the next msync.
    inject(&dir.path().join("commitlog"), Point::Msync, libc::EIO, Some("ferrymq-sync"), 1);
    let (_, second) = futures::executor::block_on(store.append_batch_queued(vec![msg("t", 0, 1)]).unwrap()).unwrap();
    // Whoever waits for its dispatch (in sync mode the broker waits for that alone) hears
    // `false` once the store is poisoned, at once, not at some timeout.
    let (tx, rx) = std::sync::mpsc::channel();
    let waiting = store.dispatched(second);
    std::thread::spawn(move || tx.send(futures::executor::block_on(waiting)));
    assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(10)), Ok(false));
    assert!(matches!(futures::executor::block_on(store.durable(second)), Err(Error::Poisoned)));
    assert!(matches!(futures::executor::block_on(store.durable(first)), Ok(())));
    assert!(store.append_batch_queued(vec![msg("t", 0, 2)]).is_err());
    assert_eq!(store.queue_bounds("t", 0), (0, 1), "the record that is not durable is never dispatched");
    drop(store);
    fault::clear(dir.path());
}
