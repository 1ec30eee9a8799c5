//! [`PushConsumer`] (group member with a listener, or an iterator of messages) and
//! [`SimpleConsumer`] (receive, then ack or nack by receipt).

use std::sync::Arc;
use std::time::Duration;

use ferrymq_core::client::{PushConsumer as CorePushConsumer, SimpleConsumer as CoreSimpleConsumer};
use pyo3::exceptions::{PyStopAsyncIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::client::ClientCell;
use crate::errors::{invalid, raise, Failure, Outcome};
use crate::listener_threads::ListenerThreads;
use crate::message::{millis, opt_millis, Message};
use crate::rebalance_hooks::RebalanceHooks;
use crate::runtime;

/// A member of a consumer group on one topic. Nothing happens until `start()` (or entering
/// it as a context manager); `close()` leaves cleanly, committing offsets.
///
/// Without a listener it is an iterator (`for message in consumer`, or `async for` through
/// `ferrymq.aio`): each message must be `ack()`ed or `nack()`ed; iteration ends when the
/// consumer is closed. Keep a reference while it runs: a consumer that Python collects stops
/// (and the group notices when its heartbeat lapses).
#[pyclass(frozen, module = "ferrymq._native")]
pub struct PushConsumer {
    consumer: Arc<CorePushConsumer>,
    dispatcher: Option<Arc<ListenerThreads>>,
    hooks: Option<Arc<RebalanceHooks>>,
    _client: Arc<ClientCell>,
}

impl PushConsumer {
    pub fn new(
        client: Arc<ClientCell>,
        consumer: CorePushConsumer,
        dispatcher: Option<Arc<ListenerThreads>>,
        hooks: Option<Arc<RebalanceHooks>>,
    ) -> Self {
        PushConsumer { consumer: Arc::new(consumer), dispatcher, hooks, _client: client }
    }

    /// Closes the consumer, waits until `on_revoke` heard of it, then lets its listener
    /// threads go.
    fn closing(&self) -> impl std::future::Future<Output = Outcome<()>> + Send + 'static {
        let consumer = self.consumer.clone();
        let dispatcher = self.dispatcher.clone();
        let hooks = self.hooks.clone();
        async move {
            consumer.close().await?;
            if let Some(hooks) = hooks {
                hooks.reported().await;
            }
            if let Some(dispatcher) = dispatcher {
                dispatcher.stop_and_join().await;
            }
            Ok(())
        }
    }

    fn stream(&self) -> Outcome<Arc<CorePushConsumer>> {
        if self.dispatcher.is_some() {
            return Err(Failure::Py(PyTypeError::new_err(
                "this consumer has a listener: its messages go to the listener, not to iteration",
            )));
        }
        Ok(self.consumer.clone())
    }
}

async fn next_message(consumer: Arc<CorePushConsumer>, timeout: Option<Duration>) -> Outcome<Option<Message>> {
    let received = match timeout {
        None => consumer.recv().await,
        Some(t) => tokio::time::timeout(t, consumer.recv()).await.ok().flatten(),
    };
    Ok(received.map(Message::pushed))
}

#[pymethods]
impl PushConsumer {
    /// The consumer group.
    #[getter]
    fn group(&self) -> String {
        self.consumer.group().to_string()
    }

    /// The topic.
    #[getter]
    fn topic(&self) -> String {
        self.consumer.topic().to_string()
    }

    /// This member's client id, unique in the group.
    #[getter]
    fn client_id(&self) -> String {
        self.consumer.client_id().to_string()
    }

    /// The queues this member consumes now, as `(topic, queue_id)` pairs (the group's retry
    /// queue appears under its retry topic).
    fn assignment(&self) -> Vec<(String, u32)> {
        self.consumer.assignment().into_iter().map(|q| (q.topic, q.queue_id)).collect()
    }

    /// Joins the group and starts consuming. `NotFound` when the topic does not exist;
    /// `Conflict` when started twice or after close.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let consumer = self.consumer.clone();
        raise(py, runtime::block_on(py, async move { Ok(consumer.start().await?) }))
    }

    /// `start()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(name = "_start_async")]
    fn start_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let consumer = self.consumer.clone();
        runtime::awaitable(py, async move { Ok(consumer.start().await?) })
    }

    /// Leaves the group cleanly: stops pulling, lets running listeners finish, commits
    /// offsets, releases orderly leases. Ends iteration. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        raise(py, runtime::block_on(py, self.closing()))
    }

    /// `close()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(name = "_close_async")]
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        runtime::awaitable(py, self.closing())
    }

    /// The next message (for a consumer without a listener), waiting up to `timeout_ms`
    /// (forever when None); None on timeout or once the consumer is closed.
    #[pyo3(signature = (timeout_ms=None))]
    fn recv(&self, py: Python<'_>, timeout_ms: Option<i64>) -> PyResult<Option<Message>> {
        let ready = self.stream().and_then(|c| Ok((c, opt_millis("/timeout_ms", timeout_ms)?)));
        let (consumer, timeout) = raise(py, ready)?;
        raise(py, runtime::block_on(py, next_message(consumer, timeout)))
    }

    /// `recv()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(signature = (timeout_ms=None))]
    #[pyo3(name = "_recv_async")]
    fn recv_async<'py>(&self, py: Python<'py>, timeout_ms: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        let ready = self.stream().and_then(|c| Ok((c, opt_millis("/timeout_ms", timeout_ms)?)));
        let (consumer, timeout) = raise(py, ready)?;
        runtime::awaitable(py, next_message(consumer, timeout))
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Message>> {
        let consumer = raise(py, self.stream())?;
        raise(py, runtime::block_on(py, next_message(consumer, None)))
    }

    /// `__next__()` for asyncio (internal: `ferrymq.aio.PushConsumer` is the async iterator);
    /// raises `StopAsyncIteration` once the consumer is closed.
    fn _next_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let consumer = raise(py, self.stream())?;
        runtime::awaitable(py, async move {
            match next_message(consumer, None).await? {
                Some(message) => Ok(message),
                None => Err(Failure::Py(PyStopAsyncIteration::new_err(()))),
            }
        })
    }

    /// Starts the consumer.
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf)
    }

    /// Closes the consumer.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "PushConsumer(group={:?}, topic={:?}, client_id={:?})",
            self.consumer.group(),
            self.consumer.topic(),
            self.consumer.client_id()
        )
    }
}

/// A lease-based consumer of one topic for one group (RocketMQ 5's simple consumer):
/// `receive()` hands out messages that stay invisible to the rest of the group for
/// `invisible_ms`; `ack()` what was processed, `nack()` what should come back.
#[pyclass(frozen, module = "ferrymq._native")]
pub struct SimpleConsumer {
    consumer: Arc<CoreSimpleConsumer>,
    _client: Arc<ClientCell>,
}

impl SimpleConsumer {
    pub fn new(client: Arc<ClientCell>, consumer: CoreSimpleConsumer) -> Self {
        SimpleConsumer { consumer: Arc::new(consumer), _client: client }
    }
}

async fn receive(
    consumer: Arc<CoreSimpleConsumer>,
    args: Outcome<(usize, Duration, Duration)>,
) -> Outcome<Vec<Message>> {
    let (max, wait, invisible) = args?;
    let messages = consumer.receive(max, wait, invisible).await?;
    Ok(messages.into_iter().map(|m| Message::received(m, consumer.clone())).collect())
}

fn receive_args(max_messages: i64, wait_ms: i64, invisible_ms: i64) -> Outcome<(usize, Duration, Duration)> {
    let max = usize::try_from(max_messages)
        .ok()
        .filter(|&m| m >= 1)
        .ok_or_else(|| invalid("/max_messages", "must be at least 1"))?;
    Ok((max, millis("/wait_ms", wait_ms)?, millis("/invisible_ms", invisible_ms)?))
}

enum Settle {
    Ack,
    Nack(Option<Duration>),
}

async fn settle(
    consumer: Arc<CoreSimpleConsumer>,
    message: ferrymq_core::client::Message,
    how: Outcome<Settle>,
) -> Outcome<()> {
    match how? {
        Settle::Ack => consumer.ack(&message).await?,
        Settle::Nack(delay) => consumer.nack(&message, delay).await?,
    }
    Ok(())
}

async fn change_invisible(
    consumer: Arc<CoreSimpleConsumer>,
    message: Py<Message>,
    invisible: Outcome<Duration>,
) -> Outcome<()> {
    let mut snapshot = message.get().snapshot();
    consumer.change_invisible_duration(&mut snapshot, invisible?).await?;
    message.get().set_receipt(snapshot.receipt);
    Ok(())
}

#[pymethods]
impl SimpleConsumer {
    /// The consumer group.
    #[getter]
    fn group(&self) -> String {
        self.consumer.group().to_string()
    }

    /// The topic.
    #[getter]
    fn topic(&self) -> String {
        self.consumer.topic().to_string()
    }

    /// Receives up to `max_messages` (1 to 1000), waiting up to `wait_ms` (at most 30 000)
    /// when none is available. Each stays invisible to the rest of the group for
    /// `invisible_ms` (1 000 to 43 200 000) unless acked, nacked or changed.
    #[pyo3(signature = (max_messages=16, wait_ms=0, invisible_ms=30_000))]
    fn receive(&self, py: Python<'_>, max_messages: i64, wait_ms: i64, invisible_ms: i64) -> PyResult<Vec<Message>> {
        let args = receive_args(max_messages, wait_ms, invisible_ms);
        raise(py, runtime::block_on(py, receive(self.consumer.clone(), args)))
    }

    /// `receive()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(signature = (max_messages=16, wait_ms=0, invisible_ms=30_000))]
    #[pyo3(name = "_receive_async")]
    fn receive_async<'py>(
        &self,
        py: Python<'py>,
        max_messages: i64,
        wait_ms: i64,
        invisible_ms: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = receive_args(max_messages, wait_ms, invisible_ms);
        runtime::awaitable(py, receive(self.consumer.clone(), args))
    }

    /// Marks a received message done. `NotFound` for a receipt the broker does not hold;
    /// `Conflict` when its lease expired or it was acked already.
    fn ack(&self, py: Python<'_>, message: &Bound<'_, Message>) -> PyResult<()> {
        let future = settle(self.consumer.clone(), message.get().snapshot(), Ok(Settle::Ack));
        raise(py, runtime::block_on(py, future))
    }

    /// `ack()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(name = "_ack_async")]
    fn ack_async<'py>(&self, py: Python<'py>, message: &Bound<'py, Message>) -> PyResult<Bound<'py, PyAny>> {
        let future = settle(self.consumer.clone(), message.get().snapshot(), Ok(Settle::Ack));
        runtime::awaitable(py, future)
    }

    /// Gives a received message back: it returns with `reconsume_times + 1` after `delay_ms`
    /// (default: the retry delay), or goes to the dead-letter queue after the group's
    /// maximum. Errors as for `ack()`.
    #[pyo3(signature = (message, delay_ms=None))]
    fn nack(&self, py: Python<'_>, message: &Bound<'_, Message>, delay_ms: Option<i64>) -> PyResult<()> {
        let how = opt_millis("/delay_ms", delay_ms).map(Settle::Nack);
        let future = settle(self.consumer.clone(), message.get().snapshot(), how);
        raise(py, runtime::block_on(py, future))
    }

    /// `nack()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(signature = (message, delay_ms=None))]
    #[pyo3(name = "_nack_async")]
    fn nack_async<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, Message>,
        delay_ms: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let how = opt_millis("/delay_ms", delay_ms).map(Settle::Nack);
        let future = settle(self.consumer.clone(), message.get().snapshot(), how);
        runtime::awaitable(py, future)
    }

    /// Sets a received message's remaining invisibility to `ms` and gives it a new receipt
    /// (the old one stops working). `NotFound` when the lease is no longer held.
    fn change_invisible_duration(&self, py: Python<'_>, message: Py<Message>, ms: i64) -> PyResult<()> {
        let future = change_invisible(self.consumer.clone(), message, millis("/invisible_ms", ms));
        raise(py, runtime::block_on(py, future))
    }

    /// `change_invisible_duration()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(name = "_change_invisible_duration_async")]
    fn change_invisible_duration_async<'py>(
        &self,
        py: Python<'py>,
        message: Py<Message>,
        ms: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        runtime::awaitable(py, change_invisible(self.consumer.clone(), message, millis("/invisible_ms", ms)))
    }

    /// Leaves the group at once: messages held unacknowledged go back without counting a
    /// reconsume.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let consumer = self.consumer.clone();
        raise(py, runtime::block_on(py, async move { Ok(consumer.close().await?) }))
    }

    /// `close()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(name = "_close_async")]
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let consumer = self.consumer.clone();
        runtime::awaitable(py, async move { Ok(consumer.close().await?) })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("SimpleConsumer(group={:?}, topic={:?})", self.consumer.group(), self.consumer.topic())
    }
}
