//! [`TransactionProducer`]: sends half messages, runs the local transaction, and answers the
//! broker's check-backs for its producer group.
//!
//! A transactional send stores a half message (invisible to consumers), then runs the
//! caller's local transaction and commits or rolls back according to its answer. When the
//! answer is `unknown`, or the end was lost, the broker later asks the producer group: the
//! checker given at creation answers, driven by the transport's check-back feed.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::broker::{
    now_ms, Message, MessageState, OutgoingMessage, SendResult, TransactionCheck, TransactionResolution,
};
use crate::{Error, Result};

use super::producer::Producer;
use super::transport::Transport;

/// Answers the broker's check-back about a half message of the producer group: commit,
/// rollback, or unknown (ask again later).
///
/// Runs on a blocking thread, so it may do blocking work such as a database query. Any
/// `Fn(&Message) -> TransactionResolution` closure is a checker.
pub trait TransactionChecker: Send + Sync + 'static {
    /// How the transaction of this half message ended.
    fn check(&self, message: &Message) -> TransactionResolution;
}

impl<F> TransactionChecker for F
where
    F: Fn(&Message) -> TransactionResolution + Send + Sync + 'static,
{
    fn check(&self, message: &Message) -> TransactionResolution {
        self(message)
    }
}

/// A producer of transactional messages for one producer group.
pub struct TransactionProducer {
    producer: Producer,
    group: String,
    checks: JoinHandle<()>,
}

impl std::fmt::Debug for TransactionProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionProducer").field("group", &self.group).finish_non_exhaustive()
    }
}

impl TransactionProducer {
    pub(crate) async fn start(
        transport: Arc<dyn Transport>,
        group: &str,
        checker: Arc<dyn TransactionChecker>,
    ) -> Result<Self> {
        crate::broker::validate_group_name(group)?;
        let feed = transport.transaction_checks(group).await?;
        let checks = tokio::spawn(answer_checks(transport.clone(), feed, checker));
        Ok(TransactionProducer {
            producer: Producer::new(transport, Some(group.to_string())),
            group: group.into(),
            checks,
        })
    }

    /// The producer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Sends `message` as a half message, runs `local_transaction` with it, and ends the
    /// transaction as it answers. Returns the send result with its `transaction_id`.
    ///
    /// On `unknown`, or if ending fails, the transaction stays open and the checker decides
    /// at a check-back. `local_transaction` runs on the calling task: keep it short, or use
    /// [`send_in_transaction_async`](Self::send_in_transaction_async).
    pub async fn send_in_transaction<F>(
        &self,
        topic: &str,
        message: impl Into<OutgoingMessage>,
        local_transaction: F,
    ) -> Result<SendResult>
    where
        F: FnOnce(&Message) -> TransactionResolution,
    {
        self.send_in_transaction_async(topic, message, |half| {
            let resolution = local_transaction(&half);
            async move { resolution }
        })
        .await
    }

    /// As [`send_in_transaction`](Self::send_in_transaction), with an async local
    /// transaction (one that awaits a database, say).
    pub async fn send_in_transaction_async<F, Fut>(
        &self,
        topic: &str,
        message: impl Into<OutgoingMessage>,
        local_transaction: F,
    ) -> Result<SendResult>
    where
        F: FnOnce(Message) -> Fut,
        Fut: std::future::Future<Output = TransactionResolution>,
    {
        let mut message = message.into();
        message.transaction = Some(self.group.clone());
        let result = self.producer.send(topic, message.clone()).await?;
        let transaction_id = result.transaction_id.clone().ok_or_else(|| {
            Error::Unavailable("the broker answered a transactional send without a transaction id".into())
        })?;
        let resolution = local_transaction(half_message(topic, &message, &result)).await;
        if resolution != TransactionResolution::Unknown {
            if let Err(e) = self.producer_transport().end_transaction(&transaction_id, resolution).await {
                tracing::warn!(transaction_id = %transaction_id, error = %e, "ending a transaction failed; the check-back will decide");
            }
        }
        Ok(result)
    }

    /// Ends a transaction explicitly (for a local transaction that finished later).
    pub async fn end_transaction(&self, transaction_id: &str, resolution: TransactionResolution) -> Result<()> {
        self.producer_transport().end_transaction(transaction_id, resolution).await.map(|_| ())
    }

    fn producer_transport(&self) -> &Arc<dyn Transport> {
        self.producer.transport()
    }

    /// Stops answering check-backs. Open transactions stay open for another producer of the
    /// group (or a restart of this one) to answer.
    pub fn close(&self) {
        self.checks.abort();
    }
}

impl Drop for TransactionProducer {
    fn drop(&mut self) {
        self.checks.abort();
    }
}

/// The half message as the local transaction sees it: no place in its topic yet.
fn half_message(topic: &str, message: &OutgoingMessage, result: &SendResult) -> Message {
    Message {
        msg_id: result.msg_id.clone(),
        topic: topic.to_string(),
        queue_id: None,
        queue_offset: None,
        commit_offset: None,
        body: message.body.clone(),
        tag: message.tag.clone(),
        keys: message.keys.clone(),
        properties: message.properties.clone(),
        born_ts: message.born_ts.unwrap_or_else(now_ms),
        store_ts: 0,
        reconsume_times: 0,
        receipt: None,
        state: MessageState::Half,
    }
}

/// Answers each check-back of the group with the checker's verdict, until the feed closes.
async fn answer_checks(
    transport: Arc<dyn Transport>,
    mut feed: mpsc::Receiver<TransactionCheck>,
    checker: Arc<dyn TransactionChecker>,
) {
    while let Some(check) = feed.recv().await {
        let c = checker.clone();
        let message = check.message.clone();
        let resolution = match tokio::task::spawn_blocking(move || c.check(&message)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(transaction_id = %check.transaction_id, error = %e, "transaction checker failed");
                TransactionResolution::Unknown
            }
        };
        if resolution == TransactionResolution::Unknown {
            continue;
        }
        match transport.end_transaction(&check.transaction_id, resolution).await {
            Ok(_) | Err(Error::Conflict(_)) => {}
            Err(e) => {
                tracing::warn!(transaction_id = %check.transaction_id, error = %e, "answering a check-back failed")
            }
        }
    }
}
