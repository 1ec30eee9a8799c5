//! Unclean stop: a broker process killed with SIGKILL keeps its topics, group settings,
//! committed offsets, delayed messages and transactions; the group resumes where its acks left
//! it and no acknowledged publish is lost.
//!
//! The test re-executes its own binary as the child (selected by an environment variable),
//! waits for the child to say it is ready, kills it, and reopens the directory.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use ferrymq_core::broker::*;
use support::*;

const CHILD_ENV: &str = "FERRYMQ_BROKER_CRASH_CHILD";

/// The child's work: publish, consume part, leave things pending, then wait to be killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let mut config = config(std::path::Path::new(&dir));
        config.transaction_timeout = Duration::from_secs(3600);
        let broker = Broker::open(config).await.unwrap();
        broker.create_topic("t", Some(2), None).unwrap();
        broker.put_group("g", Some(5)).unwrap();
        for i in 0..50 {
            broker.send("t", msg(&format!("m{i}"))).await.unwrap();
        }
        let mut req = receive("g", "t", "child");
        req.max_messages = 20;
        let got = broker.receive(req).await.unwrap();
        for m in &got {
            broker.ack("g", m.receipt.as_ref().unwrap()).await.unwrap().unwrap();
        }
        let delayed = OutgoingMessage { delay: Some(Delay::Millis(1500)), ..msg("delayed") };
        broker.send("t", delayed).await.unwrap();
        let half = broker.send("t", OutgoingMessage { transaction: Some("p".into()), ..msg("half") }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        println!("READY {} {}", got.len(), half.transaction_id.unwrap());
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.split_once("READY ").map(|(_, rest)| rest.to_string()))
    })
    .await
    .unwrap()
    .expect("child became ready");
    child.kill().unwrap();
    child.wait().unwrap();
    let parts: Vec<&str> = line.split_whitespace().collect();
    let acked: u64 = parts[0].parse().unwrap();
    let tx = parts[1].to_string();
    assert_eq!(acked, 20);

    let mut config = config(dir.path());
    config.transaction_timeout = Duration::from_secs(3600);
    let broker = Broker::open(config).await.unwrap();
    assert_eq!(broker.topic("t").unwrap().topic.queues, 2, "topic survived");
    let group = broker.group("g").unwrap();
    assert_eq!(group.max_reconsume_times, 5, "group settings survived");
    let committed: u64 = group.offsets.iter().map(|o| o.committed).sum();
    assert_eq!(committed, acked, "acked offsets survived");

    let rest = drain(&broker, &receive("g", "t", "parent"), 31, Duration::from_secs(8)).await;
    let mut got = bodies(&rest);
    got.sort();
    let mut expected: Vec<String> = (20..50).map(|i| format!("m{i}")).collect();
    expected.push("delayed".into());
    expected.sort();
    // which 20 were acked depends on queue rotation; every unacked one must come back, once
    assert_eq!(got.len(), 31, "30 unacked + the delayed one: {got:?}");
    let unique: std::collections::HashSet<_> = got.iter().collect();
    assert_eq!(unique.len(), 31);
    assert!(got.contains(&"delayed".to_string()), "the delayed message survived the kill");

    let out = broker.end_transaction(&tx, TransactionResolution::Commit).await.unwrap();
    assert_eq!(out.status, TransactionStatus::Committed, "the half message survived the kill");
    let committed = drain(&broker, &receive("g", "t", "parent"), 1, Duration::from_secs(3)).await;
    assert_eq!(bodies(&committed), ["half"]);
    broker.shutdown().await.unwrap();
}
