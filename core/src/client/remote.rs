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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrymq_proto::consume::{AckBody, AckResult, ChangeInvisibleBody, NackBody, NackResult, ReceiptOut, ReceiveBody};
use ferrymq_proto::group::{GroupDetailOut, PutGroup, ResetBody, ResetResult, ResetTo};
use ferrymq_proto::message::{MessageIn, MessageList, MessageOut, PublishBatch, PublishMessage, SendResultOut};
use ferrymq_proto::topic::{CreateTopic, TopicDetailOut, TopicList, TopicOut};
use ferrymq_proto::ws::{
    ClientFrame, CommitFrame, EndTransactionFrame, HeartbeatFrame, LockFrame, PublishFrame, PublishedBody, PullFrame,
    QueryOffsetFrame, RegisterProducerFrame, SendBackFrame, ServerFrame, SubscriptionIn,
};
use ferrymq_proto::Problem;
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::transport::{BrokerTimings, FindQuery, Transport};
use crate::broker::{
    Message, OutgoingMessage, PullRequest, PullResult, ReceiptFailure, ReceiveRequest, ResetTarget, SendResult,
    Subscription, TopicDetail, TopicInfo, TransactionCheck, TransactionOutcome, TransactionResolution,
};
use crate::wire::{filter_fields, messages};
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
    /// For `https://` URLs: a PEM file of the certificate authorities to trust instead of the
    /// system's roots (a private CA, or a self-signed server certificate).
    pub ca_file: Option<PathBuf>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            token: None,
            request_timeout: Duration::from_secs(30),
            timings: BrokerTimings::default(),
            ca_file: None,
        }
    }
}

/// A transport to a gateway: its WebSocket protocol plus its REST API.
pub struct RemoteTransport {
    base: String,
    ws_url: String,
    options: RemoteOptions,
    http: reqwest::Client,
    /// The TLS settings of `https://` and `wss://`, `None` for plain `http://`.
    tls: Option<Arc<rustls::ClientConfig>>,
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
        let (ws_url, tls) = match base.split_once("://") {
            Some(("http", rest)) => (format!("ws://{rest}/v1/ws"), None),
            Some(("https", rest)) => (format!("wss://{rest}/v1/ws"), Some(tls_config(options.ca_file.as_deref())?)),
            _ => return Err(Error::invalid("/url", format!("{url:?} is not an http:// or https:// URL"))),
        };
        let ws_url = match &options.token {
            Some(token) => format!("{ws_url}?token={}", encode_component(token)),
            None => ws_url,
        };
        let mut http = reqwest::Client::builder().connect_timeout(options.request_timeout);
        if let Some(tls) = &tls {
            http = http.use_preconfigured_tls(rustls::ClientConfig::clone(tls));
        }
        let http = http.build().map_err(|e| Error::Connection(format!("HTTP client: {e}")))?;
        let transport = RemoteTransport {
            base,
            ws_url,
            options,
            http,
            tls,
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
        let socket = Socket::connect(&self.ws_url, self.tls.clone(), self.producers.clone()).await?;
        let groups: Vec<String> = self.producers.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        for group in groups {
            socket.send(&ClientFrame::RegisterProducer(RegisterProducerFrame { group }))?;
        }
        *shared = Some(socket.clone());
        Ok(socket)
    }

    async fn request(&self, frame: impl FnOnce(String) -> ClientFrame, timeout: Duration) -> Result<ServerFrame> {
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

    /// Sends a REST request with the token and the request timeout; maps a problem answer to
    /// its error. `None` for an empty answer.
    async fn rest(&self, req: reqwest::RequestBuilder) -> Result<Option<Value>> {
        self.send_authorized(self.authorize(req)).await
    }

    async fn send_authorized(&self, req: reqwest::RequestBuilder) -> Result<Option<Value>> {
        let response = req.send().await.map_err(connection_error)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(connection_error)?;
        if !status.is_success() {
            return Err(problem_error(&bytes, status.as_u16()));
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Connection(format!("unreadable answer from the gateway: {e}")))
    }

    /// [`rest`](Self::rest), read into the answer's wire type.
    async fn rest_json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        decode(self.rest(req).await?.unwrap_or(Value::Null))
    }

    /// Like [`rest_json`](Self::rest_json) for a request already authorized (with its own
    /// timeout).
    async fn send_json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        decode(self.send_authorized(req).await?.unwrap_or(Value::Null))
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

/// A request error with its causes, so that "invalid peer certificate: UnknownIssuer" is
/// not hidden behind "error sending request".
fn connection_error(e: impl std::error::Error) -> Error {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Connection(text)
}

/// The TLS client settings every FerryMQ client uses for `https://` and `wss://`: the
/// certificate authorities of `ca_file` (PEM) when given, else the system's roots; rustls with
/// the ring provider.
pub fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::invalid("/ca_file", format!("cannot read certificates from {}: {e}", path.display()))
                })?;
            if certs.is_empty() {
                return Err(Error::invalid("/ca_file", format!("{} holds no PEM certificate", path.display())));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    Error::invalid("/ca_file", format!("a certificate in {} is not usable: {e}", path.display()))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for err in &found.errors {
                tracing::warn!(error = %err, "could not load a system root certificate");
            }
            roots.add_parsable_certificates(found.certs);
        }
    }
    // ring rather than aws-lc-rs: no C toolchain build; post-quantum key exchange is not needed
    // between a client and its broker.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Connection(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The error of a problem answer (`application/problem+json`), by its `type`.
fn problem_error(bytes: &[u8], status: u16) -> Error {
    match serde_json::from_slice::<Problem>(bytes) {
        Ok(problem) => Error::from_problem(&problem, status),
        Err(_) => Error::Unavailable(format!("the gateway answered {status} without a problem document")),
    }
}

/// Reads a REST answer into its wire type.
fn decode<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Connection(format!("unexpected answer from the gateway: {e}")))
}

/// A message as the gateway's JSON publish takes it.
fn publish_message(m: OutgoingMessage) -> PublishMessage {
    PublishMessage::from(MessageIn::from(m))
}

/// The answer a request expected, or the error of an answer of another kind.
fn unexpected(frame: &ServerFrame) -> Error {
    Error::Connection(format!("unexpected answer from the gateway: {frame:?}"))
}

// ----- one WebSocket -----

type Pending = Mutex<HashMap<String, oneshot::Sender<Result<ServerFrame>>>>;
type Producers = Mutex<HashMap<String, mpsc::Sender<TransactionCheck>>>;

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
        tls: Option<Arc<rustls::ClientConfig>>,
        producers: Arc<Producers>,
    ) -> Result<Arc<Self>> {
        let connector = tls.map(tokio_tungstenite::Connector::Rustls);
        let (stream, _) = tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector)
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
    fn send(&self, frame: &ClientFrame) -> Result<()> {
        let text = serde_json::to_string(frame).map_err(|e| Error::invalid("", format!("unencodable frame: {e}")))?;
        self.out
            .send(WsMessage::text(text))
            .map_err(|_| Error::Connection("the connection to the gateway is closed".into()))
    }

    /// Sends the frame `make` builds around a fresh `req_id` and waits for its answer (or its
    /// `error`, as the error of its kind).
    async fn request(&self, make: impl FnOnce(String) -> ClientFrame, timeout: Duration) -> Result<ServerFrame> {
        let req_id = format!("r{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(req_id.clone(), tx);
        if let Err(e) = self.send(&make(req_id.clone())) {
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
fn route(text: &str, pending: &Pending, producers: &Producers) {
    let frame = match ServerFrame::parse(text) {
        Ok(frame) => frame,
        Err(e) => {
            // Answer the request it was meant for, if its id can be read, rather than let it
            // time out.
            let req_id = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("req_id").and_then(Value::as_str).map(String::from));
            tracing::warn!(error = %e, "unreadable frame from the gateway");
            if let Some(tx) = req_id.and_then(|id| pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id)) {
                let _ = tx.send(Err(Error::Connection(format!("unreadable answer from the gateway: {e}"))));
            }
            return;
        }
    };
    let req_id = match &frame {
        ServerFrame::Check(check) => {
            let check = match Message::try_from(check.message.clone()) {
                Ok(message) => TransactionCheck {
                    transaction_id: check.transaction_id.clone(),
                    msg_id: check.msg_id.clone(),
                    producer_group: check.producer_group.clone(),
                    check_times: check.check_times,
                    message,
                },
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
        ServerFrame::Error(error) => match &error.req_id {
            Some(id) => id.clone(),
            None => {
                tracing::warn!(detail = error.detail, "the gateway reported an error");
                return;
            }
        },
        ServerFrame::Published { req_id, .. }
        | ServerFrame::HeartbeatAck { req_id, .. }
        | ServerFrame::Pulled { req_id, .. }
        | ServerFrame::Committed { req_id }
        | ServerFrame::Locked { req_id, .. }
        | ServerFrame::Unlocked { req_id }
        | ServerFrame::SentBack { req_id }
        | ServerFrame::Offset { req_id, .. }
        | ServerFrame::TransactionEnded { req_id, .. } => req_id.clone(),
        ServerFrame::Subscribed { .. } | ServerFrame::Unsubscribed { .. } | ServerFrame::Message { .. } => return,
    };
    let Some(tx) = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&req_id) else { return };
    let answer = match frame {
        ServerFrame::Error(error) => Err(Error::from_problem(&error.problem(), error.status)),
        other => Ok(other),
    };
    let _ = tx.send(answer);
}

/// The wire form of a subscription in a heartbeat.
fn subscription_in(s: &Subscription) -> SubscriptionIn {
    let (filter, sql) = filter_fields(&s.filter);
    SubscriptionIn { topic: s.topic.clone(), filter, sql, mode: Some(s.mode.into()) }
}

/// The results of a `published` answer.
fn published(frame: ServerFrame) -> Result<Vec<SendResultOut>> {
    match frame {
        ServerFrame::Published { result: PublishedBody::Single(result), .. } => Ok(vec![result]),
        ServerFrame::Published { result: PublishedBody::Batch { results }, .. } => Ok(results),
        other => Err(unexpected(&other)),
    }
}

/// The outcome of one receipt in an ack or nack answer.
fn receipt_outcome(failed: &[ferrymq_proto::consume::FailedReceipt]) -> std::result::Result<(), ReceiptFailure> {
    match failed.first() {
        None => Ok(()),
        Some(f) => Err(f.reason.into()),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
            let size = message.body.len();
            let body = publish_message(message);
            let answer = self
                .request(
                    |req_id| ClientFrame::Publish(PublishFrame::single(req_id, topic.to_string(), body)),
                    self.options.request_timeout,
                )
                .await
                .map_err(|e| too_large(e, size))?;
            let result = published(answer)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Connection("empty publish answer".into()))?;
            Ok(result.into())
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
            let batch = PublishBatch { messages: messages.into_iter().map(publish_message).collect() };
            let answer = self
                .request(
                    |req_id| ClientFrame::Publish(PublishFrame::batch(req_id, topic.to_string(), batch)),
                    self.options.request_timeout,
                )
                .await
                .map_err(|e| too_large(e, size))?;
            Ok(published(answer)?.into_iter().map(Into::into).collect())
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
            let frame = |req_id| {
                ClientFrame::EndTransaction(EndTransactionFrame {
                    transaction_id: transaction_id.to_string(),
                    status: status.to_string(),
                    req_id: Some(req_id),
                })
            };
            match self.request(frame, self.options.request_timeout).await? {
                ServerFrame::TransactionEnded { transaction_id, msg_id, status, .. } => {
                    Ok(TransactionOutcome { transaction_id, msg_id, status: status.into() })
                }
                other => Err(unexpected(&other)),
            }
        }
        .boxed()
    }

    fn transaction_checks<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<mpsc::Receiver<TransactionCheck>>> {
        async move {
            crate::broker::validate_group_name(group)?;
            let (tx, rx) = mpsc::channel(CHECK_BUFFER);
            self.producers.lock().unwrap_or_else(|e| e.into_inner()).insert(group.to_string(), tx);
            self.socket()
                .await?
                .send(&ClientFrame::RegisterProducer(RegisterProducerFrame { group: group.to_string() }))?;
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
            let key = (group.to_string(), client_id.to_string());
            let socket = {
                let mut members = self.members.lock().await;
                match members.get(&key).filter(|s| s.is_alive()) {
                    Some(s) => s.clone(),
                    None => {
                        if self.closed.load(Ordering::Acquire) {
                            return Err(Error::Connection("the client is closed".into()));
                        }
                        let s = Socket::connect(&self.ws_url, self.tls.clone(), Arc::default()).await?;
                        members.insert(key, s.clone());
                        s
                    }
                }
            };
            let frame = |req_id| {
                ClientFrame::Heartbeat(HeartbeatFrame {
                    req_id: Some(req_id),
                    group: group.to_string(),
                    client_id: Some(client_id.to_string()),
                    subscriptions: subscriptions.iter().map(subscription_in).collect(),
                })
            };
            socket.request(frame, self.options.request_timeout).await.map(|_| ())
        }
        .boxed()
    }

    fn members<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Vec<crate::broker::MemberInfo>>> {
        async move {
            let path = format!("/v1/groups/{}", encode_component(group));
            match self.rest_json::<GroupDetailOut>(self.http.get(self.url(&path))).await {
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
            let (filter, sql) = filter_fields(&request.filter);
            let wait = request.wait;
            let frame = |req_id| {
                ClientFrame::Pull(PullFrame {
                    req_id,
                    group: request.group,
                    topic: request.topic,
                    queue_id: request.queue_id,
                    offset: request.offset,
                    max: Some(u32::try_from(request.max).unwrap_or(u32::MAX)),
                    filter,
                    sql,
                    wait_ms: Some(millis(request.wait)),
                })
            };
            match self.request(frame, wait + PULL_GRACE).await? {
                ServerFrame::Pulled { messages: list, next_offset, min_offset, max_offset, .. } => {
                    Ok(PullResult { messages: messages(list)?, next_offset, min_offset, max_offset })
                }
                other => Err(unexpected(&other)),
            }
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
            let frame = |req_id| {
                ClientFrame::Commit(CommitFrame {
                    req_id: Some(req_id),
                    group: group.to_string(),
                    topic: topic.to_string(),
                    queue_id,
                    offset,
                })
            };
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
            let frame = |req_id| {
                ClientFrame::QueryOffset(QueryOffsetFrame {
                    req_id,
                    group: group.to_string(),
                    topic: topic.to_string(),
                    queue_id,
                })
            };
            match self.request(frame, self.options.request_timeout).await? {
                ServerFrame::Offset { offset, .. } => Ok(offset),
                other => Err(unexpected(&other)),
            }
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
            let frame = |req_id| ClientFrame::Lock(lock_frame(Some(req_id), group, topic, queue_id, client_id));
            match self.request(frame, self.options.request_timeout).await? {
                ServerFrame::Locked { locked, .. } => Ok(locked),
                other => Err(unexpected(&other)),
            }
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
            let frame = |req_id| ClientFrame::Unlock(lock_frame(Some(req_id), group, topic, queue_id, client_id));
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
            let frame = |req_id| {
                ClientFrame::SendBack(SendBackFrame {
                    req_id: Some(req_id),
                    group: group.to_string(),
                    msg_id: message.msg_id.clone(),
                    topic: message.topic.clone(),
                    commit_offset,
                    reconsume_times: message.reconsume_times,
                    delay_ms: delay.map(millis),
                })
            };
            self.request(frame, self.options.request_timeout).await.map(|_| ())
        }
        .boxed()
    }

    fn receive(&self, request: ReceiveRequest) -> BoxFuture<'_, Result<Vec<Message>>> {
        async move {
            let (filter, sql) = filter_fields(&request.filter);
            let body = ReceiveBody {
                topic: request.topic.clone(),
                filter,
                sql,
                max_messages: Some(u32::try_from(request.max_messages).unwrap_or(u32::MAX)),
                wait_ms: Some(millis(request.wait)),
                invisible_ms: Some(millis(request.invisible)),
            };
            let req = self
                .http
                .post(self.url(&format!("/v1/groups/{}/receive", encode_component(&request.group))))
                .header("ferry-client-id", &request.client_id)
                .json(&body);
            let req = self.authorize(req).timeout(self.options.request_timeout + request.wait);
            let list: MessageList = self.send_json(req).await?;
            messages(list.messages)
        }
        .boxed()
    }

    fn ack<'a>(&'a self, group: &'a str, receipt: &'a str) -> BoxFuture<'a, Result<Result<(), ReceiptFailure>>> {
        async move {
            let body = AckBody { receipts: vec![receipt.to_string()] };
            let req = self.http.post(self.url(&format!("/v1/groups/{}/ack", encode_component(group)))).json(&body);
            Ok(receipt_outcome(&self.rest_json::<AckResult>(req).await?.failed))
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
            let body = NackBody { receipts: vec![receipt.to_string()], delay_ms: delay.map(millis) };
            let req = self.http.post(self.url(&format!("/v1/groups/{}/nack", encode_component(group)))).json(&body);
            Ok(receipt_outcome(&self.rest_json::<NackResult>(req).await?.failed))
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
            let body = ChangeInvisibleBody { receipt: receipt.to_string(), invisible_ms: millis(invisible) };
            let req = self
                .http
                .post(self.url(&format!("/v1/groups/{}/change_invisible", encode_component(group))))
                .json(&body);
            Ok(self.rest_json::<ReceiptOut>(req).await?.receipt)
        }
        .boxed()
    }

    fn create_topic<'a>(
        &'a self,
        name: &'a str,
        queues: Option<u32>,
        perm: Option<crate::broker::Perm>,
    ) -> BoxFuture<'a, Result<TopicInfo>> {
        async move {
            let body = CreateTopic { name: name.to_string(), queues, perm: perm.map(Into::into) };
            let req = self.http.post(self.url("/v1/topics")).json(&body);
            Ok(self.rest_json::<TopicOut>(req).await?.into())
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
            Ok(list.topics.into_iter().map(Into::into).collect())
        }
        .boxed()
    }

    fn topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<TopicDetail>> {
        async move {
            let detail: TopicDetailOut = self
                .rest_json(self.http.get(self.url(&format!("/v1/topics/{}", encode_component(name)))))
                .await
                .map_err(|e| named(e, "topic", name))?;
            Ok(detail.into())
        }
        .boxed()
    }

    fn group<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<crate::broker::GroupDetail>> {
        async move {
            let g: GroupDetailOut = self
                .rest_json(self.http.get(self.url(&format!("/v1/groups/{}", encode_component(name)))))
                .await
                .map_err(|e| named(e, "group", name))?;
            Ok(g.into())
        }
        .boxed()
    }

    fn put_group<'a>(
        &'a self,
        name: &'a str,
        max_reconsume_times: Option<u32>,
    ) -> BoxFuture<'a, Result<crate::broker::GroupDetail>> {
        async move {
            let body = PutGroup { max_reconsume_times };
            let req = self.http.put(self.url(&format!("/v1/groups/{}", encode_component(name)))).json(&body);
            Ok(self.rest_json::<GroupDetailOut>(req).await?.into())
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
            let (timestamp, to) = match target {
                ResetTarget::Timestamp(ts) => (Some(ts), None),
                ResetTarget::Earliest => (None, Some(ResetTo::Earliest)),
                ResetTarget::Latest => (None, Some(ResetTo::Latest)),
            };
            let body = ResetBody { topic: topic.to_string(), timestamp, to };
            let req =
                self.http.post(self.url(&format!("/v1/groups/{}/offsets/reset", encode_component(group)))).json(&body);
            let reset: ResetResult = self.rest_json(req).await.map_err(|e| named(e, "topic", topic))?;
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
            let result: SendResultOut =
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
            let m: MessageOut =
                self.rest_json(self.http.get(self.url(&path))).await.map_err(|e| named(e, "message", msg_id))?;
            m.try_into()
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

fn lock_frame(req_id: Option<String>, group: &str, topic: &str, queue_id: u32, client_id: &str) -> LockFrame {
    LockFrame {
        req_id,
        group: group.to_string(),
        topic: topic.to_string(),
        queue_id,
        client_id: Some(client_id.to_string()),
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
        let p = br#"{"type": "urn:ferrymq:error:invalid-argument", "title": "t", "status": 400, "detail": "bad", "errors": [{"field": "/topic", "message": "bad"}]}"#;
        assert!(matches!(problem_error(p, 400), Error::InvalidArgument { field, .. } if field == "/topic"));
        let p = br#"{"type": "urn:ferrymq:error:conflict", "title": "t", "status": 409, "detail": "exists"}"#;
        assert!(matches!(problem_error(p, 409), Error::Conflict(d) if d == "exists"));
        let p = br#"{"type": "urn:ferrymq:error:forbidden", "title": "t", "status": 403, "detail": ""}"#;
        assert_eq!(problem_error(p, 403).kind(), "forbidden");
        let p =
            br#"{"type": "urn:ferrymq:error:unauthorized", "title": "t", "status": 401, "detail": "forbidden words"}"#;
        assert_eq!(problem_error(p, 401).kind(), "unauthorized", "by type, not by text");
        assert_eq!(problem_error(b"<html>", 502).kind(), "unavailable");
    }

    #[test]
    fn a_publish_carries_every_attribute() {
        let m = OutgoingMessage {
            body: vec![0xff, 0x00],
            tag: Some("t".into()),
            keys: vec!["k".into()],
            delay: Some(crate::broker::Delay::Millis(5)),
            transaction: Some("g".into()),
            ..OutgoingMessage::default()
        };
        let j = serde_json::to_value(publish_message(m)).expect("serializes");
        assert_eq!(j["body_base64"], "/wA=");
        assert_eq!(j["delay_ms"], 5);
        assert_eq!((j["transaction"].clone(), j["producer_group"].clone()), (Value::Bool(true), Value::from("g")));
        assert_eq!(
            serde_json::to_value(publish_message(OutgoingMessage::from("hi"))).expect("serializes")["body"],
            "hi"
        );
    }

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode_component("a b/c?"), "a%20b%2Fc%3F");
    }
}
