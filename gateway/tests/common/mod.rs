//! Shared helpers of the gateway's integration tests: a broker on a temporary directory with
//! tiny segments and millisecond delay levels, the router driven with `oneshot`, and a real
//! server on `127.0.0.1:0` for WebSocket tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use ferrymq_core::broker::{Broker, BrokerConfig};
use ferrymq_core::store::FlushMode;
use ferrymq_gateway::{app, AppState, GatewaySettings};
use futures::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tower::ServiceExt;

/// Largest message body of the test broker, small so that oversize tests are cheap.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The test broker's configuration: small files, fast timers.
pub fn broker_config(dir: &std::path::Path) -> BrokerConfig {
    let mut c = BrokerConfig::new(dir);
    c.store.segment_bytes = 512 * 1024;
    c.store.cq_units_per_file = 1024;
    c.store.flush = FlushMode::Async;
    c.store.flush_interval = Duration::from_millis(20);
    c.store.max_message_bytes = MAX_MESSAGE_BYTES;
    c.delay_levels = (1..=18).map(|n| Duration::from_millis(40 * n)).collect();
    c.timer_precision = Duration::from_millis(10);
    c.transaction_timeout = Duration::from_millis(150);
    c.transaction_check_interval = Duration::from_millis(150);
    c.transaction_check_max = 3;
    c.lease_ttl = Duration::from_secs(2);
    c.orderly_suspend = Duration::from_millis(50);
    c.max_batch_messages = 50;
    c.max_batch_bytes = 256 * 1024;
    c
}

/// Gateway settings of the tests: a body limit a little above a batch's worth.
pub fn settings() -> GatewaySettings {
    GatewaySettings { body_limit: 512 * 1024, ..GatewaySettings::default() }
}

/// A broker and the gateway state over it.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub broker: Arc<Broker>,
    pub state: AppState,
}

/// A JSON answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The `Content-Type` header.
    pub fn content_type(&self) -> &str {
        self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts a problem document of `status` and `kind`, and returns it.
    #[track_caller]
    pub fn problem(&self, status: u16, kind: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.text);
        assert_eq!(self.content_type(), "application/problem+json", "{}", self.text);
        assert_eq!(self.body["type"], format!("urn:ferrymq:error:{kind}"), "{}", self.text);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string(), "{}", self.text);
        assert!(self.body["detail"].is_string(), "{}", self.text);
        &self.body
    }

    /// The first field error's pointer.
    pub fn field(&self) -> &str {
        self.body["errors"][0]["field"].as_str().unwrap_or("<none>")
    }
}

impl TestApp {
    /// A broker with the test configuration.
    pub async fn start() -> TestApp {
        TestApp::start_with(|_| {}, settings()).await
    }

    /// A broker whose configuration `tweak` adjusts, with these gateway settings.
    pub async fn start_with(tweak: impl FnOnce(&mut BrokerConfig), settings: GatewaySettings) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = broker_config(dir.path());
        tweak(&mut config);
        let broker = Broker::open(config).await.expect("broker opens");
        let state = AppState::with_broker(settings, broker.clone());
        TestApp { dir, broker, state }
    }

    /// The router.
    pub fn router(&self) -> Router {
        app(self.state.clone())
    }

    /// Sends a request through the router.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router().oneshot(request).await.expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body, text }
    }

    /// `method uri` with an optional JSON body.
    pub async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&json).expect("json"))
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("request")).await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, None).await
    }

    /// How many messages `topic` holds: the sum of its queues' max offsets.
    pub async fn stored(&self, topic: &str) -> u64 {
        let reply = self.get(&format!("/v1/topics/{topic}")).await;
        reply.body["queue_offsets"].as_array().expect("queue_offsets").iter().map(|q| q["max"].as_u64().unwrap()).sum()
    }

    pub async fn post(&self, uri: &str, body: Value) -> Reply {
        self.call(Method::POST, uri, Some(body)).await
    }

    pub async fn put(&self, uri: &str, body: Value) -> Reply {
        self.call(Method::PUT, uri, Some(body)).await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.call(Method::DELETE, uri, None).await
    }

    /// Publishes a text body as JSON; asserts success; returns the result.
    pub async fn publish(&self, topic: &str, message: Value) -> Value {
        let reply = self.post(&format!("/v1/topics/{topic}/messages"), message).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.body
    }

    /// Receives for `group` with a short long poll until `n` messages came (or 5 s passed).
    pub async fn receive_n(&self, group: &str, topic: &str, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        while out.len() < n && tokio::time::Instant::now() < deadline {
            let reply = self
                .post(
                    &format!("/v1/groups/{group}/receive"),
                    serde_json::json!({"topic": topic, "max_messages": n - out.len(), "wait_ms": 200}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            out.extend(reply.body["messages"].as_array().cloned().unwrap_or_default());
        }
        out
    }

    /// Serves the router on `127.0.0.1:0`.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = self.router().into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }
}

/// A WebSocket client for tests.
pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl WsClient {
    /// Connects to `/v1/ws` of the server at `addr` (`query` may carry `?ticket=`).
    pub async fn connect(addr: SocketAddr, query: &str) -> WsClient {
        let (stream, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws{query}")).await.expect("websocket connects");
        WsClient { stream }
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(WsMessage::Text(text.to_string().into())).await.expect("send");
    }

    /// The next JSON frame within `timeout`, or `None`.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(timeout, self.stream.next()).await.ok()??;
            match frame.expect("frame") {
                WsMessage::Text(text) => return Some(serde_json::from_str(&text).expect("JSON frame")),
                WsMessage::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next JSON frame; fails after 5 s.
    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(5)).await.expect("a frame within 5 s")
    }

    /// The next frame with this `op`, skipping others; fails after 5 s.
    pub async fn next_op(&mut self, op: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_within(left).await.unwrap_or_else(|| panic!("no {op} frame within 5 s"));
            if frame["op"] == op {
                return frame;
            }
        }
    }

    /// Reads (at most 5 s) until the server closes the connection; the close frame's code, if
    /// it sent one.
    pub async fn closed_with(&mut self) -> Option<u16> {
        let end = async {
            while let Some(frame) = self.stream.next().await {
                match frame {
                    Ok(WsMessage::Close(close)) => return close.map(|c| u16::from(c.code)),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(5), end).await.expect("the server never ended the connection")
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Closes the connection and waits (at most 5 s) until the server has ended it, as a
    /// browser does before it reports the socket closed.
    pub async fn close_and_wait(mut self) {
        let _ = self.stream.close(None).await;
        let drained = async { while let Some(Ok(_)) = self.stream.next().await {} };
        tokio::time::timeout(Duration::from_secs(5), drained).await.expect("the server never ended the connection");
    }
}

/// Waits until `check` holds, polling every 20 ms for up to 5 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}
