//! [`SimpleConsumer`]: lease-based consumption (RocketMQ 5 style). Each `receive` hands out
//! messages with a receipt, invisible to the rest of the group for a while; the consumer acks
//! what it processed and nacks what it could not. Nothing runs in the background.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::{ConsumeMode, FilterSpec, MemberTransport, Message, ReceiptFailure, ReceiveRequest, StartPosition};
use crate::{Error, Result};

use super::transport::Transport;

/// Messages asked for when the caller does not say, as in the SDKs.
pub const DEFAULT_MAX_MESSAGES: usize = 16;
/// Invisibility of received messages when the caller does not say.
pub const DEFAULT_INVISIBLE: Duration = Duration::from_secs(30);

/// A lease-based consumer of one topic for one group.
pub struct SimpleConsumer {
    transport: Arc<dyn Transport>,
    group: String,
    topic: String,
    filter: FilterSpec,
    client_id: String,
}

impl std::fmt::Debug for SimpleConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleConsumer")
            .field("group", &self.group)
            .field("topic", &self.topic)
            .field("filter", &self.filter)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// Turns a receipt that did not apply into an error: `unknown` is [`Error::NotFound`];
/// `expired` and `acked` are [`Error::Conflict`].
fn receipt_error(receipt: &str, failure: ReceiptFailure) -> Error {
    match failure {
        ReceiptFailure::Unknown => Error::not_found("receipt", receipt),
        ReceiptFailure::Expired => {
            Error::Conflict(format!("the lease of receipt {receipt:?} expired; the message went back to the group"))
        }
        ReceiptFailure::Acked => Error::Conflict(format!("receipt {receipt:?} was already acknowledged")),
    }
}

fn receipt_of(message: &Message) -> Result<&str> {
    message.receipt.as_deref().ok_or_else(|| Error::invalid("/receipt", "the message was not received for a group"))
}

impl SimpleConsumer {
    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        group: &str,
        topic: &str,
        filter: FilterSpec,
        client_id: String,
    ) -> Result<Self> {
        crate::broker::validate_group_name(group)?;
        crate::broker::compile_filter(&filter)?;
        Ok(SimpleConsumer { transport, group: group.into(), topic: topic.into(), filter, client_id })
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// This member's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Receives up to `max_messages` (1 to 1000), waiting up to `wait` (at most 30 s) when
    /// none is available. Each comes with a receipt and stays invisible to the rest of the
    /// group for `invisible` (1 s to 12 h) unless acked, nacked or changed.
    pub async fn receive(&self, max_messages: usize, wait: Duration, invisible: Duration) -> Result<Vec<Message>> {
        self.transport
            .receive(ReceiveRequest {
                group: self.group.clone(),
                topic: self.topic.clone(),
                filter: self.filter.clone(),
                max_messages,
                wait,
                invisible,
                client_id: self.client_id.clone(),
                transport: MemberTransport::Native,
                mode: ConsumeMode::Clustering,
                start: StartPosition::First,
                orderly: false,
            })
            .await
    }

    /// Marks a received message done. [`Error::NotFound`] for a receipt the broker does not
    /// hold; [`Error::Conflict`] when its lease expired or it was acked already.
    pub async fn ack(&self, message: &Message) -> Result<()> {
        let receipt = receipt_of(message)?;
        self.transport.ack(&self.group, receipt).await?.map_err(|f| receipt_error(receipt, f))
    }

    /// Gives a received message back: it returns with `reconsume_times + 1` after `delay`
    /// (default: the retry delay), or goes to the dead-letter queue after the group's
    /// maximum. Errors as for [`SimpleConsumer::ack`].
    pub async fn nack(&self, message: &Message, delay: Option<Duration>) -> Result<()> {
        let receipt = receipt_of(message)?;
        self.transport.nack(&self.group, receipt, delay).await?.map_err(|f| receipt_error(receipt, f))
    }

    /// Sets a received message's remaining invisibility to `invisible` and stores its new
    /// receipt in `message` (the old one stops working). [`Error::NotFound`] when the lease
    /// is no longer held.
    pub async fn change_invisible_duration(&self, message: &mut Message, invisible: Duration) -> Result<()> {
        let receipt = receipt_of(message)?.to_string();
        let new = self.transport.change_invisible(&self.group, &receipt, invisible).await?;
        message.receipt = Some(new);
        Ok(())
    }

    /// Leaves the group at once: messages this member holds unacknowledged go back to the
    /// group without counting a reconsume.
    pub async fn close(&self) -> Result<()> {
        self.transport.release_client(&self.group, &self.client_id).await
    }
}
