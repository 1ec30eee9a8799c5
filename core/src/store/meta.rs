//! Durable metadata writes: the one helper every metadata file of FerryMQ goes through.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::fault;
use crate::{Error, Result};

/// Replaces the file at `path` with `bytes` so that a crash leaves either the old or the new
/// content, never a mix: write a temporary file beside it, fsync it, rename it over `path`,
/// then fsync the directory so the rename itself is durable.
///
/// The parent directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name =
        path.file_name().ok_or_else(|| Error::invalid("/path", format!("{} has no file name", path.display())))?;
    // Unique per call: two threads replacing the same file at once must not share (and
    // rename away) one temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp{}.{n}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f =
            OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        fault::check(fault::Point::Fsync, &tmp).and_then(|()| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fault::check(fault::Point::DirSync, dir)
        .and_then(|()| File::open(dir))
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn concurrent_writers_of_one_file_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_atomic(path, &[t; 64]).unwrap();
                    }
                });
            }
        });
        let b = fs::read(&path).unwrap();
        assert!(b.len() == 64 && b.iter().all(|&x| x == b[0]));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
    }

    #[test]
    fn missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("meta.json");
        assert!(matches!(write_atomic(&path, b"x"), Err(Error::Io { .. })));
    }
}
