//! Retry and dead letters: a message that always fails is delivered `max_reconsume_times + 1`
//! times with growing delays, then sits in the DLQ with its id and properties, from where it
//! can be re-sent.

mod support;

use std::time::{Duration, Instant};

use ferrymq_core::broker::*;
use ferrymq_core::Error;
use support::*;

#[tokio::test]
async fn failing_message_retries_then_goes_to_dlq_and_can_be_resent() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.put_group("g", Some(3)).unwrap();
    let props = [("order".to_string(), "42".to_string())].into();
    let sent =
        broker.send("pay", OutgoingMessage { tag: Some("T".into()), properties: props, ..msg("boom") }).await.unwrap();
    let mut deliveries = Vec::new();
    let mut last = Instant::now();
    let mut gaps = Vec::new();
    for _ in 0..4 {
        let mut req = receive("g", "pay", "c");
        req.wait = Duration::from_secs(10);
        let got = broker.receive(req).await.unwrap();
        assert_eq!(got.len(), 1);
        gaps.push(last.elapsed());
        last = Instant::now();
        let m = got.into_iter().next().unwrap();
        broker.nack("g", m.receipt.as_ref().unwrap(), None).await.unwrap().unwrap();
        deliveries.push(m);
    }
    let times: Vec<u32> = deliveries.iter().map(|m| m.reconsume_times).collect();
    assert_eq!(times, [0, 1, 2, 3]);
    assert!(deliveries.iter().all(|m| m.msg_id == sent.msg_id && m.topic == "pay"));
    // retry delays are levels 3, 4, 5: 120, 160, 200 ms with the test levels
    for (gap, level) in gaps[1..].iter().zip([3usize, 4, 5]) {
        assert!(*gap >= fast_levels()[level - 1], "retry after {gap:?} is earlier than level {level}");
    }
    let mut req = receive("g", "pay", "c");
    req.wait = Duration::from_millis(500);
    assert!(broker.receive(req).await.unwrap().is_empty(), "no fifth delivery");
    let dlq = broker.dlq("g").await.unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!((dlq[0].msg_id.as_str(), dlq[0].topic.as_str()), (sent.msg_id.as_str(), "pay"));
    assert_eq!(dlq[0].properties.get("order").map(String::as_str), Some("42"));
    assert_eq!(dlq[0].tag.as_deref(), Some("T"));
    assert!(broker.group("g").unwrap().offsets.iter().all(|o| o.lag == 0), "moved to DLQ counts as done");

    let resent = broker.resend_dlq("g", &sent.msg_id).await.unwrap();
    assert_eq!(resent.msg_id, sent.msg_id);
    assert!(broker.dlq("g").await.unwrap().is_empty(), "moved out of the DLQ");
    assert!(matches!(broker.resend_dlq("g", &sent.msg_id).await, Err(Error::NotFound { .. })));
    let again = drain(&broker, &receive("g", "pay", "c"), 1, Duration::from_secs(3)).await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].msg_id.as_str(), again[0].reconsume_times), (sent.msg_id.as_str(), 0));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn nack_with_explicit_delay() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.send("n", msg("x")).await.unwrap();
    let got = broker.receive(receive("g", "n", "c")).await.unwrap();
    let at = Instant::now();
    broker.nack("g", got[0].receipt.as_ref().unwrap(), Some(Duration::from_millis(300))).await.unwrap().unwrap();
    let mut req = receive("g", "n", "c");
    req.wait = Duration::from_secs(5);
    let back = broker.receive(req).await.unwrap();
    assert!(at.elapsed() >= Duration::from_millis(300));
    assert_eq!(back[0].reconsume_times, 1);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_resent_dead_letter_that_fails_again_can_be_resent_again() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.put_group("g", Some(0)).unwrap();
    let sent = broker.send("pay", msg("boom")).await.unwrap();
    let req = receive("g", "pay", "c");
    for round in 0..3 {
        let mut waiting = req.clone();
        waiting.wait = Duration::from_secs(5);
        let got = broker.receive(waiting).await.unwrap();
        assert_eq!(got.len(), 1, "round {round}");
        assert_eq!(got[0].msg_id, sent.msg_id);
        broker.nack("g", got[0].receipt.as_ref().unwrap(), None).await.unwrap().unwrap();
        let dlq = broker.dlq("g").await.unwrap();
        assert_eq!(dlq.len(), 1, "round {round}: failed again, so a dead letter again");
        assert_eq!(dlq[0].msg_id, sent.msg_id);
        let resent = broker.resend_dlq("g", &sent.msg_id).await.unwrap();
        assert_eq!(resent.msg_id, sent.msg_id);
        assert!(broker.dlq("g").await.unwrap().is_empty(), "round {round}: out of the DLQ");
    }
    broker.shutdown().await.unwrap();
    // The resend positions survive a restart.
    let broker = open(dir.path()).await;
    assert!(broker.dlq("g").await.unwrap().is_empty());
    broker.shutdown().await.unwrap();
}
