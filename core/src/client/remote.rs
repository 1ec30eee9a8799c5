//! [`RemoteTransport`]: a FerryMQ gateway over the network.
//!
//! The member logic runs here, as for the embedded broker; the gateway only executes
//! low-level operations. They travel on its WebSocket protocol (`/v1/ws`, described in
//! `openapi/asyncapi.yaml`): `publish`, `pull`, `commit`, `lock`/`unlock`,
//! `register_producer`/`check`/`end_transaction`, and `heartbeat`. Everything else (lease
//! consumption, lookups, administration, committed offsets, member lists) uses the REST API.
//!
//! One shared socket carries the requests, matched to answers by `req_id`; it reconnects on
//! the next request after a failure and registers the producer groups again. Each member
//! heartbeats over a socket of its own, because the gateway removes a connection's members the
//! moment the connection closes: closing that socket is how a member leaves at once.
//!
//! Two limits follow from the gateway's protocol: a push consumer cannot send a failed message
//! back through retry (there is no such operation), so it retries it in place; and the
//! committed offset of a queue the group never committed reads as the queue's minimum, so a
//! remote push consumer begins new queues at the first retained message whatever its start
//! position.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::transport::{BrokerTimings, FindQuery, Transport};
use crate::broker::{
    ConsumeMode, Delay, FilterSpec, GroupDetail, GroupOffset, MemberInfo, Message, MessageState, OutgoingMessage, Perm,
    PullRequest, PullResult, QueueOffsets, ReceiptFailure, ReceiveRequest, ResetTarget, SendResult, Subscription,
    TopicDetail, TopicInfo, TransactionCheck, TransactionOutcome, TransactionResolution, TransactionStatus,
    Transport as MemberTransport,
};
use crate::{Error, Result};

/// Check-backs buffered per registered producer group.
const CHECK_BUFFER: usize = 256;
/// Time a pull may take beyond its long-poll wait before it counts as lost.
const PULL_GRACE: Duration = Duration::from_secs(10);

/// How to reach a gateway.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Bearer token, when the gateway has an `auth_file`.
    pub token: Option<String>,
    /// How long a request may take before it fails with [`Error::Timeout`] (default 30 s;
    /// long polls get their wait on top).
    pub request_timeout: Duration,
    /// The gateway's lease and retry settings, which consumers align with (default: the
    /// broker's defaults). The protocol does not carry them.
    pub timings: BrokerTimings,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions { token: None, request_timeout: Duration::from_secs(30), timings: BrokerTimings::default() }
    }
}

/// A transport to a gateway: its WebSocket protocol plus its REST API.
pub struct RemoteTransport {
    base: String,
    ws_url: String,
    options: RemoteOptions,
    http: reqwest::Client,
    /// The shared request socket, reconnected on demand.
    shared: tokio::sync::Mutex<Option<Arc<Socket>>>,
    /// One heartbeat socket per member `(group, client_id)`.
    members: tokio::sync::Mutex<HashMap<(String, String), Arc<Socket>>>,
    /// Where each registered producer group's check-backs go.
    producers: Arc<Mutex<HashMap<String, mpsc::Sender<TransactionCheck>>>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for RemoteTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTransport").field("base", &self.base).finish_non_exhaustive()
    }
}

impl RemoteTransport {
    /// Connects to the gateway at `url` (`http://host:port`): checks `/healthz` and opens the
    /// shared socket. [`Error::Connection`] when it cannot be reached.
    pub async fn connect(url: &str, options: RemoteOptions) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        let ws_url = match base.split_once("://") {
            Some(("http", rest)) => format!("ws://{rest}/v1/ws"),
            Some(("https", _)) => {
                return Err(Error::invalid("/url", "https is not supported by this build; use http:// or a TLS proxy"))
            }
            _ => return Err(Error::invalid("/url", format!("{url:?} is not an http:// URL"))),
        };
        let ws_url = match &options.token {
            Some(token) => format!("{ws_url}?token={}", encode_component(token)),
            None => ws_url,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(options.request_timeout)
            .build()
            .map_err(|e| Error::Connection(format!("HTTP client: {e}")))?;
        let transport = RemoteTransport {
            base,
            ws_url,
            options,
            http,
            shared: tokio::sync::Mutex::new(None),
            members: tokio::sync::Mutex::new(HashMap::new()),
            producers: Arc::default(),
            closed: AtomicBool::new(false),
        };
        let health =
            transport.http.get(format!("{}/healthz", transport.base)).send().await.map_err(connection_error)?;
        if !health.status().is_success() {
            return Err(Error::Unavailable(format!("{} answered /healthz with {}", transport.base, health.status())));
        }
        transport.socket().await?;
        Ok(transport)
    }

    /// The shared socket, connecting (again) if needed.
    async fn socket(&self) -> Result<Arc<Socket>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Connection("the client is closed".into()));
        }
        let mut shared = self.shared.lock().await;
        if let Some(s) = shared.as_ref().filter(|s| s.is_alive()) {
            return Ok(s.clone());
        }
        let socket = Socket::connect(&self.ws_url, self.producers.clone()).await?;
        let groups: Vec<String> = self.producers.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        for group in groups {
            socket.send(json!({"op": "register_producer", "group": group}))?;
        }
        *shared = Some(socket.clone());
        Ok(socket)
    }

    async fn request(&self, frame: Value, timeout: Duration) -> Result<Value> {
        self.socket().await?.request(frame, timeout).await
    }

    // ----- REST -----

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = req.timeout(self.options.request_timeout);
        match &self.options.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Sends a REST request; maps a problem response to its error.
    async fn rest(&self, req: reqwest::RequestBuilder) -> Result<Option<Value>> {
        let response = self.authorize(req).send().await.map_err(connection_error)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(connection_error)?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(None);
            }
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Connection(format!("unreadable answer from the gateway: {e}")));
        }
        let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Err(problem_error(&problem, status.as_u16()))
    }

    async fn rest_json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let value = self.rest(req).await?.unwrap_or(Value::Null);
        decode(value)
    }
}

/// Percent-encodes a path segment or query value (everything but unreserved characters).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn connection_error(e: impl std::fmt::Display) -> Error {
    Error::Connection(e.to_string())
}

fn decode<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Connection(format!("unexpected answer from the gateway: {e}")))
}

/// Turns a problem (`{"type", "title", "status", "detail", "errors"}`) into the error of the
/// same kind.
fn problem_error(problem: &Value, status: u16) -> Error {
    let kind = problem.get("type").and_then(Value::as_str).and_then(|t| t.strip_prefix("urn:ferrymq:error:"));
    let detail = problem.get("detail").and_then(Value::as_str).unwrap_or("").to_string();
    let field = problem
        .get("errors")
        .and_then(|e| e.get(0))
        .and_then(|e| e.get("field"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match kind {
        Some("invalid-argument") | Some("method-not-allowed") | Some("unsupported-media-type") => {
            Error::InvalidArgument { field, message: detail }
        }
        Some("invalid-filter") => Error::InvalidFilter { expression: String::new(), message: detail },
        Some("not-found") => Error::NotFound { what: "resource", name: detail },
        Some("conflict") => Error::Conflict(detail),
        Some("idempotency-conflict") => Error::IdempotencyConflict { key: detail },
        Some("forbidden") => Error::Forbidden(detail),
        Some("unauthorized") => Error::Unauthorized(detail),
        Some("payload-too-large") => Error::MessageTooLarge { size: 0, max: 0 },
        Some("insufficient-storage") => Error::InsufficientStorage { used_ratio: 1.0, max_ratio: 1.0 },
        Some("timeout") => Error::Timeout(detail),
        Some("unavailable") => Error::Unavailable(detail),
        _ => Error::Unavailable(format!("the gateway answered {status}: {detail}")),
    }
}

// ----- wire shapes -----

#[derive(Deserialize)]
struct WireMessage {
    msg_id: String,
    topic: String,
    queue_id: Option<u32>,
    queue_offset: Option<u64>,
    commit_offset: Option<u64>,
    body_base64: String,
    tag: Option<String>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
    born_ts: u64,
    store_ts: u64,
    reconsume_times: u32,
    receipt: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

impl WireMessage {
    fn into_message(self) -> Result<Message> {
        let body = base64::engine::general_purpose::STANDARD
            .decode(&self.body_base64)
            .map_err(|e| Error::Connection(format!("message {} has an unreadable body: {e}", self.msg_id)))?;
        let state = match self.state.as_deref() {
            Some("scheduled") => MessageState::Scheduled,
            Some("half") => MessageState::Half,
            _ => MessageState::Stored,
        };
        Ok(Message {
            msg_id: self.msg_id,
            topic: self.topic,
            queue_id: self.queue_id,
            queue_offset: self.queue_offset,
            commit_offset: self.commit_offset,
            body,
            tag: self.tag,
            keys: self.keys,
            properties: self.properties,
            born_ts: self.born_ts,
            store_ts: self.store_ts,
            reconsume_times: self.reconsume_times,
            receipt: self.receipt,
            state,
        })
    }
}

fn messages(list: Vec<WireMessage>) -> Result<Vec<Message>> {
    list.into_iter().map(WireMessage::into_message).collect()
}

#[derive(Deserialize)]
struct MessageList {
    messages: Vec<WireMessage>,
}

#[derive(Deserialize)]
struct WireSendResult {
    msg_id: String,
    queue_id: Option<u32>,
    queue_offset: Option<u64>,
    #[serde(default)]
    transaction_id: Option<String>,
}

impl From<WireSendResult> for SendResult {
    fn from(r: WireSendResult) -> Self {
        SendResult {
            msg_id: r.msg_id,
            queue_id: r.queue_id,
            queue_offset: r.queue_offset,
            transaction_id: r.transaction_id,
        }
    }
}

#[derive(Deserialize)]
struct BatchResults {
    results: Vec<WireSendResult>,
}

#[derive(Deserialize)]
struct WireTopic {
    name: String,
    queues: u32,
    perm: Perm,
    #[serde(default)]
    queue_offsets: Vec<QueueOffsets>,
}

impl WireTopic {
    fn info(self) -> TopicInfo {
        TopicInfo { name: self.name, queues: self.queues, perm: self.perm }
    }
}

#[derive(Deserialize)]
struct TopicList {
    topics: Vec<WireTopic>,
}

#[derive(Deserialize)]
struct WireMember {
    client_id: String,
    transport: MemberTransport,
    since: u64,
}

impl From<WireMember> for MemberInfo {
    fn from(m: WireMember) -> Self {
        MemberInfo { client_id: m.client_id, transport: m.transport, since: m.since }
    }
}

#[derive(Deserialize)]
struct WireSubscription {
    topic: String,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    sql: Option<String>,
    mode: ConsumeMode,
}

#[derive(Deserialize)]
struct WireOffset {
    topic: String,
    queue_id: u32,
    committed: u64,
    max: u64,
    lag: u64,
}

#[derive(Deserialize)]
struct WireGroup {
    group: String,
    max_reconsume_times: u32,
    subscriptions: Vec<WireSubscription>,
    members: Vec<WireMember>,
    offsets: Vec<WireOffset>,
}

impl From<WireGroup> for GroupDetail {
    fn from(g: WireGroup) -> Self {
        GroupDetail {
            group: g.group,
            max_reconsume_times: g.max_reconsume_times,
            subscriptions: g
                .subscriptions
                .into_iter()
                .map(|s| Subscription {
                    topic: s.topic,
                    filter: match (s.sql, s.filter) {
                        (Some(sql), _) => FilterSpec::Sql(sql),
                        (None, filter) => FilterSpec::Tag(filter.unwrap_or_else(|| "*".into())),
                    },
                    mode: s.mode,
                })
                .collect(),
            members: g.members.into_iter().map(Into::into).collect(),
            offsets: g
                .offsets
                .into_iter()
                .map(|o| GroupOffset {
                    topic: o.topic,
                    queue_id: o.queue_id,
                    committed: o.committed,
                    max: o.max,
                    lag: o.lag,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct FailedReceipt {
    reason: String,
}

#[derive(Deserialize)]
struct ReceiptResults {
    #[serde(default)]
    failed: Vec<FailedReceipt>,
}

impl ReceiptResults {
    fn outcome(self) -> std::result::Result<(), ReceiptFailure> {
        match self.failed.first().map(|f| f.reason.as_str()) {
            None => Ok(()),
            Some("expired") => Err(ReceiptFailure::Expired),
            Some("acked") => Err(ReceiptFailure::Acked),
            Some(_) => Err(ReceiptFailure::Unknown),
        }
    }
}

#[derive(Deserialize)]
struct WireCheck {
    transaction_id: String,
    msg_id: String,
    producer_group: String,
    check_times: u32,
    message: WireMessage,
}

/// A message as the gateway's JSON publish takes it.
fn publish_json(m: &OutgoingMessage) -> Map<String, Value> {
    let mut out = Map::new();
    match std::str::from_utf8(&m.body) {
        Ok(text) => out.insert("body".into(), json!(text)),
        Err(_) => out.insert("body_base64".into(), json!(base64::engine::general_purpose::STANDARD.encode(&m.body))),
    };
    if let Some(tag) = &m.tag {
        out.insert("tag".into(), json!(tag));
    }
    if !m.keys.is_empty() {
        out.insert("keys".into(), json!(m.keys));
    }
    if !m.properties.is_empty() {
        out.insert("properties".into(), json!(m.properties));
    }
    match m.delay {
        Some(Delay::Level(level)) => out.insert("delay_level".into(), json!(level)),
        Some(Delay::Millis(ms)) => out.insert("delay_ms".into(), json!(ms)),
        Some(Delay::At(at)) => out.insert("deliver_at".into(), json!(at)),
        None => None,
    };
    if let Some(key) = &m.sharding_key {
        out.insert("sharding_key".into(), json!(key));
    }
    if let Some(group) = &m.transaction {
        out.insert("transaction".into(), json!(true));
        out.insert("producer_group".into(), json!(group));
    }
    if let Some(key) = &m.idempotency_key {
        out.insert("idempotency_key".into(), json!(key));
    }
    out
}

/// Adds a filter as `filter` or `sql`.
fn put_filter(frame: &mut Map<String, Value>, filter: &FilterSpec) {
    match filter {
        FilterSpec::Tag(expression) => frame.insert("filter".into(), json!(expression)),
        FilterSpec::Sql(expression) => frame.insert("sql".into(), json!(expression)),
    };
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

// ----- one WebSocket -----

type Pending = Mutex<HashMap<String, oneshot::Sender<Result<Value>>>>;

/// One WebSocket to the gateway: a writer task, a reader task that routes answers by
/// `req_id` and check-backs by producer group.
struct Socket {
    out: mpsc::UnboundedSender<WsMessage>,
    pending: Arc<Pending>,
    next_id: AtomicU64,
    alive: watch::Receiver<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Socket {
    async fn connect(
        url: &str,
        producers: Arc<Mutex<HashMap<String, mpsc::Sender<TransactionCheck>>>>,
    ) -> Result<Arc<Self>> {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| Error::Connection(format!("WebSocket to {}: {e}", url.split('?').next().unwrap_or(url))))?;
        let (mut sink, mut source) = stream.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<WsMessage>();
        let pending: Arc<Pending> = Arc::default();
        let (alive_tx, alive) = watch::channel(true);
        let alive_tx = Arc::new(alive_tx);

        let writer_alive = alive_tx.clone();
        let writer = tokio::spawn(async move {
            while let Some(frame) = outgoing.recv().await {
                let closing = matches!(frame, WsMessage::Close(_));
                if sink.send(frame).await.is_err() || closing {
                    break;
                }
            }
            let _ = sink.close().await;
            writer_alive.send_replace(false);
        });
        let reader_pending = pending.clone();
        let pong = out.clone();
        let reader = tokio::spawn(async move {
            while let Some(frame) = source.next().await {
                match frame {
                    Ok(WsMessage::Text(text)) => route(text.as_str(), &reader_pending, &producers),
                    Ok(WsMessage::Ping(data)) => {
                        let _ = pong.send(WsMessage::Pong(data));
                    }
                    Ok(WsMessage::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            alive_tx.send_replace(false);
            let waiting: Vec<_> = reader_pending.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
            for (_, tx) in waiting {
                let _ = tx.send(Err(Error::Connection("the gateway closed the connection".into())));
            }
        });
        Ok(Arc::new(Socket {
            out,
            pending,
            next_id: AtomicU64::new(1),
            alive,
            tasks: Mutex::new(vec![writer, reader]),
        }))
    }

    fn is_alive(&self) -> bool {
        *self.alive.borrow()
    }

    /// Sends a frame that expects no answer.
    fn send(&self, frame: Value) -> Result<()> {
        self.out
            .send(WsMessage::text(frame.to_string()))
            .map_err(|_| Error::Connection("the connection to the gateway is closed".into()))
    }

    /// Sends a frame with a fresh `req_id` and waits for its answer (or its `error`).
    async fn request(&self, frame: Value, timeout: Duration) -> Result<Value> {
        let req_id = format!("r{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut frame = object(frame);
        frame.insert("req_id".into(), json!(req_id));
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(req_id.clone(), tx);
        if let Err(e) = self.send(Value::Object(frame)) {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&req_id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(Error::Connection("the connection to the gateway closed".into())),
            Err(_) => {
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&req_id);
                Err(Error::Timeout(format!("no answer from the gateway within {timeout:?}")))
            }
        }
    }

    /// Closes the connection (the writer sends a close frame and stops).
    fn close(&self) {
        let _ = self.out.send(WsMessage::Close(None));
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }
}

/// Routes one server frame: an answer to its request, a check-back to its producer group.
fn route(text: &str, pending: &Pending, producers: &Mutex<HashMap<String, mpsc::Sender<TransactionCheck>>>) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        tracing::warn!("unreadable frame from the gateway");
        return;
    };
    let op = frame.get("op").and_then(Value::as_str).unwrap_or("");
    if op == "check" {
        let check = match serde_json::from_value::<WireCheck>(frame).map_err(connection_error).and_then(|c| {
            Ok(TransactionCheck {
                transaction_id: c.transaction_id,
                msg_id: c.msg_id,
                producer_group: c.producer_group,
                check_times: c.check_times,
                message: c.message.into_message()?,
            })
        }) {
            Ok(check) => check,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable check frame");
                return;
            }
        };
        let sink = producers.lock().unwrap_or_else(|e| e.into_inner()).get(&check.producer_group).cloned();
        if let Some(sink) = sink {
            if sink.try_send(check).is_err() {
                tracing::warn!("a transaction check was dropped; the broker asks again later");
            }
        }
        return;
    }
    let Some(req_id) = frame.get("req_id").and_then(Value::as_str).map(str::to_string) else {
        if op == "error" {
            let detail = frame.get("detail").and_then(Value::as_str).unwrap_or("");
            tracing::warn!(detail, "the gateway reported an error");
        }
        return;
    };
    let Some(tx) = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&req_id) else { return };
    let answer = if op == "error" {
        let status = frame.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
        Err(problem_error(&frame, status))
    } else {
        Ok(frame)
    };
    let _ = tx.send(answer);
}

impl Transport for RemoteTransport {
    fn name(&self) -> &'static str {
        "remote"
    }

    fn timings(&self) -> BrokerTimings {
        self.options.timings
    }

    fn supports_send_back(&self) -> bool {
        true
    }

    fn send<'a>(&'a self, topic: &'a str, message: OutgoingMessage) -> BoxFuture<'a, Result<SendResult>> {
        async move {
            let mut frame = publish_json(&message);
            frame.insert("op".into(), json!("publish"));
            frame.insert("topic".into(), json!(topic));
            let answer = self.request(Value::Object(frame), self.options.request_timeout).await;
            let answer = answer.map_err(|e| too_large(e, message.body.len()))?;
            Ok(decode::<WireSendResult>(answer)?.into())
        }
        .boxed()
    }

    fn send_batch<'a>(
        &'a self,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<SendResult>>> {
        async move {
            let size: usize = messages.iter().map(|m| m.body.len()).sum();
            let list: Vec<Value> = messages.iter().map(|m| Value::Object(publish_json(m))).collect();
            let frame = json!({"op": "publish", "topic": topic, "messages": list});
            let answer = self.request(frame, self.options.request_timeout).await.map_err(|e| too_large(e, size))?;
            Ok(decode::<BatchResults>(answer)?.results.into_iter().map(Into::into).collect())
        }
        .boxed()
    }

    fn end_transaction<'a>(
        &'a self,
        transaction_id: &'a str,
        resolution: TransactionResolution,
    ) -> BoxFuture<'a, Result<TransactionOutcome>> {
        async move {
            let status = match resolution {
                TransactionResolution::Commit => "commit",
                TransactionResolution::Rollback => "rollback",
                TransactionResolution::Unknown => {
                    return Err(Error::invalid("/status", "only commit or rollback end a transaction"));
                }
            };
            let frame = json!({"op": "end_transaction", "transaction_id": transaction_id, "status": status});
            let answer = self.request(frame, self.options.request_timeout).await?;
            #[derive(Deserialize)]
            struct Ended {
                transaction_id: String,
                msg_id: String,
                status: TransactionStatus,
            }
            let ended: Ended = decode(answer)?;
            Ok(TransactionOutcome { transaction_id: ended.transaction_id, msg_id: ended.msg_id, status: ended.status })
        }
        .boxed()
    }

    fn transaction_checks<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<mpsc::Receiver<TransactionCheck>>> {
        async move {
            crate::broker::validate_group_name(group)?;
            let (tx, rx) = mpsc::channel(CHECK_BUFFER);
            self.producers.lock().unwrap_or_else(|e| e.into_inner()).insert(group.to_string(), tx);
            self.socket().await?.send(json!({"op": "register_producer", "group": group}))?;
            Ok(rx)
        }
        .boxed()
    }

    fn heartbeat<'a>(
        &'a self,
        group: &'a str,
        client_id: &'a str,
        subscriptions: Vec<Subscription>,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let subs: Vec<Value> = subscriptions
                .iter()
                .map(|s| {
                    let mut sub = Map::new();
                    sub.insert("topic".into(), json!(s.topic));
                    put_filter(&mut sub, &s.filter);
                    sub.insert("mode".into(), json!(s.mode.as_str()));
                    Value::Object(sub)
                })
                .collect();
            let frame = json!({"op": "heartbeat", "group": group, "client_id": client_id, "subscriptions": subs});
            let key = (group.to_string(), client_id.to_string());
            let socket = {
                let mut members = self.members.lock().await;
                match members.get(&key).filter(|s| s.is_alive()) {
                    Some(s) => s.clone(),
                    None => {
                        if self.closed.load(Ordering::Acquire) {
                            return Err(Error::Connection("the client is closed".into()));
                        }
                        let s = Socket::connect(&self.ws_url, Arc::default()).await?;
                        members.insert(key, s.clone());
                        s
                    }
                }
            };
            socket.request(frame, self.options.request_timeout).await.map(|_| ())
        }
        .boxed()
    }

    fn members<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Vec<MemberInfo>>> {
        async move {
            match self
                .rest_json::<WireGroup>(self.http.get(self.url(&format!("/v1/groups/{}", encode_component(group)))))
                .await
            {
                Ok(g) => Ok(g.members.into_iter().map(Into::into).collect()),
                Err(Error::NotFound { .. }) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn watch_membership(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    fn release_client<'a>(&'a self, group: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            // The gateway drops a connection's members the moment it closes.
            let socket = self.members.lock().await.remove(&(group.to_string(), client_id.to_string()));
            if let Some(socket) = socket {
                socket.close();
                let mut alive = socket.alive.clone();
                let _ = tokio::time::timeout(self.options.request_timeout, alive.wait_for(|a| !*a)).await;
            }
            Ok(())
        }
        .boxed()
    }

    fn pull(&self, request: PullRequest) -> BoxFuture<'_, Result<PullResult>> {
        async move {
            let mut frame = Map::new();
            frame.insert("op".into(), json!("pull"));
            frame.insert("group".into(), json!(request.group));
            frame.insert("topic".into(), json!(request.topic));
            frame.insert("queue_id".into(), json!(request.queue_id));
            frame.insert("offset".into(), json!(request.offset));
            frame.insert("max".into(), json!(request.max));
            frame.insert("wait_ms".into(), json!(request.wait.as_millis() as u64));
            put_filter(&mut frame, &request.filter);
            let answer = self.request(Value::Object(frame), request.wait + PULL_GRACE).await?;
            #[derive(Deserialize)]
            struct Pulled {
                messages: Vec<WireMessage>,
                next_offset: u64,
                min_offset: u64,
                max_offset: u64,
            }
            let pulled: Pulled = decode(answer)?;
            Ok(PullResult {
                messages: messages(pulled.messages)?,
                next_offset: pulled.next_offset,
                min_offset: pulled.min_offset,
                max_offset: pulled.max_offset,
            })
        }
        .boxed()
    }

    fn commit_offset<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
        offset: u64,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let frame = json!({"op": "commit", "group": group, "topic": topic, "queue_id": queue_id, "offset": offset});
            self.request(frame, self.options.request_timeout).await.map(|_| ())
        }
        .boxed()
    }

    fn committed_offset<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
    ) -> BoxFuture<'a, Result<Option<u64>>> {
        async move {
            let frame = json!({"op": "query_offset", "group": group, "topic": topic, "queue_id": queue_id});
            let answer = self.request(frame, self.options.request_timeout).await?;
            Ok(answer.get("offset").and_then(Value::as_u64))
        }
        .boxed()
    }

    fn lock_queue<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        async move {
            let frame =
                json!({"op": "lock", "group": group, "topic": topic, "queue_id": queue_id, "client_id": client_id});
            let answer = self.request(frame, self.options.request_timeout).await?;
            Ok(answer.get("locked").and_then(Value::as_bool).unwrap_or(false))
        }
        .boxed()
    }

    fn unlock_queue<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let frame =
                json!({"op": "unlock", "group": group, "topic": topic, "queue_id": queue_id, "client_id": client_id});
            self.request(frame, self.options.request_timeout).await.map(|_| ())
        }
        .boxed()
    }

    fn send_back<'a>(
        &'a self,
        group: &'a str,
        message: &'a Message,
        delay: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let commit_offset = message
                .commit_offset
                .ok_or_else(|| Error::invalid("/commit_offset", "only a pulled message can be sent back"))?;
            let mut frame = json!({
                "op": "send_back",
                "group": group,
                "msg_id": message.msg_id,
                "topic": message.topic,
                "commit_offset": commit_offset,
                "reconsume_times": message.reconsume_times,
            });
            if let Some(delay) = delay {
                frame["delay_ms"] = json!(delay.as_millis() as u64);
            }
            self.request(frame, self.options.request_timeout).await.map(|_| ())
        }
        .boxed()
    }

    fn receive(&self, request: ReceiveRequest) -> BoxFuture<'_, Result<Vec<Message>>> {
        async move {
            let mut body = Map::new();
            body.insert("topic".into(), json!(request.topic));
            put_filter(&mut body, &request.filter);
            body.insert("max_messages".into(), json!(request.max_messages));
            body.insert("wait_ms".into(), json!(request.wait.as_millis() as u64));
            body.insert("invisible_ms".into(), json!(request.invisible.as_millis() as u64));
            let req = self
                .http
                .post(self.url(&format!("/v1/groups/{}/receive", encode_component(&request.group))))
                .header("ferry-client-id", &request.client_id)
                .json(&body);
            let response = self
                .authorize(req)
                .timeout(self.options.request_timeout + request.wait)
                .send()
                .await
                .map_err(connection_error)?;
            let status = response.status();
            let value: Value = response.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                return Err(problem_error(&value, status.as_u16()));
            }
            messages(decode::<MessageList>(value)?.messages)
        }
        .boxed()
    }

    fn ack<'a>(&'a self, group: &'a str, receipt: &'a str) -> BoxFuture<'a, Result<Result<(), ReceiptFailure>>> {
        async move {
            let req = self
                .http
                .post(self.url(&format!("/v1/groups/{}/ack", encode_component(group))))
                .json(&json!({"receipts": [receipt]}));
            Ok(self.rest_json::<ReceiptResults>(req).await?.outcome())
        }
        .boxed()
    }

    fn nack<'a>(
        &'a self,
        group: &'a str,
        receipt: &'a str,
        delay: Option<Duration>,
    ) -> BoxFuture<'a, Result<Result<(), ReceiptFailure>>> {
        async move {
            let mut body = json!({"receipts": [receipt]});
            if let Some(d) = delay {
                body["delay_ms"] = json!(d.as_millis() as u64);
            }
            let req = self.http.post(self.url(&format!("/v1/groups/{}/nack", encode_component(group)))).json(&body);
            Ok(self.rest_json::<ReceiptResults>(req).await?.outcome())
        }
        .boxed()
    }

    fn change_invisible<'a>(
        &'a self,
        group: &'a str,
        receipt: &'a str,
        invisible: Duration,
    ) -> BoxFuture<'a, Result<String>> {
        async move {
            let body = json!({"receipt": receipt, "invisible_ms": invisible.as_millis() as u64});
            let req = self
                .http
                .post(self.url(&format!("/v1/groups/{}/change_invisible", encode_component(group))))
                .json(&body);
            #[derive(Deserialize)]
            struct Renewed {
                receipt: String,
            }
            Ok(self.rest_json::<Renewed>(req).await?.receipt)
        }
        .boxed()
    }

    fn create_topic<'a>(
        &'a self,
        name: &'a str,
        queues: Option<u32>,
        perm: Option<Perm>,
    ) -> BoxFuture<'a, Result<TopicInfo>> {
        async move {
            let mut body = json!({"name": name});
            if let Some(q) = queues {
                body["queues"] = json!(q);
            }
            if let Some(p) = perm {
                body["perm"] = json!(p.as_str());
            }
            let req = self.http.post(self.url("/v1/topics")).json(&body);
            Ok(self.rest_json::<WireTopic>(req).await?.info())
        }
        .boxed()
    }

    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            self.rest(self.http.delete(self.url(&format!("/v1/topics/{}", encode_component(name))))).await.map(|_| ())
        }
        .boxed()
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<TopicInfo>>> {
        async move {
            let list: TopicList = self.rest_json(self.http.get(self.url("/v1/topics"))).await?;
            Ok(list.topics.into_iter().map(WireTopic::info).collect())
        }
        .boxed()
    }

    fn topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<TopicDetail>> {
        async move {
            let WireTopic { name, queues, perm, queue_offsets } = self
                .rest_json(self.http.get(self.url(&format!("/v1/topics/{}", encode_component(name)))))
                .await
                .map_err(|e| named(e, "topic", name))?;
            Ok(TopicDetail { topic: TopicInfo { name, queues, perm }, queue_offsets })
        }
        .boxed()
    }

    fn group<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<GroupDetail>> {
        async move {
            let g: WireGroup = self
                .rest_json(self.http.get(self.url(&format!("/v1/groups/{}", encode_component(name)))))
                .await
                .map_err(|e| named(e, "group", name))?;
            Ok(g.into())
        }
        .boxed()
    }

    fn put_group<'a>(&'a self, name: &'a str, max_reconsume_times: Option<u32>) -> BoxFuture<'a, Result<GroupDetail>> {
        async move {
            let mut body = json!({});
            if let Some(n) = max_reconsume_times {
                body["max_reconsume_times"] = json!(n);
            }
            let req = self.http.put(self.url(&format!("/v1/groups/{}", encode_component(name)))).json(&body);
            Ok(self.rest_json::<WireGroup>(req).await?.into())
        }
        .boxed()
    }

    fn reset_offsets<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        target: ResetTarget,
    ) -> BoxFuture<'a, Result<Vec<(u32, u64)>>> {
        async move {
            let body = match target {
                ResetTarget::Timestamp(ts) => json!({"topic": topic, "timestamp": ts}),
                ResetTarget::Earliest => json!({"topic": topic, "to": "earliest"}),
                ResetTarget::Latest => json!({"topic": topic, "to": "latest"}),
            };
            let req =
                self.http.post(self.url(&format!("/v1/groups/{}/offsets/reset", encode_component(group)))).json(&body);
            #[derive(Deserialize)]
            struct Offset {
                queue_id: u32,
                offset: u64,
            }
            #[derive(Deserialize)]
            struct Reset {
                offsets: Vec<Offset>,
            }
            let reset: Reset = self.rest_json(req).await.map_err(|e| named(e, "topic", topic))?;
            Ok(reset.offsets.into_iter().map(|o| (o.queue_id, o.offset)).collect())
        }
        .boxed()
    }

    fn dlq<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Vec<Message>>> {
        async move {
            let req = self.http.get(self.url(&format!("/v1/groups/{}/dlq", encode_component(group))));
            messages(self.rest_json::<MessageList>(req).await?.messages)
        }
        .boxed()
    }

    fn resend_dlq<'a>(&'a self, group: &'a str, msg_id: &'a str) -> BoxFuture<'a, Result<SendResult>> {
        async move {
            let path = format!("/v1/groups/{}/dlq/{}/resend", encode_component(group), encode_component(msg_id));
            let result: WireSendResult =
                self.rest_json(self.http.post(self.url(&path))).await.map_err(|e| named(e, "dead letter", msg_id))?;
            Ok(result.into())
        }
        .boxed()
    }

    fn find_messages<'a>(&'a self, topic: &'a str, query: FindQuery) -> BoxFuture<'a, Result<Vec<Message>>> {
        async move {
            let mut params = Vec::new();
            if let Some(key) = &query.key {
                params.push(format!("key={}", encode_component(key)));
            }
            if let Some(ts) = query.from_ts {
                params.push(format!("from_ts={ts}"));
            }
            if let Some(ts) = query.to_ts {
                params.push(format!("to_ts={ts}"));
            }
            if let Some(limit) = query.limit {
                params.push(format!("limit={limit}"));
            }
            let mut path = format!("/v1/topics/{}/messages", encode_component(topic));
            if !params.is_empty() {
                path = format!("{path}?{}", params.join("&"));
            }
            let list: MessageList =
                self.rest_json(self.http.get(self.url(&path))).await.map_err(|e| named(e, "topic", topic))?;
            messages(list.messages)
        }
        .boxed()
    }

    fn message<'a>(&'a self, msg_id: &'a str) -> BoxFuture<'a, Result<Message>> {
        async move {
            let path = format!("/v1/messages/{}", encode_component(msg_id));
            let m: WireMessage =
                self.rest_json(self.http.get(self.url(&path))).await.map_err(|e| named(e, "message", msg_id))?;
            m.into_message()
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            self.closed.store(true, Ordering::Release);
            let members: Vec<Arc<Socket>> = self.members.lock().await.drain().map(|(_, s)| s).collect();
            for s in members {
                s.close();
            }
            if let Some(s) = self.shared.lock().await.take() {
                s.close();
            }
            Ok(())
        }
        .boxed()
    }
}

/// Names what was not found, when the caller knows.
fn named(e: Error, what: &'static str, name: &str) -> Error {
    match e {
        Error::NotFound { .. } => Error::not_found(what, name),
        other => other,
    }
}

/// Fills in the size of a publish the gateway refused as too large.
fn too_large(e: Error, size: usize) -> Error {
    match e {
        Error::MessageTooLarge { max, .. } => Error::MessageTooLarge { size, max },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_map_to_the_error_of_their_kind() {
        let p = json!({"type": "urn:ferrymq:error:invalid-argument", "detail": "bad", "errors": [{"field": "/topic", "message": "bad"}]});
        assert!(matches!(problem_error(&p, 400), Error::InvalidArgument { field, .. } if field == "/topic"));
        let p = json!({"type": "urn:ferrymq:error:conflict", "detail": "exists"});
        assert!(matches!(problem_error(&p, 409), Error::Conflict(d) if d == "exists"));
        assert_eq!(problem_error(&json!({"type": "urn:ferrymq:error:not-found"}), 404).kind(), "not-found");
        assert_eq!(problem_error(&json!({"type": "urn:ferrymq:error:forbidden"}), 403).kind(), "forbidden");
        assert_eq!(problem_error(&Value::Null, 502).kind(), "unavailable");
    }

    #[test]
    fn publish_json_carries_every_attribute() {
        let m = OutgoingMessage {
            body: vec![0xff, 0x00],
            tag: Some("t".into()),
            keys: vec!["k".into()],
            delay: Some(Delay::Millis(5)),
            transaction: Some("g".into()),
            ..OutgoingMessage::default()
        };
        let j = Value::Object(publish_json(&m));
        assert_eq!(j["body_base64"], "/wA=");
        assert_eq!(j["delay_ms"], 5);
        assert_eq!((j["transaction"].clone(), j["producer_group"].clone()), (json!(true), json!("g")));
        assert_eq!(Value::Object(publish_json(&OutgoingMessage::from("hi")))["body"], "hi");
    }

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode_component("a b/c?"), "a%20b%2Fc%3F");
    }
}
