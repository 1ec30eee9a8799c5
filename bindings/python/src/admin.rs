//! [`Admin`] and the plain objects it returns: [`Topic`], [`QueueOffsets`], [`Group`],
//! [`Subscription`], [`Member`], [`GroupOffset`].

use std::sync::Arc;

use ferrymq_core::client::{self as broker, ResetTarget};
use ferrymq_core::client::{Admin as CoreAdmin, FindQuery};
use pyo3::prelude::*;

use crate::client::ClientCell;
use crate::errors::{invalid, raise, Outcome};
use crate::message::{Message, SendResult};
use crate::runtime;

/// A topic: name, queue count, permission (`"rw"`, `"r"` or `"w"`), and, from
/// `Admin.topic()`, the offsets of each queue (None in listings).
#[pyclass(frozen, eq, get_all, module = "ferrymq._native")]
#[derive(Clone, Debug, PartialEq)]
pub struct Topic {
    /// Name.
    pub name: String,
    /// Number of queues.
    pub queues: u32,
    /// Permission: `rw`, `r` or `w`.
    pub perm: String,
    /// Offsets per queue, from `Admin.topic()`.
    pub queue_offsets: Option<Vec<QueueOffsets>>,
}

/// The offsets of one queue: `min` is the lowest retained, `max` the next to be written.
#[pyclass(frozen, eq, get_all, module = "ferrymq._native")]
#[derive(Clone, Debug, PartialEq)]
pub struct QueueOffsets {
    /// Queue id.
    pub queue_id: u32,
    /// Lowest retained offset.
    pub min: u64,
    /// Offset the next message will get.
    pub max: u64,
}

/// A consumer group: its settings, subscriptions, live members and offsets.
#[pyclass(frozen, eq, get_all, module = "ferrymq._native")]
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Name.
    pub group: String,
    /// Redeliveries after which a failing message goes to the dead-letter queue.
    pub max_reconsume_times: u32,
    /// Subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Live members.
    pub members: Vec<Member>,
    /// Committed offset, max and lag per queue.
    pub offsets: Vec<GroupOffset>,
}

/// A subscription of a group: a topic with a tag `filter` or an `sql` filter, and a mode.
#[pyclass(frozen, eq, get_all, module = "ferrymq._native")]
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    /// Topic.
    pub topic: String,
    /// Tag expression, when the filter is one.
    pub filter: Option<String>,
    /// SQL92 expression, when the filter is one.
    pub sql: Option<String>,
    /// `clustering` or `broadcasting`.
    pub mode: String,
}

/// A live member of a group.
#[pyclass(frozen, eq, get_all, module = "ferrymq._native")]
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// Client id, unique within the group.
    pub client_id: String,
    /// `ws`, `rest` or `native`.
    pub transport: String,
    /// When it joined, epoch ms.
    pub since: u64,
}

/// A group's progress on one queue: `lag = max - committed`.
#[pyclass(frozen, eq, get_all, module = "ferrymq._native")]
#[derive(Clone, Debug, PartialEq)]
pub struct GroupOffset {
    /// Topic.
    pub topic: String,
    /// Queue.
    pub queue_id: u32,
    /// First offset not yet consumed.
    pub committed: u64,
    /// Offset the next message will get.
    pub max: u64,
    /// `max - committed`.
    pub lag: u64,
}

/// Python's `repr` of a field value.
trait PyRepr {
    fn py_repr(&self) -> String;
}

impl PyRepr for String {
    fn py_repr(&self) -> String {
        crate::message::py_str_repr(self)
    }
}

impl PyRepr for u32 {
    fn py_repr(&self) -> String {
        self.to_string()
    }
}

impl PyRepr for u64 {
    fn py_repr(&self) -> String {
        self.to_string()
    }
}

impl<T: PyRepr> PyRepr for Option<T> {
    fn py_repr(&self) -> String {
        self.as_ref().map_or_else(|| "None".to_string(), PyRepr::py_repr)
    }
}

impl<T: PyRepr> PyRepr for Vec<T> {
    fn py_repr(&self) -> String {
        format!("[{}]", self.iter().map(PyRepr::py_repr).collect::<Vec<_>>().join(", "))
    }
}

macro_rules! repr {
    ($type:ident, $($field:ident),+) => {
        impl PyRepr for $type {
            fn py_repr(&self) -> String {
                let fields: Vec<String> = vec![$(format!("{}={}", stringify!($field), self.$field.py_repr())),+];
                format!("{}({})", stringify!($type), fields.join(", "))
            }
        }

        #[pymethods]
        impl $type {
            fn __repr__(&self) -> String {
                self.py_repr()
            }
        }
    };
}

repr!(Topic, name, queues, perm, queue_offsets);
repr!(QueueOffsets, queue_id, min, max);
repr!(Group, group, max_reconsume_times, subscriptions, members, offsets);
repr!(Subscription, topic, filter, sql, mode);
repr!(Member, client_id, transport, since);
repr!(GroupOffset, topic, queue_id, committed, max, lag);

impl From<broker::TopicInfo> for Topic {
    fn from(t: broker::TopicInfo) -> Self {
        Topic { name: t.name, queues: t.queues, perm: t.perm.as_str().to_string(), queue_offsets: None }
    }
}

impl From<broker::TopicDetail> for Topic {
    fn from(t: broker::TopicDetail) -> Self {
        let offsets = t.queue_offsets.iter().map(|q| QueueOffsets { queue_id: q.queue_id, min: q.min, max: q.max });
        Topic { queue_offsets: Some(offsets.collect()), ..Topic::from(t.topic) }
    }
}

impl From<broker::GroupDetail> for Group {
    fn from(g: broker::GroupDetail) -> Self {
        Group {
            group: g.group,
            max_reconsume_times: g.max_reconsume_times,
            subscriptions: g
                .subscriptions
                .into_iter()
                .map(|s| {
                    let (filter, sql) = s.filter.into_fields();
                    Subscription { topic: s.topic, filter, sql, mode: s.mode.as_str().to_string() }
                })
                .collect(),
            members: g
                .members
                .into_iter()
                .map(|m| Member { client_id: m.client_id, transport: m.transport.as_str().to_string(), since: m.since })
                .collect(),
            offsets: g
                .offsets
                .into_iter()
                .map(|o| GroupOffset {
                    topic: o.topic,
                    queue_id: o.queue_id,
                    committed: o.committed,
                    max: o.max,
                    lag: o.lag,
                })
                .collect(),
        }
    }
}

/// Administration of the broker behind a client: topics, groups, offsets, dead letters and
/// message lookups. Every method has a private `_<name>_async` twin, wrapped by `ferrymq.aio`.
#[pyclass(frozen, module = "ferrymq._native")]
pub struct Admin {
    admin: CoreAdmin,
    _client: Arc<ClientCell>,
}

impl Admin {
    pub fn new(client: Arc<ClientCell>) -> Self {
        Admin { admin: client.client.admin(), _client: client }
    }
}

fn non_negative(field: &str, value: Option<i64>) -> Outcome<Option<u64>> {
    value.map(|v| u64::try_from(v).map_err(|_| invalid(field, "must not be negative"))).transpose()
}

fn reset_target(timestamp: Option<i64>, to: Option<String>) -> Outcome<ResetTarget> {
    match (non_negative("/timestamp", timestamp)?, to.as_deref()) {
        (Some(ts), None) => Ok(ResetTarget::Timestamp(ts)),
        (None, Some("earliest")) => Ok(ResetTarget::Earliest),
        (None, Some("latest")) => Ok(ResetTarget::Latest),
        (None, Some(other)) => Err(invalid("/to", format!("{other:?} is not earliest or latest"))),
        (None, None) => Err(invalid("/timestamp", "give a timestamp or to=\"earliest\" / \"latest\"")),
        (Some(_), Some(_)) => Err(invalid("/to", "give a timestamp or to, not both")),
    }
}

fn find_query(key: Option<String>, from_ts: Option<i64>, to_ts: Option<i64>, limit: Option<i64>) -> Outcome<FindQuery> {
    let limit = non_negative("/limit", limit)?.map(|l| l as usize);
    Ok(FindQuery { key, from_ts: non_negative("/from_ts", from_ts)?, to_ts: non_negative("/to_ts", to_ts)?, limit })
}

async fn create_topic(admin: CoreAdmin, name: String, queues: i64, perm: String) -> Outcome<Topic> {
    let queues = u32::try_from(queues).map_err(|_| invalid("/queues", "must be 1 or more"))?;
    let perm = broker::Perm::parse(&perm)?;
    Ok(Topic::from(admin.create_topic_with(&name, queues, perm).await?))
}

async fn topics(admin: CoreAdmin) -> Outcome<Vec<Topic>> {
    Ok(admin.topics().await?.into_iter().map(Topic::from).collect())
}

async fn topic(admin: CoreAdmin, name: String) -> Outcome<Topic> {
    Ok(Topic::from(admin.topic(&name).await?))
}

async fn delete_topic(admin: CoreAdmin, name: String) -> Outcome<()> {
    Ok(admin.delete_topic(&name).await?)
}

async fn group(admin: CoreAdmin, name: String) -> Outcome<Group> {
    Ok(Group::from(admin.group(&name).await?))
}

async fn put_group(admin: CoreAdmin, name: String, max_reconsume_times: Option<u32>) -> Outcome<Group> {
    Ok(Group::from(admin.put_group(&name, max_reconsume_times).await?))
}

async fn reset_offsets(
    admin: CoreAdmin,
    group: String,
    topic: String,
    timestamp: Option<i64>,
    to: Option<String>,
) -> Outcome<Vec<(u32, u64)>> {
    let target = reset_target(timestamp, to)?;
    Ok(admin.reset_offsets(&group, &topic, target).await?)
}

async fn dlq(admin: CoreAdmin, group: String) -> Outcome<Vec<Message>> {
    Ok(admin.dlq(&group).await?.into_iter().map(Message::looked_up).collect())
}

async fn resend_dlq(admin: CoreAdmin, group: String, msg_id: String) -> Outcome<SendResult> {
    Ok(SendResult::from(admin.resend_dlq(&group, &msg_id).await?))
}

async fn find_messages(
    admin: CoreAdmin,
    topic: String,
    key: Option<String>,
    from_ts: Option<i64>,
    to_ts: Option<i64>,
    limit: Option<i64>,
) -> Outcome<Vec<Message>> {
    let query = find_query(key, from_ts, to_ts, limit)?;
    Ok(admin.find_messages(&topic, query).await?.into_iter().map(Message::looked_up).collect())
}

async fn message(admin: CoreAdmin, msg_id: String) -> Outcome<Message> {
    Ok(Message::looked_up(admin.message(&msg_id).await?))
}

/// Declares the methods of [`Admin`], each as a blocking method and an `_async` twin over one
/// async function of the same name.
macro_rules! admin_methods {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident / $name_async:ident ($($arg:ident : $ty:ty),*) $([$($sig:tt)*])? -> $ret:ty;
    )*) => {
        #[pymethods]
        impl Admin {
            $(
                $(#[doc = $doc])*
                $(#[pyo3(signature = ($($sig)*))])?
                fn $name(&self, py: Python<'_>, $($arg: $ty),*) -> PyResult<$ret> {
                    raise(py, runtime::block_on(py, $name(self.admin.clone(), $($arg.to_owned()),*)))
                }

                #[doc = concat!("`", stringify!($name), "()` for asyncio (internal: `ferrymq.aio` wraps it).")]
                $(#[pyo3(signature = ($($sig)*))])?
                fn $name_async<'py>(&self, py: Python<'py>, $($arg: $ty),*) -> PyResult<Bound<'py, PyAny>> {
                    runtime::awaitable(py, $name(self.admin.clone(), $($arg.to_owned()),*))
                }
            )*

            fn __repr__(&self) -> String {
                "Admin()".to_string()
            }
        }
    };
}

admin_methods! {
    /// Creates a topic with `queues` queues and permission `perm` (`"rw"`, `"r"`, `"w"`).
    /// `Conflict` if it exists; `InvalidArgument` for a bad or reserved name.
    fn create_topic / _create_topic_async (name: String, queues: i64, perm: &str)
        [name, queues=8, perm="rw"] -> Topic;
    /// Every topic.
    fn topics / _topics_async () -> Vec<Topic>;
    /// One topic with the offsets of its queues. `NotFound` if it does not exist.
    fn topic / _topic_async (name: String) -> Topic;
    /// Deletes a topic: its queues and every group's offsets on it.
    fn delete_topic / _delete_topic_async (name: String) -> ();
    /// A group: members, subscriptions, committed offsets and lag. `NotFound` for a group
    /// never seen.
    fn group / _group_async (name: String) -> Group;
    /// Creates a group, or sets how many redeliveries a failing message gets before it goes
    /// to the dead-letter queue.
    fn put_group / _put_group_async (name: String, max_reconsume_times: Option<u32>)
        [name, max_reconsume_times=None] -> Group;
    /// Moves `group`'s offsets on `topic` to the first message stored at or after
    /// `timestamp` (epoch ms), or `to="earliest"` / `"latest"`; returns `(queue_id, offset)`
    /// per queue. Applies at once: the group's next receive or pull starts there.
    fn reset_offsets / _reset_offsets_async (group: String, topic: String, timestamp: Option<i64>, to: Option<String>)
        [group, topic, timestamp=None, to=None] -> Vec<(u32, u64)>;
    /// The group's dead letters, oldest first.
    fn dlq / _dlq_async (group: String) -> Vec<Message>;
    /// Moves a dead letter back to its topic with `reconsume_times` 0 and the same `msg_id`.
    /// `NotFound` if it is not in the group's dead-letter queue.
    fn resend_dlq / _resend_dlq_async (group: String, msg_id: String) -> SendResult;
    /// Messages of `topic` by `key` and/or store time (`from_ts` inclusive, `to_ts`
    /// exclusive, epoch ms), oldest first, at most `limit` (default 100).
    fn find_messages / _find_messages_async (topic: String, key: Option<String>, from_ts: Option<i64>, to_ts: Option<i64>, limit: Option<i64>)
        [topic, key=None, from_ts=None, to_ts=None, limit=None] -> Vec<Message>;
    /// One message by id: stored, scheduled or half. `NotFound` if unknown.
    fn message / _message_async (msg_id: String) -> Message;
}
