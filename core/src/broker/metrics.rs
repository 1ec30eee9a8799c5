//! Broker counters for `/metrics`: messages and bytes in per topic, deliveries per topic and
//! group, discarded transactions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A snapshot of the broker's counters. Series exist (at 0) from the moment their topic or group
/// does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerMetrics {
    /// Messages published, per topic.
    pub messages_in: BTreeMap<String, u64>,
    /// Body bytes published, per topic.
    pub bytes_in: BTreeMap<String, u64>,
    /// Deliveries, per (topic, group).
    pub messages_out: BTreeMap<(String, String), u64>,
    /// Lag, per (group, topic).
    pub consumer_lag: BTreeMap<(String, String), u64>,
    /// Half messages discarded after the last check-back.
    pub transactions_discarded: u64,
    /// Transaction checks that reached no producer (nobody listening, or a listener that fell
    /// more than the check channel's 1,024 behind); the transaction is checked again later.
    pub transaction_checks_lost: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    inner: Mutex<BrokerMetrics>,
    pub(crate) transactions_discarded: AtomicU64,
    pub(crate) checks_lost: AtomicU64,
}

impl Counters {
    fn lock(&self) -> std::sync::MutexGuard<'_, BrokerMetrics> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn published(&self, topic: &str, messages: u64, bytes: u64) {
        let mut m = self.lock();
        *m.messages_in.entry(topic.to_string()).or_default() += messages;
        *m.bytes_in.entry(topic.to_string()).or_default() += bytes;
    }

    pub(crate) fn delivered(&self, topic: &str, group: &str, messages: u64) {
        *self.lock().messages_out.entry((topic.to_string(), group.to_string())).or_default() += messages;
    }

    pub(crate) fn snapshot(&self) -> BrokerMetrics {
        let mut m = self.lock().clone();
        m.transactions_discarded = self.transactions_discarded.load(Ordering::Relaxed);
        m.transaction_checks_lost = self.checks_lost.load(Ordering::Relaxed);
        m
    }
}
