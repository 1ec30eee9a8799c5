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
