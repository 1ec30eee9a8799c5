//! Storage engine throughput: 1 KiB appends in async and sync mode (1 and 16 writers), a
//! one-fsync-per-message baseline, and sequential reads through the consume queue.
//!
//! Run with `cargo bench -p ferrymq-core --bench store`. Data goes to `$FERRYMQ_BENCH_DIR`
//! (default `/work/tmp`, else the system temp dir) so it lands on the same disk as a `dd`
//! comparison.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrymq_core::store::{FlushMode, Store, StoreConfig};

mod common;
use common::{bench_root, message, BODY};

fn open(flush: FlushMode) -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir_in(bench_root()).expect("bench dir");
    let mut c = StoreConfig::new(dir.path());
    c.flush = flush;
    (dir, Store::open(c).expect("open store"))
}

/// Appends `iters` messages from `threads` writers; returns the wall time.
fn append_parallel(store: &Arc<Store>, next: &AtomicU64, threads: u64, iters: u64) -> Duration {
    let per = iters.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    store.append(message(n)).expect("append");
                }
            });
        }
    });
    let took = start.elapsed();
    // Report per message actually sent (per * threads may exceed iters slightly).
    took.mul_f64(iters as f64 / (per * threads) as f64)
}

fn appends(c: &mut Criterion) {
    for (mode, flush) in [("async", FlushMode::Async), ("sync", FlushMode::Sync)] {
        let mut g = c.benchmark_group(format!("append_1kib_{mode}"));
        g.throughput(Throughput::Bytes(BODY as u64));
        g.sample_size(10);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(4));
        for threads in [1u64, 16] {
            let (_dir, store) = open(flush);
            let next = AtomicU64::new(0);
            g.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, &t| {
                b.iter_custom(|iters| append_parallel(&store, &next, t, iters));
            });
            let st = store.stats();
            let n = next.load(Ordering::Relaxed);
            eprintln!(
                "append_1kib_{mode}/threads/{threads}: {n} appends, {} log flushes ({:.1} appends per flush, {:.0} us per flush)",
                st.flush_count,
                n as f64 / st.flush_count.max(1) as f64,
                st.flush_seconds_sum / st.flush_count.max(1) as f64 * 1e6
            );
            store.shutdown().expect("shutdown");
        }
        g.finish();
    }
}

/// The baseline group commit is measured against: write 1 KiB to a file and fdatasync it,
/// once per message, one writer.
fn fsync_per_message(c: &mut Criterion) {
    let mut g = c.benchmark_group("fsync_per_message_1kib");
    g.throughput(Throughput::Bytes(BODY as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    let dir = tempfile::tempdir_in(bench_root()).expect("bench dir");
    let mut f = std::fs::File::create(dir.path().join("baseline")).expect("baseline file");
    let body = vec![0x42u8; BODY];
    g.bench_function("write_fdatasync", |b| {
        b.iter(|| {
            f.write_all(&body).expect("write");
            f.sync_data().expect("fdatasync");
        });
    });
    g.finish();
}

fn sequential_read(c: &mut Criterion) {
    const N: u64 = 200_000;
    let (_dir, store) = open(FlushMode::Async);
    for n in 0..N {
        store.append(message(n)).expect("append");
    }
    store.flush().expect("flush");
    assert!(store.wait_dispatched(store.stats().max_offset, Duration::from_secs(60)));
    let mut g = c.benchmark_group("read_1kib_sequential");
    g.throughput(Throughput::Bytes(BODY as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("read_queue_then_read", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut left = iters;
            let mut q = 0usize;
            let mut offs = [0u64; 8];
            while left > 0 {
                let units = store.read_queue("bench", q as u32, offs[q], left.min(64) as usize).expect("read_queue");
                if units.is_empty() {
                    // End of this queue: start it over and move to the next.
                    offs[q] = 0;
                    q = (q + 1) % 8;
                    continue;
                }
                for u in &units {
                    let m = store.read(u.commit_offset).expect("read");
                    assert_eq!(m.body.len(), BODY);
                }
                left -= units.len() as u64;
                offs[q] = units.last().map_or(offs[q], |u| u.queue_offset + 1);
            }
            start.elapsed()
        });
    });
    g.finish();
    store.shutdown().expect("shutdown");
}

criterion_group!(benches, appends, fsync_per_message, sequential_read);
criterion_main!(benches);
