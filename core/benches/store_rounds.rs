//! Interleaved rounds of the storage engine's append modes (blocking appends from 1, 16 and
//! 64 threads; 64 async producers with queued appends and durable futures) and the
//! one-fsync-per-message baseline, for ratios that a noisy shared machine does not distort: each round runs every
//! mode back to back for a fixed time, and the report gives per-round ratios and medians.
//!
//! `cargo bench -p ferrymq-core --bench store_rounds` (rounds: `FERRYMQ_BENCH_ROUNDS`, default
//! 5; seconds per mode: `FERRYMQ_BENCH_SECS`, default 1.5). Data goes to `$FERRYMQ_BENCH_DIR`
//! (default `/work/tmp`, else the system temp dir).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferrymq_core::store::{FlushMode, Store, StoreConfig};

mod common;
use common::{bench_root, message, BODY};

/// Runs `op` on `threads` threads until stopped; returns operations per second over `secs`
/// after a short warm-up.
fn timed(threads: usize, secs: f64, op: &(dyn Fn(u64) + Sync)) -> f64 {
    let count = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let n = count.fetch_add(1, Ordering::Relaxed);
                    op(n);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        let (c0, t0) = (count.load(Ordering::Relaxed), Instant::now());
        std::thread::sleep(Duration::from_secs_f64(secs));
        let (c1, t1) = (count.load(Ordering::Relaxed), Instant::now());
        stop.store(true, Ordering::Relaxed);
        (c1 - c0) as f64 / (t1 - t0).as_secs_f64()
    })
}

fn store_rate(flush: FlushMode, threads: usize, secs: f64) -> f64 {
    let dir = tempfile::tempdir_in(bench_root()).expect("bench dir");
    let mut c = StoreConfig::new(dir.path());
    c.flush = flush;
    let store = Store::open(c).expect("open store");
    let rate = timed(threads, secs, &|n| {
        store.append(message(n)).expect("append");
    });
    store.shutdown().expect("shutdown");
    rate
}

/// Sync appends from `tasks` concurrent async producers (the broker's way: queued appends and
/// durable futures on a two-worker runtime, no thread parked per append).
fn store_rate_tasks(tasks: usize, secs: f64) -> f64 {
    let dir = tempfile::tempdir_in(bench_root()).expect("bench dir");
    let mut c = StoreConfig::new(dir.path());
    c.flush = FlushMode::Sync;
    let store = std::sync::Arc::new(Store::open(c).expect("open store"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().expect("runtime");
    let count = std::sync::Arc::new(AtomicU64::new(0));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let rate = runtime.block_on(async {
        let producers: Vec<_> = (0..tasks)
            .map(|_| {
                let (store, count, stop) = (store.clone(), count.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let n = count.fetch_add(1, Ordering::Relaxed);
                        let (_, end) =
                            store.append_batch_queued(vec![message(n)]).expect("queue").await.expect("append");
                        store.durable(end).await.expect("durable");
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (c0, t0) = (count.load(Ordering::Relaxed), Instant::now());
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let (c1, t1) = (count.load(Ordering::Relaxed), Instant::now());
        stop.store(true, Ordering::Relaxed);
        for p in producers {
            p.await.expect("producer");
        }
        (c1 - c0) as f64 / (t1 - t0).as_secs_f64()
    });
    drop(runtime);
    std::sync::Arc::into_inner(store).expect("producers done").shutdown().expect("shutdown");
    rate
}

fn baseline_rate(secs: f64) -> f64 {
    let dir = tempfile::tempdir_in(bench_root()).expect("bench dir");
    let f = std::sync::Mutex::new(std::fs::File::create(dir.path().join("baseline")).expect("file"));
    let body = vec![0x42u8; BODY];
    timed(1, secs, &|_| {
        let mut f = f.lock().expect("lock");
        f.write_all(&body).expect("write");
        f.sync_data().expect("fdatasync");
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let rounds: usize = std::env::var("FERRYMQ_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let secs: f64 = std::env::var("FERRYMQ_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(1.5);
    let names = ["fsync/msg", "sync x1", "sync x16", "sync x64", "sync 64t", "async x1", "async x16"];
    let mut rows: Vec<[f64; 7]> = Vec::new();
    let header: String = names.iter().map(|n| format!(" {n:>10}")).collect();
    println!("{:>5}{header} {:>10} {:>10} {:>10} {:>10}", "round", "x16/fsync", "x64/fsync", "64t/fsync", "x16/x1");
    let print = |label: &str, row: &[f64; 7], ratios: [f64; 4]| {
        let cells: String = row.iter().map(|v| format!(" {v:>10.0}")).collect();
        let ratios: String = ratios.iter().map(|v| format!(" {v:>10.1}")).collect();
        println!("{label:>5}{cells}{ratios}");
    };
    let ratios = |r: &[f64; 7]| [r[2] / r[0], r[3] / r[0], r[4] / r[0], r[2] / r[1]];
    for r in 0..rounds {
        let row = [
            baseline_rate(secs),
            store_rate(FlushMode::Sync, 1, secs),
            store_rate(FlushMode::Sync, 16, secs),
            store_rate(FlushMode::Sync, 64, secs),
            store_rate_tasks(64, secs),
            store_rate(FlushMode::Async, 1, secs),
            store_rate(FlushMode::Async, 16, secs),
        ];
        print(&r.to_string(), &row, ratios(&row));
        rows.push(row);
    }
    let col = |i: usize| median(rows.iter().map(|r| r[i]).collect());
    let med = [col(0), col(1), col(2), col(3), col(4), col(5), col(6)];
    let ratio = |i: usize| median(rows.iter().map(|r| ratios(r)[i]).collect());
    print("med", &med, [ratio(0), ratio(1), ratio(2), ratio(3)]);
    println!("(messages of {BODY} B per second; MB/s = msgs/s x {BODY} / 1e6)");
}
