//! Throughput of the embedded client with 1 KiB messages: single sends one at a time,
//! batched sends, and draining the backlog with a push listener and with `recv` + `ack` (the
//! consumer as a stream). Prints each path's rate and the process's CPU time per message (run
//! with `--nocapture`); asserts only that everything arrives.
//!
//! The broker is the production default (async flush) with 64 MiB segments, as the SDK
//! benches use. Sizes, so that a release run compares like with like with an SDK bench
//! (BENCHMARKS.md, "Node SDK"): `FERRYMQ_CLIENT_BENCH_MESSAGES` (the backlog both drains
//! consume, default 20 000), `FERRYMQ_CLIENT_BENCH_SINGLES` (default a quarter of it),
//! `FERRYMQ_CLIENT_BENCH_BATCH` (messages per `send_batch`, default 100) and
//! `FERRYMQ_CLIENT_BENCH_PULL_BATCH` (the consumers' `pull_batch`, default the client's).
//! Debug builds are several times slower than `--release`.

mod client_util;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrymq_core::broker::{BrokerConfig, Message, OutgoingMessage};
use ferrymq_core::client::{Client, Listener, PushConsumerOptions};
use tokio::sync::Notify;

const BODY: usize = 1024;

fn env(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The process's CPU time (user and system, every thread) where `/proc` tells it.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) close with its `)`; utime and
    // stime are the 14th and 15th fields, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Wall and CPU time of one path.
struct Span {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Span {
    fn start() -> Span {
        Span { wall: Instant::now(), cpu: cpu_time() }
    }

    fn report(&self, n: usize) -> String {
        let elapsed = self.wall.elapsed();
        let per_sec = n as f64 / elapsed.as_secs_f64();
        let cpu = match (self.cpu, cpu_time()) {
            (Some(before), Some(after)) => {
                format!(", {:.1} µs CPU/msg", (after - before).as_secs_f64() * 1e6 / n as f64)
            }
            _ => String::new(),
        };
        format!(
            "{n} msgs in {:.2?}: {per_sec:.0} msg/s, {:.1} MiB/s{cpu}",
            elapsed,
            per_sec * BODY as f64 / (1 << 20) as f64
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_client_throughput_1kib() {
    let n = env("FERRYMQ_CLIENT_BENCH_MESSAGES").unwrap_or(20_000);
    let singles = env("FERRYMQ_CLIENT_BENCH_SINGLES").unwrap_or(n / 4);
    let batch_size = env("FERRYMQ_CLIENT_BENCH_BATCH").unwrap_or(100).max(1);
    let mut consumer_options = PushConsumerOptions::default();
    if let Some(pull_batch) = env("FERRYMQ_CLIENT_BENCH_PULL_BATCH") {
        consumer_options.pull_batch = pull_batch;
        consumer_options.max_buffered_per_queue = consumer_options.max_buffered_per_queue.max(pull_batch);
    }
    let pull_batch = consumer_options.pull_batch;
    let dir = tempfile::tempdir().unwrap();
    let mut config = BrokerConfig::new(dir.path());
    config.store.segment_bytes = 64 << 20;
    config.store.flush = ferrymq_core::store::FlushMode::Async;
    let client = Client::embedded_with(config).await.unwrap();
    client.admin().create_topic("singles", 8).await.unwrap();
    client.admin().create_topic("bench", 8).await.unwrap();
    let producer = client.producer(None);
    let body = vec![0x42u8; BODY];

    let span = Span::start();
    for _ in 0..singles {
        producer.send("singles", body.clone()).await.unwrap();
    }
    let single_rate = span.report(singles);

    let span = Span::start();
    let mut left = n;
    while left > 0 {
        let k = left.min(batch_size);
        let batch: Vec<OutgoingMessage> = (0..k).map(|_| body.clone().into()).collect();
        producer.send_batch("bench", batch).await.unwrap();
        left -= k;
    }
    let batch_rate = span.report(n);

    // The listener drain ends the moment the last message is counted (not at a poll).
    let count = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(Notify::new());
    let (c, d) = (count.clone(), drained.clone());
    let listener = Listener::new(move |_m: Message| {
        if c.fetch_add(1, Ordering::Relaxed) + 1 == n {
            d.notify_one();
        }
        async { Ok(()) }
    });
    let span = Span::start();
    let consumer =
        client.push_consumer("bench-listener", "bench", consumer_options.clone().listener(listener)).unwrap();
    consumer.start().await.unwrap();
    let all = tokio::time::timeout(Duration::from_secs(600), drained.notified()).await;
    assert!(all.is_ok(), "the listener got {} of {n}", count.load(Ordering::Relaxed));
    let listener_rate = span.report(n);
    consumer.close().await.unwrap();

    let span = Span::start();
    let consumer = client.push_consumer("bench-stream", "bench", consumer_options).unwrap();
    consumer.start().await.unwrap();
    let mut got = 0;
    while got < n {
        let received = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await;
        let received = received.expect("the stream stalled").expect("the stream ended early");
        received.ack();
        got += 1;
    }
    let stream_rate = span.report(n);
    consumer.close().await.unwrap();
    client.close().await.unwrap();

    println!("embedded client, 1 KiB bodies, async flush, pull batch {pull_batch}:");
    println!("  send (one at a time):   {single_rate}");
    println!("  send_batch ({batch_size}/batch): {batch_rate}");
    println!("  push listener (backlog): {listener_rate}");
    println!("  push recv + ack (backlog): {stream_rate}");
}
