//! Topics: creation rules, permissions, auto-creation, deletion, persistence across restarts.

mod support;

use ferrymq_core::broker::*;
use ferrymq_core::Error;
use support::*;

#[tokio::test]
async fn create_list_describe_delete() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let t = broker.create_topic("orders", Some(4), None).unwrap();
    assert_eq!(t, TopicInfo { name: "orders".into(), queues: 4, perm: Perm::ReadWrite });
    assert!(matches!(broker.create_topic("orders", None, None), Err(Error::Conflict(_))));
    for bad in ["", "a b", "%DLQ%x", "RMQ_SYS_TRANS_HALF_TOPIC", "SCHEDULE_TOPIC_XXXX"] {
        assert!(matches!(broker.create_topic(bad, None, None), Err(Error::InvalidArgument { .. })), "{bad:?}");
    }
    assert!(matches!(broker.create_topic("zero", Some(0), None), Err(Error::InvalidArgument { .. })));
    broker.send("orders", msg("a")).await.unwrap();
    let detail = broker.topic("orders").unwrap();
    assert_eq!(detail.queue_offsets.len(), 4);
    assert_eq!(detail.queue_offsets.iter().map(|q| q.max).sum::<u64>(), 1);
    broker.delete_topic("orders").await.unwrap();
    assert!(matches!(broker.topic("orders"), Err(Error::NotFound { .. })));
    assert!(broker.topics().is_empty());
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_topic_created_again_after_deletion_starts_empty_at_offset_zero() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("again", Some(1), None).unwrap();
    broker.send("again", msg("a")).await.unwrap();
    broker.send("again", msg("b")).await.unwrap();
    let held = broker.receive(receive("g", "again", "c")).await.unwrap();
    assert_eq!(bodies(&held), ["a", "b"]);
    broker.delete_topic("again").await.unwrap();
    broker.create_topic("again", Some(1), None).unwrap();
    let bounds =
        |b: &Broker| b.topic("again").unwrap().queue_offsets.iter().map(|q| (q.min, q.max)).collect::<Vec<_>>();
    assert_eq!(bounds(&broker), [(0, 0)]);
    // `max` is the offset the next message gets.
    let sent = broker.send("again", msg("c")).await.unwrap();
    assert_eq!((sent.queue_id, sent.queue_offset), (Some(0), Some(0)));
    assert_eq!(bounds(&broker), [(0, 1)]);
    // A receipt from before the deletion names the same queue and offset, but not this delivery.
    let old = held[0].receipt.as_deref().unwrap();
    assert!(broker.ack("g", old).await.unwrap().is_err(), "an old receipt acks nothing new");
    assert_eq!(bodies(&broker.receive(receive("g", "again", "c")).await.unwrap()), ["c"]);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_deleted_topic_s_messages_are_found_by_no_lookup_also_once_the_name_is_used_again() {
    let dir = tempfile::tempdir().unwrap();
    let keyed = |body: &str| OutgoingMessage { keys: vec!["k".into()], ..msg(body) };
    let old = {
        let broker = open(dir.path()).await;
        broker.create_topic("reborn", Some(1), None).unwrap();
        let old = broker.send("reborn", keyed("old")).await.unwrap();
        assert_eq!(broker.message(&old.msg_id).await.unwrap().body, b"old");
        broker.delete_topic("reborn").await.unwrap();
        assert!(matches!(broker.message(&old.msg_id).await, Err(Error::NotFound { .. })));
        broker.create_topic("reborn", Some(1), None).unwrap();
        broker.send("reborn", keyed("new")).await.unwrap();
        broker.shutdown().await.unwrap();
        old
    };
    // The same after a restart.
    let broker = open(dir.path()).await;
    assert!(matches!(broker.message(&old.msg_id).await, Err(Error::NotFound { .. })));
    let by_key = broker.find_messages("reborn", Some("k"), None, None, 10).await.unwrap();
    assert_eq!(bodies(&by_key), ["new"]);
    let by_time = broker.find_messages("reborn", None, Some(0), None, 10).await.unwrap();
    assert_eq!(bodies(&by_time), ["new"]);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn permissions_and_auto_creation() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.auto_create_topics = false;
    let broker = Broker::open(config).await.unwrap();
    assert!(matches!(broker.send("nope", msg("x")).await, Err(Error::NotFound { .. })));
    broker.create_topic("ro", Some(1), Some(Perm::Read)).unwrap();
    broker.create_topic("wo", Some(1), Some(Perm::Write)).unwrap();
    assert!(matches!(broker.send("ro", msg("x")).await, Err(Error::Forbidden(_))));
    broker.send("wo", msg("x")).await.unwrap();
    assert!(matches!(broker.receive(receive("g", "wo", "c")).await, Err(Error::Forbidden(_))));
    assert!(matches!(broker.receive(receive("g", "missing", "c")).await, Err(Error::NotFound { .. })));
    broker.shutdown().await.unwrap();

    let broker = open(dir.path()).await;
    let r = broker.send("fresh", msg("x")).await.unwrap();
    assert_eq!(r.queue_offset, Some(0));
    assert_eq!(broker.topic("fresh").unwrap().topic.queues, 8, "auto-created with the default queue count");
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn topics_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("a", Some(2), Some(Perm::Write)).unwrap();
    broker.create_topic("b", Some(3), None).unwrap();
    broker.shutdown().await.unwrap();
    let broker = open(dir.path()).await;
    let names: Vec<_> = broker.topics().into_iter().map(|t| (t.name, t.queues, t.perm)).collect();
    assert_eq!(names, vec![("a".into(), 2, Perm::Write), ("b".into(), 3, Perm::ReadWrite)]);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_messages_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.store.max_message_bytes = 1024;
    config.max_batch_messages = 3;
    let broker = Broker::open(config).await.unwrap();
    let big = OutgoingMessage { body: vec![0; 1025], ..Default::default() };
    assert!(matches!(broker.send("t", big).await, Err(Error::MessageTooLarge { .. })));
    let reserved = OutgoingMessage { properties: [("__REAL_TOPIC".to_string(), "x".to_string())].into(), ..msg("x") };
    assert!(matches!(broker.send("t", reserved).await, Err(Error::InvalidArgument { .. })));
    for delay in
        [Delay::Level(0), Delay::Level(19), Delay::Millis(0), Delay::At(0), Delay::Millis(10 * 24 * 3600 * 1000)]
    {
        let m = OutgoingMessage { delay: Some(delay), ..msg("x") };
        assert!(matches!(broker.send("t", m).await, Err(Error::InvalidArgument { .. })), "{delay:?}");
    }
    let batch = vec![msg("1"), msg("2"), msg("3"), msg("4")];
    let too_many = broker.send_batch("t", batch, None).await;
    assert!(matches!(too_many, Err(Error::BatchTooLarge { size: 4, .. })), "{too_many:?}");
    let words = too_many.unwrap_err().to_string();
    assert!(words.contains("4 messages") && !words.contains("body"), "{words}");
    assert!(matches!(broker.send_batch("t", vec![], None).await, Err(Error::InvalidArgument { .. })));
    let bad_batch = vec![msg("ok"), OutgoingMessage { tag: Some(String::new()), ..msg("x") }];
    match broker.send_batch("t", bad_batch, None).await {
        Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "/messages/1/tag"),
        other => panic!("expected a field error, got {other:?}"),
    }
    assert_eq!(broker.topic("t").map(|t| t.queue_offsets.iter().map(|q| q.max).sum::<u64>()).unwrap_or(0), 0);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn idempotent_publish_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let keyed = OutgoingMessage { idempotency_key: Some("k1".into()), ..msg("pay 10") };
    let first = broker.send("pay", keyed.clone()).await.unwrap();
    let again = broker.send("pay", keyed.clone()).await.unwrap();
    assert_eq!(first, again);
    let other = OutgoingMessage { body: b"pay 20".to_vec(), ..keyed.clone() };
    assert!(matches!(broker.send("pay", other).await, Err(Error::IdempotencyConflict { .. })));
    let batch = vec![msg("a"), msg("b")];
    let r1 = broker.send_batch("pay", batch.clone(), Some("b1".into())).await.unwrap();
    broker.shutdown().await.unwrap();

    let broker = open(dir.path()).await;
    assert_eq!(broker.send("pay", keyed).await.unwrap(), first);
    assert_eq!(broker.send_batch("pay", batch, Some("b1".into())).await.unwrap(), r1);
    let total: u64 = broker.topic("pay").unwrap().queue_offsets.iter().map(|q| q.max).sum();
    assert_eq!(total, 3, "repeats stored nothing");
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_repeats_of_one_idempotency_key_store_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("idem", Some(4), None).unwrap();
    let sends: Vec<_> = (0..40)
        .map(|i| {
            let broker = broker.clone();
            // Two keys, twenty sends each, all at once.
            let key = format!("k{}", i % 2);
            tokio::spawn(async move {
                let m = OutgoingMessage { idempotency_key: Some(key.clone()), ..msg(&key) };
                broker.send("idem", m).await.unwrap()
            })
        })
        .collect();
    let mut results = std::collections::BTreeSet::new();
    for s in sends {
        let r = s.await.unwrap();
        results.insert((r.msg_id, r.queue_id, r.queue_offset));
    }
    assert_eq!(results.len(), 2, "one message per key: {results:?}");
    let stored: u64 = broker.topic("idem").unwrap().queue_offsets.iter().map(|q| q.max).sum();
    assert_eq!(stored, 2);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_dedup_log_is_appended_compacted_and_survives_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.dedup_window = std::time::Duration::from_millis(200);
    let broker = Broker::open(c.clone()).await.unwrap();
    let keyed = |k: String| OutgoingMessage { idempotency_key: Some(k.clone()), ..msg(&k) };
    for round in 0..30 {
        let batch = (0..100).map(|i| keyed(format!("r{round}-{i}"))).collect();
        broker.send_batch("idem", batch, None).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let sizes = broker.table_sizes();
        assert!(sizes.dedup_keys <= 100 * 15, "expired keys are dropped: {sizes:?}");
        assert!(sizes.dedup_log_lines <= 2 * sizes.dedup_keys + 1024 + 100, "the log is compacted: {sizes:?}");
    }
    let last = broker.send("idem", keyed("last".into())).await.unwrap();
    broker.shutdown().await.unwrap();
    // A crash in the middle of an append leaves a torn line: it is ignored.
    let log = dir.path().join("meta").join("dedup.log");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"{\"topic\":\"idem\",\"key\":\"x").unwrap();
    drop(file);
    c.dedup_window = std::time::Duration::from_secs(600);
    let broker = Broker::open(c).await.unwrap();
    assert_eq!(broker.send("idem", keyed("last".into())).await.unwrap(), last, "the window survived");
    broker.shutdown().await.unwrap();
}
