//! `GET /v1/ws`: the WebSocket protocol. One connection multiplexes subscriptions (as a full
//! group member), publishes, transaction checks and the native clients' low-level ops.
//!
//! [`run`] is generic over a `Sink` and a `Stream` of text frames, so tests drive it through
//! channels; [`upgrade`] adapts an axum socket to it.

pub mod connection;
pub mod protocol;
pub mod window;

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;

use crate::access::Caller;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::ws::connection::Connection;
use crate::ws::protocol::ServerFrame;

/// Frames queued towards one client before its subscriptions wait.
const OUTBOX: usize = 256;
/// Most frames written together before a flush.
const WRITE_BURST: usize = 64;

/// Opens a WebSocket connection (auth: bearer token, `?token=` or a single-use `?ticket=`).
#[utoipa::path(
    get,
    path = "/v1/ws",
    operation_id = "open_websocket",
    tag = "websocket",
    params(
        ("ticket" = Option<String>, Query, description = "Single-use ticket from POST /v1/ws/tickets"),
        ("token" = Option<String>, Query, description = "Token, for clients that cannot send headers"),
    ),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol of openapi/asyncapi.yaml"),
        (status = 400, description = "Not a WebSocket upgrade request", body = crate::problem::Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    caller: Caller,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return ApiError::invalid("", format!("this route needs a WebSocket upgrade: {rejection}")).into_response()
        }
    };
    if let Err(err) = state.broker() {
        return err.into_response();
    }
    // A frame may be twice as large as a request body (the largest batch, base64-encoded in
    // JSON): a batch somewhat over the broker's limits is still read, and refused with an
    // `error` for its `req_id` while the connection stays open. Past this, the frame cannot be
    // read: the connection ends with an `error` and a 1009 close.
    let limit = state.settings().body_limit.saturating_mul(2);
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve_socket(state, caller, socket, limit))
}

async fn serve_socket(state: AppState, caller: Caller, socket: WebSocket, limit: usize) {
    let (tx, rx) = socket.split();
    // Set when the client's frame is over the size limit: the rest of it cannot be skipped,
    // so the connection ends with an `error` and a 1009 close.
    let too_large = Arc::new(OnceLock::new());
    let tx = SocketSink { inner: tx, too_large: too_large.clone(), closing: None };
    // A text frame is read where the socket left it: copying it into a `String` first cost
    // a copy of every published body.
    let rx = rx
        .take_while(move |m| {
            let go_on = match m {
                Ok(m) => !matches!(m, Message::Close(_)),
                Err(e) => {
                    if is_too_large(e) {
                        let _ = too_large.set(format!("a frame is larger than this server takes ({limit} bytes)"));
                    }
                    false
                }
            };
            futures::future::ready(go_on)
        })
        .filter_map(|m| {
            futures::future::ready(match m {
                Ok(Message::Text(text)) => Some(text),
                Ok(Message::Binary(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned().into()),
                _ => None,
            })
        });
    run(state, caller, tx, Box::pin(rx)).await;
}

/// Whether a read failed on a frame or message over the size limit (tungstenite's capacity
/// error; axum does not expose its type, only its text).
fn is_too_large(e: &axum::Error) -> bool {
    e.to_string().contains("Space limit exceeded")
}

/// The socket's sending half, as a sink of JSON text frames. Its close sends, when the
/// client's frame was too large, the `error` frame saying so and a close frame with 1009.
struct SocketSink {
    inner: futures::stream::SplitSink<WebSocket, Message>,
    too_large: Arc<OnceLock<String>>,
    /// The frames the close still has to send, in reverse order (made on its first poll).
    closing: Option<Vec<Message>>,
}

impl Sink<String> for SocketSink {
    type Error = axum::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready_unpin(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, text: String) -> Result<(), Self::Error> {
        self.inner.start_send_unpin(Message::Text(text.into()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_flush_unpin(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = &mut *self;
        let too_large = &this.too_large;
        let closing = this.closing.get_or_insert_with(|| match too_large.get() {
            Some(detail) => {
                let error = crate::ws::protocol::error_frame(
                    &ApiError::PayloadTooLarge(detail.clone()),
                    crate::ws::protocol::FrameIds { id: None, req_id: None },
                );
                let close = CloseFrame { code: close_code::SIZE, reason: "payload-too-large".into() };
                vec![Message::Close(Some(close)), Message::Text(error.to_json().into())]
            }
            None => Vec::new(),
        });
        while let Some(frame) = closing.pop() {
            match this.inner.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => this.inner.start_send_unpin(frame)?,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    closing.push(frame);
                    return Poll::Pending;
                }
            }
        }
        this.inner.poll_close_unpin(cx)
    }
}

/// A connection's outgoing frames. Whoever sends a frame encodes it, so the connection's
/// writer only writes (and a subscription encodes its deliveries beside the writer, not in
/// front of it); the queue holds JSON text.
#[derive(Clone, Debug)]
pub struct Outbox(mpsc::Sender<String>);

/// The connection of an [`Outbox`] is gone.
#[derive(Debug)]
pub struct ConnectionGone;

impl Outbox {
    /// An outbox and the queue its frames go to.
    pub fn new(capacity: usize) -> (Outbox, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Outbox(tx), rx)
    }

    /// Queues `frame`, waiting while the queue is full.
    pub async fn send(&self, frame: ServerFrame) -> Result<(), ConnectionGone> {
        self.0.send(frame.to_json()).await.map_err(|_| ConnectionGone)
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// Runs one connection until the client goes away or the server shuts down. `rx` gives the
/// client's text frames (`String`s, or a socket's `Utf8Bytes`).
pub async fn run<Tx, Rx, Text>(state: AppState, caller: Caller, mut tx: Tx, mut rx: Rx)
where
    Tx: Sink<String> + Unpin + Send + 'static,
    Rx: Stream<Item = Text> + Unpin + Send,
    Text: std::ops::Deref<Target = str> + Send,
{
    let Ok(broker) = state.broker() else { return };
    let (out, mut outbox) = Outbox::new(OUTBOX);
    // Frames that are already queued go out together: one write (and one system call) for a
    // burst of answers or deliveries, not one per frame; at most `WRITE_BURST` at a time, so
    // that a subscription that keeps the outbox full does not keep this task from yielding.
    let writer = tokio::spawn(async move {
        'frames: while let Some(first) = outbox.recv().await {
            let (mut next, mut written) = (Some(first), 0);
            while let Some(frame) = next.take() {
                if tx.feed(frame).await.is_err() {
                    break 'frames;
                }
                written += 1;
                if written < WRITE_BURST {
                    next = outbox.try_recv().ok();
                }
            }
            if tx.flush().await.is_err() {
                break;
            }
        }
        let _ = tx.close().await;
    });
    state.metrics().ws_connection(1);
    let mut connection = Connection::new(state.clone(), broker, caller, out);
    tracing::debug!(conn = connection.id(), "websocket connection opened");
    let stopping = state.stopping();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            text = rx.next() => match text {
                Some(text) => connection.handle_text(&text).await,
                None => break,
            },
            _ = &mut stopping => break,
        }
    }
    tracing::debug!(conn = connection.id(), "websocket connection closed");
    connection.close().await;
    state.metrics().ws_connection(-1);
    // Every sender is gone now, so the writer drains what is queued and ends.
    let _ = writer.await;
}
