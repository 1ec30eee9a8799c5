//! Throughput of the embedded client with 1 KiB messages: sequential single sends, batched
//! sends (100 per batch), and push consumption of a backlog. Prints the figures, with the
//! process's CPU time per message (run with `--nocapture`); asserts only that everything
//! arrives. Message counts: `FERRYMQ_CLIENT_BENCH_MESSAGES` single sends (default 20 000),
//! ten times as many batched ones, and a backlog of `FERRYMQ_CLIENT_BENCH_CONSUME` (default
//! 200 000) for the push consumer, filled beforehand (untimed) in a topic of its own: on a
//! release build each row then lasts about a second, long enough to compare with the Kotlin
//! bench (`bindings/kotlin/src/test/kotlin/dev/ferrymq/bench/Throughput.kt`), which uses the
//! same counts. Debug builds are several times slower than `--release`.

mod client_util;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrymq_core::broker::{Message, OutgoingMessage};
use ferrymq_core::client::{Client, Listener};

use client_util::*;

const BODY: usize = 1024;

/// This process's CPU time (user and system, all threads) from `/proc/self/stat`, in clock
/// ticks of 10 ms: coarse, but the rows last about a second.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<u64> =
        stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the state letter.
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Times `n` messages from `started` (instant, CPU time).
fn rate(n: usize, started: (Instant, Duration)) -> String {
    let elapsed = started.0.elapsed();
    let cpu_per_msg = (cpu() - started.1).as_secs_f64() * 1e6 / n as f64;
    let per_sec = n as f64 / elapsed.as_secs_f64();
    format!(
        "{n} msgs in {:.2?}: {per_sec:.0} msg/s, {:.1} MiB/s, {cpu_per_msg:.1} µs CPU/msg",
        elapsed,
        per_sec * BODY as f64 / (1 << 20) as f64
    )
}

fn now() -> (Instant, Duration) {
    (Instant::now(), cpu())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_client_throughput_1kib() {
    let count = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let singles = count("FERRYMQ_CLIENT_BENCH_MESSAGES", 20_000);
    let n = count("FERRYMQ_CLIENT_BENCH_CONSUME", 200_000);
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.store.segment_bytes = 64 << 20;
    let client = Client::embedded_with(config).await.unwrap();
    client.admin().create_topic("bench", 8).await.unwrap();
    client.admin().create_topic("backlog", 8).await.unwrap();
    let producer = client.producer(None);
    let body = vec![0x42u8; BODY];

    let started = now();
    for _ in 0..singles {
        producer.send("bench", body.clone()).await.unwrap();
    }
    let single_rate = rate(singles, started);

    let send_batches = |topic: &'static str, total: usize| {
        let producer = &producer;
        let body = &body;
        async move {
            let mut left = total;
            while left > 0 {
                let k = left.min(100);
                let batch: Vec<OutgoingMessage> = (0..k).map(|_| body.clone().into()).collect();
                producer.send_batch(topic, batch).await.unwrap();
                left -= k;
            }
        }
    };
    let batched = singles * 10;
    let started = now();
    send_batches("bench", batched).await;
    let batch_rate = rate(batched, started);

    send_batches("backlog", n).await;

    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let listener = Listener::new(move |_m: Message| {
        c.fetch_add(1, Ordering::Relaxed);
        async { Ok(()) }
    });
    let started = now();
    let consumer = client.push_consumer("bench-readers", "backlog", fast().listener(listener)).unwrap();
    consumer.start().await.unwrap();
    assert!(eventually(Duration::from_secs(300), || count.load(Ordering::Relaxed) >= n).await, "not all consumed");
    let consume_rate = rate(n, started);
    consumer.close().await.unwrap();
    client.close().await.unwrap();

    println!("embedded client, 1 KiB bodies, async flush:");
    println!("  send (one at a time):   {single_rate}");
    println!("  send_batch (100/batch): {batch_rate}");
    println!("  push consume (backlog, 16 workers): {consume_rate}");
}
