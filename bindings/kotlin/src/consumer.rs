//! [`FfiPushConsumer`] (a group member: listener or `recv`) with its [`FfiDelivery`], and
//! [`FfiSimpleConsumer`] (receive, then ack or nack by receipt).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferrymq_core::client::{PushConsumer, ReceivedMessage, SimpleConsumer};

use crate::client::opt_millis;
use crate::error::FfiError;
use crate::message::{millis, FfiMessage};
use crate::runtime;

/// A listener implemented in Kotlin: returns `None` to consume the message, or the reason it
/// failed (the message is then redelivered).
#[uniffi::export(callback_interface)]
pub trait FfiListener: Send + Sync {
    /// Handles one message.
    fn on_message(&self, message: FfiMessage) -> Option<String>;
}

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
    /// Deliveries handed to Kotlin and maybe not answered yet, abandoned on close.
    held: Mutex<Vec<Weak<FfiDelivery>>>,
}

impl FfiPushConsumer {
    pub(crate) fn new(consumer: PushConsumer) -> Self {
        FfiPushConsumer { consumer: Arc::new(consumer), held: Mutex::new(Vec::new()) }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Vec<Weak<FfiDelivery>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[uniffi::export]
impl FfiPushConsumer {
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

    /// The next message (for a consumer without a listener), waiting up to `timeout_ms`
    /// (forever when none); none on timeout or once the consumer is closed.
    pub async fn recv(&self, timeout_ms: Option<i64>) -> Result<Option<Arc<FfiDelivery>>, FfiError> {
        let consumer = self.consumer.clone();
        let timeout = opt_millis("/timeout_ms", timeout_ms)?;
        let received = runtime::run(async move {
            Ok(match timeout {
                None => consumer.recv().await,
                Some(t) => tokio::time::timeout(t, consumer.recv()).await.ok().flatten(),
            })
        })
        .await?;
        Ok(received.map(|received| {
            let delivery = Arc::new(FfiDelivery {
                message: received.message().clone().into(),
                received: Mutex::new(Some(received)),
            });
            let mut held = self.held();
            held.retain(|d| d.upgrade().is_some_and(|d| d.is_open()));
            held.push(Arc::downgrade(&delivery));
            delivery
        }))
    }

    /// Leaves the group cleanly, committing what was acked; messages handed out and not
    /// answered are abandoned: not committed, so the group delivers them again (to the
    /// member that takes their queue). Ends `recv`. Idempotent.
    pub async fn shutdown(&self) -> Result<(), FfiError> {
        let consumer = self.consumer.clone();
        let held: Vec<Arc<FfiDelivery>> = self.held().drain(..).filter_map(|d| d.upgrade()).collect();
        runtime::run(async move {
            let mut closing = Box::pin(consumer.close());
            // The first poll runs close's synchronous start: the stop flag and every queue's
            // stop. A delivery dropped after that counts as abandoned, one dropped before as
            // failed (redelivered through retry), so the order matters.
            if let std::task::Poll::Ready(result) = futures::poll!(&mut closing) {
                return Ok(result?);
            }
            for delivery in held {
                delivery.abandon();
            }
            Ok(closing.await?)
        })
        .await
    }
}

/// A message handed out by [`FfiPushConsumer::recv`]: answer it with `ack` or `nack`.
#[derive(uniffi::Object)]
pub struct FfiDelivery {
    message: FfiMessage,
    received: Mutex<Option<ReceivedMessage>>,
}

impl FfiDelivery {
    fn take(&self) -> Result<ReceivedMessage, FfiError> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or_else(|| {
            ferrymq_core::Error::Conflict(format!(
                "message {} was already acked or nacked, or its consumer closed",
                self.message.msg_id
            ))
            .into()
        })
    }

    fn is_open(&self) -> bool {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Drops the answer channel without answering.
    fn abandon(&self) {
        drop(self.received.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

#[uniffi::export]
impl FfiDelivery {
    /// The message.
    pub fn message(&self) -> FfiMessage {
        self.message.clone()
    }

    /// Marks it consumed. `conflict` when it was answered already or its consumer closed.
    pub fn ack(&self) -> Result<(), FfiError> {
        self.take()?.ack();
        Ok(())
    }

    /// Marks it failed: redelivered after `delay_ms`, or the retry delay when none.
    pub fn nack(&self, delay_ms: Option<i64>) -> Result<(), FfiError> {
        let delay = opt_millis("/delay_ms", delay_ms)?;
        let received = self.take()?;
        match delay {
            Some(d) => received.nack_after(d),
            None => received.nack(),
        }
        Ok(())
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
        let max = usize::try_from(max_messages)
            .ok()
            .filter(|&m| m >= 1)
            .ok_or_else(|| FfiError::invalid("/max_messages", "must be at least 1"))?;
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
