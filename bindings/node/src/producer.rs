//! [`NativeProducer`] and [`NativeTransactionProducer`], and the JavaScript functions that
//! decide a transaction (the local transaction and the check-back checker).
//!
//! Sends do not go through napi-rs's `async fn`: each of those creates a Promise and a
//! thread-safe function (a libuv handle) and tears them down again, and runs the send on a
//! runtime worker, which the JS thread must wake and which must wake the JS thread again:
//! more than the embedded broker takes to store a message (BENCHMARKS.md, "Node SDK").
//! Instead a send is a [`SendTask`] that the JS thread polls itself: the synchronous call
//! that starts it converts the message and polls it once (which queues the records for the
//! store's writer thread); whoever completes what it waits for (the writer, the dispatcher, a
//! timer) wakes it through the producer's one long-lived thread-safe function, and the JS
//! thread polls it again. The results of the sends finished by then go to `index.js` in that
//! same call, which settles the sends' promises by id. The JS thread only polls: the waits
//! are the store's threads' and the runtime's (the polls run inside the runtime's context, so
//! timers and spawned tasks work as on a worker).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};

use ferrymq_core::client::{
    Message, OutgoingMessage, Producer, SendResult, TransactionChecker, TransactionProducer, TransactionResolution,
};
use napi::bindgen_prelude::{within_runtime_if_available, Buffer, Function, Promise};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use serde::Serialize;

use crate::client::{Callback, ClientCell, Release};
use crate::errors::{js, to_napi};
use crate::message::{num, MessageData, OutgoingSpec, SendResultData};

/// Called on the JS thread with the sends finished since its last call, as JSON (see
/// [`Completions`]). Weak: an idle producer does not keep the process alive; `index.js`
/// keeps the event loop alive while a send is in flight.
pub type SentFn = ThreadsafeFunction<(), (), String, Status, false, true>;

/// A finished send, as `index.js` reads it: `{"id", "ok": [results]}` or `{"id", "err"}`
/// (the error as [`to_napi`] encodes it).
#[derive(Serialize)]
struct Sent {
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<Vec<Landed>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    err: Option<String>,
}

/// Where one message landed: `SendResult` in index.d.ts.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Landed {
    msg_id: String,
    queue_id: Option<u32>,
    queue_offset: Option<i64>,
}

impl From<SendResult> for Landed {
    fn from(r: SendResult) -> Self {
        Landed { msg_id: r.msg_id, queue_id: r.queue_id, queue_offset: r.queue_offset.map(num) }
    }
}

type SendFuture = Pin<Box<dyn Future<Output = ferrymq_core::Result<Vec<SendResult>>> + Send>>;

/// One send, polled on the JS thread; its waker queues it to be polled again.
struct SendTask {
    id: u32,
    /// `None` once finished.
    future: Mutex<Option<SendFuture>>,
    completions: Weak<Completions>,
}

impl Wake for SendTask {
    fn wake(self: Arc<Self>) {
        if let Some(completions) = self.completions.upgrade() {
            completions.ready(self);
        }
    }
}

impl SendTask {
    /// Polls the send once (on the JS thread); its result when it finished.
    fn poll(self: &Arc<Self>) -> Option<Sent> {
        let mut slot = self.future.lock().unwrap_or_else(|e| e.into_inner());
        let future = slot.as_mut()?;
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        // Inside the runtime's context, as on a worker (entering it panics once the runtime
        // is gone); a panic must not cross into Node.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
            within_runtime_if_available(|| future.as_mut().poll(&mut cx))
        }));
        let result = match polled {
            Ok(Poll::Pending) => return None,
            Ok(Poll::Ready(result)) => result,
            Err(_) => Err(ferrymq_core::Error::Unavailable("the send failed: the client panicked".into())),
        };
        *slot = None;
        Some(match result {
            Ok(results) => Sent { id: self.id, ok: Some(results.into_iter().map(Into::into).collect()), err: None },
            Err(e) => Sent { id: self.id, ok: None, err: Some(to_napi(&e).reason) },
        })
    }
}

/// A producer's sends to poll again and finished sends not yet handed to JS, and the
/// function that has the JS thread do both.
///
/// The first wake-up after a call asks for the next one; the call polls every send woken by
/// the time it runs, so a busy JS thread gets one call for many.
pub struct Completions {
    woken: Mutex<Vec<Arc<SendTask>>>,
    done: Mutex<Vec<Sent>>,
    /// Whether a call of `function` is on its way.
    called: AtomicBool,
    function: Mutex<Option<SentFn>>,
}

impl Completions {
    /// The completions of a producer whose results go to `on_sent` (`index.js`'s handler).
    pub fn new(on_sent: Function<'_, String, ()>) -> napi::Result<Arc<Completions>> {
        let completions = Arc::new(Completions {
            woken: Mutex::default(),
            done: Mutex::default(),
            called: AtomicBool::new(false),
            function: Mutex::default(),
        });
        // The function reaches the completions through a weak reference: it must not keep
        // them (and so itself) alive.
        let own = Arc::downgrade(&completions);
        let function = on_sent
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_| Ok(own.upgrade().map(|c| c.run()).unwrap_or_else(|| "[]".into())))?;
        *completions.function.lock().unwrap_or_else(|e| e.into_inner()) = Some(function);
        Ok(completions)
    }

    fn done(&self) -> std::sync::MutexGuard<'_, Vec<Sent>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// On the JS thread: polls the woken sends, then returns every finished one as JSON.
    fn run(&self) -> String {
        self.called.store(false, Ordering::Release);
        let woken = std::mem::take(&mut *self.woken.lock().unwrap_or_else(|e| e.into_inner()));
        let finished: Vec<Sent> = woken.iter().filter_map(SendTask::poll).collect();
        let mut sent = std::mem::take(&mut *self.done());
        sent.extend(finished);
        // Strings, integers and nulls: serializing them cannot fail.
        serde_json::to_string(&sent).unwrap_or_else(|_| "[]".into())
    }

    /// Has the JS thread run, unless a call is on its way already.
    fn call(&self) {
        if self.called.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(function) = &*self.function.lock().unwrap_or_else(|e| e.into_inner()) {
            // Fails only while Node shuts down, when nothing waits for the answer.
            let _ = function.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    /// Queues a woken send to be polled on the JS thread.
    fn ready(&self, task: Arc<SendTask>) {
        self.woken.lock().unwrap_or_else(|e| e.into_inner()).push(task);
        self.call();
    }

    /// On the JS thread: starts send `id` by polling it once.
    fn start(self: &Arc<Self>, id: u32, future: SendFuture) {
        let task = Arc::new(SendTask { id, future: Mutex::new(Some(future)), completions: Arc::downgrade(self) });
        if let Some(sent) = task.poll() {
            self.done().push(sent);
            self.call();
        }
    }
}

/// Publishes messages (see `Producer` in index.d.ts).
#[napi]
pub struct NativeProducer {
    producer: Producer,
    completions: Arc<Completions>,
    _cell: Arc<ClientCell>,
}

impl NativeProducer {
    pub fn new(cell: Arc<ClientCell>, group: Option<String>, completions: Arc<Completions>) -> Self {
        NativeProducer { producer: cell.client.producer(group.as_deref()), completions, _cell: cell }
    }
}

#[napi]
impl NativeProducer {
    /// The producer group, if any.
    #[napi(getter)]
    pub fn group(&self) -> Option<String> {
        self.producer.group().map(str::to_string)
    }

    /// Starts publishing one message; its result goes to the producer's `on_sent` under
    /// `id`. Throws at once for a message that is not valid here.
    #[napi]
    pub fn send(&self, topic: String, message: OutgoingSpec, id: u32) -> napi::Result<()> {
        let message = message.into_outgoing("")?;
        let producer = self.producer.clone();
        self.completions.start(id, Box::pin(async move { producer.send(&topic, message).await.map(|r| vec![r]) }));
        Ok(())
    }

    /// `send` of a message that is a body alone: the common send, without reading nine
    /// absent attributes of a message object.
    #[napi]
    pub fn send_body(&self, topic: String, body: Buffer, id: u32) -> napi::Result<()> {
        let message = OutgoingMessage::from(body.to_vec());
        drop(body);
        let producer = self.producer.clone();
        self.completions.start(id, Box::pin(async move { producer.send(&topic, message).await.map(|r| vec![r]) }));
        Ok(())
    }

    /// Starts publishing a batch atomically; its results go to `on_sent` under `id`.
    #[napi]
    pub fn send_batch(&self, topic: String, messages: Vec<OutgoingSpec>, id: u32) -> napi::Result<()> {
        let messages = messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| m.into_outgoing(&format!("/messages/{i}")))
            .collect::<napi::Result<Vec<OutgoingMessage>>>()?;
        let producer = self.producer.clone();
        self.completions.start(id, Box::pin(async move { producer.send_batch(&topic, messages).await }));
        Ok(())
    }

    /// `send_batch` of messages that are bodies alone: the common batch, without reading
    /// nine absent attributes of each message object.
    #[napi]
    pub fn send_bodies(&self, topic: String, bodies: Vec<Buffer>, id: u32) -> napi::Result<()> {
        let messages: Vec<OutgoingMessage> = bodies.iter().map(|b| OutgoingMessage::from(b.to_vec())).collect();
        drop(bodies);
        let producer = self.producer.clone();
        self.completions.start(id, Box::pin(async move { producer.send_batch(&topic, messages).await }));
        Ok(())
    }
}

/// A verdict function as `index.js` wraps it (the local transaction or the checker): called
/// on the JS thread with the half message, it resolves to `"commit"`, `"rollback"` or
/// `"unknown"`, or rejects with what the user's function threw.
pub type VerdictFn = ThreadsafeFunction<MessageData, Promise<String>, MessageData, Status, false>;

/// The check-back checker: weak, so that an open transaction producer alone does not keep
/// the process alive (check-backs are answered while anything else does).
pub type CheckerFn = ThreadsafeFunction<MessageData, Promise<String>, MessageData, Status, false, true>;

/// A JS checker as the client's [`TransactionChecker`]; the client calls it on a blocking
/// thread, which waits here for the JS verdict. A failure or a released checker counts as
/// `unknown`.
pub struct JsChecker(Arc<Callback<CheckerFn>>);

impl JsChecker {
    pub fn new(function: CheckerFn) -> Self {
        JsChecker(Callback::new(function))
    }
}

impl TransactionChecker for JsChecker {
    fn check(&self, message: &Message) -> TransactionResolution {
        let Some(function) = self.0.get() else { return TransactionResolution::Unknown };
        let data = MessageData::from(message.clone());
        let verdict = futures::executor::block_on(async move { function.call_async_catch(data).await?.await });
        match verdict {
            Ok(text) => TransactionResolution::parse(&text).unwrap_or(TransactionResolution::Unknown),
            Err(e) => {
                tracing::warn!(error = %e.reason, "the transaction checker failed; the transaction stays unknown");
                TransactionResolution::Unknown
            }
        }
    }
}

/// What a client releases on close: the producer stops answering check-backs.
struct TransactionHold {
    producer: Arc<TransactionProducer>,
    checker: Arc<Callback<CheckerFn>>,
}

impl Release for TransactionHold {
    fn release(&self) {
        self.producer.close();
        self.checker.release();
    }
}

/// A producer of transactional messages for one producer group (see `TransactionProducer`
/// in index.d.ts).
#[napi]
pub struct NativeTransactionProducer {
    hold: Arc<TransactionHold>,
    _cell: Arc<ClientCell>,
}

impl NativeTransactionProducer {
    pub async fn start(cell: Arc<ClientCell>, group: String, checker: JsChecker) -> napi::Result<Self> {
        let slot = checker.0.clone();
        let producer = js(cell.client.transaction_producer(&group, checker).await)?;
        let hold = Arc::new(TransactionHold { producer: Arc::new(producer), checker: slot });
        cell.hold(Arc::downgrade(&hold) as Weak<dyn Release>);
        Ok(NativeTransactionProducer { hold, _cell: cell })
    }
}

#[napi]
impl NativeTransactionProducer {
    /// The producer group.
    #[napi(getter)]
    pub fn group(&self) -> String {
        self.hold.producer.group().to_string()
    }

    /// Sends a half message, runs the local transaction, and ends the transaction as it
    /// answers. When it rejects, the transaction stays unknown and the rejection propagates.
    #[napi]
    pub async fn send_in_transaction(
        &self,
        topic: String,
        message: OutgoingSpec,
        local_transaction: VerdictFn,
    ) -> napi::Result<SendResultData> {
        let message = message.into_outgoing("")?;
        let mut failure = None;
        let result = self
            .hold
            .producer
            .send_in_transaction_async(&topic, message, |half| {
                let failure = &mut failure;
                async move {
                    let verdict =
                        async { local_transaction.call_async_catch(MessageData::from(half)).await?.await }.await;
                    match verdict.map(|text| TransactionResolution::parse(&text)) {
                        Ok(Ok(resolution)) => resolution,
                        Ok(Err(e)) => {
                            *failure = Some(crate::errors::to_napi(&e));
                            TransactionResolution::Unknown
                        }
                        Err(e) => {
                            *failure = Some(e);
                            TransactionResolution::Unknown
                        }
                    }
                }
            })
            .await;
        let result = js(result)?;
        match failure {
            Some(e) => Err(e),
            None => Ok(result.into()),
        }
    }

    /// Ends a transaction explicitly with `commit` or `rollback`.
    #[napi]
    pub async fn end_transaction(&self, transaction_id: String, status: String) -> napi::Result<()> {
        let resolution = js(TransactionResolution::parse(&status))?;
        js(self.hold.producer.end_transaction(&transaction_id, resolution).await)
    }

    /// Stops answering check-backs.
    #[napi]
    pub fn close(&self) {
        self.hold.release();
    }
}
