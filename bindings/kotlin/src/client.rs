//! [`FfiClient`]: one connection to a broker, embedded or remote, and the factory of the
//! producers, consumers and admin.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferrymq_core::client::{
    BrokerConfig, Client, ConsumeMode, FilterSpec, PushConsumerOptions, RemoteOptions, StartPosition, Strategy,
};

use crate::admin::FfiAdmin;
use crate::consumer::{FfiPushConsumer, FfiSimpleConsumer};
use crate::deliveries::{Deliveries, CLIENT_BUFFER_PER_QUEUE, CLIENT_WORKERS};
use crate::error::FfiError;
use crate::message::{millis, unsigned};
use crate::producer::{FfiProducer, FfiTransactionChecker, FfiTransactionProducer};
use crate::runtime;

/// A connection to one broker.
#[derive(uniffi::Object)]
pub struct FfiClient {
    client: Client,
    /// The push consumers made here, closed first by [`FfiClient::shutdown`] (their queued
    /// messages answered, so that the client's close has no listener call to wait for).
    push_consumers: Mutex<Vec<Weak<FfiPushConsumer>>>,
}

impl FfiClient {
    fn new(client: Client) -> Self {
        FfiClient { client, push_consumers: Mutex::default() }
    }
}

/// Opens a broker in this process on the directory `path` (created if missing, recovered if
/// it holds data), with broker settings named as for `ferrymq serve --set`.
#[uniffi::export]
pub async fn ffi_embedded(path: String, config: HashMap<String, String>) -> Result<Arc<FfiClient>, FfiError> {
    let broker = broker_config(PathBuf::from(path), config)?;
    runtime::run(async move { Ok(Arc::new(FfiClient::new(Client::embedded_with(broker).await?))) }).await
}

/// Connects to a `ferrymq serve` gateway at `url`, with a bearer `token` when it has an
/// `auth_file`.
#[uniffi::export]
pub async fn ffi_connect(url: String, token: Option<String>) -> Result<Arc<FfiClient>, FfiError> {
    runtime::run(async move {
        let options = RemoteOptions { token, ..RemoteOptions::default() };
        Ok(Arc::new(FfiClient::new(Client::connect_with(&url, options).await?)))
    })
    .await
}

/// Panics on purpose (synchronously, or inside an asynchronous call), so that the SDK's tests
/// can show a Rust panic arrives in Kotlin as an exception and the JVM lives on.
#[uniffi::export]
pub async fn ffi_panic_for_tests(message: String) -> Result<(), FfiError> {
    runtime::run(async move { panic!("{message}") }).await
}

/// As [`ffi_panic_for_tests`], in a synchronous call.
#[uniffi::export]
pub fn ffi_panic_for_tests_blocking(message: String) {
    panic!("{message}")
}

/// The broker configuration for `path` with `config` applied.
fn broker_config(path: PathBuf, config: HashMap<String, String>) -> Result<BrokerConfig, FfiError> {
    crate::config::broker_config(path, config)
}

/// The filter of a consumer: a tag expression or SQL92, not both.
pub(crate) fn filter_spec(filter: Option<String>, sql: Option<String>) -> Result<FilterSpec, FfiError> {
    match (filter, sql) {
        (Some(_), Some(_)) => Err(FfiError::invalid("/sql", "give a tag filter or an SQL filter, not both")),
        (_, Some(sql)) => Ok(FilterSpec::Sql(sql)),
        (Some(tag), None) => Ok(FilterSpec::Tag(tag)),
        (None, None) => Ok(FilterSpec::default()),
    }
}

/// How a push consumer consumes; `None` fields keep the client's defaults.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiPushOptions {
    /// Tag expression (`*`, `TagA || TagB`).
    pub filter: Option<String>,
    /// SQL92 over properties, instead of a tag expression.
    pub sql: Option<String>,
    /// `clustering` or `broadcasting`.
    pub mode: String,
    /// One message at a time per queue, in order, under a broker lease.
    pub orderly: bool,
    /// `average`, `average_by_circle`, `consistent_hash` or `machine_room`.
    pub strategy: String,
    /// Where a queue the group never consumed starts: `first`, `last` or `timestamp`.
    pub start: String,
    /// The epoch-ms time for `start` = `timestamp`.
    pub start_timestamp: Option<i64>,
    /// Most messages handed out and not yet answered (listener calls at once, with a listener).
    pub consume_workers: Option<i32>,
    /// Rebalance period in ms (membership changes rebalance at once anyway).
    pub rebalance_interval_ms: Option<i64>,
    /// How long one pull waits for new messages, in ms.
    pub pull_wait_ms: Option<i64>,
}

fn push_options(options: FfiPushOptions) -> Result<PushConsumerOptions, FfiError> {
    let mut o = PushConsumerOptions {
        filter: filter_spec(options.filter, options.sql)?,
        mode: match options.mode.as_str() {
            "clustering" => ConsumeMode::Clustering,
            "broadcasting" => ConsumeMode::Broadcasting,
            other => return Err(FfiError::invalid("/mode", format!("{other:?} is not clustering or broadcasting"))),
        },
        orderly: options.orderly,
        strategy: Strategy::from_name(&options.strategy)?,
        start: match (options.start.as_str(), options.start_timestamp) {
            ("first", None) => StartPosition::First,
            ("last", None) => StartPosition::Last,
            ("timestamp", Some(ts)) => StartPosition::Timestamp(unsigned("/start_timestamp", ts)?),
            (other, _) => {
                return Err(FfiError::invalid(
                    "/start",
                    format!("{other:?} is not first, last, or timestamp with a start_timestamp"),
                ))
            }
        },
        ..PushConsumerOptions::default()
    };
    if let Some(workers) = options.consume_workers {
        o.consume_workers = usize::try_from(workers)
            .ok()
            .filter(|&w| w >= 1)
            .ok_or_else(|| FfiError::invalid("/consume_workers", "must be at least 1"))?;
    }
    if let Some(ms) = options.rebalance_interval_ms {
        o.rebalance_interval = millis("/rebalance_interval_ms", ms)?;
    }
    if let Some(ms) = options.pull_wait_ms {
        o.pull_wait = millis("/pull_wait_ms", ms)?;
    }
    Ok(o)
}

#[uniffi::export]
impl FfiClient {
    /// A producer, optionally in a producer group.
    pub fn producer(&self, group: Option<String>) -> Arc<FfiProducer> {
        Arc::new(FfiProducer::new(self.client.producer(group.as_deref())))
    }

    /// A transactional producer of `group`; `checker` answers the broker's check-backs.
    pub async fn transaction_producer(
        &self,
        group: String,
        checker: Box<dyn FfiTransactionChecker>,
    ) -> Result<Arc<FfiTransactionProducer>, FfiError> {
        let client = self.client.clone();
        runtime::run(async move {
            let checker = crate::producer::checker(checker);
            Ok(Arc::new(FfiTransactionProducer::new(client.transaction_producer(&group, checker).await?)))
        })
        .await
    }

    /// A push consumer of `topic` in `group`, whose messages are taken with `recv_batch` (a
    /// listener is run by the Kotlin side's threads): the client's listener is a batch
    /// listener that queues them (see [`Deliveries`]). Nothing happens until `start`.
    pub fn push_consumer(
        &self,
        group: String,
        topic: String,
        options: FfiPushOptions,
    ) -> Result<Arc<FfiPushConsumer>, FfiError> {
        let mut options = push_options(options)?;
        // The bound on messages handed out is the deliveries', not the client's workers
        // (see `crate::deliveries`).
        let deliveries = Arc::new(Deliveries::new(options.consume_workers));
        options.consume_workers = CLIENT_WORKERS;
        options.max_buffered_per_queue = CLIENT_BUFFER_PER_QUEUE.max(options.pull_batch);
        options.listener = Some(deliveries.listener());
        let consumer = runtime::enter(|| self.client.push_consumer(&group, &topic, options))?;
        let consumer = Arc::new(FfiPushConsumer::new(consumer, deliveries));
        let mut made = self.push_consumers.lock().unwrap_or_else(|e| e.into_inner());
        made.retain(|c| c.strong_count() > 0);
        made.push(Arc::downgrade(&consumer));
        Ok(consumer)
    }

    /// A lease-based consumer of `topic` in `group`, with a tag or SQL filter.
    pub fn simple_consumer(
        &self,
        group: String,
        topic: String,
        filter: Option<String>,
        sql: Option<String>,
    ) -> Result<Arc<FfiSimpleConsumer>, FfiError> {
        let filter = filter_spec(filter, sql)?;
        let consumer = runtime::enter(|| self.client.simple_consumer(&group, &topic, filter))?;
        Ok(Arc::new(FfiSimpleConsumer::new(consumer)))
    }

    /// Administration: topics, groups, offsets, dead letters, lookups.
    pub fn admin(&self) -> Arc<FfiAdmin> {
        Arc::new(FfiAdmin::new(self.client.admin()))
    }

    /// Closes the push consumers made by this client, then the connection (an embedded
    /// broker shuts down cleanly). Idempotent.
    pub async fn shutdown(&self) -> Result<(), FfiError> {
        let client = self.client.clone();
        let consumers: Vec<Arc<FfiPushConsumer>> =
            std::mem::take(&mut *self.push_consumers.lock().unwrap_or_else(|e| e.into_inner()))
                .iter()
                .filter_map(Weak::upgrade)
                .collect();
        runtime::run(async move {
            for consumer in consumers {
                if let Err(e) = consumer.shutdown().await {
                    tracing::warn!(error = %e, "closing a push consumer failed");
                }
            }
            Ok(client.close().await?)
        })
        .await
    }
}

/// A pause of `ms` milliseconds, if given.
pub(crate) fn opt_millis(field: &str, ms: Option<i64>) -> Result<Option<Duration>, FfiError> {
    ms.map(|ms| millis(field, ms)).transpose()
}
