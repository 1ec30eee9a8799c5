//! [`EmbeddedTransport`]: the broker runs in this process, on a local directory, and every
//! client operation is a direct call into it. No serialization, no sockets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use super::transport::{closed, BrokerTimings, FindQuery, Transport};
use crate::broker::{
    Broker, BrokerConfig, GroupDetail, MemberInfo, MemberTransport, Message, OutgoingMessage, Perm, PullRequest,
    PullResult, ReceiptFailure, ReceiveRequest, ResetTarget, SendResult, Subscription, TopicDetail, TopicInfo,
    TransactionCheck, TransactionOutcome, TransactionResolution,
};
use crate::Result;

/// Check-backs buffered per registered producer before the broker's feed is read again.
const CHECK_BUFFER: usize = 256;

/// A transport to a broker in this process. Once closed (clones share the state), every
/// operation fails with [`crate::Error::Connection`], as a closed remote client's do.
#[derive(Clone, Debug)]
pub struct EmbeddedTransport {
    broker: Arc<Broker>,
    closed: Arc<AtomicBool>,
}

impl EmbeddedTransport {
    /// Opens a broker with `config` (recovering its directory) and wraps it.
    pub async fn open(config: BrokerConfig) -> Result<Self> {
        Ok(Self::new(Broker::open(config).await?))
    }

    /// Wraps a broker that is already open (shared with, say, a gateway in the same process).
    pub fn new(broker: Arc<Broker>) -> Self {
        EmbeddedTransport { broker, closed: Arc::default() }
    }

    /// The broker underneath.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// The broker, unless the transport is closed.
    fn live(&self) -> Result<&Broker> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        Ok(&self.broker)
    }

    /// Runs an asynchronous broker operation, unless the transport is closed.
    fn run<'a, T: Send + 'a>(
        &'a self,
        op: impl FnOnce(&'a Broker) -> BoxFuture<'a, Result<T>>,
    ) -> BoxFuture<'a, Result<T>> {
        match self.live() {
            Ok(broker) => op(broker),
            Err(e) => futures::future::ready(Err(e)).boxed(),
        }
    }

    /// Runs a synchronous broker operation now, unless the transport is closed.
    fn now<'a, T: Send + 'a>(&self, op: impl FnOnce(&Broker) -> Result<T>) -> BoxFuture<'a, Result<T>> {
        futures::future::ready(self.live().and_then(op)).boxed()
    }
}

impl Transport for EmbeddedTransport {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn timings(&self) -> BrokerTimings {
        let c = self.broker.config();
        BrokerTimings {
            lease_ttl: c.lease_ttl,
            orderly_suspend: c.orderly_suspend,
            max_reconsume_times: c.max_reconsume_times,
        }
    }

    fn send<'a>(&'a self, topic: &'a str, message: OutgoingMessage) -> BoxFuture<'a, Result<SendResult>> {
        self.run(|b| b.send(topic, message).boxed())
    }

    fn send_batch<'a>(
        &'a self,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<SendResult>>> {
        self.run(|b| b.send_batch(topic, messages, None).boxed())
    }

    fn end_transaction<'a>(
        &'a self,
        transaction_id: &'a str,
        resolution: TransactionResolution,
    ) -> BoxFuture<'a, Result<TransactionOutcome>> {
        self.run(|b| b.end_transaction(transaction_id, resolution).boxed())
    }

    fn transaction_checks<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<mpsc::Receiver<TransactionCheck>>> {
        let live = self.live().map(|b| b.transaction_checks());
        let group = group.to_string();
        async move {
            let mut feed = live?;
            crate::broker::validate_group_name(&group)?;
            let (tx, rx) = mpsc::channel(CHECK_BUFFER);
            // Forwards this group's checks until the producer drops its receiver. The broker's
            // feed never closes while the broker lives, so the task watches the receiver too.
            tokio::spawn(async move {
                loop {
                    let check = tokio::select! {
                        c = feed.recv() => c,
                        _ = tx.closed() => return,
                    };
                    match check {
                        Ok(check) if check.producer_group == group => {
                            if tx.send(check).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(n)) => {
                            // Missed checks come again at the next check interval.
                            tracing::warn!(group = %group, missed = n, "transaction checks lagged");
                        }
                        Err(RecvError::Closed) => return,
                    }
                }
            });
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
        self.now(|b| b.heartbeat(group, client_id, MemberTransport::Native, subscriptions))
    }

    fn members<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Vec<MemberInfo>>> {
        self.now(|b| Ok(b.members(group)))
    }

    fn watch_membership(&self) -> Option<watch::Receiver<u64>> {
        Some(self.broker.watch_membership())
    }

    fn release_client<'a>(&'a self, group: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<()>> {
        self.now(|b| {
            b.release_client(group, client_id);
            Ok(())
        })
    }

    fn pull(&self, request: PullRequest) -> BoxFuture<'_, Result<PullResult>> {
        self.run(|b| b.pull(request).boxed())
    }

    fn commit_offset<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
        offset: u64,
    ) -> BoxFuture<'a, Result<()>> {
        self.now(|b| b.commit_offset(group, topic, queue_id, offset))
    }

    fn committed_offset<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
    ) -> BoxFuture<'a, Result<Option<u64>>> {
        self.now(|b| Ok(b.committed_offset(group, topic, queue_id)))
    }

    fn lock_queue<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        self.now(|b| b.lock_queue(group, topic, queue_id, client_id))
    }

    fn unlock_queue<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        self.now(|b| {
            b.unlock_queue(group, topic, queue_id, client_id);
            Ok(())
        })
    }

    fn send_back<'a>(
        &'a self,
        group: &'a str,
        message: &'a Message,
        delay: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        self.run(|b| b.send_message_back(group, message, delay).boxed())
    }

    fn receive(&self, request: ReceiveRequest) -> BoxFuture<'_, Result<Vec<Message>>> {
        self.run(|b| b.receive(request).boxed())
    }

    fn ack<'a>(&'a self, group: &'a str, receipt: &'a str) -> BoxFuture<'a, Result<Result<(), ReceiptFailure>>> {
        self.run(|b| b.ack(group, receipt).boxed())
    }

    fn nack<'a>(
        &'a self,
        group: &'a str,
        receipt: &'a str,
        delay: Option<Duration>,
    ) -> BoxFuture<'a, Result<Result<(), ReceiptFailure>>> {
        self.run(|b| b.nack(group, receipt, delay).boxed())
    }

    fn change_invisible<'a>(
        &'a self,
        group: &'a str,
        receipt: &'a str,
        invisible: Duration,
    ) -> BoxFuture<'a, Result<String>> {
        self.run(|b| b.change_invisible(group, receipt, invisible).boxed())
    }

    fn create_topic<'a>(
        &'a self,
        name: &'a str,
        queues: Option<u32>,
        perm: Option<Perm>,
    ) -> BoxFuture<'a, Result<TopicInfo>> {
        self.now(|b| b.create_topic(name, queues, perm))
    }

    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        self.run(|b| b.delete_topic(name).boxed())
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<TopicInfo>>> {
        self.now(|b| Ok(b.topics()))
    }

    fn topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<TopicDetail>> {
        self.now(|b| b.topic(name))
    }

    fn group<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<GroupDetail>> {
        self.now(|b| b.group(name))
    }

    fn put_group<'a>(&'a self, name: &'a str, max_reconsume_times: Option<u32>) -> BoxFuture<'a, Result<GroupDetail>> {
        self.now(|b| b.put_group(name, max_reconsume_times))
    }

    fn reset_offsets<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        target: ResetTarget,
    ) -> BoxFuture<'a, Result<Vec<(u32, u64)>>> {
        self.run(|b| b.reset_offsets(group, topic, target).boxed())
    }

    fn dlq<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Vec<Message>>> {
        self.run(|b| b.dlq(group).boxed())
    }

    fn resend_dlq<'a>(&'a self, group: &'a str, msg_id: &'a str) -> BoxFuture<'a, Result<SendResult>> {
        self.run(|b| b.resend_dlq(group, msg_id).boxed())
    }

    fn find_messages<'a>(&'a self, topic: &'a str, query: FindQuery) -> BoxFuture<'a, Result<Vec<Message>>> {
        self.run(|b| {
            async move {
                let limit = query.limit.unwrap_or(100);
                b.find_messages(topic, query.key.as_deref(), query.from_ts, query.to_ts, limit).await
            }
            .boxed()
        })
    }

    fn message<'a>(&'a self, msg_id: &'a str) -> BoxFuture<'a, Result<Message>> {
        self.run(|b| b.message(msg_id).boxed())
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        // Marked first: nothing new starts on a broker that is shutting down.
        self.closed.store(true, Ordering::Release);
        self.broker.shutdown().boxed()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
