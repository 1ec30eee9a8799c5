//! Replay and lookups: reset by timestamp, earliest and latest; find by id, key and time;
//! per-sharding-key order across a restart.

mod support;

use std::time::Duration;

use ferrymq_core::broker::*;
use ferrymq_core::Error;
use support::*;

#[tokio::test]
async fn reset_to_timestamp_replays_exactly_what_was_stored_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("r", Some(3), None).unwrap();
    for i in 0..9 {
        broker.send("r", msg(&format!("before{i}"))).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    for i in 0..6 {
        broker.send("r", msg(&format!("after{i}"))).await.unwrap();
    }
    let req = receive("g", "r", "c");
    assert_eq!(drain(&broker, &req, 15, Duration::from_secs(3)).await.len(), 15);
    let offsets = broker.reset_offsets("g", "r", ResetTarget::Timestamp(cut)).await.unwrap();
    assert_eq!(offsets.len(), 3);
    let mut replayed = bodies(&drain(&broker, &req, 6, Duration::from_secs(3)).await);
    replayed.sort();
    assert_eq!(replayed, (0..6).map(|i| format!("after{i}")).collect::<Vec<_>>());
    assert!(broker.receive(req.clone()).await.unwrap().is_empty(), "nothing more than after the cut");

    broker.reset_offsets("g", "r", ResetTarget::Earliest).await.unwrap();
    assert_eq!(drain(&broker, &req, 15, Duration::from_secs(3)).await.len(), 15);
    broker.reset_offsets("g", "r", ResetTarget::Latest).await.unwrap();
    assert!(broker.receive(req).await.unwrap().is_empty());
    assert!(matches!(broker.reset_offsets("g", "nope", ResetTarget::Latest).await, Err(Error::NotFound { .. })));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn lookups_by_id_key_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let t0 = now_ms();
    let a = broker.send("l", OutgoingMessage { keys: vec!["order-1".into()], ..msg("a") }).await.unwrap();
    broker.send("l", OutgoingMessage { keys: vec!["order-2".into(), "x".into()], ..msg("b") }).await.unwrap();
    broker.send("l", OutgoingMessage { keys: vec!["order-1".into()], ..msg("c") }).await.unwrap();
    let m = broker.message(&a.msg_id).await.unwrap();
    assert_eq!((m.topic.as_str(), m.body.as_slice(), m.state), ("l", &b"a"[..], MessageState::Stored));
    assert_eq!(m.queue_offset, a.queue_offset);
    assert!(matches!(broker.message("0000").await, Err(Error::NotFound { .. })));
    assert!(matches!(broker.message(&"F".repeat(32)).await, Err(Error::NotFound { .. })));
    let by_key = broker.find_messages("l", Some("order-1"), None, None, 100).await.unwrap();
    assert_eq!(bodies(&by_key), ["a", "c"]);
    let by_time = broker.find_messages("l", None, Some(t0), Some(now_ms() + 1), 2).await.unwrap();
    assert_eq!(bodies(&by_time), ["a", "b"], "oldest first, limited");
    assert!(broker.find_messages("l", None, Some(now_ms() + 10_000), None, 10).await.unwrap().is_empty());
    assert!(matches!(broker.find_messages("l", None, None, None, 0).await, Err(Error::InvalidArgument { .. })));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn order_per_sharding_key_holds_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ["alice", "bob", "carol", "dave"];
    let send_round = |broker: std::sync::Arc<Broker>, round: usize| async move {
        for i in 0..10 {
            for k in keys {
                let m = OutgoingMessage { sharding_key: Some(k.into()), ..msg(&format!("{k}:{}", round * 10 + i)) };
                broker.send("ord", m).await.unwrap();
            }
        }
    };
    let broker = open(dir.path()).await;
    broker.create_topic("ord", Some(4), None).unwrap();
    send_round(broker.clone(), 0).await;
    broker.shutdown().await.unwrap();
    let broker = open(dir.path()).await;
    send_round(broker.clone(), 1).await;
    let mut per_key: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    let mut queue_of: std::collections::BTreeMap<String, u32> = Default::default();
    for q in 0..4 {
        let r = broker
            .pull(PullRequest {
                group: "g".into(),
                topic: "ord".into(),
                queue_id: q,
                offset: 0,
                max: 1000,
                filter: FilterSpec::default(),
                wait: Duration::ZERO,
            })
            .await
            .unwrap();
        for m in r.messages {
            let body = String::from_utf8(m.body).unwrap();
            let (k, n) = body.split_once(':').unwrap();
            assert_eq!(*queue_of.entry(k.to_string()).or_insert(q), q, "one key, one queue");
            per_key.entry(k.to_string()).or_default().push(n.parse().unwrap());
        }
    }
    for k in keys {
        assert_eq!(per_key[k], (0..20).collect::<Vec<_>>(), "{k} in order");
    }
    broker.shutdown().await.unwrap();
}
