//! The JSON shapes of the REST API and the WebSocket frames: the contract's types from
//! [`ferrymq_proto`], re-exported here for the routes, plus what only a server does with them
//! (turning a validated message into the broker's).
//!
//! Field names are the public contract: add fields freely in `ferrymq-proto`, never rename one.

use ferrymq_core::broker::{Message, OutgoingMessage};

pub use ferrymq_proto::consume::{
    AckBody, AckResult, ChangeInvisibleBody, FailedReceipt, FailureReason, NackBody, NackResult, ReceiptOut,
    ReceiveBody,
};
pub use ferrymq_proto::group::{
    GroupDetailOut, GroupList, GroupOffsetOut, GroupSummaryOut, MemberOut, ModeOut, PutGroup, QueueOffsetOut,
    ResetBody, ResetResult, ResetTo, SubscriptionOut, TransportOut,
};
pub use ferrymq_proto::message::{
    decode_base64, BatchResult, MessageList, MessageOut, MessageStateOut, PublishBatch, PublishContext, PublishMessage,
    PublishRequest, PublishResponse, SendResultOut, MESSAGE_FIELDS,
};
pub use ferrymq_proto::now_ms;
pub use ferrymq_proto::topic::{
    CreateTopic, FindMessagesQuery, PermOut, QueueOffsetsOut, TopicDetailOut, TopicList, TopicOut,
};
pub use ferrymq_proto::transaction::{
    CheckAnswer, CheckRequest, HealthOut, ProducerBody, ProducerOut, TicketOut, TransactionOut, TransactionStatusOut,
};

use crate::problem::{ApiError, ApiResult};

/// A JSON message in, validated into the broker's message.
pub trait IntoOutgoing {
    /// Validates the message; `prefix` is its JSON Pointer (`""` or `/messages/3`), under which
    /// every field error is reported.
    fn into_outgoing(self, prefix: &str, ctx: &PublishContext) -> ApiResult<OutgoingMessage>;
}

impl IntoOutgoing for PublishMessage {
    fn into_outgoing(self, prefix: &str, ctx: &PublishContext) -> ApiResult<OutgoingMessage> {
        self.validate(prefix, ctx).map(OutgoingMessage::from).map_err(ApiError::Invalid)
    }
}

/// A list of broker messages in their wire form.
pub trait FromMessages {
    /// Converts broker messages.
    fn from_messages(messages: Vec<Message>) -> Self;
}

impl FromMessages for MessageList {
    fn from_messages(messages: Vec<Message>) -> Self {
        MessageList { messages: messages.into_iter().map(MessageOut::from).collect() }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferrymq_core::broker::MessageState;

    use super::*;

    #[test]
    fn validation_errors_become_invalid_argument_under_the_prefix() {
        let msg = PublishMessage { body: Some("a".into()), body_base64: Some("YQ==".into()), ..Default::default() };
        let Err(ApiError::Invalid(errors)) = msg.into_outgoing("/messages/2", &PublishContext::default()) else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "/messages/2/body_base64");
    }

    #[test]
    fn message_out_has_every_field() {
        let m = Message {
            msg_id: "id".into(),
            topic: "t".into(),
            queue_id: None,
            queue_offset: None,
            commit_offset: None,
            body: vec![0xff],
            tag: None,
            keys: vec![],
            properties: BTreeMap::new(),
            born_ts: 1,
            store_ts: 2,
            reconsume_times: 0,
            receipt: None,
            state: MessageState::Scheduled,
        };
        let json = serde_json::to_value(MessageList::from_messages(vec![m])).expect("serializes");
        let json = &json["messages"][0];
        for field in MESSAGE_FIELDS {
            assert!(json.get(field).is_some(), "{field} missing");
        }
        assert!(json["body"].is_null());
        assert_eq!(json["body_base64"], "/w==");
        assert_eq!(json["state"], "scheduled");
    }
}
