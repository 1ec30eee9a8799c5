//! [`Client`]: one connection to a broker, embedded or remote, and the factory of producers,
//! consumers and the admin.
//!
//! Everything made from a client holds its [`ClientCell`], so a client stays open while any of
//! them is alive. A client that Python collects without `close()` is closed in the background;
//! `ferrymq` closes the ones still open when the interpreter exits, so that consumers commit
//! their offsets and an embedded broker shuts down cleanly.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferrymq_core::client::{BrokerTimings, Client as CoreClient, PushConsumerOptions, RemoteOptions, Strategy};
use ferrymq_core::client::{ConsumeMode, FilterSpec, StartPosition};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString};

use crate::admin::Admin;
use crate::config::broker_config;
use crate::connection_hooks::connection_listener;
use crate::consumer::{PushConsumer, SimpleConsumer};
use crate::errors::{invalid, raise, Outcome};
use crate::listener_threads::ListenerThreads;
use crate::message::{millis, type_name};
use crate::producer::{Producer, PyChecker, TransactionProducer};
use crate::rebalance_hooks::RebalanceHooks;
use crate::runtime;

/// The shared state of a client and everything made from it.
pub struct ClientCell {
    /// The Rust client.
    pub client: CoreClient,
    closed: std::sync::atomic::AtomicBool,
    /// Listener threads of the push consumers made here, stopped when the client is closed.
    pub dispatchers: Mutex<Vec<Weak<ListenerThreads>>>,
}

impl ClientCell {
    fn new(client: CoreClient) -> Arc<ClientCell> {
        let cell = Arc::new(ClientCell { client, closed: Default::default(), dispatchers: Mutex::default() });
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|c| c.strong_count() > 0);
        open.push(Arc::downgrade(&cell));
        cell
    }

    /// Closes the client; with `stop_listeners`, also stops the listener threads of its push
    /// consumers and waits for them (not at interpreter exit: see `dispatcher.rs`).
    async fn close(&self, stop_listeners: bool) -> Outcome<()> {
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        let closed = self.client.close().await;
        let dispatchers = std::mem::take(&mut *self.dispatchers.lock().unwrap_or_else(|e| e.into_inner()));
        if stop_listeners {
            for dispatcher in dispatchers.iter().filter_map(Weak::upgrade) {
                dispatcher.stop_and_join().await;
            }
        }
        Ok(closed?)
    }
}

impl Drop for ClientCell {
    fn drop(&mut self) {
        if !self.closed.load(std::sync::atomic::Ordering::Acquire) {
            let client = self.client.clone();
            runtime::handle().spawn(async move {
                if let Err(e) = client.close().await {
                    tracing::warn!(error = %e, "closing a dropped client failed");
                }
            });
        }
    }
}

/// Every client not yet dropped, for [`close_all`].
static OPEN: Mutex<Vec<Weak<ClientCell>>> = Mutex::new(Vec::new());

/// Closes every client still open, each within `timeout_ms`, then stops the runtime's calls
/// into Python: the package registers it to run at interpreter exit (not to be called before).
#[pyfunction(name = "_at_exit")]
#[pyo3(signature = (timeout_ms=10_000))]
pub fn at_exit(py: Python<'_>, timeout_ms: u64) {
    let open: Vec<Arc<ClientCell>> =
        OPEN.lock().unwrap_or_else(|e| e.into_inner()).drain(..).filter_map(|c| c.upgrade()).collect();
    let _ = runtime::block_on(py, async move {
        for cell in open {
            let _ = tokio::time::timeout(Duration::from_millis(timeout_ms), cell.close(false)).await;
        }
        Ok(())
    });
    runtime::quiesce(py, Duration::from_millis(timeout_ms));
}

/// A connection to one broker: `Client.embedded(path)` runs a broker in this process on a
/// local directory; `Client.connect(url)` talks to a running `ferrymq serve`.
///
/// Use it as a context manager, or call `close()`: that closes its push consumers (committing
/// their offsets), then the connection (an embedded broker shuts down cleanly).
#[pyclass(frozen, module = "ferrymq._native")]
pub struct Client {
    cell: Arc<ClientCell>,
}

/// The connection settings of `Client.connect` (its keyword arguments).
struct ConnectArgs {
    token: Option<String>,
    ca_file: Option<std::path::PathBuf>,
    request_timeout_ms: i64,
    lease_ttl_ms: Option<i64>,
    orderly_suspend_ms: Option<i64>,
    max_reconsume_times: Option<u32>,
    reconnect_backoff_ms: i64,
    reconnect_backoff_max_ms: i64,
    on_connection: Option<Py<PyAny>>,
}

fn remote_options(args: ConnectArgs) -> Outcome<RemoteOptions> {
    let defaults = BrokerTimings::default();
    let timings = BrokerTimings {
        lease_ttl: args.lease_ttl_ms.map(|v| millis("/lease_ttl_ms", v)).transpose()?.unwrap_or(defaults.lease_ttl),
        orderly_suspend: args
            .orderly_suspend_ms
            .map(|v| millis("/orderly_suspend_ms", v))
            .transpose()?
            .unwrap_or(defaults.orderly_suspend),
        max_reconsume_times: args.max_reconsume_times.unwrap_or(defaults.max_reconsume_times),
    };
    if timings.lease_ttl.is_zero() {
        return Err(invalid("/lease_ttl_ms", "must be positive"));
    }
    let request_timeout = millis("/request_timeout_ms", args.request_timeout_ms)?;
    if request_timeout.is_zero() {
        return Err(invalid("/request_timeout_ms", "must be positive"));
    }
    let reconnect_backoff = millis("/reconnect_backoff_ms", args.reconnect_backoff_ms)?;
    if reconnect_backoff.is_zero() {
        return Err(invalid("/reconnect_backoff_ms", "must be positive"));
    }
    let reconnect_backoff_max = millis("/reconnect_backoff_max_ms", args.reconnect_backoff_max_ms)?;
    if reconnect_backoff_max < reconnect_backoff {
        return Err(invalid("/reconnect_backoff_max_ms", "must be at least reconnect_backoff_ms"));
    }
    Ok(RemoteOptions {
        token: args.token,
        request_timeout,
        timings,
        ca_file: args.ca_file,
        reconnect_backoff,
        reconnect_backoff_max,
        on_connection: args.on_connection.map(connection_listener),
    })
}

async fn connect(url: String, options: Outcome<RemoteOptions>) -> Outcome<Client> {
    let client = CoreClient::connect_with(&url, options?).await?;
    Ok(Client { cell: ClientCell::new(client) })
}

async fn embedded(config: Outcome<ferrymq_core::client::BrokerConfig>) -> Outcome<Client> {
    let client = CoreClient::embedded_with(config?).await?;
    Ok(Client { cell: ClientCell::new(client) })
}

/// A tag expression or an SQL92 filter; giving both is an error.
pub fn filter_spec(filter: &str, sql: Option<String>) -> Outcome<FilterSpec> {
    match sql {
        Some(_) if filter != "*" => Err(invalid("/sql", "give a tag filter or an sql filter, not both")),
        Some(sql) => Ok(FilterSpec::Sql(sql)),
        None => Ok(FilterSpec::Tag(filter.to_string())),
    }
}

fn start_position(start: &Bound<'_, PyAny>) -> Outcome<StartPosition> {
    if let Ok(name) = start.cast::<PyString>() {
        return match &*name.to_cow()? {
            "first" => Ok(StartPosition::First),
            "last" => Ok(StartPosition::Last),
            other => Err(invalid("/start", format!("{other:?} is not first, last or an epoch-ms timestamp"))),
        };
    }
    if start.is_instance_of::<PyInt>() {
        let ts: i64 = start.extract()?;
        return u64::try_from(ts).map(StartPosition::Timestamp).map_err(|_| invalid("/start", "must not be negative"));
    }
    Err(invalid("/start", format!("expected \"first\", \"last\" or an int timestamp, not {}", type_name(start))))
}

#[pymethods]
impl Client {
    /// Connects to a gateway at `url` (`http://host:port`, or `https://host:port` verified
    /// against the system's roots or the PEM `ca_file`), with a bearer `token` when the
    /// server has an `auth_file`. The gateway's protocol does not carry its timing settings:
    /// pass the server's `lease_ttl` (ms), `orderly_suspend` (ms) and `max_reconsume_times`
    /// when they differ from the defaults, so that consumers keep pace with it.
    ///
    /// When the connection drops, the client reconnects by itself: the first attempt after
    /// about `reconnect_backoff_ms`, then twice as long after each failure up to
    /// `reconnect_backoff_max_ms` (each pause jittered), and registers its producer groups and
    /// push consumers again. Meanwhile a send waits for the connection up to
    /// `request_timeout_ms`, then raises `Unavailable`. `on_connection(state, error)` is told
    /// of each change: `("dropped", message)` then `("restored", None)`; it runs on a worker
    /// thread, one call at a time, in order, and an exception in it is logged.
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (url, token=None, *, request_timeout_ms=30_000, lease_ttl_ms=None, orderly_suspend_ms=None, max_reconsume_times=None, ca_file=None, reconnect_backoff_ms=100, reconnect_backoff_max_ms=10_000, on_connection=None))]
    fn connect(
        py: Python<'_>,
        url: String,
        token: Option<String>,
        request_timeout_ms: i64,
        lease_ttl_ms: Option<i64>,
        orderly_suspend_ms: Option<i64>,
        max_reconsume_times: Option<u32>,
        ca_file: Option<std::path::PathBuf>,
        reconnect_backoff_ms: i64,
        reconnect_backoff_max_ms: i64,
        on_connection: Option<Py<PyAny>>,
    ) -> PyResult<Client> {
        let options = remote_options(ConnectArgs {
            token,
            ca_file,
            request_timeout_ms,
            lease_ttl_ms,
            orderly_suspend_ms,
            max_reconsume_times,
            reconnect_backoff_ms,
            reconnect_backoff_max_ms,
            on_connection,
        });
        raise(py, runtime::block_on(py, connect(url, options)))
    }

    /// `connect()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (url, token=None, *, request_timeout_ms=30_000, lease_ttl_ms=None, orderly_suspend_ms=None, max_reconsume_times=None, ca_file=None, reconnect_backoff_ms=100, reconnect_backoff_max_ms=10_000, on_connection=None))]
    #[pyo3(name = "_connect_async")]
    fn connect_async(
        py: Python<'_>,
        url: String,
        token: Option<String>,
        request_timeout_ms: i64,
        lease_ttl_ms: Option<i64>,
        orderly_suspend_ms: Option<i64>,
        max_reconsume_times: Option<u32>,
        ca_file: Option<std::path::PathBuf>,
        reconnect_backoff_ms: i64,
        reconnect_backoff_max_ms: i64,
        on_connection: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'_, PyAny>> {
        let options = remote_options(ConnectArgs {
            token,
            ca_file,
            request_timeout_ms,
            lease_ttl_ms,
            orderly_suspend_ms,
            max_reconsume_times,
            reconnect_backoff_ms,
            reconnect_backoff_max_ms,
            on_connection,
        });
        runtime::awaitable(py, connect(url, options))
    }

    /// Opens a broker in this process on the directory `path` (created if missing, recovered
    /// if it holds data). `config` takes the server's settings by name, e.g.
    /// `{"delay_levels": "100ms 200ms 1s", "segment_bytes": "1MiB", "lease_ttl": "3s"}`.
    #[staticmethod]
    #[pyo3(signature = (path, config=None))]
    fn embedded(py: Python<'_>, path: PathBuf, config: Option<&Bound<'_, PyDict>>) -> PyResult<Client> {
        let config = broker_config(path, config);
        raise(py, runtime::block_on(py, embedded(config)))
    }

    /// `embedded()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[staticmethod]
    #[pyo3(signature = (path, config=None))]
    #[pyo3(name = "_embedded_async")]
    fn embedded_async<'py>(
        py: Python<'py>,
        path: PathBuf,
        config: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let config = broker_config(path, config);
        runtime::awaitable(py, embedded(config))
    }

    /// `"embedded"` or `"remote"`.
    #[getter]
    fn transport(&self) -> &'static str {
        self.cell.client.transport().name()
    }

    /// A producer, optionally in a producer group. `on_error(error)` is called with the
    /// `FerryError` of each failed `send_oneway()`; without it, `flush()` raises them.
    #[pyo3(signature = (group=None, *, on_error=None))]
    fn producer(&self, group: Option<String>, on_error: Option<Py<PyAny>>) -> Producer {
        Producer::new(self.cell.clone(), group, on_error)
    }

    /// A transactional producer of `group`. `checker(message)` answers the broker's
    /// check-backs about the group's unresolved transactions with `"commit"`, `"rollback"`
    /// or `"unknown"`; it runs on a worker thread, and an exception counts as `"unknown"`.
    fn transaction_producer(&self, py: Python<'_>, group: String, checker: Py<PyAny>) -> PyResult<TransactionProducer> {
        let cell = self.cell.clone();
        raise(py, runtime::block_on(py, TransactionProducer::start(cell, group, PyChecker::new(checker))))
    }

    /// `transaction_producer()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(name = "_transaction_producer_async")]
    fn transaction_producer_async<'py>(
        &self,
        py: Python<'py>,
        group: String,
        checker: Py<PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cell = self.cell.clone();
        runtime::awaitable(py, TransactionProducer::start(cell, group, PyChecker::new(checker)))
    }

    /// A push consumer: a member of `group` on `topic`, sharing its queues with the other
    /// members (`mode="clustering"`) or getting every message (`"broadcasting"`).
    ///
    /// With a `listener(message)`, each message is passed to it on a worker thread: returning
    /// acks, raising nacks (the message is redelivered through retry, or in place when
    /// `orderly`). Without one, iterate over the consumer and `ack()` each message. Nothing
    /// happens until `start()`. `strategy` is `average`, `average_by_circle`,
    /// `consistent_hash` or `machine_room` (with `queue_rooms`); `start` is where a new group
    /// begins: `"first"`, `"last"` or an epoch-ms timestamp.
    ///
    /// `on_revoke(queues)` and `on_assign(queues)` are told of each change of this member's
    /// queues, as lists of `(topic, queue_id)`: revoked first, then assigned; `close()`
    /// revokes every queue and returns after `on_revoke` ran. They run on a worker thread, one
    /// call at a time, in order; an exception in one is logged.
    #[pyo3(signature = (group, topic, *, filter="*", sql=None, mode="clustering", orderly=false, strategy="average", listener=None, start=None, consume_workers=16, rebalance_interval_ms=20_000, queue_rooms=None, on_assign=None, on_revoke=None))]
    #[allow(clippy::too_many_arguments)]
    fn push_consumer(
        &self,
        py: Python<'_>,
        group: String,
        topic: String,
        filter: &str,
        sql: Option<String>,
        mode: &str,
        orderly: bool,
        strategy: &str,
        listener: Option<Py<PyAny>>,
        start: Option<&Bound<'_, PyAny>>,
        consume_workers: i64,
        rebalance_interval_ms: i64,
        queue_rooms: Option<std::collections::BTreeMap<u32, String>>,
        on_assign: Option<Py<PyAny>>,
        on_revoke: Option<Py<PyAny>>,
    ) -> PyResult<PushConsumer> {
        let options = (|| -> Outcome<PushConsumerOptions> {
            let mut options = PushConsumerOptions { filter: filter_spec(filter, sql)?, orderly, ..Default::default() };
            options.mode = match mode {
                "clustering" => ConsumeMode::Clustering,
                "broadcasting" => ConsumeMode::Broadcasting,
                other => return Err(invalid("/mode", format!("{other:?} is not clustering or broadcasting"))),
            };
            options.strategy = match (Strategy::from_name(strategy)?, queue_rooms) {
                (Strategy::MachineRoom { .. }, Some(rooms)) => Strategy::MachineRoom { queue_rooms: rooms },
                (_, Some(_)) => {
                    return Err(invalid("/queue_rooms", "only the machine_room strategy takes queue_rooms"))
                }
                (s, None) => s,
            };
            if let Some(start) = start {
                options.start = start_position(start)?;
            }
            options.consume_workers = usize::try_from(consume_workers)
                .ok()
                .filter(|&w| w > 0)
                .ok_or_else(|| invalid("/consume_workers", "must be at least 1"))?;
            options.rebalance_interval = millis("/rebalance_interval_ms", rebalance_interval_ms)?;
            Ok(options)
        })();
        let mut options = raise(py, options)?;
        let hooks = match (on_assign, on_revoke) {
            (None, None) => None,
            (on_assign, on_revoke) => {
                let (hooks, listener) = RebalanceHooks::start(on_assign, on_revoke);
                options.on_rebalance = Some(listener);
                Some(hooks)
            }
        };
        let dispatcher = match listener {
            Some(listener) => {
                let (dispatcher, client_listener) =
                    raise(py, ListenerThreads::start(py, listener, options.consume_workers))?;
                options.listener = Some(client_listener);
                self.cell.dispatchers.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(&dispatcher));
                Some(dispatcher)
            }
            None => None,
        };
        let consumer = self.cell.client.push_consumer(&group, &topic, options).map_err(Into::into);
        if let (Err(_), Some(dispatcher)) = (&consumer, &dispatcher) {
            dispatcher.stop();
        }
        Ok(PushConsumer::new(self.cell.clone(), raise(py, consumer)?, dispatcher, hooks))
    }

    /// A simple (lease-based) consumer of `topic` in `group`, with a tag `filter` or an
    /// `sql` filter: `receive()` messages, then `ack()` or `nack()` each.
    #[pyo3(signature = (group, topic, *, filter="*", sql=None))]
    fn simple_consumer(
        &self,
        py: Python<'_>,
        group: String,
        topic: String,
        filter: &str,
        sql: Option<String>,
    ) -> PyResult<SimpleConsumer> {
        let filter = raise(py, filter_spec(filter, sql))?;
        let consumer = raise(py, self.cell.client.simple_consumer(&group, &topic, filter).map_err(Into::into))?;
        Ok(SimpleConsumer::new(self.cell.clone(), consumer))
    }

    /// Administration: topics, groups, offsets, dead letters, lookups.
    fn admin(&self) -> Admin {
        Admin::new(self.cell.clone())
    }

    /// Closes the push consumers made by this client (committing their offsets), then the
    /// connection. Idempotent. After it, every call of the client and of what it made raises
    /// ``ConnectionError``.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let cell = self.cell.clone();
        raise(py, runtime::block_on(py, async move { cell.close(true).await }))
    }

    /// `close()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(name = "_close_async")]
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let cell = self.cell.clone();
        runtime::awaitable(py, async move { cell.close(true).await })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Client(transport={:?})", self.transport())
    }
}
