//! [`NativeClient`]: one connection to a broker, embedded or remote, and the factory of
//! producers, consumers and the admin; [`ClientCell`], the state they share.
//!
//! The JavaScript callbacks a client's objects hold (listeners, checkers) are thread-safe
//! functions, and a thread-safe function keeps Node's event loop alive until it is released.
//! So each sits in a [`Callback`] slot registered with the cell: closing the client (or the
//! object) empties the slots, and the process can exit even before the garbage collector has
//! run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferrymq_core::client::{
    BrokerTimings, Client as CoreClient, ConsumeMode, FilterSpec, PushConsumerOptions, RemoteOptions, StartPosition,
    Strategy,
};
use napi::bindgen_prelude::{spawn, Function};
use napi_derive::napi;

use crate::admin::NativeAdmin;
use crate::config::broker_config;
use crate::consumer::{NativePushConsumer, NativeSimpleConsumer, PushHandle};
use crate::errors::{invalid, js};
use crate::listener_dispatch::{ListenerDispatch, ListenerFn, Unanswered};
use crate::message::{millis, non_negative};
use crate::producer::{CheckerFn, Completions, JsChecker, NativeProducer, NativeTransactionProducer};
use crate::rebalance_hooks::{HookFn, RebalanceHooks};

/// Something holding a JavaScript callback, released when its client closes.
pub trait Release: Send + Sync {
    /// Drops the callback (and stops what calls it), so that it no longer keeps the event
    /// loop alive. Idempotent.
    fn release(&self);
}

/// A slot for one thread-safe function; emptied by [`Release::release`].
pub struct Callback<T>(Mutex<Option<Arc<T>>>);

impl<T> Callback<T> {
    pub fn new(f: T) -> Arc<Self> {
        Arc::new(Callback(Mutex::new(Some(Arc::new(f)))))
    }

    /// The function, unless released.
    pub fn get(&self) -> Option<Arc<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl<T: Send + Sync> Release for Callback<T> {
    fn release(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// The shared state of a client and everything made from it.
pub struct ClientCell {
    /// The Rust client.
    pub client: CoreClient,
    closed: AtomicBool,
    callbacks: Mutex<Vec<Weak<dyn Release>>>,
    /// Rebalance hooks, whose last reports (every queue revoked) closing waits for.
    hooks: Mutex<Vec<Weak<RebalanceHooks>>>,
    /// Push consumers, closed first and through their handles (read-ahead given back).
    consumers: Mutex<Vec<Weak<PushHandle>>>,
}

impl ClientCell {
    fn new(client: CoreClient) -> Arc<ClientCell> {
        Arc::new(ClientCell {
            client,
            closed: AtomicBool::new(false),
            callbacks: Mutex::default(),
            hooks: Mutex::default(),
            consumers: Mutex::default(),
        })
    }

    /// Registers a callback holder to release when the client closes.
    pub fn hold(&self, holder: Weak<dyn Release>) {
        let mut callbacks = self.callbacks.lock().unwrap_or_else(|e| e.into_inner());
        callbacks.retain(|c| c.strong_count() > 0);
        callbacks.push(holder);
    }

    /// Registers a push consumer's rebalance hooks: closing the client waits for their
    /// reports, then releases them.
    pub fn hold_hooks(&self, hooks: &Arc<RebalanceHooks>) {
        self.hold(Arc::downgrade(hooks) as Weak<dyn Release>);
        let mut all = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|h| h.strong_count() > 0);
        all.push(Arc::downgrade(hooks));
    }

    /// Registers a push consumer, for closing the client to close it first.
    pub fn hold_consumer(&self, handle: &Arc<PushHandle>) {
        let mut consumers = self.consumers.lock().unwrap_or_else(|e| e.into_inner());
        consumers.retain(|c| c.strong_count() > 0);
        consumers.push(Arc::downgrade(handle));
    }

    /// Closes the client (its push consumers first), waits until rebalance hooks heard of
    /// it, then releases every callback.
    async fn close(&self) -> ferrymq_core::Result<()> {
        self.closed.store(true, Ordering::Release);
        let consumers = std::mem::take(&mut *self.consumers.lock().unwrap_or_else(|e| e.into_inner()));
        for consumer in consumers.iter().filter_map(Weak::upgrade) {
            if let Err(e) = consumer.close().await {
                tracing::warn!(error = %e, "closing a push consumer failed");
            }
        }
        let closed = self.client.close().await;
        let hooks = std::mem::take(&mut *self.hooks.lock().unwrap_or_else(|e| e.into_inner()));
        for hooks in hooks.iter().filter_map(Weak::upgrade) {
            hooks.reported().await;
        }
        let callbacks = std::mem::take(&mut *self.callbacks.lock().unwrap_or_else(|e| e.into_inner()));
        for holder in callbacks.iter().filter_map(Weak::upgrade) {
            holder.release();
        }
        closed
    }
}

impl Drop for ClientCell {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            let client = self.client.clone();
            // At process exit Node finalizes objects after napi-rs's runtime has stopped, and
            // spawning then panics; a panic must not reach the finalizer's C frames.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                spawn(async move {
                    if let Err(e) = client.close().await {
                        tracing::warn!(error = %e, "closing a collected client failed");
                    }
                });
            }));
        }
    }
}

/// Options of `Client.connect`.
#[napi(object)]
pub struct ConnectOptions {
    pub token: Option<String>,
    pub request_timeout_ms: Option<i64>,
    pub lease_ttl_ms: Option<i64>,
    pub orderly_suspend_ms: Option<i64>,
    pub max_reconsume_times: Option<u32>,
    /// For `https://` URLs: a PEM file of the certificate authorities to trust.
    pub ca_file: Option<String>,
}

fn remote_options(options: Option<ConnectOptions>) -> napi::Result<RemoteOptions> {
    let o = options.unwrap_or(ConnectOptions {
        token: None,
        request_timeout_ms: None,
        lease_ttl_ms: None,
        orderly_suspend_ms: None,
        max_reconsume_times: None,
        ca_file: None,
    });
    let defaults = BrokerTimings::default();
    let timings = BrokerTimings {
        lease_ttl: o.lease_ttl_ms.map(|v| millis("/leaseTtlMs", v)).transpose()?.unwrap_or(defaults.lease_ttl),
        orderly_suspend: o
            .orderly_suspend_ms
            .map(|v| millis("/orderlySuspendMs", v))
            .transpose()?
            .unwrap_or(defaults.orderly_suspend),
        max_reconsume_times: o.max_reconsume_times.unwrap_or(defaults.max_reconsume_times),
    };
    if timings.lease_ttl.is_zero() {
        return Err(invalid("/leaseTtlMs", "must be positive"));
    }
    let request_timeout = millis("/requestTimeoutMs", o.request_timeout_ms.unwrap_or(30_000))?;
    if request_timeout.is_zero() {
        return Err(invalid("/requestTimeoutMs", "must be positive"));
    }
    Ok(RemoteOptions {
        token: o.token,
        request_timeout,
        timings,
        ca_file: o.ca_file.map(Into::into),
        ..RemoteOptions::default()
    })
}

/// A tag expression or an SQL92 filter; giving both is an error.
pub fn filter_spec(filter: Option<String>, sql: Option<String>) -> napi::Result<FilterSpec> {
    match (filter, sql) {
        (Some(f), Some(_)) if f != "*" => Err(invalid("/sql", "give a tag filter or an sql filter, not both")),
        (_, Some(sql)) => Ok(FilterSpec::Sql(sql)),
        (filter, None) => Ok(FilterSpec::Tag(filter.unwrap_or_else(|| "*".into()))),
    }
}

/// Messages a push consumer may hand to JS beyond `consumeWorkers`, to wait there (for the
/// listener, or in the iterator's buffer).
const JS_READ_AHEAD: usize = 256;

/// Messages per pull of a push consumer's queue: each pulled batch costs a task, a call of the
/// batch listener and the wake-ups of the threads between them, whatever its size.
const JS_PULL_BATCH: usize = 128;

/// Options of `client.pushConsumer()` (the listener apart), as `index.js` passes them.
#[napi(object)]
pub struct PushOptions {
    pub filter: Option<String>,
    pub sql: Option<String>,
    pub mode: Option<String>,
    pub orderly: Option<bool>,
    pub strategy: Option<String>,
    /// `first` or `last`; a timestamp comes as `start_timestamp`.
    pub start: Option<String>,
    pub start_timestamp: Option<i64>,
    pub consume_workers: Option<u32>,
    pub rebalance_interval_ms: Option<i64>,
    /// Queue id (as a string key) to machine room, for the `machine_room` strategy.
    pub queue_rooms: Option<HashMap<String, String>>,
}

fn push_options(o: PushOptions) -> napi::Result<PushConsumerOptions> {
    let mut options = PushConsumerOptions {
        filter: filter_spec(o.filter, o.sql)?,
        orderly: o.orderly.unwrap_or(false),
        ..Default::default()
    };
    options.mode = match o.mode.as_deref().unwrap_or("clustering") {
        "clustering" => ConsumeMode::Clustering,
        "broadcasting" => ConsumeMode::Broadcasting,
        other => return Err(invalid("/mode", format!("{other:?} is not clustering or broadcasting"))),
    };
    let strategy = js(Strategy::from_name(o.strategy.as_deref().unwrap_or("average")))?;
    options.strategy = match (strategy, o.queue_rooms) {
        (Strategy::MachineRoom { .. }, Some(rooms)) => {
            let mut queue_rooms = std::collections::BTreeMap::new();
            for (queue, room) in rooms {
                let id =
                    queue.parse::<u32>().map_err(|_| invalid("/queueRooms", format!("{queue:?} is not a queue id")))?;
                queue_rooms.insert(id, room);
            }
            Strategy::MachineRoom { queue_rooms }
        }
        (_, Some(_)) => return Err(invalid("/queueRooms", "only the machine_room strategy takes queueRooms")),
        (s, None) => s,
    };
    options.start = match (o.start.as_deref(), o.start_timestamp) {
        (None, None) | (Some("first"), None) => StartPosition::First,
        (Some("last"), None) => StartPosition::Last,
        (None, Some(ts)) => StartPosition::Timestamp(non_negative("/start", ts)?),
        (Some(other), _) => {
            return Err(invalid("/start", format!("{other:?} is not first, last or an epoch-ms timestamp")))
        }
    };
    if let Some(workers) = o.consume_workers {
        if workers == 0 {
            return Err(invalid("/consumeWorkers", "must be at least 1"));
        }
        options.consume_workers = workers as usize;
    }
    if let Some(ms) = o.rebalance_interval_ms {
        options.rebalance_interval = millis("/rebalanceIntervalMs", ms)?;
    }
    Ok(options)
}

/// A connection to one broker (see `Client` in index.d.ts).
#[napi]
pub struct NativeClient {
    cell: Arc<ClientCell>,
}

#[napi]
impl NativeClient {
    /// Connects to a gateway at `url`.
    #[napi(factory)]
    pub async fn connect(url: String, options: Option<ConnectOptions>) -> napi::Result<NativeClient> {
        let options = remote_options(options)?;
        let client = js(CoreClient::connect_with(&url, options).await)?;
        Ok(NativeClient { cell: ClientCell::new(client) })
    }

    /// Opens a broker in this process on the directory `path`, with broker settings by name.
    #[napi(factory)]
    pub async fn embedded(
        path: String,
        config: Option<HashMap<String, serde_json::Value>>,
    ) -> napi::Result<NativeClient> {
        let config = broker_config(path, config)?;
        let client = js(CoreClient::embedded_with(config).await)?;
        Ok(NativeClient { cell: ClientCell::new(client) })
    }

    /// `embedded` or `remote`.
    #[napi(getter)]
    pub fn transport(&self) -> String {
        self.cell.client.transport().name().to_string()
    }

    /// A producer, optionally in a producer group; the results of its sends go to `on_sent`
    /// (see [`Completions`]).
    #[napi]
    pub fn producer(&self, group: Option<String>, on_sent: Function<'_, String, ()>) -> napi::Result<NativeProducer> {
        Ok(NativeProducer::new(self.cell.clone(), group, Completions::new(on_sent)?))
    }

    /// A transactional producer of `group`; `checker` answers check-backs.
    #[napi]
    pub async fn transaction_producer(
        &self,
        group: String,
        checker: CheckerFn,
    ) -> napi::Result<NativeTransactionProducer> {
        NativeTransactionProducer::start(self.cell.clone(), group, JsChecker::new(checker)).await
    }

    /// A push consumer. Its messages go to `on_message` in batches: to the listener, or
    /// (`iterated`) to the buffer that `recv()` reads. With `on_rebalance`, each change of its
    /// queues goes to it (see [`RebalanceHooks`]).
    #[napi]
    pub fn push_consumer(
        &self,
        group: String,
        topic: String,
        options: PushOptions,
        on_message: ListenerFn,
        iterated: bool,
        on_rebalance: Option<HookFn>,
    ) -> napi::Result<NativePushConsumer> {
        let mut options = push_options(options)?;
        // An iterated message the application still holds when the consumer closes goes
        // back untouched, as through the client's own stream.
        let unanswered = if iterated { Unanswered::GoesBack } else { Unanswered::Fails };
        let (dispatch, listener) = ListenerDispatch::start(on_message, unanswered);
        options.listener = Some(listener);
        // `consumeWorkers` bounds the listener promises pending at once, or the iterated
        // messages not yet acked, which `index.js` counts; the client may hand over
        // `JS_READ_AHEAD` more, which wait on the JS side: the wider window keeps the JS
        // thread supplied while verdicts cross back (see BENCHMARKS.md, "Node SDK").
        options.consume_workers += JS_READ_AHEAD;
        options.pull_batch = JS_PULL_BATCH;
        options.max_buffered_per_queue = options.max_buffered_per_queue.max(JS_PULL_BATCH);
        self.cell.hold(Arc::downgrade(&dispatch) as Weak<dyn Release>);
        let hooks = on_rebalance.map(|function| {
            let (hooks, listener) = RebalanceHooks::start(function);
            options.on_rebalance = Some(listener);
            self.cell.hold_hooks(&hooks);
            hooks
        });
        let handle = PushHandle::new(js(self.cell.client.push_consumer(&group, &topic, options))?);
        self.cell.hold_consumer(&handle);
        Ok(NativePushConsumer::new(self.cell.clone(), handle, dispatch, hooks))
    }

    /// A lease-based consumer of `topic` in `group`.
    #[napi]
    pub fn simple_consumer(
        &self,
        group: String,
        topic: String,
        filter: Option<String>,
        sql: Option<String>,
    ) -> napi::Result<NativeSimpleConsumer> {
        let filter = filter_spec(filter, sql)?;
        let consumer = js(self.cell.client.simple_consumer(&group, &topic, filter))?;
        Ok(NativeSimpleConsumer::new(self.cell.clone(), consumer))
    }

    /// Administration.
    #[napi]
    pub fn admin(&self) -> NativeAdmin {
        NativeAdmin::new(self.cell.clone())
    }

    /// Closes push consumers, then the connection, and releases every callback. Idempotent.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        js(self.cell.close().await)
    }
}

/// How long to wait, from JS: absent means forever.
pub fn opt_millis(field: &str, value: Option<i64>) -> napi::Result<Option<Duration>> {
    value.map(|v| millis(field, v)).transpose()
}
