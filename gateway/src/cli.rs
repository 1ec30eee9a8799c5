//! The command line: `ferrymq serve` and the client subcommands (`produce`, `consume`, `topic`,
//! `group`, `message`) that talk to a running server over REST and print JSON.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ferrymq_proto::consume::{AckBody, ReceiveBody};
use ferrymq_proto::group::{self as wire_group, ResetBody};
use ferrymq_proto::message::PublishMessage;
use ferrymq_proto::topic::{CreateTopic, PermOut};
use serde::Serialize;
use serde_json::Value;

/// Default server URL of the client subcommands.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// FerryMQ: a message broker in the RocketMQ family.
#[derive(Debug, Parser)]
#[command(name = "ferrymq", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    #[command(after_help = "Configuration keys, with their defaults, bounds and meaning: `ferrymq config`.")]
    Serve(ServeArgs),
    /// Publish messages (the body argument, or one message per line of stdin).
    Produce(ProduceArgs),
    /// Receive messages for a group and print them as JSON lines, acknowledging each.
    Consume(ConsumeArgs),
    /// Manage topics.
    Topic {
        /// Connection.
        #[command(flatten)]
        conn: Conn,
        /// What to do.
        #[command(subcommand)]
        command: TopicCommand,
    },
    /// Inspect consumer groups and move their offsets.
    Group {
        /// Connection.
        #[command(flatten)]
        conn: Conn,
        /// What to do.
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Measure throughput against a running server.
    Bench(crate::bench::BenchArgs),
    /// Look messages up.
    Message {
        /// Connection.
        #[command(flatten)]
        conn: Conn,
        /// What to do.
        #[command(subcommand)]
        command: MessageCommand,
    },
    /// List the configuration keys of `ferrymq serve`: type, default, bounds and meaning.
    Config,
}

/// `ferrymq serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory.
    #[arg(long, env = "FERRYMQ_DATA_DIR", default_value = "./ferrymq-data")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "FERRYMQ_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// TOML configuration file (flat keys).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// One `key=value` setting; repeatable; beats the environment and the file (keys: `ferrymq config`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Start even if records below the durable position are damaged: copy each damaged record
    /// to `<data-dir>/quarantine/`, keep every intact one, log what was removed. Without it the
    /// server refuses to start on such damage, naming the file and offset.
    #[arg(long)]
    pub repair: bool,
}

/// Where the server is.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Server URL.
    #[arg(long, env = "FERRYMQ_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// Bearer token.
    #[arg(long, env = "FERRYMQ_TOKEN", global = true)]
    pub token: Option<String>,
    /// For https:// URLs: PEM file of the certificate authorities to trust instead of the
    /// system's roots.
    #[arg(long, env = "FERRYMQ_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

/// `ferrymq produce` options.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
    /// Topic.
    pub topic: String,
    /// Body; without it, every line of stdin is one message.
    pub body: Option<String>,
    /// Tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Key (repeatable).
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// Property `name=value` (repeatable).
    #[arg(long = "prop", value_name = "NAME=VALUE")]
    pub props: Vec<String>,
    /// Delay in milliseconds.
    #[arg(long)]
    pub delay_ms: Option<u64>,
    /// Delay level.
    #[arg(long)]
    pub delay_level: Option<u32>,
    /// Sharding key (FIFO group).
    #[arg(long)]
    pub sharding_key: Option<String>,
}

/// `ferrymq consume` options.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Tag expression.
    #[arg(long)]
    pub filter: Option<String>,
    /// SQL92 filter.
    #[arg(long, conflicts_with = "filter")]
    pub sql: Option<String>,
    /// Stop after this many messages (default: run until interrupted).
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop when a receive waiting this long brings nothing.
    #[arg(long, default_value_t = 5000)]
    pub wait_ms: u64,
    /// Keep running after an empty receive.
    #[arg(long)]
    pub follow: bool,
    /// Do not acknowledge (messages come back after their lease).
    #[arg(long)]
    pub no_ack: bool,
}

/// `ferrymq topic ...`
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Name.
        name: String,
        /// Number of queues.
        #[arg(long)]
        queues: Option<u32>,
        /// Permission.
        #[arg(long, value_parser = ["rw", "r", "w"])]
        perm: Option<String>,
    },
    /// List topics.
    List,
}

/// Where a reset goes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ResetTo {
    /// The earliest retained message.
    Earliest,
    /// Past everything stored so far.
    Latest,
}

/// `ferrymq group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Show a group (or list every group without a name).
    Show {
        /// Group.
        name: Option<String>,
    },
    /// Move a group's offsets on a topic.
    Reset {
        /// Group.
        name: String,
        /// Topic.
        #[arg(long)]
        topic: String,
        /// First message stored at or after this epoch-ms time.
        #[arg(long, conflicts_with = "to")]
        timestamp: Option<u64>,
        /// `earliest` or `latest`.
        #[arg(long)]
        to: Option<ResetTo>,
    },
}

/// `ferrymq message ...`
#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Look a message up by id.
    Get {
        /// Message id.
        msg_id: String,
    },
    /// Find a topic's messages by key and time.
    Find {
        /// Topic.
        topic: String,
        /// Key.
        #[arg(long)]
        key: Option<String>,
        /// From this epoch-ms time (inclusive).
        #[arg(long)]
        from_ts: Option<u64>,
        /// To this epoch-ms time (exclusive).
        #[arg(long)]
        to_ts: Option<u64>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
}

/// A failed client command: the server's problem, or a transport error.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{status}: {detail}")]
    Problem {
        /// HTTP status.
        status: u16,
        /// The problem's detail (or the body).
        detail: String,
    },
    /// The request did not get an answer.
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// Bad local input.
    #[error("{0}")]
    Usage(String),
    /// stdin or stdout failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<reqwest::Error> for ClientError {
    /// Keeps the causes ("invalid peer certificate: UnknownIssuer"), which reqwest's own
    /// message leaves out.
    fn from(err: reqwest::Error) -> Self {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        ClientError::Transport(text)
    }
}

/// A small REST client for the subcommands.
pub struct RestClient {
    http: reqwest::Client,
    conn: Conn,
    /// Why the TLS settings (`--ca-file`) are unusable; reported on the first https request.
    tls_error: Option<String>,
}

impl RestClient {
    /// A client for `conn`.
    pub fn new(conn: Conn) -> Self {
        let (http, tls_error) = match ferrymq_core::client::tls_config(conn.ca_file.as_deref()) {
            Ok(tls) => {
                (reqwest::Client::builder().use_preconfigured_tls(rustls::ClientConfig::clone(&tls)).build(), None)
            }
            Err(err) => (reqwest::Client::builder().build(), Some(err.to_string())),
        };
        RestClient { http: http.unwrap_or_default(), conn, tls_error }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.conn.url.trim_end_matches('/'))
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        if let (Some(err), true) = (&self.tls_error, self.conn.url.starts_with("https://")) {
            return Err(ClientError::Usage(format!("TLS: {err}")));
        }
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = &self.conn.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("detail").and_then(Value::as_str).map(String::from))
                .unwrap_or(text);
            return Err(ClientError::Problem { status: status.as_u16(), detail });
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Usage(format!("the server sent invalid JSON: {e}")))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body (one of the contract's request types).
    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<Value, ClientError> {
        let body = serde_json::to_value(body).map_err(|e| ClientError::Usage(format!("unencodable request: {e}")))?;
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

/// Percent-encodes one path segment.
fn seg(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

fn print(value: &Value) -> Result<(), ClientError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(value).unwrap_or_default())?;
    Ok(())
}

/// Runs a client subcommand (everything but `serve`).
pub async fn run_client(command: Command) -> Result<(), ClientError> {
    match command {
        Command::Serve(_) => Err(ClientError::Usage("serve is not a client command".to_string())),
        Command::Config => {
            print!("{}", crate::config::describe_keys());
            Ok(())
        }
        Command::Produce(args) => produce(args).await,
        Command::Bench(args) => {
            for result in crate::bench::run(&args).await? {
                println!("size={} {result}", args.size);
            }
            Ok(())
        }
        Command::Consume(args) => consume(args).await,
        Command::Topic { conn, command } => {
            let client = RestClient::new(conn);
            let value = match command {
                TopicCommand::Create { name, queues, perm } => {
                    let perm = match perm.as_deref() {
                        Some("r") => Some(PermOut::Read),
                        Some("w") => Some(PermOut::Write),
                        Some(_) => Some(PermOut::ReadWrite),
                        None => None,
                    };
                    client.post("/v1/topics", &CreateTopic { name, queues, perm }).await?
                }
                TopicCommand::List => client.get("/v1/topics").await?,
            };
            print(&value)
        }
        Command::Group { conn, command } => {
            let client = RestClient::new(conn);
            let value = match command {
                GroupCommand::Show { name: Some(name) } => client.get(&format!("/v1/groups/{}", seg(&name))).await?,
                GroupCommand::Show { name: None } => client.get("/v1/groups").await?,
                GroupCommand::Reset { name, topic, timestamp, to } => {
                    let body = match (timestamp, to) {
                        (Some(ts), _) => ResetBody { topic, timestamp: Some(ts), to: None },
                        (None, Some(ResetTo::Earliest)) => {
                            ResetBody { topic, timestamp: None, to: Some(wire_group::ResetTo::Earliest) }
                        }
                        (None, Some(ResetTo::Latest)) => {
                            ResetBody { topic, timestamp: None, to: Some(wire_group::ResetTo::Latest) }
                        }
                        (None, None) => return Err(ClientError::Usage("give --timestamp or --to".to_string())),
                    };
                    client.post(&format!("/v1/groups/{}/offsets/reset", seg(&name)), &body).await?
                }
            };
            print(&value)
        }
        Command::Message { conn, command } => {
            let client = RestClient::new(conn);
            let value = match command {
                MessageCommand::Get { msg_id } => client.get(&format!("/v1/messages/{}", seg(&msg_id))).await?,
                MessageCommand::Find { topic, key, from_ts, to_ts, limit } => {
                    let mut query = form_urlencoded::Serializer::new(String::new());
                    if let Some(key) = key {
                        query.append_pair("key", &key);
                    }
                    for (name, value) in [("from_ts", from_ts), ("to_ts", to_ts), ("limit", limit.map(u64::from))] {
                        if let Some(value) = value {
                            query.append_pair(name, &value.to_string());
                        }
                    }
                    client.get(&format!("/v1/topics/{}/messages?{}", seg(&topic), query.finish())).await?
                }
            };
            print(&value)
        }
    }
}

async fn produce(args: ProduceArgs) -> Result<(), ClientError> {
    let client = RestClient::new(args.conn.clone());
    let mut properties = std::collections::BTreeMap::new();
    for prop in &args.props {
        let (name, value) =
            prop.split_once('=').ok_or_else(|| ClientError::Usage(format!("--prop {prop:?} is not NAME=VALUE")))?;
        properties.insert(name.to_string(), value.to_string());
    }
    let message = |body: String| PublishMessage {
        body: Some(body),
        tag: args.tag.clone(),
        keys: args.keys.clone(),
        properties: properties.clone(),
        delay_level: args.delay_level,
        delay_ms: args.delay_ms,
        sharding_key: args.sharding_key.clone(),
        ..PublishMessage::default()
    };
    let path = format!("/v1/topics/{}/messages", seg(&args.topic));
    match &args.body {
        Some(body) => print(&client.post(&path, &message(body.clone())).await?),
        None => {
            let lines: Vec<String> = std::io::stdin().lock().lines().collect::<Result<_, _>>()?;
            for line in lines {
                let result = client.post(&path, &message(line)).await?;
                println!("{}", serde_json::to_string(&result).unwrap_or_default());
            }
            Ok(())
        }
    }
}

async fn consume(args: ConsumeArgs) -> Result<(), ClientError> {
    let client = RestClient::new(args.conn.clone());
    let path = format!("/v1/groups/{}", seg(&args.group));
    let mut seen = 0usize;
    loop {
        let remaining = args.count.map_or(100, |c| c.saturating_sub(seen).min(100));
        if remaining == 0 {
            return Ok(());
        }
        let request = ReceiveBody {
            topic: args.topic.clone(),
            filter: args.filter.clone(),
            sql: args.sql.clone(),
            max_messages: Some(u32::try_from(remaining).unwrap_or(100)),
            wait_ms: Some(args.wait_ms.min(30_000)),
            invisible_ms: None,
        };
        let received = client.post(&format!("{path}/receive"), &request).await?;
        let messages = received.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
        if messages.is_empty() && !args.follow {
            return Ok(());
        }
        let mut receipts = Vec::new();
        for message in &messages {
            println!("{}", serde_json::to_string(message).unwrap_or_default());
            if let Some(receipt) = message.get("receipt").and_then(Value::as_str) {
                receipts.push(receipt.to_string());
            }
        }
        seen += messages.len();
        if !args.no_ack && !receipts.is_empty() {
            client.post(&format!("{path}/ack"), &AckBody { receipts }).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses_serve_with_sets() {
        let cli =
            Cli::try_parse_from(["ferrymq", "serve", "--set", "flush=sync", "--set", "lease_ttl=5s"]).expect("parses");
        let Command::Serve(args) = cli.command else { panic!("not serve") };
        assert_eq!(args.set, vec!["flush=sync", "lease_ttl=5s"]);
    }

    #[test]
    fn cli_parses_group_reset() {
        let cli = Cli::try_parse_from(["ferrymq", "group", "reset", "g", "--topic", "t", "--to", "earliest"])
            .expect("parses");
        assert!(matches!(cli.command, Command::Group { command: GroupCommand::Reset { .. }, .. }));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }
}
