//! The client over a real gateway: the `ferrymq` binary runs on a free port and the client
//! connects with [`Client::connect_with`]. Publishing, pulling, commits, leases, heartbeats
//! and check-backs go over the WebSocket protocol; lease consumption and admin over REST.
//!
//! The binary is the one `cargo test --workspace` builds (`target/debug/ferrymq`), or
//! `FERRYMQ_GATEWAY_BIN`; without either the tests fail.

mod client_util;
mod gateway_util;
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrymq_core::broker::{ConsumeMode, FilterSpec, Message, MessageState, ResetTarget, TransactionResolution};
use ferrymq_core::client::{
    Client, FindQuery, Listener, ListenerError, MessageBuilder, PushConsumer, DEFAULT_INVISIBLE,
};
use ferrymq_core::Error;

use client_util::*;
use gateway_util::*;

async fn start_gateway() -> Option<(Gateway, Client)> {
    let gateway = Gateway::start();
    let client = connect(&gateway.url(), options()).await;
    Some((gateway, client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_nothing_is_a_connection_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = Client::connect(&format!("http://127.0.0.1:{port}")).await.unwrap_err();
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
    assert!(matches!(Client::connect("ftp://x").await, Err(Error::InvalidArgument { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_receive_and_administer_over_a_gateway() {
    let Some((_gateway, client)) = start_gateway().await else { return };
    let admin = client.admin();
    admin.create_topic("remote-orders", 2).await.unwrap();
    assert!(matches!(admin.create_topic("remote-orders", 2).await, Err(Error::Conflict(_))));
    assert!(matches!(admin.topic("missing").await, Err(Error::NotFound { what: "topic", .. })));

    let producer = client.producer(None);
    let one = producer
        .send("remote-orders", MessageBuilder::new("first").tag("a").key("k1").property("p", "v"))
        .await
        .unwrap();
    assert!(one.queue_offset.is_some());
    let batch = producer.send_batch("remote-orders", ["b1", "b2"]).await.unwrap();
    assert_eq!(batch.len(), 2);
    producer.send("remote-orders", vec![0xffu8, 0x00]).await.unwrap();
    assert!(matches!(producer.send("bad topic!", "x").await, Err(Error::InvalidArgument { .. })));

    let stored = admin.message(&one.msg_id).await.unwrap();
    assert_eq!((stored.body.as_slice(), stored.tag.as_deref()), (b"first".as_slice(), Some("a")));
    assert_eq!(stored.properties.get("p").map(String::as_str), Some("v"));
    let found = admin.find_messages("remote-orders", FindQuery { key: Some("k1".into()), ..FindQuery::default() });
    assert_eq!(found.await.unwrap().len(), 1);

    let consumer = client.simple_consumer("remote-readers", "remote-orders", FilterSpec::default()).unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        got.extend(consumer.receive(16, Duration::from_millis(200), DEFAULT_INVISIBLE).await.unwrap());
        if got.len() >= 4 {
            break;
        }
    }
    assert_eq!(got.len(), 4);
    assert!(got.iter().any(|m| m.body == [0xff, 0x00]), "binary bodies survive");
    for m in &got[1..] {
        consumer.ack(m).await.unwrap();
    }
    assert!(matches!(consumer.ack(&got[1]).await, Err(Error::Conflict(_))));
    consumer.nack(&got[0], Some(Duration::from_millis(50))).await.unwrap();
    let back = consumer.receive(16, Duration::from_secs(2), DEFAULT_INVISIBLE).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].msg_id.as_str(), back[0].reconsume_times), (got[0].msg_id.as_str(), 1));
    let mut held = back[0].clone();
    consumer.change_invisible_duration(&mut held, Duration::from_secs(10)).await.unwrap();
    consumer.ack(&held).await.unwrap();

    let group = admin.group("remote-readers").await.unwrap();
    assert!(group.offsets.iter().all(|o| o.lag == 0), "{:?}", group.offsets);
    let reset = admin.reset_offsets("remote-readers", "remote-orders", ResetTarget::Earliest).await.unwrap();
    assert_eq!(reset.len(), 2);
    assert!(admin.dlq("remote-readers").await.unwrap().is_empty());
    assert!(admin.topics().await.unwrap().iter().any(|t| t.name == "remote-orders"));
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_consumers_share_and_hand_over_over_a_gateway() {
    let Some((_gateway, client)) = start_gateway().await else { return };
    client.admin().create_topic("remote-jobs", 6).await.unwrap();
    let seen: Seen = Arc::default();
    let mut consumers = Vec::new();
    for name in ["a", "b"] {
        let c = client.push_consumer("remote-crew", "remote-jobs", fast().listener(recorder(name, &seen))).unwrap();
        c.start().await.unwrap();
        consumers.push(c);
    }
    // Without membership notifications, members notice each other at a heartbeat.
    // 6 topic queues plus the group's retry queue.
    {
        let refs: Vec<&PushConsumer> = consumers.iter().collect();
        assert!(eventually(Duration::from_secs(5), || partitioned(&refs, 7)).await, "members never settled");
    }
    let producer = client.producer(None);
    let bodies_sent: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    for chunk in bodies_sent.chunks(50) {
        producer.send_batch("remote-jobs", chunk.iter().map(String::as_str)).await.unwrap();
    }
    assert!(eventually(Duration::from_secs(10), || seen.lock().unwrap().len() >= 200).await, "not all consumed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bodies(&seen).len(), 200, "consumed twice");

    let leaving = consumers.remove(0);
    leaving.close().await.unwrap();
    assert!(eventually(Duration::from_secs(5), || consumers[0].assignment().len() == 7).await, "queues did not move");
    for chunk in bodies_sent.chunks(50) {
        let again: Vec<String> = chunk.iter().map(|b| format!("{b}-again")).collect();
        producer.send_batch("remote-jobs", again.iter().map(String::as_str)).await.unwrap();
    }
    assert!(eventually(Duration::from_secs(10), || seen.lock().unwrap().len() >= 400).await, "lost messages");
    let got: BTreeSet<String> = bodies(&seen).into_iter().collect();
    assert_eq!(got.len(), 400);
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderly_failures_and_check_backs_over_a_gateway() {
    let Some((_gateway, client)) = start_gateway().await else { return };
    client.admin().create_topic("remote-steps", 1).await.unwrap();
    let log: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let l = log.clone();
    let listener = Listener::new(move |m: Message| {
        let l = l.clone();
        async move {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            l.lock().unwrap().push((body.clone(), m.reconsume_times));
            if body == "2" && m.reconsume_times < 1 {
                return Err(ListenerError::new("again"));
            }
            Ok(())
        }
    });
    let consumer =
        client.push_consumer("remote-stepper", "remote-steps", fast().orderly(true).listener(listener)).unwrap();
    consumer.start().await.unwrap();

    let checked = Arc::new(Mutex::new(0));
    let c = checked.clone();
    let tx = client
        .transaction_producer("remote-tx", move |_: &Message| {
            *c.lock().unwrap() += 1;
            TransactionResolution::Commit
        })
        .await
        .unwrap();
    let producer = client.producer(None);
    producer.send("remote-steps", "1").await.unwrap();
    let half = tx.send_in_transaction("remote-steps", "2", |_| TransactionResolution::Unknown).await.unwrap();
    assert_eq!(client.admin().message(&half.msg_id).await.unwrap().state, MessageState::Half);
    assert!(eventually(Duration::from_secs(5), || *checked.lock().unwrap() >= 1).await, "no check-back arrived");
    assert!(eventually(Duration::from_secs(5), || log.lock().unwrap().iter().any(|(b, _)| b == "2")).await);
    producer.send("remote-steps", "3").await.unwrap();
    assert!(eventually(Duration::from_secs(5), || log.lock().unwrap().len() >= 4).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = log.lock().unwrap().clone();
    let expected: Vec<(String, u32)> =
        [("1", 0), ("2", 0), ("2", 1), ("3", 0)].iter().map(|(b, r)| (b.to_string(), *r)).collect();
    assert_eq!(got, expected, "committed by check-back, retried in place, in order");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_go_back_through_retry_to_the_dlq_over_a_gateway() {
    let Some((_gateway, client)) = start_gateway().await else { return };
    let admin = client.admin();
    admin.create_topic("remote-doomed", 2).await.unwrap();
    admin.put_group("remote-hopeless", Some(2)).await.unwrap();
    let tries: Arc<Mutex<Vec<u32>>> = Arc::default();
    let t = tries.clone();
    let listener = Listener::blocking(move |m: Message| {
        t.lock().unwrap().push(m.reconsume_times);
        Err(ListenerError::new("always"))
    });
    let consumer = client.push_consumer("remote-hopeless", "remote-doomed", fast().listener(listener)).unwrap();
    consumer.start().await.unwrap();
    let sent = client.producer(None).send("remote-doomed", "poison").await.unwrap();
    let mut dead = Vec::new();
    for _ in 0..200 {
        dead = admin.dlq("remote-hopeless").await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead.len(), 1, "moved to the DLQ through the gateway's send_back");
    assert_eq!((dead[0].msg_id.as_str(), dead[0].topic.as_str()), (sent.msg_id.as_str(), "remote-doomed"));
    assert_eq!(*tries.lock().unwrap(), [0, 1, 2], "delivered max_reconsume_times + 1 times, through retry");
    consumer.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_client_survives_the_server_restarting() {
    let Some((mut gateway, client)) = start_gateway().await else { return };
    client.admin().create_topic("remote-restart", 2).await.unwrap();
    let seen: Seen = Arc::default();
    let consumer =
        client.push_consumer("remote-survivors", "remote-restart", fast().listener(recorder("c", &seen))).unwrap();
    consumer.start().await.unwrap();
    let producer = client.producer(None);
    for i in 0..50 {
        producer.send("remote-restart", format!("before{i}")).await.unwrap();
    }
    assert!(eventually(Duration::from_secs(10), || seen.lock().unwrap().len() >= 50).await, "consumed before");
    tokio::time::sleep(Duration::from_millis(500)).await; // let the consumer commit

    // A clean restart: SIGTERM, then the same directory and port.
    gateway.kill("TERM");
    gateway.restart();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut sent = 0;
    while sent < 50 {
        match producer.send("remote-restart", format!("after{sent}")).await {
            Ok(_) => sent += 1,
            Err(Error::Connection(_) | Error::Unavailable(_) | Error::Timeout(_))
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("send after the restart failed: {e}"),
        }
    }
    assert!(eventually(Duration::from_secs(20), || seen.lock().unwrap().len() >= 100).await, "consumed after");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = bodies(&seen);
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), 100, "nothing lost across the restart");
    assert_eq!(got.len(), 100, "acknowledged work was not redelivered after the restart");
    consumer.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_last_applies_where_a_remote_group_has_no_offset() {
    let Some((_gateway, client)) = start_gateway().await else { return };
    client.admin().create_topic("remote-late", 2).await.unwrap();
    let producer = client.producer(None);
    producer.send_batch("remote-late", ["old-1", "old-2", "old-3"]).await.unwrap();
    let late: Seen = Arc::default();
    let options = fast().start(ferrymq_core::broker::StartPosition::Last).listener(recorder("l", &late));
    let consumer = client.push_consumer("remote-latecomers", "remote-late", options).unwrap();
    consumer.start().await.unwrap();
    assert!(eventually(Duration::from_secs(5), || consumer.assignment().len() == 3).await, "owns its queues");
    tokio::time::sleep(Duration::from_millis(300)).await;
    producer.send("remote-late", "new").await.unwrap();
    assert!(eventually(Duration::from_secs(5), || !late.lock().unwrap().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bodies(&late), ["new"], "start last skips what was there, over a gateway too");
    consumer.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_once_start_returned_reaches_a_consumer_that_starts_at_the_last_offset() {
    let Some((_gateway, client)) = start_gateway().await else { return };
    client.admin().create_topic("remote-fresh", 4).await.unwrap();
    let producer = client.producer(None);
    producer.send("remote-fresh", "before").await.unwrap();
    for round in 0..4 {
        for mode in [ConsumeMode::Clustering, ConsumeMode::Broadcasting] {
            let seen: Seen = Arc::default();
            let options =
                fast().mode(mode).start(ferrymq_core::broker::StartPosition::Last).listener(recorder("l", &seen));
            let consumer =
                client.push_consumer(&format!("from-now-{round}-{mode:?}"), "remote-fresh", options).unwrap();
            consumer.start().await.unwrap();
            // No pause: once `start` returned, where the consumer starts is fixed.
            let sent = format!("after start, {round} {mode:?}");
            producer.send("remote-fresh", sent.as_str()).await.unwrap();
            assert!(eventually(Duration::from_secs(5), || !seen.lock().unwrap().is_empty()).await, "{round} {mode:?}");
            consumer.close().await.unwrap();
            assert_eq!(bodies(&seen), [sent], "{round} {mode:?}");
        }
    }
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_batches_within_the_limits_travel_whole_whatever_their_bytes() {
    let gateway = Gateway::start_with(&["--set", "segment_bytes=64MiB"]);
    let client = connect(&gateway.url(), options()).await;
    client.admin().create_topic("big", 1).await.unwrap();
    let limit = 4 * 1024 * 1024;
    // Valid UTF-8 whose every byte is escaped in JSON text (six bytes each), and bytes that are
    // not UTF-8 at all.
    let zeros = vec![0u8; limit];
    let noise: Vec<u8> = (0..limit).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let producer = client.producer(None);
    producer.send("big", zeros.clone()).await.unwrap();
    producer.send("big", noise.clone()).await.unwrap();
    // A batch of 14 MiB (under the 16 MiB batch limit): about 19 MB as base64.
    let parts: Vec<Vec<u8>> = (0..4u8).map(|k| noise[..7 * limit / 8].iter().map(|b| b ^ k).collect()).collect();
    producer.send_batch("big", parts.clone()).await.unwrap();
    let too_big = producer.send("big", vec![0u8; limit + 1]).await.unwrap_err();
    assert_eq!(too_big.kind(), "payload-too-large", "{too_big}");

    // Out over WebSocket (a push consumer) and over REST (a simple consumer).
    // Compared as sets: a push consumer's listener may take them in any order.
    let expected: BTreeSet<Vec<u8>> = [zeros, noise].into_iter().chain(parts).collect();
    let push = client.push_consumer("big-push", "big", fast()).unwrap();
    push.start().await.unwrap();
    let mut pushed = BTreeSet::new();
    while pushed.len() < expected.len() {
        let m = tokio::time::timeout(Duration::from_secs(20), push.recv()).await.expect("delivered").unwrap();
        assert!(expected.contains(&m.message().body), "a pushed body differs");
        pushed.insert(m.message().body.clone());
        m.ack();
    }
    push.close().await.unwrap();
    let simple = client.simple_consumer("big-simple", "big", FilterSpec::default()).unwrap();
    let mut received = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while received.len() < expected.len() {
        assert!(std::time::Instant::now() < deadline, "received {} of {}", received.len(), expected.len());
        for m in simple.receive(1, Duration::from_secs(2), Duration::from_secs(30)).await.unwrap() {
            assert!(expected.contains(&m.body), "a received body differs");
            received.insert(m.body.clone());
            simple.ack(&m).await.unwrap();
        }
    }
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_remote_member_has_left_the_group_when_close_returns() {
    // The contract: a connection that closes leaves `members` at once. A close that returned
    // as soon as its own close frame was written raced the gateway's clean-up.
    let Some((gateway, client)) = start_gateway().await else { return };
    client.admin().create_topic("remote-leavers", 1).await.unwrap();
    for round in 0..40 {
        let consumer = client.push_consumer("remote-leavers", "remote-leavers", fast()).unwrap();
        consumer.start().await.unwrap();
        consumer.close().await.unwrap();
        let group = client.admin().group("remote-leavers").await.unwrap();
        assert!(group.members.is_empty(), "round {round}: still a member after close: {:?}", group.members);
    }
    // Closing the client closes its push consumers the same way.
    let watcher = connect(&gateway.url(), options()).await;
    for round in 0..10 {
        let client = connect(&gateway.url(), options()).await;
        let consumer = client.push_consumer("remote-leavers", "remote-leavers", fast()).unwrap();
        consumer.start().await.unwrap();
        client.close().await.unwrap();
        let group = watcher.admin().group("remote-leavers").await.unwrap();
        assert!(group.members.is_empty(), "client round {round}: still a member after close: {:?}", group.members);
    }
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_client_refuses_everything_once_closed() {
    let Some((_gateway, client)) = start_gateway().await else { return };
    client.admin().create_topic("closing", 1).await.unwrap();
    client.producer(None).send("closing", "kept").await.unwrap();
    everything_fails_once_closed(&client, "closing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_limits_is_payload_too_large_and_a_frame_past_reading_says_why() {
    let gateway = Gateway::start_with(&["--set", "max_batch_bytes=64KiB", "--set", "max_message_bytes=64KiB"]);
    let client = connect(&gateway.url(), options()).await;
    client.admin().create_topic("limits", 1).await.unwrap();
    let producer = client.producer(None).with_retries(0);
    let noise = |n: usize| -> Vec<u8> { (0..n).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect() };
    // 1.2 MB of bytes that are not UTF-8: a frame of 1.6 MB, over the HTTP body limit
    // (64 KiB as base64 plus 1 MiB) but still read, and refused as such.
    let over = producer.send_batch("limits", vec![noise(400_000); 3]).await.unwrap_err();
    assert_eq!(over.kind(), "payload-too-large", "{over}");
    producer.send("limits", "the connection is still there").await.unwrap();
    // 5.3 MB: past what the gateway reads at all; the connection ends and says why.
    let past = producer.send_batch("limits", vec![noise(1_000_000); 4]).await.unwrap_err();
    assert!(matches!(&past, Error::Connection(m) if m.contains("1009") && m.contains("payload-too-large")), "{past}");
    // The client connects again.
    let sent = producer.with_retries(5).send("limits", "after").await.unwrap();
    assert_eq!(sent.queue_offset, Some(1));
    client.close().await.unwrap();
}
