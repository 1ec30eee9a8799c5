//! [`FfiPushConsumer`] (a group member whose messages are taken in batches, by a listener's
//! threads on the Kotlin side or by a flow, and answered by delivery id), and
//! [`FfiSimpleConsumer`] (receive, then ack or nack by receipt).
//!
//! A listener is run by Kotlin threads that take messages with
//! [`FfiPushConsumer::recv_batch_blocking`], not by a callback from Rust: a call into the
//! library costs far less than a call out of it (JNA attaches the thread and converts the
//! arguments by reflection), and one call hands over every message ready at that moment
//! (and one call answers them: [`FfiPushConsumer::settle`]).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use ferrymq_core::client::{PushConsumer, ReceivedMessage, SimpleConsumer};
use futures::FutureExt;

use crate::client::opt_millis;
use crate::error::FfiError;
use crate::message::{millis, FfiMessage};
use crate::registry::Registry;
use crate::runtime;

/// The push consumers the JNI fast path ([`crate::fast_path`]) can reach, by
/// [`FfiPushConsumer::fast_id`].
pub(crate) static PUSH_CONSUMERS: LazyLock<Registry<FfiPushConsumer>> = LazyLock::new(Registry::new);

/// A queue a member consumes.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiQueue {
    /// The topic (the group's retry topic for its retry queue).
    pub topic: String,
    /// The queue.
    pub queue_id: i32,
}

/// A member of a consumer group on one topic.
#[derive(uniffi::Object)]
pub struct FfiPushConsumer {
    consumer: Arc<PushConsumer>,
    /// Messages handed to Kotlin and not answered yet, by delivery id; abandoned on close.
    held: Mutex<Held>,
    fast_id: OnceLock<u64>,
}

impl Drop for FfiPushConsumer {
    fn drop(&mut self) {
        if let Some(&id) = self.fast_id.get() {
            PUSH_CONSUMERS.remove(id);
        }
    }
}

#[derive(Default)]
struct Held {
    next_id: i64,
    open: HashMap<i64, ReceivedMessage>,
}

impl FfiPushConsumer {
    pub(crate) fn new(consumer: PushConsumer) -> Self {
        FfiPushConsumer { consumer: Arc::new(consumer), held: Mutex::new(Held::default()), fast_id: OnceLock::new() }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The received messages for Kotlin, each under a delivery id that answers it, remembered
    /// until answered (so that shutdown can abandon the rest). Each body is copied once, into
    /// the record.
    pub(crate) fn hand_out(&self, received: Vec<ReceivedMessage>) -> Vec<FfiDelivered> {
        let mut held = self.held();
        received
            .into_iter()
            .map(|received| {
                held.next_id += 1;
                let id = held.next_id;
                let message = received.message().clone().into();
                held.open.insert(id, received);
                FfiDelivered { id, message }
            })
            .collect()
    }

    /// The client's consumer.
    pub(crate) fn core(&self) -> &Arc<PushConsumer> {
        &self.consumer
    }

    /// Takes the deliveries `ids` back unanswered (handed out to a caller that stopped
    /// waiting): dropped, they are abandoned like those still held at shutdown.
    pub(crate) fn give_back(&self, ids: &[i64]) {
        let given_back: Vec<ReceivedMessage> = {
            let mut held = self.held();
            ids.iter().filter_map(|id| held.open.remove(id)).collect()
        };
        drop(given_back);
    }

    /// The message handed out under `id`, taken out of the held ones.
    fn take_held(&self, id: i64) -> Result<ReceivedMessage, FfiError> {
        self.held().open.remove(&id).ok_or_else(|| {
            ferrymq_core::Error::Conflict(format!("delivery {id} was already acked or nacked, or its consumer closed"))
                .into()
        })
    }
}

/// `max_messages` as a batch size, or an invalid argument.
pub(crate) fn batch_size(max_messages: i32) -> Result<usize, FfiError> {
    usize::try_from(max_messages)
        .ok()
        .filter(|&m| m >= 1)
        .ok_or_else(|| FfiError::invalid("/max_messages", "must be at least 1"))
}

/// Waits (up to `timeout`) for one message, then takes the others already waiting, up to `max`.
pub(crate) async fn take(consumer: &PushConsumer, max: usize, timeout: Option<Duration>) -> Vec<ReceivedMessage> {
    let first = match timeout {
        None => consumer.recv().await,
        Some(t) => tokio::time::timeout(t, consumer.recv()).await.ok().flatten(),
    };
    let Some(first) = first else { return Vec::new() };
    let mut taken = vec![first];
    // `recv` is cancel-safe: a poll that finds nothing queued gives nothing up.
    while taken.len() < max {
        match consumer.recv().now_or_never() {
            Some(Some(received)) => taken.push(received),
            _ => break,
        }
    }
    taken
}

/// A message handed out by a push consumer, with the id that answers it
/// ([`FfiPushConsumer::settle`], [`FfiPushConsumer::nack`]).
#[derive(uniffi::Record)]
pub struct FfiDelivered {
    /// The delivery id, unique in this consumer.
    pub id: i64,
    /// The message.
    pub message: FfiMessage,
}

#[uniffi::export]
impl FfiPushConsumer {
    /// This consumer's id for the JNI fast path (through which the SDK takes, settles, acks
    /// and nacks its messages), registered on first use and forgotten when it is dropped.
    pub fn fast_id(self: Arc<Self>) -> u64 {
        *self.fast_id.get_or_init(|| PUSH_CONSUMERS.insert(&self))
    }

    /// The consumer group.
    pub fn group(&self) -> String {
        self.consumer.group().to_string()
    }

    /// The topic.
    pub fn topic(&self) -> String {
        self.consumer.topic().to_string()
    }

    /// This member's client id, unique in the group.
    pub fn client_id(&self) -> String {
        self.consumer.client_id().to_string()
    }

    /// The queues this member consumes now.
    pub fn assignment(&self) -> Vec<FfiQueue> {
        self.consumer
            .assignment()
            .into_iter()
            .map(|q| FfiQueue { topic: q.topic, queue_id: i32::try_from(q.queue_id).unwrap_or(i32::MAX) })
            .collect()
    }

    /// Joins the group and starts consuming.
    pub async fn start(&self) -> Result<(), FfiError> {
        let consumer = self.consumer.clone();
        runtime::run(async move { Ok(consumer.start().await?) }).await
    }

    /// Waits up to `timeout_ms` (forever when none) for a message, then takes it and every
    /// other one ready at that moment, `max_messages` at most (the consumer hands out no more
    /// than its `consume_workers` unanswered anyway). Empty on timeout or once the consumer
    /// is closed.
    pub async fn recv_batch(&self, max_messages: i32, timeout_ms: Option<i64>) -> Result<Vec<FfiDelivered>, FfiError> {
        let max = batch_size(max_messages)?;
        let timeout = opt_millis("/timeout_ms", timeout_ms)?;
        let consumer = self.consumer.clone();
        let received = runtime::run(async move { Ok(take(&consumer, max, timeout).await) }).await?;
        Ok(self.hand_out(received))
    }

    /// [`settle`](Self::settle) `answers`, then [`recv_batch`](Self::recv_batch) without a
    /// timeout, blocking the calling thread (a listener's thread on the Kotlin side, never one
    /// of the runtime's): one call answers a thread's last messages and takes the next ones.
    /// Empty once the consumer is closed.
    pub fn recv_batch_blocking(&self, answers: Vec<i64>, max_messages: i32) -> Result<Vec<FfiDelivered>, FfiError> {
        let max = batch_size(max_messages)?;
        self.settle(answers);
        let consumer = self.consumer.clone();
        let received = runtime::block_on(async move { Ok(take(&consumer, max, None).await) })?;
        Ok(self.hand_out(received))
    }

    /// Answers many deliveries in one call: a positive id is consumed, a negated one failed
    /// (redelivered after the retry delay). Ids already answered (or abandoned by close) are
    /// skipped; their number is returned.
    pub fn settle(&self, answers: Vec<i64>) -> i32 {
        let mut held = self.held();
        let mut skipped = 0;
        for answer in answers {
            let Some(id) = answer.checked_abs() else {
                skipped += 1;
                continue;
            };
            match held.open.remove(&id) {
                Some(received) if answer > 0 => received.ack(),
                Some(received) => received.nack(),
                None => skipped += 1,
            }
        }
        skipped
    }

    /// Marks the delivery `id` consumed. `conflict` when it was answered already or its
    /// consumer closed.
    pub fn ack(&self, id: i64) -> Result<(), FfiError> {
        self.take_held(id)?.ack();
        Ok(())
    }

    /// Marks the delivery `id` failed: redelivered after `delay_ms`, or the retry delay when
    /// none.
    pub fn nack(&self, id: i64, delay_ms: Option<i64>) -> Result<(), FfiError> {
        let delay = opt_millis("/delay_ms", delay_ms)?;
        let received = self.take_held(id)?;
        match delay {
            Some(d) => received.nack_after(d),
            None => received.nack(),
        }
        Ok(())
    }

    /// Leaves the group cleanly, committing what was acked; messages handed out and not
    /// answered are abandoned: not committed, so the group delivers them again (to the
    /// member that takes their queue). Ends `recv`. Idempotent.
    pub async fn shutdown(&self) -> Result<(), FfiError> {
        let consumer = self.consumer.clone();
        let held: Vec<ReceivedMessage> = self.held().open.drain().map(|(_, received)| received).collect();
        runtime::run(async move {
            let mut closing = Box::pin(consumer.close());
            // The first poll runs close's synchronous start: the stop flag and every queue's
            // stop. A delivery dropped after that counts as abandoned, one dropped before as
            // failed (redelivered through retry), so the order matters.
            if let std::task::Poll::Ready(result) = futures::poll!(&mut closing) {
                return Ok(result?);
            }
            // Dropped without an answer: abandoned, delivered again by whoever takes the queue.
            drop(held);
            Ok(closing.await?)
        })
        .await
    }
}

/// A lease-based consumer of one topic for one group.
#[derive(uniffi::Object)]
pub struct FfiSimpleConsumer {
    consumer: Arc<SimpleConsumer>,
}

impl FfiSimpleConsumer {
    pub(crate) fn new(consumer: SimpleConsumer) -> Self {
        FfiSimpleConsumer { consumer: Arc::new(consumer) }
    }
}

#[uniffi::export]
impl FfiSimpleConsumer {
    /// The consumer group.
    pub fn group(&self) -> String {
        self.consumer.group().to_string()
    }

    /// The topic.
    pub fn topic(&self) -> String {
        self.consumer.topic().to_string()
    }

    /// Receives up to `max_messages` (1 to 1000), waiting up to `wait_ms` when none is
    /// available; each stays invisible to the group for `invisible_ms`.
    pub async fn receive(
        &self,
        max_messages: i32,
        wait_ms: i64,
        invisible_ms: i64,
    ) -> Result<Vec<FfiMessage>, FfiError> {
        let max = batch_size(max_messages)?;
        let wait = millis("/wait_ms", wait_ms)?;
        let invisible = millis("/invisible_ms", invisible_ms)?;
        let consumer = self.consumer.clone();
        runtime::run(
            async move { Ok(consumer.receive(max, wait, invisible).await?.into_iter().map(Into::into).collect()) },
        )
        .await
    }

    /// Marks a received message done.
    pub async fn ack(&self, message: FfiMessage) -> Result<(), FfiError> {
        let consumer = self.consumer.clone();
        runtime::run(async move { Ok(consumer.ack(&message.into_core()).await?) }).await
    }

    /// Gives a received message back, to return after `delay_ms` (default: the retry delay).
    pub async fn nack(&self, message: FfiMessage, delay_ms: Option<i64>) -> Result<(), FfiError> {
        let delay: Option<Duration> = opt_millis("/delay_ms", delay_ms)?;
        let consumer = self.consumer.clone();
        runtime::run(async move { Ok(consumer.nack(&message.into_core(), delay).await?) }).await
    }

    /// Sets a received message's remaining invisibility; returns its new receipt (the old one
    /// stops working).
    pub async fn change_invisible_duration(&self, message: FfiMessage, invisible_ms: i64) -> Result<String, FfiError> {
        let invisible = millis("/invisible_ms", invisible_ms)?;
        let consumer = self.consumer.clone();
        runtime::run(async move {
            let mut message = message.into_core();
            consumer.change_invisible_duration(&mut message, invisible).await?;
            Ok(message.receipt.unwrap_or_default())
        })
        .await
    }

    /// Leaves the group at once: messages held unacknowledged go back without counting a
    /// reconsume.
    pub async fn shutdown(&self) -> Result<(), FfiError> {
        let consumer = self.consumer.clone();
        runtime::run(async move { Ok(consumer.close().await?) }).await
    }
}
