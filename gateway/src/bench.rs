//! `ferrymq bench`: throughput of a running server, measured the way clients use it: REST batch
//! publishes, pipelined WebSocket publishes, and a WebSocket subscriber that acks everything.
//! BENCHMARKS.md records its figures.

use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use ferrymq_proto::message::{PublishBatch, PublishMessage};
use ferrymq_proto::topic::CreateTopic;
use ferrymq_proto::ws::{AckFrame, ClientFrame, PublishFrame, ServerFrame, SubscribeFrame};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::cli::{ClientError, Conn, RestClient};

/// What to measure.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchMode {
    /// `POST /v1/topics/{topic}/messages` with `{"messages": [...]}` batches.
    RestBatch,
    /// `publish` frames on one WebSocket, `window` of them in flight.
    WsPublish,
    /// A WebSocket subscription acking every message (the topic is filled first, untimed).
    WsConsume,
}

/// `ferrymq bench` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
    /// What to measure.
    #[arg(long, value_enum)]
    pub mode: BenchMode,
    /// Messages in all.
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    /// Body size in bytes.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Messages per REST batch.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Publishes in flight on the WebSocket, or the subscription's credits.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
}

/// What a run measured.
#[derive(Debug, Clone, Copy)]
pub struct BenchResult {
    /// Messages moved.
    pub messages: usize,
    /// Body bytes moved.
    pub bytes: usize,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "messages={} seconds={:.3} msgs_per_s={:.0} MiB_per_s={:.2}",
            self.messages,
            secs,
            self.messages as f64 / secs,
            self.bytes as f64 / secs / (1024.0 * 1024.0)
        )
    }
}

fn body(size: usize) -> String {
    "x".repeat(size)
}

fn ws_url(conn: &Conn) -> String {
    let base = conn.url.trim_end_matches('/').replacen("http", "ws", 1);
    match &conn.token {
        Some(token) => {
            format!("{base}/v1/ws?token={}", form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>())
        }
        None => format!("{base}/v1/ws"),
    }
}

/// Runs one benchmark and returns its figures.
pub async fn run(args: &BenchArgs) -> Result<BenchResult, ClientError> {
    let topic = format!("bench-{:08x}", rand::random::<u32>());
    let client = RestClient::new(args.conn.clone());
    client.post("/v1/topics", &CreateTopic { name: topic.clone(), queues: None, perm: None }).await?;
    match args.mode {
        BenchMode::RestBatch => rest_batch(&client, &topic, args).await,
        BenchMode::WsPublish => ws_publish(&args.conn, &topic, args).await,
        BenchMode::WsConsume => {
            rest_batch(&client, &topic, args).await?;
            ws_consume(&args.conn, &topic, args).await
        }
    }
}

async fn rest_batch(client: &RestClient, topic: &str, args: &BenchArgs) -> Result<BenchResult, ClientError> {
    let message = PublishMessage { body: Some(body(args.size)), ..PublishMessage::default() };
    let path = format!("/v1/topics/{topic}/messages");
    let started = Instant::now();
    let mut sent = 0;
    while sent < args.messages {
        let n = args.batch.max(1).min(args.messages - sent);
        client.post(&path, &PublishBatch { messages: vec![message.clone(); n] }).await?;
        sent += n;
    }
    Ok(BenchResult { messages: sent, bytes: sent * args.size, elapsed: started.elapsed() })
}

async fn connect(conn: &Conn) -> Result<WsStream, ClientError> {
    let (socket, _) = tokio_tungstenite::connect_async(ws_url(conn))
        .await
        .map_err(|e| ClientError::Usage(format!("cannot open the WebSocket: {e}")))?;
    Ok(socket)
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_frame(socket: &mut WsStream) -> Result<ServerFrame, ClientError> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(WsMessage::Text(text)))) => {
                let frame = ServerFrame::parse(&text)
                    .map_err(|e| ClientError::Usage(format!("the server sent an unreadable frame: {e}")))?;
                if let ServerFrame::Error(error) = frame {
                    return Err(ClientError::Problem { status: error.status, detail: error.detail });
                }
                return Ok(frame);
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(ClientError::Usage(format!("WebSocket failed: {e}"))),
            Ok(None) => return Err(ClientError::Usage("the server closed the WebSocket".to_string())),
            Err(_) => return Err(ClientError::Usage("no frame for 30 s".to_string())),
        }
    }
}

async fn send(socket: &mut WsStream, frame: ClientFrame) -> Result<(), ClientError> {
    let text = serde_json::to_string(&frame).map_err(|e| ClientError::Usage(format!("unencodable frame: {e}")))?;
    socket.send(WsMessage::Text(text.into())).await.map_err(|e| ClientError::Usage(format!("WebSocket failed: {e}")))
}

async fn ws_publish(conn: &Conn, topic: &str, args: &BenchArgs) -> Result<BenchResult, ClientError> {
    let mut socket = connect(conn).await?;
    let payload = body(args.size);
    let window = args.window.max(1);
    let started = Instant::now();
    let (mut sent, mut done) = (0, 0);
    while done < args.messages {
        while sent < args.messages && sent - done < window {
            let message = PublishMessage { body: Some(payload.clone()), ..PublishMessage::default() };
            send(&mut socket, ClientFrame::Publish(PublishFrame::single(sent.to_string(), topic.to_string(), message)))
                .await?;
            sent += 1;
        }
        if matches!(next_frame(&mut socket).await?, ServerFrame::Published { .. }) {
            done += 1;
        }
    }
    let elapsed = started.elapsed();
    let _ = socket.close(None).await;
    Ok(BenchResult { messages: done, bytes: done * args.size, elapsed })
}

async fn ws_consume(conn: &Conn, topic: &str, args: &BenchArgs) -> Result<BenchResult, ClientError> {
    let mut socket = connect(conn).await?;
    let credits = args.window.max(1);
    let started = Instant::now();
    let subscribe = SubscribeFrame {
        id: "bench".to_string(),
        group: format!("{topic}-g"),
        topic: topic.to_string(),
        filter: None,
        sql: None,
        mode: None,
        start: None,
        orderly: None,
        credits: Some(u32::try_from(credits).unwrap_or(u32::MAX)),
        invisible_ms: None,
    };
    send(&mut socket, ClientFrame::Subscribe(subscribe)).await?;
    let mut received = 0;
    while received < args.messages {
        if let ServerFrame::Message { message, .. } = next_frame(&mut socket).await? {
            received += 1;
            let receipt = message.receipt.unwrap_or_default();
            send(&mut socket, ClientFrame::Ack(AckFrame { receipt })).await?;
        }
    }
    let elapsed = started.elapsed();
    let _ = socket.close(None).await;
    Ok(BenchResult { messages: received, bytes: received * args.size, elapsed })
}
