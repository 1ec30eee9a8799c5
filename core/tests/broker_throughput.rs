//! Receive + ack throughput with 8 groups consuming one topic at once (lease consumption of
//! every group contends on the broker's consumption state). Ignored by default; run with
//!
//! ```sh
//! cargo test -p ferrymq-core --test broker_throughput -- --ignored --nocapture
//! ```
//!
//! and add `--release` for optimised figures. It prints msg/s per round and the median.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrymq_core::broker::*;
use support::*;

const GROUPS: usize = 8;
const MESSAGES: usize = 4_000;
const ROUNDS: usize = 3;

async fn round() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_batch_messages = 1000;
    c.store.segment_bytes = 64 << 20;
    let broker = Broker::open(c).await.unwrap();
    broker.create_topic("bench", Some(8), None).unwrap();
    for _ in 0..MESSAGES / 500 {
        let batch = (0..500).map(|_| OutgoingMessage { body: vec![0x42; 1024], ..Default::default() }).collect();
        broker.send_batch("bench", batch, None).await.unwrap();
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..GROUPS)
        .map(|g| {
            let broker: Arc<Broker> = broker.clone();
            tokio::spawn(async move {
                let group = format!("g{g}");
                let mut req = receive(&group, "bench", "c");
                req.max_messages = 32;
                let mut got = 0;
                while got < MESSAGES {
                    let batch = broker.receive(req.clone()).await.unwrap();
                    for m in &batch {
                        broker.ack(&group, m.receipt.as_ref().unwrap()).await.unwrap().unwrap();
                    }
                    got += batch.len();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    broker.shutdown().await.unwrap();
    (GROUPS * MESSAGES) as f64 / elapsed.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored --nocapture"]
async fn receive_ack_with_eight_groups_on_one_topic() {
    let mut rates = Vec::new();
    for r in 0..ROUNDS {
        let rate = round().await;
        println!("round {r}: {rate:.0} receive+ack/s ({GROUPS} groups x {MESSAGES} messages)");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("median: {:.0} receive+ack/s", rates[ROUNDS / 2]);
}
