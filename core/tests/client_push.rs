//! Push consumers through the public client API on an embedded broker: members share a
//! topic without losing or repeating messages, a member that leaves hands its queues over,
//! failures come back through retry, and consumers without a listener are streams.

mod client_util;
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrymq_core::broker::{ConsumeMode, Message};
use ferrymq_core::client::{
    Listener, ListenerError, MessageBuilder, PushConsumer, PushConsumerOptions, Rebalance, RebalanceListener,
};
use ferrymq_core::Error;

use client_util::*;

async fn send_numbered(client: &ferrymq_core::client::Client, topic: &str, from: usize, to: usize) {
    let producer = client.producer(None);
    let batch: Vec<_> = (from..to).map(|i| format!("m{i}")).collect();
    for chunk in batch.chunks(50) {
        producer.send_batch(topic, chunk.iter().map(String::as_str)).await.expect("batch sent");
    }
}

fn expected(from: usize, to: usize) -> BTreeSet<String> {
    (from..to).map(|i| format!("m{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_a_topic_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("orders", 8).await.unwrap();
    let seen: Seen = Arc::default();
    let mut consumers = Vec::new();
    for name in ["a", "b", "c"] {
        let c = client.push_consumer("workers", "orders", fast().listener(recorder(name, &seen))).unwrap();
        c.start().await.unwrap();
        consumers.push(c);
    }
    let refs: Vec<&PushConsumer> = consumers.iter().collect();
    // 8 topic queues plus the group's retry queue.
    assert!(eventually(Duration::from_secs(5), || partitioned(&refs, 9)).await, "members never settled");

    send_numbered(&client, "orders", 0, 600).await;
    assert!(eventually(Duration::from_secs(10), || seen.lock().unwrap().len() >= 600).await, "not all consumed");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let got = bodies(&seen);
    assert_eq!(got.len(), 600, "a message was consumed twice");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected(0, 600));
    for name in ["a", "b", "c"] {
        assert!(seen.lock().unwrap().iter().any(|(n, _)| n == name), "{name} consumed nothing");
    }
    let group = client.admin().group("workers").await.unwrap();
    assert_eq!(group.members.len(), 3);
    for c in &consumers {
        c.close().await.unwrap();
    }
    let group = client.admin().group("workers").await.unwrap();
    assert!(group.members.is_empty(), "closed members leave at once");
    assert!(group.offsets.iter().all(|o| o.lag == 0), "offsets committed on close: {:?}", group.offsets);
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_member_hands_its_queues_over_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("jobs", 8).await.unwrap();
    let seen: Seen = Arc::default();
    let mut consumers = Vec::new();
    for name in ["a", "b", "c"] {
        let c = client.push_consumer("crew", "jobs", fast().listener(recorder(name, &seen))).unwrap();
        c.start().await.unwrap();
        consumers.push(c);
    }
    {
        let refs: Vec<&PushConsumer> = consumers.iter().collect();
        assert!(eventually(Duration::from_secs(5), || partitioned(&refs, 9)).await);
    }

    // Publish all along while member b leaves.
    let producer_client = client.clone();
    let publishing = tokio::spawn(async move {
        for round in 0..20 {
            send_numbered(&producer_client, "jobs", round * 20, round * 20 + 20).await;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let leaving = consumers.remove(1);
    let queues_of_b = leaving.assignment();
    let closed_at = Instant::now();
    leaving.close().await.unwrap();
    let refs: Vec<&PushConsumer> = consumers.iter().collect();
    assert!(eventually(Duration::from_secs(3), || partitioned(&refs, 9)).await, "queues did not move");
    let moved_after = closed_at.elapsed();
    assert!(moved_after < Duration::from_secs(3), "took {moved_after:?}");
    for q in &queues_of_b {
        assert!(refs.iter().any(|c| c.assignment().contains(q)), "{q:?} has no owner");
    }
    publishing.await.unwrap();

    assert!(eventually(Duration::from_secs(10), || seen.lock().unwrap().len() >= 400).await, "lost messages");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = bodies(&seen);
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), expected(0, 400), "nothing lost");
    assert_eq!(got.len(), 400, "a clean hand-over repeats nothing");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_comes_back_through_retry() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("flaky", 2).await.unwrap();
    let attempts: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let log = attempts.clone();
    let listener = Listener::new(move |m: Message| {
        let log = log.clone();
        async move {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            log.lock().unwrap().push((body.clone(), m.reconsume_times));
            if body == "bad" && m.reconsume_times < 2 {
                return Err(ListenerError::new("not yet"));
            }
            Ok(())
        }
    });
    let consumer = client.push_consumer("retrying", "flaky", fast().listener(listener)).unwrap();
    consumer.start().await.unwrap();
    let producer = client.producer(None);
    producer.send("flaky", "good").await.unwrap();
    let bad = producer.send("flaky", MessageBuilder::new("bad").tag("x")).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || attempts.lock().unwrap().len() >= 4).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = attempts.lock().unwrap().clone();
    let bad_tries: Vec<u32> = log.iter().filter(|(b, _)| b == "bad").map(|(_, r)| *r).collect();
    assert_eq!(bad_tries, [0, 1, 2], "redelivered with reconsume_times + 1 until it succeeds");
    assert_eq!(log.iter().filter(|(b, _)| b == "good").count(), 1);
    let again = client.admin().message(&bad.msg_id).await.unwrap();
    assert_eq!(again.topic, "flaky", "a retried message keeps its topic");
    consumer.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_failing_every_time_ends_in_the_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("doomed", 1).await.unwrap();
    client.admin().put_group("hopeless", Some(2)).await.unwrap();
    let tries = Arc::new(Mutex::new(0u32));
    let t = tries.clone();
    let listener = Listener::blocking(move |_m| {
        *t.lock().unwrap() += 1;
        Err(ListenerError::new("always"))
    });
    let consumer = client.push_consumer("hopeless", "doomed", fast().listener(listener)).unwrap();
    consumer.start().await.unwrap();
    let sent = client.producer(None).send("doomed", "poison").await.unwrap();
    let admin = client.admin();
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = admin.dlq("hopeless").await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead.len(), 1, "moved to the DLQ");
    assert_eq!(dead[0].msg_id, sent.msg_id);
    assert_eq!(*tries.lock().unwrap(), 3, "delivered max_reconsume_times + 1 times");
    consumer.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_listener_the_consumer_is_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("feed", 2).await.unwrap();
    let consumer = client.push_consumer("readers", "feed", fast()).unwrap();
    consumer.start().await.unwrap();
    let producer = client.producer(None);
    producer.send("feed", "one").await.unwrap();
    producer.send("feed", "two").await.unwrap();

    let mut got = BTreeSet::new();
    let mut nacked = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < 2 {
        let m = tokio::time::timeout_at(deadline, consumer.recv()).await.expect("in time").expect("open");
        let body = String::from_utf8_lossy(&m.body).into_owned();
        if body == "two" && !nacked {
            nacked = true;
            m.nack_after(Duration::from_millis(50));
            continue;
        }
        if body == "two" {
            assert_eq!(m.reconsume_times, 1, "a nacked message comes back counted");
        }
        got.insert(body);
        m.ack();
    }
    assert!(nacked);
    let closing = async {
        consumer.close().await.unwrap();
        consumer.recv().await.is_none()
    };
    assert!(closing.await, "the stream ends at close");
    let group = client.admin().group("readers").await.unwrap();
    assert!(group.offsets.iter().filter(|o| o.topic == "feed").all(|o| o.lag == 0), "{:?}", group.offsets);
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasting_gives_every_member_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("news", 4).await.unwrap();
    let seen: Seen = Arc::default();
    let mut consumers = Vec::new();
    for name in ["x", "y"] {
        let options = fast().mode(ConsumeMode::Broadcasting).listener(recorder(name, &seen));
        let c = client.push_consumer("everyone", "news", options).unwrap();
        c.start().await.unwrap();
        assert_eq!(c.assignment().len(), 4, "a broadcasting member reads every queue");
        consumers.push(c);
    }
    send_numbered(&client, "news", 0, 40).await;
    assert!(eventually(Duration::from_secs(5), || seen.lock().unwrap().len() >= 80).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 80);
    for name in ["x", "y"] {
        let mine: BTreeSet<String> = seen
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, m)| String::from_utf8_lossy(&m.body).into_owned())
            .collect();
        assert_eq!(mine, expected(0, 40), "{name} got them all");
    }
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_on_a_missing_topic_or_twice_fails() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    let c = client.push_consumer("g", "nowhere", PushConsumerOptions::default()).unwrap();
    assert!(matches!(c.start().await, Err(Error::NotFound { .. })));
    client.admin().create_topic("somewhere", 1).await.unwrap();
    let c = client.push_consumer("g", "somewhere", fast()).unwrap();
    c.start().await.unwrap();
    assert!(matches!(c.start().await, Err(Error::Conflict(_))));
    assert!(matches!(client.push_consumer("bad group!", "somewhere", fast()), Err(Error::InvalidArgument { .. })));
    assert!(matches!(
        client.push_consumer("g", "somewhere", fast().tag_filter("a ||")),
        Err(Error::InvalidFilter { .. })
    ));
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_vanishes_is_replaced_once_its_heartbeat_lapses() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("tickets", 4).await.unwrap();
    let seen: Seen = Arc::default();
    let stays = client.push_consumer("desk", "tickets", fast().listener(recorder("stays", &seen))).unwrap();
    stays.start().await.unwrap();
    let vanishes = client.push_consumer("desk", "tickets", fast().listener(recorder("vanishes", &seen))).unwrap();
    vanishes.start().await.unwrap();
    assert!(eventually(Duration::from_secs(5), || partitioned(&[&stays, &vanishes], 5)).await);

    // No close: heartbeats just stop, as when a process dies.
    drop(vanishes);
    send_numbered(&client, "tickets", 0, 100).await;
    // lease_ttl is 2 s in the test configuration.
    assert!(eventually(Duration::from_secs(5), || stays.assignment().len() == 5).await, "queues never moved");
    assert!(eventually(Duration::from_secs(5), || seen.lock().unwrap().len() >= 100).await, "lost messages");
    let got: BTreeSet<String> = bodies(&seen).into_iter().collect();
    assert_eq!(got, expected(0, 100));
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_apply_and_start_last_skips_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("mixed", 2).await.unwrap();
    let producer = client.producer(None);
    producer.send("mixed", MessageBuilder::new("old-a").tag("a")).await.unwrap();
    producer.send("mixed", MessageBuilder::new("old-b").tag("b").property("n", "5")).await.unwrap();

    let tags: Seen = Arc::default();
    let by_tag =
        client.push_consumer("tagged", "mixed", fast().tag_filter("b").listener(recorder("t", &tags))).unwrap();
    by_tag.start().await.unwrap();
    let sql: Seen = Arc::default();
    let by_sql =
        client.push_consumer("queried", "mixed", fast().sql_filter("n > 3").listener(recorder("s", &sql))).unwrap();
    by_sql.start().await.unwrap();
    let late: Seen = Arc::default();
    let options = fast().start(ferrymq_core::broker::StartPosition::Last).listener(recorder("l", &late));
    let from_now = client.push_consumer("latecomers", "mixed", options).unwrap();
    from_now.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    producer.send("mixed", MessageBuilder::new("new-a").tag("a").property("n", "1")).await.unwrap();

    assert!(eventually(Duration::from_secs(3), || !late.lock().unwrap().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bodies(&tags), ["old-b"]);
    assert_eq!(bodies(&sql), ["old-b"]);
    assert_eq!(bodies(&late), ["new-a"], "start last skips what was there");
    client.close().await.unwrap();
}

// On one thread the first member's background task first runs after the second has joined.
#[tokio::test]
async fn members_started_back_to_back_share_the_queues_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // The default lease (30 s): members heartbeat every 10 s, so only a membership change
    // makes them rebalance within the test's seconds.
    let mut config = support::config(dir.path());
    config.lease_ttl = ferrymq_core::broker::BrokerConfig::new(dir.path()).lease_ttl;
    let client = ferrymq_core::client::Client::embedded_with(config).await.unwrap();
    for round in 0..3 {
        let topic = format!("joined-{round}");
        client.admin().create_topic(&topic, 4).await.unwrap();
        // Default timings: a rebalance on the timer would come 20 s later.
        let options = || PushConsumerOptions { listener: None, ..PushConsumerOptions::default() };
        let a = client.push_consumer("joiners", &topic, options()).unwrap();
        let b = client.push_consumer("joiners", &topic, options()).unwrap();
        a.start().await.unwrap();
        b.start().await.unwrap();
        let disjoint = || {
            let (qa, qb): (BTreeSet<ferrymq_core::client::QueueRef>, BTreeSet<_>) =
                (a.assignment().into_iter().collect(), b.assignment().into_iter().collect());
            qa.is_disjoint(&qb) && qa.len() + qb.len() >= 4
        };
        assert!(
            eventually(Duration::from_secs(3), disjoint).await,
            "round {round}: {:?} / {:?}",
            a.assignment(),
            b.assignment()
        );
        a.close().await.unwrap();
        b.close().await.unwrap();
    }
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_commits_and_a_restart_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let client = client(dir.path()).await;
        client.admin().create_topic("durable", 4).await.unwrap();
        send_numbered(&client, "durable", 0, 50).await;
        let seen: Seen = Arc::default();
        let c = client.push_consumer("keepers", "durable", fast().listener(recorder("first", &seen))).unwrap();
        c.start().await.unwrap();
        assert!(eventually(Duration::from_secs(5), || seen.lock().unwrap().len() >= 50).await);
        // Only the client is closed: it closes its consumers, which commit.
        client.close().await.unwrap();
    }
    let client = client(dir.path()).await;
    send_numbered(&client, "durable", 50, 60).await;
    let seen: Seen = Arc::default();
    let c = client.push_consumer("keepers", "durable", fast().listener(recorder("second", &seen))).unwrap();
    c.start().await.unwrap();
    assert!(eventually(Duration::from_secs(5), || seen.lock().unwrap().len() >= 10).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got: BTreeSet<String> = bodies(&seen).into_iter().collect();
    assert_eq!(got, expected(50, 60), "only what came after the restart");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_listener_stops_the_pulling_at_the_buffer_bound() {
    let dir = tempfile::tempdir().unwrap();
    let broker = ferrymq_core::broker::Broker::open(support::config(dir.path())).await.unwrap();
    let client = ferrymq_core::client::Client::with_transport(Arc::new(ferrymq_core::client::EmbeddedTransport::new(
        broker.clone(),
    )));
    client.admin().create_topic("backlog", 1).await.unwrap();
    send_numbered(&client, "backlog", 0, 300).await;

    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let done = Arc::new(Mutex::new(0usize));
    let (g, d) = (gate.clone(), done.clone());
    let listener = Listener::new(move |_m: Message| {
        let (g, d) = (g.clone(), d.clone());
        async move {
            g.acquire().await.map_err(|e| ListenerError::new(e.to_string()))?.forget();
            *d.lock().unwrap() += 1;
            Ok(())
        }
    });
    let options = PushConsumerOptions { pull_batch: 10, max_buffered_per_queue: 25, ..fast() }.listener(listener);
    let consumer = client.push_consumer("slow", "backlog", options).unwrap();
    consumer.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = |b: &ferrymq_core::broker::Broker| {
        b.metrics().messages_out.get(&("backlog".to_string(), "slow".to_string())).copied().unwrap_or(0)
    };
    let pulled = delivered(&broker);
    assert!(pulled > 0 && pulled <= 25, "pulled {pulled} with 25 buffered at most");

    gate.add_permits(300);
    assert!(eventually(Duration::from_secs(10), || *done.lock().unwrap() >= 300).await, "drains once released");
    assert_eq!(delivered(&broker), 300, "each pulled once");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_listener_fails_the_message_and_consumption_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("fragile", 1).await.unwrap();
    let seen: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let s = seen.clone();
    let listener = Listener::new(move |m: Message| {
        let s = s.clone();
        async move {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            s.lock().unwrap().push((body.clone(), m.reconsume_times));
            assert!(body != "boom" || m.reconsume_times > 0, "listener bug on first delivery");
            Ok(())
        }
    });
    let consumer = client.push_consumer("careful", "fragile", fast().listener(listener)).unwrap();
    consumer.start().await.unwrap();
    let producer = client.producer(None);
    producer.send("fragile", "boom").await.unwrap();
    producer.send("fragile", "fine").await.unwrap();
    assert!(eventually(Duration::from_secs(5), || seen.lock().unwrap().len() >= 3).await);
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, [("boom".to_string(), 0), ("boom".to_string(), 1), ("fine".to_string(), 0)]);
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rebalance_listener_is_told_of_every_queue_gained_and_lost() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("moves", 4).await.unwrap();
    // What member a was told, replayed: the queues it holds according to its listener.
    let changes: Arc<Mutex<Vec<Rebalance>>> = Arc::default();
    let record = changes.clone();
    let options =
        fast().on_rebalance(RebalanceListener::new(move |c: &Rebalance| record.lock().unwrap().push(c.clone())));
    let a = client.push_consumer("movers", "moves", options).unwrap();
    a.start().await.unwrap();
    let held = |changes: &Arc<Mutex<Vec<Rebalance>>>| {
        let mut held = BTreeSet::new();
        for c in changes.lock().unwrap().iter() {
            for q in &c.revoked {
                assert!(held.remove(q), "{q:?} revoked but never assigned");
            }
            for q in &c.assigned {
                assert!(held.insert(q.clone()), "{q:?} assigned twice");
            }
        }
        held
    };
    // Alone: 4 queues and the retry queue.
    assert!(eventually(Duration::from_secs(5), || held(&changes).len() == 5).await);
    assert_eq!(held(&changes), a.assignment().into_iter().collect());

    let b = client.push_consumer("movers", "moves", fast()).unwrap();
    b.start().await.unwrap();
    assert!(eventually(Duration::from_secs(5), || partitioned(&[&a, &b], 5)).await);
    assert!(eventually(Duration::from_secs(5), || held(&changes) == a.assignment().into_iter().collect()).await);
    assert!(changes.lock().unwrap().iter().any(|c| !c.revoked.is_empty()), "b's share was revoked from a");

    a.close().await.unwrap();
    assert!(held(&changes).is_empty(), "close revokes every queue");
    b.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_listener_gets_several_messages_per_call_within_the_workers_and_retries_failures_alone() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("bulk", 2).await.unwrap();
    send_numbered(&client, "bulk", 0, 200).await;
    // Each call's messages: (body, reconsume_times).
    type Calls = Arc<Mutex<Vec<Vec<(String, u32)>>>>;
    let calls: Calls = Arc::default();
    let log = calls.clone();
    let listener = Listener::batch(move |messages: &[Message]| {
        let batch: Vec<(String, u32)> =
            messages.iter().map(|m| (String::from_utf8_lossy(&m.body).into_owned(), m.reconsume_times)).collect();
        log.lock().unwrap().push(batch.clone());
        async move {
            batch
                .iter()
                .map(
                    |(body, reconsumed)| {
                        if body == "m7" && *reconsumed == 0 {
                            Err(ListenerError::new("once"))
                        } else {
                            Ok(())
                        }
                    },
                )
                .collect()
        }
    });
    let consumer = client.push_consumer("bulkers", "bulk", fast().consume_workers(8).listener(listener)).unwrap();
    consumer.start().await.unwrap();
    let done = || {
        let calls = calls.lock().unwrap();
        calls.iter().flatten().filter(|(b, r)| b != "m7" || *r == 1).count() >= 200
    };
    assert!(eventually(Duration::from_secs(10), done).await, "not all consumed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    consumer.close().await.unwrap();

    let calls = calls.lock().unwrap().clone();
    assert!(calls.iter().all(|c| !c.is_empty() && c.len() <= 8), "each call within the workers: {calls:?}");
    assert!(calls.iter().any(|c| c.len() > 1), "some call had several messages");
    let all: Vec<&(String, u32)> = calls.iter().flatten().collect();
    let firsts: BTreeSet<String> = all.iter().filter(|(_, r)| *r == 0).map(|(b, _)| b.clone()).collect();
    assert_eq!(firsts, expected(0, 200));
    assert_eq!(all.len(), 201, "each message once, the failed one once more");
    let retried: Vec<&&(String, u32)> = all.iter().filter(|(_, r)| *r > 0).collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].0, "m7", "the failed message came back alone, counted");
    assert!(calls.iter().any(|c| c == &vec![("m7".to_string(), 1)]), "retried in a call of its own");
    let group = client.admin().group("bulkers").await.unwrap();
    assert!(group.offsets.iter().filter(|o| o.topic == "bulk").all(|o| o.lag == 0), "{:?}", group.offsets);
    client.close().await.unwrap();
}

/// With a backlog, many pulled batches wait for workers at once; a call must still carry as
/// many messages as there are free workers, not one each (handing each freed worker to
/// another waiting batch made nearly every call a call of one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_listener_under_a_backlog_gets_calls_as_wide_as_the_free_workers() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("backlog", 4).await.unwrap();
    send_numbered(&client, "backlog", 0, 2000).await;
    let sizes: Arc<Mutex<Vec<usize>>> = Arc::default();
    let log = sizes.clone();
    let listener = Listener::batch(move |messages: &[Message]| {
        log.lock().unwrap().push(messages.len());
        let n = messages.len();
        async move {
            tokio::task::yield_now().await;
            (0..n).map(|_| Ok(())).collect()
        }
    });
    let consumer = client.push_consumer("wide", "backlog", fast().consume_workers(4).listener(listener)).unwrap();
    consumer.start().await.unwrap();
    let total = || sizes.lock().unwrap().iter().sum::<usize>() >= 2000;
    assert!(eventually(Duration::from_secs(20), total).await, "not all consumed");
    consumer.close().await.unwrap();
    let sizes = sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), 2000, "each message once");
    assert!(sizes.iter().all(|&n| (1..=4).contains(&n)), "within the workers");
    assert!(sizes.len() * 2 <= 2000, "{} calls for 2000 messages: calls of one", sizes.len());
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_a_batch_listener_did_not_start_stay_for_the_next_owner() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path()).await;
    client.admin().create_topic("kept", 1).await.unwrap();
    send_numbered(&client, "kept", 0, 10).await;
    let closing = Arc::new(tokio::sync::Notify::new());
    let first_call: Arc<Mutex<Vec<String>>> = Arc::default();
    let (log, wait) = (first_call.clone(), closing.clone());
    // Consumes the first message of each call; the rest it "never started" once closing.
    let listener = Listener::batch(move |messages: &[Message]| {
        let bodies: Vec<String> = messages.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect();
        log.lock().unwrap().extend(bodies.iter().take(1).cloned());
        let wait = wait.clone();
        async move {
            wait.notified().await;
            let n = bodies.len();
            std::iter::once(Ok(())).chain((1..n).map(|_| Err(ListenerError::not_started()))).collect()
        }
    });
    let consumer = client.push_consumer("keepers", "kept", fast().listener(listener)).unwrap();
    consumer.start().await.unwrap();
    assert!(eventually(Duration::from_secs(5), || !first_call.lock().unwrap().is_empty()).await);
    let closed = tokio::spawn(async move { consumer.close().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    closing.notify_waiters();
    closed.await.unwrap().unwrap();

    let consumed = first_call.lock().unwrap().clone();
    assert_eq!(consumed, ["m0"], "one call, of every message, its first consumed");
    let seen: Seen = Arc::default();
    let next = client.push_consumer("keepers", "kept", fast().listener(recorder("next", &seen))).unwrap();
    next.start().await.unwrap();
    assert!(eventually(Duration::from_secs(5), || seen.lock().unwrap().len() >= 9).await, "the rest came back");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut rest: Vec<(String, u32)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| (String::from_utf8_lossy(&m.body).into_owned(), m.reconsume_times))
        .collect();
    rest.sort();
    let expected_rest: Vec<(String, u32)> = (1..10).map(|i| (format!("m{i}"), 0)).collect();
    assert_eq!(rest, expected_rest, "each once, none counted as failed, m0 not again");
    next.close().await.unwrap();
    client.close().await.unwrap();
}
