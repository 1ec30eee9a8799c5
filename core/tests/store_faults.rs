//! Faults injected through the store's real I/O paths (`--features failpoints`): each ends in
//! the documented outcome, never in an acknowledged message that is then lost.

mod common;

use common::{assert_is_msg, msg, tiny_config};
use ferrymq_core::store::fault::{self, Fault, Point};
use ferrymq_core::store::{FlushMode, Store};
use ferrymq_core::Error;

fn fault(dir: &std::path::Path, point: Point, errno: i32, thread: Option<&str>, times: u32) {
    fault::inject(Fault { point, path_prefix: dir.to_path_buf(), thread: thread.map(str::to_string), errno, times });
}

#[test]
fn eio_on_group_commit_msync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(tiny_config(dir.path(), FlushMode::Sync)).unwrap();
    let r = store.append(msg("t", 0, 0)).unwrap();
    let me = std::thread::current().name().map(str::to_string);
    fault(dir.path(), Point::Msync, libc::EIO, me.as_deref(), 1);
    assert!(matches!(store.append(msg("t", 0, 1)), Err(Error::Poisoned)));
    // The fault is gone, but the store stays poisoned: the kernel reports an error only once.
    assert!(matches!(store.append(msg("t", 0, 2)), Err(Error::Poisoned)));
    assert_is_msg(&store.read(r.commit_offset).unwrap(), "t", 0, 0);
    fault::clear(dir.path());
}
