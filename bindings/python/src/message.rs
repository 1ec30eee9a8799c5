//! Messages across the edge: [`Message`] (a message out, with `ack`/`nack` when it was
//! delivered for a group), [`SendResult`], and the parsing of a message to publish from a body
//! and keyword attributes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ferrymq_core::client::{
    Delay, Message as CoreMessage, MessageState, OutgoingMessage, SendResult as CoreSendResult,
};
use ferrymq_core::client::{ReceivedMessage, SimpleConsumer};
use ferrymq_core::Error;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString};

use crate::errors::{invalid, raise, Failure, Outcome};
use crate::runtime;

/// Who settles a delivered message, and how.
enum Settle {
    /// Looked up, not delivered: there is nothing to settle.
    Nothing,
    /// Handed to a listener: its return or exception settles it.
    Listener,
    /// Handed out by a push consumer without a listener, not yet settled.
    Push(Box<ReceivedMessage>),
    /// A push delivery already acked or nacked.
    Settled,
    /// Received by a simple consumer: its receipt settles it.
    Simple(Arc<SimpleConsumer>),
}

/// A message as delivered or looked up: the "Message out" of the contract.
///
/// `body` is bytes (`text` is the same decoded as UTF-8, or None); `receipt` is set when it
/// was received for a group. A message handed out by a push consumer's iterator or by a
/// simple consumer's `receive` is settled with `ack()` or `nack()`.
#[pyclass(frozen, module = "ferrymq._native")]
pub struct Message {
    message: Mutex<CoreMessage>,
    settle: Mutex<Settle>,
}

impl Message {
    fn with(message: CoreMessage, settle: Settle) -> Self {
        Message { message: Mutex::new(message), settle: Mutex::new(settle) }
    }

    /// A looked-up message (nothing to settle).
    pub fn looked_up(message: CoreMessage) -> Self {
        Message::with(message, Settle::Nothing)
    }

    /// A message handed to a listener.
    pub fn for_listener(message: CoreMessage) -> Self {
        Message::with(message, Settle::Listener)
    }

    /// A message from a push consumer's stream, settled by `ack`/`nack`.
    pub fn pushed(received: ReceivedMessage) -> Self {
        Message::with(received.message().clone(), Settle::Push(Box::new(received)))
    }

    /// A message received by a simple consumer.
    pub fn received(message: CoreMessage, consumer: Arc<SimpleConsumer>) -> Self {
        Message::with(message, Settle::Simple(consumer))
    }

    /// A copy of the message as it stands (its receipt may have changed).
    pub fn snapshot(&self) -> CoreMessage {
        self.lock().clone()
    }

    /// Replaces the receipt after a change of invisibility.
    pub fn set_receipt(&self, receipt: Option<String>) {
        self.lock().receipt = receipt;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CoreMessage> {
        self.message.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Settles the message: `None` acks, `Some(delay)` nacks (after `delay` when given).
    fn settle(&self, nack: Option<Option<Duration>>) -> Outcome<SettleTask> {
        let mut settle = self.settle.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *settle, Settle::Settled) {
            Settle::Push(received) => {
                match nack {
                    None => received.ack(),
                    Some(None) => received.nack(),
                    Some(Some(delay)) => received.nack_after(delay),
                }
                Ok(SettleTask::Done)
            }
            Settle::Simple(consumer) => {
                *settle = Settle::Simple(consumer.clone());
                Ok(SettleTask::Simple(consumer, Box::new(self.snapshot()), nack))
            }
            Settle::Settled => Err(Error::Conflict("the message was already acknowledged or nacked".into()).into()),
            Settle::Listener => {
                *settle = Settle::Listener;
                Err(Error::Conflict(
                    "a listener's message is settled by the listener: return to ack, raise to nack".into(),
                )
                .into())
            }
            Settle::Nothing => {
                *settle = Settle::Nothing;
                Err(invalid("/receipt", "the message was not received for a group"))
            }
        }
    }
}

/// The remote half of settling a message, run off the GIL.
enum SettleTask {
    Done,
    Simple(Arc<SimpleConsumer>, Box<CoreMessage>, Option<Option<Duration>>),
}

impl SettleTask {
    async fn run(self) -> Outcome<()> {
        match self {
            SettleTask::Done => Ok(()),
            SettleTask::Simple(consumer, message, None) => Ok(consumer.ack(&message).await?),
            SettleTask::Simple(consumer, message, Some(delay)) => Ok(consumer.nack(&message, delay).await?),
        }
    }
}

/// Milliseconds from Python: a non-negative int.
pub fn millis(field: &str, value: i64) -> Outcome<Duration> {
    u64::try_from(value).map(Duration::from_millis).map_err(|_| invalid(field, "must not be negative"))
}

/// An optional delay in milliseconds.
pub fn opt_millis(field: &str, value: Option<i64>) -> Outcome<Option<Duration>> {
    value.map(|v| millis(field, v)).transpose()
}

fn state_name(state: MessageState) -> &'static str {
    match state {
        MessageState::Stored => "stored",
        MessageState::Scheduled => "scheduled",
        MessageState::Half => "half",
    }
}

#[pymethods]
impl Message {
    /// A message built by hand, for testing listeners and handlers; it cannot be acked.
    #[new]
    #[pyo3(signature = (body=None, *, topic="", msg_id="", tag=None, keys=None, properties=None, receipt=None, reconsume_times=0, born_ts=0, store_ts=0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        body: Option<&Bound<'_, PyAny>>,
        topic: &str,
        msg_id: &str,
        tag: Option<String>,
        keys: Option<&Bound<'_, PyAny>>,
        properties: Option<&Bound<'_, PyAny>>,
        receipt: Option<String>,
        reconsume_times: u32,
        born_ts: u64,
        store_ts: u64,
    ) -> PyResult<Self> {
        let body = raise(py, body.map(body_bytes).transpose())?.unwrap_or_default();
        let keys = raise(py, keys.map(|k| string_list("keys", k)).transpose())?.unwrap_or_default();
        let properties = raise(py, properties.map(property_map).transpose())?.unwrap_or_default();
        Ok(Message::looked_up(CoreMessage {
            msg_id: msg_id.to_string(),
            topic: topic.to_string(),
            queue_id: None,
            queue_offset: None,
            commit_offset: None,
            body,
            tag,
            keys,
            properties,
            born_ts,
            store_ts,
            reconsume_times,
            receipt,
            state: MessageState::Stored,
        }))
    }

    /// The message id, stable through delay, retry, dead letter and resend.
    #[getter]
    fn msg_id(&self) -> String {
        self.lock().msg_id.clone()
    }

    /// The topic it was published to (also for retried and dead letters).
    #[getter]
    fn topic(&self) -> String {
        self.lock().topic.clone()
    }

    /// Its queue in the topic; None while scheduled or half.
    #[getter]
    fn queue_id(&self) -> Option<u32> {
        self.lock().queue_id
    }

    /// Its offset in that queue; None while scheduled or half.
    #[getter]
    fn queue_offset(&self) -> Option<u64> {
        self.lock().queue_offset
    }

    /// Its offset in the commit log; None while scheduled or half.
    #[getter]
    fn commit_offset(&self) -> Option<u64> {
        self.lock().commit_offset
    }

    /// The body bytes.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.lock().body)
    }

    /// The body decoded as UTF-8, or None when it is not valid UTF-8 (the contract's `body`).
    #[getter]
    fn text(&self) -> Option<String> {
        String::from_utf8(self.lock().body.clone()).ok()
    }

    /// The body in standard base64 (the contract's `body_base64`).
    #[getter]
    fn body_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.lock().body)
    }

    /// The tag, or None.
    #[getter]
    fn tag(&self) -> Option<String> {
        self.lock().tag.clone()
    }

    /// The keys (indexed for lookup).
    #[getter]
    fn keys(&self) -> Vec<String> {
        self.lock().keys.clone()
    }

    /// The user properties.
    #[getter]
    fn properties(&self) -> BTreeMap<String, String> {
        self.lock().properties.clone()
    }

    /// Creation time at the producer, epoch milliseconds.
    #[getter]
    fn born_ts(&self) -> u64 {
        self.lock().born_ts
    }

    /// Time the broker stored it, epoch milliseconds.
    #[getter]
    fn store_ts(&self) -> u64 {
        self.lock().store_ts
    }

    /// How many times it was redelivered after a failure.
    #[getter]
    fn reconsume_times(&self) -> u32 {
        self.lock().reconsume_times
    }

    /// The receipt handle when it was received for a group, else None.
    #[getter]
    fn receipt(&self) -> Option<String> {
        self.lock().receipt.clone()
    }

    /// `"stored"`, `"scheduled"` (delayed) or `"half"` (transactional, not yet committed).
    #[getter]
    fn state(&self) -> &'static str {
        state_name(self.lock().state)
    }

    /// Marks the message consumed. For a push consumer's message the next message of an
    /// orderly queue follows; for a simple consumer's it acks the receipt.
    fn ack(&self, py: Python<'_>) -> PyResult<()> {
        let task = raise(py, self.settle(None))?;
        raise(py, runtime::block_on(py, task.run()))
    }

    /// Marks the message failed: it is redelivered after `delay_ms`, or by default after the
    /// retry delay (in place for orderly and broadcasting consumers).
    #[pyo3(signature = (delay_ms=None))]
    fn nack(&self, py: Python<'_>, delay_ms: Option<i64>) -> PyResult<()> {
        let task = raise(py, opt_millis("/delay_ms", delay_ms).and_then(|d| self.settle(Some(d))))?;
        raise(py, runtime::block_on(py, task.run()))
    }

    /// `ack()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(name = "_ack_async")]
    fn ack_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let task = raise(py, self.settle(None))?;
        runtime::awaitable(py, task.run())
    }

    /// `nack()` for asyncio (internal: `ferrymq.aio` wraps it).
    #[pyo3(signature = (delay_ms=None))]
    #[pyo3(name = "_nack_async")]
    fn nack_async<'py>(&self, py: Python<'py>, delay_ms: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        let task = raise(py, opt_millis("/delay_ms", delay_ms).and_then(|d| self.settle(Some(d))))?;
        runtime::awaitable(py, task.run())
    }

    fn __repr__(&self) -> String {
        let m = self.lock();
        let body = match std::str::from_utf8(&m.body) {
            Ok(text) if text.len() <= 40 => format!("b{}", py_str_repr(text)),
            Ok(_) | Err(_) => format!("<{} bytes>", m.body.len()),
        };
        format!(
            "Message(msg_id={}, topic={}, queue_id={}, queue_offset={}, tag={}, reconsume_times={}, body={body})",
            py_str_repr(&m.msg_id),
            py_str_repr(&m.topic),
            py_opt(m.queue_id),
            py_opt(m.queue_offset),
            m.tag.as_deref().map_or_else(|| "None".to_string(), py_str_repr),
            m.reconsume_times
        )
    }
}

/// What a send returns: where the message landed (`queue_id` and `queue_offset` are None for
/// delayed and transactional sends) and, for a transactional send, its `transaction_id`.
#[pyclass(frozen, eq, get_all, module = "ferrymq._native")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendResult {
    /// The message id, stable for the message's life.
    pub msg_id: String,
    /// The queue it landed in; None while delayed or half.
    pub queue_id: Option<u32>,
    /// Its offset in that queue; None while delayed or half.
    pub queue_offset: Option<u64>,
    /// Set for transactional sends.
    pub transaction_id: Option<String>,
}

impl From<CoreSendResult> for SendResult {
    fn from(r: CoreSendResult) -> Self {
        SendResult {
            msg_id: r.msg_id,
            queue_id: r.queue_id,
            queue_offset: r.queue_offset,
            transaction_id: r.transaction_id,
        }
    }
}

#[pymethods]
impl SendResult {
    fn __repr__(&self) -> String {
        let mut text = format!(
            "SendResult(msg_id={}, queue_id={}, queue_offset={}",
            py_str_repr(&self.msg_id),
            py_opt(self.queue_id),
            py_opt(self.queue_offset)
        );
        if let Some(id) = &self.transaction_id {
            text.push_str(&format!(", transaction_id={}", py_str_repr(id)));
        }
        text.push(')');
        text
    }
}

/// A str as Python's `repr` writes it (single quotes; good enough for ids and names).
pub fn py_str_repr(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| match c {
            '\\' => vec!['\\', '\\'],
            '\'' => vec!['\\', '\''],
            '\n' => vec!['\\', 'n'],
            c => vec![c],
        })
        .collect();
    format!("'{escaped}'")
}

fn py_opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "None".to_string(), |v| v.to_string())
}

/// The name of an object's type, for error messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

fn type_error(what: &str, expected: &str, obj: &Bound<'_, PyAny>) -> Failure {
    Failure::Py(PyTypeError::new_err(format!("{what} must be {expected}, not {}", type_name(obj))))
}

/// A body: bytes, bytearray or str (sent as UTF-8).
pub fn body_bytes(obj: &Bound<'_, PyAny>) -> Outcome<Vec<u8>> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        Ok(bytes.as_bytes().to_vec())
    } else if let Ok(text) = obj.cast::<PyString>() {
        Ok(text.to_cow()?.as_bytes().to_vec())
    } else if let Ok(array) = obj.cast::<PyByteArray>() {
        Ok(array.to_vec())
    } else {
        Err(type_error("body", "bytes or str", obj))
    }
}

fn string(what: &str, obj: &Bound<'_, PyAny>) -> Outcome<String> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.to_string()),
        Err(_) => Err(type_error(what, "str", obj)),
    }
}

fn opt_string(what: &str, obj: &Bound<'_, PyAny>) -> Outcome<Option<String>> {
    if obj.is_none() {
        Ok(None)
    } else {
        string(what, obj).map(Some)
    }
}

/// Keys: one str, or an iterable of str.
pub fn string_list(what: &str, obj: &Bound<'_, PyAny>) -> Outcome<Vec<String>> {
    if obj.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(one) = obj.cast::<PyString>() {
        return Ok(vec![one.to_cow()?.to_string()]);
    }
    let iter = obj.try_iter().map_err(|_| type_error(what, "a str or a list of str", obj))?;
    iter.map(|item| string(what, &item?)).collect()
}

/// Properties: a mapping of str to str (ints, floats and bools are written as text, so that
/// SQL filters can compare them).
pub fn property_map(obj: &Bound<'_, PyAny>) -> Outcome<BTreeMap<String, String>> {
    if obj.is_none() {
        return Ok(BTreeMap::new());
    }
    let dict = obj.cast::<PyDict>().map_err(|_| type_error("properties", "a dict of str to str", obj))?;
    let mut map = BTreeMap::new();
    for (name, value) in dict.iter() {
        let name = string("a property name", &name)?;
        let text = if let Ok(s) = value.cast::<PyString>() {
            s.to_cow()?.to_string()
        } else if value.is_instance_of::<pyo3::types::PyBool>() {
            if value.is_truthy()? { "true" } else { "false" }.to_string()
        } else if value.is_instance_of::<pyo3::types::PyInt>() || value.is_instance_of::<pyo3::types::PyFloat>() {
            value.str()?.to_cow()?.to_string()
        } else {
            return Err(type_error(&format!("property {name:?}"), "str, int or float", &value));
        };
        map.insert(name, text);
    }
    Ok(map)
}

fn int(what: &str, obj: &Bound<'_, PyAny>) -> Outcome<Option<i64>> {
    if obj.is_none() {
        return Ok(None);
    }
    if !obj.is_instance_of::<pyo3::types::PyInt>() || obj.is_instance_of::<pyo3::types::PyBool>() {
        return Err(type_error(what, "int", obj));
    }
    obj.extract::<i64>().map(Some).map_err(|_| invalid(&format!("/{what}"), "is out of range"))
}

/// How an attribute dict arrived: as keyword arguments (an unknown name is a `TypeError`, as
/// for any Python call) or as one entry of a batch (an `InvalidArgument` naming its place).
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// `send(topic, body, **attrs)`.
    Kwargs(&'a str),
    /// `send_batch(topic, [..., {"body": ..., ...}])`, at this index.
    Batch(usize),
}

/// Builds a message to publish from a body and its attributes: `tag`, `keys`, `properties`,
/// `delay_level` | `delay_ms` | `deliver_at`, `sharding_key`, `idempotency_key`.
pub fn outgoing(
    body: Option<&Bound<'_, PyAny>>,
    attrs: Option<&Bound<'_, PyDict>>,
    source: Source<'_>,
) -> Outcome<OutgoingMessage> {
    let mut message = OutgoingMessage::default();
    let mut body = body.map(body_bytes).transpose()?;
    let mut delays = Vec::new();
    let field = |name: &str| match source {
        Source::Kwargs(_) => format!("/{name}"),
        Source::Batch(i) => format!("/messages/{i}/{name}"),
    };
    if let Some(attrs) = attrs {
        for (name, value) in attrs.iter() {
            let name = string("an attribute name", &name)?;
            match name.as_str() {
                "body" if matches!(source, Source::Batch(_)) => body = Some(body_bytes(&value)?),
                "tag" => message.tag = opt_string("tag", &value)?,
                "keys" => message.keys = string_list("keys", &value)?,
                "properties" => message.properties = property_map(&value)?,
                "sharding_key" => message.sharding_key = opt_string("sharding_key", &value)?,
                "idempotency_key" => message.idempotency_key = opt_string("idempotency_key", &value)?,
                "delay_level" | "delay_ms" | "deliver_at" => {
                    if let Some(v) = int(&name, &value)? {
                        let positive = u64::try_from(v).ok().filter(|&v| v > 0);
                        let Some(v) = positive else {
                            return Err(invalid(&field(&name), "must be a positive int"));
                        };
                        let delay = match name.as_str() {
                            "delay_level" => Delay::Level(u32::try_from(v).unwrap_or(u32::MAX)),
                            "delay_ms" => Delay::Millis(v),
                            _ => Delay::At(v),
                        };
                        delays.push((name.clone(), delay));
                    }
                }
                other => {
                    return Err(match source {
                        Source::Kwargs(function) => Failure::Py(PyTypeError::new_err(format!(
                            "{function}() got an unexpected keyword argument {}",
                            py_str_repr(other)
                        ))),
                        Source::Batch(_) => invalid(
                            &field(other),
                            "unknown message attribute (expected body, tag, keys, properties, delay_level, delay_ms, deliver_at, sharding_key, idempotency_key)",
                        ),
                    })
                }
            }
        }
    }
    if delays.len() > 1 {
        return Err(invalid(&field(&delays[1].0), "give at most one of delay_level, delay_ms and deliver_at"));
    }
    message.delay = delays.pop().map(|(_, d)| d);
    message.body = body.ok_or_else(|| invalid(&field("body"), "is required"))?;
    Ok(message)
}

/// One entry of a batch: a body (bytes or str) or a dict with `body` and attributes.
pub fn batch_entry(index: usize, entry: &Bound<'_, PyAny>) -> Outcome<OutgoingMessage> {
    match entry.cast::<PyDict>() {
        Ok(dict) => outgoing(None, Some(dict), Source::Batch(index)),
        Err(_) => outgoing(Some(entry), None, Source::Batch(index)),
    }
}
