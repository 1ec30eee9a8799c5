//! Idempotent publishing: remembers, per topic, the idempotency keys seen within the dedup
//! window with a fingerprint of what was sent and what it returned. Persisted in
//! `meta/dedup.json` before the publish is acknowledged, so the window survives a restart.

use std::collections::BTreeMap;
use std::sync::Mutex;

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
