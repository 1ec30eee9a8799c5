//! [`Producer`] and [`TransactionProducer`], and the Python callables that decide a
//! transaction (the local transaction and the check-back checker).

use std::sync::{Arc, Mutex};

use ferrymq_core::client::{Message as CoreMessage, OutgoingMessage, TransactionResolution};
use ferrymq_core::client::{
    Producer as CoreProducer, TransactionChecker, TransactionProducer as CoreTransactionProducer,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::client::ClientCell;
use crate::errors::{invalid, raise, Failure, Outcome};
use crate::message::{batch_entry, outgoing, type_name, Message, SendResult, Source};
use crate::runtime;

/// Publishes messages to topics. A send that fails for a transient reason (the broker is
/// unavailable, a timeout, a broken connection) is retried twice before it raises.
///
/// A failed `send_oneway()` is never silent: it is passed to `on_error(error)` when the
/// producer has one, else kept and raised by the next `flush()`.
#[pyclass(frozen, module = "ferrymq._native")]
pub struct Producer {
    producer: CoreProducer,
    oneway: Arc<Oneway>,
    _client: Arc<ClientCell>,
}

impl Producer {
    pub fn new(client: Arc<ClientCell>, group: Option<String>, on_error: Option<Py<PyAny>>) -> Self {
        let oneway = Arc::new(Oneway { on_error: Mutex::new(on_error), ..Oneway::default() });
        Producer { producer: client.client.producer(group.as_deref()), oneway, _client: client }
    }
}

/// The one-way sends of a producer: how many are underway, the failures no callback took
/// (for `flush()` to raise), and the `on_error` callback.
#[derive(Default)]
struct Oneway {
    state: Mutex<OnewayState>,
    /// Woken when the last send underway finishes.
    idle: tokio::sync::Notify,
    on_error: Mutex<Option<Py<PyAny>>>,
}

#[derive(Default)]
struct OnewayState {
    underway: usize,
    failures: Vec<ferrymq_core::Error>,
}

impl Oneway {
    fn state(&self) -> std::sync::MutexGuard<'_, OnewayState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports a failed one-way send: to `on_error` on a worker thread (the GIL is never
    /// taken on a runtime worker), else kept for `flush()`.
    async fn failed(self: &Arc<Self>, topic: String, error: ferrymq_core::Error) {
        let oneway = self.clone();
        let report = move || {
            runtime::with_python(move |py| {
                let callback =
                    oneway.on_error.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|f| f.clone_ref(py));
                let Some(callback) = callback else {
                    return Some(error);
                };
                let exception = crate::errors::to_py_err(py, &error);
                if let Err(raised) = callback.call1(py, (exception.into_value(py),)) {
                    log_failure(py, "the on_error callback of a producer failed", &raised);
                }
                None
            })
            .flatten()
        };
        if let Ok(Some(error)) = tokio::task::spawn_blocking(report).await {
            tracing::warn!(topic = %topic, error = %error, "one-way send failed; the next flush() raises it");
            self.state().failures.push(error);
        }
    }

    fn finished(&self) {
        let mut state = self.state();
        state.underway -= 1;
        if state.underway == 0 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no one-way send is underway, then raises the first failure kept since the
    /// last flush (the others were logged when they happened).
    async fn flush(self: Arc<Self>) -> Outcome<()> {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.state().underway == 0 {
                break;
            }
            idle.await;
        }
        let failures = std::mem::take(&mut self.state().failures);
        match failures.into_iter().next() {
            Some(first) => Err(Failure::Core(first)),
            None => Ok(()),
        }
    }
}

async fn send(producer: CoreProducer, topic: String, message: Outcome<OutgoingMessage>) -> Outcome<SendResult> {
    Ok(producer.send(&topic, message?).await?.into())
}

async fn send_batch(
    producer: CoreProducer,
    topic: String,
    messages: Outcome<Vec<OutgoingMessage>>,
) -> Outcome<Vec<SendResult>> {
    let results = producer.send_batch(&topic, messages?).await?;
    Ok(results.into_iter().map(SendResult::from).collect())
}

fn batch(messages: &Bound<'_, PyAny>) -> Outcome<Vec<OutgoingMessage>> {
    if messages.is_instance_of::<PyString>() || messages.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(Failure::Py(pyo3::exceptions::PyTypeError::new_err(
            "messages must be a list of bodies or dicts, not a single body",
        )));
    }
    let iter = messages.try_iter().map_err(|_| {
        Failure::Py(pyo3::exceptions::PyTypeError::new_err(format!(
            "messages must be a list of bodies or dicts, not {}",
            type_name(messages)
        )))
    })?;
    iter.enumerate().map(|(i, entry)| batch_entry(i, &entry?)).collect()
}

#[pymethods]
impl Producer {
    /// The producer group, or None.
    #[getter]
    fn group(&self) -> Option<String> {
        self.producer.group().map(str::to_string)
    }

    /// Publishes one message and returns once it is stored (or scheduled, when delayed).
    ///
    /// `body` is bytes or str (sent as UTF-8). Keyword attributes: `tag`, `keys` (a list of
    /// str), `properties` (a dict, matched by SQL filters), one of `delay_level` (1-based),
    /// `delay_ms` or `deliver_at` (epoch ms), `sharding_key` (one key, one queue, in order),
    /// `idempotency_key`.
    #[pyo3(signature = (topic, body, **attrs))]
    fn send(
        &self,
        py: Python<'_>,
        topic: String,
        body: &Bound<'_, PyAny>,
        attrs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<SendResult> {
        let message = outgoing(Some(body), attrs, Source::Kwargs("send"));
        raise(py, runtime::block_on(py, send(self.producer.clone(), topic, message)))
    }

    /// `send()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(signature = (topic, body, **attrs))]
    #[pyo3(name = "_send_async")]
    fn send_async<'py>(
        &self,
        py: Python<'py>,
        topic: String,
        body: &Bound<'py, PyAny>,
        attrs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let message = outgoing(Some(body), attrs, Source::Kwargs("send_async"));
        runtime::awaitable(py, send(self.producer.clone(), topic, message))
    }

    /// Publishes a batch atomically (all stored, or none); results come in order. Each entry
    /// is a body or a dict with `body` and the attributes `send()` takes.
    fn send_batch(&self, py: Python<'_>, topic: String, messages: &Bound<'_, PyAny>) -> PyResult<Vec<SendResult>> {
        let messages = batch(messages);
        raise(py, runtime::block_on(py, send_batch(self.producer.clone(), topic, messages)))
    }

    /// `send_batch()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(name = "_send_batch_async")]
    fn send_batch_async<'py>(
        &self,
        py: Python<'py>,
        topic: String,
        messages: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let messages = batch(messages);
        runtime::awaitable(py, send_batch(self.producer.clone(), topic, messages))
    }

    /// Publishes one message without waiting: the send runs in the background. A failure
    /// goes to `on_error`, or is raised by the next `flush()`. Takes what `send()` takes.
    #[pyo3(signature = (topic, body, **attrs))]
    fn send_oneway(
        &self,
        py: Python<'_>,
        topic: String,
        body: &Bound<'_, PyAny>,
        attrs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let message = raise(py, outgoing(Some(body), attrs, Source::Kwargs("send_oneway")))?;
        let producer = self.producer.clone();
        let oneway = self.oneway.clone();
        oneway.state().underway += 1;
        runtime::handle().spawn(async move {
            if let Err(error) = producer.send(&topic, message).await {
                oneway.failed(topic, error).await;
            }
            oneway.finished();
        });
        Ok(())
    }

    /// Waits until every `send_oneway()` of this producer has finished, then raises the
    /// first failure that no `on_error` callback took since the last flush.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        raise(py, runtime::block_on(py, self.oneway.clone().flush()))
    }

    /// `flush()` for asyncio (internal: `ferrymq.aio` wraps it).
    fn _flush_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        runtime::awaitable(py, self.oneway.clone().flush())
    }

    /// Called with the `FerryError` of each failed `send_oneway()` (on a worker thread);
    /// None keeps failures for `flush()` to raise. An exception in it is logged.
    #[getter]
    fn on_error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.oneway.on_error.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|f| f.clone_ref(py))
    }

    #[setter]
    fn set_on_error(&self, callback: Option<Py<PyAny>>) {
        *self.oneway.on_error.lock().unwrap_or_else(|e| e.into_inner()) = callback;
    }

    fn __repr__(&self) -> String {
        format!("Producer(group={:?})", self.producer.group())
    }
}

/// Reads a transaction verdict returned by Python: `"commit"`, `"rollback"` or `"unknown"`.
fn resolution(value: &Bound<'_, PyAny>) -> Outcome<TransactionResolution> {
    let text = value.cast::<PyString>().map_err(|_| {
        invalid("/status", format!("expected \"commit\", \"rollback\" or \"unknown\", not {}", type_name(value)))
    })?;
    Ok(TransactionResolution::parse(&text.to_cow()?)?)
}

/// `logging.getLogger("ferrymq")`.
static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Logs a failure of a Python callback on the `ferrymq` logger, with its traceback.
pub fn log_failure(py: Python<'_>, what: &str, error: &PyErr) {
    let logger =
        LOGGER.get_or_try_init(py, || py.import("logging")?.call_method1("getLogger", ("ferrymq",)).map(Bound::unbind));
    if let Ok(logger) = logger {
        let kwargs = PyDict::new(py);
        let _ = kwargs.set_item("exc_info", error.value(py));
        let _ = logger.bind(py).call_method("warning", (what,), Some(&kwargs));
    }
}

/// Calls a Python verdict function (a local transaction or a checker) with `message`.
fn decide(py: Python<'_>, function: &Py<PyAny>, message: CoreMessage) -> Outcome<TransactionResolution> {
    let verdict = function.call1(py, (Message::looked_up(message),))?;
    resolution(verdict.bind(py))
}

/// A Python checker as the client's [`TransactionChecker`].
pub struct PyChecker(Py<PyAny>);

impl PyChecker {
    pub fn new(function: Py<PyAny>) -> Self {
        PyChecker(function)
    }
}

impl TransactionChecker for PyChecker {
    fn check(&self, message: &CoreMessage) -> TransactionResolution {
        let verdict = runtime::with_python(|py| match decide(py, &self.0, message.clone()) {
            Ok(verdict) => verdict,
            Err(failure) => {
                let error = failure.into_pyerr(py);
                log_failure(py, "the transaction checker failed; the transaction stays unknown", &error);
                TransactionResolution::Unknown
            }
        });
        verdict.unwrap_or(TransactionResolution::Unknown)
    }
}

/// A producer of transactional messages for one producer group: a message is stored as a
/// half message (invisible), the local transaction runs, and its verdict commits or rolls it
/// back; `"unknown"` leaves it to the checker at a later check-back.
#[pyclass(frozen, module = "ferrymq._native")]
pub struct TransactionProducer {
    producer: Arc<CoreTransactionProducer>,
    _client: Arc<ClientCell>,
}

impl TransactionProducer {
    pub async fn start(client: Arc<ClientCell>, group: String, checker: PyChecker) -> Outcome<TransactionProducer> {
        let producer = client.client.transaction_producer(&group, checker).await?;
        Ok(TransactionProducer { producer: Arc::new(producer), _client: client })
    }
}

async fn send_in_transaction(
    producer: Arc<CoreTransactionProducer>,
    topic: String,
    message: Outcome<OutgoingMessage>,
    local_transaction: Py<PyAny>,
) -> Outcome<SendResult> {
    let message = message?;
    let raised: Arc<Mutex<Option<Failure>>> = Arc::default();
    let record = raised.clone();
    let result = producer
        .send_in_transaction_async(&topic, message, move |half| async move {
            let run = move || {
                runtime::with_python(|py| match decide(py, &local_transaction, half) {
                    Ok(verdict) => verdict,
                    Err(failure) => {
                        *record.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure);
                        TransactionResolution::Unknown
                    }
                })
                .unwrap_or(TransactionResolution::Unknown)
            };
            tokio::task::spawn_blocking(run).await.unwrap_or(TransactionResolution::Unknown)
        })
        .await?;
    let failure = raised.lock().unwrap_or_else(|e| e.into_inner()).take();
    match failure {
        Some(failure) => Err(failure),
        None => Ok(result.into()),
    }
}

async fn end_transaction(
    producer: Arc<CoreTransactionProducer>,
    transaction_id: String,
    status: String,
) -> Outcome<()> {
    let resolution = TransactionResolution::parse(&status)?;
    Ok(producer.end_transaction(&transaction_id, resolution).await?)
}

#[pymethods]
impl TransactionProducer {
    /// The producer group.
    #[getter]
    fn group(&self) -> String {
        self.producer.group().to_string()
    }

    /// Sends `body` as a half message, calls `local_transaction(message)` on a worker thread,
    /// and commits or rolls back as it returns `"commit"` or `"rollback"`. Returns the send
    /// result with its `transaction_id`. On `"unknown"` the checker decides later; when
    /// `local_transaction` raises (or returns anything else) the transaction is left unknown
    /// too and the exception propagates. `attrs` are those of `Producer.send()`.
    #[pyo3(signature = (topic, body, local_transaction, **attrs))]
    fn send_in_transaction(
        &self,
        py: Python<'_>,
        topic: String,
        body: &Bound<'_, PyAny>,
        local_transaction: Py<PyAny>,
        attrs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<SendResult> {
        let message = outgoing(Some(body), attrs, Source::Kwargs("send_in_transaction"));
        let future = send_in_transaction(self.producer.clone(), topic, message, local_transaction);
        raise(py, runtime::block_on(py, future))
    }

    /// `send_in_transaction()` for asyncio (the local transaction is a plain function, run on
    /// a worker thread).
    #[pyo3(signature = (topic, body, local_transaction, **attrs))]
    #[pyo3(name = "_send_in_transaction_async")]
    fn send_in_transaction_async<'py>(
        &self,
        py: Python<'py>,
        topic: String,
        body: &Bound<'py, PyAny>,
        local_transaction: Py<PyAny>,
        attrs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let message = outgoing(Some(body), attrs, Source::Kwargs("send_in_transaction_async"));
        runtime::awaitable(py, send_in_transaction(self.producer.clone(), topic, message, local_transaction))
    }

    /// Ends a transaction explicitly with `"commit"` or `"rollback"` (for a local transaction
    /// that finished later). `NotFound` for an unknown id, `Conflict` when it ended already.
    fn end_transaction(&self, py: Python<'_>, transaction_id: String, status: String) -> PyResult<()> {
        raise(py, runtime::block_on(py, end_transaction(self.producer.clone(), transaction_id, status)))
    }

    /// `end_transaction()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(name = "_end_transaction_async")]
    fn end_transaction_async<'py>(
        &self,
        py: Python<'py>,
        transaction_id: String,
        status: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        runtime::awaitable(py, end_transaction(self.producer.clone(), transaction_id, status))
    }

    /// Stops answering check-backs; open transactions wait for another producer of the group.
    fn close(&self) {
        self.producer.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        format!("TransactionProducer(group={:?})", self.producer.group())
    }
}
