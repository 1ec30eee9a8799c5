//! [`RemoteTransport`]: a FerryMQ gateway over the network.
//!
//! The member logic runs here, as for the embedded broker; the gateway only executes
//! low-level operations. They travel on its WebSocket protocol (`/v1/ws`, described in
//! `openapi/asyncapi.yaml`): `publish`, `pull`, `commit`, `lock`/`unlock`,
//! `register_producer`/`check`/`end_transaction`, and `heartbeat`. Everything else (lease
//! consumption, lookups, administration, committed offsets, member lists) uses the REST API.
//!
//! One shared socket carries the requests, matched to answers by `req_id`. Each member
//! heartbeats over a socket of its own, because the gateway removes a connection's members the
//! moment the connection closes: closing that socket is how a member leaves at once.
//!
//! When the shared socket drops, a background task (the link's supervisor) reconnects with
//! exponential backoff and jitter ([`RemoteOptions::reconnect_backoff`] doubling up to
//! [`RemoteOptions::reconnect_backoff_max`]), registers the producer groups again, reopens each
//! member's socket with its last heartbeat, and tells [`RemoteOptions::on_connection`]
//! ([`ConnectionEvent::Dropped`], then [`ConnectionEvent::Restored`]). Meanwhile publishing and
//! ending transactions wait for the connection up to the request timeout, then fail with
//! [`Error::Unavailable`]; the consumers' low-level operations (pull, commit, heartbeat, lock)
//! fail at once with it and are retried by their own loops. Messages a consumer held
//! unacknowledged on the dead connection go back to the group on the gateway's side.
//!
//! Two limits follow from the gateway's protocol: a push consumer cannot send a failed message
//! back through retry (there is no such operation), so it retries it in place; and the
//! committed offset of a queue the group never committed reads as the queue's minimum, so a
//! remote push consumer begins new queues at the first retained message whatever its start
//! position.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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

use super::transport::{closed, BrokerTimings, FindQuery, Transport};
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
    /// long polls get their wait on top). A publish made while the connection is down waits
    /// for it within this time, then fails with [`Error::Unavailable`].
    pub request_timeout: Duration,
    /// The gateway's lease and retry settings, which consumers align with (default: the
    /// broker's defaults). The protocol does not carry them.
    pub timings: BrokerTimings,
    /// For `https://` URLs: a PEM file of the certificate authorities to trust instead of the
    /// system's roots (a private CA, or a self-signed server certificate).
    pub ca_file: Option<PathBuf>,
    /// The pause before the first attempt to reconnect after the connection drops (default
    /// 100 ms). It doubles after each failed attempt, up to
    /// [`reconnect_backoff_max`](Self::reconnect_backoff_max); each pause is drawn at random
    /// between half and all of it, so that many clients of a restarted server do not
    /// reconnect in step. Must be longer than zero.
    pub reconnect_backoff: Duration,
    /// The longest pause between two attempts to reconnect (default 10 s); at least
    /// [`reconnect_backoff`](Self::reconnect_backoff).
    pub reconnect_backoff_max: Duration,
    /// Told when the connection drops and when it is restored (default: nobody; the client
    /// logs both either way).
    pub on_connection: Option<ConnectionListener>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            token: None,
            request_timeout: Duration::from_secs(30),
            timings: BrokerTimings::default(),
            ca_file: None,
            reconnect_backoff: DEFAULT_RECONNECT_BACKOFF,
            reconnect_backoff_max: DEFAULT_RECONNECT_BACKOFF_MAX,
            on_connection: None,
        }
    }
}

/// The first pause before reconnecting, when [`RemoteOptions`] does not say otherwise.
pub const DEFAULT_RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between attempts to reconnect, when [`RemoteOptions`] does not say
/// otherwise.
pub const DEFAULT_RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// A change of a remote client's connection to its gateway. Events alternate: a
/// [`Dropped`](Self::Dropped), then a [`Restored`](Self::Restored) once the client is
/// connected again, and so on; none follows [`Client::close`](super::Client::close).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The connection broke. The client reconnects in the background with backoff; until
    /// then sends wait (up to their timeout) and consumers pause.
    Dropped {
        /// Why, as far as the client can tell (`"the gateway closed the connection"`, an I/O
        /// error, ...).
        error: String,
    },
    /// Connected again, with the producer groups and the push consumers' memberships
    /// registered again.
    Restored,
}

type ConnectionFn = dyn Fn(&ConnectionEvent) + Send + Sync;

/// Told of each [`ConnectionEvent`] of a remote client, in order. It runs on the client's
/// reconnecting task: it must return quickly and must not wait for the client (hand the event
/// to a channel for anything longer). A panic in it is caught and logged.
#[derive(Clone)]
pub struct ConnectionListener(Arc<ConnectionFn>);

impl std::fmt::Debug for ConnectionListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionListener")
    }
}

impl ConnectionListener {
    /// A listener calling `f` with each event.
    pub fn new(f: impl Fn(&ConnectionEvent) + Send + Sync + 'static) -> Self {
        ConnectionListener(Arc::new(f))
    }

    fn notify(&self, event: &ConnectionEvent) {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.0)(event))).is_err() {
            tracing::error!(?event, "a connection listener panicked");
        }
    }
}

/// A transport to a gateway: its WebSocket protocol plus its REST API.
pub struct RemoteTransport {
    base: String,
    options: RemoteOptions,
    http: reqwest::Client,
    /// The sockets and what they carry, shared with the supervisor.
    link: Arc<Link>,
    /// The task that reconnects the shared socket when it drops.
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RemoteTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTransport").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Drop for RemoteTransport {
    fn drop(&mut self) {
        if let Some(task) = self.supervisor.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

/// The state of the shared socket.
#[derive(Clone)]
enum LinkState {
    /// Connected on this socket (which may have just died: the supervisor notices soon).
    Up(Arc<Socket>),
    /// Reconnecting.
    Down,
    /// The client is closed.
    Closed,
}

/// A member's heartbeat socket and the subscriptions of its last heartbeat, sent again on
/// a new socket when the connection is restored.
struct MemberLink {
    socket: Option<Arc<Socket>>,
    subscriptions: Vec<SubscriptionIn>,
}

/// Everything the connection carries: the shared socket, the members' sockets and the
/// registered producer groups. Shared by the transport and its supervisor.
struct Link {
    ws_url: String,
    /// The TLS settings of `wss://`, `None` for plain `ws://`.
    tls: Option<Arc<rustls::ClientConfig>>,
    request_timeout: Duration,
    state: watch::Sender<LinkState>,
    /// Why the connection is down, for the error of a send that waited for it in vain.
    last_error: Mutex<String>,
    /// One heartbeat socket per member `(group, client_id)`.
    members: tokio::sync::Mutex<HashMap<(String, String), MemberLink>>,
    /// Where each registered producer group's check-backs go.
    producers: Arc<Producers>,
}

impl Link {
    /// Opens a shared socket and registers the producer groups on it.
    async fn open_shared(&self) -> Result<Arc<Socket>> {
        let socket = Socket::connect(&self.ws_url, self.tls.clone(), self.producers.clone()).await?;
        let groups: Vec<String> = self.producers.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        for group in groups {
            socket.send(&ClientFrame::RegisterProducer(RegisterProducerFrame { group }))?;
        }
        Ok(socket)
    }

    /// Opens a member's socket and sends its heartbeat.
    async fn open_member(&self, group: &str, client_id: &str, subscriptions: &[SubscriptionIn]) -> Result<Arc<Socket>> {
        let socket = Socket::connect(&self.ws_url, self.tls.clone(), Arc::default()).await?;
        socket.request(|req_id| heartbeat_frame(req_id, group, client_id, subscriptions), self.request_timeout).await?;
        Ok(socket)
    }

    /// The shared socket now, or [`Error::Unavailable`] while reconnecting.
    fn current(&self) -> Result<Arc<Socket>> {
        match &*self.state.borrow() {
            LinkState::Up(socket) if socket.is_alive() => Ok(socket.clone()),
            LinkState::Up(_) | LinkState::Down => Err(Error::Unavailable(format!(
                "not connected to the gateway (reconnecting): {}",
                self.last_error.lock().unwrap_or_else(|e| e.into_inner())
            ))),
            LinkState::Closed => Err(closed()),
        }
    }

    /// The shared socket, waiting up to `timeout` for the connection to come back.
    async fn connected(&self, timeout: Duration) -> Result<Arc<Socket>> {
        let mut state = self.state.subscribe();
        // An `Up` socket that just died counts as down: the supervisor replaces it.
        let wait = state.wait_for(|s| match s {
            LinkState::Up(socket) => socket.is_alive(),
            LinkState::Down => false,
            LinkState::Closed => true,
        });
        let outcome = match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) => match &*s {
                LinkState::Up(socket) => Ok(socket.clone()),
                _ => Err(closed()),
            },
            Ok(Err(_)) => Err(closed()),
            Err(_) => Err(Error::Unavailable(format!(
                "no connection to the gateway within {timeout:?}: {}",
                self.last_error.lock().unwrap_or_else(|e| e.into_inner())
            ))),
        };
        outcome
    }

    /// Reopens the members' sockets with their last heartbeats. A member that cannot be
    /// registered now is left to its next heartbeat.
    async fn restore_members(&self) {
        let mut members = self.members.lock().await;
        for ((group, client_id), member) in members.iter_mut() {
            if member.socket.as_ref().is_some_and(|s| s.is_alive()) {
                continue;
            }
            match self.open_member(group, client_id, &member.subscriptions).await {
                Ok(socket) => member.socket = Some(socket),
                Err(e) => {
                    member.socket = None;
                    tracing::warn!(group = %group, client_id = %client_id, error = %e, "registering a member again failed; its next heartbeat retries");
                }
            }
        }
    }
}

/// Keeps the shared socket up: waits for `socket` to drop, then reconnects with backoff and
/// restores what it carried. Runs until the transport is closed (which aborts it).
async fn supervise(
    link: Arc<Link>,
    mut socket: Arc<Socket>,
    backoff: (Duration, Duration),
    listener: Option<ConnectionListener>,
) {
    let notify = |event: ConnectionEvent| {
        if let Some(listener) = &listener {
            listener.notify(&event);
        }
    };
    loop {
        let error = socket.closed().await;
        let dropped = link.state.send_if_modified(|s| match s {
            LinkState::Up(_) => {
                *s = LinkState::Down;
                true
            }
            LinkState::Down | LinkState::Closed => false,
        });
        if !dropped {
            return; // closed meanwhile
        }
        *link.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error.clone();
        tracing::warn!(error = %error, "the connection to the gateway dropped; reconnecting");
        notify(ConnectionEvent::Dropped { error });
        let mut pause = backoff.0;
        socket = loop {
            tokio::time::sleep(jittered(pause)).await;
            match link.open_shared().await {
                Ok(socket) => break socket,
                Err(e) => {
                    tracing::debug!(error = %e, next_pause = ?pause, "reconnecting to the gateway failed");
                    *link.last_error.lock().unwrap_or_else(|e| e.into_inner()) = e.to_string();
                    pause = (pause * 2).min(backoff.1);
                }
            }
        };
        let restored = link.state.send_if_modified(|s| match s {
            LinkState::Down => {
                *s = LinkState::Up(socket.clone());
                true
            }
            LinkState::Up(_) | LinkState::Closed => false,
        });
        if !restored {
            socket.close();
            return;
        }
        link.restore_members().await;
        tracing::info!("the connection to the gateway is restored");
        notify(ConnectionEvent::Restored);
    }
}

/// A pause drawn at random between half and all of `pause` ("equal jitter").
fn jittered(pause: Duration) -> Duration {
    pause.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

fn heartbeat_frame(req_id: String, group: &str, client_id: &str, subscriptions: &[SubscriptionIn]) -> ClientFrame {
    ClientFrame::Heartbeat(HeartbeatFrame {
        req_id: Some(req_id),
        group: group.to_string(),
        client_id: Some(client_id.to_string()),
        subscriptions: subscriptions.to_vec(),
    })
}

impl RemoteTransport {
    /// Connects to the gateway at `url` (`http://host:port`): checks `/healthz` and opens the
    /// shared socket. [`Error::Connection`] when it cannot be reached. From then on the
    /// transport reconnects by itself when the connection drops (see the module's doc).
    pub async fn connect(url: &str, options: RemoteOptions) -> Result<Self> {
        if options.reconnect_backoff.is_zero() {
            return Err(Error::invalid("/reconnect_backoff", "must be longer than zero"));
        }
        if options.reconnect_backoff_max < options.reconnect_backoff {
            return Err(Error::invalid("/reconnect_backoff_max", "must be at least reconnect_backoff"));
        }
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
        let health = http.get(format!("{base}/healthz")).send().await.map_err(connection_error)?;
        if !health.status().is_success() {
            return Err(Error::Unavailable(format!("{base} answered /healthz with {}", health.status())));
        }
        let link = Link {
            ws_url,
            tls,
            request_timeout: options.request_timeout,
            state: watch::Sender::new(LinkState::Down),
            last_error: Mutex::new(String::new()),
            members: tokio::sync::Mutex::new(HashMap::new()),
            producers: Arc::default(),
        };
        let socket = link.open_shared().await?;
        link.state.send_replace(LinkState::Up(socket.clone()));
        let link = Arc::new(link);
        let backoff = (options.reconnect_backoff, options.reconnect_backoff_max);
        let supervisor = tokio::spawn(supervise(link.clone(), socket, backoff, options.on_connection.clone()));
        Ok(RemoteTransport { base, options, http, link, supervisor: Mutex::new(Some(supervisor)) })
    }

    /// Whether the shared socket is connected now (`false` while reconnecting, and once
    /// closed).
    pub fn is_connected(&self) -> bool {
        self.link.current().is_ok()
    }

    /// Sends a request that does not wait for a lost connection: while reconnecting it fails
    /// at once with [`Error::Unavailable`] (the consumers' loops retry).
    async fn request(&self, frame: impl FnOnce(String) -> ClientFrame, timeout: Duration) -> Result<ServerFrame> {
        self.link.current()?.request(frame, timeout).await
    }

    /// Sends a request that waits for a lost connection, all within `timeout` (publishing,
    /// ending transactions).
    async fn request_waiting(
        &self,
        frame: impl FnOnce(String) -> ClientFrame,
        timeout: Duration,
    ) -> Result<ServerFrame> {
        let start = tokio::time::Instant::now();
        let socket = self.link.connected(timeout).await?;
        let left = timeout.saturating_sub(start.elapsed()).max(Duration::from_millis(1));
        socket.request(frame, left).await
    }

    /// The members' sockets, unless the client is closed.
    async fn members_locked(&self) -> Result<tokio::sync::MutexGuard<'_, HashMap<(String, String), MemberLink>>> {
        let members = self.link.members.lock().await;
        if self.is_closed() {
            return Err(closed());
        }
        Ok(members)
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
        if self.is_closed() {
            return Err(closed());
        }
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

/// The largest frame the client accepts from the gateway.
const MAX_FRAME_BYTES: usize = 256 << 20;

type Pending = Mutex<HashMap<String, oneshot::Sender<Result<ServerFrame>>>>;
type Producers = Mutex<HashMap<String, mpsc::Sender<TransactionCheck>>>;

/// One WebSocket to the gateway: a writer task, a reader task that routes answers by
/// `req_id` and check-backs by producer group.
struct Socket {
    out: mpsc::UnboundedSender<WsMessage>,
    pending: Arc<Pending>,
    next_id: AtomicU64,
    alive: watch::Receiver<bool>,
    /// Whether the connection itself has ended (the gateway closed it or it failed): after a
    /// close frame, the gateway ends it only once it has released what the connection held.
    ended: watch::Receiver<bool>,
    /// Why the connection ended: the first failure its reader or writer saw.
    reason: Arc<Mutex<Option<String>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Socket {
    async fn connect(
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        producers: Arc<Producers>,
    ) -> Result<Arc<Self>> {
        let connector = tls.map(tokio_tungstenite::Connector::Rustls);
        // `true`: TCP_NODELAY. Publishes and acks are small frames; with Nagle's algorithm one
        // that follows another unacknowledged one would wait for the server's delayed ACK.
        // A `message` frame carries its body twice (JSON text and base64): a body at the
        // gateway's 4 MiB default whose every byte JSON escapes makes a frame of about 30 MB,
        // over tungstenite's default frame limit of 16 MiB.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_BYTES))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        let (stream, _) = tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, connector)
            .await
            .map_err(|e| Error::Connection(format!("WebSocket to {}: {e}", url.split('?').next().unwrap_or(url))))?;
        let (mut sink, mut source) = stream.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<WsMessage>();
        let pending: Arc<Pending> = Arc::default();
        let (alive_tx, alive) = watch::channel(true);
        let alive_tx = Arc::new(alive_tx);
        let (ended_tx, ended) = watch::channel(false);
        let reason: Arc<Mutex<Option<String>>> = Arc::default();

        let writer_alive = alive_tx.clone();
        let writer_reason = reason.clone();
        let writer = tokio::spawn(async move {
            while let Some(frame) = outgoing.recv().await {
                let closing = matches!(frame, WsMessage::Close(_));
                if let Err(e) = sink.send(frame).await {
                    record(&writer_reason, format!("sending to the gateway failed: {e}"));
                    break;
                }
                if closing {
                    record(&writer_reason, "the client closed the connection".into());
                    break;
                }
            }
            let _ = sink.close().await;
            writer_alive.send_replace(false);
        });
        let reader_pending = pending.clone();
        let reader_reason = reason.clone();
        let pong = out.clone();
        let reader = tokio::spawn(async move {
            let why = loop {
                match source.next().await {
                    Some(Ok(WsMessage::Text(text))) => route(text.as_str(), &reader_pending, &producers),
                    Some(Ok(WsMessage::Ping(data))) => {
                        let _ = pong.send(WsMessage::Pong(data));
                    }
                    Some(Ok(WsMessage::Close(Some(close)))) if !close.reason.is_empty() => {
                        break format!(
                            "the gateway closed the connection ({}: {})",
                            u16::from(close.code),
                            close.reason
                        )
                    }
                    Some(Ok(WsMessage::Close(_))) => break "the gateway closed the connection".to_string(),
                    Some(Err(e)) => break format!("the connection to the gateway failed: {e}"),
                    None => break "the connection to the gateway ended".to_string(),
                    Some(Ok(_)) => {}
                }
            };
            record(&reader_reason, why.clone());
            alive_tx.send_replace(false);
            let waiting: Vec<_> = reader_pending.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
            for (_, tx) in waiting {
                let _ = tx.send(Err(Error::Connection(why.clone())));
            }
            // After the close frames only the end of the connection is left to read: the
            // gateway ends it once it has given back what the connection held.
            while let Some(Ok(_)) = source.next().await {}
            ended_tx.send_replace(true);
        });
        Ok(Arc::new(Socket {
            out,
            pending,
            next_id: AtomicU64::new(1),
            alive,
            ended,
            reason,
            tasks: Mutex::new(vec![writer, reader]),
        }))
    }

    /// Waits until the connection has ended; returns why.
    async fn closed(&self) -> String {
        let mut alive = self.alive.clone();
        let _ = alive.wait_for(|a| !*a).await;
        let reason = self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone();
        reason.unwrap_or_else(|| "the connection to the gateway ended".into())
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

    /// Waits (at most `timeout`) until the connection has ended: after [`Socket::close`], the
    /// gateway ends it once it has released what the connection held.
    async fn ended(&self, timeout: Duration) {
        let mut ended = self.ended.clone();
        let _ = tokio::time::timeout(timeout, ended.wait_for(|e| *e)).await;
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }
}

/// Keeps the first reason a socket ended for.
fn record(reason: &Mutex<Option<String>>, why: String) {
    reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(why);
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
                .request_waiting(
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
                .request_waiting(
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
            match self.request_waiting(frame, self.options.request_timeout).await? {
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
            self.link.producers.lock().unwrap_or_else(|e| e.into_inner()).insert(group.to_string(), tx);
            // Registered on the socket of now; a reconnect registers every group again.
            self.link
                .connected(self.options.request_timeout)
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
            let subscriptions: Vec<SubscriptionIn> = subscriptions.iter().map(subscription_in).collect();
            let mut members = self.members_locked().await?;
            let Some(member) = members.get_mut(&key) else {
                // A new member: registered only once its first heartbeat is answered.
                let socket = self.link.open_member(group, client_id, &subscriptions).await?;
                members.insert(key, MemberLink { socket: Some(socket), subscriptions });
                return Ok(());
            };
            // Remembered first, so that a reconnect registers the member as it is now even if
            // this heartbeat fails.
            member.subscriptions = subscriptions;
            if let Some(socket) = member.socket.as_ref().filter(|s| s.is_alive()).cloned() {
                let subscriptions = member.subscriptions.clone();
                drop(members);
                let frame = |req_id| heartbeat_frame(req_id, group, client_id, &subscriptions);
                return socket.request(frame, self.options.request_timeout).await.map(|_| ());
            }
            // No live socket: open one, unless the whole connection is down (the supervisor
            // registers the member when it is back).
            self.link.current()?;
            member.socket = Some(self.link.open_member(group, client_id, &member.subscriptions).await?);
            Ok(())
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
            // The gateway releases a connection's members before it ends the connection: once
            // it has ended, the member has left (not merely once our close frame went out).
            let member = self.link.members.lock().await.remove(&(group.to_string(), client_id.to_string()));
            if let Some(socket) = member.and_then(|m| m.socket) {
                socket.close();
                socket.ended(self.options.request_timeout).await;
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
            if let Some(task) = self.supervisor.lock().unwrap_or_else(|e| e.into_inner()).take() {
                task.abort();
            }
            if let LinkState::Up(socket) = self.link.state.send_replace(LinkState::Closed) {
                socket.close();
            }
            let members: Vec<MemberLink> = self.link.members.lock().await.drain().map(|(_, m)| m).collect();
            for socket in members.into_iter().filter_map(|m| m.socket) {
                socket.close();
            }
            Ok(())
        }
        .boxed()
    }

    fn is_closed(&self) -> bool {
        matches!(*self.link.state.borrow(), LinkState::Closed)
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
    fn reconnect_pauses_are_jittered_between_half_and_all() {
        let pause = Duration::from_millis(400);
        for _ in 0..1000 {
            let p = jittered(pause);
            assert!(p >= pause / 2 && p <= pause, "{p:?}");
        }
    }

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode_component("a b/c?"), "a%20b%2Fc%3F");
    }
}
