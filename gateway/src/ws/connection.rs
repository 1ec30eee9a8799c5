//! One WebSocket connection's state and one handler per [`Op`].
//!
//! The connection is a group member under its own id (`ws-…`) for every group it subscribes
//! to; native clients name themselves in `heartbeat`. When it closes, every group gets its
//! held messages back at once and loses the member at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ferrymq_core::broker::{
    Broker, ConsumeMode, FilterSpec, MemberTransport, Message, MessageState, PullRequest, ReceiveRequest,
    StartPosition, Subscription, TransactionResolution,
};
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::access::Caller;
use crate::auth::Action;
use crate::problem::{ApiError, ApiResult};
use crate::routes::consume::{filter_spec, invisible, MAX_WAIT_MS};
use crate::routes::publish::batch_messages;
use crate::state::AppState;
use crate::wire::{IntoOutgoing, PublishBatch, PublishContext, PublishMessage, SendResultOut};
use crate::ws::protocol::{
    AckFrame, CommitFrame, CreditFrame, EndTransactionFrame, FrameIds, HeartbeatFrame, LockFrame, NackFrame, Op,
    PublishBody, PublishFrame, PublishedBody, PullFrame, QueryOffsetFrame, RegisterProducerFrame, SendBackFrame,
    ServerFrame, StartIn, StartName, SubscribeFrame, UnsubscribeFrame,
};
use crate::ws::window::{SubscriptionTask, Window};
use crate::ws::Outbox;

/// Default window of a subscription.
pub const DEFAULT_CREDITS: u32 = 100;
/// Most subscriptions one connection holds at once.
pub const MAX_SUBSCRIPTIONS: usize = 64;
/// Most native pulls one connection has outstanding at once.
pub const MAX_PULLS: usize = 1024;

/// A publish waiting for its turn: publishes of one connection are stored in order.
struct PublishJob {
    req_id: String,
    topic: String,
    work: PublishWork,
}

enum PublishWork {
    Single(ferrymq_core::broker::OutgoingMessage),
    Batch(Vec<ferrymq_core::broker::OutgoingMessage>, Option<String>),
}

struct Sub {
    group: String,
    /// The member id it subscribed as.
    client_id: String,
    /// Broadcasting under the connection's own id: its position goes when it ends.
    ephemeral_broadcast: bool,
    window: Arc<Window>,
    task: JoinHandle<()>,
}

/// The state of one connection.
pub struct Connection {
    state: AppState,
    broker: Arc<Broker>,
    caller: Caller,
    /// The member id of this connection's subscriptions.
    conn_id: String,
    /// Key in the producer registry.
    seq: u64,
    out: Outbox,
    subs: HashMap<String, Sub>,
    /// (group, client id) pairs this connection made members, released on close.
    members: BTreeSet<(String, String)>,
    publisher: mpsc::Sender<PublishJob>,
    publisher_task: JoinHandle<()>,
    pulls: Vec<JoinHandle<()>>,
}

impl Connection {
    /// A new connection sending its frames to `out`.
    pub fn new(state: AppState, broker: Arc<Broker>, caller: Caller, out: Outbox) -> Self {
        let seq: u64 = rand::random();
        let conn_id = format!("ws-{seq:016x}");
        let (publisher, jobs) = mpsc::channel(256);
        let publisher_task = tokio::spawn(run_publisher(broker.clone(), jobs, out.clone()));
        Connection {
            state,
            broker,
            caller,
            conn_id,
            seq,
            out,
            subs: HashMap::new(),
            members: BTreeSet::new(),
            publisher,
            publisher_task,
            pulls: Vec::new(),
        }
    }

    /// This connection's member id.
    pub fn id(&self) -> &str {
        &self.conn_id
    }

    async fn send(&self, frame: ServerFrame) {
        let _ = self.out.send(frame).await;
    }

    async fn fail(&self, err: &ApiError, ids: FrameIds) {
        self.send(crate::ws::protocol::error_frame(err, ids)).await;
    }

    /// `consume` on `topic` for `group`; the group's own retry topic is covered by the group
    /// grant alone (its messages belong to topics the group consumes).
    fn require_consume(&self, topic: &str, group: &str) -> ApiResult<()> {
        let topic = (topic != ferrymq_core::broker::retry_topic(group)).then_some(topic);
        self.caller.require(Action::Consume, topic, Some(group))
    }

    /// Handles one text frame; a bad one gets an `error` frame and changes nothing.
    pub async fn handle_text(&mut self, text: &str) {
        match crate::ws::protocol::parse(text) {
            Ok((op, ids)) => {
                if let Err(err) = self.dispatch(op).await {
                    self.fail(&err, ids).await;
                }
            }
            Err((err, ids)) => self.fail(&err, ids).await,
        }
    }

    /// One handler per op.
    async fn dispatch(&mut self, op: Op) -> ApiResult<()> {
        self.pulls.retain(|task| !task.is_finished());
        match op {
            Op::Subscribe(frame) => self.subscribe(frame).await,
            Op::Ack(frame) => self.ack(frame).await,
            Op::Nack(frame) => self.nack(frame).await,
            Op::Credit(frame) => self.credit(frame),
            Op::Unsubscribe(frame) => self.unsubscribe(frame).await,
            Op::Publish(frame) => self.publish(frame).await,
            Op::RegisterProducer(frame) => self.register_producer(frame),
            Op::EndTransaction(frame) => self.end_transaction(frame).await,
            Op::Heartbeat(frame) => self.heartbeat(frame).await,
            Op::Pull(frame) => self.pull(frame),
            Op::Commit(frame) => self.commit(frame).await,
            Op::Lock(frame) => self.lock(frame).await,
            Op::Unlock(frame) => self.unlock(frame).await,
            Op::SendBack(frame) => self.send_back(frame).await,
            Op::QueryOffset(frame) => self.query_offset(frame).await,
        }
    }

    async fn subscribe(&mut self, f: SubscribeFrame) -> ApiResult<()> {
        self.caller.require(Action::Consume, Some(&f.topic), Some(&f.group))?;
        if self.subs.get(&f.id).is_some_and(|s| !s.task.is_finished()) {
            return Err(ApiError::Core(ferrymq_core::Error::Conflict(format!(
                "subscription {:?} exists on this connection",
                f.id
            ))));
        }
        self.subs.retain(|_, s| !s.task.is_finished());
        if self.subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(ApiError::Core(ferrymq_core::Error::Conflict(format!(
                "a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions; unsubscribe one first"
            ))));
        }
        let credits = f.credits.unwrap_or(DEFAULT_CREDITS);
        if credits == 0 {
            return Err(ApiError::invalid("/credits", "must be at least 1"));
        }
        let invisible = invisible(f.invisible_ms.unwrap_or(30_000), "/invisible_ms")?;
        let filter = filter_spec(f.filter, f.sql, "")?;
        check_filter(&filter)?;
        let topic = self.broker.topic(&f.topic)?;
        if !topic.topic.perm.readable() {
            return Err(ferrymq_core::Error::Forbidden(format!("topic {:?} is write-only", f.topic)).into());
        }
        let start = match f.start {
            None | Some(StartIn::Named(StartName::First)) => StartPosition::First,
            Some(StartIn::Named(StartName::Last)) => StartPosition::Last,
            Some(StartIn::At { timestamp }) => StartPosition::Timestamp(timestamp),
        };
        let mode: ConsumeMode = f.mode.unwrap_or_default().into();
        let ephemeral_broadcast = mode == ConsumeMode::Broadcasting && f.client_id.is_none();
        let client_id = match f.client_id {
            Some(id) if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) => {
                return Err(ApiError::invalid("/client_id", "must be 1 to 255 characters, none a control character"));
            }
            Some(id) => id,
            None => self.conn_id.clone(),
        };
        self.broker.heartbeat(
            &f.group,
            &client_id,
            MemberTransport::Ws,
            vec![Subscription { topic: f.topic.clone(), filter: filter.clone(), mode }],
        )?;
        self.members.insert((f.group.clone(), client_id.clone()));
        // Where it starts is fixed before `subscribed` goes out, so that everything stored after
        // that answer is delivered.
        self.broker.fix_start(&f.group, &client_id, &f.topic, mode, start)?;
        let orderly = f.orderly.unwrap_or(false);
        let window =
            Arc::new(if orderly { Window::orderly(u64::from(credits)) } else { Window::new(u64::from(credits)) });
        let ready =
            (mode == ConsumeMode::Clustering).then(|| self.broker.ready_receiver(&f.group, &f.topic, &client_id));
        let task = SubscriptionTask {
            ready,
            id: f.id.clone(),
            broker: self.broker.clone(),
            request: ReceiveRequest {
                group: f.group.clone(),
                topic: f.topic,
                filter,
                max_messages: 1,
                wait: Duration::ZERO,
                invisible,
                client_id: client_id.clone(),
                transport: MemberTransport::Ws,
                mode,
                start,
                orderly,
            },
            window: window.clone(),
            out: self.out.clone(),
        };
        // `subscribed` goes out before the task can send any `message`.
        self.send(ServerFrame::Subscribed { id: f.id.clone() }).await;
        let task = tokio::spawn(task.run());
        self.subs.insert(f.id, Sub { group: f.group, client_id, ephemeral_broadcast, window, task });
        Ok(())
    }

    /// The group and window of a receipt this connection delivered; else its most likely group.
    fn receipt_owner(&self, receipt: &str) -> (String, Option<Arc<Window>>) {
        if let Some(sub) = self.subs.values().find(|s| s.window.holds(receipt)) {
            return (sub.group.clone(), Some(sub.window.clone()));
        }
        // Not in flight here (expired, or from an ended subscription): ask the broker on behalf
        // of a group of this connection, so that it can say what became of the receipt.
        // With no group at all, the empty group: the broker still says whether the receipt
        // parses, and calls a well-formed one unknown.
        let group = self
            .subs
            .values()
            .map(|s| s.group.clone())
            .chain(self.members.iter().map(|(g, _)| g.clone()))
            .next()
            .unwrap_or_default();
        (group, None)
    }

    async fn ack(&mut self, f: AckFrame) -> ApiResult<()> {
        let (group, window) = self.receipt_owner(&f.receipt);
        let outcome = self.broker.ack(&group, &f.receipt).await.map_err(|e| receipt_error(e, &f.receipt))?;
        if let Some(window) = window {
            window.release(&f.receipt);
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(failure) => {
                self.receipt_failed(&f.receipt, failure).await;
                Ok(())
            }
        }
    }

    async fn nack(&mut self, f: NackFrame) -> ApiResult<()> {
        let (group, window) = self.receipt_owner(&f.receipt);
        let delay = f.delay_ms.map(Duration::from_millis);
        if delay.is_some_and(|d| d > self.broker.config().max_delay) {
            return Err(ApiError::invalid("/delay_ms", "must be at most max_delay"));
        }
        let outcome = self.broker.nack(&group, &f.receipt, delay).await.map_err(|e| receipt_error(e, &f.receipt))?;
        if let Some(window) = window {
            window.release(&f.receipt);
            // An orderly nack also returns the later deliveries of its queue: free their slots.
            if window.is_orderly() {
                window.retain_held(|receipt| self.broker.holds_receipt(&group, receipt));
            }
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(failure) => {
                self.receipt_failed(&f.receipt, failure).await;
                Ok(())
            }
        }
    }

    /// The `error` frame of an ack or nack that did not apply.
    async fn receipt_failed(&self, receipt: &str, failure: ferrymq_core::broker::ReceiptFailure) {
        let err = match failure {
            ferrymq_core::broker::ReceiptFailure::Unknown => {
                ApiError::Core(ferrymq_core::Error::not_found("receipt", receipt))
            }
            ferrymq_core::broker::ReceiptFailure::Expired => ApiError::Core(ferrymq_core::Error::Conflict(
                "the lease of this receipt expired; the message went back to the group".to_string(),
            )),
            ferrymq_core::broker::ReceiptFailure::Acked => {
                ApiError::Core(ferrymq_core::Error::Conflict("this receipt was acknowledged already".to_string()))
            }
        };
        let mut frame = crate::ws::protocol::ErrorFrame::new(err.problem(), FrameIds::default());
        frame.receipt = Some(receipt.to_string());
        frame.reason = Some(failure.as_str().to_string());
        self.send(ServerFrame::Error(frame)).await;
    }

    fn credit(&mut self, f: CreditFrame) -> ApiResult<()> {
        if f.n == 0 {
            return Err(ApiError::invalid("/n", "must be at least 1"));
        }
        let sub = self
            .subs
            .get(&f.id)
            .ok_or_else(|| ApiError::Core(ferrymq_core::Error::not_found("subscription", &f.id)))?;
        sub.window.grant(u64::from(f.n));
        Ok(())
    }

    async fn unsubscribe(&mut self, f: UnsubscribeFrame) -> ApiResult<()> {
        let sub = self
            .subs
            .remove(&f.id)
            .ok_or_else(|| ApiError::Core(ferrymq_core::Error::not_found("subscription", &f.id)))?;
        sub.task.abort();
        // Ended before its member leaves (see `close`).
        let _ = sub.task.await;
        // Leaving the last subscription of a group leaves the group: its held messages go back.
        if !self.subs.values().any(|s| s.group == sub.group && s.client_id == sub.client_id) {
            self.broker.release_client(&sub.group, &sub.client_id);
            if sub.ephemeral_broadcast {
                self.broker.forget_broadcast_member(&sub.group, &sub.client_id);
            }
            self.members.remove(&(sub.group.clone(), sub.client_id.clone()));
        }
        self.send(ServerFrame::Unsubscribed { id: f.id }).await;
        Ok(())
    }

    async fn publish(&mut self, f: PublishFrame) -> ApiResult<()> {
        self.caller.require(Action::Publish, Some(&f.topic), None)?;
        let ctx = PublishContext {
            delay_levels: self.broker.config().delay_levels.len(),
            max_delay: self.broker.config().max_delay,
            traceparent: None,
        };
        let work = match f.body {
            PublishBody::Batch { messages, idempotency_key } => {
                let batch = PublishBatch { messages };
                for message in &batch.messages {
                    self.register_publisher_group(message);
                }
                PublishWork::Batch(batch_messages(batch, &ctx)?, idempotency_key)
            }
            PublishBody::Single(message) => {
                self.register_publisher_group(&message);
                PublishWork::Single(message.into_outgoing("", &ctx)?)
            }
        };
        let job = PublishJob { req_id: f.req_id, topic: f.topic, work };
        self.publisher.send(job).await.map_err(|_| ApiError::Unavailable("the connection is closing".to_string()))
    }

    /// A connection that publishes for a producer group answers that group's checks.
    fn register_publisher_group(&self, message: &PublishMessage) {
        if let Some(group) = message.producer_group.as_deref().filter(|g| !g.is_empty()) {
            self.state.producers().register(group, self.seq, self.caller.grants.clone(), self.out.clone());
        }
    }

    fn register_producer(&mut self, f: RegisterProducerFrame) -> ApiResult<()> {
        self.caller.require(Action::Publish, None, Some(&f.group))?;
        if f.group.is_empty() {
            return Err(ApiError::invalid("/group", "must not be empty"));
        }
        self.state.producers().register(&f.group, self.seq, self.caller.grants.clone(), self.out.clone());
        Ok(())
    }

    async fn end_transaction(&mut self, f: EndTransactionFrame) -> ApiResult<()> {
        let topic = self.broker.transaction_topic(&f.transaction_id);
        self.caller.require(Action::Publish, topic.as_deref(), None)?;
        let resolution = TransactionResolution::parse(&f.status)?;
        if resolution == TransactionResolution::Unknown {
            // Nothing to do: the broker asks again at its next check.
            return Ok(());
        }
        let outcome = self.broker.end_transaction(&f.transaction_id, resolution).await?;
        if let Some(req_id) = f.req_id {
            let out: crate::wire::TransactionOut = outcome.into();
            self.send(ServerFrame::TransactionEnded {
                req_id,
                transaction_id: out.transaction_id,
                msg_id: out.msg_id,
                status: out.status,
            })
            .await;
        }
        Ok(())
    }

    async fn heartbeat(&mut self, f: HeartbeatFrame) -> ApiResult<()> {
        self.caller.require(Action::Consume, None, Some(&f.group))?;
        let mut subscriptions = Vec::with_capacity(f.subscriptions.len());
        for (index, s) in f.subscriptions.into_iter().enumerate() {
            self.caller.require(Action::Consume, Some(&s.topic), Some(&f.group))?;
            let filter = filter_spec(s.filter, s.sql, &format!("/subscriptions/{index}"))?;
            check_filter(&filter)?;
            subscriptions.push(Subscription { topic: s.topic, filter, mode: s.mode.unwrap_or_default().into() });
        }
        let client_id = f.client_id.unwrap_or_else(|| self.conn_id.clone());
        if client_id.is_empty() {
            return Err(ApiError::invalid("/client_id", "must not be empty"));
        }
        self.broker.heartbeat(&f.group, &client_id, MemberTransport::Native, subscriptions)?;
        self.members.insert((f.group.clone(), client_id));
        if let Some(req_id) = f.req_id {
            let members = self.broker.members(&f.group).into_iter().map(Into::into).collect();
            self.send(ServerFrame::HeartbeatAck { req_id, group: f.group, members }).await;
        }
        Ok(())
    }

    fn pull(&mut self, f: PullFrame) -> ApiResult<()> {
        self.require_consume(&f.topic, &f.group)?;
        let max = f.max.unwrap_or(32);
        if !(1..=1000).contains(&max) {
            return Err(ApiError::invalid("/max", "must be between 1 and 1000"));
        }
        let wait_ms = f.wait_ms.unwrap_or(0);
        if wait_ms > MAX_WAIT_MS {
            return Err(ApiError::invalid("/wait_ms", "must be at most 30000"));
        }
        let filter = filter_spec(f.filter, f.sql, "")?;
        if self.pulls.len() >= MAX_PULLS {
            return Err(ApiError::Core(ferrymq_core::Error::Conflict(format!(
                "a connection has at most {MAX_PULLS} pulls outstanding"
            ))));
        }
        let request = PullRequest {
            group: f.group,
            topic: f.topic,
            queue_id: f.queue_id,
            offset: f.offset,
            max: max as usize,
            filter,
            wait: Duration::from_millis(wait_ms),
        };
        let broker = self.broker.clone();
        let out = self.out.clone();
        let req_id = f.req_id;
        // Long polls run beside the connection's other frames.
        self.pulls.push(tokio::spawn(async move {
            let frame = match broker.pull(request).await {
                Ok(result) => ServerFrame::Pulled {
                    req_id,
                    messages: result.messages.into_iter().map(Into::into).collect(),
                    next_offset: result.next_offset,
                    min_offset: result.min_offset,
                    max_offset: result.max_offset,
                },
                Err(err) => {
                    crate::ws::protocol::error_frame(&ApiError::Core(err), FrameIds { id: None, req_id: Some(req_id) })
                }
            };
            let _ = out.send(frame).await;
        }));
        Ok(())
    }

    async fn commit(&mut self, f: CommitFrame) -> ApiResult<()> {
        self.require_consume(&f.topic, &f.group)?;
        self.broker.commit_offset(&f.group, &f.topic, f.queue_id, f.offset)?;
        if let Some(req_id) = f.req_id {
            self.send(ServerFrame::Committed { req_id }).await;
        }
        Ok(())
    }

    async fn lock(&mut self, f: LockFrame) -> ApiResult<()> {
        self.require_consume(&f.topic, &f.group)?;
        let req_id = f.req_id.ok_or_else(|| ApiError::invalid("/req_id", "missing field `req_id`: lock needs one"))?;
        let client_id = f.client_id.unwrap_or_else(|| self.conn_id.clone());
        let locked = self.broker.lock_queue(&f.group, &f.topic, f.queue_id, &client_id)?;
        self.send(ServerFrame::Locked { req_id, locked }).await;
        Ok(())
    }

    async fn unlock(&mut self, f: LockFrame) -> ApiResult<()> {
        self.require_consume(&f.topic, &f.group)?;
        let client_id = f.client_id.unwrap_or_else(|| self.conn_id.clone());
        self.broker.unlock_queue(&f.group, &f.topic, f.queue_id, &client_id);
        if let Some(req_id) = f.req_id {
            self.send(ServerFrame::Unlocked { req_id }).await;
        }
        Ok(())
    }

    async fn query_offset(&mut self, f: QueryOffsetFrame) -> ApiResult<()> {
        self.require_consume(&f.topic, &f.group)?;
        ferrymq_core::broker::validate_group_name(&f.group)?;
        let offset = self.broker.committed_offset(&f.group, &f.topic, f.queue_id);
        self.send(ServerFrame::Offset { req_id: f.req_id, offset }).await;
        Ok(())
    }

    async fn send_back(&mut self, f: SendBackFrame) -> ApiResult<()> {
        self.caller.require(Action::Consume, Some(&f.topic), Some(&f.group))?;
        let delay = f.delay_ms.map(Duration::from_millis);
        if delay.is_some_and(|d| d > self.broker.config().max_delay) {
            return Err(ApiError::invalid("/delay_ms", "must be at most max_delay"));
        }
        // The broker reads the record at `commit_offset` and checks its id; the rest of the
        // message is not needed.
        let message = Message {
            msg_id: f.msg_id,
            topic: f.topic,
            queue_id: None,
            queue_offset: None,
            commit_offset: Some(f.commit_offset),
            body: Vec::new(),
            tag: None,
            keys: Vec::new(),
            properties: BTreeMap::new(),
            born_ts: 0,
            store_ts: 0,
            reconsume_times: f.reconsume_times,
            receipt: None,
            state: MessageState::Stored,
        };
        self.broker.send_message_back(&f.group, &message, delay).await?;
        if let Some(req_id) = f.req_id {
            self.send(ServerFrame::SentBack { req_id }).await;
        }
        Ok(())
    }

    /// The connection closed: stop its work, give back what it held, leave its groups.
    pub async fn close(mut self) {
        let mut forget = Vec::new();
        let mut tasks = Vec::new();
        for (_, sub) in self.subs.drain() {
            sub.task.abort();
            tasks.push(sub.task);
            if sub.ephemeral_broadcast {
                forget.push((sub.group, sub.client_id));
            }
        }
        for task in self.pulls.drain(..) {
            task.abort();
            tasks.push(task);
        }
        self.publisher_task.abort();
        // A task aborted while another worker polls it finishes that poll first, and a receive
        // in it renews its membership and may take messages: the members leave (and what they
        // hold goes back) only once every task has ended.
        for task in tasks {
            let _ = task.await;
        }
        for (group, client_id) in &self.members {
            self.broker.release_client(group, client_id);
        }
        // A broadcasting position under the connection's own id cannot be taken up again.
        for (group, client_id) in forget {
            self.broker.forget_broadcast_member(&group, &client_id);
        }
        self.state.producers().unregister(self.seq);
    }
}

/// Rejects a filter that does not compile, before the subscription starts.
fn check_filter(filter: &FilterSpec) -> ApiResult<()> {
    match filter {
        FilterSpec::Tag(expression) => ferrymq_core::broker::filter::Filter::tag(expression)?,
        FilterSpec::Sql(expression) => ferrymq_core::broker::filter::Filter::sql(expression)?,
    };
    Ok(())
}

/// An unparseable receipt: `invalid-argument` on `/receipt`.
fn receipt_error(err: ferrymq_core::Error, receipt: &str) -> ApiError {
    match err {
        ferrymq_core::Error::InvalidArgument { message, .. } => {
            ApiError::invalid("/receipt", format!("{message} ({receipt:?})"))
        }
        other => other.into(),
    }
}

/// Most single publishes folded into one store batch.
const COALESCE_MAX: usize = 256;

/// Most batches of one connection appended but not yet answered (waiting for their group
/// commit and dispatch). Appends go on meanwhile, in order.
const PIPELINE_DEPTH: usize = 16;

/// The answers of publishes in flight, in the order they were appended.
type Answers = futures::future::BoxFuture<'static, Vec<ServerFrame>>;

/// Stores a connection's publishes in the order they arrived and answers them in that order.
/// Single publishes to one topic that are already waiting are folded into one atomic batch:
/// one append instead of one each, with the same per-message queue selection. A batch is
/// appended before the next is taken, but its answer waits for durability and dispatch while
/// later batches are appended (up to [`PIPELINE_DEPTH`]): one connection keeps the group commit
/// busy on its own.
async fn run_publisher(broker: Arc<Broker>, mut jobs: mpsc::Receiver<PublishJob>, out: Outbox) {
    let max_batch = broker.config().max_batch_messages.clamp(1, COALESCE_MAX);
    let max_bytes = broker.config().max_batch_bytes;
    let mut pending: Option<PublishJob> = None;
    let mut in_flight: FuturesOrdered<Answers> = FuturesOrdered::new();
    loop {
        let job = tokio::select! {
            biased;
            Some(frames) = in_flight.next(), if !in_flight.is_empty() => {
                for frame in frames {
                    if out.send(frame).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            job = next_job(&mut pending, &mut jobs), if in_flight.len() < PIPELINE_DEPTH => match job {
                Some(job) => job,
                None => break,
            },
        };
        let answers = match job.work {
            PublishWork::Single(first) => {
                let topic = job.topic;
                // A send with an idempotency key is deduplicated on its own.
                let foldable = first.idempotency_key.is_none();
                let mut bytes = first.body.len();
                let mut run = vec![(job.req_id, first)];
                while foldable && run.len() < max_batch {
                    let Ok(next) = jobs.try_recv() else { break };
                    match next.work {
                        PublishWork::Single(msg)
                            if next.topic == topic
                                && bytes + msg.body.len() <= max_bytes
                                && msg.idempotency_key.is_none() =>
                        {
                            bytes += msg.body.len();
                            run.push((next.req_id, msg));
                        }
                        work => {
                            pending = Some(PublishJob { req_id: next.req_id, topic: next.topic, work });
                            break;
                        }
                    }
                }
                publish_run(&broker, &topic, run).await
            }
            PublishWork::Batch(msgs, key) => {
                let req_id = job.req_id;
                match broker.send_batch_pipelined(&job.topic, msgs, key).await {
                    Ok(done) => Box::pin(async move {
                        let result = done
                            .await
                            .map(|rs| PublishedBody::Batch { results: rs.into_iter().map(Into::into).collect() });
                        vec![published_frame(req_id, result)]
                    }) as Answers,
                    Err(err) => Box::pin(std::future::ready(vec![published_frame(req_id, Err(err))])),
                }
            }
        };
        in_flight.push_back(answers);
    }
    // The connection stopped sending: answer what is still in flight.
    while let Some(frames) = in_flight.next().await {
        for frame in frames {
            if out.send(frame).await.is_err() {
                return;
            }
        }
    }
}

/// The publish left over from the last fold, or the next one to arrive.
async fn next_job(pending: &mut Option<PublishJob>, jobs: &mut mpsc::Receiver<PublishJob>) -> Option<PublishJob> {
    match pending.take() {
        Some(job) => Some(job),
        None => jobs.recv().await,
    }
}

/// Appends a run of single publishes to one topic, as one batch when there are several, and
/// returns their answers to come. If the batch is refused before anything is stored, its
/// messages are sent one by one, so that each error reaches the publish that caused it.
async fn publish_run(
    broker: &Broker,
    topic: &str,
    mut run: Vec<(String, ferrymq_core::broker::OutgoingMessage)>,
) -> Answers {
    let single = |req_id: String, result: ferrymq_core::Result<ferrymq_core::broker::SendResult>| {
        published_frame(req_id, result.map(|r| PublishedBody::Single(SendResultOut::from(r))))
    };
    // Every publish of the batch gets the error: it was appended but is not durable (a failed
    // flush), or the store refused the whole batch.
    let all_fail = |req_ids: Vec<String>, err: ferrymq_core::Error| -> Vec<ServerFrame> {
        let err = ApiError::Core(err);
        let ids = |req_id| FrameIds { id: None, req_id: Some(req_id) };
        req_ids.into_iter().map(|req_id| crate::ws::protocol::error_frame(&err, ids(req_id))).collect()
    };
    if run.len() > 1 {
        let (req_ids, msgs): (Vec<String>, Vec<_>) = run.into_iter().unzip();
        match broker.send_together_pipelined(topic, msgs) {
            Ok(done) => {
                return Box::pin(async move {
                    match done.await {
                        Ok(results) => {
                            req_ids.into_iter().zip(results).map(|(req_id, r)| single(req_id, Ok(r))).collect()
                        }
                        Err(err) => all_fail(req_ids, err),
                    }
                });
            }
            Err((err, back)) if back.is_empty() => return Box::pin(std::future::ready(all_fail(req_ids, err))),
            Err((_, back)) => run = req_ids.into_iter().zip(back).collect(),
        }
    }
    let mut answers: Vec<(String, ferrymq_core::Result<ferrymq_core::broker::SendCompletion>)> =
        Vec::with_capacity(run.len());
    for (req_id, msg) in run {
        answers.push((req_id, broker.send_one_pipelined(topic, msg).await));
    }
    Box::pin(async move {
        let mut frames = Vec::with_capacity(answers.len());
        for (req_id, answer) in answers {
            let result = match answer {
                Ok(done) => done.await.and_then(|mut rs| {
                    rs.pop().ok_or_else(|| ferrymq_core::Error::Unavailable("a send gave no result".into()))
                }),
                Err(err) => Err(err),
            };
            frames.push(single(req_id, result));
        }
        frames
    })
}

fn published_frame(req_id: String, result: ferrymq_core::Result<PublishedBody>) -> ServerFrame {
    match result {
        Ok(result) => ServerFrame::Published { req_id, result },
        Err(err) => crate::ws::protocol::error_frame(&ApiError::Core(err), FrameIds { id: None, req_id: Some(req_id) }),
    }
}
