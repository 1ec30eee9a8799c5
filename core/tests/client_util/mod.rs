//! Helpers shared by the client's behaviour tests: an embedded client on the broker test
//! configuration (tiny files, millisecond delays, 2 s leases), fast consumer options, and
//! waiting for a condition.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrymq_core::broker::Message;
use ferrymq_core::client::{Client, Listener, PushConsumer, PushConsumerOptions, QueueRef};

/// An embedded client on `support::config(dir)`.
pub async fn client(dir: &std::path::Path) -> Client {
    Client::embedded_with(crate::support::config(dir)).await.expect("embedded client opens")
}

/// Consumer options for tests: quick rebalances, commits and pulls.
pub fn fast() -> PushConsumerOptions {
    PushConsumerOptions {
        rebalance_interval: Duration::from_secs(1),
        pull_wait: Duration::from_millis(300),
        commit_interval: Duration::from_millis(100),
        close_timeout: Duration::from_secs(5),
        ..PushConsumerOptions::default()
    }
}

/// What a recording listener saw: (consumer name, message), in processing order.
pub type Seen = Arc<Mutex<Vec<(String, Message)>>>;

/// A listener that records every message it is given under `name` and acks it.
pub fn recorder(name: &str, seen: &Seen) -> Listener {
    let name = name.to_string();
    let seen = seen.clone();
    Listener::new(move |m: Message| {
        let seen = seen.clone();
        let name = name.clone();
        async move {
            seen.lock().unwrap().push((name, m));
            Ok(())
        }
    })
}

pub fn bodies(seen: &Seen) -> Vec<String> {
    seen.lock().unwrap().iter().map(|(_, m)| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

/// Polls `f` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the consumers' assignments are disjoint, none empty, and cover `total` queues.
pub fn partitioned(consumers: &[&PushConsumer], total: usize) -> bool {
    let mut all = BTreeSet::<QueueRef>::new();
    let mut count = 0;
    for c in consumers {
        let a = c.assignment();
        if a.is_empty() {
            return false;
        }
        count += a.len();
        all.extend(a);
    }
    count == total && all.len() == total
}

/// After [`Client::close`], every operation of the client and of what it made fails with
/// [`ferrymq_core::Error::Connection`]: nothing is leased, published or read from a closed
/// client. `topic` exists and holds a message.
pub async fn everything_fails_once_closed(client: &Client, topic: &str) {
    use ferrymq_core::broker::{FilterSpec, ResetTarget};
    use ferrymq_core::client::{FindQuery, DEFAULT_INVISIBLE};
    use ferrymq_core::Error;

    let admin = client.admin();
    let producer = client.producer(None);
    let consumer = client.simple_consumer("after-close", topic, FilterSpec::default()).unwrap();
    client.close().await.unwrap();
    let closed = |what: &str, r: Result<(), Error>| {
        assert!(matches!(r, Err(Error::Connection(_))), "{what} after close: {r:?}");
    };
    closed("send", producer.send(topic, "late").await.map(drop));
    closed("send_batch", producer.send_batch(topic, ["late"]).await.map(drop));
    closed("a new producer's send", client.producer(None).send(topic, "late").await.map(drop));
    closed("receive", consumer.receive(16, Duration::ZERO, DEFAULT_INVISIBLE).await.map(drop));
    closed("topics", admin.topics().await.map(drop));
    closed("topic", admin.topic(topic).await.map(drop));
    closed("create_topic", admin.create_topic("made-after-close", 1).await.map(drop));
    closed("group", admin.group("after-close").await.map(drop));
    closed("reset_offsets", admin.reset_offsets("after-close", topic, ResetTarget::Earliest).await.map(drop));
    closed("dlq", admin.dlq("after-close").await.map(drop));
    closed("find_messages", admin.find_messages(topic, FindQuery::default()).await.map(drop));
    closed("message", admin.message("00000000000000000000000000000000").await.map(drop));
    // Closing again is harmless.
    client.close().await.unwrap();
}
