//! [`NativeProducer`] and [`NativeTransactionProducer`], and the JavaScript functions that
//! decide a transaction (the local transaction and the check-back checker).

use std::sync::{Arc, Weak};

use ferrymq_core::client::{Message, Producer, TransactionChecker, TransactionProducer, TransactionResolution};
use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;

use crate::client::{Callback, ClientCell, Release};
use crate::errors::js;
use crate::message::{MessageData, OutgoingSpec, SendResultData};

/// Publishes messages (see `Producer` in index.d.ts).
#[napi]
pub struct NativeProducer {
    producer: Producer,
    _cell: Arc<ClientCell>,
}

impl NativeProducer {
    pub fn new(cell: Arc<ClientCell>, group: Option<String>) -> Self {
        NativeProducer { producer: cell.client.producer(group.as_deref()), _cell: cell }
    }
}

#[napi]
impl NativeProducer {
    /// The producer group, if any.
    #[napi(getter)]
    pub fn group(&self) -> Option<String> {
        self.producer.group().map(str::to_string)
    }

    /// Publishes one message.
    #[napi]
    pub async fn send(&self, topic: String, message: OutgoingSpec) -> napi::Result<SendResultData> {
        let message = message.into_outgoing("")?;
        Ok(js(self.producer.send(&topic, message).await)?.into())
    }

    /// Publishes a batch atomically.
    #[napi]
    pub async fn send_batch(&self, topic: String, messages: Vec<OutgoingSpec>) -> napi::Result<Vec<SendResultData>> {
        let messages = messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| m.into_outgoing(&format!("/messages/{i}")))
            .collect::<napi::Result<Vec<_>>>()?;
        Ok(js(self.producer.send_batch(&topic, messages).await)?.into_iter().map(Into::into).collect())
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
