//! Idempotent publishing: remembers, per topic, the idempotency keys seen within the dedup
//! window with a fingerprint of what was sent and what it returned.
//!
//! Persisted in `meta/dedup.log`, an append-only log of JSON lines written and fsynced before
//! the publish is acknowledged, so the window survives a restart. Each keyed publish appends
//! only its own keys; when the log holds more than twice the live keys it is compacted
//! (rewritten atomically with the live ones). Expired keys leave the table oldest first, and
//! at most [`MAX_DEDUP_KEYS`] are kept. A torn last line (a crash mid-append) is ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::meta::MetaFile;
use super::types::{OutgoingMessage, SendResult};
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DedupEntry {
    pub(crate) fingerprint: u64,
    pub(crate) results: Vec<SendResult>,
    pub(crate) at_ms: u64,
}

/// Most idempotency keys remembered at once, over all topics.
pub const MAX_DEDUP_KEYS: usize = 100_000;

/// One line of the dedup log.
#[derive(Debug, Serialize, Deserialize)]
struct LogLine {
    topic: String,
    key: String,
    entry: DedupEntry,
}

#[derive(Debug, Default)]
struct Entries {
    /// topic → key → entry.
    map: BTreeMap<String, BTreeMap<String, DedupEntry>>,
    /// (time, topic, key), oldest first: expiry and the cap remove from the front.
    by_age: BTreeSet<(u64, String, String)>,
}

impl Entries {
    fn put(&mut self, topic: String, key: String, entry: DedupEntry) {
        let per_topic = self.map.entry(topic.clone()).or_default();
        if let Some(old) = per_topic.insert(key.clone(), entry.clone()) {
            self.by_age.remove(&(old.at_ms, topic.clone(), key.clone()));
        }
        self.by_age.insert((entry.at_ms, topic, key));
    }

    fn remove_oldest(&mut self) {
        if let Some((_, topic, key)) = self.by_age.pop_first() {
            if let Some(per_topic) = self.map.get_mut(&topic) {
                per_topic.remove(&key);
                if per_topic.is_empty() {
                    self.map.remove(&topic);
                }
            }
        }
    }

    /// Drops keys older than the window, then the oldest beyond the cap.
    fn prune(&mut self, now: u64, window_ms: u64) {
        while self.by_age.first().is_some_and(|(at, _, _)| now.saturating_sub(*at) >= window_ms) {
            self.remove_oldest();
        }
        while self.by_age.len() > MAX_DEDUP_KEYS {
            self.remove_oldest();
        }
    }

    fn lines(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (topic, keys) in &self.map {
            for (key, entry) in keys {
                let line = LogLine { topic: topic.clone(), key: key.clone(), entry: entry.clone() };
                if let Ok(bytes) = serde_json::to_vec(&line) {
                    out.extend_from_slice(&bytes);
                    out.push(b'\n');
                }
            }
        }
        out
    }
}

#[derive(Debug)]
struct Inner {
    entries: Entries,
    log: File,
    /// Lines in the log file (live or not).
    log_lines: usize,
}

/// (topic, key) → entry, with its log.
#[derive(Debug)]
pub(crate) struct DedupTable {
    path: PathBuf,
    inner: Mutex<Inner>,
}

fn open_append(path: &PathBuf) -> Result<File> {
    OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))
}

impl DedupTable {
    /// Opens the table from `meta/dedup.log`, first taking in `legacy` (the `dedup.json` an
    /// older version rewrote whole), which is then removed.
    pub(crate) fn open(legacy: MetaFile, path: PathBuf) -> Result<DedupTable> {
        let mut entries = Entries::default();
        let old: BTreeMap<String, BTreeMap<String, DedupEntry>> = legacy.load()?;
        for (topic, keys) in old {
            for (key, entry) in keys {
                entries.put(topic.clone(), key, entry);
            }
        }
        match File::open(&path) {
            Ok(file) => {
                for line in std::io::BufReader::new(file).lines() {
                    let Ok(line) = line else { break };
                    // A torn last line (a crash mid-append) ends the log.
                    let Ok(line) = serde_json::from_str::<LogLine>(&line) else { break };
                    entries.put(line.topic, line.key, line.entry);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
        while entries.by_age.len() > MAX_DEDUP_KEYS {
            entries.remove_oldest();
        }
        // Start from a compact log (this also drops a torn tail), then forget the old file.
        crate::store::write_atomic(&path, &entries.lines())?;
        legacy.remove()?;
        let log_lines = entries.by_age.len();
        let log = open_append(&path)?;
        Ok(DedupTable { path, inner: Mutex::new(Inner { entries, log, log_lines }) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, topic: &str, key: &str, window_ms: u64) -> Option<DedupEntry> {
        let inner = self.lock();
        let entry = inner.entries.map.get(topic)?.get(key)?;
        (super::now_ms().saturating_sub(entry.at_ms) < window_ms).then(|| entry.clone())
    }

    /// Records entries durably (one append and fsync), prunes expired ones, and compacts the
    /// log when it holds more than twice the live keys.
    pub(crate) fn insert(&self, topic: &str, new: Vec<(String, DedupEntry)>, window_ms: u64) -> Result<()> {
        let mut inner = self.lock();
        let mut bytes = Vec::new();
        for (key, entry) in &new {
            let line = LogLine { topic: topic.to_string(), key: key.clone(), entry: entry.clone() };
            let json = serde_json::to_vec(&line).map_err(|e| Error::Corrupt {
                path: self.path.clone(),
                offset: 0,
                reason: e.to_string(),
            })?;
            bytes.extend_from_slice(&json);
            bytes.push(b'\n');
        }
        inner.log.write_all(&bytes).map_err(|e| Error::io(&self.path, e))?;
        inner.log.sync_data().map_err(|e| Error::io(&self.path, e))?;
        inner.log_lines += new.len();
        for (key, entry) in new {
            inner.entries.put(topic.to_string(), key, entry);
        }
        inner.entries.prune(super::now_ms(), window_ms);
        if inner.log_lines > 2 * inner.entries.by_age.len() + 1024 {
            crate::store::write_atomic(&self.path, &inner.entries.lines())?;
            inner.log = open_append(&self.path)?;
            inner.log_lines = inner.entries.by_age.len();
        }
        Ok(())
    }

    /// Keys remembered, over all topics.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.by_age.len()
    }

    /// Lines in the log file now (live keys and not yet compacted ones).
    pub(crate) fn log_lines(&self) -> usize {
        self.lock().log_lines
    }

    pub(crate) fn remove_topic(&self, topic: &str) {
        let mut inner = self.lock();
        if let Some(keys) = inner.entries.map.remove(topic) {
            for (key, entry) in keys {
                inner.entries.by_age.remove(&(entry.at_ms, topic.to_string(), key));
            }
        }
    }
}

type LockKey = (String, String);

/// One async lock per (topic, idempotency key) in use: two sends with the same key are
/// serialised (so both cannot store), sends with other keys or on other topics are not.
#[derive(Debug, Default)]
pub(crate) struct KeyLocks {
    locks: Mutex<HashMap<LockKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// The locks of one send's keys; released (and forgotten when unused) on drop.
pub(crate) struct KeyGuards<'a> {
    table: &'a KeyLocks,
    held: Vec<(LockKey, tokio::sync::OwnedMutexGuard<()>)>,
}

impl KeyLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<LockKey, Arc<tokio::sync::Mutex<()>>>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks every key of `keys` on `topic`, in a fixed order (no deadlock between sends).
    pub(crate) async fn lock_all(&self, topic: &str, keys: Vec<String>) -> KeyGuards<'_> {
        let mut keys = keys;
        keys.sort();
        keys.dedup();
        let mut held = Vec::with_capacity(keys.len());
        for key in keys {
            let k = (topic.to_string(), key);
            let lock = self.map().entry(k.clone()).or_default().clone();
            held.push((k, lock.lock_owned().await));
        }
        KeyGuards { table: self, held }
    }

    /// Keys locked or waited on now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

impl Drop for KeyGuards<'_> {
    fn drop(&mut self) {
        for (key, guard) in self.held.drain(..) {
            drop(guard);
            let mut map = self.table.map();
            // Only the map holds it: nobody waits, forget the key.
            if map.get(&key).is_some_and(|l| Arc::strong_count(l) == 1) {
                map.remove(&key);
            }
        }
    }
}

/// A stable fingerprint of everything that defines a message (FNV-1a 64 over a canonical
/// encoding), so that a repeat with other content is told apart from a true retry.
pub(crate) fn fingerprint<'a>(msgs: impl IntoIterator<Item = &'a OutgoingMessage>) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    for m in msgs {
        h.field(&m.body);
        h.field(m.tag.as_deref().unwrap_or("\u{0}").as_bytes());
        for k in &m.keys {
            h.field(k.as_bytes());
        }
        h.field(b"|");
        for (k, v) in &m.properties {
            h.field(k.as_bytes());
            h.field(v.as_bytes());
        }
        h.field(format!("{:?}|{:?}|{:?}", m.delay, m.sharding_key, m.transaction).as_bytes());
    }
    h.0
}

struct Fnv(u64);

impl Fnv {
    fn field(&mut self, bytes: &[u8]) {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn key_locks_serialise_one_key_and_are_forgotten_after_use() {
        let locks = KeyLocks::default();
        let a = locks.lock_all("t", vec!["k".into(), "j".into(), "k".into()]).await;
        assert_eq!(locks.len(), 2);
        let other_topic = locks.lock_all("u", vec!["k".into()]).await;
        let waiting = locks.lock_all("t", vec!["k".into()]);
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending(), "the same key waits");
        drop(a);
        let b = waiting.await;
        drop((b, other_topic));
        assert_eq!(locks.len(), 0, "unused keys are forgotten");
    }

    #[test]
    fn fingerprint_tells_content_apart() {
        let a = OutgoingMessage { body: b"x".to_vec(), ..Default::default() };
        let mut b = a.clone();
        assert_eq!(fingerprint([&a]), fingerprint([&b]));
        b.tag = Some("t".into());
        assert_ne!(fingerprint([&a]), fingerprint([&b]));
        let c = OutgoingMessage { body: b"xy".to_vec(), ..Default::default() };
        assert_ne!(fingerprint([&a]), fingerprint([&c]));
    }
}
