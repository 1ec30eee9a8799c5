//! The space reserve: a file the store allocates while the disk has room and deletes the
//! moment the dispatcher cannot create a consume queue or index file for lack of space.
//!
//! An append can be acknowledged just before the disk fills (its segment was allocated
//! earlier), and its consume queue and index entries may then need a new file. Without a
//! reserve those entries wait until an operator frees space, so the acknowledged message is
//! invisible to consumers and lookups meanwhile. With it, the dispatcher frees the reserve,
//! catches up, and the store refuses appends (`InsufficientStorage`) until the reserve can be
//! allocated again.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::mmap::allocate;

/// The reserve file of one store.
#[derive(Debug)]
pub(crate) struct Reserve {
    path: PathBuf,
    len: u64,
    present: AtomicBool,
}

impl Reserve {
    /// A reserve of `len` bytes at `<dir>/reserve` (not yet allocated).
    pub(crate) fn new(dir: &Path, len: u64) -> Reserve {
        Reserve { path: dir.join("reserve"), len, present: AtomicBool::new(false) }
    }

    /// Allocates the reserve if it is missing; whether it is there afterwards.
    pub(crate) fn ensure(&self) -> bool {
        if self.present.load(Ordering::SeqCst) {
            return true;
        }
        let made = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .and_then(|f: File| allocate(&f, &self.path, self.len));
        match made {
            Ok(()) => {
                self.present.store(true, Ordering::SeqCst);
                true
            }
            Err(_) => {
                let _ = std::fs::remove_file(&self.path);
                false
            }
        }
    }

    /// Deletes the reserve; whether there was one to free.
    pub(crate) fn release(&self) -> bool {
        if !self.present.swap(false, Ordering::SeqCst) {
            return false;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "deleting the space reserve failed");
                false
            }
        }
    }
}
