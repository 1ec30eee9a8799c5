//! [`FfiAdmin`]: topics, groups, offsets, dead letters and lookups, as plain records.

use ferrymq_core::client::{Admin, FindQuery, GroupDetail, Perm, ResetTarget, TopicInfo};

use crate::error::FfiError;
use crate::message::{unsigned, FfiMessage, FfiSendResult};
use crate::runtime;

/// A topic.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiTopic {
    /// Its name.
    pub name: String,
    /// How many queues it has.
    pub queues: i32,
    /// `rw`, `r` or `w`.
    pub perm: String,
}

/// The offsets of one queue of a topic.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiQueueOffsets {
    /// The queue.
    pub queue_id: i32,
    /// The lowest retained offset.
    pub min: i64,
    /// The offset the next message will get.
    pub max: i64,
}

/// A topic with the offsets of its queues.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiTopicDetail {
    /// The topic.
    pub topic: FfiTopic,
    /// Per queue.
    pub queue_offsets: Vec<FfiQueueOffsets>,
}

/// One subscription of a group.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiSubscription {
    /// The topic.
    pub topic: String,
    /// The tag expression, for a tag filter.
    pub filter: Option<String>,
    /// The SQL92 expression, for an SQL filter.
    pub sql: Option<String>,
    /// `clustering` or `broadcasting`.
    pub mode: String,
}

/// One member of a group.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiMember {
    /// Its client id.
    pub client_id: String,
    /// `ws`, `rest` or `native`.
    pub transport: String,
    /// Since when (epoch ms).
    pub since: i64,
}

/// A group's position on one queue.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiGroupOffset {
    /// The topic.
    pub topic: String,
    /// The queue.
    pub queue_id: i32,
    /// The first offset not yet consumed.
    pub committed: i64,
    /// The offset the next message will get.
    pub max: i64,
    /// `max - committed`.
    pub lag: i64,
}

/// A consumer group.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiGroup {
    /// Its name.
    pub group: String,
    /// Redeliveries before the DLQ.
    pub max_reconsume_times: i32,
    /// What it subscribes.
    pub subscriptions: Vec<FfiSubscription>,
    /// Who is in it.
    pub members: Vec<FfiMember>,
    /// Where it is, per queue.
    pub offsets: Vec<FfiGroupOffset>,
}

/// A queue's offset after a reset.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FfiQueuePosition {
    /// The queue.
    pub queue_id: i32,
    /// Where the group's next pull starts.
    pub offset: i64,
}

fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn long(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn topic(t: TopicInfo) -> FfiTopic {
    FfiTopic { name: t.name, queues: int(t.queues), perm: t.perm.as_str().to_string() }
}

fn group(g: GroupDetail) -> FfiGroup {
    FfiGroup {
        group: g.group,
        max_reconsume_times: int(g.max_reconsume_times),
        subscriptions: g
            .subscriptions
            .into_iter()
            .map(|s| {
                let (filter, sql) = s.filter.into_fields();
                FfiSubscription { topic: s.topic, filter, sql, mode: s.mode.as_str().to_string() }
            })
            .collect(),
        members: g
            .members
            .into_iter()
            .map(|m| FfiMember {
                client_id: m.client_id,
                transport: m.transport.as_str().to_string(),
                since: long(m.since),
            })
            .collect(),
        offsets: g
            .offsets
            .into_iter()
            .map(|o| FfiGroupOffset {
                topic: o.topic,
                queue_id: int(o.queue_id),
                committed: long(o.committed),
                max: long(o.max),
                lag: long(o.lag),
            })
            .collect(),
    }
}

fn messages(list: Vec<ferrymq_core::client::Message>) -> Vec<FfiMessage> {
    list.into_iter().map(Into::into).collect()
}

/// Administration of the broker behind a client.
#[derive(uniffi::Object)]
pub struct FfiAdmin {
    admin: Admin,
}

impl FfiAdmin {
    pub(crate) fn new(admin: Admin) -> Self {
        FfiAdmin { admin }
    }
}

#[uniffi::export]
impl FfiAdmin {
    /// Creates a topic with `queues` queues and a permission (`rw`, `r` or `w`).
    pub async fn create_topic(&self, name: String, queues: i32, perm: String) -> Result<FfiTopic, FfiError> {
        let queues = u32::try_from(queues).map_err(|_| FfiError::invalid("/queues", "must be at least 1"))?;
        let perm = Perm::parse(&perm)?;
        let admin = self.admin.clone();
        runtime::run(async move { Ok(topic(admin.create_topic_with(&name, queues, perm).await?)) }).await
    }

    /// Deletes a topic: its queues and every group's offsets on it.
    pub async fn delete_topic(&self, name: String) -> Result<(), FfiError> {
        let admin = self.admin.clone();
        runtime::run(async move { Ok(admin.delete_topic(&name).await?) }).await
    }

    /// Every topic.
    pub async fn topics(&self) -> Result<Vec<FfiTopic>, FfiError> {
        let admin = self.admin.clone();
        runtime::run(async move { Ok(admin.topics().await?.into_iter().map(topic).collect()) }).await
    }

    /// One topic with the offsets of its queues.
    pub async fn topic(&self, name: String) -> Result<FfiTopicDetail, FfiError> {
        let admin = self.admin.clone();
        runtime::run(async move {
            let detail = admin.topic(&name).await?;
            Ok(FfiTopicDetail {
                topic: topic(detail.topic),
                queue_offsets: detail
                    .queue_offsets
                    .into_iter()
                    .map(|q| FfiQueueOffsets { queue_id: int(q.queue_id), min: long(q.min), max: long(q.max) })
                    .collect(),
            })
        })
        .await
    }

    /// A group: members, subscriptions, and offsets per queue.
    pub async fn group(&self, name: String) -> Result<FfiGroup, FfiError> {
        let admin = self.admin.clone();
        runtime::run(async move { Ok(group(admin.group(&name).await?)) }).await
    }

    /// Creates a group, or sets its redeliveries before the DLQ.
    pub async fn put_group(&self, name: String, max_reconsume_times: Option<i32>) -> Result<FfiGroup, FfiError> {
        let max = max_reconsume_times
            .map(|m| u32::try_from(m).map_err(|_| FfiError::invalid("/max_reconsume_times", "must not be negative")))
            .transpose()?;
        let admin = self.admin.clone();
        runtime::run(async move { Ok(group(admin.put_group(&name, max).await?)) }).await
    }

    /// Moves a group's offsets on a topic to a `timestamp` (inclusive), or `to` `earliest` or
    /// `latest`; exactly one of the two.
    pub async fn reset_offsets(
        &self,
        group: String,
        topic: String,
        timestamp: Option<i64>,
        to: Option<String>,
    ) -> Result<Vec<FfiQueuePosition>, FfiError> {
        let target = match (timestamp, to.as_deref()) {
            (Some(ts), None) => ResetTarget::Timestamp(unsigned("/timestamp", ts)?),
            (None, Some("earliest")) => ResetTarget::Earliest,
            (None, Some("latest")) => ResetTarget::Latest,
            (None, Some(other)) => {
                return Err(FfiError::invalid("/to", format!("{other:?} is not earliest or latest")))
            }
            _ => return Err(FfiError::invalid("/to", "give exactly one of timestamp and to")),
        };
        let admin = self.admin.clone();
        runtime::run(async move {
            let offsets = admin.reset_offsets(&group, &topic, target).await?;
            Ok(offsets.into_iter().map(|(q, o)| FfiQueuePosition { queue_id: int(q), offset: long(o) }).collect())
        })
        .await
    }

    /// The group's dead letters, oldest first.
    pub async fn dlq(&self, group: String) -> Result<Vec<FfiMessage>, FfiError> {
        let admin = self.admin.clone();
        runtime::run(async move { Ok(messages(admin.dlq(&group).await?)) }).await
    }

    /// Moves a dead letter back to its topic (same `msg_id`, `reconsume_times` 0).
    pub async fn resend_dlq(&self, group: String, msg_id: String) -> Result<FfiSendResult, FfiError> {
        let admin = self.admin.clone();
        runtime::run(async move { Ok(admin.resend_dlq(&group, &msg_id).await?.into()) }).await
    }

    /// Messages of a topic by key and/or store-time range (`from_ts` inclusive, `to_ts`
    /// exclusive), oldest first, at most `limit` (default 100).
    pub async fn find_messages(
        &self,
        topic: String,
        key: Option<String>,
        from_ts: Option<i64>,
        to_ts: Option<i64>,
        limit: Option<i32>,
    ) -> Result<Vec<FfiMessage>, FfiError> {
        let query = FindQuery {
            key,
            from_ts: from_ts.map(|t| unsigned("/from_ts", t)).transpose()?,
            to_ts: to_ts.map(|t| unsigned("/to_ts", t)).transpose()?,
            limit: limit
                .map(|l| usize::try_from(l).map_err(|_| FfiError::invalid("/limit", "must be at least 1")))
                .transpose()?,
        };
        let admin = self.admin.clone();
        runtime::run(async move { Ok(messages(admin.find_messages(&topic, query).await?)) }).await
    }

    /// One message by id (stored, scheduled or half).
    pub async fn message(&self, msg_id: String) -> Result<FfiMessage, FfiError> {
        let admin = self.admin.clone();
        runtime::run(async move { Ok(admin.message(&msg_id).await?.into()) }).await
    }
}
