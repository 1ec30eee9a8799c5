//! The checkpoint: how far the log is durable and how far consume queues and index are.
//!
//! Written with [`write_atomic`](super::write_atomic) by the flusher after it has msynced what
//! the checkpoint claims, and once more at a clean shutdown. Fixed binary layout, little-endian,
//! with a CRC32 of everything before it:
//!
//! ```text
//! magic u64, version u32, log_flushed u64, dispatched u64, index_begin u64, index_count u64,
//! last_record u64, last_store_ts u64, crc u32
//! ```

use std::path::Path;

use super::index::IndexMark;
use super::meta::write_atomic;
use super::record::{u32_at, u64_at};
use crate::{Error, Result};

const MAGIC: u64 = 0x5450_4359_5252_4546; // "FERRYCPT" little-endian
const VERSION: u32 = 1;
const LEN: usize = 8 + 4 + 8 * 6 + 4;

/// Positions that are durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The log is msynced below this commit offset.
    pub(crate) log_flushed: u64,
    /// Consume queues and index are msynced for every record below this commit offset.
    pub(crate) dispatched: u64,
    /// The index position matching `dispatched`.
    pub(crate) index: IndexMark,
    /// Start of the last record below `log_flushed`, or u64::MAX if unknown (only a
    /// shutdown checkpoint knows it).
    pub(crate) last_record: u64,
    /// Newest store timestamp in the log (store timestamps never go backwards, also across
    /// restarts).
    pub(crate) last_store_ts: u64,
}

impl Checkpoint {
    /// Encodes the checkpoint.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(LEN);
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&VERSION.to_le_bytes());
        for v in [
            self.log_flushed,
            self.dispatched,
            self.index.begin,
            self.index.count,
            self.last_record,
            self.last_store_ts,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a checkpoint; `None` if the bytes are not a valid one.
    pub(crate) fn decode(b: &[u8]) -> Option<Checkpoint> {
        if b.len() != LEN || u64_at(b, 0) != MAGIC || u32_at(b, 8) != VERSION {
            return None;
        }
        if crc32fast::hash(&b[..LEN - 4]) != u32_at(b, LEN - 4) {
            return None;
        }
        let f = |i: usize| u64_at(b, 12 + 8 * i);
        Some(Checkpoint {
            log_flushed: f(0),
            dispatched: f(1),
            index: IndexMark { begin: f(2), count: f(3) },
            last_record: f(4),
            last_store_ts: f(5),
        })
    }

    /// Reads the checkpoint at `path`: `Ok(None)` if missing or damaged (logged).
    pub(crate) fn read(path: &Path) -> Result<Option<Checkpoint>> {
        match std::fs::read(path) {
            Ok(b) => {
                let cp = Checkpoint::decode(&b);
                if cp.is_none() {
                    tracing::warn!(path = %path.display(), "checkpoint is damaged; ignoring it");
                }
                Ok(cp)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Writes the checkpoint durably to `path`.
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let cp = Checkpoint {
            log_flushed: 1,
            dispatched: 2,
            index: IndexMark { begin: 3, count: 4 },
            last_record: 5,
            last_store_ts: 6,
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("checkpoint");
        assert_eq!(Checkpoint::read(&p).unwrap(), None);
        cp.write(&p).unwrap();
        assert_eq!(Checkpoint::read(&p).unwrap(), Some(cp));
        let mut b = cp.encode();
        for i in 0..b.len() {
            b[i] ^= 0x40;
            assert_eq!(Checkpoint::decode(&b), None, "byte {i}");
            b[i] ^= 0x40;
        }
        assert_eq!(Checkpoint::decode(&b[..10]), None);
    }
}
