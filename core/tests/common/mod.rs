//! Helpers shared by the store integration tests: temporary directories, tiny segments,
//! deterministic messages.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferrymq_core::store::{FlushMode, NewMessage, Store, StoreConfig, StoredMessage};

/// A config with tiny files so tests roll segments, queue files and index files often.
pub fn tiny_config(dir: &Path, flush: FlushMode) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.segment_bytes = 64 * 1024;
    c.flush = flush;
    c.flush_interval = Duration::from_millis(20);
    c.dispatch_flush_interval = Duration::from_millis(20);
    c.cq_units_per_file = 64;
    c.index_slots = 64;
    c.index_entries_per_file = 256;
    c.max_message_bytes = 16 * 1024;
    c
}

/// Opens a store with [`tiny_config`].
pub fn open(dir: &Path, flush: FlushMode) -> Arc<Store> {
    Store::open(tiny_config(dir, flush)).expect("open store")
}

/// The body of message `i` of queue `q` on `topic`: deterministic, varying length.
pub fn body(topic: &str, q: u32, i: u64) -> Vec<u8> {
    let len = 20 + (i as usize * 37 + q as usize * 11) % 700;
    let seed = format!("{topic}/{q}/{i}:");
    seed.bytes().cycle().take(len).collect()
}

/// Message `i` of queue `q` on `topic`, with msg_id `{topic}-{q}-{i}` and key `k{i}`.
pub fn msg(topic: &str, q: u32, i: u64) -> NewMessage {
    let mut properties = BTreeMap::new();
    properties.insert("n".to_string(), i.to_string());
    NewMessage {
        topic: topic.to_string(),
        queue_id: q,
        msg_id: msg_id(topic, q, i),
        tag: Some(format!("tag{}", i % 3)),
        keys: vec![format!("k{i}")],
        properties,
        body: body(topic, q, i),
        flags: 0,
        born_ts: 1_000 + i,
        reconsume_times: 0,
    }
}

/// The msg_id [`msg`] gives.
pub fn msg_id(topic: &str, q: u32, i: u64) -> String {
    format!("{topic}-{q}-{i}")
}

/// Asserts that `got` is message `i` of `topic`/`q` as [`msg`] built it.
pub fn assert_is_msg(got: &StoredMessage, topic: &str, q: u32, i: u64) {
    let want = msg(topic, q, i);
    assert_eq!(got.topic, want.topic);
    assert_eq!(got.queue_id, q);
    assert_eq!(got.msg_id, want.msg_id);
    assert_eq!(got.tag, want.tag);
    assert_eq!(got.keys, want.keys);
    assert_eq!(got.properties, want.properties);
    assert_eq!(got.body, want.body, "body of {}", want.msg_id);
    assert_eq!(got.born_ts, want.born_ts);
}
