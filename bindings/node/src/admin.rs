//! [`NativeAdmin`] and the plain objects it returns.

use std::sync::Arc;

use ferrymq_core::client::{Admin, FindQuery, GroupDetail, Perm, ResetTarget, TopicDetail, TopicInfo};
use napi_derive::napi;

use crate::client::ClientCell;
use crate::errors::{invalid, js};
use crate::message::{non_negative, num, MessageData, SendResultData};

/// The offsets of one queue: `min` the lowest retained, `max` the next to be written.
#[napi(object)]
pub struct QueueOffsetsData {
    pub queue_id: u32,
    pub min: i64,
    pub max: i64,
}

/// A topic; `queue_offsets` only from `admin.topic()`.
#[napi(object)]
pub struct TopicData {
    pub name: String,
    pub queues: u32,
    pub perm: String,
    pub queue_offsets: Option<Vec<QueueOffsetsData>>,
}

impl From<TopicInfo> for TopicData {
    fn from(t: TopicInfo) -> Self {
        TopicData { name: t.name, queues: t.queues, perm: t.perm.as_str().to_string(), queue_offsets: None }
    }
}

impl From<TopicDetail> for TopicData {
    fn from(t: TopicDetail) -> Self {
        let offsets =
            t.queue_offsets.iter().map(|q| QueueOffsetsData { queue_id: q.queue_id, min: num(q.min), max: num(q.max) });
        TopicData { queue_offsets: Some(offsets.collect()), ..TopicData::from(t.topic) }
    }
}

/// A subscription of a group.
#[napi(object)]
pub struct SubscriptionData {
    pub topic: String,
    pub filter: Option<String>,
    pub sql: Option<String>,
    pub mode: String,
}

/// A live member of a group.
#[napi(object)]
pub struct MemberData {
    pub client_id: String,
    pub transport: String,
    pub since: i64,
}

/// A group's progress on one queue.
#[napi(object)]
pub struct GroupOffsetData {
    pub topic: String,
    pub queue_id: u32,
    pub committed: i64,
    pub max: i64,
    pub lag: i64,
}

/// A consumer group.
#[napi(object)]
pub struct GroupData {
    pub group: String,
    pub max_reconsume_times: u32,
    pub subscriptions: Vec<SubscriptionData>,
    pub members: Vec<MemberData>,
    pub offsets: Vec<GroupOffsetData>,
}

impl From<GroupDetail> for GroupData {
    fn from(g: GroupDetail) -> Self {
        GroupData {
            group: g.group,
            max_reconsume_times: g.max_reconsume_times,
            subscriptions: g
                .subscriptions
                .into_iter()
                .map(|s| {
                    let (filter, sql) = s.filter.into_fields();
                    SubscriptionData { topic: s.topic, filter, sql, mode: s.mode.as_str().to_string() }
                })
                .collect(),
            members: g
                .members
                .into_iter()
                .map(|m| MemberData {
                    client_id: m.client_id,
                    transport: m.transport.as_str().to_string(),
                    since: num(m.since),
                })
                .collect(),
            offsets: g
                .offsets
                .into_iter()
                .map(|o| GroupOffsetData {
                    topic: o.topic,
                    queue_id: o.queue_id,
                    committed: num(o.committed),
                    max: num(o.max),
                    lag: num(o.lag),
                })
                .collect(),
        }
    }
}

/// A queue's new offset after a reset.
#[napi(object)]
pub struct ResetOffsetData {
    pub queue_id: u32,
    pub offset: i64,
}

/// Administration (see `Admin` in index.d.ts).
#[napi]
pub struct NativeAdmin {
    admin: Admin,
    _cell: Arc<ClientCell>,
}

impl NativeAdmin {
    pub fn new(cell: Arc<ClientCell>) -> Self {
        NativeAdmin { admin: cell.client.admin(), _cell: cell }
    }
}

#[napi]
impl NativeAdmin {
    #[napi]
    pub async fn create_topic(&self, name: String, queues: i64, perm: String) -> napi::Result<TopicData> {
        let queues = u32::try_from(queues).map_err(|_| invalid("/queues", "must be 1 or more"))?;
        let perm = js(Perm::parse(&perm))?;
        Ok(js(self.admin.create_topic_with(&name, queues, perm).await)?.into())
    }

    #[napi]
    pub async fn topics(&self) -> napi::Result<Vec<TopicData>> {
        Ok(js(self.admin.topics().await)?.into_iter().map(Into::into).collect())
    }

    #[napi]
    pub async fn topic(&self, name: String) -> napi::Result<TopicData> {
        Ok(js(self.admin.topic(&name).await)?.into())
    }

    #[napi]
    pub async fn delete_topic(&self, name: String) -> napi::Result<()> {
        js(self.admin.delete_topic(&name).await)
    }

    #[napi]
    pub async fn group(&self, name: String) -> napi::Result<GroupData> {
        Ok(js(self.admin.group(&name).await)?.into())
    }

    #[napi]
    pub async fn put_group(&self, name: String, max_reconsume_times: Option<u32>) -> napi::Result<GroupData> {
        Ok(js(self.admin.put_group(&name, max_reconsume_times).await)?.into())
    }

    #[napi]
    pub async fn reset_offsets(
        &self,
        group: String,
        topic: String,
        timestamp: Option<i64>,
        to: Option<String>,
    ) -> napi::Result<Vec<ResetOffsetData>> {
        let target = match (timestamp.map(|t| non_negative("/timestamp", t)).transpose()?, to.as_deref()) {
            (Some(ts), None) => ResetTarget::Timestamp(ts),
            (None, Some("earliest")) => ResetTarget::Earliest,
            (None, Some("latest")) => ResetTarget::Latest,
            (None, Some(other)) => return Err(invalid("/to", format!("{other:?} is not earliest or latest"))),
            (None, None) => return Err(invalid("/timestamp", "give a timestamp or to: 'earliest' | 'latest'")),
            (Some(_), Some(_)) => return Err(invalid("/to", "give a timestamp or to, not both")),
        };
        let offsets = js(self.admin.reset_offsets(&group, &topic, target).await)?;
        Ok(offsets.into_iter().map(|(queue_id, offset)| ResetOffsetData { queue_id, offset: num(offset) }).collect())
    }

    #[napi]
    pub async fn dlq(&self, group: String) -> napi::Result<Vec<MessageData>> {
        Ok(js(self.admin.dlq(&group).await)?.into_iter().map(Into::into).collect())
    }

    #[napi]
    pub async fn resend_dlq(&self, group: String, msg_id: String) -> napi::Result<SendResultData> {
        Ok(js(self.admin.resend_dlq(&group, &msg_id).await)?.into())
    }

    #[napi]
    pub async fn find_messages(
        &self,
        topic: String,
        key: Option<String>,
        from_ts: Option<i64>,
        to_ts: Option<i64>,
        limit: Option<i64>,
    ) -> napi::Result<Vec<MessageData>> {
        let query = FindQuery {
            key,
            from_ts: from_ts.map(|t| non_negative("/fromTs", t)).transpose()?,
            to_ts: to_ts.map(|t| non_negative("/toTs", t)).transpose()?,
            limit: limit.map(|l| non_negative("/limit", l).map(|l| l as usize)).transpose()?,
        };
        Ok(js(self.admin.find_messages(&topic, query).await)?.into_iter().map(Into::into).collect())
    }

    #[napi]
    pub async fn message(&self, msg_id: String) -> napi::Result<MessageData> {
        Ok(js(self.admin.message(&msg_id).await)?.into())
    }
}
