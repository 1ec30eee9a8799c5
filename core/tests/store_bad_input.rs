//! Bad input gets typed errors, never a panic, and never half an append.

mod common;

use common::{msg, open, tiny_config};
use ferrymq_core::store::{FlushMode, NewMessage, Store, StoreConfig};
use ferrymq_core::Error;

#[test]
fn oversized_bodies_are_payload_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Sync);
    let mut m = msg("t", 0, 0);
    m.body = vec![1; 16 * 1024 + 1];
    let e = store.append(m).unwrap_err();
    assert!(matches!(e, Error::MessageTooLarge { size: 16385, max: 16384 }), "{e:?}");
    assert_eq!(e.kind(), "payload-too-large");
    assert_eq!(store.stats().max_offset, 0, "nothing written");
}

#[test]
fn a_record_larger_than_a_segment_is_payload_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = tiny_config(dir.path(), FlushMode::Async);
    c.max_message_bytes = 1 << 20; // allowed by the limit, but a segment is 64 KiB
    let store = Store::open(c).unwrap();
    let mut m = msg("t", 0, 0);
    m.body = vec![1; 100 * 1024];
    assert!(matches!(store.append(m), Err(Error::MessageTooLarge { size: 102400, .. })));
    let mut m = msg("t", 0, 0);
    m.body = vec![1; 60 * 1024];
    store.append(m).unwrap();
}

#[test]
fn bad_topics_are_invalid_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    for topic in ["", "a/b", "..", ".", "nul\0", &"x".repeat(256)] {
        let m = NewMessage { topic: topic.to_string(), ..msg("t", 0, 0) };
        match store.append(m) {
            Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "/topic"),
            other => panic!("{topic:?}: {other:?}"),
        }
    }
    // System topics with % are fine.
    store.append(NewMessage { topic: "%RETRY%g".into(), ..msg("t", 0, 0) }).unwrap();
}

#[test]
fn a_bad_message_rejects_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Sync);
    let mut bad = msg("t", 0, 1);
    bad.body = vec![0; 1 << 20];
    let r = store.append_batch(vec![msg("t", 0, 0), bad, msg("t", 0, 2)]);
    assert!(matches!(r, Err(Error::MessageTooLarge { .. })));
    assert_eq!(store.stats().max_offset, 0);
    assert_eq!(store.append(msg("t", 0, 0)).unwrap().queue_offset, 0);
}

#[test]
fn offsets_outside_the_log_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    assert!(matches!(store.read(0), Err(Error::OffsetOutOfRange { .. })));
    let r = store.append(msg("t", 0, 0)).unwrap();
    let end = r.commit_offset + u64::from(r.size);
    assert!(matches!(store.read(end), Err(Error::OffsetOutOfRange { offset, .. }) if offset == end));
    assert!(matches!(store.read(u64::MAX), Err(Error::OffsetOutOfRange { .. })));
    // Inside the log but not at a record start.
    for off in [1, 7, 8, 55, u64::from(r.size) - 1] {
        let e = store.read(off).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. } | Error::Corrupt { .. }), "{off}: {e:?}");
    }
    assert!(store.wait_dispatched(end, std::time::Duration::from_secs(10)));
    assert!(matches!(store.read_queue("t", 0, 2, 10), Err(Error::OffsetOutOfRange { offset: 2, min: 0, max: 1, .. })));
    assert!(store.read_queue("t", 0, 1, 10).unwrap().is_empty());
    assert!(store.read_queue("t", 0, 0, 0).unwrap().is_empty());
    assert!(store.read_queue("t", 9, 5, 10).unwrap().is_empty(), "unknown queue");
    assert_eq!(store.offset_for_timestamp("nope", 0, 5).unwrap(), 0);
    assert!(store.lookup_time("t", 10, 5, 10).unwrap().is_empty());
    assert!(!store.wait_dispatched(end + 1000, std::time::Duration::from_millis(50)));
}

#[test]
fn invalid_configs_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad: Vec<StoreConfig> = Vec::new();
    let base = tiny_config(dir.path(), FlushMode::Async);
    bad.push(StoreConfig { segment_bytes: 0, ..base.clone() });
    bad.push(StoreConfig { cq_units_per_file: 0, ..base.clone() });
    bad.push(StoreConfig { disk_max_used_ratio: 0.0, ..base.clone() });
    bad.push(StoreConfig { disk_max_used_ratio: 1.5, ..base.clone() });
    bad.push(StoreConfig { index_slots: 0, ..base.clone() });
    bad.push(StoreConfig { flush_interval: std::time::Duration::ZERO, ..base });
    for c in bad {
        assert!(matches!(Store::open(c), Err(Error::InvalidArgument { .. })));
    }
}
