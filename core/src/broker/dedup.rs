//! Idempotent publishing: remembers, per topic, the idempotency keys seen within the dedup
//! window with a fingerprint of what was sent and what it returned. Persisted in
//! `meta/dedup.json` before the publish is acknowledged, so the window survives a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::meta::MetaFile;
use super::types::{OutgoingMessage, SendResult};
use crate::Result;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DedupEntry {
    pub(crate) fingerprint: u64,
    pub(crate) results: Vec<SendResult>,
    pub(crate) at_ms: u64,
}

/// Most idempotency keys remembered at once, over all topics.
pub const MAX_DEDUP_KEYS: usize = 100_000;

/// (topic, key) → entry.
#[derive(Debug)]
pub(crate) struct DedupTable {
    file: MetaFile,
    entries: Mutex<BTreeMap<String, BTreeMap<String, DedupEntry>>>,
}

impl DedupTable {
    pub(crate) fn open(file: MetaFile) -> Result<DedupTable> {
        let entries = file.load()?;
        Ok(DedupTable { file, entries: Mutex::new(entries) })
    }

    pub(crate) fn get(&self, topic: &str, key: &str, window_ms: u64) -> Option<DedupEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(topic)?.get(key)?;
        (super::now_ms().saturating_sub(entry.at_ms) < window_ms).then(|| entry.clone())
    }

    /// Records entries and prunes expired ones, then persists.
    pub(crate) fn insert(&self, topic: &str, new: Vec<(String, DedupEntry)>, window_ms: u64) -> Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = super::now_ms();
        for per_topic in entries.values_mut() {
            per_topic.retain(|_, e| now.saturating_sub(e.at_ms) < window_ms);
        }
        entries.retain(|_, m| !m.is_empty());
        let per_topic = entries.entry(topic.to_string()).or_default();
        for (key, entry) in new {
            per_topic.insert(key, entry);
        }
        // A bound on the window: past it, the oldest keys are forgotten first.
        let total: usize = entries.values().map(BTreeMap::len).sum();
        if total > MAX_DEDUP_KEYS {
            let mut ages: Vec<(u64, String, String)> =
                entries.iter().flat_map(|(t, m)| m.iter().map(move |(k, e)| (e.at_ms, t.clone(), k.clone()))).collect();
            ages.sort_unstable();
            for (_, t, k) in ages.into_iter().take(total - MAX_DEDUP_KEYS) {
                if let Some(m) = entries.get_mut(&t) {
                    m.remove(&k);
                }
            }
            entries.retain(|_, m| !m.is_empty());
        }
        self.file.save(&*entries)
    }

    /// Keys remembered, over all topics.
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).values().map(BTreeMap::len).sum()
    }

    pub(crate) fn remove_topic(&self, topic: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(topic);
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
