//! [`FfiPushConsumer`] (a group member whose messages are taken in batches, by a listener's
//! threads on the Kotlin side or by a flow, and answered by delivery id), and
//! [`FfiSimpleConsumer`] (receive, then ack or nack by receipt).
//!
//! A listener is run by Kotlin threads that take messages with
//! [`FfiPushConsumer::recv_batch_blocking`], not by a callback from Rust: a call into the
//! library costs far less than a call out of it (JNA attaches the thread and converts the
//! arguments by reflection), and one call hands over every message queued at that moment
//! (and one call answers them: [`FfiPushConsumer::settle`]). The client hands the messages
//! over a pulled batch at a time ([`Deliveries`]).

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use ferrymq_core::client::{PushConsumer, SimpleConsumer};

use crate::client::opt_millis;
use crate::deliveries::{Deliveries, Verdict};
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
    /// The messages the consumer's batch listener queued for Kotlin, and their verdicts.
    deliveries: Arc<Deliveries>,
    fast_id: OnceLock<u64>,
}

impl Drop for FfiPushConsumer {
    fn drop(&mut self) {
        if let Some(&id) = self.fast_id.get() {
            PUSH_CONSUMERS.remove(id);
        }
    }
}

impl FfiPushConsumer {
    /// [`recv_batch_blocking`](Self::recv_batch_blocking) with the messages as serialized
    /// records, for the fast path.
    pub(crate) fn settle_and_take(
        &self,
        answers: Vec<i64>,
        max_messages: i32,
    ) -> Result<Vec<(i64, Vec<u8>)>, FfiError> {
        let max = batch_size(max_messages)?;
        self.settle(answers);
        Ok(self.deliveries.take_blocking(max))
    }

    /// `consumer` must have been made with `deliveries`' [`Deliveries::listener`].
    pub(crate) fn new(consumer: PushConsumer, deliveries: Arc<Deliveries>) -> Self {
        FfiPushConsumer { consumer: Arc::new(consumer), deliveries, fast_id: OnceLock::new() }
    }

    /// The messages between the client and Kotlin.
    pub(crate) fn deliveries(&self) -> &Arc<Deliveries> {
        &self.deliveries
    }

    /// Unknown delivery ids are a conflict.
    fn answer(&self, id: i64, verdict: Verdict) -> Result<(), FfiError> {
        self.deliveries.answer(id, verdict).map_err(|_| {
            ferrymq_core::Error::Conflict(format!("delivery {id} was already acked or nacked, or its consumer closed"))
                .into()
        })
    }
}

/// Taken messages as records, for uniffi's path (the fast path hands the bytes over as they
/// are, [`crate::wire::encode_taken`]).
fn delivered(taken: Vec<(i64, Vec<u8>)>) -> Result<Vec<FfiDelivered>, FfiError> {
    taken.iter().map(|(_, record)| crate::wire::decode_delivered(record)).collect()
}

/// `max_messages` as a batch size, or an invalid argument.
pub(crate) fn batch_size(max_messages: i32) -> Result<usize, FfiError> {
    usize::try_from(max_messages)
        .ok()
        .filter(|&m| m >= 1)
        .ok_or_else(|| FfiError::invalid("/max_messages", "must be at least 1"))
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
    /// other one queued at that moment, `max_messages` at most (the consumer hands out no
    /// more than its `consume_workers` unanswered anyway). Empty on timeout or once the
    /// consumer is closed.
    pub async fn recv_batch(&self, max_messages: i32, timeout_ms: Option<i64>) -> Result<Vec<FfiDelivered>, FfiError> {
        let max = batch_size(max_messages)?;
        let timeout = opt_millis("/timeout_ms", timeout_ms)?;
        let deliveries = self.deliveries.clone();
        let taken = runtime::run(async move { Ok(deliveries.take(max, timeout).await) }).await?;
        delivered(taken)
    }

    /// [`settle`](Self::settle) `answers`, then [`recv_batch`](Self::recv_batch) without a
    /// timeout, blocking the calling thread (a listener's thread on the Kotlin side, never one
    /// of the runtime's): one call answers a thread's last messages and takes the next ones.
    /// Empty once the consumer is closed.
    pub fn recv_batch_blocking(&self, answers: Vec<i64>, max_messages: i32) -> Result<Vec<FfiDelivered>, FfiError> {
        delivered(self.settle_and_take(answers, max_messages)?)
    }

    /// Answers many deliveries in one call: a positive id is consumed, a negated one failed
    /// (redelivered after the retry delay). Ids already answered (or abandoned by close) are
    /// skipped; their number is returned.
    pub fn settle(&self, answers: Vec<i64>) -> i32 {
        self.deliveries.settle(&answers)
    }

    /// Marks the delivery `id` consumed. `conflict` when it was answered already or its
    /// consumer closed.
    pub fn ack(&self, id: i64) -> Result<(), FfiError> {
        self.answer(id, Verdict::Consumed)
    }

    /// Marks the delivery `id` failed: redelivered after `delay_ms`, or the retry delay when
    /// none.
    pub fn nack(&self, id: i64, delay_ms: Option<i64>) -> Result<(), FfiError> {
        let delay = opt_millis("/delay_ms", delay_ms)?;
        self.answer(id, Verdict::Failed(delay))
    }

    /// Leaves the group cleanly, committing what was acked; messages handed out and not
    /// answered, and those queued and not handed out, are abandoned: not committed, so the
    /// group delivers them again (to the member that takes their queue), without counting a
    /// reconsume. Ends `recv`. Idempotent.
    pub async fn shutdown(&self) -> Result<(), FfiError> {
        let consumer = self.consumer.clone();
        let deliveries = self.deliveries.clone();
        runtime::run(async move { Ok(close(&consumer, &deliveries).await?) }).await
    }
}

/// Closes `consumer` and its `deliveries`: see [`FfiPushConsumer::shutdown`].
pub(crate) async fn close(consumer: &PushConsumer, deliveries: &Deliveries) -> ferrymq_core::Result<()> {
    let mut closing = Box::pin(consumer.close());
    // The first poll runs close's synchronous start: the stop flag and every queue's stop.
    // `NotStarted` verdicts wait for their queue to stop, so the order matters.
    let polled = futures::poll!(&mut closing);
    // Answered `NotStarted`: abandoned, delivered again by whoever takes the queue; close
    // then has no listener call left to wait for.
    deliveries.close();
    match polled {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => closing.await,
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
