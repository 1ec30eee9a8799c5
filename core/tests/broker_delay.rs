//! Delayed delivery: levels and arbitrary times are never early, arrive shortly after they are
//! due, keep their id, and survive a restart.

mod support;

use std::time::{Duration, Instant};

use ferrymq_core::broker::*;
use support::*;

async fn receive_one(broker: &Broker, group: &str, topic: &str, within: Duration) -> Option<Message> {
    let mut req = receive(group, topic, "c");
    req.wait = within;
    req.max_messages = 1;
    broker.receive(req).await.unwrap().into_iter().next()
}

#[tokio::test]
async fn each_level_waits_its_delay() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    for level in [1u32, 3, 6] {
        let topic = format!("d{level}");
        broker.create_topic(&topic, Some(1), None).unwrap();
        let sent = Instant::now();
        let r =
            broker.send(&topic, OutgoingMessage { delay: Some(Delay::Level(level)), ..msg("later") }).await.unwrap();
        assert_eq!((r.queue_id, r.queue_offset), (None, None), "no place yet while scheduled");
        assert_eq!(broker.message(&r.msg_id).await.unwrap().state, MessageState::Scheduled);
        let m = receive_one(&broker, "g", &topic, Duration::from_secs(5)).await.expect("delivered");
        let waited = sent.elapsed();
        let delay = fast_levels()[level as usize - 1];
        assert!(waited >= delay, "level {level}: {waited:?} is earlier than {delay:?}");
        assert!(waited < delay + Duration::from_secs(2), "level {level}: {waited:?} is far late");
        assert_eq!(m.msg_id, r.msg_id);
        assert_eq!(m.topic, topic);
        assert_eq!(broker.message(&r.msg_id).await.unwrap().state, MessageState::Stored);
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn deliver_at_and_delay_ms_are_never_early() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("at", Some(1), None).unwrap();
    let due = now_ms() + 300;
    let props = [("k".to_string(), "v".to_string())].into();
    broker
        .send(
            "at",
            OutgoingMessage { delay: Some(Delay::At(due)), tag: Some("T".into()), properties: props, ..msg("at") },
        )
        .await
        .unwrap();
    broker.send("at", OutgoingMessage { delay: Some(Delay::Millis(150)), ..msg("ms") }).await.unwrap();
    let past = broker.send("at", OutgoingMessage { delay: Some(Delay::At(1)), ..msg("past") }).await.unwrap();
    // Nothing to wait for: stored in its topic at once, with its place in the answer.
    assert_eq!((past.queue_id, past.queue_offset), (Some(0), Some(0)));
    let now = broker.send("at", OutgoingMessage { delay: Some(Delay::At(now_ms())), ..msg("now") }).await.unwrap();
    assert_eq!((now.queue_id, now.queue_offset), (Some(0), Some(1)));
    let first = receive_one(&broker, "g", "at", Duration::from_secs(3)).await.unwrap();
    assert_eq!(first.body, b"past", "a time in the past is delivered at once");
    broker.ack("g", first.receipt.as_ref().unwrap()).await.unwrap().unwrap();
    let first = receive_one(&broker, "g", "at", Duration::from_secs(3)).await.unwrap();
    assert_eq!(first.body, b"now");
    broker.ack("g", first.receipt.as_ref().unwrap()).await.unwrap().unwrap();
    let second = receive_one(&broker, "g", "at", Duration::from_secs(3)).await.unwrap();
    assert_eq!(second.body, b"ms");
    broker.ack("g", second.receipt.as_ref().unwrap()).await.unwrap().unwrap();
    let third = receive_one(&broker, "g", "at", Duration::from_secs(3)).await.unwrap();
    assert!(now_ms() >= due, "never early");
    assert_eq!((third.body.as_slice(), third.tag.as_deref()), (&b"at"[..], Some("T")));
    assert_eq!(third.properties.get("k").map(String::as_str), Some("v"), "properties kept, internal ones hidden");
    assert_eq!(third.properties.len(), 1);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn scheduled_messages_survive_restart_and_arrive_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("s", Some(2), None).unwrap();
    broker.send("s", OutgoingMessage { delay: Some(Delay::Level(10)), ..msg("level") }).await.unwrap();
    broker.send("s", OutgoingMessage { delay: Some(Delay::Millis(400)), ..msg("timer") }).await.unwrap();
    broker.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let broker = open(dir.path()).await;
    let req = receive("g", "s", "c");
    let mut got = bodies(&drain(&broker, &req, 2, Duration::from_secs(5)).await);
    got.sort();
    assert_eq!(got, ["level", "timer"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.shutdown().await.unwrap();
    let broker = open(dir.path()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total: u64 = broker.topic("s").unwrap().queue_offsets.iter().map(|q| q.max).sum();
    assert_eq!(total, 2, "delivered exactly once across restarts");
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn short_timers_behind_a_long_one_leave_one_range_of_progress() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("timers", Some(1), None).unwrap();
    let long = OutgoingMessage { delay: Some(Delay::Millis(3_600_000)), ..msg("later") };
    broker.send("timers", long).await.unwrap();
    let batch: Vec<OutgoingMessage> =
        (0..300).map(|i| OutgoingMessage { delay: Some(Delay::Millis(20)), ..msg(&i.to_string()) }).collect();
    broker.send_batch("timers", batch, None).await.unwrap();
    let got = drain(&broker, &receive("g", "timers", "c"), 300, std::time::Duration::from_secs(10)).await;
    assert_eq!(got.len(), 300);
    assert!(got.iter().all(|m| m.body != b"later"));
    // The scheduler saves its progress after each round; a restart reads what it saved.
    broker.shutdown().await.unwrap();
    let broker = open(dir.path()).await;
    let sizes = broker.table_sizes();
    assert!(sizes.timer_done <= 1, "300 delivered timers behind a pending one are one range: {sizes:?}");
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_delayed_message_of_a_deleted_topic_does_not_reach_a_new_topic_of_that_name() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("phoenix", Some(1), None).unwrap();
    let due = now_ms() + 200;
    broker.send("phoenix", OutgoingMessage { delay: Some(Delay::At(due)), ..msg("from before") }).await.unwrap();
    broker
        .send("phoenix", OutgoingMessage { delay: Some(Delay::Level(1)), ..msg("level, from before") })
        .await
        .unwrap();
    broker.delete_topic("phoenix").await.unwrap();
    broker.create_topic("phoenix", Some(1), None).unwrap();
    broker.send("phoenix", OutgoingMessage { delay: Some(Delay::At(due)), ..msg("after") }).await.unwrap();
    let first = receive_one(&broker, "g", "phoenix", Duration::from_secs(3)).await.unwrap();
    assert_eq!(first.body, b"after");
    broker.ack("g", first.receipt.as_ref().unwrap()).await.unwrap().unwrap();
    assert!(receive_one(&broker, "g", "phoenix", Duration::from_millis(500)).await.is_none(), "nothing from before");
    broker.shutdown().await.unwrap();
}
