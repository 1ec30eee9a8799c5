//! Simple (lease) consumption through the client: receive, ack, nack, and changing a
//! message's invisibility.

mod client_util;
mod support;

use std::time::Duration;

use ferrymq_core::broker::FilterSpec;
use ferrymq_core::client::{MessageBuilder, DEFAULT_INVISIBLE};
use ferrymq_core::Error;

use client_util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_ack_and_nack() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("tasks", 2).await.unwrap();
    let producer = client.producer(None);
    producer.send("tasks", MessageBuilder::new("a").tag("keep")).await.unwrap();
    producer.send("tasks", MessageBuilder::new("b").tag("keep")).await.unwrap();
    producer.send("tasks", MessageBuilder::new("c").tag("skip")).await.unwrap();

    let consumer = client.simple_consumer("doers", "tasks", FilterSpec::Tag("keep".into())).unwrap();
    let mut got = consumer.receive(16, Duration::from_millis(200), DEFAULT_INVISIBLE).await.unwrap();
    got.sort_by(|x, y| x.body.cmp(&y.body));
    assert_eq!(got.iter().map(|m| m.body.clone()).collect::<Vec<_>>(), [b"a".to_vec(), b"b".to_vec()]);
    assert!(got.iter().all(|m| m.receipt.is_some()));
    assert!(consumer.receive(16, Duration::ZERO, DEFAULT_INVISIBLE).await.unwrap().is_empty(), "leased: invisible");

    consumer.ack(&got[0]).await.unwrap();
    assert!(matches!(consumer.ack(&got[0]).await, Err(Error::Conflict(_))), "acked twice");
    consumer.nack(&got[1], Some(Duration::from_millis(50))).await.unwrap();
    let back = consumer.receive(16, Duration::from_secs(3), DEFAULT_INVISIBLE).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].body.as_slice(), back[0].reconsume_times), (b"b".as_slice(), 1));
    assert_eq!(back[0].msg_id, got[1].msg_id);
    consumer.ack(&back[0]).await.unwrap();

    let mut unreceived = back[0].clone();
    unreceived.receipt = None;
    assert!(matches!(consumer.ack(&unreceived).await, Err(Error::InvalidArgument { .. })));
    let group = client.admin().group("doers").await.unwrap();
    assert!(group.offsets.iter().all(|o| o.lag == 0), "{:?}", group.offsets);
    consumer.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_invisible_duration_replaces_the_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.producer(None).send("slow", "long job").await.unwrap();
    let consumer = client.simple_consumer("workers", "slow", FilterSpec::default()).unwrap();
    let mut got = consumer.receive(1, Duration::from_millis(200), Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), 1);
    let old = got[0].clone();
    consumer.change_invisible_duration(&mut got[0], Duration::from_secs(60)).await.unwrap();
    assert_ne!(got[0].receipt, old.receipt);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(consumer.receive(1, Duration::ZERO, DEFAULT_INVISIBLE).await.unwrap().is_empty(), "extended lease holds");
    assert!(matches!(consumer.ack(&old).await, Err(Error::NotFound { .. })), "the old receipt stops working");
    consumer.ack(&got[0]).await.unwrap();
    assert!(matches!(
        consumer.change_invisible_duration(&mut got[0], Duration::from_secs(5)).await,
        Err(Error::NotFound { .. })
    ));
    client.close().await.unwrap();
}
