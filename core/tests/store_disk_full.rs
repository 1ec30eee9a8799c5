//! A full disk: appends fail with `InsufficientStorage` (the gateway's `507`), the process
//! lives (no SIGBUS from a write into a sparse mapping), everything acknowledged stays
//! readable, and appends work again once space is freed.
//!
//! Runs on a small tmpfs the test mounts, which needs root; elsewhere it prints why and
//! returns.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{assert_is_msg, msg, tiny_config};
use ferrymq_core::store::{AppendResult, FlushMode, Store};
use ferrymq_core::Error;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallFs { dir }),
            Ok(o) => {
                eprintln!("SKIPPED: cannot mount a tmpfs (needs root): {}", String::from_utf8_lossy(&o.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn fill_until_full(fs: &SmallFs, flush: FlushMode) {
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 192 * 1024]).unwrap();
    let data = fs.path().join("store");
    let mut c = tiny_config(&data, flush);
    c.disk_max_used_ratio = 1.0;
    let store = Store::open(c.clone()).unwrap();

    let mut acked: Vec<(u32, u64, AppendResult)> = Vec::new();
    let mut next = [0u64; 2];
    let err = loop {
        let q = (acked.len() % 2) as u32;
        match store.append(msg("t", q, next[q as usize])) {
            Ok(r) => {
                assert_eq!(r.queue_offset, next[q as usize]);
                acked.push((q, next[q as usize], r));
                next[q as usize] += 1;
            }
            Err(e) => break e,
        }
        assert!(acked.len() < 100_000, "the file system never filled up");
    };
    assert!(matches!(err, Error::InsufficientStorage { .. }), "{flush:?}: {err}");
    assert_eq!(err.kind(), "insufficient-storage");
    assert!(acked.len() > 20, "{flush:?}: only {} appends fit", acked.len());
    // It stays that way, and the store stays up.
    for _ in 0..3 {
        let q = 0;
        assert!(matches!(store.append(msg("t", q, next[0])), Err(Error::InsufficientStorage { .. })));
    }
    assert!(!store.stats().poisoned);
    for (q, i, r) in &acked {
        assert_is_msg(&store.read(r.commit_offset).unwrap(), "t", *q, *i);
    }

    // The dispatcher used the store's space reserve: everything acknowledged is dispatched
    // (visible to consumers and lookups) even while the disk is full.
    let end = store.stats().max_offset;
    assert!(store.wait_dispatched(end, Duration::from_secs(10)), "{flush:?}: acknowledged but not dispatched");
    for q in 0..2u32 {
        assert_eq!(store.read_queue("t", q, 0, usize::MAX).unwrap().len() as u64, next[q as usize]);
    }
    let (q, i, r) = acked.last().unwrap();
    assert_eq!(store.lookup_msg_id(&common::msg_id("t", *q, *i)).unwrap(), vec![r.commit_offset]);

    // Free space: appends resume where they stopped (once the dispatcher has taken its
    // reserve back, within moments), and everything gets dispatched.
    std::fs::remove_file(&ballast).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let resumed = loop {
        match store.append(msg("t", 0, next[0])) {
            Ok(r) => break r,
            Err(e) => {
                assert!(matches!(e, Error::InsufficientStorage { .. }), "{flush:?}: {e}");
                assert!(std::time::Instant::now() < deadline, "{flush:?}: appends did not resume");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    assert_eq!(resumed.queue_offset, next[0]);
    acked.push((0, next[0], resumed));
    next[0] += 1;
    for k in 1..40 {
        let q = (k % 2) as u32;
        let r = store.append(msg("t", q, next[q as usize])).unwrap_or_else(|e| panic!("{flush:?} after freeing: {e}"));
        assert_eq!(r.queue_offset, next[q as usize]);
        acked.push((q, next[q as usize], r));
        next[q as usize] += 1;
    }
    let end = store.stats().max_offset;
    assert!(store.wait_dispatched(end, Duration::from_secs(10)), "{flush:?}: dispatch did not catch up");
    for q in 0..2u32 {
        let units = store.read_queue("t", q, 0, usize::MAX).unwrap();
        assert_eq!(units.len() as u64, next[q as usize]);
    }
    store.shutdown().unwrap();
    drop(store);

    // And after a restart.
    let store = Store::open(c).unwrap();
    for (q, i, r) in &acked {
        assert_is_msg(&store.read(r.commit_offset).unwrap(), "t", *q, *i);
    }
    assert_eq!(store.queue_bounds("t", 0).1, next[0]);
}

#[test]
fn full_disk_is_an_error_not_a_crash_async() {
    let Some(fs) = SmallFs::mount("640k") else { return };
    fill_until_full(&fs, FlushMode::Async);
}

#[test]
fn full_disk_is_an_error_not_a_crash_sync() {
    let Some(fs) = SmallFs::mount("640k") else { return };
    fill_until_full(&fs, FlushMode::Sync);
}
