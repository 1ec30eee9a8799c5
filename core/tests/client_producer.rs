//! Producers through the client: single, batch and one-way sends, message attributes as the
//! consumer sees them, and errors that are not retried.

mod client_util;
mod support;

use std::time::Duration;

use ferrymq_core::broker::{Delay, FilterSpec, MessageState};
use ferrymq_core::client::{MessageBuilder, DEFAULT_INVISIBLE, DEFAULT_SEND_RETRIES};
use ferrymq_core::Error;

use client_util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_batch_and_oneway() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("events", 1).await.unwrap();
    let producer = client.producer(Some("emitters"));
    assert_eq!((producer.group(), producer.retries()), (Some("emitters"), DEFAULT_SEND_RETRIES));

    let one = producer
        .send(
            "events",
            MessageBuilder::new("created").tag("user").key("u-1").property("region", "eu").sharding_key("u-1"),
        )
        .await
        .unwrap();
    assert_eq!((one.queue_id, one.queue_offset, one.transaction_id.clone()), (Some(0), Some(0), None));
    let batch = producer.send_batch("events", ["b1", "b2", "b3"]).await.unwrap();
    assert_eq!(batch.iter().map(|r| r.queue_offset).collect::<Vec<_>>(), [Some(1), Some(2), Some(3)]);
    producer.send_oneway("events", "fire and forget").unwrap();

    let stored = client.admin().message(&one.msg_id).await.unwrap();
    assert_eq!(stored.tag.as_deref(), Some("user"));
    assert_eq!(stored.keys, ["u-1"]);
    assert_eq!(stored.properties.get("region").map(String::as_str), Some("eu"));

    let consumer = client.simple_consumer("readers", "events", FilterSpec::default()).unwrap();
    let mut bodies = Vec::new();
    for _ in 0..20 {
        for m in consumer.receive(16, Duration::from_millis(100), DEFAULT_INVISIBLE).await.unwrap() {
            bodies.push(String::from_utf8_lossy(&m.body).into_owned());
        }
        if bodies.len() >= 5 {
            break;
        }
    }
    bodies.sort();
    assert_eq!(bodies, ["b1", "b2", "b3", "created", "fire and forget"]);
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_sends_are_scheduled() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    let m = MessageBuilder::new("later").delay_level(2).build();
    assert_eq!(m.delay, Some(Delay::Level(2)));
    let r = client.producer(None).send("timers", m).await.unwrap();
    assert_eq!(r.queue_offset, None, "a delayed message has no place yet");
    assert_eq!(client.admin().message(&r.msg_id).await.unwrap().state, MessageState::Scheduled);
    let consumer = client.simple_consumer("g", "timers", FilterSpec::default()).unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        got = consumer.receive(1, Duration::from_millis(100), DEFAULT_INVISIBLE).await.unwrap();
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].msg_id, r.msg_id);
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_are_returned_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    let producer = client.producer(None).with_retries(5);
    let started = std::time::Instant::now();
    assert!(matches!(producer.send("bad topic", "x").await, Err(Error::InvalidArgument { .. })));
    assert!(matches!(producer.send("RMQ_SYS_X", "x").await, Err(Error::InvalidArgument { .. })));
    assert!(matches!(producer.send_batch("t", Vec::<&str>::new()).await, Err(Error::InvalidArgument { .. })));
    let big = vec![0u8; 5 << 20];
    assert!(matches!(producer.send("t", big).await, Err(Error::MessageTooLarge { .. })));
    assert!(started.elapsed() < Duration::from_millis(100), "not retried");
    client.close().await.unwrap();
    // A closed client stays closed: its error is not retried.
    let started = std::time::Instant::now();
    let after_close = producer.with_retries(5).send("t", "after close").await;
    assert!(matches!(after_close, Err(Error::Connection(_))), "{after_close:?}");
    assert!(started.elapsed() < Duration::from_millis(100), "not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_shutting_down_under_an_open_client_is_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let broker = ferrymq_core::broker::Broker::open(support::config(dir.path())).await.unwrap();
    let transport = std::sync::Arc::new(ferrymq_core::client::EmbeddedTransport::new(broker.clone()));
    let client = ferrymq_core::client::Client::with_transport(transport);
    client.admin().create_topic("t", 1).await.unwrap();
    broker.shutdown().await.unwrap();
    // Unavailable is transient: retried after 100 ms, then 200 ms.
    let started = std::time::Instant::now();
    let sent = client.producer(None).with_retries(2).send("t", "x").await;
    assert!(matches!(sent, Err(Error::Unavailable(_))), "{sent:?}");
    assert!(started.elapsed() >= Duration::from_millis(300), "retried with backoff");
}
