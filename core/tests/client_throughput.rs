//! Throughput of the embedded client with 1 KiB messages: sequential single sends, batched
//! sends, and push consumption of the backlog. Prints the figures (run with `--nocapture`);
//! asserts only that everything arrives. Message count: `FERRYMQ_CLIENT_BENCH_MESSAGES`
//! (default 20 000). Debug builds are several times slower than `--release`.

mod client_util;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrymq_core::broker::{Message, OutgoingMessage};
use ferrymq_core::client::{Client, Listener};

use client_util::*;

const BODY: usize = 1024;

fn rate(n: usize, elapsed: Duration) -> String {
    let per_sec = n as f64 / elapsed.as_secs_f64();
    format!("{n} msgs in {:.2?}: {per_sec:.0} msg/s, {:.1} MiB/s", elapsed, per_sec * BODY as f64 / (1 << 20) as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_client_throughput_1kib() {
    let n: usize = std::env::var("FERRYMQ_CLIENT_BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.store.segment_bytes = 64 << 20;
    let client = Client::embedded_with(config).await.unwrap();
    client.admin().create_topic("bench", 8).await.unwrap();
    let producer = client.producer(None);
    let body = vec![0x42u8; BODY];

    let singles = n / 4;
    let started = Instant::now();
    for _ in 0..singles {
        producer.send("bench", body.clone()).await.unwrap();
    }
    let single_rate = rate(singles, started.elapsed());

    let batched = n - singles;
    let started = Instant::now();
    let mut left = batched;
    while left > 0 {
        let k = left.min(100);
        let batch: Vec<OutgoingMessage> = (0..k).map(|_| body.clone().into()).collect();
        producer.send_batch("bench", batch).await.unwrap();
        left -= k;
    }
    let batch_rate = rate(batched, started.elapsed());

    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let listener = Listener::new(move |_m: Message| {
        c.fetch_add(1, Ordering::Relaxed);
        async { Ok(()) }
    });
    let started = Instant::now();
    let consumer = client.push_consumer("bench-readers", "bench", fast().listener(listener)).unwrap();
    consumer.start().await.unwrap();
    assert!(eventually(Duration::from_secs(300), || count.load(Ordering::Relaxed) >= n).await, "not all consumed");
    let consume_rate = rate(n, started.elapsed());
    consumer.close().await.unwrap();
    client.close().await.unwrap();

    println!("embedded client, 1 KiB bodies, async flush:");
    println!("  send (one at a time):   {single_rate}");
    println!("  send_batch (100/batch): {batch_rate}");
    println!("  push consume (backlog): {consume_rate}");
}
