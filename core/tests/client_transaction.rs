//! Transactional producers: the local transaction decides at once, and an undecided one is
//! settled by the broker's check-back reaching the producer's checker.

mod client_util;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrymq_core::broker::{FilterSpec, Message, MessageState, TransactionResolution};
use ferrymq_core::client::{MessageBuilder, DEFAULT_INVISIBLE};
use ferrymq_core::Error;

use client_util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_back_reaches_the_checker_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    let checked: Arc<Mutex<Vec<Message>>> = Arc::default();
    let c = checked.clone();
    let producer = client
        .transaction_producer("payments", move |m: &Message| {
            c.lock().unwrap().push(m.clone());
            TransactionResolution::Commit
        })
        .await
        .unwrap();
    let sent = producer
        .send_in_transaction("ledger", MessageBuilder::new("debit 10").tag("debit"), |half| {
            assert_eq!(half.state, MessageState::Half);
            assert_eq!(half.body, b"debit 10");
            TransactionResolution::Unknown
        })
        .await
        .unwrap();
    assert!(sent.transaction_id.is_some());
    assert_eq!(client.admin().message(&sent.msg_id).await.unwrap().state, MessageState::Half);

    assert!(eventually(Duration::from_secs(5), || !checked.lock().unwrap().is_empty()).await, "no check-back");
    let check = checked.lock().unwrap()[0].clone();
    assert_eq!((check.msg_id.as_str(), check.body.as_slice()), (sent.msg_id.as_str(), b"debit 10".as_slice()));

    let consumer = client.simple_consumer("auditors", "ledger", FilterSpec::default()).unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        got = consumer.receive(16, Duration::from_millis(200), DEFAULT_INVISIBLE).await.unwrap();
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(got.len(), 1, "committed by the check-back");
    assert_eq!(got[0].msg_id, sent.msg_id);
    assert_eq!(got[0].tag.as_deref(), Some("debit"));
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_transaction_commits_or_rolls_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("ledger", 1).await.unwrap();
    let asked = Arc::new(Mutex::new(0));
    let a = asked.clone();
    let producer = client
        .transaction_producer("bank", move |_: &Message| {
            *a.lock().unwrap() += 1;
            TransactionResolution::Unknown
        })
        .await
        .unwrap();
    let kept = producer.send_in_transaction("ledger", "kept", |_| TransactionResolution::Commit).await.unwrap();
    let dropped = producer
        .send_in_transaction_async("ledger", "dropped", |half| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(half.body, b"dropped");
            TransactionResolution::Rollback
        })
        .await
        .unwrap();
    let consumer = client.simple_consumer("readers", "ledger", FilterSpec::default()).unwrap();
    let got = consumer.receive(16, Duration::from_millis(300), DEFAULT_INVISIBLE).await.unwrap();
    assert_eq!(got.iter().map(|m| m.msg_id.as_str()).collect::<Vec<_>>(), [kept.msg_id.as_str()]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*asked.lock().unwrap(), 0, "ended transactions are not checked back");
    assert!(matches!(client.admin().message(&dropped.msg_id).await, Err(Error::NotFound { .. })));
    let again = producer.end_transaction(kept.transaction_id.as_deref().unwrap(), TransactionResolution::Commit).await;
    assert!(matches!(again, Err(Error::Conflict(_))));
    assert!(matches!(
        client.transaction_producer("no good", |_: &Message| TransactionResolution::Commit).await,
        Err(Error::InvalidArgument { .. })
    ));
    client.close().await.unwrap();
}
