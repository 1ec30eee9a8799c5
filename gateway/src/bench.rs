//! `ferrymq bench`: a running server measured the way clients use it, in the scenarios of the
//! peer comparison (../shared/peer-bench), so users can measure their own machine without the
//! peers:
//!
//! - `produce`: `producers` WebSockets, each keeping `window` publishes in flight; msgs/s, MB/s
//!   and publish→ack latency percentiles;
//! - `consume`: a backlog of `messages` (published first, untimed) drained by one WebSocket
//!   subscriber that acks every message; msgs/s;
//! - `e2e`: one producer publishing at a fixed `rate` for `secs`, one subscriber acking; the
//!   end-to-end latency (receive time − publish time) percentiles, over all but the first
//!   second, how far the producer fell behind its schedule, and messages lost;
//! - `rest-batch`: `POST .../messages` with `{"messages": [...]}` batches of `batch`;
//! - `all`: produce, consume and e2e in turn.
//!
//! A progress bar on stderr shows each scenario while it runs (hidden when stderr is not a
//! terminal). BENCHMARKS.md records the figures.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use ferrymq_proto::message::{PublishBatch, PublishMessage};
use ferrymq_proto::topic::CreateTopic;
use ferrymq_proto::ws::{AckFrame, ClientFrame, CreditFrame, PublishFrame, ServerFrame, SubscribeFrame};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::cli::{ClientError, Conn, RestClient};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    /// Pipelined WebSocket publishes from several producers.
    Produce,
    /// A WebSocket subscriber draining a backlog, acking every message.
    Consume,
    /// End-to-end latency at a fixed publish rate.
    E2e,
    /// REST batch publishes.
    RestBatch,
    /// produce, consume and e2e.
    All,
}

/// `ferrymq bench` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
    /// What to measure.
    #[arg(long, value_enum, default_value = "all")]
    pub mode: BenchMode,
    /// Messages in all (produce, consume, rest-batch).
    #[arg(long, default_value_t = 200_000)]
    pub messages: usize,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Producers, each on its own WebSocket (produce).
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// Publishes in flight per producer.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// The subscribers' credits (unacknowledged messages they may hold); as peer-bench, the
    /// consume scenario grants `prefetch / 2` more every `prefetch / 2` messages.
    #[arg(long, default_value_t = 1000)]
    pub prefetch: usize,
    /// Messages per REST batch (rest-batch, and the consume scenario's preload).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Publish rate of the e2e scenario, msgs/s.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u32,
    /// Length of the e2e scenario, seconds.
    #[arg(long, default_value_t = 10)]
    pub secs: u64,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

impl Percentiles {
    /// The percentiles of `samples` (microseconds); all zero when there are none.
    pub fn of(mut samples: Vec<u64>) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index] as f64 / 1000.0
        };
        Percentiles { p50: at(0.50), p99: at(0.99), p999: at(0.999) }
    }
}

/// What one scenario measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// The scenario.
    pub scenario: &'static str,
    /// Messages moved (acknowledged publishes, or acked deliveries).
    pub messages: usize,
    /// Body bytes moved.
    pub bytes: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// publish→ack (produce) or publish→receive (e2e) latency.
    pub latency: Option<Percentiles>,
    /// e2e: how far the producer fell behind its schedule at the end.
    pub behind: Option<Duration>,
    /// e2e: published messages never received.
    pub lost: Option<usize>,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "scenario={} messages={} seconds={:.3} msgs_per_s={:.0} MiB_per_s={:.2}",
            self.scenario,
            self.messages,
            secs,
            self.messages as f64 / secs,
            self.bytes as f64 / secs / (1024.0 * 1024.0)
        )?;
        if let Some(l) = self.latency {
            write!(f, " p50_ms={:.3} p99_ms={:.3} p999_ms={:.3}", l.p50, l.p99, l.p999)?;
        }
        if let Some(behind) = self.behind {
            write!(f, " behind_ms={}", behind.as_millis())?;
        }
        if let Some(lost) = self.lost {
            write!(f, " lost={lost}")?;
        }
        Ok(())
    }
}

/// A body of `size` bytes: the send time (16 hex digits of microseconds since `epoch`), then
/// printable filler, so it is valid UTF-8 and travels as a JSON string.
fn stamped_body(size: usize, epoch: Instant) -> String {
    let micros = epoch.elapsed().as_micros() as u64;
    let mut body = format!("{micros:016x}");
    body.extend(std::iter::repeat_n('x', size.saturating_sub(body.len())));
    body
}

/// The send time a [`stamped_body`] carries, if it has one.
fn stamp_of(body: Option<&str>) -> Option<u64> {
    u64::from_str_radix(body?.get(..16)?, 16).ok()
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

fn progress(scenario: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(scenario.to_string());
    bar
}

/// Runs the scenarios `args.mode` names, each on a fresh topic, and returns their figures.
pub async fn run(args: &BenchArgs) -> Result<Vec<BenchResult>, ClientError> {
    let scenarios: &[BenchMode] = match args.mode {
        BenchMode::All => &[BenchMode::Produce, BenchMode::Consume, BenchMode::E2e],
        BenchMode::Produce => &[BenchMode::Produce],
        BenchMode::Consume => &[BenchMode::Consume],
        BenchMode::E2e => &[BenchMode::E2e],
        BenchMode::RestBatch => &[BenchMode::RestBatch],
    };
    let client = RestClient::new(args.conn.clone());
    let mut results = Vec::new();
    for scenario in scenarios {
        let topic = format!("bench-{:08x}", rand::random::<u32>());
        client.post("/v1/topics", &CreateTopic { name: topic.clone(), queues: None, perm: None }).await?;
        let result = match scenario {
            BenchMode::Produce => produce(&args.conn, &topic, args).await?,
            BenchMode::Consume => {
                rest_batch(&client, &topic, args, ProgressBar::hidden()).await?;
                consume(&args.conn, &topic, args).await?
            }
            BenchMode::E2e => e2e(&args.conn, &topic, args).await?,
            BenchMode::RestBatch => rest_batch(&client, &topic, args, progress("rest", args.messages as u64)).await?,
            BenchMode::All => unreachable!("expanded above"),
        };
        results.push(result);
    }
    Ok(results)
}

async fn rest_batch(
    client: &RestClient,
    topic: &str,
    args: &BenchArgs,
    bar: ProgressBar,
) -> Result<BenchResult, ClientError> {
    let message = PublishMessage { body: Some("x".repeat(args.size)), ..PublishMessage::default() };
    let path = format!("/v1/topics/{topic}/messages");
    let started = Instant::now();
    let mut sent = 0;
    while sent < args.messages {
        let n = args.batch.max(1).min(args.messages - sent);
        client.post(&path, &PublishBatch { messages: vec![message.clone(); n] }).await?;
        sent += n;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(BenchResult {
        scenario: "rest-batch",
        messages: sent,
        bytes: sent * args.size,
        elapsed: started.elapsed(),
        latency: None,
        behind: None,
        lost: None,
    })
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type WsSink = SplitSink<WsStream, WsMessage>;
type WsSource = SplitStream<WsStream>;

async fn connect(conn: &Conn) -> Result<(WsSink, WsSource), ClientError> {
    // TCP_NODELAY, as the SDKs' connections.
    let (socket, _) = tokio_tungstenite::connect_async_with_config(ws_url(conn), None, true)
        .await
        .map_err(|e| ClientError::Usage(format!("cannot open the WebSocket: {e}")))?;
    Ok(socket.split())
}

/// The next server frame; an `error` frame is an error.
async fn next_frame(source: &mut WsSource) -> Result<ServerFrame, ClientError> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), source.next()).await {
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

async fn send(sink: &mut WsSink, frame: ClientFrame) -> Result<(), ClientError> {
    let text = serde_json::to_string(&frame).map_err(|e| ClientError::Usage(format!("unencodable frame: {e}")))?;
    sink.send(WsMessage::Text(text.into())).await.map_err(|e| ClientError::Usage(format!("WebSocket failed: {e}")))
}

fn publish_frame(req_id: String, topic: &str, body: String) -> ClientFrame {
    let message = PublishMessage { body: Some(body), ..PublishMessage::default() };
    ClientFrame::Publish(PublishFrame::single(req_id, topic.to_string(), message))
}

fn subscribe_frame(topic: &str, credits: usize) -> ClientFrame {
    ClientFrame::Subscribe(SubscribeFrame {
        id: "bench".to_string(),
        group: format!("{topic}-g"),
        topic: topic.to_string(),
        filter: None,
        sql: None,
        mode: None,
        start: None,
        orderly: None,
        credits: Some(u32::try_from(credits.max(1)).unwrap_or(u32::MAX)),
        invisible_ms: None,
        client_id: None,
    })
}

/// One producer: `count` publishes, `window` in flight; returns the publish→ack latencies (µs).
async fn producer(
    conn: Conn,
    topic: String,
    count: usize,
    size: usize,
    window: usize,
    bar: ProgressBar,
) -> Result<Vec<u64>, ClientError> {
    let (mut sink, mut source) = connect(&conn).await?;
    let epoch = Instant::now();
    let mut in_flight: HashMap<String, Instant> = HashMap::with_capacity(window);
    let mut latencies = Vec::with_capacity(count);
    let (mut sent, mut done) = (0usize, 0usize);
    while done < count {
        while sent < count && in_flight.len() < window.max(1) {
            let req_id = sent.to_string();
            in_flight.insert(req_id.clone(), Instant::now());
            send(&mut sink, publish_frame(req_id, &topic, stamped_body(size, epoch))).await?;
            sent += 1;
        }
        if let ServerFrame::Published { req_id, .. } = next_frame(&mut source).await? {
            if let Some(at) = in_flight.remove(&req_id) {
                latencies.push(at.elapsed().as_micros() as u64);
                done += 1;
                bar.inc(1);
            }
        }
    }
    let _ = sink.close().await;
    Ok(latencies)
}

async fn produce(conn: &Conn, topic: &str, args: &BenchArgs) -> Result<BenchResult, ClientError> {
    let producers = args.producers.max(1);
    let bar = progress("produce", args.messages as u64);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..producers {
        let count = args.messages / producers + usize::from(i < args.messages % producers);
        tasks.push(tokio::spawn(producer(conn.clone(), topic.to_string(), count, args.size, args.window, bar.clone())));
    }
    let mut latencies = Vec::with_capacity(args.messages);
    for task in tasks {
        let mine = task.await.map_err(|e| ClientError::Usage(format!("a producer failed: {e}")))??;
        latencies.extend(mine);
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let messages = latencies.len();
    Ok(BenchResult {
        scenario: "produce",
        messages,
        bytes: messages * args.size,
        elapsed,
        latency: Some(Percentiles::of(latencies)),
        behind: None,
        lost: None,
    })
}

async fn consume(conn: &Conn, topic: &str, args: &BenchArgs) -> Result<BenchResult, ClientError> {
    let (mut sink, mut source) = connect(conn).await?;
    let bar = progress("consume", args.messages as u64);
    let started = Instant::now();
    send(&mut sink, subscribe_frame(topic, args.prefetch)).await?;
    let top_up = (args.prefetch / 2).max(1);
    let mut received = 0;
    while received < args.messages {
        if let ServerFrame::Message { message, .. } = next_frame(&mut source).await? {
            received += 1;
            bar.inc(1);
            let receipt = message.receipt.unwrap_or_default();
            send(&mut sink, ClientFrame::Ack(AckFrame { receipt })).await?;
            if received % top_up == 0 {
                let n = u32::try_from(top_up).unwrap_or(u32::MAX);
                send(&mut sink, ClientFrame::Credit(CreditFrame { id: "bench".to_string(), n })).await?;
            }
        }
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let _ = sink.close().await;
    Ok(BenchResult {
        scenario: "consume",
        messages: received,
        bytes: received * args.size,
        elapsed,
        latency: None,
        behind: None,
        lost: None,
    })
}

async fn e2e(conn: &Conn, topic: &str, args: &BenchArgs) -> Result<BenchResult, ClientError> {
    let rate = args.rate.max(1);
    let total = (u64::from(rate) * args.secs.max(1)) as usize;
    let epoch = Instant::now();
    // The subscriber first, so that nothing waits for it.
    let (mut sub_sink, mut sub_source) = connect(conn).await?;
    send(&mut sub_sink, subscribe_frame(topic, args.prefetch)).await?;
    loop {
        if let ServerFrame::Subscribed { .. } = next_frame(&mut sub_source).await? {
            break;
        }
    }
    let bar = progress("e2e", total as u64);
    let receiver_bar = bar.clone();
    let warmup = Duration::from_secs(1).as_micros() as u64;
    let receiver = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(total);
        let mut received = 0usize;
        while received < total {
            let frame = match tokio::time::timeout(Duration::from_secs(10), next_frame(&mut sub_source)).await {
                Ok(frame) => frame?,
                Err(_) => break,
            };
            if let ServerFrame::Message { message, .. } = frame {
                let now = epoch.elapsed().as_micros() as u64;
                if let Some(stamp) = stamp_of(message.body.as_deref()) {
                    if stamp >= warmup {
                        latencies.push(now.saturating_sub(stamp));
                    }
                }
                received += 1;
                receiver_bar.inc(1);
                let receipt = message.receipt.unwrap_or_default();
                send(&mut sub_sink, ClientFrame::Ack(AckFrame { receipt })).await?;
            }
        }
        let _ = sub_sink.close().await;
        Ok::<_, ClientError>((received, latencies))
    });

    // The producer: one publish every 1/rate s, at most 1,000 in flight.
    let (mut sink, mut source) = connect(conn).await?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let started = Instant::now();
    let (mut sent, mut acked) = (0usize, 0usize);
    while sent < total {
        let due = started + interval.mul_f64(sent as f64);
        let now = Instant::now();
        if due > now {
            tokio::time::sleep(due - now).await;
        }
        while sent - acked >= 1000 {
            if let ServerFrame::Published { .. } = next_frame(&mut source).await? {
                acked += 1;
            }
        }
        send(&mut sink, publish_frame(sent.to_string(), topic, stamped_body(args.size, epoch))).await?;
        sent += 1;
    }
    let behind = started.elapsed().saturating_sub(interval.mul_f64(total as f64));
    while acked < sent {
        if let ServerFrame::Published { .. } = next_frame(&mut source).await? {
            acked += 1;
        }
    }
    let _ = sink.close().await;
    let (received, latencies) =
        receiver.await.map_err(|e| ClientError::Usage(format!("the e2e consumer failed: {e}")))??;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(BenchResult {
        scenario: "e2e",
        messages: received,
        bytes: received * args.size,
        elapsed,
        latency: Some(Percentiles::of(latencies)),
        behind: Some(behind),
        lost: Some(sent.saturating_sub(received)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ranked_sample() {
        let samples: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let p = Percentiles::of(samples);
        assert_eq!((p.p50, p.p99, p.p999), (500.0, 990.0, 999.0));
        assert_eq!(Percentiles::of(Vec::new()), Percentiles::default());
        assert_eq!(Percentiles::of(vec![7000]).p999, 7.0);
    }

    #[test]
    fn bodies_carry_their_send_time() {
        let epoch = Instant::now() - Duration::from_millis(5);
        let body = stamped_body(1024, epoch);
        assert_eq!(body.len(), 1024);
        let stamp = stamp_of(Some(&body)).expect("stamped");
        assert!(stamp >= 5000, "{stamp}");
        assert_eq!(stamp_of(Some("short")), None);
        assert_eq!(stamp_of(None), None);
    }
}
