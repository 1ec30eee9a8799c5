//! The admin API through the client: topics, groups, offset resets, dead letters, lookups.

mod client_util;
mod support;

use std::time::Duration;

use ferrymq_core::broker::{FilterSpec, Perm, ResetTarget};
use ferrymq_core::client::{FindQuery, MessageBuilder, DEFAULT_INVISIBLE};
use ferrymq_core::Error;

use client_util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_groups_offsets_dead_letters_and_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    let admin = client.admin();
    let t = admin.create_topic("catalog", 2).await.unwrap();
    assert_eq!((t.name.as_str(), t.queues, t.perm), ("catalog", 2, Perm::ReadWrite));
    assert!(matches!(admin.create_topic("catalog", 2).await, Err(Error::Conflict(_))));
    admin.create_topic_with("archive", 1, Perm::Read).await.unwrap();
    let names: Vec<String> = admin.topics().await.unwrap().into_iter().map(|t| t.name).collect();
    assert!(names.contains(&"catalog".to_string()) && names.contains(&"archive".to_string()));
    assert!(matches!(client.producer(None).send("archive", "x").await, Err(Error::Forbidden(_))));

    let producer = client.producer(None);
    let first = producer.send("catalog", MessageBuilder::new("one").key("sku-1")).await.unwrap();
    producer.send("catalog", MessageBuilder::new("two").key("sku-2")).await.unwrap();
    let found =
        admin.find_messages("catalog", FindQuery { key: Some("sku-1".into()), ..FindQuery::default() }).await.unwrap();
    assert_eq!(found.iter().map(|m| m.msg_id.as_str()).collect::<Vec<_>>(), [first.msg_id.as_str()]);
    assert_eq!(admin.message(&first.msg_id).await.unwrap().body, b"one");
    assert!(matches!(admin.message("nope").await, Err(Error::NotFound { .. })));

    // Consume everything, then replay from the earliest.
    admin.put_group("shoppers", Some(0)).await.unwrap();
    let consumer = client.simple_consumer("shoppers", "catalog", FilterSpec::default()).unwrap();
    let got = consumer.receive(16, Duration::from_millis(100), DEFAULT_INVISIBLE).await.unwrap();
    assert_eq!(got.len(), 2);
    for m in &got {
        consumer.ack(m).await.unwrap();
    }
    let group = admin.group("shoppers").await.unwrap();
    assert_eq!(group.max_reconsume_times, 0);
    assert!(group.offsets.iter().all(|o| o.lag == 0));
    let reset = admin.reset_offsets("shoppers", "catalog", ResetTarget::Earliest).await.unwrap();
    assert_eq!(reset.len(), 2);
    let again = consumer.receive(16, Duration::from_millis(100), DEFAULT_INVISIBLE).await.unwrap();
    assert_eq!(again.len(), 2, "replayed");

    // With max_reconsume_times 0, one nack sends a message to the DLQ; resend brings it back.
    let victim = again.iter().find(|m| m.body == b"one").unwrap();
    consumer.nack(victim, None).await.unwrap();
    let dead = admin.dlq("shoppers").await.unwrap();
    assert_eq!(dead.iter().map(|m| m.msg_id.as_str()).collect::<Vec<_>>(), [first.msg_id.as_str()]);
    let resent = admin.resend_dlq("shoppers", &first.msg_id).await.unwrap();
    assert_eq!(resent.msg_id, first.msg_id);
    assert!(admin.dlq("shoppers").await.unwrap().is_empty());
    assert!(matches!(admin.group("never-seen").await, Err(Error::NotFound { .. })));

    admin.delete_topic("archive").await.unwrap();
    assert!(matches!(admin.topic("archive").await, Err(Error::NotFound { .. })));
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_client_refuses_everything_once_closed() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("closing", 1).await.unwrap();
    client.producer(None).send("closing", "kept").await.unwrap();
    everything_fails_once_closed(&client, "closing").await;
    // What was acknowledged before the close is still there after reopening.
    let again = client_util::client(dir.path()).await;
    let consumer = again.simple_consumer("after-close", "closing", FilterSpec::default()).unwrap();
    let got = consumer.receive(16, Duration::from_millis(200), DEFAULT_INVISIBLE).await.unwrap();
    assert_eq!(got.iter().map(|m| m.body.as_slice()).collect::<Vec<_>>(), [b"kept".as_slice()]);
}
