//! The [`Transport`] trait: every broker operation the client needs, as one object-safe,
//! async interface with two implementations, [`EmbeddedTransport`](super::EmbeddedTransport)
//! (a broker in this process) and [`RemoteTransport`](super::RemoteTransport) (a gateway).
//!
//! The producer, the consumers and the admin only ever talk to a `dyn Transport`; they know
//! nothing of where the broker runs. The methods mirror the broker's own API so that the
//! embedded implementation is a thin forwarding layer and the remote one a faithful encoding.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use crate::broker::{
    GroupDetail, MemberInfo, Message, OutgoingMessage, Perm, PullRequest, PullResult, ReceiptFailure, ReceiveRequest,
    ResetTarget, SendResult, Subscription, TopicDetail, TopicInfo, TransactionCheck, TransactionOutcome,
    TransactionResolution,
};
use crate::Result;

/// A lookup of messages by key and store time, as `Admin::find_messages` takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FindQuery {
    /// Only messages with this key.
    pub key: Option<String>,
    /// Stored at or after this epoch-ms time.
    pub from_ts: Option<u64>,
    /// Stored before this epoch-ms time.
    pub to_ts: Option<u64>,
    /// At most this many (1 to 1000; 100 when `None`).
    pub limit: Option<usize>,
}

/// Timing settings of the broker behind a transport, which consumers align with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerTimings {
    /// Expiry of members and of orderly queue leases: consumers heartbeat and renew their
    /// leases three times per `lease_ttl`.
    pub lease_ttl: Duration,
    /// How long an orderly consumer pauses a queue after a failed message.
    pub orderly_suspend: Duration,
    /// Deliveries after the first before a failing message goes to the dead-letter queue,
    /// for groups that do not set their own.
    pub max_reconsume_times: u32,
}

impl Default for BrokerTimings {
    /// The broker's defaults, from the configuration table.
    fn default() -> Self {
        use crate::config as keys;
        BrokerTimings {
            lease_ttl: keys::LEASE_TTL.default(),
            orderly_suspend: keys::ORDERLY_SUSPEND.default(),
            max_reconsume_times: keys::MAX_RECONSUME_TIMES.default(),
        }
    }
}

/// How a client reaches a broker.
///
/// Object safe: every async method returns a boxed future, so the client holds an
/// `Arc<dyn Transport>`. Arguments are borrowed for the life of the returned future.
pub trait Transport: Send + Sync + 'static {
    /// A short name for logs: `embedded` or `remote`.
    fn name(&self) -> &'static str;

    /// The broker's timing settings (lease expiry, orderly suspension).
    fn timings(&self) -> BrokerTimings;

    /// Whether [`Transport::send_back`] works. Without it, push consumers retry failed
    /// messages in place and leave the group's retry queue alone.
    fn supports_send_back(&self) -> bool {
        true
    }

    // ----- producing -----

    /// Publishes one message.
    fn send<'a>(&'a self, topic: &'a str, message: OutgoingMessage) -> BoxFuture<'a, Result<SendResult>>;

    /// Publishes a batch atomically; results come in the same order.
    fn send_batch<'a>(
        &'a self,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<SendResult>>>;

    /// Commits or rolls back a transaction.
    fn end_transaction<'a>(
        &'a self,
        transaction_id: &'a str,
        resolution: TransactionResolution,
    ) -> BoxFuture<'a, Result<TransactionOutcome>>;

    /// Registers this client as a producer of `group` and returns the check-backs the broker
    /// sends that group. The channel closes when the transport closes; dropping the receiver
    /// unregisters.
    fn transaction_checks<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<mpsc::Receiver<TransactionCheck>>>;

    // ----- group membership -----

    /// Registers or refreshes `client_id` as a member of `group` with its subscriptions.
    fn heartbeat<'a>(
        &'a self,
        group: &'a str,
        client_id: &'a str,
        subscriptions: Vec<Subscription>,
    ) -> BoxFuture<'a, Result<()>>;

    /// The live members of `group`.
    fn members<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Vec<MemberInfo>>>;

    /// A counter that moves when some group's membership changes, if the transport can tell;
    /// consumers then rebalance at once instead of at their next heartbeat.
    fn watch_membership(&self) -> Option<watch::Receiver<u64>>;

    /// `client_id` leaves `group` at once; its queue leases are released.
    fn release_client<'a>(&'a self, group: &'a str, client_id: &'a str) -> BoxFuture<'a, Result<()>>;

    // ----- pull consumption -----

    /// Pulls one queue from an offset, long polling up to `request.wait`.
    fn pull(&self, request: PullRequest) -> BoxFuture<'_, Result<PullResult>>;

    /// Stores the group's next offset to consume on a queue.
    fn commit_offset<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
        offset: u64,
    ) -> BoxFuture<'a, Result<()>>;

    /// The group's committed offset of a queue, if it has one.
    fn committed_offset<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
    ) -> BoxFuture<'a, Result<Option<u64>>>;

    /// Takes or renews the orderly lease on a queue; false while another member holds it.
    fn lock_queue<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Releases an orderly lease this member holds.
    fn unlock_queue<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        queue_id: u32,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<()>>;

    /// Sends a pulled message the group failed to consume back through retry: it returns with
    /// `reconsume_times + 1` after `delay` (default: the retry delay), or goes to the
    /// dead-letter queue once `message.reconsume_times` reached the group's maximum.
    fn send_back<'a>(
        &'a self,
        group: &'a str,
        message: &'a Message,
        delay: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;

    // ----- lease consumption -----

    /// Receives messages with receipts (simple consumption).
    fn receive(&self, request: ReceiveRequest) -> BoxFuture<'_, Result<Vec<Message>>>;

    /// Acknowledges a received message; the inner error says why a receipt did not apply.
    fn ack<'a>(&'a self, group: &'a str, receipt: &'a str) -> BoxFuture<'a, Result<Result<(), ReceiptFailure>>>;

    /// Gives a received message back, to return after `delay` (default: the retry delay).
    fn nack<'a>(
        &'a self,
        group: &'a str,
        receipt: &'a str,
        delay: Option<Duration>,
    ) -> BoxFuture<'a, Result<Result<(), ReceiptFailure>>>;

    /// Changes a received message's invisibility; returns its new receipt.
    fn change_invisible<'a>(
        &'a self,
        group: &'a str,
        receipt: &'a str,
        invisible: Duration,
    ) -> BoxFuture<'a, Result<String>>;

    // ----- administration -----

    /// Creates a topic.
    fn create_topic<'a>(
        &'a self,
        name: &'a str,
        queues: Option<u32>,
        perm: Option<Perm>,
    ) -> BoxFuture<'a, Result<TopicInfo>>;

    /// Deletes a topic with its queues and the groups' offsets on it.
    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Every topic.
    fn topics(&self) -> BoxFuture<'_, Result<Vec<TopicInfo>>>;

    /// One topic with its queues' offsets.
    fn topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<TopicDetail>>;

    /// A group in detail.
    fn group<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<GroupDetail>>;

    /// Creates a group or sets its `max_reconsume_times`.
    fn put_group<'a>(&'a self, name: &'a str, max_reconsume_times: Option<u32>) -> BoxFuture<'a, Result<GroupDetail>>;

    /// Moves a group's offsets on a topic; returns `(queue_id, offset)` per queue.
    fn reset_offsets<'a>(
        &'a self,
        group: &'a str,
        topic: &'a str,
        target: ResetTarget,
    ) -> BoxFuture<'a, Result<Vec<(u32, u64)>>>;

    /// The group's dead letters, oldest first.
    fn dlq<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Vec<Message>>>;

    /// Moves a dead letter back to its topic.
    fn resend_dlq<'a>(&'a self, group: &'a str, msg_id: &'a str) -> BoxFuture<'a, Result<SendResult>>;

    /// Messages of a topic by key and store time, oldest first.
    fn find_messages<'a>(&'a self, topic: &'a str, query: FindQuery) -> BoxFuture<'a, Result<Vec<Message>>>;

    /// One message by id, wherever it stands.
    fn message<'a>(&'a self, msg_id: &'a str) -> BoxFuture<'a, Result<Message>>;

    // ----- life cycle -----

    /// Closes the transport: an embedded broker shuts down cleanly, a connection closes.
    /// Idempotent. Every operation after it fails with [`closed`]'s error.
    fn close(&self) -> BoxFuture<'_, Result<()>>;

    /// Whether [`close`](Self::close) has been called (an error then is not worth a retry).
    fn is_closed(&self) -> bool;
}

/// The error of any operation on a closed client, whatever its transport.
pub(super) fn closed() -> crate::Error {
    crate::Error::Connection("the client is closed".into())
}
