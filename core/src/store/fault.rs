//! Fault injection for tests, through the store's real I/O paths.
//!
//! Every place where the store asks the operating system for something that a sick disk can
//! refuse (allocating a file, mapping it, writing with pwrite, msync, fsync of a file or a
//! directory) first calls [`check`] with the file's path. In a normal build `check` is an
//! inlined `Ok(())`. With the `failpoints` cargo feature (and in this crate's unit tests) it
//! consults a process-wide table of [`Fault`]s, each scoped to a path prefix (a test's own
//! store directory, so tests running in parallel do not disturb each other), optionally to one
//! thread by name (`ferrymq-prepare`, `ferrymq-flush`, `ferrymq-dispatch`, or an appender), and
//! limited to a number of hits.
//!
//! The same feature provides a power-loss model ([`track_durable`], [`power_loss_image`]):
//! for each mapped file under a tracked directory it keeps a shadow of the bytes that a
//! completed msync made durable, and can write out the directory as a machine crash would
//! leave it, every write that no completed flush covered dropped.

/// A place where a fault can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Point {
    /// `posix_fallocate` of a mapped file (creation or open).
    Allocate,
    /// `mmap` of a file, after it was allocated.
    Mmap,
    /// pwrite(2) of a record into the commit log (sync mode). The fault writes the first half
    /// of the bytes and then fails: a short write.
    Pwrite,
    /// msync of a mapped file (commit log, consume queue, index), from any thread.
    Msync,
    /// fsync/fdatasync of a regular file (the checkpoint's temporary file).
    Fsync,
    /// fsync of a directory (after creating, renaming or removing a file in it).
    DirSync,
}

/// One injected fault.
#[cfg(any(test, feature = "failpoints"))]
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
#[derive(Clone, Debug)]
pub struct Fault {
    /// Where.
    pub point: Point,
    /// Only for files at or below this path.
    pub path_prefix: std::path::PathBuf,
    /// Only on the thread of this name (`None`: any thread).
    pub thread: Option<String>,
    /// The error number returned (`libc::EIO`, `libc::ENOSPC`, ...).
    pub errno: i32,
    /// How many hits fail before the fault disarms itself (`u32::MAX`: until cleared).
    pub times: u32,
}

#[cfg(any(test, feature = "failpoints"))]
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
mod imp {
    use std::collections::HashMap;
    use std::fs;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, MutexGuard};

    use super::{Fault, Point};

    static FAULTS: Mutex<Vec<Fault>> = Mutex::new(Vec::new());

    /// Shadows of tracked mapped files: path -> durable bytes.
    #[derive(Default)]
    pub(super) struct Shadows {
        roots: Vec<PathBuf>,
        files: HashMap<PathBuf, Vec<u8>>,
    }

    static SHADOWS: Mutex<Option<Shadows>> = Mutex::new(None);

    fn faults() -> MutexGuard<'static, Vec<Fault>> {
        FAULTS.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn shadows() -> MutexGuard<'static, Option<Shadows>> {
        SHADOWS.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn inject(f: Fault) {
        faults().push(f);
    }

    pub(crate) fn clear(prefix: &Path) {
        faults().retain(|f| !f.path_prefix.starts_with(prefix));
    }

    pub(crate) fn check(point: Point, path: &Path) -> io::Result<()> {
        let mut faults = faults();
        if faults.is_empty() {
            return Ok(());
        }
        let current = std::thread::current();
        let name = current.name();
        for f in faults.iter_mut() {
            if f.point == point
                && f.times > 0
                && path.starts_with(&f.path_prefix)
                && f.thread.as_deref().is_none_or(|t| Some(t) == name)
            {
                if f.times != u32::MAX {
                    f.times -= 1;
                }
                return Err(io::Error::from_raw_os_error(f.errno));
            }
        }
        Ok(())
    }

    impl Shadows {
        fn tracked(&self, path: &Path) -> bool {
            self.roots.iter().any(|r| path.starts_with(r))
        }
    }

    pub(crate) fn track_durable(root: &Path) {
        shadows().get_or_insert_with(Shadows::default).roots.push(root.to_path_buf());
    }

    pub(crate) fn untrack(root: &Path) {
        if let Some(s) = shadows().as_mut() {
            s.roots.retain(|r| !r.starts_with(root));
            s.files.retain(|p, _| !p.starts_with(root));
        }
    }

    /// A mapped file was opened: what is on disk now counts as durable (it was written by an
    /// earlier run or is freshly allocated zeros).
    pub(crate) fn opened(path: &Path, file: &fs::File, len: usize) {
        use std::os::unix::fs::FileExt;
        let mut g = shadows();
        let Some(s) = g.as_mut() else { return };
        if !s.tracked(path) {
            return;
        }
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            match file.read_at(&mut buf[done..], done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(_) => break,
            }
        }
        s.files.insert(path.to_path_buf(), buf);
    }

    /// Runs `flush` (an msync of `[offset, offset + len)` of the file) and, if it succeeds
    /// and the file is tracked, records the bytes the file held when the flush started as
    /// durable. Flushes of tracked files are serialised so the shadow follows their order.
    pub(crate) fn flushed(
        path: &Path,
        file: &fs::File,
        offset: usize,
        len: usize,
        flush: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut g = shadows();
        let tracked = g.as_ref().is_some_and(|s| s.tracked(path));
        if !tracked {
            drop(g);
            return flush();
        }
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset as u64)?;
        flush()?;
        if let Some(s) = g.as_mut() {
            let shadow = s.files.entry(path.to_path_buf()).or_default();
            if shadow.len() < offset + len {
                shadow.resize(offset + len, 0);
            }
            shadow[offset..offset + len].copy_from_slice(&buf);
        }
        Ok(())
    }

    pub(crate) fn power_loss_image(from: &Path, to: &Path) -> io::Result<()> {
        let g = shadows();
        let s = g.as_ref();
        copy_tree(from, to, &|p: &Path| s.and_then(|s| s.files.get(p)).cloned())
    }

    fn copy_tree(from: &Path, to: &Path, shadow: &dyn Fn(&Path) -> Option<Vec<u8>>) -> io::Result<()> {
        fs::create_dir_all(to)?;
        for e in fs::read_dir(from)? {
            let e = e?;
            let target = to.join(e.file_name());
            if e.file_type()?.is_dir() {
                copy_tree(&e.path(), &target, shadow)?;
            } else if e.file_name() != "lock" {
                match shadow(&e.path()) {
                    Some(bytes) => fs::write(&target, bytes)?,
                    None => {
                        fs::copy(e.path(), &target)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(any(test, feature = "failpoints"))]
pub(crate) use imp::{check, flushed, opened};

/// Runs `flush` (no fault layer in this build).
#[cfg(not(any(test, feature = "failpoints")))]
#[inline(always)]
pub(crate) fn flushed(
    _path: &std::path::Path,
    _file: &std::fs::File,
    _offset: usize,
    _len: usize,
    flush: impl FnOnce() -> std::io::Result<()>,
) -> std::io::Result<()> {
    flush()
}

/// Nothing to record (no fault layer in this build).
#[cfg(not(any(test, feature = "failpoints")))]
#[inline(always)]
pub(crate) fn opened(_path: &std::path::Path, _file: &std::fs::File, _len: usize) {}

/// Never fails (no fault layer in this build).
#[cfg(not(any(test, feature = "failpoints")))]
#[inline(always)]
pub(crate) fn check(_point: Point, _path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

/// Arms a fault (see the module docs).
#[cfg(feature = "failpoints")]
pub fn inject(fault: Fault) {
    imp::inject(fault);
}

/// Disarms every fault whose path prefix lies at or below `prefix`.
#[cfg(feature = "failpoints")]
pub fn clear(prefix: &std::path::Path) {
    imp::clear(prefix);
}

/// Starts the power-loss model for mapped files under `root` (call before opening the store).
#[cfg(feature = "failpoints")]
pub fn track_durable(root: &std::path::Path) {
    imp::track_durable(root);
}

/// Stops the power-loss model for `root` and forgets its shadows.
#[cfg(feature = "failpoints")]
pub fn untrack(root: &std::path::Path) {
    imp::untrack(root);
}

/// Writes the store directory `from` to `to` as a power loss at this instant would leave it:
/// each tracked mapped file holds only what completed flushes made durable (zeros elsewhere);
/// other files (checkpoint, abort, metadata, all written with fsync) are copied as they are.
/// Flushes wait meanwhile, so the image is one consistent instant.
#[cfg(feature = "failpoints")]
pub fn power_loss_image(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    imp::power_loss_image(from, to)
}
