//! Shared helpers for the broker's behaviour tests: a broker on a temporary directory with tiny
//! segments, millisecond delay levels and short timeouts.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ferrymq_core::broker::*;
use ferrymq_core::store::FlushMode;

/// Millisecond delay levels: level n waits n * 40 ms.
pub fn fast_levels() -> Vec<Duration> {
    (1..=18).map(|n| Duration::from_millis(40 * n)).collect()
}

/// A test configuration: small files, fast timers.
pub fn config(dir: &std::path::Path) -> BrokerConfig {
    let mut c = BrokerConfig::new(dir);
    c.store.segment_bytes = 256 * 1024;
    c.store.cq_units_per_file = 1024;
    c.store.flush = FlushMode::Async;
    c.store.flush_interval = Duration::from_millis(20);
    c.delay_levels = fast_levels();
    c.timer_precision = Duration::from_millis(10);
    c.transaction_timeout = Duration::from_millis(150);
    c.transaction_check_interval = Duration::from_millis(150);
    c.transaction_check_max = 3;
    c.lease_ttl = Duration::from_secs(2);
    c.orderly_suspend = Duration::from_millis(50);
    c
}

pub async fn open(dir: &std::path::Path) -> Arc<Broker> {
    Broker::open(config(dir)).await.expect("broker opens")
}

pub fn msg(body: &str) -> OutgoingMessage {
    OutgoingMessage { body: body.as_bytes().to_vec(), ..Default::default() }
}

pub fn tagged(body: &str, tag: &str) -> OutgoingMessage {
    OutgoingMessage { tag: Some(tag.to_string()), ..msg(body) }
}

pub fn receive(group: &str, topic: &str, client: &str) -> ReceiveRequest {
    ReceiveRequest {
        group: group.into(),
        topic: topic.into(),
        filter: FilterSpec::default(),
        max_messages: 100,
        wait: Duration::ZERO,
        invisible: Duration::from_secs(30),
        client_id: client.into(),
        transport: MemberTransport::Native,
        mode: ConsumeMode::Clustering,
        start: StartPosition::First,
        orderly: false,
    }
}

pub fn bodies(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

/// Receives (with a short long-poll) until `n` messages came or `timeout` passed; acks them.
pub async fn drain(broker: &Broker, req: &ReceiveRequest, n: usize, timeout: Duration) -> Vec<Message> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n && tokio::time::Instant::now() < deadline {
        let mut r = req.clone();
        r.wait = Duration::from_millis(200);
        for m in broker.receive(r).await.expect("receive") {
            let receipt = m.receipt.clone().expect("receipt");
            assert!(broker.ack(&req.group, &receipt).await.expect("ack parses").is_ok());
            out.push(m);
        }
    }
    out
}
