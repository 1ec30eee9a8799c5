//! Broker configuration: the store's settings plus the broker's own.
//!
//! The defaults and bounds of the configuration keys are in the table of
//! [`crate::config`]; this file only names the fields.

use std::path::PathBuf;
use std::time::Duration;

use crate::config as keys;
use crate::store::StoreConfig;

/// The 18 default delay levels: `1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h`
/// (the default of the `delay_levels` key).
pub fn default_delay_levels() -> Vec<Duration> {
    keys::DELAY_LEVELS.default()
}

/// Everything a [`Broker`](super::Broker) needs to open.
#[derive(Clone, Debug, PartialEq)]
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
    /// Production defaults for a broker in `dir`: each key's default from [`crate::config`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BrokerConfig {
            store: StoreConfig::new(dir),
            broker_name: "broker-a".to_string(),
            delay_levels: keys::DELAY_LEVELS.default(),
            max_delay: keys::MAX_DELAY.default(),
            timer_precision: keys::TIMER_PRECISION.default(),
            max_reconsume_times: keys::MAX_RECONSUME_TIMES.default(),
            transaction_timeout: keys::TRANSACTION_TIMEOUT.default(),
            transaction_check_interval: keys::TRANSACTION_CHECK_INTERVAL.default(),
            transaction_check_max: keys::TRANSACTION_CHECK_MAX.default(),
            lease_ttl: keys::LEASE_TTL.default(),
            orderly_suspend: keys::ORDERLY_SUSPEND.default(),
            auto_create_topics: keys::AUTO_CREATE_TOPICS.default(),
            default_queues: keys::DEFAULT_QUEUES.default(),
            max_batch_messages: keys::MAX_BATCH_MESSAGES.default(),
            max_batch_bytes: keys::MAX_BATCH_BYTES.default(),
            dedup_window: keys::DEDUP_WINDOW.default(),
            max_receive_bytes: keys::MAX_RECEIVE_BYTES.default(),
        }
    }
}
