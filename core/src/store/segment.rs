//! One commit log segment: a fixed-size file named by the 20-digit commit offset of its first
//! byte, mapped whole.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::mmap::MappedFile;
use super::record::{self, TRAILER_LEN};
use crate::{Error, Result};

/// File name of the segment (or consume queue / index file) starting at `offset`.
pub(crate) fn file_name(offset: u64) -> String {
    format!("{offset:020}")
}

/// Parses a 20-digit file name back into its offset.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// A mapped segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    base: u64,
    file: MappedFile,
    /// Newest store timestamp of a record in this segment (0 if unknown or empty).
    last_store_ts: AtomicU64,
    /// Bytes below this (segment-relative) have been prepared ahead of the appender: faulted
    /// in (async mode) or zero-written (sync mode).
    prepared: AtomicU64,
}

impl Segment {
    /// Creates a new, empty segment file of `len` bytes at `base` in `dir`. The caller fsyncs
    /// the directory.
    pub(crate) fn create(dir: &Path, base: u64, len: u64) -> Result<Segment> {
        let path = dir.join(file_name(base));
        if path.exists() {
            return Err(Error::Corrupt { path, offset: base, reason: "segment file already exists".into() });
        }
        Ok(Segment {
            base,
            file: MappedFile::open(&path, len, 0, true)?,
            last_store_ts: AtomicU64::new(0),
            prepared: AtomicU64::new(0),
        })
    }

    /// Opens an existing segment file, growing it to `len` if shorter. Nothing is readable
    /// until recovery calls [`Segment::set_published`].
    pub(crate) fn open(path: &Path, base: u64, len: u64) -> Result<Segment> {
        Ok(Segment {
            base,
            file: MappedFile::open(path, len, 0, false)?,
            last_store_ts: AtomicU64::new(0),
            prepared: AtomicU64::new(0),
        })
    }

    /// Commit offset of the first byte.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// Segment length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.file.len() as u64
    }

    /// Commit offset just past the segment.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.len()
    }

    /// Whether `offset` lies in this segment.
    pub(crate) fn contains(&self, offset: u64) -> bool {
        offset >= self.base && offset < self.end()
    }

    /// File path.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// The mapped file.
    pub(crate) fn file(&self) -> &MappedFile {
        &self.file
    }

    /// Mutable access for recovery.
    pub(crate) fn file_mut(&mut self) -> &mut MappedFile {
        &mut self.file
    }

    /// Sets the readable end (segment-relative) during recovery.
    pub(crate) fn set_published(&mut self, local: u64) {
        self.file.set_published(local as usize);
    }

    /// Published bytes `[local, local + len)`.
    pub(crate) fn read(&self, local: u64, len: usize) -> Option<&[u8]> {
        self.file.read(usize::try_from(local).ok()?, len)
    }

    /// Newest store timestamp seen in this segment.
    pub(crate) fn last_store_ts(&self) -> u64 {
        self.last_store_ts.load(Ordering::Acquire)
    }

    /// Raises the newest store timestamp.
    pub(crate) fn note_store_ts(&self, ts: u64) {
        self.last_store_ts.fetch_max(ts, Ordering::AcqRel);
    }

    /// Prepares the next `chunk` bytes after `max(prepared, from)` if that is below `until`
    /// (segment-relative): faults the pages in writable (the kernel fills holes with zeros and
    /// marks the pages dirty). Content is unchanged. Returns whether it did anything.
    pub(crate) fn prepare(&self, from: u64, until: u64, chunk: u64) -> bool {
        let start = self.prepared.load(Ordering::Acquire).max(from);
        let until = until.min(self.len());
        if start >= until {
            return false;
        }
        let end = (start + chunk).min(self.len());
        self.file.prefault(start as usize, (end - start) as usize);
        self.prepared.fetch_max(end, Ordering::AcqRel);
        true
    }

    /// One step of zero-writing ahead of the appender in sync mode: zeroes the next chunk of
    /// `[from + gap, until)` (segment-relative) not yet zeroed, through
    /// [`MappedFile::zero_ahead`], which refuses anything within `gap` of what was written.
    /// Returns whether it did anything.
    pub(crate) fn zero_ahead(&self, from: u64, until: u64, gap: u64) -> bool {
        let start = self.prepared.load(Ordering::Acquire).max(from.saturating_add(gap));
        let until = until.min(self.len());
        if start >= until {
            return false;
        }
        match self.file.zero_ahead(start as usize, (until - start) as usize, gap as usize) {
            Ok(0) => false,
            Ok(n) => {
                self.prepared.fetch_max(start + n as u64, Ordering::AcqRel);
                true
            }
            Err(e) => {
                // Only an optimisation: appends still work on blocks never zeroed.
                tracing::debug!(path = %self.path().display(), error = %e, "zeroing ahead of the appender failed");
                false
            }
        }
    }

    /// The trailer's timestamp, if this is a sealed segment with an intact trailer.
    pub(crate) fn trailer_ts(&mut self) -> Option<u64> {
        let data = self.file.data_mut();
        let n = data.len();
        if n < TRAILER_LEN {
            return None;
        }
        record::read_trailer(&data[n - TRAILER_LEN..])
    }

    /// Cuts the segment at `local`: everything from there to the end reads as zeros afterwards.
    /// Unmaps, truncates the file to `local` and grows it back (the file system zero-fills),
    /// fsyncs it and maps it again. Recovery only: no reader may hold the segment.
    pub(crate) fn truncate_tail(self, local: u64) -> Result<Segment> {
        let len = self.len();
        let base = self.base;
        let path: PathBuf = self.path().to_path_buf();
        let ts = self.last_store_ts();
        drop(self);
        let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| Error::io(&path, e))?;
        f.set_len(local).map_err(|e| Error::io(&path, e))?;
        f.set_len(len).map_err(|e| Error::io(&path, e))?;
        f.sync_all().map_err(|e| Error::io(&path, e))?;
        drop(f);
        let seg = Segment::open(&path, base, len)?;
        seg.note_store_ts(ts);
        Ok(seg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(65536), "00000000000000065536");
        assert_eq!(parse_file_name("00000000000000065536"), Some(65536));
        assert_eq!(parse_file_name("0000000000000006553x"), None);
        assert_eq!(parse_file_name("65536"), None);
    }

    #[test]
    fn truncate_tail_zeroes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 0, 8192).unwrap();
        seg.file().write(0, &[7u8; 8192]).unwrap();
        let mut seg = seg.truncate_tail(100).unwrap();
        let data = seg.file_mut().data_mut();
        assert!(data[..100].iter().all(|&b| b == 7));
        assert!(data[100..].iter().all(|&b| b == 0));
        assert_eq!(seg.len(), 8192);
    }
}
