//! The only module of the crate that uses `unsafe`: memory-mapped files and the two libc calls
//! the store needs (`flock` for the directory lock, `statvfs` for disk usage).
//!
//! A [`MappedFile`] maps a whole file read-write and shared, and hands out only safe views of
//! it. Its bytes are split into three regions by two boundaries:
//!
//! ```text
//! [0, atomic_end)            words accessed only through AtomicU32 / AtomicU64 views
//! [atomic_end, published)    immutable bytes, readable as &[u8] by any thread
//! [published, len)           writable by one writer at a time (an internal mutex), invisible to readers
//! ```
//!
//! `published` only grows at runtime (a Release store after the bytes are written; readers load
//! it with Acquire), so a slice handed out never aliases a write. Methods that touch bytes
//! below `published` or move it backwards take `&mut self`: only recovery uses them, while it
//! owns the file exclusively.
//!
//! Invariants kept by the rest of the store (named in the SAFETY comments below):
//! - the store holds an exclusive `flock` on its directory, so no other FerryMQ process maps or
//!   modifies these files;
//! - the store never truncates or shrinks a file while it is mapped (recovery unmaps a segment
//!   before cutting it), so every mapped page stays backed by the file (no SIGBUS).
//!
//! Files are allocated in full when they are opened (`posix_fallocate`), never left sparse:
//! writing through a shared mapping into a hole of a full file system raises SIGBUS instead of
//! returning ENOSPC, so the store asks for every block up front, where a full disk is an error
//! ([`Error::Io`] with ENOSPC, which the store reports as `InsufficientStorage`) and the
//! half-created file is removed again. Once allocated, a write through the mapping only
//! touches blocks the file owns and cannot fail for lack of space. (Copy-on-write file
//! systems such as btrfs or ZFS do not honour this guarantee; FerryMQ expects ext4, XFS or
//! tmpfs.)
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use memmap2::{Advice, MmapOptions, MmapRaw};

use super::fault;
use crate::{Error, Result};

/// Most bytes one `zero_ahead` call writes (under the writer lock, so appends wait at most
/// for one such copy into the page cache).
pub(crate) const ZERO_CHUNK: usize = 64 << 10;

/// A file mapped read-write and shared in full, with safe views (see the module docs).
pub(crate) struct MappedFile {
    path: PathBuf,
    /// Kept open for the mapping's lifetime; also the `pwrite` path.
    file: File,
    map: MmapRaw,
    len: usize,
    atomic_end: usize,
    published: AtomicUsize,
    /// Held by every writer; holds the end of the furthest byte written (or being written)
    /// through `write_with` or `pwrite`, which `zero_ahead` never goes below.
    writer: Mutex<usize>,
    /// A second open file description for `zero_ahead`'s writes (opened on first use), so
    /// that nothing done through it can take a write-back error away from the next msync of
    /// the mapping, which decides what is acknowledged (each open file description sees an
    /// error once).
    zero_fd: std::sync::OnceLock<File>,
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFile")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("published", &self.published())
            .finish()
    }
}

impl MappedFile {
    /// Opens (creating if `create`) the file at `path`, grows it to `len` bytes if it is
    /// shorter, allocates every block of `[0, len)` (see the module docs) and maps it. Nothing
    /// is readable until [`MappedFile::publish`] or [`MappedFile::set_published`];
    /// `[0, atomic_end)` is the atomic-word region. If this call created the file and then
    /// fails (no space, mmap refused), the file is removed again, so a retry starts afresh.
    pub(crate) fn open(path: &Path, len: u64, atomic_end: usize, create: bool) -> Result<Self> {
        let existed = path.exists();
        let r = Self::open_inner(path, len, atomic_end, create);
        if r.is_err() && create && !existed {
            if let Err(e) = std::fs::remove_file(path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "removing a half-created file failed");
                }
            }
        }
        r
    }

    fn open_inner(path: &Path, len: u64, atomic_end: usize, create: bool) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let current = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if current < len {
            file.set_len(len).map_err(|e| Error::io(path, e))?;
        }
        let len = usize::try_from(len).map_err(|_| Error::invalid("/len", format!("{len} does not fit in memory")))?;
        if len == 0 || atomic_end > len || !atomic_end.is_multiple_of(8) {
            return Err(Error::invalid("/len", format!("cannot map {} with length {len}", path.display())));
        }
        allocate(&file, path, len as u64).map_err(|e| Error::io(path, e))?;
        fault::check(fault::Point::Mmap, path).map_err(|e| Error::io(path, e))?;
        let map = MmapOptions::new().len(len).map_raw(&file).map_err(|e| Error::io(path, e))?;
        fault::opened(path, &file, len);
        Ok(MappedFile {
            path: path.to_path_buf(),
            file,
            map,
            len,
            atomic_end,
            published: AtomicUsize::new(atomic_end),
            writer: Mutex::new(atomic_end),
            zero_fd: std::sync::OnceLock::new(),
        })
    }

    /// Writes zeros over `[offset, offset + len)` (clamped to the file, at most `ZERO_CHUNK`
    /// bytes) and starts writing them back, if the range starts at least `gap` bytes past
    /// everything written or being written; returns the bytes zeroed (0 when refused). The
    /// content does not change (fallocated blocks read as zeros), but once written back the
    /// file system counts the blocks as written, so an msync of data later written there
    /// writes the data only, without the block-state metadata a first write into fallocated
    /// blocks needs (ext4 writes that synchronously inside the msync). Bytes are never zeroed
    /// after a write reached them: the writer lock orders each zeroing against every write,
    /// and a later write simply overwrites the zeros. Nothing is waited for or made durable.
    pub(crate) fn zero_ahead(&self, offset: usize, len: usize, gap: usize) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        static ZEROS: [u8; ZERO_CHUNK] = [0; ZERO_CHUNK];
        let fd = match self.zero_fd.get() {
            Some(fd) => fd,
            None => {
                let fd = OpenOptions::new().write(true).open(&self.path)?;
                self.zero_fd.get_or_init(|| fd)
            }
        };
        let len = {
            let written = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let floor = (*written).max(self.published()).saturating_add(gap);
            if offset < floor || offset >= self.len {
                return Ok(0);
            }
            let len = len.min(self.len - offset).min(ZERO_CHUNK);
            fd.write_all_at(&ZEROS[..len], offset as u64)?;
            len
        };
        start_writeback(fd, offset, len)?;
        Ok(len)
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Mapped length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes below this offset are readable.
    pub(crate) fn published(&self) -> usize {
        self.published.load(Ordering::Acquire)
    }

    /// The immutable bytes `[offset, offset + len)`, or `None` unless they lie in
    /// `[atomic_end, published)`.
    pub(crate) fn read(&self, offset: usize, len: usize) -> Option<&[u8]> {
        let end = offset.checked_add(len)?;
        if offset < self.atomic_end || end > self.published() {
            return None;
        }
        // SAFETY: the range is inside the mapping (published <= self.len) and below
        // `published`, which only grows at runtime and was stored with Release after the bytes
        // were written (we loaded it with Acquire). Writers only touch bytes at or above
        // `published`; bytes below it change only through `&mut self` methods, which cannot run
        // while this `&self` borrow (and so the returned slice) lives. The mapping lives as long
        // as `self` and the file is never truncated while mapped (module invariant).
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(offset), len) })
    }

    /// Runs `f` on the unpublished bytes `[offset, offset + len)` as a mutable slice. Fails if
    /// the range is not entirely in `[published, len)`. Writers are serialised by a mutex.
    pub(crate) fn write_with<R>(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        let mut written = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(self.bounds_error(offset, "write past the end of the file"));
        }
        if offset < self.published() {
            return Err(self.bounds_error(offset, "write outside the unpublished region"));
        }
        *written = (*written).max(offset + len);
        // SAFETY: `[offset, offset + len)` is inside the mapping and at or above `published`, so
        // no reader holds a slice of it (`read` stops below `published`) and no atomic view
        // covers it (atomics live below `atomic_end <= published`). The `writer` mutex, held
        // until `f` returns, makes this the only mutable view. `published` cannot move below
        // `offset` meanwhile: `set_published` takes `&mut self`, `publish` only grows it and
        // takes the same mutex.
        let slice = unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(offset), len) };
        Ok(f(slice))
    }

    /// Writes `data` at the unpublished `offset` with pwrite(2) instead of through the
    /// mapping (same bounds, same mutex as [`MappedFile::write_with`]). The page cache is
    /// shared, so the mapping sees the bytes at once; but the pages never become writable
    /// through the mapping, so a later msync/fdatasync need not write-protect them (no TLB
    /// shootdown) and the next write does not fault. Sync mode uses it.
    pub(crate) fn pwrite(&self, offset: usize, data: &[u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let mut written = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if offset.checked_add(data.len()).is_none_or(|e| e > self.len) || offset < self.published() {
            return Err(self.bounds_error(offset, "write outside the unpublished region"));
        }
        *written = (*written).max(offset + data.len());
        if let Err(e) = fault::check(fault::Point::Pwrite, &self.path) {
            // An injected short write: half the bytes land, then the call fails.
            let _ = self.file.write_all_at(&data[..data.len() / 2], offset as u64);
            return Err(Error::io(&self.path, e));
        }
        self.file.write_all_at(data, offset as u64).map_err(|e| Error::io(&self.path, e))
    }

    /// Copies `data` to the unpublished bytes at `offset` (see [`MappedFile::write_with`]).
    pub(crate) fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.write_with(offset, data.len(), |dst| dst.copy_from_slice(data))
    }

    /// Makes `[.., upto)` readable. Never moves the boundary backwards; `upto` is clamped to
    /// the file length.
    pub(crate) fn publish(&self, upto: usize) {
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let upto = upto.min(self.len);
        if upto > self.published.load(Ordering::Relaxed) {
            self.published.store(upto, Ordering::Release);
        }
    }

    /// Sets the readable boundary to `upto` (clamped to `[atomic_end, len]`), also backwards.
    /// Exclusive access: used by recovery and truncation.
    pub(crate) fn set_published(&mut self, upto: usize) {
        *self.published.get_mut() = upto.clamp(self.atomic_end, self.len);
    }

    /// The whole data region `[atomic_end, len)` for exclusive use (recovery). Offsets in the
    /// slice are relative to `atomic_end`.
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: `&mut self` guarantees that no slice from `read`, no atomic view and no
        // `write_with` closure of this mapping is alive, and the file is mapped only once, by
        // this value (the directory lock keeps other processes out). The range is inside the
        // mapping.
        unsafe {
            std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(self.atomic_end), self.len - self.atomic_end)
        }
    }

    /// An atomic view of the aligned u32 at `offset` in the atomic region.
    pub(crate) fn atomic_u32(&self, offset: usize) -> Option<&AtomicU32> {
        if !offset.is_multiple_of(4) || offset.checked_add(4)? > self.atomic_end {
            return None;
        }
        // SAFETY: the mapping starts page-aligned, so `offset % 4 == 0` makes the pointer
        // aligned for AtomicU32; the word is inside the mapping and inside `[0, atomic_end)`,
        // which is only ever accessed through atomic views (never through `read`, `write_with`
        // or `data_mut`, which start at `atomic_end`), so every access to it is atomic.
        Some(unsafe { &*(self.map.as_mut_ptr().add(offset) as *const AtomicU32) })
    }

    /// An atomic view of the aligned u64 at `offset` in the atomic region.
    pub(crate) fn atomic_u64(&self, offset: usize) -> Option<&AtomicU64> {
        if !offset.is_multiple_of(8) || offset.checked_add(8)? > self.atomic_end {
            return None;
        }
        // SAFETY: as in `atomic_u32`, with 8-byte alignment.
        Some(unsafe { &*(self.map.as_mut_ptr().add(offset) as *const AtomicU64) })
    }

    /// msyncs `[offset, offset + len)` (clamped to the mapping) and waits for it (MS_SYNC).
    pub(crate) fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        if offset >= self.len || len == 0 {
            return Ok(());
        }
        let len = len.min(self.len - offset);
        fault::check(fault::Point::Msync, &self.path)?;
        fault::flushed(&self.path, &self.file, offset, len, || self.map.flush_range(offset, len))
    }

    /// msyncs the whole mapping.
    pub(crate) fn flush_all(&self) -> io::Result<()> {
        self.flush_range(0, self.len)
    }

    /// Asks the kernel to fault in `[offset, offset + len)` writable without changing its
    /// content (MADV_POPULATE_WRITE), so appends do not take page faults. The pages become
    /// dirty, so a following msync allocates their file blocks. Best effort: safe at any time,
    /// also on bytes that are being written, because the content does not change.
    pub(crate) fn prefault(&self, offset: usize, len: usize) {
        if offset >= self.len {
            return;
        }
        let len = len.min(self.len - offset);
        let _ = self.map.advise_range(Advice::PopulateWrite, offset, len);
    }
}

/// Starts writing back `[offset, offset + len)` of `file` without waiting for it
/// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`): no cache flush, nothing made durable.
fn start_writeback(file: &File, offset: usize, len: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (offset, len) = (offset as libc::off64_t, len as libc::off64_t);
    // SAFETY: sync_file_range takes a file descriptor, two integers and flags, no pointers;
    // the descriptor is valid for the call because `file` is borrowed.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Allocates the blocks of `[0, len)` of `file` (`posix_fallocate`; content unchanged).
pub(crate) fn allocate(file: &File, path: &Path, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    fault::check(fault::Point::Allocate, path)?;
    let len = libc::off_t::try_from(len).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    loop {
        // SAFETY: posix_fallocate takes a file descriptor and two integers, no pointers; the
        // descriptor is valid for the call because `file` is borrowed.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        match rc {
            0 => return Ok(()),
            libc::EINTR => continue,
            // A file system that cannot allocate (no fallocate support and glibc's fallback
            // refused): keep the old, sparse behaviour rather than refusing to run.
            libc::EOPNOTSUPP | libc::EINVAL => {
                tracing::warn!(path = %path.display(), "posix_fallocate unsupported; the file stays sparse");
                return Ok(());
            }
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Takes an exclusive, non-blocking `flock` on `file`. Fails with `WouldBlock` when another
/// open file description (another process, or another open in this one) holds it.
pub(crate) fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock takes a file descriptor and flags, no pointers; the descriptor is valid
    // for the duration of the call because `file` is borrowed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Share of the file system holding `path` that is in use, as `df` computes it:
/// `used / (used + available to unprivileged users)`.
pub(crate) fn disk_used_ratio(path: &Path) -> io::Result<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is a valid NUL-terminated string and `st` points to writable memory
    // the size of a statvfs; statvfs writes only into it.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised the struct (and it was zeroed anyway).
    let st = unsafe { st.assume_init() };
    let total = st.f_blocks as f64;
    let free = st.f_bfree as f64;
    let avail = st.f_bavail as f64;
    let used = total - free;
    if used + avail <= 0.0 {
        return Ok(0.0);
    }
    Ok(used / (used + avail))
}

impl MappedFile {
    fn bounds_error(&self, offset: usize, reason: &str) -> Error {
        Error::Corrupt { path: self.path.clone(), offset: offset as u64, reason: reason.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_controls_visibility() {
        let dir = tempfile::tempdir().unwrap();
        let f = MappedFile::open(&dir.path().join("f"), 4096, 16, true).unwrap();
        assert!(f.read(16, 4).is_none());
        f.write(16, b"abcd").unwrap();
        assert!(f.read(16, 4).is_none());
        f.publish(20);
        assert_eq!(f.read(16, 4).unwrap(), b"abcd");
        // Published bytes can no longer be written, reads below atomic_end are refused.
        assert!(f.write(18, b"x").is_err());
        assert!(f.read(8, 4).is_none());
        assert!(f.write(4090, b"too long").is_err());
        f.atomic_u64(8).unwrap().store(7, Ordering::Release);
        assert!(f.atomic_u64(12).is_none());
        assert!(f.atomic_u32(16).is_none());
        f.flush_range(0, 4096).unwrap();
    }

    #[test]
    fn zeroing_ahead_stays_clear_of_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = MappedFile::open(&path, 4 * ZERO_CHUNK as u64, 0, true).unwrap();
        f.pwrite(0, &[7; 1000]).unwrap();
        // Within the gap of the written bytes, or below them: refused.
        assert_eq!(f.zero_ahead(500, 4096, 0).unwrap(), 0);
        assert_eq!(f.zero_ahead(1000, 4096, 4096).unwrap(), 0);
        assert_eq!(f.zero_ahead(5096, 4096, 4096).unwrap(), 4096);
        // At most one chunk per call, clamped to the file.
        assert_eq!(f.zero_ahead(8192, usize::MAX, 0).unwrap(), ZERO_CHUNK);
        assert_eq!(f.zero_ahead(4 * ZERO_CHUNK - 10, 100, 0).unwrap(), 10);
        assert_eq!(f.zero_ahead(4 * ZERO_CHUNK, 100, 0).unwrap(), 0);
        // A write after zeroing lands over the zeros.
        f.pwrite(6000, &[9; 10]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[..1000].iter().all(|&b| b == 7));
        assert!(bytes[1000..6000].iter().all(|&b| b == 0));
        assert!(bytes[6000..6010].iter().all(|&b| b == 9));
    }

    #[test]
    fn zeroing_ahead_never_overwrites_a_concurrent_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let len = 2 << 20;
        let f = std::sync::Arc::new(MappedFile::open(&path, len as u64, 0, true).unwrap());
        let pos = std::sync::Arc::new(AtomicUsize::new(0));
        let zeroer = {
            let (f, pos) = (f.clone(), pos.clone());
            std::thread::spawn(move || {
                // No gap at all, and a view of the writer's position that may be stale: every
                // other call aims behind it, where only the writer lock's floor stops it.
                let mut behind = false;
                while pos.load(Ordering::Acquire) < len {
                    let at = pos.load(Ordering::Acquire);
                    let target = if behind { at.saturating_sub(4096) } else { at + 2048 };
                    f.zero_ahead(target, 4096, 0).unwrap();
                    behind = !behind;
                }
            })
        };
        let mut at = 0;
        let mut n = 0u8;
        while at < len {
            let chunk = (1000 + usize::from(n) * 7).min(len - at);
            n = n.wrapping_add(1);
            f.pwrite(at, &vec![n | 1; chunk]).unwrap();
            at += chunk;
            pos.store(at, Ordering::Release);
        }
        zeroer.join().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (mut at, mut n) = (0, 0u8);
        while at < len {
            let chunk = (1000 + usize::from(n) * 7).min(len - at);
            n = n.wrapping_add(1);
            assert!(bytes[at..at + chunk].iter().all(|&b| b == n | 1), "bytes at {at} were zeroed");
            at += chunk;
        }
    }

    #[test]
    fn contents_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        {
            let f = MappedFile::open(&path, 8192, 8, true).unwrap();
            f.atomic_u64(0).unwrap().store(42, Ordering::Release);
            f.write(100, b"hello").unwrap();
            f.publish(105);
            f.flush_all().unwrap();
        }
        let mut f = MappedFile::open(&path, 8192, 8, false).unwrap();
        assert_eq!(f.atomic_u64(0).unwrap().load(Ordering::Acquire), 42);
        assert_eq!(&f.data_mut()[92..97], b"hello");
        f.set_published(105);
        assert_eq!(f.read(100, 5).unwrap(), b"hello");
    }

    #[test]
    fn disk_ratio_is_a_share() {
        let r = disk_used_ratio(Path::new("/")).unwrap();
        assert!((0.0..=1.0).contains(&r));
    }

    #[test]
    fn second_lock_fails() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let a = File::create(&p).unwrap();
        let b = File::create(&p).unwrap();
        lock_exclusive(&a).unwrap();
        assert!(lock_exclusive(&b).is_err());
    }
}
