//! [`Admin`]: topics, groups, offsets, dead letters and message lookups.

use std::sync::Arc;

use crate::broker::{GroupDetail, Message, Perm, ResetTarget, SendResult, TopicDetail, TopicInfo};
use crate::Result;

use super::transport::{FindQuery, Transport};

/// Administration of the broker behind a client.
#[derive(Clone)]
pub struct Admin {
    transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("transport", &self.transport.name()).finish()
    }
}

impl Admin {
    pub(crate) fn new(transport: Arc<dyn Transport>) -> Self {
        Admin { transport }
    }

    /// Creates a topic with `queues` queues, readable and writable. [`crate::Error::Conflict`]
    /// if it exists; [`crate::Error::InvalidArgument`] for a bad or reserved name.
    pub async fn create_topic(&self, name: &str, queues: u32) -> Result<TopicInfo> {
        self.transport.create_topic(name, Some(queues), None).await
    }

    /// Creates a topic with a permission (`r`, `w` or `rw`).
    pub async fn create_topic_with(&self, name: &str, queues: u32, perm: Perm) -> Result<TopicInfo> {
        self.transport.create_topic(name, Some(queues), Some(perm)).await
    }

    /// Deletes a topic: its queues and every group's offsets on it.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        self.transport.delete_topic(name).await
    }

    /// Every topic.
    pub async fn topics(&self) -> Result<Vec<TopicInfo>> {
        self.transport.topics().await
    }

    /// One topic with the offsets of its queues.
    pub async fn topic(&self, name: &str) -> Result<TopicDetail> {
        self.transport.topic(name).await
    }

    /// A group: members, subscriptions, and committed offset, max and lag per queue.
    pub async fn group(&self, name: &str) -> Result<GroupDetail> {
        self.transport.group(name).await
    }

    /// Creates a group or sets how often a failing message is redelivered before it goes to
    /// the dead-letter queue.
    pub async fn put_group(&self, name: &str, max_reconsume_times: Option<u32>) -> Result<GroupDetail> {
        self.transport.put_group(name, max_reconsume_times).await
    }

    /// Moves a group's offsets on a topic to a timestamp, the earliest or the latest message;
    /// returns `(queue_id, offset)` per queue.
    pub async fn reset_offsets(&self, group: &str, topic: &str, target: ResetTarget) -> Result<Vec<(u32, u64)>> {
        self.transport.reset_offsets(group, topic, target).await
    }

    /// The group's dead letters, oldest first.
    pub async fn dlq(&self, group: &str) -> Result<Vec<Message>> {
        self.transport.dlq(group).await
    }

    /// Moves a dead letter back to its topic with `reconsume_times` 0 and the same `msg_id`.
    pub async fn resend_dlq(&self, group: &str, msg_id: &str) -> Result<SendResult> {
        self.transport.resend_dlq(group, msg_id).await
    }

    /// Messages of a topic by key and/or store-time range, oldest first.
    pub async fn find_messages(&self, topic: &str, query: FindQuery) -> Result<Vec<Message>> {
        self.transport.find_messages(topic, query).await
    }

    /// One message by id: stored, scheduled or half. [`crate::Error::NotFound`] if unknown.
    pub async fn message(&self, msg_id: &str) -> Result<Message> {
        self.transport.message(msg_id).await
    }
}
