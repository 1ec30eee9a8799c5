//! Receive + ack with 8 groups consuming one topic at once (lease consumption of every group
//! contends on the broker's consumption state): every group gets every message exactly once.
//! It prints msg/s per round and the median; by default it is small (500 messages, one round)
//! so the suite stays fast. For the figures in BENCHMARKS.md:
//!
//! ```sh
//! FERRYMQ_BENCH_MESSAGES=4000 FERRYMQ_BENCH_ROUNDS=3 \
//!     cargo test --release -p ferrymq-core --test broker_throughput -- --nocapture
//! ```

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrymq_core::broker::*;
use support::*;

const GROUPS: usize = 8;

fn scale(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(default)
}

async fn round(messages: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_batch_messages = 1000;
    c.store.segment_bytes = 64 << 20;
    let broker = Broker::open(c).await.unwrap();
    broker.create_topic("bench", Some(8), None).unwrap();
    for start in (0..messages).step_by(500) {
        let batch = (start..messages.min(start + 500))
            .map(|i| OutgoingMessage { body: format!("{i:0>1024}").into_bytes(), ..Default::default() })
            .collect();
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
                let mut seen = vec![false; messages];
                let mut got = 0;
                while got < messages {
                    let batch = broker.receive(req.clone()).await.unwrap();
                    for m in &batch {
                        broker.ack(&group, m.receipt.as_ref().unwrap()).await.unwrap().unwrap();
                        let i: usize = String::from_utf8_lossy(&m.body).parse().unwrap();
                        assert!(!std::mem::replace(&mut seen[i], true), "{group} got message {i} twice");
                    }
                    got += batch.len();
                }
                assert!(seen.iter().all(|s| *s), "{group} missed messages");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    broker.shutdown().await.unwrap();
    (GROUPS * messages) as f64 / elapsed.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_groups_on_one_topic_each_receive_and_ack_every_message_once() {
    let (messages, rounds) = (scale("FERRYMQ_BENCH_MESSAGES", 500), scale("FERRYMQ_BENCH_ROUNDS", 1));
    let mut rates = Vec::new();
    for r in 0..rounds {
        let rate = round(messages).await;
        println!("round {r}: {rate:.0} receive+ack/s ({GROUPS} groups x {messages} messages)");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("median: {:.0} receive+ack/s", rates[rounds / 2]);
}
