//! Transactions: commit makes the message visible once, rollback never; unresolved half
//! messages are checked back and finally discarded; all of it across a restart.

mod support;

use std::time::Duration;

use ferrymq_core::broker::*;
use ferrymq_core::Error;
use support::*;

fn half(body: &str) -> OutgoingMessage {
    OutgoingMessage { transaction: Some("producers".into()), ..msg(body) }
}

#[tokio::test]
async fn commit_once_rollback_never() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("tx", Some(1), None).unwrap();
    let a = broker.send("tx", half("a")).await.unwrap();
    let b = broker.send("tx", half("b")).await.unwrap();
    let tx_a = a.transaction_id.clone().unwrap();
    assert_eq!((a.queue_id, a.queue_offset), (None, None));
    assert_eq!(broker.message(&a.msg_id).await.unwrap().state, MessageState::Half);
    assert!(broker.receive(receive("g", "tx", "c")).await.unwrap().is_empty(), "half messages are invisible");
    let out = broker.end_transaction(&tx_a, TransactionResolution::Commit).await.unwrap();
    assert_eq!((out.msg_id.as_str(), out.status), (a.msg_id.as_str(), TransactionStatus::Committed));
    assert!(matches!(broker.end_transaction(&tx_a, TransactionResolution::Commit).await, Err(Error::Conflict(_))));
    assert!(matches!(broker.end_transaction(&tx_a, TransactionResolution::Rollback).await, Err(Error::Conflict(_))));
    let tx_b = b.transaction_id.unwrap();
    broker.end_transaction(&tx_b, TransactionResolution::Rollback).await.unwrap();
    assert!(matches!(broker.end_transaction("nope", TransactionResolution::Commit).await, Err(Error::NotFound { .. })));
    let got = drain(&broker, &receive("g", "tx", "c"), 2, Duration::from_millis(800)).await;
    assert_eq!(bodies(&got), ["a"]);
    assert_eq!(got[0].msg_id, a.msg_id, "same id after commit");
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_commit_after_the_topic_was_deleted_reaches_no_new_topic_of_that_name() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("txr", Some(1), None).unwrap();
    let old = broker.send("txr", half("from before")).await.unwrap();
    broker.delete_topic("txr").await.unwrap();
    broker.create_topic("txr", Some(1), None).unwrap();
    let new = broker.send("txr", half("after")).await.unwrap();
    for sent in [&old, &new] {
        let tx = sent.transaction_id.as_deref().unwrap();
        broker.end_transaction(tx, TransactionResolution::Commit).await.unwrap();
    }
    let got = drain(&broker, &receive("g", "txr", "c"), 2, Duration::from_millis(800)).await;
    assert_eq!(bodies(&got), ["after"]);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_answers_lead_to_checks_then_discard() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let mut checks = broker.transaction_checks();
    let r = broker.send("tx", half("undecided")).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..3 {
        let check = tokio::time::timeout(Duration::from_secs(5), checks.recv()).await.unwrap().unwrap();
        assert_eq!(check.msg_id, r.msg_id);
        assert_eq!(check.producer_group, "producers");
        assert_eq!(check.message.body, b"undecided");
        times.push(check.check_times);
    }
    assert_eq!(times, [1, 2, 3]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(broker.metrics().transactions_discarded, 1);
    let tx = r.transaction_id.unwrap();
    assert!(matches!(broker.end_transaction(&tx, TransactionResolution::Commit).await, Err(Error::Conflict(_))));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn check_back_answer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let mut checks = broker.transaction_checks();
    let r = broker.send("tx", half("checked")).await.unwrap();
    let check = tokio::time::timeout(Duration::from_secs(5), checks.recv()).await.unwrap().unwrap();
    broker.end_transaction(&check.transaction_id, TransactionResolution::Commit).await.unwrap();
    let got = drain(&broker, &receive("g", "tx", "c"), 1, Duration::from_secs(2)).await;
    assert_eq!(got[0].msg_id, r.msg_id);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn transactions_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let committed = broker.send("tx", half("c")).await.unwrap();
    let pending = broker.send("tx", half("p")).await.unwrap();
    broker.end_transaction(committed.transaction_id.as_ref().unwrap(), TransactionResolution::Commit).await.unwrap();
    broker.shutdown().await.unwrap();
    let broker = open(dir.path()).await;
    assert!(matches!(
        broker.end_transaction(committed.transaction_id.as_ref().unwrap(), TransactionResolution::Commit).await,
        Err(Error::Conflict(_))
    ));
    broker.end_transaction(pending.transaction_id.as_ref().unwrap(), TransactionResolution::Commit).await.unwrap();
    let mut got = bodies(&drain(&broker, &receive("g", "tx", "c"), 2, Duration::from_secs(2)).await);
    got.sort();
    assert_eq!(got, ["c", "p"]);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn checks_nobody_receives_are_counted_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let half = OutgoingMessage { transaction: Some("nobody".into()), ..msg("unanswered") };
    broker.send("tx", half).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while broker.metrics().transaction_checks_lost == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(broker.metrics().transaction_checks_lost >= 1, "a check with no listener is counted");
    broker.shutdown().await.unwrap();
}
