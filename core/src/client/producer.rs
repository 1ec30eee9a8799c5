//! [`Producer`]: publishes messages, retrying transient failures.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::{OutgoingMessage, SendResult};
use crate::{Error, Result};

use super::transport::Transport;

/// Retries after a transient failure when none are configured otherwise, as in RocketMQ.
pub const DEFAULT_SEND_RETRIES: u32 = 2;

/// Pause before the first retry; it doubles for each further one.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Whether a failed send may succeed if tried again: the broker was unavailable, the call
/// timed out or the connection broke. Validation errors, a missing topic or a full disk will
/// not change on a retry.
pub(crate) fn is_transient(e: &Error) -> bool {
    matches!(e, Error::Unavailable(_) | Error::Timeout(_) | Error::Connection(_))
}

/// Publishes messages to topics.
///
/// Cheap to clone; clones share the client's transport. A send that fails with a transient
/// error ([`Error::Unavailable`], [`Error::Timeout`], [`Error::Connection`]) is retried up to
/// [`Producer::retries`] times, unless the client is closed; any other error is returned at once.
#[derive(Clone)]
pub struct Producer {
    transport: Arc<dyn Transport>,
    group: Option<String>,
    retries: u32,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("group", &self.group).field("retries", &self.retries).finish()
    }
}

impl Producer {
    pub(crate) fn new(transport: Arc<dyn Transport>, group: Option<String>) -> Self {
        Producer { transport, group, retries: DEFAULT_SEND_RETRIES }
    }

    /// The producer group, if any.
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    pub(crate) fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// How many times a send is retried after a transient failure.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Sets how many times a send is retried after a transient failure (0: never).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Publishes one message; returns once it is stored and visible to consumers (or
    /// scheduled, for a delayed message).
    pub async fn send(&self, topic: &str, message: impl Into<OutgoingMessage>) -> Result<SendResult> {
        let message = message.into();
        self.with_retries_on(|| self.transport.send(topic, message.clone())).await
    }

    /// Publishes a batch atomically: all of it is stored, or none. Results come in order.
    pub async fn send_batch<I, M>(&self, topic: &str, messages: I) -> Result<Vec<SendResult>>
    where
        I: IntoIterator<Item = M>,
        M: Into<OutgoingMessage>,
    {
        let messages: Vec<OutgoingMessage> = messages.into_iter().map(Into::into).collect();
        self.with_retries_on(|| self.transport.send_batch(topic, messages.clone())).await
    }

    /// Publishes one message without waiting for the result: the send runs in the background
    /// and a failure is only logged. Must be called within a Tokio runtime
    /// ([`Error::Unavailable`] otherwise).
    pub fn send_oneway(&self, topic: &str, message: impl Into<OutgoingMessage>) -> Result<()> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Unavailable("send_oneway needs a running Tokio runtime".into()))?;
        let producer = self.clone();
        let topic = topic.to_string();
        let message = message.into();
        handle.spawn(async move {
            if let Err(e) = producer.send(&topic, message).await {
                tracing::warn!(topic = %topic, error = %e, "one-way send failed");
            }
        });
        Ok(())
    }

    async fn with_retries_on<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut backoff = RETRY_BACKOFF;
        let mut tries = 0;
        loop {
            match attempt().await {
                Err(e) if is_transient(&e) && tries < self.retries && !self.transport.is_closed() => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "send failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                other => return other,
            }
        }
    }
}
