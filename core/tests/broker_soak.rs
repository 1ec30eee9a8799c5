//! A short soak: a minute of publishing (plain, delayed, transactional), receiving, acking,
//! nacking to retry and to the DLQ, all at once, at a modest rate. The broker's per-message
//! tables must stay within their bounds, resident memory flat, and every message whose
//! publish was acknowledged must be consumed or sit in the DLQ.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrymq_core::broker::*;
use support::*;

const SOAK: Duration = Duration::from_secs(60);
/// One message in this many fails every time: it goes through retry to the DLQ.
const FAIL_EVERY: u64 = 50;

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn number(m: &Message) -> u64 {
    String::from_utf8_lossy(&m.body).trim_start_matches(['p', 't']).parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_mixed_load_keeps_tables_bounded_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.store.segment_bytes = 1 << 20;
    let broker = Broker::open(c).await.unwrap();
    broker.put_group("soak", Some(1)).unwrap();
    broker.create_topic("load", Some(4), None).unwrap();
    let expected: Arc<Mutex<HashSet<String>>> = Arc::default();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    let publisher = {
        let (broker, expected, stop) = (broker.clone(), expected.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(30));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let batch: Vec<OutgoingMessage> = (0..10)
                    .map(|i| {
                        let k = n + i;
                        let delay = (k % 10 == 3).then_some(Delay::Millis(50));
                        OutgoingMessage { delay, ..msg(&format!("p{k}")) }
                    })
                    .collect();
                n += 10;
                let sent = broker.send_batch("load", batch, None).await.unwrap();
                expected.lock().unwrap().extend(sent.into_iter().map(|r| r.msg_id));
                // One transaction per round, committed or rolled back.
                let tx = OutgoingMessage { transaction: Some("pg".into()), ..msg(&format!("t{n}")) };
                let half = broker.send("load", tx).await.unwrap();
                let id = half.transaction_id.unwrap();
                if n.is_multiple_of(20) {
                    broker.end_transaction(&id, TransactionResolution::Commit).await.unwrap();
                    expected.lock().unwrap().insert(half.msg_id);
                } else {
                    broker.end_transaction(&id, TransactionResolution::Rollback).await.unwrap();
                }
            }
        })
    };
    let consumers: Vec<_> = (0..2)
        .map(|c| {
            let (broker, acked, stop) = (broker.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut req = receive("soak", "load", &format!("c{c}"));
                req.max_messages = 32;
                req.wait = Duration::from_millis(200);
                let mut idle = 0;
                // After the stop, drain until two seconds pass without a message.
                while !stop.load(Ordering::Relaxed) || idle < 10 {
                    let got = broker.receive(req.clone()).await.unwrap();
                    idle = if got.is_empty() { idle + 1 } else { 0 };
                    for m in got {
                        let receipt = m.receipt.clone().unwrap();
                        if number(&m).is_multiple_of(FAIL_EVERY) {
                            let delay = number(&m).is_multiple_of(100).then_some(Duration::from_millis(30));
                            broker.nack("soak", &receipt, delay).await.unwrap().unwrap();
                        } else if broker.ack("soak", &receipt).await.unwrap().is_ok() {
                            acked.lock().unwrap().insert(m.msg_id.clone());
                        }
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(SOAK / 3).await;
    let early = broker.table_sizes();
    let early_rss = resident_kib();
    tokio::time::sleep(SOAK - SOAK / 3).await;
    let late = broker.table_sizes();
    let late_rss = resident_kib();
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    for c in consumers {
        c.await.unwrap();
    }

    // Nothing acknowledged is lost: each published message was consumed or is a dead letter.
    let dead: HashSet<String> = broker.dlq("soak").await.unwrap().into_iter().map(|m| m.msg_id).collect();
    let expected = expected.lock().unwrap().clone();
    let acked = acked.lock().unwrap().clone();
    let missing: Vec<&String> = expected.iter().filter(|id| !acked.contains(*id) && !dead.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} published messages lost, e.g. {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        !dead.is_empty() && expected.len() > 10_000,
        "the load ran: {} published, {} dead",
        expected.len(),
        dead.len()
    );

    // Tables stay within their bounds (the load ends more receipts and transactions than that).
    for sizes in [&early, &late] {
        assert!(sizes.ended_receipts <= MAX_ENDED_RECEIPTS, "{sizes:?}");
        assert!(sizes.transactions <= MAX_ENDED_TRANSACTIONS + 10, "{sizes:?}");
        assert!(sizes.in_flight <= 2 * 32 + 64, "{sizes:?}");
        assert!(sizes.returned <= 64 && sizes.done_above_committed <= 4096, "{sizes:?}");
        assert!(sizes.timer_done <= 1_000 && sizes.dedup_keys == 0, "{sizes:?}");
    }
    assert_eq!(late.ended_receipts, MAX_ENDED_RECEIPTS, "the ended-receipt bound was reached and held");
    assert!(late.transactions >= MAX_ENDED_TRANSACTIONS, "the ended-transaction bound was reached and held");
    // Resident memory is flat between a third of the way and the end.
    assert!(late_rss < early_rss + 64 * 1024, "resident memory grew from {early_rss} KiB to {late_rss} KiB");
    broker.shutdown().await.unwrap();
}
