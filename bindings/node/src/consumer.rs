//! [`NativePushConsumer`] (group member with a listener, or a source of [`NativeDelivery`]s
//! for `for await`) and [`NativeSimpleConsumer`] (receive, then ack or nack by receipt).

use std::sync::{Arc, Mutex};

use ferrymq_core::client::{
    Listener, ListenerError, Message, MessageState, PushConsumer, ReceivedMessage, SimpleConsumer,
};
use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;

use crate::client::{opt_millis, Callback, ClientCell, Release};
use crate::errors::{invalid, js};
use crate::message::{millis, MessageData};
use crate::rebalance_hooks::RebalanceHooks;

/// A listener as `index.js` wraps it: called on the JS thread with the message, it resolves
/// to `"ack"` or `"nack"` (the user's function returned, or threw / rejected) and never
/// rejects.
pub type ListenerFn = ThreadsafeFunction<MessageData, Promise<String>, MessageData, Status, false>;

/// The client-side listener that calls `slot`'s JS function and awaits its verdict.
pub fn listener(slot: Arc<Callback<ListenerFn>>) -> Listener {
    Listener::new(move |message: Message| {
        let function = slot.get();
        async move {
            let function = function.ok_or_else(|| ListenerError::new("the consumer is closed"))?;
            let promise = function
                .call_async_catch(MessageData::from(message))
                .await
                .map_err(|e| ListenerError::new(e.reason))?;
            match promise.await.map_err(|e| ListenerError::new(e.reason))?.as_str() {
                "ack" => Ok(()),
                _ => Err(ListenerError::new("the listener threw")),
            }
        }
    })
}

/// A queue of the group's topic (or its retry topic) that a member consumes.
#[napi(object)]
pub struct QueueData {
    pub topic: String,
    pub queue_id: u32,
}

/// A member of a consumer group on one topic (see `PushConsumer` in index.d.ts).
#[napi]
pub struct NativePushConsumer {
    consumer: Arc<PushConsumer>,
    listener: Option<Arc<Callback<ListenerFn>>>,
    hooks: Option<Arc<RebalanceHooks>>,
    _cell: Arc<ClientCell>,
}

impl NativePushConsumer {
    pub fn new(
        cell: Arc<ClientCell>,
        consumer: PushConsumer,
        listener: Option<Arc<Callback<ListenerFn>>>,
        hooks: Option<Arc<RebalanceHooks>>,
    ) -> Self {
        NativePushConsumer { consumer: Arc::new(consumer), listener, hooks, _cell: cell }
    }
}

#[napi]
impl NativePushConsumer {
    #[napi(getter)]
    pub fn group(&self) -> String {
        self.consumer.group().to_string()
    }

    #[napi(getter)]
    pub fn topic(&self) -> String {
        self.consumer.topic().to_string()
    }

    #[napi(getter)]
    pub fn client_id(&self) -> String {
        self.consumer.client_id().to_string()
    }

    /// The queues this member consumes now.
    #[napi]
    pub fn assignment(&self) -> Vec<QueueData> {
        self.consumer.assignment().into_iter().map(|q| QueueData { topic: q.topic, queue_id: q.queue_id }).collect()
    }

    /// Joins the group and starts consuming.
    #[napi]
    pub async fn start(&self) -> napi::Result<()> {
        js(self.consumer.start().await)
    }

    /// The next message (no listener), waiting up to `timeout_ms` (forever when absent);
    /// nothing on timeout or once closed.
    #[napi]
    pub async fn recv(&self, timeout_ms: Option<i64>) -> napi::Result<Option<NativeDelivery>> {
        if self.listener.is_some() {
            return Err(invalid("/listener", "this consumer has a listener: its messages go to the listener"));
        }
        let received = match opt_millis("/timeoutMs", timeout_ms)? {
            None => self.consumer.recv().await,
            Some(t) => tokio::time::timeout(t, self.consumer.recv()).await.ok().flatten(),
        };
        Ok(received.map(|r| NativeDelivery { received: Mutex::new(Some(r)) }))
    }

    /// Leaves the group cleanly (offsets committed), waits until the rebalance hooks heard
    /// of it (every queue revoked), then releases the listener and the hooks.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        let closed = self.consumer.close().await;
        if let Some(hooks) = &self.hooks {
            hooks.reported().await;
            hooks.release();
        }
        if let Some(listener) = &self.listener {
            listener.release();
        }
        js(closed)
    }
}

/// A message handed out by a push consumer without a listener, until acked or nacked.
#[napi]
pub struct NativeDelivery {
    received: Mutex<Option<ReceivedMessage>>,
}

#[napi]
impl NativeDelivery {
    /// The message.
    #[napi]
    pub fn message(&self) -> napi::Result<MessageData> {
        let received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        let received = received.as_ref().ok_or_else(settled)?;
        Ok(MessageData::from(received.message().clone()))
    }

    /// Marks it consumed. Does not wait: the consumer commits in the background.
    #[napi]
    pub fn ack(&self) -> napi::Result<()> {
        self.take()?.ack();
        Ok(())
    }

    /// Marks it failed: redelivered after `delay_ms`, or after the retry delay.
    #[napi]
    pub fn nack(&self, delay_ms: Option<i64>) -> napi::Result<()> {
        let delay = opt_millis("/delayMs", delay_ms)?;
        let received = self.take()?;
        match delay {
            Some(d) => received.nack_after(d),
            None => received.nack(),
        }
        Ok(())
    }
}

impl NativeDelivery {
    fn take(&self) -> napi::Result<ReceivedMessage> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or_else(settled)
    }
}

fn settled() -> napi::Error {
    crate::errors::to_napi(&ferrymq_core::Error::Conflict("the message was already acknowledged or nacked".into()))
}

/// A lease-based consumer of one topic for one group (see `SimpleConsumer` in index.d.ts).
#[napi]
pub struct NativeSimpleConsumer {
    consumer: Arc<SimpleConsumer>,
    _cell: Arc<ClientCell>,
}

impl NativeSimpleConsumer {
    pub fn new(cell: Arc<ClientCell>, consumer: SimpleConsumer) -> Self {
        NativeSimpleConsumer { consumer: Arc::new(consumer), _cell: cell }
    }
}

/// The client's message for a receipt: what its ack, nack and change of invisibility read.
fn by_receipt(topic: &str, receipt: String) -> Message {
    Message {
        msg_id: String::new(),
        topic: topic.to_string(),
        queue_id: None,
        queue_offset: None,
        commit_offset: None,
        body: Vec::new(),
        tag: None,
        keys: Vec::new(),
        properties: Default::default(),
        born_ts: 0,
        store_ts: 0,
        reconsume_times: 0,
        receipt: Some(receipt),
        state: MessageState::Stored,
    }
}

#[napi]
impl NativeSimpleConsumer {
    #[napi(getter)]
    pub fn group(&self) -> String {
        self.consumer.group().to_string()
    }

    #[napi(getter)]
    pub fn topic(&self) -> String {
        self.consumer.topic().to_string()
    }

    /// Receives up to `max_messages`, waiting up to `wait_ms`; each invisible for
    /// `invisible_ms` to the rest of the group.
    #[napi]
    pub async fn receive(&self, max_messages: i64, wait_ms: i64, invisible_ms: i64) -> napi::Result<Vec<MessageData>> {
        let max = usize::try_from(max_messages)
            .ok()
            .filter(|&m| m >= 1)
            .ok_or_else(|| invalid("/maxMessages", "must be at least 1"))?;
        let wait = millis("/waitMs", wait_ms)?;
        let invisible = millis("/invisibleMs", invisible_ms)?;
        let messages = js(self.consumer.receive(max, wait, invisible).await)?;
        Ok(messages.into_iter().map(MessageData::from).collect())
    }

    /// Acks the message with this receipt.
    #[napi]
    pub async fn ack(&self, receipt: String) -> napi::Result<()> {
        js(self.consumer.ack(&by_receipt(self.consumer.topic(), receipt)).await)
    }

    /// Nacks the message with this receipt.
    #[napi]
    pub async fn nack(&self, receipt: String, delay_ms: Option<i64>) -> napi::Result<()> {
        let delay = opt_millis("/delayMs", delay_ms)?;
        js(self.consumer.nack(&by_receipt(self.consumer.topic(), receipt), delay).await)
    }

    /// Changes the invisibility of the message with this receipt; returns its new receipt.
    #[napi]
    pub async fn change_invisible_duration(&self, receipt: String, invisible_ms: i64) -> napi::Result<String> {
        let invisible = millis("/invisibleMs", invisible_ms)?;
        let mut message = by_receipt(self.consumer.topic(), receipt);
        js(self.consumer.change_invisible_duration(&mut message, invisible).await)?;
        message.receipt.ok_or_else(|| invalid("/receipt", "the broker returned no receipt"))
    }

    /// Leaves the group: held messages go back without counting a reconsume.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        js(self.consumer.close().await)
    }
}
