//! Orderly lease consumption never skips ahead: a failed (nacked or expired) orderly delivery
//! takes back every later delivery of its queue, and the queue starts again from the failed
//! message, in order, after `orderly_suspend`. A failure at the reconsume limit is held until
//! its DLQ copy is stored, so no concurrent receive hands it out again.

mod support;

use std::time::Duration;

use ferrymq_core::broker::*;
use support::*;

fn orderly(group: &str, topic: &str) -> ReceiveRequest {
    let mut req = receive(group, topic, "c");
    req.orderly = true;
    req
}

async fn one_queue_with(broker: &Broker, topic: &str, n: usize) {
    broker.create_topic(topic, Some(1), None).unwrap();
    for i in 0..n {
        broker.send(topic, msg(&i.to_string())).await.unwrap();
    }
}

/// Receives in order, acking each, until `n` messages came.
async fn drain_in_order(broker: &Broker, req: &ReceiveRequest, n: usize) -> Vec<Message> {
    let mut one = req.clone();
    one.max_messages = 1;
    drain(broker, &one, n, Duration::from_secs(5)).await
}

#[tokio::test]
async fn a_nack_returns_every_later_delivery_of_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    one_queue_with(&broker, "o", 4).await;
    let req = orderly("g", "o");
    let got = broker.receive(req.clone()).await.unwrap();
    assert_eq!(bodies(&got), ["0", "1", "2", "3"]);
    let receipt = |i: usize| got[i].receipt.clone().unwrap();
    broker.ack("g", &receipt(0)).await.unwrap().unwrap();
    broker.nack("g", &receipt(1), None).await.unwrap().unwrap();
    assert!(broker.ack("g", &receipt(2)).await.unwrap().is_err(), "2 went back with 1: it cannot be acked before 1");
    assert!(broker.ack("g", &receipt(3)).await.unwrap().is_err());
    let rest = drain_in_order(&broker, &req, 3).await;
    assert_eq!(bodies(&rest), ["1", "2", "3"], "redelivered from the failed message, in order");
    let times: Vec<u32> = rest.iter().map(|m| m.reconsume_times).collect();
    assert_eq!(times, [1, 0, 0], "only the failed one counts a reconsume");
    assert!(broker.group("g").unwrap().offsets.iter().all(|o| o.lag == 0));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_expired_orderly_lease_returns_the_later_deliveries_too() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    one_queue_with(&broker, "o", 3).await;
    let mut req = orderly("g", "o");
    req.invisible = Duration::from_secs(1);
    let got = broker.receive(req.clone()).await.unwrap();
    assert_eq!(bodies(&got), ["0", "1", "2"]);
    // 1 and 2 are kept long; 0 expires.
    let kept: Vec<String> = futures::future::join_all(
        got[1..].iter().map(|m| broker.change_invisible("g", m.receipt.as_ref().unwrap(), Duration::from_secs(60))),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let mut waiting = req.clone();
    waiting.max_messages = 1;
    waiting.wait = Duration::from_secs(10);
    let again = broker.receive(waiting).await.unwrap();
    assert_eq!(bodies(&again), ["0"]);
    assert_eq!(again[0].reconsume_times, 1);
    for receipt in &kept {
        assert_eq!(broker.ack("g", receipt).await.unwrap(), Err(ReceiptFailure::Expired), "returned with 0");
    }
    broker.ack("g", again[0].receipt.as_ref().unwrap()).await.unwrap().unwrap();
    let rest = drain_in_order(&broker, &req, 2).await;
    assert_eq!(bodies(&rest), ["1", "2"]);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failure_at_the_limit_is_not_handed_out_while_it_moves_to_the_dlq() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.put_group("g", Some(0)).unwrap();
    broker.create_topic("o", Some(1), None).unwrap();
    for round in 0..20 {
        let sent = broker.send("o", msg(&format!("m{round}"))).await.unwrap();
        let req = orderly("g", "o");
        let got = broker.receive(req.clone()).await.unwrap();
        assert_eq!(got.len(), 1);
        let receipt = got[0].receipt.clone().unwrap();
        // The nack moves it to the DLQ (max_reconsume_times 0); a receive running beside it
        // must not get it back.
        let (nacked, raced) = tokio::join!(broker.nack("g", &receipt, None), broker.receive(req.clone()));
        nacked.unwrap().unwrap();
        let raced = raced.unwrap();
        assert!(raced.iter().all(|m| m.msg_id != sent.msg_id), "round {round}: redelivered while moving to the DLQ");
    }
    assert_eq!(broker.dlq("g").await.unwrap().len(), 20);
    broker.shutdown().await.unwrap();
}
