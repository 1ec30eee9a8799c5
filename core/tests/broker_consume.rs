//! Lease consumption: receipts, ack outcomes, lease expiry with redelivery, change of
//! invisibility, filters, long polling, pulls.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrymq_core::broker::*;
use ferrymq_core::Error;
use support::*;

#[tokio::test]
async fn ack_outcomes_and_receipt_validation() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.send("t", msg("a")).await.unwrap();
    let got = broker.receive(receive("g", "t", "c")).await.unwrap();
    let receipt = got[0].receipt.clone().unwrap();
    assert!(broker.ack("g", &receipt).await.unwrap().is_ok());
    assert_eq!(broker.ack("g", &receipt).await.unwrap(), Err(ReceiptFailure::Acked));
    assert_eq!(broker.ack("other", &receipt).await.unwrap(), Err(ReceiptFailure::Unknown));
    assert!(matches!(broker.ack("g", "garbage").await, Err(Error::InvalidArgument { .. })));
    assert!(matches!(broker.nack("g", "r1.zz", None).await, Err(Error::InvalidArgument { .. })));
    assert!(matches!(
        broker.change_invisible("g", &receipt, Duration::from_secs(5)).await,
        Err(Error::NotFound { .. })
    ));
    let mut bad = receive("g", "t", "c");
    bad.max_messages = 0;
    assert!(matches!(broker.receive(bad).await, Err(Error::InvalidArgument { .. })));
    let mut bad = receive("g", "t", "c");
    bad.invisible = Duration::from_millis(10);
    assert!(matches!(broker.receive(bad).await, Err(Error::InvalidArgument { .. })));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn expired_lease_redelivers_with_reconsume_incremented() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let sent = broker.send("t", msg("slow")).await.unwrap();
    let mut req = receive("g", "t", "a");
    req.invisible = Duration::from_secs(1);
    let first = broker.receive(req.clone()).await.unwrap();
    assert_eq!(first[0].reconsume_times, 0);
    let mut again = receive("g", "t", "b");
    again.wait = Duration::from_secs(5);
    let started = Instant::now();
    let second = broker.receive(again).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(800), "not before the lease expired");
    assert_eq!(bodies(&second), ["slow"]);
    assert_eq!(second[0].msg_id, sent.msg_id, "same message id on redelivery");
    assert_eq!(second[0].reconsume_times, 1);
    assert_eq!(second[0].topic, "t");
    assert_eq!(broker.ack("g", first[0].receipt.as_ref().unwrap()).await.unwrap(), Err(ReceiptFailure::Expired));
    assert!(broker.ack("g", second[0].receipt.as_ref().unwrap()).await.unwrap().is_ok());
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn change_invisible_issues_a_new_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.send("t", msg("x")).await.unwrap();
    let got = broker.receive(receive("g", "t", "a")).await.unwrap();
    let old = got[0].receipt.clone().unwrap();
    let new = broker.change_invisible("g", &old, Duration::from_secs(60)).await.unwrap();
    assert_ne!(old, new);
    assert_eq!(broker.ack("g", &old).await.unwrap(), Err(ReceiptFailure::Unknown));
    assert!(broker.ack("g", &new).await.unwrap().is_ok());
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn filters_through_receive_and_pull() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("f", Some(2), None).unwrap();
    let with = |tag: &str, region: &str, price: &str| OutgoingMessage {
        tag: Some(tag.into()),
        properties: BTreeMap::from([("region".to_string(), region.to_string()), ("price".into(), price.into())]),
        body: format!("{tag}-{region}-{price}").into_bytes(),
        ..Default::default()
    };
    for (t, r, p) in [("A", "eu", "5"), ("B", "us", "15"), ("C", "eu", "25"), ("A", "us", "35")] {
        broker.send("f", with(t, r, p)).await.unwrap();
    }
    let cases: Vec<(FilterSpec, Vec<&str>)> = vec![
        (FilterSpec::Tag("*".into()), vec!["A-eu-5", "A-us-35", "B-us-15", "C-eu-25"]),
        (FilterSpec::Tag("A".into()), vec!["A-eu-5", "A-us-35"]),
        (FilterSpec::Tag("A || C".into()), vec!["A-eu-5", "A-us-35", "C-eu-25"]),
        (FilterSpec::Sql("region = 'eu'".into()), vec!["A-eu-5", "C-eu-25"]),
        (FilterSpec::Sql("price BETWEEN 10 AND 30".into()), vec!["B-us-15", "C-eu-25"]),
        (FilterSpec::Sql("region IN ('us') AND price > 20".into()), vec!["A-us-35"]),
        (FilterSpec::Sql("missing IS NULL AND NOT (region = 'eu')".into()), vec!["A-us-35", "B-us-15"]),
    ];
    for (i, (filter, expected)) in cases.into_iter().enumerate() {
        let mut req = receive(&format!("g{i}"), "f", "c");
        req.filter = filter.clone();
        let mut got = bodies(&drain(&broker, &req, expected.len(), Duration::from_secs(2)).await);
        got.sort();
        assert_eq!(got, expected, "{filter:?} via receive");
        let mut pulled = Vec::new();
        for q in 0..2 {
            let r = broker
                .pull(PullRequest {
                    group: format!("p{i}"),
                    topic: "f".into(),
                    queue_id: q,
                    offset: 0,
                    max: 32,
                    filter: filter.clone(),
                    wait: Duration::ZERO,
                })
                .await
                .unwrap();
            assert_eq!(r.next_offset, 2, "a pull moves past filtered-out messages too");
            pulled.extend(bodies(&r.messages));
        }
        pulled.sort();
        assert_eq!(pulled, expected, "{filter:?} via pull");
        let lag: u64 = broker.group(&format!("g{i}")).unwrap().offsets.iter().map(|o| o.lag).sum();
        assert_eq!(lag, 0, "filtered-out messages count as done");
    }
    for bad in ["a = ", "(a = 1", "a BETWEEN 1", "a IN ()", "'x"] {
        let mut req = receive("bad", "f", "c");
        req.filter = FilterSpec::Sql(bad.into());
        assert!(matches!(broker.receive(req).await, Err(Error::InvalidFilter { .. })), "{bad}");
    }
    let mut req = receive("bad", "f", "c");
    req.filter = FilterSpec::Tag("A ||".into());
    assert!(matches!(broker.receive(req).await, Err(Error::InvalidFilter { .. })));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn long_polling_wakes_on_send() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("lp", Some(1), None).unwrap();
    let b = broker.clone();
    let waiter = tokio::spawn(async move {
        let mut req = receive("g", "lp", "c");
        req.wait = Duration::from_secs(20);
        let started = Instant::now();
        let got = b.receive(req).await.unwrap();
        (got, started)
    });
    let puller = {
        let b = broker.clone();
        tokio::spawn(async move {
            b.pull(PullRequest {
                group: "p".into(),
                topic: "lp".into(),
                queue_id: 0,
                offset: 0,
                max: 10,
                filter: FilterSpec::default(),
                wait: Duration::from_secs(20),
            })
            .await
            .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_at = Instant::now();
    broker.send("lp", msg("wake")).await.unwrap();
    let (got, _) = waiter.await.unwrap();
    let woke_after = sent_at.elapsed();
    assert_eq!(bodies(&got), ["wake"]);
    assert!(woke_after < Duration::from_secs(5), "woke {woke_after:?} after the send, far under the 20 s deadline");
    let pulled = puller.await.unwrap();
    assert_eq!(bodies(&pulled.messages), ["wake"]);
    assert!(sent_at.elapsed() < Duration::from_secs(5));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn orderly_receive_never_skips_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("o", Some(1), None).unwrap();
    for i in 0..3 {
        broker.send("o", msg(&format!("{i}"))).await.unwrap();
    }
    let mut req = receive("g", "o", "c");
    req.orderly = true;
    req.max_messages = 1;
    let first = broker.receive(req.clone()).await.unwrap();
    assert_eq!(bodies(&first), ["0"]);
    assert!(broker.receive(req.clone()).await.unwrap().is_empty(), "nothing while 0 is in flight");
    broker.nack("g", first[0].receipt.as_ref().unwrap(), None).await.unwrap().unwrap();
    let mut waiting = req.clone();
    waiting.wait = Duration::from_secs(3);
    let retried = broker.receive(waiting).await.unwrap();
    assert_eq!(bodies(&retried), ["0"], "retried in place, not skipped");
    assert_eq!(retried[0].reconsume_times, 1);
    broker.ack("g", retried[0].receipt.as_ref().unwrap()).await.unwrap().unwrap();
    let rest = drain(&broker, &req, 2, Duration::from_secs(3)).await;
    assert_eq!(bodies(&rest), ["1", "2"]);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn core_rejects_out_of_range_delays_and_waits_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let sent = broker.send("t", msg("x")).await.unwrap();
    let got = broker.receive(receive("g", "t", "c")).await.unwrap();
    let receipt = got[0].receipt.clone().unwrap();
    for delay in [Duration::MAX, broker.config().max_delay + Duration::from_millis(1)] {
        assert!(matches!(broker.nack("g", &receipt, Some(delay)).await, Err(Error::InvalidArgument { .. })));
        assert!(matches!(
            broker.send_message_back("g", &got[0], Some(delay)).await,
            Err(Error::InvalidArgument { .. })
        ));
    }
    broker.ack("g", &receipt).await.unwrap().expect("still held after the refused nack");
    let pull = PullRequest {
        group: "g".into(),
        topic: "t".into(),
        queue_id: sent.queue_id.unwrap(),
        offset: 0,
        max: 1,
        filter: FilterSpec::default(),
        wait: Duration::from_secs(3600),
    };
    assert!(matches!(broker.pull(pull).await, Err(Error::InvalidArgument { .. })));
    for far in [Delay::Millis(u64::MAX), Delay::At(u64::MAX)] {
        let m = OutgoingMessage { delay: Some(far), ..msg("far") };
        assert!(matches!(broker.send("t", m).await, Err(Error::InvalidArgument { .. })), "{far:?}");
    }
    broker.shutdown().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut huge = config(dir.path());
    huge.max_delay = Duration::MAX;
    assert!(matches!(Broker::open(huge).await, Err(Error::InvalidArgument { .. })));
}

#[tokio::test]
async fn one_long_lease_does_not_stall_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_batch_messages = 1000;
    let broker = Broker::open(c).await.unwrap();
    broker.create_topic("hol", Some(1), None).unwrap();
    const N: usize = 4300;
    for chunk in 0..N / 100 {
        let batch = (0..100).map(|i| msg(&(chunk * 100 + i).to_string())).collect();
        broker.send_batch("hol", batch, None).await.unwrap();
    }
    // The first message is leased for hours and never acked.
    let mut slow = receive("g", "hol", "slow");
    slow.max_messages = 1;
    slow.invisible = Duration::from_secs(12 * 3600);
    let held = broker.receive(slow).await.unwrap();
    assert_eq!(bodies(&held), ["0"]);
    // Everything after it can still be received and acked, past committed + 4096.
    let mut fast = receive("g", "hol", "fast");
    fast.max_messages = 500;
    let mut got = 0;
    loop {
        let batch = broker.receive(fast.clone()).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for m in &batch {
            broker.ack("g", m.receipt.as_ref().unwrap()).await.unwrap().unwrap();
        }
        got += batch.len();
    }
    assert_eq!(got, N - 1, "every message behind the long lease is delivered");
    let offsets = broker.group("g").unwrap().offsets;
    assert_eq!(offsets[0].committed, 0, "committed stays at the leased message");
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn receives_and_pulls_return_at_most_max_receive_bytes_but_at_least_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_receive_bytes = 10_000;
    let broker = Broker::open(c).await.unwrap();
    broker.create_topic("big", Some(1), None).unwrap();
    let body = |n: usize, fill: char| OutgoingMessage { body: fill.to_string().repeat(n).into_bytes(), ..msg("") };
    for fill in ['a', 'b', 'c'] {
        broker.send("big", body(4_000, fill)).await.unwrap();
    }
    broker.send("big", body(30_000, 'd')).await.unwrap();
    let pull = |offset| PullRequest {
        group: "p".into(),
        topic: "big".into(),
        queue_id: 0,
        offset,
        max: 100,
        filter: FilterSpec::default(),
        wait: Duration::ZERO,
    };
    let first = broker.pull(pull(0)).await.unwrap();
    assert_eq!(first.messages.len(), 2, "8,000 bytes fit, 12,000 do not");
    assert_eq!(first.next_offset, 2, "the next pull starts at the message left out");
    let second = broker.pull(pull(2)).await.unwrap();
    assert_eq!(second.messages.len(), 1);
    let third = broker.pull(pull(3)).await.unwrap();
    assert_eq!(third.messages.len(), 1, "a message over the limit still comes, alone");

    let req = receive("g", "big", "c");
    let sizes = |ms: &[Message]| ms.iter().map(|m| m.body.len()).collect::<Vec<_>>();
    assert_eq!(sizes(&broker.receive(req.clone()).await.unwrap()), [4_000, 4_000]);
    assert_eq!(sizes(&broker.receive(req.clone()).await.unwrap()), [4_000]);
    assert_eq!(sizes(&broker.receive(req.clone()).await.unwrap()), [30_000]);
    assert!(broker.receive(req).await.unwrap().is_empty());
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receivers_of_one_queue_never_get_one_message_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_batch_messages = 1000;
    let broker = Broker::open(c).await.unwrap();
    broker.create_topic("one", Some(1), None).unwrap();
    for chunk in 0..4 {
        let batch = (0..500).map(|i| msg(&(chunk * 500 + i).to_string())).collect();
        broker.send_batch("one", batch, None).await.unwrap();
    }
    let tasks: Vec<_> = (0..4)
        .map(|c| {
            let broker = broker.clone();
            tokio::spawn(async move {
                let mut req = receive("g", "one", &format!("c{c}"));
                req.max_messages = 7;
                let mut got = Vec::new();
                loop {
                    let batch = broker.receive(req.clone()).await.unwrap();
                    if batch.is_empty() {
                        return got;
                    }
                    for m in batch {
                        broker.ack("g", m.receipt.as_ref().unwrap()).await.unwrap().unwrap();
                        got.push(m.msg_id);
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = all.iter().cloned().collect();
    assert_eq!(unique.len(), all.len(), "a message was handed out twice");
    assert_eq!(all.len(), 2000);
    assert_eq!(broker.group("g").unwrap().offsets[0].lag, 0);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn many_leases_expiring_together_all_come_back_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let batch = (0..50).map(|i| msg(&i.to_string())).collect();
    broker.send_batch("exp", batch, None).await.unwrap();
    let mut req = receive("g", "exp", "a");
    req.invisible = Duration::from_secs(1);
    assert_eq!(broker.receive(req).await.unwrap().len(), 50);
    let again = drain(&broker, &receive("g", "exp", "b"), 50, Duration::from_secs(10)).await;
    let mut bodies = bodies(&again);
    bodies.sort_by_key(|b| b.parse::<u32>().unwrap());
    assert_eq!(bodies, (0..50).map(|i| i.to_string()).collect::<Vec<_>>(), "each once");
    assert!(again.iter().all(|m| m.reconsume_times == 1));
    broker.shutdown().await.unwrap();
}

/// A receive that is dropped while it collects (a WebSocket subscription closed, an HTTP
/// long-poll whose client went away) gives back what it took: nothing waits out a lease for a
/// receiver that no longer exists.
#[tokio::test]
async fn a_receive_dropped_while_it_collects_gives_its_messages_back() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    for mode in [ConsumeMode::Clustering, ConsumeMode::Broadcasting] {
        let mut dropped_while_collecting = 0;
        for i in 0..10 {
            // A member that has not read yet collects on a blocking thread (one that read from
            // the log's recent tail reads on there, without a thread hand-off): a group and
            // topic of its own each round.
            let (group, topic) = (format!("g-{mode:?}-{i}"), format!("drop-{mode:?}-{i}"));
            broker.create_topic(&topic, Some(1), None).unwrap();
            let mut req = receive(&group, &topic, "c");
            req.mode = mode;
            // The group's subscription exists, so a receive's first step is the collect.
            assert!(broker.receive(req.clone()).await.unwrap().is_empty());
            broker.send(&topic, msg(&format!("m{i}"))).await.unwrap();
            let mut got = Vec::new();
            {
                let mut receiving = std::pin::pin!(broker.receive(req.clone()));
                // One poll starts the collect on a blocking thread; then the receive is dropped.
                // (A collect quick enough to finish within the poll hands its message out.)
                match futures::poll!(receiving.as_mut()) {
                    std::task::Poll::Pending => dropped_while_collecting += 1,
                    std::task::Poll::Ready(messages) => {
                        for m in messages.unwrap() {
                            broker.ack(&group, m.receipt.as_deref().unwrap()).await.unwrap().unwrap();
                            got.push(m);
                        }
                    }
                }
            }
            got.extend(drain(&broker, &req, 1 - got.len(), Duration::from_secs(5)).await);
            assert_eq!(bodies(&got), [format!("m{i}")], "{mode:?}, round {i}");
            let mut again = req.clone();
            again.wait = Duration::from_millis(50);
            assert!(broker.receive(again).await.unwrap().is_empty(), "{mode:?}, round {i}: once");
        }
        assert!(dropped_while_collecting > 0, "no receive was dropped while collecting ({mode:?})");
    }
    broker.shutdown().await.unwrap();
}

/// A group whose oldest message stays in flight (a long lease) while it consumes everything
/// after it lags by the whole backlog, but keeps no state per message it consumed: what is done
/// above the committed offset is kept as ranges, so a lag of ten million costs what a lag of
/// ten does.
#[tokio::test]
async fn a_group_lagging_behind_one_held_message_keeps_no_per_message_state() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("lag", Some(1), None).unwrap();
    // FERRYMQ_LAG_MESSAGES=1000000 (a multiple of 500) measures it at scale by hand; the resident
    // memory before and after the drain is printed (BENCHMARKS.md, "A lagging group's memory").
    let n: usize = std::env::var("FERRYMQ_LAG_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    const N_MIN: usize = 500;
    let n = n.max(N_MIN) / 500 * 500;
    for chunk in 0..n / 500 {
        let batch = (0..500).map(|i| msg(&format!("m{}", chunk * 500 + i))).collect();
        broker.send_batch("lag", batch, None).await.unwrap();
    }
    let mut req = receive("slow", "lag", "c");
    req.max_messages = 1;
    req.invisible = Duration::from_secs(3600);
    let held = broker.receive(req.clone()).await.unwrap();
    assert_eq!(bodies(&held), ["m0"]);
    req.max_messages = 1000;
    let (rss_before, anon_before) = (resident_kib("VmRSS:"), resident_kib("RssAnon:"));
    // Received and acked without keeping them, so that the memory printed is the broker's.
    let mut consumed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while consumed < n - 1 && tokio::time::Instant::now() < deadline {
        for m in broker.receive(req.clone()).await.unwrap() {
            broker.ack("slow", m.receipt.as_deref().unwrap()).await.unwrap().unwrap();
            consumed += 1;
        }
    }
    assert_eq!(consumed, n - 1);
    eprintln!(
        "lag {n}: resident {rss_before} -> {} KiB, of it anonymous (heap, not mapped files) {anon_before} -> {} KiB",
        resident_kib("VmRSS:"),
        resident_kib("RssAnon:")
    );
    let sizes = broker.table_sizes();
    assert!(sizes.done_above_committed <= 2, "{sizes:?}");
    assert_eq!(sizes.in_flight, 1, "{sizes:?}");
    let lag: u64 = broker.group("slow").unwrap().offsets.iter().map(|o| o.lag).sum();
    assert_eq!(lag, n as u64, "the held message keeps the committed offset at 0");
    // Once it is acked the committed offset jumps past everything done.
    broker.ack("slow", held[0].receipt.as_deref().unwrap()).await.unwrap().unwrap();
    let lag: u64 = broker.group("slow").unwrap().offsets.iter().map(|o| o.lag).sum();
    assert_eq!(lag, 0);
    assert_eq!(broker.table_sizes().done_above_committed, 0);
    broker.shutdown().await.unwrap();
}

/// A resident-memory line of /proc/self/status (`VmRSS:`, `RssAnon:`) in KiB; 0 without /proc.
fn resident_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
