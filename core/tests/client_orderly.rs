//! Orderly push consumption: per sharding key, messages are consumed one at a time in the
//! order they were sent, also while a member joins and queues move under their leases, and
//! a failure retries the same message in place instead of skipping ahead.

mod client_util;
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrymq_core::broker::Message;
use ferrymq_core::client::{Listener, ListenerError, MessageBuilder, PushConsumer};

use client_util::*;

const KEYS: usize = 8;
const PER_KEY: usize = 60;

/// (consumer, key, sequence number) in processing order.
type Log = Arc<Mutex<Vec<(String, String, usize)>>>;

fn ordered_recorder(name: &str, log: &Log) -> Listener {
    let name = name.to_string();
    let log = log.clone();
    Listener::new(move |m: Message| {
        let (name, log) = (name.clone(), log.clone());
        async move {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            let (key, seq) = body.split_once(':').ok_or_else(|| ListenerError::new("bad body"))?;
            let seq: usize = seq.parse()?;
            tokio::time::sleep(Duration::from_millis(1)).await;
            log.lock().unwrap().push((name, key.to_string(), seq));
            Ok(())
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_holds_while_a_member_joins() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("fifo", 4).await.unwrap();
    let log: Log = Arc::default();
    let first =
        client.push_consumer("sequencers", "fifo", fast().orderly(true).listener(ordered_recorder("a", &log))).unwrap();
    first.start().await.unwrap();
    assert_eq!(first.assignment().len(), 4, "orderly members do not take the retry queue");

    let producer = client.producer(None);
    let publishing = tokio::spawn(async move {
        for seq in 0..PER_KEY {
            for key in 0..KEYS {
                let m = MessageBuilder::new(format!("k{key}:{seq}")).sharding_key(format!("k{key}"));
                producer.send("fifo", m).await.expect("sent");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });

    // A second member joins while messages flow.
    assert!(eventually(Duration::from_secs(5), || log.lock().unwrap().len() >= 100).await);
    let second =
        client.push_consumer("sequencers", "fifo", fast().orderly(true).listener(ordered_recorder("b", &log))).unwrap();
    second.start().await.unwrap();
    let both: [&PushConsumer; 2] = [&first, &second];
    assert!(eventually(Duration::from_secs(5), || partitioned(&both, 4)).await, "queues never split");
    publishing.await.unwrap();

    let total = KEYS * PER_KEY;
    assert!(eventually(Duration::from_secs(15), || log.lock().unwrap().len() >= total).await, "not all consumed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = log.lock().unwrap().clone();
    let mut per_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (_, key, seq) in &log {
        per_key.entry(key.clone()).or_default().push(*seq);
    }
    assert_eq!(per_key.len(), KEYS);
    for (key, seqs) in &per_key {
        assert_eq!(seqs, &(0..PER_KEY).collect::<Vec<_>>(), "{key} out of order or repeated");
    }
    assert!(log.iter().any(|(n, _, _)| n == "b"), "the joining member consumed too");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orderly_failure_retries_in_place_and_blocks_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("steps", 1).await.unwrap();
    let log: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let l = log.clone();
    let listener = Listener::new(move |m: Message| {
        let l = l.clone();
        async move {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            l.lock().unwrap().push((body.clone(), m.reconsume_times));
            if body == "2" && m.reconsume_times < 2 {
                return Err(ListenerError::new("not ready"));
            }
            Ok(())
        }
    });
    let consumer = client.push_consumer("stepper", "steps", fast().orderly(true).listener(listener)).unwrap();
    consumer.start().await.unwrap();
    let producer = client.producer(None);
    for i in 1..=3 {
        producer.send("steps", i.to_string()).await.unwrap();
    }
    assert!(eventually(Duration::from_secs(5), || log.lock().unwrap().len() >= 5).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = log.lock().unwrap().clone();
    let expected: Vec<(String, u32)> =
        [("1", 0), ("2", 0), ("2", 1), ("2", 2), ("3", 0)].iter().map(|(b, r)| (b.to_string(), *r)).collect();
    assert_eq!(got, expected);
    client.close().await.unwrap();
}
