//! [`NativePushConsumer`] (a group member whose messages go to a listener, or to `for
//! await`) over a [`PushHandle`], and [`NativeSimpleConsumer`] (receive, then ack or nack by
//! receipt).

use std::sync::Arc;

use ferrymq_core::client::{Message, MessageState, PushConsumer, SimpleConsumer};
use napi_derive::napi;

use crate::client::{opt_millis, ClientCell, Release};
use crate::errors::{invalid, js};
use crate::listener_dispatch::ListenerDispatch;
use crate::message::{millis, MessageBatch};
use crate::rebalance_hooks::RebalanceHooks;

/// A queue of the group's topic (or its retry topic) that a member consumes.
#[napi(object)]
pub struct QueueData {
    pub topic: String,
    pub queue_id: u32,
}

/// A push consumer, as its client closes it.
pub struct PushHandle {
    consumer: PushConsumer,
}

impl PushHandle {
    pub fn new(consumer: PushConsumer) -> Arc<PushHandle> {
        Arc::new(PushHandle { consumer })
    }

    /// Leaves the group (see [`PushConsumer::close`]).
    pub async fn close(&self) -> ferrymq_core::Result<()> {
        self.consumer.close().await
    }
}

/// A member of a consumer group on one topic (see `PushConsumer` in index.d.ts).
///
/// Its messages go to JS in batches through a [`ListenerDispatch`], with or without a
/// listener: without one, `index.js` buffers them for `recv()` and reports `ack()` and
/// `nack()` as verdicts.
#[napi]
pub struct NativePushConsumer {
    handle: Arc<PushHandle>,
    dispatch: Arc<ListenerDispatch>,
    hooks: Option<Arc<RebalanceHooks>>,
    _cell: Arc<ClientCell>,
}

impl NativePushConsumer {
    pub fn new(
        cell: Arc<ClientCell>,
        handle: Arc<PushHandle>,
        dispatch: Arc<ListenerDispatch>,
        hooks: Option<Arc<RebalanceHooks>>,
    ) -> Self {
        NativePushConsumer { handle, dispatch, hooks, _cell: cell }
    }
}

#[napi]
impl NativePushConsumer {
    #[napi(getter)]
    pub fn group(&self) -> String {
        self.handle.consumer.group().to_string()
    }

    #[napi(getter)]
    pub fn topic(&self) -> String {
        self.handle.consumer.topic().to_string()
    }

    #[napi(getter)]
    pub fn client_id(&self) -> String {
        self.handle.consumer.client_id().to_string()
    }

    /// The queues this member consumes now.
    #[napi]
    pub fn assignment(&self) -> Vec<QueueData> {
        let queues = self.handle.consumer.assignment();
        queues.into_iter().map(|q| QueueData { topic: q.topic, queue_id: q.queue_id }).collect()
    }

    /// Joins the group and starts consuming.
    #[napi]
    pub async fn start(&self) -> napi::Result<()> {
        js(self.handle.consumer.start().await)
    }

    /// The verdicts on the messages numbered from `first` on; `null` for one reported later
    /// (see [`ListenerDispatch::settle`]).
    #[napi]
    pub fn settle(&self, first: i64, verdicts: Vec<Option<u32>>) {
        if let Ok(first) = u64::try_from(first) {
            self.dispatch.settle(first, &verdicts);
        }
    }

    /// The same verdict on the `count` messages numbered from `first` on: the common case
    /// (every listener returned, a tick's acks), without an array to convert.
    #[napi]
    pub fn settle_run(&self, first: i64, count: u32, verdict: u32) {
        if let Ok(first) = u64::try_from(first) {
            self.dispatch.settle_run(first, count as usize, verdict);
        }
    }

    /// Marks message `id` failed: redelivered after `delay_ms`, or after the retry delay.
    #[napi]
    pub fn nack(&self, id: i64, delay_ms: Option<i64>) -> napi::Result<()> {
        let delay = opt_millis("/delayMs", delay_ms)?;
        if let Ok(id) = u64::try_from(id) {
            self.dispatch.fail(id, delay);
        }
        Ok(())
    }

    /// Leaves the group cleanly (offsets committed), waits until the rebalance hooks heard
    /// of it (every queue revoked), then releases the listener and the hooks.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        let closed = self.handle.close().await;
        if let Some(hooks) = &self.hooks {
            hooks.reported().await;
            hooks.release();
        }
        self.dispatch.release();
        js(closed)
    }
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
    pub async fn receive(&self, max_messages: i64, wait_ms: i64, invisible_ms: i64) -> napi::Result<MessageBatch> {
        let max = usize::try_from(max_messages)
            .ok()
            .filter(|&m| m >= 1)
            .ok_or_else(|| invalid("/maxMessages", "must be at least 1"))?;
        let wait = millis("/waitMs", wait_ms)?;
        let invisible = millis("/invisibleMs", invisible_ms)?;
        let messages = js(self.consumer.receive(max, wait, invisible).await)?;
        Ok(MessageBatch::new(&messages))
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
