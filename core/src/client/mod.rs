//! The client: producers, consumers and rebalance, behind a [`Transport`].
//!
//! One [`Client`] per process and broker: [`Client::embedded`] runs a broker in this process
//! on a local directory ([`EmbeddedTransport`]); [`Client::connect`] talks to a running gateway
//! ([`RemoteTransport`]). From it come the
//! [`Producer`], the [`TransactionProducer`], the [`PushConsumer`] (group member with
//! rebalancing, listener or stream), the [`SimpleConsumer`] (leases and receipts) and the
//! [`Admin`]. The same calls, in each language's idiom, are what every SDK wraps.
//!
//! This module owns the member logic (heartbeats, rebalance, pulling, offsets, retries on the
//! consumer side). It knows nothing of files or HTTP: the broker's meaning lives in
//! [`crate::broker`], the wire in the transports.
//!
//! ```
//! # async fn demo() -> ferrymq_core::Result<()> {
//! use ferrymq_core::client::{Client, MessageBuilder};
//!
//! let dir = tempfile::tempdir().expect("temp dir");
//! let client = Client::embedded(dir.path()).await?;
//! let producer = client.producer(None);
//! let sent = producer.send("orders", MessageBuilder::new("hello").tag("new")).await?;
//! assert_eq!(sent.queue_offset, Some(0));
//! client.close().await?;
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod admin;
mod embedded;
mod message;
mod process_queue;
mod producer;
mod push_consumer;
pub mod rebalance;
#[cfg(feature = "remote")]
mod remote;
mod simple_consumer;
mod transaction;
mod transport;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub use admin::Admin;
pub use embedded::EmbeddedTransport;
pub use message::MessageBuilder;
pub use producer::{Producer, DEFAULT_SEND_RETRIES};
pub use push_consumer::{
    BatchVerdicts, Listener, ListenerError, PushConsumer, PushConsumerOptions, Rebalance, RebalanceListener,
    RebalanceReports, ReceivedMessage, DEFAULT_REBALANCE_INTERVAL,
};
pub use rebalance::{Member, QueueRef, Strategy};
#[cfg(feature = "remote")]
pub use remote::{
    tls_config, ConnectionEvent, ConnectionListener, RemoteOptions, RemoteTransport, DEFAULT_RECONNECT_BACKOFF,
    DEFAULT_RECONNECT_BACKOFF_MAX,
};
pub use simple_consumer::{SimpleConsumer, DEFAULT_INVISIBLE, DEFAULT_MAX_MESSAGES};
pub use transaction::{TransactionChecker, TransactionProducer};
pub use transport::{BrokerTimings, FindQuery, Transport};

/// The broker's types that the client's calls take and return, re-exported so that an SDK
/// binding needs nothing but this module: messages, results, filters, positions and the
/// embedded broker's configuration.
pub use crate::broker::{
    BrokerConfig, ConsumeMode, Delay, FilterSpec, GroupDetail, GroupOffset, MemberInfo, MemberTransport, Message,
    MessageState, OutgoingMessage, Perm, QueueOffsets, ResetTarget, SendResult, StartPosition, Subscription,
    TopicDetail, TopicInfo, TransactionCheck, TransactionOutcome, TransactionResolution, TransactionStatus,
};
pub use crate::store::FlushMode;

use crate::Result;

/// A connection to one broker, embedded or remote; the factory of producers and consumers.
///
/// Cheap to clone: clones share the transport. [`Client::close`] closes the push consumers it
/// made, then the transport (an embedded broker shuts down cleanly).
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    transport: Arc<dyn Transport>,
    /// `host@pid#instance`: client ids are this plus a counter.
    id_prefix: String,
    next_id: AtomicU64,
    closed: AtomicBool,
    consumers: Mutex<Vec<Weak<push_consumer::Inner>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.inner.transport.name())
            .field("id_prefix", &self.inner.id_prefix)
            .finish()
    }
}

impl Client {
    /// Opens a broker in this process on `path` (created if missing, recovered if it holds
    /// data) with the default configuration.
    pub async fn embedded(path: impl Into<PathBuf>) -> Result<Client> {
        Client::embedded_with(BrokerConfig::new(path)).await
    }

    /// Opens a broker in this process with `config`.
    pub async fn embedded_with(config: BrokerConfig) -> Result<Client> {
        Ok(Client::with_transport(Arc::new(EmbeddedTransport::open(config).await?)))
    }

    /// Connects to a gateway at `url` (`http://host:port`) with default options.
    /// [`crate::Error::Connection`] when it cannot be reached. Needs the `remote` feature
    /// (on by default).
    #[cfg(feature = "remote")]
    pub async fn connect(url: &str) -> Result<Client> {
        Client::connect_with(url, RemoteOptions::default()).await
    }

    /// Connects to a gateway with a token, timeouts and the gateway's timing settings.
    ///
    /// The client keeps its connection up by itself: when it drops, it reconnects with
    /// exponential backoff and jitter and registers its producer groups and push consumers
    /// again, while sends wait for it up to the request timeout (then fail with
    /// [`crate::Error::Unavailable`]). To observe it, set [`RemoteOptions::on_connection`]:
    ///
    /// ```no_run
    /// # async fn demo() -> ferrymq_core::Result<()> {
    /// use ferrymq_core::client::{Client, ConnectionEvent, ConnectionListener, RemoteOptions};
    ///
    /// let options = RemoteOptions {
    ///     on_connection: Some(ConnectionListener::new(|event: &ConnectionEvent| match event {
    ///         ConnectionEvent::Dropped { error } => eprintln!("connection lost: {error}"),
    ///         ConnectionEvent::Restored => eprintln!("connection restored"),
    ///         _ => {}
    ///     })),
    ///     ..RemoteOptions::default()
    /// };
    /// let client = Client::connect_with("http://127.0.0.1:8080", options).await?;
    /// # client.close().await
    /// # }
    /// ```
    #[cfg(feature = "remote")]
    pub async fn connect_with(url: &str, options: RemoteOptions) -> Result<Client> {
        Ok(Client::with_transport(Arc::new(RemoteTransport::connect(url, options).await?)))
    }

    /// A client over any transport (for instance an [`EmbeddedTransport`] on a broker that a
    /// gateway in the same process serves too).
    pub fn with_transport(transport: Arc<dyn Transport>) -> Client {
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
        let id_prefix = format!("{host}@{}#{:08x}", std::process::id(), rand::random::<u32>());
        Client {
            inner: Arc::new(ClientInner {
                transport,
                id_prefix,
                next_id: AtomicU64::new(1),
                closed: AtomicBool::new(false),
                consumers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The transport underneath.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.inner.transport
    }

    /// A fresh client id, unique among this process's members.
    fn new_client_id(&self) -> String {
        format!("{}-{}", self.inner.id_prefix, self.inner.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// A producer, optionally in a producer group.
    pub fn producer(&self, group: Option<&str>) -> Producer {
        Producer::new(self.inner.transport.clone(), group.map(str::to_string))
    }

    /// A transactional producer of `group`; `checker` answers the broker's check-backs about
    /// the group's unresolved transactions.
    pub async fn transaction_producer(
        &self,
        group: &str,
        checker: impl TransactionChecker,
    ) -> Result<TransactionProducer> {
        TransactionProducer::start(self.inner.transport.clone(), group, Arc::new(checker)).await
    }

    /// A push consumer of `topic` in `group`; call [`PushConsumer::start`] to begin.
    pub fn push_consumer(&self, group: &str, topic: &str, options: PushConsumerOptions) -> Result<PushConsumer> {
        let consumer = PushConsumer::new(self.inner.transport.clone(), group, topic, self.new_client_id(), options)?;
        let mut consumers = self.inner.consumers.lock().unwrap_or_else(|e| e.into_inner());
        consumers.retain(|c| c.strong_count() > 0);
        consumers.push(consumer.closer());
        Ok(consumer)
    }

    /// A lease-based consumer of `topic` in `group`, with a tag or SQL filter.
    pub fn simple_consumer(&self, group: &str, topic: &str, filter: FilterSpec) -> Result<SimpleConsumer> {
        SimpleConsumer::new(self.inner.transport.clone(), group, topic, filter, self.new_client_id())
    }

    /// Administration: topics, groups, offsets, dead letters, lookups.
    pub fn admin(&self) -> Admin {
        Admin::new(self.inner.transport.clone())
    }

    /// Closes the push consumers made by this client (committing their offsets), then the
    /// transport. Idempotent.
    pub async fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let consumers: Vec<_> = std::mem::take(&mut *self.inner.consumers.lock().unwrap_or_else(|e| e.into_inner()));
        for consumer in consumers.into_iter().filter_map(|c| c.upgrade()) {
            if let Err(e) = consumer.close().await {
                tracing::warn!(error = %e, "closing a push consumer failed");
            }
        }
        self.inner.transport.close().await
    }
}
