//! Broker throughput through its public API: 1 KiB messages on a topic of 8 queues.
//!
//! - `send/1` and `send/16`: single sends from 1 and 16 concurrent tasks (async flush);
//! - `send_batch/64`: batches of 64;
//! - `pull`: draining the queues with 32-message pulls;
//! - `receive_ack`: lease consumption, 32 messages a receive, each acked.
//!
//! Run with `cargo bench -p ferrymq-core --bench broker`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrymq_core::broker::*;

mod common;
use common::{bench_root, BODY};

const QUEUES: u32 = 8;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

async fn open() -> (tempfile::TempDir, Arc<Broker>) {
    let dir = tempfile::tempdir_in(bench_root()).expect("bench dir");
    let broker = Broker::open(BrokerConfig::new(dir.path())).await.expect("broker");
    broker.create_topic("bench", Some(QUEUES), None).expect("topic");
    (dir, broker)
}

fn message() -> OutgoingMessage {
    OutgoingMessage { body: vec![0x42; BODY], ..Default::default() }
}

async fn send_concurrently(broker: &Arc<Broker>, tasks: u64, total: u64) {
    let per = total.div_ceil(tasks);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let b = broker.clone();
            tokio::spawn(async move {
                for _ in 0..per {
                    b.send("bench", message()).await.expect("send");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
}

fn bench_send(c: &mut Criterion) {
    let rt = runtime();
    let (_dir, broker) = rt.block_on(open());
    let mut group = c.benchmark_group("broker");
    group.sample_size(10).measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Bytes(BODY as u64));
    for tasks in [1u64, 16] {
        group.bench_with_input(BenchmarkId::new("send", tasks), &tasks, |b, &tasks| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                rt.block_on(send_concurrently(&broker, tasks, iters));
                start.elapsed()
            })
        });
    }
    group.bench_function("send_batch/64", |b| {
        b.iter_custom(|iters| {
            let batches = iters.div_ceil(64);
            let start = Instant::now();
            rt.block_on(async {
                for _ in 0..batches {
                    broker.send_batch("bench", vec![message(); 64], None).await.expect("batch");
                }
            });
            start.elapsed().mul_f64(iters as f64 / (batches * 64) as f64)
        })
    });
    group.finish();
    rt.block_on(broker.shutdown()).expect("shutdown");
}

fn bench_consume(c: &mut Criterion) {
    let rt = runtime();
    let (_dir, broker) = rt.block_on(open());
    rt.block_on(async {
        for _ in 0..(200_000 / 64) {
            broker.send_batch("bench", vec![message(); 64], None).await.expect("fill");
        }
    });
    let mut group = c.benchmark_group("broker");
    group.sample_size(10).measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Bytes(BODY as u64));
    let mut offsets = [0u64; QUEUES as usize];
    group.bench_function("pull", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            rt.block_on(async {
                let mut got = 0u64;
                let mut q = 0usize;
                while got < iters {
                    let r = broker
                        .pull(PullRequest {
                            group: "bench".into(),
                            topic: "bench".into(),
                            queue_id: q as u32,
                            offset: offsets[q],
                            max: 32,
                            filter: FilterSpec::default(),
                            wait: Duration::ZERO,
                        })
                        .await
                        .expect("pull");
                    offsets[q] = if r.next_offset >= r.max_offset { 0 } else { r.next_offset };
                    got += r.messages.len() as u64;
                    q = (q + 1) % QUEUES as usize;
                }
            });
            start.elapsed()
        })
    });
    let mut round = 0u64;
    group.bench_function("receive_ack", |b| {
        b.iter_custom(|iters| {
            round += 1;
            let group_name = format!("g{round}");
            let start = Instant::now();
            rt.block_on(async {
                let mut got = 0u64;
                while got < iters {
                    let msgs = broker
                        .receive(ReceiveRequest {
                            group: group_name.clone(),
                            topic: "bench".into(),
                            filter: FilterSpec::default(),
                            max_messages: 32,
                            wait: Duration::ZERO,
                            invisible: Duration::from_secs(60),
                            client_id: "bench".into(),
                            transport: MemberTransport::Native,
                            mode: ConsumeMode::Clustering,
                            start: StartPosition::First,
                            orderly: false,
                        })
                        .await
                        .expect("receive");
                    for m in &msgs {
                        let receipt = m.receipt.as_deref().expect("receipt");
                        broker.ack(&group_name, receipt).await.expect("ack").expect("acked");
                    }
                    got += msgs.len() as u64;
                    if msgs.is_empty() {
                        broker.reset_offsets(&group_name, "bench", ResetTarget::Earliest).await.expect("reset");
                    }
                }
            });
            start.elapsed()
        })
    });
    group.finish();
    rt.block_on(broker.shutdown()).expect("shutdown");
}

criterion_group!(benches, bench_send, bench_consume);
criterion_main!(benches);
