//! [`FfiProducer`] and [`FfiTransactionProducer`], with the callback interfaces the Kotlin
//! side implements for a local transaction and for check-backs.

use std::sync::{Arc, LazyLock, OnceLock};

use ferrymq_core::client::{Message, Producer, TransactionProducer, TransactionResolution};

use crate::error::FfiError;
use crate::message::{FfiMessage, FfiOutgoing, FfiSendResult};
use crate::registry::Registry;
use crate::runtime;

/// The producers the JNI fast path ([`crate::fast_path`]) can reach, by [`FfiProducer::fast_id`].
pub(crate) static PRODUCERS: LazyLock<Registry<FfiProducer>> = LazyLock::new(Registry::new);

/// Publishes messages.
///
/// The SDK's sends go through the JNI fast path ([`crate::fast_path`]), which calls the
/// methods below on the object it finds by [`fast_id`](Self::fast_id); they stay exported
/// through uniffi too, so that the call-cost bench can time both ways on the same work.
#[derive(uniffi::Object)]
pub struct FfiProducer {
    producer: Producer,
    fast_id: OnceLock<u64>,
}

impl FfiProducer {
    pub(crate) fn new(producer: Producer) -> Self {
        FfiProducer { producer, fast_id: OnceLock::new() }
    }

    /// The client's producer.
    pub(crate) fn core(&self) -> &Producer {
        &self.producer
    }
}

impl Drop for FfiProducer {
    fn drop(&mut self) {
        if let Some(&id) = self.fast_id.get() {
            PRODUCERS.remove(id);
        }
    }
}

#[uniffi::export]
impl FfiProducer {
    /// This producer's id for the JNI fast path, registered on first use and forgotten when
    /// the producer is dropped.
    pub fn fast_id(self: Arc<Self>) -> u64 {
        *self.fast_id.get_or_init(|| PRODUCERS.insert(&self))
    }

    /// Publishes one message; returns once it is stored (or scheduled, when delayed).
    pub async fn send(&self, topic: String, message: FfiOutgoing) -> Result<FfiSendResult, FfiError> {
        let producer = self.producer.clone();
        let message = message.into_core()?;
        runtime::run(async move { Ok(producer.send(&topic, message).await?.into()) }).await
    }

    /// Publishes a batch atomically: all of it is stored, or none. Results come in order.
    pub async fn send_batch(&self, topic: String, messages: Vec<FfiOutgoing>) -> Result<Vec<FfiSendResult>, FfiError> {
        let producer = self.producer.clone();
        let messages = messages.into_iter().map(FfiOutgoing::into_core).collect::<Result<Vec<_>, _>>()?;
        runtime::run(
            async move { Ok(producer.send_batch(&topic, messages).await?.into_iter().map(Into::into).collect()) },
        )
        .await
    }

    /// Publishes one message and blocks the calling thread until it is stored (or scheduled,
    /// when delayed): the Kotlin side's blocking twins.
    pub fn send_blocking(&self, topic: String, message: FfiOutgoing) -> Result<FfiSendResult, FfiError> {
        let producer = self.producer.clone();
        let message = message.into_core()?;
        runtime::block_on(async move { Ok(producer.send(&topic, message).await?.into()) })
    }

    /// Publishes a batch atomically (all of it is stored, or none), blocking the calling
    /// thread. Results come in order.
    pub fn send_batch_blocking(
        &self,
        topic: String,
        messages: Vec<FfiOutgoing>,
    ) -> Result<Vec<FfiSendResult>, FfiError> {
        let producer = self.producer.clone();
        let messages = messages.into_iter().map(FfiOutgoing::into_core).collect::<Result<Vec<_>, _>>()?;
        runtime::block_on(async move {
            Ok(producer.send_batch(&topic, messages).await?.into_iter().map(Into::into).collect())
        })
    }

    /// Publishes one message in the background without waiting; a failure is only logged.
    pub fn send_oneway(&self, topic: String, message: FfiOutgoing) -> Result<(), FfiError> {
        let message = message.into_core()?;
        Ok(runtime::enter(|| self.producer.send_oneway(&topic, message))?)
    }
}

/// The local transaction of one transactional send, implemented in Kotlin: it runs with the
/// half message and answers `commit`, `rollback` or `unknown`.
#[uniffi::export(callback_interface)]
pub trait FfiLocalTransaction: Send + Sync {
    /// Runs the local transaction.
    fn execute(&self, message: FfiMessage) -> String;
}

/// Answers the broker's check-back about a half message of the producer group: `commit`,
/// `rollback` or `unknown`.
#[uniffi::export(callback_interface)]
pub trait FfiTransactionChecker: Send + Sync {
    /// How the transaction of this half message ended.
    fn check(&self, message: FfiMessage) -> String;
}

/// A verdict from the Kotlin side; anything else counts as `unknown` (asked again later).
fn verdict(answer: &str) -> TransactionResolution {
    TransactionResolution::parse(answer).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "a transaction callback answered something else than a verdict; counting it as unknown");
        TransactionResolution::Unknown
    })
}

/// The client's checker over a Kotlin one (the client runs it on a blocking thread).
pub(crate) fn checker(checker: Box<dyn FfiTransactionChecker>) -> impl Fn(&Message) -> TransactionResolution {
    move |message: &Message| verdict(&checker.check(message.clone().into()))
}

/// A producer of transactional messages for one producer group.
#[derive(uniffi::Object)]
pub struct FfiTransactionProducer {
    producer: Arc<TransactionProducer>,
}

impl FfiTransactionProducer {
    pub(crate) fn new(producer: TransactionProducer) -> Self {
        FfiTransactionProducer { producer: Arc::new(producer) }
    }
}

#[uniffi::export]
impl FfiTransactionProducer {
    /// The producer group.
    pub fn group(&self) -> String {
        self.producer.group().to_string()
    }

    /// Sends a half message, runs `local` with it (on a blocking thread), and commits or rolls
    /// back as it answers; on `unknown` the checker decides later. The result carries the
    /// `transaction_id`.
    pub async fn send_in_transaction(
        &self,
        topic: String,
        message: FfiOutgoing,
        local: Box<dyn FfiLocalTransaction>,
    ) -> Result<FfiSendResult, FfiError> {
        let producer = self.producer.clone();
        let message = message.into_core()?;
        let local: Arc<dyn FfiLocalTransaction> = Arc::from(local);
        runtime::run(async move {
            let result = producer
                .send_in_transaction_async(&topic, message, move |half| async move {
                    let answer = tokio::task::spawn_blocking(move || local.execute(half.into())).await;
                    match answer {
                        Ok(answer) => verdict(&answer),
                        Err(e) => {
                            tracing::error!(error = %e, "the local transaction failed; leaving it to the check-back");
                            TransactionResolution::Unknown
                        }
                    }
                })
                .await?;
            Ok(result.into())
        })
        .await
    }

    /// Ends a transaction explicitly: `commit` or `rollback`.
    pub async fn end_transaction(&self, transaction_id: String, verdict: String) -> Result<(), FfiError> {
        let producer = self.producer.clone();
        let resolution = TransactionResolution::parse(&verdict)?;
        runtime::run(async move { Ok(producer.end_transaction(&transaction_id, resolution).await?) }).await
    }

    /// Stops answering check-backs.
    pub fn shutdown(&self) {
        self.producer.close();
    }
}
