//! A remote client rides out its server dying: the gateway is killed (SIGKILL) and started
//! again on the same port and directory. The client reports `Dropped` then `Restored`,
//! reconnects with backoff, registers its consumer again, and nothing a send acknowledged is
//! lost; meanwhile a send waits for the connection, or fails with `Unavailable` once its
//! timeout has passed. A transaction producer's group is registered again, so check-backs
//! still reach it.
//!
//! Needs the `ferrymq` binary (see `gateway_util`).

mod client_util;
mod gateway_util;
mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrymq_core::broker::{FilterSpec, Message, TransactionResolution};
use ferrymq_core::client::{Client, ConnectionEvent, ConnectionListener, RemoteOptions};
use ferrymq_core::Error;
use tokio::sync::mpsc;

use client_util::*;
use gateway_util::*;

/// Options with a quick reconnect and a listener that forwards each event to a channel.
fn reconnecting(request_timeout: Duration) -> (RemoteOptions, mpsc::UnboundedReceiver<ConnectionEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let options = RemoteOptions {
        request_timeout,
        reconnect_backoff: Duration::from_millis(20),
        reconnect_backoff_max: Duration::from_millis(200),
        on_connection: Some(ConnectionListener::new(move |event: &ConnectionEvent| {
            let _ = tx.send(event.clone());
        })),
        ..options()
    };
    (options, rx)
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<ConnectionEvent>) -> ConnectionEvent {
    tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .expect("a connection event within 30 s")
        .expect("the listener is alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_client_reconnects_after_the_server_is_killed() {
    let mut gateway = Gateway::start();
    let (main_options, mut events) = reconnecting(Duration::from_secs(20));
    let client = connect(&gateway.url(), main_options).await;
    // A second client whose sends give up quickly while the server is gone.
    let (impatient_options, mut impatient_events) = reconnecting(Duration::from_millis(300));
    let impatient = connect(&gateway.url(), impatient_options).await;

    client.admin().create_topic("reconnect-orders", 2).await.unwrap();
    let seen: Seen = Arc::default();
    let consumer =
        client.push_consumer("reconnect-billing", "reconnect-orders", fast().listener(recorder("c", &seen))).unwrap();
    consumer.start().await.unwrap();
    let producer = client.producer(None);
    let mut acknowledged = BTreeSet::new();
    for i in 0..20 {
        producer.send("reconnect-orders", format!("before{i}")).await.unwrap();
        acknowledged.insert(format!("before{i}"));
    }
    assert!(eventually(Duration::from_secs(10), || seen.lock().unwrap().len() >= 20).await, "consumed before");

    gateway.kill("KILL");
    let dropped = next_event(&mut events).await;
    assert!(matches!(&dropped, ConnectionEvent::Dropped { error } if !error.is_empty()), "{dropped:?}");
    assert!(matches!(next_event(&mut impatient_events).await, ConnectionEvent::Dropped { .. }));

    // While the server is gone: a send without retries fails with a retriable error once its
    // timeout has passed...
    let err = impatient.producer(None).with_retries(0).send("reconnect-orders", "never").await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    // ... and one with a longer timeout waits for the connection to come back.
    let waiting = {
        let producer = producer.clone();
        tokio::spawn(async move { producer.send("reconnect-orders", "during").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the send waits for the connection");

    gateway.restart();
    assert_eq!(next_event(&mut events).await, ConnectionEvent::Restored);
    assert_eq!(next_event(&mut impatient_events).await, ConnectionEvent::Restored);
    waiting.await.unwrap().expect("the send made while disconnected succeeds after the reconnect");
    acknowledged.insert("during".to_string());

    // The consumer's membership came back with the connection.
    let members = client.admin().group("reconnect-billing").await.unwrap().members;
    assert!(members.iter().any(|m| m.client_id == consumer.client_id()), "{members:?}");

    for i in 0..20 {
        producer.send("reconnect-orders", format!("after{i}")).await.unwrap();
        acknowledged.insert(format!("after{i}"));
    }
    let all_seen = || bodies(&seen).into_iter().collect::<BTreeSet<_>>().is_superset(&acknowledged);
    assert!(eventually(Duration::from_secs(30), all_seen).await, "every acknowledged message is consumed");
    let unique: BTreeSet<String> = bodies(&seen).into_iter().collect();
    assert_eq!(unique, acknowledged, "nothing acknowledged was lost, nothing unsent appeared");

    consumer.close().await.unwrap();
    client.close().await.unwrap();
    impatient.close().await.unwrap();
    assert!(events.try_recv().is_err(), "closing reports no drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_options_are_checked() {
    let gateway = Gateway::start();
    let url = gateway.url();
    let zero = RemoteOptions { reconnect_backoff: Duration::ZERO, ..options() };
    assert!(matches!(
        Client::connect_with(&url, zero).await,
        Err(Error::InvalidArgument { field, .. }) if field == "/reconnect_backoff"
    ));
    let inverted = RemoteOptions {
        reconnect_backoff: Duration::from_secs(2),
        reconnect_backoff_max: Duration::from_secs(1),
        ..options()
    };
    assert!(matches!(
        Client::connect_with(&url, inverted).await,
        Err(Error::InvalidArgument { field, .. }) if field == "/reconnect_backoff_max"
    ));
    // A client closed while connected reports nothing.
    let (options, mut events) = reconnecting(Duration::from_secs(5));
    let client = connect(&url, options).await;
    client.close().await.unwrap();
    drop(gateway);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(events.try_recv().is_err(), "no event after close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_backs_reach_a_transaction_producer_after_the_reconnect() {
    let mut gateway = Gateway::start();
    let (options, mut events) = reconnecting(Duration::from_secs(20));
    let client = connect(&gateway.url(), options).await;
    client.admin().create_topic("reconnect-payments", 1).await.unwrap();
    // The checker answers `unknown` until the connection was restored, then commits: only a
    // check-back over the new connection, where the client registered its group again, can
    // end the transaction.
    let restored = Arc::new(AtomicBool::new(false));
    let checked_after: Arc<Mutex<Vec<String>>> = Arc::default();
    let (r, c) = (restored.clone(), checked_after.clone());
    let tx = client
        .transaction_producer("reconnect-tx", move |m: &Message| {
            if r.load(Ordering::SeqCst) {
                c.lock().unwrap().push(m.msg_id.clone());
                TransactionResolution::Commit
            } else {
                TransactionResolution::Unknown
            }
        })
        .await
        .unwrap();
    let half = tx.send_in_transaction("reconnect-payments", "pay", |_| TransactionResolution::Unknown).await.unwrap();

    gateway.kill("KILL");
    assert!(matches!(next_event(&mut events).await, ConnectionEvent::Dropped { .. }));
    gateway.restart();
    assert_eq!(next_event(&mut events).await, ConnectionEvent::Restored);
    restored.store(true, Ordering::SeqCst);

    assert!(
        eventually(Duration::from_secs(10), || checked_after.lock().unwrap().contains(&half.msg_id)).await,
        "no check-back arrived after the reconnect"
    );
    let consumer = client.simple_consumer("reconnect-payers", "reconnect-payments", FilterSpec::default()).unwrap();
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let got = consumer.receive(16, Duration::from_millis(500), Duration::from_secs(30)).await.unwrap();
        bodies.extend(got.into_iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()));
        if !bodies.is_empty() {
            break;
        }
    }
    assert_eq!(bodies, ["pay"], "committed by the check-back, then delivered");
    client.close().await.unwrap();
}
