//! Broker configuration: the store's settings plus the broker's own.

use std::path::PathBuf;
use std::time::Duration;

use crate::store::StoreConfig;

/// The 18 default delay levels: `1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h`.
pub fn default_delay_levels() -> Vec<Duration> {
    [1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

/// Everything a [`Broker`](super::Broker) needs to open.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Storage engine settings (its `dir` is the broker's data directory).
    pub store: StoreConfig,
    /// Broker name: one broker of a future cluster; part of every message id.
    pub broker_name: String,
    /// Delay levels, level 1 first.
    pub delay_levels: Vec<Duration>,
    /// Furthest ahead a `deliver_at`/`delay_ms` may be.
    pub max_delay: Duration,
    /// Timers round up to this; never early.
    pub timer_precision: Duration,
    /// Default for groups: deliveries after the first before a message goes to the DLQ.
    pub max_reconsume_times: u32,
    /// Half messages older than this are checked back.
    pub transaction_timeout: Duration,
    /// How often unresolved half messages are checked back.
    pub transaction_check_interval: Duration,
    /// Checks after which a half message is discarded.
    pub transaction_check_max: u32,
    /// Expiry of members and orderly queue leases.
    pub lease_ttl: Duration,
    /// How long an orderly queue is suspended after a failure.
    pub orderly_suspend: Duration,
    /// Create topics on first publish.
    pub auto_create_topics: bool,
    /// Queue count of auto-created topics and of creates that do not say.
    pub default_queues: u32,
    /// Most messages in one batch.
    pub max_batch_messages: usize,
    /// Most body bytes in one batch.
    pub max_batch_bytes: usize,
    /// How long an idempotency key is remembered.
    pub dedup_window: Duration,
    /// Most body bytes one receive or pull returns (it always returns at least one message).
    pub max_receive_bytes: usize,
}

impl BrokerConfig {
    /// Production defaults for a broker in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BrokerConfig {
            store: StoreConfig::new(dir),
            broker_name: "broker-a".to_string(),
            delay_levels: default_delay_levels(),
            max_delay: Duration::from_secs(3 * 24 * 3600),
            timer_precision: Duration::from_secs(1),
            max_reconsume_times: 16,
            transaction_timeout: Duration::from_secs(6),
            transaction_check_interval: Duration::from_secs(30),
            transaction_check_max: 15,
            lease_ttl: Duration::from_secs(30),
            orderly_suspend: Duration::from_secs(1),
            auto_create_topics: true,
            default_queues: 8,
            max_batch_messages: 1000,
            max_batch_bytes: 16 << 20,
            dedup_window: Duration::from_secs(600),
            max_receive_bytes: 8 << 20,
        }
    }
}
