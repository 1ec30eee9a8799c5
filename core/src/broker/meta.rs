//! Broker metadata files: small JSON documents under `<data dir>/meta/`, each replaced
//! atomically (write temp, fsync, rename, fsync the directory) through
//! [`store::write_atomic`](crate::store::write_atomic).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// One JSON metadata file.
#[derive(Debug, Clone)]
pub(crate) struct MetaFile {
    path: PathBuf,
}

impl MetaFile {
    /// The file `name` in `<dir>/meta/`, creating the folder.
    pub(crate) fn new(dir: &Path, name: &str) -> Result<MetaFile> {
        let meta = dir.join("meta");
        std::fs::create_dir_all(&meta).map_err(|e| Error::io(&meta, e))?;
        Ok(MetaFile { path: meta.join(name) })
    }

    /// Loads the document, or `T::default()` when the file does not exist yet.
    pub(crate) fn load<T: DeserializeOwned + Default>(&self) -> Result<T> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: self.path.clone(),
                offset: e.column() as u64,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    /// Whether the file exists.
    pub(crate) fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Deletes the file (a document that is no longer used).
    pub(crate) fn remove(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    /// Durably replaces the document.
    pub(crate) fn save<T: Serialize>(&self, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            offset: 0,
            reason: e.to_string(),
        })?;
        crate::store::write_atomic(&self.path, &bytes)
    }
}
