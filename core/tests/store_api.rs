//! The store's public API end to end: append, dispatch, queue reads, lookups, reopen.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_is_msg, msg, msg_id, open};
use ferrymq_core::store::{tag_hash, FlushMode, Store, FLAG_BATCH_CONTINUES};
use ferrymq_core::Error;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn append_read_queue_and_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    let mut results = Vec::new();
    for i in 0..300u64 {
        let q = (i % 3) as u32;
        let r = store.append(msg("orders", q, i / 3)).unwrap();
        assert_eq!(r.queue_offset, i / 3);
        results.push(r);
    }
    let last = results.last().unwrap();
    assert!(store.wait_dispatched(last.commit_offset + u64::from(last.size), WAIT));
    assert!(store.stats().segment_count > 1, "tiny segments roll over");
    assert_eq!(store.queue_ids("orders"), vec![0, 1, 2]);
    for q in 0..3u32 {
        assert_eq!(store.queue_bounds("orders", q), (0, 100));
        let units = store.read_queue("orders", q, 0, 1000).unwrap();
        assert_eq!(units.len(), 100);
        for (i, u) in units.iter().enumerate() {
            assert_eq!(u.queue_offset, i as u64);
            assert_eq!(u.tag_hash, tag_hash(&format!("tag{}", i % 3)));
            let m = store.read(u.commit_offset).unwrap();
            assert_eq!(m.queue_offset, i as u64);
            assert_eq!(m.size, u.size);
            assert_is_msg(&m, "orders", q, i as u64);
        }
        assert!(store.read_queue("orders", q, 100, 10).unwrap().is_empty());
        assert!(matches!(store.read_queue("orders", q, 101, 10), Err(Error::OffsetOutOfRange { offset: 101, .. })));
        assert_eq!(store.read_queue("orders", q, 95, 3).unwrap().len(), 3);
    }
    assert!(store.read_queue("nope", 0, 0, 10).unwrap().is_empty());
    assert_eq!(store.queue_bounds("nope", 0), (0, 0));

    // Unique-id and key lookups, verified against the record.
    let r = &results[7]; // queue 1, i = 2
    assert_eq!(store.lookup_msg_id(&msg_id("orders", 1, 2)).unwrap(), vec![r.commit_offset]);
    assert!(store.lookup_msg_id("missing").unwrap().is_empty());
    let by_key = store.lookup_key("orders", "k2", 10).unwrap();
    assert_eq!(by_key.len(), 3, "k2 exists once per queue");
    assert!(by_key.windows(2).all(|w| w[0] < w[1]), "oldest first");
    assert_eq!(store.lookup_key("orders", "k2", 2).unwrap(), by_key[..2].to_vec());
    assert!(store.lookup_key("other", "k2", 10).unwrap().is_empty());

    // Time lookups: every record is in [0, MAX), none in the future.
    let all = store.lookup_time("orders", 0, u64::MAX, 1000).unwrap();
    assert_eq!(all.len(), 300);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(store.lookup_time("orders", 0, u64::MAX, 5).unwrap(), all[..5].to_vec());
    let future = results.last().unwrap().store_ts + 1;
    assert!(store.lookup_time("orders", future, u64::MAX, 10).unwrap().is_empty());
    assert_eq!(store.offset_for_timestamp("orders", 0, future).unwrap(), 100);
    assert_eq!(store.offset_for_timestamp("orders", 0, 0).unwrap(), 0);
    let mid = results[150].store_ts;
    let q0 = store.offset_for_timestamp("orders", 0, mid).unwrap();
    let units = store.read_queue("orders", 0, 0, 1000).unwrap();
    for u in &units {
        let ts = store.read(u.commit_offset).unwrap().store_ts;
        assert_eq!(ts >= mid, u.queue_offset >= q0);
    }
    store.shutdown().unwrap();
}

#[test]
fn reopen_continues_offsets_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut offsets = Vec::new();
    {
        let store = open(dir.path(), FlushMode::Sync);
        for i in 0..120u64 {
            offsets.push(store.append(msg("t", 0, i)).unwrap().commit_offset);
        }
        store.shutdown().unwrap();
        assert!(!dir.path().join("abort").exists());
        assert!(matches!(store.append(msg("t", 0, 999)), Err(Error::Closed)));
        store.shutdown().unwrap();
    }
    let store = open(dir.path(), FlushMode::Sync);
    assert_eq!(store.queue_bounds("t", 0), (0, 120));
    for (i, off) in offsets.iter().enumerate() {
        assert_is_msg(&store.read(*off).unwrap(), "t", 0, i as u64);
    }
    let r = store.append(msg("t", 0, 120)).unwrap();
    assert_eq!(r.queue_offset, 120);
    assert!(r.commit_offset > *offsets.last().unwrap());
    assert!(store.wait_dispatched(r.commit_offset + u64::from(r.size), WAIT));
    assert_eq!(store.lookup_msg_id(&msg_id("t", 0, 5)).unwrap(), vec![offsets[5]]);
    assert_eq!(store.queue_bounds("t", 0), (0, 121));
}

#[test]
fn batch_is_contiguous_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Sync);
    let batch: Vec<_> = (0..50u64).map(|i| msg("b", (i % 2) as u32, i / 2)).collect();
    let rs = store.append_batch(batch).unwrap();
    assert_eq!(rs.len(), 50);
    for (i, r) in rs.iter().enumerate() {
        assert_eq!(r.queue_offset, i as u64 / 2);
        let m = store.read(r.commit_offset).unwrap();
        assert_eq!(m.flags & FLAG_BATCH_CONTINUES != 0, i + 1 < rs.len());
    }
    assert!(rs.windows(2).all(|w| w[0].store_ts == w[1].store_ts));
    assert!(store.append_batch(Vec::new()).unwrap().is_empty());
}

#[test]
fn same_msg_id_twice_is_found_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    let a = store.append(msg("t", 0, 1)).unwrap();
    let mut again = msg("%RETRY%g", 0, 1);
    again.msg_id = msg_id("t", 0, 1);
    let b = store.append(again).unwrap();
    assert!(store.wait_dispatched(b.commit_offset + 1, WAIT));
    assert_eq!(store.lookup_msg_id(&msg_id("t", 0, 1)).unwrap(), vec![a.commit_offset, b.commit_offset]);
}

#[test]
fn dispatch_listener_sees_growth() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    store.set_dispatch_listener(Arc::new(move |t: &str, q: u32, max: u64| {
        s.lock().unwrap().push((t.to_string(), q, max));
    }));
    let r = store.append(msg("t", 4, 0)).unwrap();
    assert!(store.wait_dispatched(r.commit_offset + u64::from(r.size), WAIT));
    // The listener runs right after progress is published; give it a moment by waiting on
    // a second append's dispatch.
    let r = store.append(msg("t", 4, 1)).unwrap();
    assert!(store.wait_dispatched(r.commit_offset + u64::from(r.size), WAIT));
    let deadline = std::time::Instant::now() + WAIT;
    while !seen.lock().unwrap().contains(&("t".to_string(), 4, 2)) {
        assert!(std::time::Instant::now() < deadline, "listener not called: {:?}", seen.lock().unwrap());
        std::thread::yield_now();
    }
}

#[test]
fn delete_topic_drops_queues_and_a_new_topic_of_that_name_starts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    for i in 0..10 {
        store.append(msg("gone", 0, i)).unwrap();
    }
    store.delete_topic("gone").unwrap();
    assert!(store.queue_ids("gone").is_empty());
    assert_eq!(store.queue_bounds("gone", 0), (0, 0));
    assert!(!dir.path().join("consumequeue/gone").exists());
    // `max` is the offset the next message gets: the first message of the new topic gets 0.
    let r = store.append(msg("gone", 0, 10)).unwrap();
    assert_eq!(r.queue_offset, 0);
    assert!(store.wait_dispatched(r.commit_offset + u64::from(r.size), WAIT));
    assert_eq!(store.queue_bounds("gone", 0), (0, 1));
    let units = store.read_queue("gone", 0, 0, 10).unwrap();
    assert_eq!(units.len(), 1);
    assert_eq!(units[0].commit_offset, r.commit_offset, "the new message, not an old one");
    assert!(matches!(store.delete_topic("a/b"), Err(Error::InvalidArgument { .. })));
    // The same after a restart: the old records stay in the log and stay out of the queue.
    store.shutdown().unwrap();
    drop(store);
    let store = open(dir.path(), FlushMode::Async);
    assert_eq!(store.queue_bounds("gone", 0), (0, 1));
    assert_eq!(store.append(msg("gone", 0, 11)).unwrap().queue_offset, 1);
}

#[test]
fn second_open_of_a_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    let again = Store::open(common::tiny_config(dir.path(), FlushMode::Async));
    assert!(matches!(again, Err(Error::Conflict(_))));
    drop(store);
    // Dropping releases the lock (and shuts down cleanly).
    let store = open(dir.path(), FlushMode::Async);
    assert_eq!(store.stats().max_offset, 0);
}

#[test]
fn sync_appends_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Sync);
    let count = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let store = &store;
            let count = &count;
            s.spawn(move || {
                for i in 0..50u64 {
                    store.append(msg("g", t, i)).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let st = store.stats();
    assert_eq!(count.load(Ordering::Relaxed), 400);
    assert_eq!(st.flushed_offset, st.max_offset);
    assert!(st.flush_count > 0);
    assert!(st.flush_count < 400, "group commit: {} flushes for 400 appends", st.flush_count);
    assert!(st.flush_seconds_sum > 0.0);
    assert!(*st.flush_buckets.last().unwrap() <= st.flush_count);
}

#[test]
fn a_panicking_listener_does_not_stop_dispatch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    store.set_dispatch_listener(Arc::new(|_: &str, _: u32, _: u64| panic!("listener bug")));
    for i in 0..3 {
        let r = store.append(msg("t", 0, i)).unwrap();
        assert!(store.wait_dispatched(r.commit_offset + u64::from(r.size), WAIT));
    }
    assert_eq!(store.queue_bounds("t", 0), (0, 3));
}

#[test]
fn key_lookups_newest_first_in_a_time_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Async);
    // 600 messages with one shared key, over a few hundred ms, spread over many index files.
    let mut rs = Vec::new();
    for i in 0..600u64 {
        let mut m = msg("t", (i % 2) as u32, i / 2);
        m.keys = vec!["same".into()];
        rs.push(store.append(m).unwrap());
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let last = rs.last().unwrap();
    assert!(store.wait_dispatched(last.commit_offset + u64::from(last.size), Duration::from_secs(10)));
    let all: Vec<u64> = rs.iter().map(|r| r.commit_offset).collect();
    assert_eq!(store.lookup_key("t", "same", 5).unwrap(), all[..5].to_vec());
    assert_eq!(store.lookup_key("t", "same", 1000).unwrap(), all);
    let newest: Vec<u64> = all.iter().rev().take(7).copied().collect();
    assert_eq!(store.lookup_key_newest("t", "same", 0, u64::MAX, 7).unwrap(), newest);
    assert!(store.lookup_key_newest("other", "same", 0, u64::MAX, 7).unwrap().is_empty());
    // A time range: exactly the records stored in it, newest first.
    let (from, to) = (rs[150].store_ts, rs[450].store_ts);
    let want: Vec<u64> =
        rs.iter().rev().filter(|r| r.store_ts >= from && r.store_ts < to).map(|r| r.commit_offset).collect();
    assert!(!want.is_empty());
    assert_eq!(store.lookup_key_newest("t", "same", from, to, 10_000).unwrap(), want);
    assert_eq!(store.lookup_key_newest("t", "same", from, to, 3).unwrap(), want[..3].to_vec());
    assert!(store.lookup_key_newest("t", "same", to, from, 3).unwrap().is_empty());
}

#[test]
fn a_clean_shutdown_records_queue_ends_for_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let ends = dir.path().join("queue_ends");
    let store = open(dir.path(), FlushMode::Sync);
    for i in 0..30u64 {
        store.append(msg("t", (i % 3) as u32, i / 3)).unwrap();
    }
    store.shutdown().unwrap();
    drop(store);
    assert!(ends.exists());
    let stale = std::fs::read(&ends).unwrap();
    let store = open(dir.path(), FlushMode::Sync);
    assert!(!ends.exists(), "an open consumes the record");
    for q in 0..3 {
        assert_eq!(store.queue_bounds("t", q), (0, 10));
    }
    store.append(msg("t", 0, 10)).unwrap();
    store.shutdown().unwrap();
    drop(store);
    // A record from an older shutdown (another log end) is ignored.
    std::fs::write(&ends, stale).unwrap();
    let store = open(dir.path(), FlushMode::Sync);
    assert_eq!(store.queue_bounds("t", 0), (0, 11));
    assert_eq!(store.append(msg("t", 0, 11)).unwrap().queue_offset, 11);
}

/// Pending appends (written now, durable later) from one thread land in call order; the
/// `durable` and `dispatched` futures resolve once the sync thread has flushed them.
#[test]
fn pending_appends_land_in_order_and_resolve_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Sync);
    let mut ends = Vec::new();
    for i in 0..200u64 {
        let (results, end) = futures::executor::block_on(
            store.append_batch_queued(vec![msg("p", 0, 2 * i), msg("p", 0, 2 * i + 1)]).unwrap(),
        )
        .unwrap();
        assert_eq!(results.iter().map(|r| r.queue_offset).collect::<Vec<_>>(), [2 * i, 2 * i + 1]);
        ends.push(end);
    }
    assert!(ends.windows(2).all(|w| w[0] < w[1]));
    let last = *ends.last().unwrap();
    futures::executor::block_on(async {
        for end in &ends {
            store.durable(*end).await.unwrap();
        }
        assert!(store.dispatched(last).await);
    });
    assert!(store.stats().flushed_offset >= last);
    let units = store.read_queue("p", 0, 0, 1000).unwrap();
    assert_eq!(units.len(), 400);
    for (i, u) in units.iter().enumerate() {
        assert_is_msg(&store.read(u.commit_offset).unwrap(), "p", 0, i as u64);
    }
    assert_eq!(futures::executor::block_on(store.append_batch_queued(Vec::new()).unwrap()).unwrap(), (Vec::new(), 0));
    store.shutdown().unwrap();
    // Past the end of a closed store nothing will become durable or dispatched.
    futures::executor::block_on(async {
        assert!(matches!(store.durable(last + 1).await, Err(Error::Closed)));
        assert!(!store.dispatched(last + 1).await);
    });
}

/// Batches queued for the writer thread without waiting land in the order they were queued;
/// a message the store refuses is refused at once, before anything is queued.
#[test]
fn queued_appends_land_in_call_order_and_bad_input_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushMode::Sync);
    let queued: Vec<_> =
        (0..300u64).map(|i| store.append_batch_queued(vec![msg("q", 1, i)]).expect("queued")).collect();
    let mut big = msg("q", 1, 0);
    big.body = vec![0; 64 << 20];
    assert!(matches!(store.append_batch_queued(vec![big]), Err(Error::MessageTooLarge { .. })));
    let written = futures::executor::block_on(futures::future::join_all(queued));
    let mut last_end = 0;
    for (i, w) in written.into_iter().enumerate() {
        let (results, end) = w.unwrap();
        assert_eq!(results[0].queue_offset, i as u64);
        assert!(end > last_end);
        last_end = end;
    }
    assert!(futures::executor::block_on(store.dispatched(last_end)));
    assert_eq!(store.queue_bounds("q", 1), (0, 300));
    store.shutdown().unwrap();
    assert!(matches!(store.append_batch_queued(vec![msg("q", 1, 300)]), Err(Error::Closed)));
}

/// In sync mode the sync thread dispatches small flushed ranges itself and leaves larger ones
/// to the dispatcher thread; with both at work (one-message and 200-message batches from
/// concurrent async producers), every record is in its queue and the index exactly once, and
/// the listener hears of each queue's last growth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_dispatch_from_two_threads_indexes_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::tiny_config(dir.path(), FlushMode::Sync);
    c.segment_bytes = 8 << 20;
    c.cq_units_per_file = 4096;
    c.index_entries_per_file = 1 << 16;
    let store = Store::open(c).unwrap();
    let grown = Arc::new(Mutex::new(std::collections::HashMap::new()));
    let g = grown.clone();
    store.set_dispatch_listener(Arc::new(move |_: &str, q: u32, max: u64| {
        let mut g = g.lock().unwrap();
        let seen = g.entry(q).or_insert(0u64);
        *seen = (*seen).max(max);
    }));
    let mut tasks = Vec::new();
    for q in 0..6u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            for round in 0..30u64 {
                let n = if round % 5 == 4 { 200 } else { 1 };
                let batch: Vec<_> = (i..i + n).map(|k| msg("d", q, k)).collect();
                i += n;
                let (_, end) = store.append_batch_queued(batch).unwrap().await.unwrap();
                store.durable(end).await.unwrap();
                assert!(store.dispatched(end).await);
            }
            i
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    for (q, &n) in counts.iter().enumerate() {
        let q = q as u32;
        assert_eq!(store.queue_bounds("d", q), (0, n));
        let units = store.read_queue("d", q, 0, usize::MAX).unwrap();
        assert_eq!(units.len() as u64, n);
        for (k, unit) in units.iter().enumerate() {
            assert_is_msg(&store.read(unit.commit_offset).unwrap(), "d", q, k as u64);
        }
        for k in [0, n / 2, n - 1] {
            assert_eq!(store.lookup_msg_id(&msg_id("d", q, k)).unwrap().len(), 1, "queue {q} message {k}");
        }
    }
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let g = grown.lock().unwrap().clone();
        if (0..6u32).all(|q| g.get(&q) == Some(&counts[q as usize])) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "listener saw {g:?}, queues have {counts:?}");
        drop(g);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
