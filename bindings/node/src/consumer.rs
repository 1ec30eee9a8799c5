//! [`NativePushConsumer`] (group member with a listener, or a source of messages for
//! `for await`) over a [`PushHandle`], and [`NativeSimpleConsumer`] (receive, then ack or
//! nack by receipt).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ferrymq_core::client::{Message, MessageState, PushConsumer, ReceivedMessage, SimpleConsumer};
use futures::FutureExt;
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

/// A message handed to JS without a listener, until acked or nacked; `seen` once JS gave it
/// to the application (until then it sits in the iterator's read-ahead).
struct Held {
    received: ReceivedMessage,
    seen: bool,
}

/// A push consumer and the messages it handed to JS (no listener), by id.
///
/// JS fetches what is ready in one call (`recv_many`) and keeps it as read-ahead: one
/// crossing per batch instead of per message. A message the application never saw must not
/// count as failed when the consumer closes, so closing drops those right after the client
/// stopped the queues: the client then gives them back to the group untouched.
pub struct PushHandle {
    consumer: PushConsumer,
    held: Mutex<HashMap<u32, Held>>,
    next: AtomicU32,
}

impl PushHandle {
    pub fn new(consumer: PushConsumer) -> Arc<PushHandle> {
        Arc::new(PushHandle { consumer, held: Mutex::default(), next: AtomicU32::new(0) })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `received` until JS settles it; the batch of them for JS. The first is seen
    /// already: a `recv()` waits for it (closing while its answer crosses to JS must not take
    /// it back); the rest are read-ahead.
    fn hold(&self, received: Vec<ReceivedMessage>) -> MessageBatch {
        let ids: Vec<u32> = received.iter().map(|_| self.next.fetch_add(1, Ordering::Relaxed)).collect();
        let batch = MessageBatch::new(ids.iter().copied().zip(received.iter().map(|r| r.message())));
        let mut held = self.held();
        for (i, (id, received)) in ids.into_iter().zip(received).enumerate() {
            held.insert(id, Held { received, seen: i == 0 });
        }
        batch
    }

    fn take(&self, id: u32) -> napi::Result<ReceivedMessage> {
        self.held().remove(&id).map(|h| h.received).ok_or_else(settled)
    }

    /// Leaves the group (see [`PushConsumer::close`]); read-ahead messages go back untouched.
    pub async fn close(&self) -> ferrymq_core::Result<()> {
        // `join` polls the close first, and its first poll stops every queue before it
        // waits for anything; a delivery dropped after that is abandoned, not nacked.
        let drop_unseen = async {
            self.held().retain(|_, h| h.seen);
        };
        let (closed, ()) = futures::future::join(self.consumer.close(), drop_unseen).await;
        closed
    }
}

/// A member of a consumer group on one topic (see `PushConsumer` in index.d.ts).
#[napi]
pub struct NativePushConsumer {
    handle: Arc<PushHandle>,
    dispatch: Option<Arc<ListenerDispatch>>,
    hooks: Option<Arc<RebalanceHooks>>,
    _cell: Arc<ClientCell>,
}

impl NativePushConsumer {
    pub fn new(
        cell: Arc<ClientCell>,
        handle: Arc<PushHandle>,
        dispatch: Option<Arc<ListenerDispatch>>,
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

    /// Messages (no listener): waits up to `timeout_ms` (forever when absent) for one, then
    /// adds whatever else is ready, up to `max`. Empty on timeout or once closed.
    #[napi]
    pub async fn recv_many(&self, max: u32, timeout_ms: Option<i64>) -> napi::Result<MessageBatch> {
        if self.dispatch.is_some() {
            return Err(invalid("/listener", "this consumer has a listener: its messages go to the listener"));
        }
        let consumer = &self.handle.consumer;
        let first = match opt_millis("/timeoutMs", timeout_ms)? {
            None => consumer.recv().await,
            Some(t) => tokio::time::timeout(t, consumer.recv()).await.ok().flatten(),
        };
        let mut received: Vec<ReceivedMessage> = first.into_iter().collect();
        // `recv` is cancel-safe (a lock, then a channel's receive): a poll that is not ready
        // takes nothing.
        while !received.is_empty() && received.len() < max as usize {
            match consumer.recv().now_or_never() {
                Some(Some(r)) => received.push(r),
                _ => break,
            }
        }
        Ok(self.handle.hold(received))
    }

    /// Marks message `id` as handed to the application; false when it is gone (the consumer
    /// closed and gave it back).
    #[napi]
    pub fn take(&self, id: u32) -> bool {
        match self.handle.held().get_mut(&id) {
            Some(held) => {
                held.seen = true;
                true
            }
            None => false,
        }
    }

    /// Marks message `id` consumed. Does not wait: the consumer commits in the background.
    #[napi]
    pub fn ack(&self, id: u32) -> napi::Result<()> {
        self.handle.take(id)?.ack();
        Ok(())
    }

    /// Marks message `id` failed: redelivered after `delay_ms`, or after the retry delay.
    #[napi]
    pub fn nack(&self, id: u32, delay_ms: Option<i64>) -> napi::Result<()> {
        let delay = opt_millis("/delayMs", delay_ms)?;
        let received = self.handle.take(id)?;
        match delay {
            Some(d) => received.nack_after(d),
            None => received.nack(),
        }
        Ok(())
    }

    /// The listener's verdicts on the messages numbered from `first` on; `null` for one
    /// reported later (see [`ListenerDispatch::settle`]).
    #[napi]
    pub fn settle(&self, first: i64, verdicts: Vec<Option<u32>>) {
        if let (Some(dispatch), Ok(first)) = (&self.dispatch, u64::try_from(first)) {
            dispatch.settle(first, &verdicts);
        }
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
        if let Some(dispatch) = &self.dispatch {
            dispatch.release();
        }
        js(closed)
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
    pub async fn receive(&self, max_messages: i64, wait_ms: i64, invisible_ms: i64) -> napi::Result<MessageBatch> {
        let max = usize::try_from(max_messages)
            .ok()
            .filter(|&m| m >= 1)
            .ok_or_else(|| invalid("/maxMessages", "must be at least 1"))?;
        let wait = millis("/waitMs", wait_ms)?;
        let invisible = millis("/invisibleMs", invisible_ms)?;
        let messages = js(self.consumer.receive(max, wait, invisible).await)?;
        Ok(MessageBatch::new(messages.iter().enumerate().map(|(i, m)| (i as u32, m))))
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
