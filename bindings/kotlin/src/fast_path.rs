//! The JNI fast path: the calls every message makes (send, send a batch, take messages,
//! settle, ack, nack) as JNI native methods of the Kotlin object `dev.ferrymq.FastPath`,
//! in this same library, beside the uniffi bindings that carry everything else.
//!
//! Why: through uniffi's JNA bindings a call costs tens of microseconds on this JVM whatever
//! it does (JNA allocates `Structure`s and `Memory` for the call status and each buffer, each
//! buffer is one more call, and each method call first clones its object's handle); a JNI
//! call costs well under one. `bindings/kotlin/README.md` has the measured figures.
//!
//! How: objects are named by their [`Registry`](crate::registry::Registry) id
//! ([`FfiProducer::fast_id`], [`FfiPushConsumer::fast_id`]). Records cross as byte arrays in
//! uniffi's own serialization, so the Kotlin side reads and writes them with the generated
//! converters and both paths agree on every field (those with a body through [`wire`], which
//! copies the body whole where uniffi goes byte by byte). A failure is thrown as the same
//! `FfiException.Failure` uniffi throws. An asynchronous call starts on the calling thread
//! and runs there as far as it can without waiting (a push consumer's messages already
//! queued are taken at once; a send is handed to the store); the first time it has to wait,
//! it moves to the [`runtime`], where whatever wakes it spawns it (see [`Handoff`]). It
//! completes by calling `FastPath.complete(token, bytes, error)`: from the calling thread
//! when it never waited, else from the runtime's thread (attached to the JVM as a daemon by
//! [`attach`], and again whenever something detached it). `FastPath.cancel(token)` aborts
//! it. Panics never cross: each entry point and each
//! call catches them and reports an `internal` error.
//!
//! `#[no_mangle]` is what makes the JVM find the entry points, and the `unsafe_code` lint
//! counts it, hence the `allow` below; the one `unsafe` block is [`attach`]'s.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Wake, Waker};

use futures::future::{AbortHandle, Aborted};
use futures::FutureExt;
use jni::objects::{GlobalRef, JByteArray, JClass, JLongArray, JObject, JString, JThrowable, JValue};
use jni::sys::{jbyteArray, jint, jlong};
use jni::{JNIEnv, JavaVM};
use uniffi::Lower;

use crate::client::opt_millis;
use crate::consumer::{batch_size, FfiPushConsumer, PUSH_CONSUMERS};
use crate::error::FfiError;
use crate::message::{FfiOutgoing, FfiSendResult};
use crate::producer::{FfiProducer, PRODUCERS};
use crate::runtime;
use crate::wire;
use crate::UniFfiTag;

/// What the library keeps of the JVM, from `FastPath.init`.
struct Java {
    vm: JavaVM,
    /// `dev.ferrymq.FastPath`, whose static `complete` ends asynchronous calls.
    fast_path: GlobalRef,
    /// `dev.ferrymq.ffi.FfiException$Failure`, the exception of every failed call.
    failure: GlobalRef,
}

static JAVA: OnceLock<Java> = OnceLock::new();

/// An address unique to this copy of the library: the Kotlin side compares the one it gets
/// through JNI ([`Java_dev_ferrymq_FastPath_init`]) with the one through uniffi
/// ([`ffi_library_marker`]), so that both paths are known to share one registry and runtime.
fn library_marker() -> u64 {
    static MARKER: u8 = 0;
    ptr::addr_of!(MARKER) as u64
}

/// This copy of the library's marker, as the JNI fast path reports it too.
#[uniffi::export]
pub fn ffi_library_marker() -> u64 {
    library_marker()
}

/// Why a call failed: a FerryMQ error, or the JNI (an exception may be pending already).
enum Failure {
    Ffi(FfiError),
    Jni(jni::errors::Error),
}

impl From<FfiError> for Failure {
    fn from(e: FfiError) -> Self {
        Failure::Ffi(e)
    }
}

impl From<jni::errors::Error> for Failure {
    fn from(e: jni::errors::Error) -> Self {
        Failure::Jni(e)
    }
}

/// The `FfiException.Failure` for `error`.
fn exception<'l>(env: &mut JNIEnv<'l>, java: &Java, error: &FfiError) -> jni::errors::Result<JObject<'l>> {
    let FfiError::Failure { kind, detail, field } = error;
    let kind = env.new_string(kind)?;
    let detail = env.new_string(detail)?;
    let field = match field {
        Some(field) => JObject::from(env.new_string(field)?),
        None => JObject::null(),
    };
    env.new_object(
        &java.failure,
        "(Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;)V",
        &[JValue::Object(&kind), JValue::Object(&detail), JValue::Object(&field)],
    )
}

/// Throws `failure` in the calling Java thread, unless a JNI failure left one pending.
fn throw(env: &mut JNIEnv<'_>, failure: Failure) {
    if env.exception_check().unwrap_or(true) {
        return;
    }
    let error = match failure {
        Failure::Ffi(e) => e,
        Failure::Jni(e) => FfiError::internal(format!("the JNI call failed: {e}")),
    };
    let thrown = match JAVA.get() {
        Some(java) => exception(env, java, &error).and_then(|e| env.throw(JThrowable::from(e))),
        None => env.throw_new("java/lang/IllegalStateException", "FastPath.init was not called"),
    };
    if thrown.is_err() && !env.exception_check().unwrap_or(true) {
        let _ = env.throw_new("java/lang/IllegalStateException", error.to_string());
    }
}

/// Runs an entry point's body: its value, or `None` with an exception thrown in Java (for
/// an error, and for a panic, as an `internal` one).
fn guard<'l, T>(env: &mut JNIEnv<'l>, call: impl FnOnce(&mut JNIEnv<'l>) -> Result<T, Failure>) -> Option<T> {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| call(env)))
        .unwrap_or_else(|payload| Err(Failure::Ffi(FfiError::panicked(payload))));
    match outcome {
        Ok(value) => Some(value),
        Err(failure) => {
            throw(env, failure);
            None
        }
    }
}

/// [`guard`] for a body that answers bytes: a new `byte[]`, or null with an exception thrown.
fn bytes_call<'l>(env: &mut JNIEnv<'l>, call: impl FnOnce(&mut JNIEnv<'l>) -> Result<Vec<u8>, Failure>) -> jbyteArray {
    guard(env, |env| {
        let bytes = call(env)?;
        Ok(env.byte_array_from_slice(&bytes)?)
    })
    .map_or(ptr::null_mut(), JByteArray::into_raw)
}

/// `value` in uniffi's serialization.
fn encode<T: Lower<UniFfiTag>>(value: T) -> Vec<u8> {
    let mut bytes = Vec::new();
    T::write(value, &mut bytes);
    bytes
}

fn closed(what: &str, id: jlong) -> FfiError {
    FfiError::internal(format!("{what} {id} is closed or was never registered"))
}

fn producer(id: jlong) -> Result<Arc<FfiProducer>, FfiError> {
    u64::try_from(id).ok().and_then(|id| PRODUCERS.get(id)).ok_or_else(|| closed("producer", id))
}

fn push_consumer(id: jlong) -> Result<Arc<FfiPushConsumer>, FfiError> {
    u64::try_from(id).ok().and_then(|id| PUSH_CONSUMERS.get(id)).ok_or_else(|| closed("push consumer", id))
}

fn string(env: &mut JNIEnv<'_>, s: &JString<'_>) -> Result<String, Failure> {
    Ok(env.get_string(s)?.into())
}

fn longs(env: &mut JNIEnv<'_>, array: &JLongArray<'_>) -> Result<Vec<i64>, Failure> {
    let len = env.get_array_length(array)?;
    let mut longs = vec![0; usize::try_from(len).unwrap_or(0)];
    env.get_long_array_region(array, 0, &mut longs)?;
    Ok(longs)
}

/// A `java.lang.Long` or null.
fn opt_long(env: &mut JNIEnv<'_>, value: &JObject<'_>) -> Result<Option<i64>, Failure> {
    if value.is_null() {
        return Ok(None);
    }
    Ok(Some(env.call_method(value, "longValue", "()J", &[])?.j()?))
}

/// Caches what later calls need from the JVM; returns [`library_marker`]. Called once by
/// `FastPath`'s initializer, before any other entry point.
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_init<'l>(mut env: JNIEnv<'l>, class: JClass<'l>) -> jlong {
    guard(&mut env, |env| {
        if JAVA.get().is_none() {
            let failure = env.find_class("dev/ferrymq/ffi/FfiException$Failure")?;
            let java = Java {
                vm: env.get_java_vm()?,
                fast_path: env.new_global_ref(&class)?,
                failure: env.new_global_ref(failure)?,
            };
            let _ = JAVA.set(java);
        }
        Ok(library_marker() as jlong)
    })
    .unwrap_or(0)
}

/// [`library_marker`] alone: the cheapest call there is, for the call-cost bench.
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_marker<'l>(_env: JNIEnv<'l>, _class: JClass<'l>) -> jlong {
    library_marker() as jlong
}

/// `FfiProducer::send_blocking`: an `FfiOutgoing` in, an `FfiSendResult` out.
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_sendBlocking<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    producer_id: jlong,
    topic: JString<'l>,
    message: JByteArray<'l>,
) -> jbyteArray {
    bytes_call(&mut env, |env| {
        let producer = producer(producer_id)?;
        let topic = string(env, &topic)?;
        let message = wire::decode_outgoing(&env.convert_byte_array(&message)?)?;
        Ok(encode(producer.send_blocking(topic, message)?))
    })
}

/// `FfiProducer::send_batch_blocking`: a sequence of `FfiOutgoing` in, of `FfiSendResult` out.
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_sendBatchBlocking<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    producer_id: jlong,
    topic: JString<'l>,
    messages: JByteArray<'l>,
) -> jbyteArray {
    bytes_call(&mut env, |env| {
        let producer = producer(producer_id)?;
        let topic = string(env, &topic)?;
        let messages = wire::decode_outgoings(&env.convert_byte_array(&messages)?)?;
        Ok(encode(producer.send_batch_blocking(topic, messages)?))
    })
}

/// The asynchronous send: completes `token` with an `FfiSendResult`. Invalid arguments are
/// thrown at once.
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_send<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    producer_id: jlong,
    topic: JString<'l>,
    message: JByteArray<'l>,
    token: jlong,
) {
    guard(&mut env, |env| {
        let producer = producer(producer_id)?.core().clone();
        let topic = string(env, &topic)?;
        let message = wire::decode_outgoing(&env.convert_byte_array(&message)?)?.into_core()?;
        start(token, async move {
            let result: FfiSendResult = producer.send(&topic, message).await?.into();
            Ok(Completion::new(encode(result)))
        });
        Ok(())
    });
}

/// The asynchronous batch send: completes `token` with a sequence of `FfiSendResult`.
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_sendBatch<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    producer_id: jlong,
    topic: JString<'l>,
    messages: JByteArray<'l>,
    token: jlong,
) {
    guard(&mut env, |env| {
        let producer = producer(producer_id)?.core().clone();
        let topic = string(env, &topic)?;
        let messages = wire::decode_outgoings(&env.convert_byte_array(&messages)?)?
            .into_iter()
            .map(FfiOutgoing::into_core)
            .collect::<Result<Vec<_>, _>>()?;
        start(token, async move {
            let results: Vec<FfiSendResult> =
                producer.send_batch(&topic, messages).await?.into_iter().map(Into::into).collect();
            Ok(Completion::new(encode(results)))
        });
        Ok(())
    });
}

/// `FfiPushConsumer::recv_batch_blocking`: settles `answers`, then waits for messages; a
/// sequence of `FfiDelivered` out (empty once the consumer is closed).
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_recvBatchBlocking<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    consumer_id: jlong,
    answers: JLongArray<'l>,
    max_messages: jint,
) -> jbyteArray {
    bytes_call(&mut env, |env| {
        let consumer = push_consumer(consumer_id)?;
        let answers = longs(env, &answers)?;
        Ok(wire::encode_taken(&consumer.settle_and_take(answers, max_messages)?))
    })
}

/// The asynchronous `FfiPushConsumer::recv_batch`: completes `token` with a sequence of
/// `FfiDelivered`. `timeout_ms` is a `java.lang.Long`, null to wait until a message comes or
/// the consumer closes. Messages taken for a caller that stopped waiting are given back.
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_recvBatch<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    consumer_id: jlong,
    max_messages: jint,
    timeout_ms: JObject<'l>,
    token: jlong,
) {
    guard(&mut env, |env| {
        let consumer = push_consumer(consumer_id)?;
        let max = batch_size(max_messages)?;
        let timeout = opt_millis("/timeout_ms", opt_long(env, &timeout_ms)?)?;
        start(token, async move {
            let taken = consumer.deliveries().take(max, timeout).await;
            let bytes = wire::encode_taken(&taken);
            let refused = move |bytes: Vec<u8>| {
                // Rare (a cancelled receive that found messages): split them again to requeue.
                if let Ok(taken) = wire::decode_taken(&bytes) {
                    consumer.deliveries().give_back(taken);
                }
            };
            Ok(Completion { bytes, refused: Some(Box::new(refused)) })
        });
        Ok(())
    });
}

/// `FfiPushConsumer::settle`: answers many deliveries; returns how many were skipped.
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_settle<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    consumer_id: jlong,
    answers: JLongArray<'l>,
) -> jint {
    guard(&mut env, |env| {
        let consumer = push_consumer(consumer_id)?;
        let answers = longs(env, &answers)?;
        Ok(consumer.settle(answers))
    })
    .unwrap_or(0)
}

/// `FfiPushConsumer::ack`.
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_ack<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    consumer_id: jlong,
    delivery_id: jlong,
) {
    guard(&mut env, |_| Ok(push_consumer(consumer_id)?.ack(delivery_id)?));
}

/// `FfiPushConsumer::nack`; `delay_ms` is a `java.lang.Long` or null (the retry delay).
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_nack<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    consumer_id: jlong,
    delivery_id: jlong,
    delay_ms: JObject<'l>,
) {
    guard(&mut env, |env| {
        let consumer = push_consumer(consumer_id)?;
        let delay = opt_long(env, &delay_ms)?;
        Ok(consumer.nack(delivery_id, delay)?)
    });
}

/// Aborts the asynchronous call of `token`, if it is still running (its caller was cancelled).
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_cancel<'l>(_env: JNIEnv<'l>, _class: JClass<'l>, token: jlong) {
    if let Some(task) = tasks().remove(&token) {
        task.abort();
    }
}

/// Panics on purpose: in this call when `token` is 0, else in an asynchronous task that then
/// completes `token`; for the tests that show a panic arrives as an exception.
#[no_mangle]
pub extern "system" fn Java_dev_ferrymq_FastPath_panicForTests<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    message: JString<'l>,
    token: jlong,
) {
    guard(&mut env, |env| {
        let message = string(env, &message)?;
        if token == 0 {
            panic!("{message}");
        }
        start(token, async move { panic!("{message}") });
        Ok(())
    });
}

/// What an asynchronous call hands to Kotlin, and what to do if no one takes it any more.
struct Completion {
    bytes: Vec<u8>,
    /// Given the bytes back when no one took them.
    refused: Option<Box<dyn FnOnce(Vec<u8>) + Send>>,
}

impl Completion {
    fn new(bytes: Vec<u8>) -> Self {
        Completion { bytes, refused: None }
    }
}

/// The running asynchronous calls, by token, so that `cancel` can abort them.
static TASKS: LazyLock<Mutex<HashMap<jlong, AbortHandle>>> = LazyLock::new(Mutex::default);

fn tasks() -> MutexGuard<'static, HashMap<jlong, AbortHandle>> {
    TASKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `call` (see the module doc) and completes `token` with its outcome (a panic as an
/// `internal` error). An aborted call completes nothing: its caller is gone.
fn start<F>(token: jlong, call: F)
where
    F: Future<Output = Result<Completion, FfiError>> + Send + 'static,
{
    let (call, abort) = futures::future::abortable(call);
    tasks().insert(token, abort);
    Handoff::run(Box::pin(async move {
        let outcome = AssertUnwindSafe(call).catch_unwind().await;
        tasks().remove(&token);
        let outcome = match outcome {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(Aborted)) => return,
            Err(panic) => Err(FfiError::panicked(panic)),
        };
        match outcome {
            Ok(Completion { bytes, refused }) => {
                if !complete(token, Ok(&bytes)) {
                    if let Some(refused) = refused {
                        refused(bytes);
                    }
                }
            }
            Err(e) => {
                complete(token, Err(e));
            }
        }
    }));
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A task polled first on the calling thread and spawned on the runtime by whatever wakes it
/// (the store's thread when a send is stored, the consumer's task when a message comes):
/// the caller's thread does the first part itself instead of waking a runtime thread for it,
/// which takes one thread hand-off off every call's path, and none is left for a call that
/// never waits.
#[derive(Default)]
struct Handoff {
    state: Mutex<HandoffState>,
}

#[derive(Default)]
struct HandoffState {
    /// Woken already: spawn the task as soon as it is parked.
    woken: bool,
    /// The task, waiting for its first wake-up.
    parked: Option<Task>,
}

impl Handoff {
    fn state(&self) -> MutexGuard<'_, HandoffState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Polls `task` on this thread, with the runtime entered (its timers, I/O and spawns);
    /// if it has to wait, parks it until its waker moves it to the runtime.
    fn run(mut task: Task) {
        let _runtime = runtime::handle().enter();
        let handoff = Arc::new(Handoff::default());
        let waker = Waker::from(handoff.clone());
        if task.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
            return;
        }
        let mut state = handoff.state();
        if state.woken {
            drop(state);
            runtime::handle().spawn(task);
        } else {
            state.parked = Some(task);
        }
    }
}

impl Wake for Handoff {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let parked = {
            let mut state = self.state();
            state.woken = true;
            state.parked.take()
        };
        // Once spawned, the runtime's own waker drives the task; this one is spent.
        if let Some(task) = parked {
            runtime::handle().spawn(task);
        }
    }
}

/// This thread's `JNIEnv`, attaching the thread to the JVM as a daemon if it is not attached.
///
/// Not `JavaVM::attach_current_thread_as_daemon`: the jni crate remembers the threads it
/// attached and, when it attaches one again, detaches it as it drops the old record, leaving
/// the new `JNIEnv` dangling. A runtime thread does get detached behind its back: JNA, after
/// a callback on a thread it once attached for a callback without a thread initializer,
/// detaches the thread even when someone else attached it since. So the JVM is asked each
/// time (`GetEnv`), and a thread found detached is attached again, with nothing remembered.
fn attach(vm: &JavaVM) -> jni::errors::Result<JNIEnv<'_>> {
    if let Ok(env) = vm.get_env() {
        return Ok(env);
    }
    let raw = vm.get_java_vm_pointer();
    let mut env = ptr::null_mut();
    // SAFETY: `raw` is the JVM's own invocation interface (from `GetJavaVM`, valid for the
    // life of the process); `AttachCurrentThreadAsDaemon` with null arguments attaches the
    // calling thread and writes its `JNIEnv` to `env`, which is valid on this thread while it
    // stays attached; it is used only inside this call of `complete`, on this thread.
    unsafe {
        let attach =
            (**raw).AttachCurrentThreadAsDaemon.ok_or(jni::errors::Error::NullPtr("AttachCurrentThreadAsDaemon"))?;
        jni::errors::jni_error_code_to_result(attach(raw, &mut env, ptr::null_mut()))?;
        JNIEnv::from_raw(env.cast())
    }
}

/// Calls `FastPath.complete(token, bytes, error)` from this thread (the caller's, or one of
/// the runtime's, [`attach`]ed); whether a caller was still waiting for `token`.
fn complete(token: jlong, outcome: Result<&[u8], FfiError>) -> bool {
    let Some(java) = JAVA.get() else { return false };
    let mut env = match attach(&java.vm) {
        Ok(env) => env,
        Err(e) => {
            tracing::error!(error = %e, "cannot attach a runtime thread to the JVM; an asynchronous call is lost");
            return false;
        }
    };
    let taken = env.with_local_frame(4, |env| -> jni::errors::Result<bool> {
        let (bytes, error) = match &outcome {
            Ok(bytes) => (JObject::from(env.byte_array_from_slice(bytes)?), JObject::null()),
            Err(e) => (JObject::null(), exception(env, java, e)?),
        };
        env.call_static_method(
            &java.fast_path,
            "complete",
            "(J[BLjava/lang/Throwable;)Z",
            &[JValue::Long(token), JValue::Object(&bytes), JValue::Object(&error)],
        )?
        .z()
    });
    match taken {
        Ok(taken) => taken,
        Err(e) => {
            // Never leave an exception pending on a thread that does not return to Java.
            let _ = env.exception_clear();
            tracing::error!(error = %e, "FastPath.complete failed; an asynchronous call is lost");
            false
        }
    }
}
