//! Sending back a message that a pull (push) consumer failed to consume.
//!
//! Lease consumers give a message back with `nack`; pull consumers hold no lease, so they hand
//! the message itself back. It then takes the same path as a nack: `%RETRY%<group>` with the
//! retry delay and `reconsume_times + 1`, or `%DLQ%<group>` after the group's maximum.

use std::time::Duration;

use super::props;
use super::topic::{SCHEDULE_TOPIC, TIMER_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_TOPIC};
use super::types::Message;
use super::{retry_topic, validate_group_name, Broker};

fn is_system_topic(topic: &str) -> bool {
    [SCHEDULE_TOPIC, TIMER_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_TOPIC].contains(&topic) || topic.starts_with("RMQ_SYS_")
}
use crate::{Error, Result};

impl Broker {
    /// Sends `message`, as pulled by a member of `group`, back through retry: it returns to
    /// the group with `reconsume_times + 1` after `delay` (`None`: the retry delay of level
    /// `3 + reconsume_times`; zero: at once), or goes to the dead-letter queue when
    /// `message.reconsume_times` has reached the group's `max_reconsume_times`.
    ///
    /// `message.reconsume_times` counts, so an orderly consumer that retried in place can say
    /// how often it already did. `InvalidArgument` for a message without a place in the log
    /// (scheduled or half), `NotFound` when the log no longer holds it.
    pub async fn send_message_back(&self, group: &str, message: &Message, delay: Option<Duration>) -> Result<()> {
        validate_group_name(group)?;
        self.validate_redelivery_delay(delay)?;
        let commit_offset = message
            .commit_offset
            .ok_or_else(|| Error::invalid("/commit_offset", "only a stored message can be sent back"))?;
        let mut rec = self.blocking(move |s| s.read(commit_offset)).await?;
        // The record must be this message, of the topic named (directly or as the origin of a
        // retry of this group): a caller granted one topic cannot send back another's.
        let origin = rec.properties.get(props::ORIGIN_TOPIC).cloned();
        let belongs = if rec.topic == retry_topic(group) {
            origin.as_deref() == Some(message.topic.as_str())
        } else {
            !rec.topic.starts_with('%') && !is_system_topic(&rec.topic) && rec.topic == message.topic
        };
        if rec.msg_id != message.msg_id || !belongs {
            return Err(Error::not_found("message", message.msg_id.clone()));
        }
        rec.reconsume_times = message.reconsume_times;
        self.send_back(group, rec, &message.topic, delay).await
    }
}
