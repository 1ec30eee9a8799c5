//! The broker's types and the contract's wire types ([`ferrymq_proto`]) converted both ways,
//! once: the gateway serves broker results with them, the remote transport reads them back.
//! Also the one mapping between core's [`Error`] and the contract's error kinds.

use ferrymq_proto::consume::FailureReason;
use ferrymq_proto::group::{
    GroupDetailOut, GroupOffsetOut, GroupSummaryOut, MemberOut, ModeOut, SubscriptionOut, TransportOut,
};
use ferrymq_proto::message::{DelayIn, MessageIn, MessageOut, MessageStateOut, SendResultOut};
use ferrymq_proto::topic::{PermOut, QueueOffsetsOut, TopicDetailOut, TopicOut};
use ferrymq_proto::transaction::{TransactionOut, TransactionStatusOut};
use ferrymq_proto::{ErrorKind, Problem};

use crate::broker::{
    ConsumeMode, Delay, FilterSpec, GroupDetail, GroupOffset, GroupSummary, MemberInfo, MemberTransport, Message,
    MessageState, OutgoingMessage, Perm, QueueOffsets, ReceiptFailure, SendResult, Subscription, TopicDetail,
    TopicInfo, TransactionOutcome, TransactionStatus,
};
use crate::{Error, Result};

impl From<MessageState> for MessageStateOut {
    fn from(state: MessageState) -> Self {
        match state {
            MessageState::Stored => MessageStateOut::Stored,
            MessageState::Scheduled => MessageStateOut::Scheduled,
            MessageState::Half => MessageStateOut::Half,
        }
    }
}

impl From<MessageStateOut> for MessageState {
    fn from(state: MessageStateOut) -> Self {
        match state {
            MessageStateOut::Stored => MessageState::Stored,
            MessageStateOut::Scheduled => MessageState::Scheduled,
            MessageStateOut::Half => MessageState::Half,
        }
    }
}

impl From<Message> for MessageOut {
    fn from(m: Message) -> Self {
        let mut out = MessageOut {
            msg_id: m.msg_id,
            topic: m.topic,
            queue_id: m.queue_id,
            queue_offset: m.queue_offset,
            commit_offset: m.commit_offset,
            body_base64: String::new(),
            body: None,
            tag: m.tag,
            keys: m.keys,
            properties: m.properties,
            born_ts: m.born_ts,
            store_ts: m.store_ts,
            reconsume_times: m.reconsume_times,
            receipt: m.receipt,
            state: m.state.into(),
        };
        out.set_body(m.body);
        out
    }
}

impl TryFrom<MessageOut> for Message {
    type Error = Error;

    /// Fails with [`Error::Connection`] when `body_base64` is not base64: the peer is broken.
    fn try_from(m: MessageOut) -> Result<Self> {
        let body = m
            .body_bytes()
            .ok_or_else(|| Error::Connection(format!("message {} has an unreadable body_base64", m.msg_id)))?;
        Ok(Message {
            msg_id: m.msg_id,
            topic: m.topic,
            queue_id: m.queue_id,
            queue_offset: m.queue_offset,
            commit_offset: m.commit_offset,
            body,
            tag: m.tag,
            keys: m.keys,
            properties: m.properties,
            born_ts: m.born_ts,
            store_ts: m.store_ts,
            reconsume_times: m.reconsume_times,
            receipt: m.receipt,
            state: m.state.into(),
        })
    }
}

/// Converts wire messages, failing on the first unreadable one.
pub fn messages(list: Vec<MessageOut>) -> Result<Vec<Message>> {
    list.into_iter().map(Message::try_from).collect()
}

impl From<DelayIn> for Delay {
    fn from(d: DelayIn) -> Self {
        match d {
            DelayIn::Level(level) => Delay::Level(level),
            DelayIn::Millis(ms) => Delay::Millis(ms),
            DelayIn::At(at) => Delay::At(at),
        }
    }
}

impl From<Delay> for DelayIn {
    fn from(d: Delay) -> Self {
        match d {
            Delay::Level(level) => DelayIn::Level(level),
            Delay::Millis(ms) => DelayIn::Millis(ms),
            Delay::At(at) => DelayIn::At(at),
        }
    }
}

impl From<MessageIn> for OutgoingMessage {
    fn from(m: MessageIn) -> Self {
        OutgoingMessage {
            body: m.body,
            tag: m.tag,
            keys: m.keys,
            properties: m.properties,
            delay: m.delay.map(Into::into),
            sharding_key: m.sharding_key,
            transaction: m.transaction,
            idempotency_key: m.idempotency_key,
            born_ts: None,
        }
    }
}

impl From<OutgoingMessage> for MessageIn {
    fn from(m: OutgoingMessage) -> Self {
        MessageIn {
            body: m.body,
            tag: m.tag,
            keys: m.keys,
            properties: m.properties,
            delay: m.delay.map(Into::into),
            sharding_key: m.sharding_key,
            transaction: m.transaction,
            idempotency_key: m.idempotency_key,
        }
    }
}

impl From<SendResult> for SendResultOut {
    fn from(r: SendResult) -> Self {
        SendResultOut {
            msg_id: r.msg_id,
            queue_id: r.queue_id,
            queue_offset: r.queue_offset,
            transaction_id: r.transaction_id,
        }
    }
}

impl From<SendResultOut> for SendResult {
    fn from(r: SendResultOut) -> Self {
        SendResult {
            msg_id: r.msg_id,
            queue_id: r.queue_id,
            queue_offset: r.queue_offset,
            transaction_id: r.transaction_id,
        }
    }
}

impl From<Perm> for PermOut {
    fn from(p: Perm) -> Self {
        match p {
            Perm::ReadWrite => PermOut::ReadWrite,
            Perm::Read => PermOut::Read,
            Perm::Write => PermOut::Write,
        }
    }
}

impl From<PermOut> for Perm {
    fn from(p: PermOut) -> Self {
        match p {
            PermOut::ReadWrite => Perm::ReadWrite,
            PermOut::Read => Perm::Read,
            PermOut::Write => Perm::Write,
        }
    }
}

impl From<TopicInfo> for TopicOut {
    fn from(t: TopicInfo) -> Self {
        TopicOut { name: t.name, queues: t.queues, perm: t.perm.into() }
    }
}

impl From<TopicOut> for TopicInfo {
    fn from(t: TopicOut) -> Self {
        TopicInfo { name: t.name, queues: t.queues, perm: t.perm.into() }
    }
}

impl From<QueueOffsets> for QueueOffsetsOut {
    fn from(q: QueueOffsets) -> Self {
        QueueOffsetsOut { queue_id: q.queue_id, min: q.min, max: q.max }
    }
}

impl From<QueueOffsetsOut> for QueueOffsets {
    fn from(q: QueueOffsetsOut) -> Self {
        QueueOffsets { queue_id: q.queue_id, min: q.min, max: q.max }
    }
}

impl From<TopicDetail> for TopicDetailOut {
    fn from(d: TopicDetail) -> Self {
        TopicDetailOut {
            name: d.topic.name,
            queues: d.topic.queues,
            perm: d.topic.perm.into(),
            queue_offsets: d.queue_offsets.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<TopicDetailOut> for TopicDetail {
    fn from(d: TopicDetailOut) -> Self {
        TopicDetail {
            topic: TopicInfo { name: d.name, queues: d.queues, perm: d.perm.into() },
            queue_offsets: d.queue_offsets.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ReceiptFailure> for FailureReason {
    fn from(f: ReceiptFailure) -> Self {
        match f {
            ReceiptFailure::Unknown => FailureReason::Unknown,
            ReceiptFailure::Expired => FailureReason::Expired,
            ReceiptFailure::Acked => FailureReason::Acked,
        }
    }
}

impl From<FailureReason> for ReceiptFailure {
    fn from(f: FailureReason) -> Self {
        match f {
            FailureReason::Unknown => ReceiptFailure::Unknown,
            FailureReason::Expired => ReceiptFailure::Expired,
            FailureReason::Acked => ReceiptFailure::Acked,
        }
    }
}

impl From<ConsumeMode> for ModeOut {
    fn from(m: ConsumeMode) -> Self {
        match m {
            ConsumeMode::Clustering => ModeOut::Clustering,
            ConsumeMode::Broadcasting => ModeOut::Broadcasting,
        }
    }
}

impl From<ModeOut> for ConsumeMode {
    fn from(m: ModeOut) -> Self {
        match m {
            ModeOut::Clustering => ConsumeMode::Clustering,
            ModeOut::Broadcasting => ConsumeMode::Broadcasting,
        }
    }
}

impl From<MemberTransport> for TransportOut {
    fn from(t: MemberTransport) -> Self {
        match t {
            MemberTransport::Ws => TransportOut::Ws,
            MemberTransport::Rest => TransportOut::Rest,
            MemberTransport::Native => TransportOut::Native,
        }
    }
}

impl From<TransportOut> for MemberTransport {
    fn from(t: TransportOut) -> Self {
        match t {
            TransportOut::Ws => MemberTransport::Ws,
            TransportOut::Rest => MemberTransport::Rest,
            TransportOut::Native => MemberTransport::Native,
        }
    }
}

impl From<GroupSummary> for GroupSummaryOut {
    fn from(g: GroupSummary) -> Self {
        GroupSummaryOut { group: g.group, members: g.members, topics: g.topics }
    }
}

/// A filter as the wire's pair of `filter` and `sql`.
pub fn filter_fields(filter: &FilterSpec) -> (Option<String>, Option<String>) {
    filter.clone().into_fields()
}

/// The wire's `filter` and `sql` as a filter: SQL when given, else the tag expression
/// (default `*`).
pub fn filter_spec(filter: Option<String>, sql: Option<String>) -> FilterSpec {
    match (sql, filter) {
        (Some(sql), _) => FilterSpec::Sql(sql),
        (None, filter) => FilterSpec::Tag(filter.unwrap_or_else(|| "*".into())),
    }
}

impl From<Subscription> for SubscriptionOut {
    fn from(s: Subscription) -> Self {
        let (filter, sql) = filter_fields(&s.filter);
        SubscriptionOut { topic: s.topic, filter, sql, mode: s.mode.into() }
    }
}

impl From<SubscriptionOut> for Subscription {
    fn from(s: SubscriptionOut) -> Self {
        Subscription { topic: s.topic, filter: filter_spec(s.filter, s.sql), mode: s.mode.into() }
    }
}

impl From<MemberInfo> for MemberOut {
    fn from(m: MemberInfo) -> Self {
        MemberOut { client_id: m.client_id, transport: m.transport.into(), since: m.since }
    }
}

impl From<MemberOut> for MemberInfo {
    fn from(m: MemberOut) -> Self {
        MemberInfo { client_id: m.client_id, transport: m.transport.into(), since: m.since }
    }
}

impl From<GroupOffset> for GroupOffsetOut {
    fn from(o: GroupOffset) -> Self {
        GroupOffsetOut { topic: o.topic, queue_id: o.queue_id, committed: o.committed, max: o.max, lag: o.lag }
    }
}

impl From<GroupOffsetOut> for GroupOffset {
    fn from(o: GroupOffsetOut) -> Self {
        GroupOffset { topic: o.topic, queue_id: o.queue_id, committed: o.committed, max: o.max, lag: o.lag }
    }
}

impl From<GroupDetail> for GroupDetailOut {
    fn from(g: GroupDetail) -> Self {
        GroupDetailOut {
            group: g.group,
            max_reconsume_times: g.max_reconsume_times,
            subscriptions: g.subscriptions.into_iter().map(Into::into).collect(),
            members: g.members.into_iter().map(Into::into).collect(),
            offsets: g.offsets.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<GroupDetailOut> for GroupDetail {
    fn from(g: GroupDetailOut) -> Self {
        GroupDetail {
            group: g.group,
            max_reconsume_times: g.max_reconsume_times,
            subscriptions: g.subscriptions.into_iter().map(Into::into).collect(),
            members: g.members.into_iter().map(Into::into).collect(),
            offsets: g.offsets.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<TransactionStatus> for TransactionStatusOut {
    fn from(s: TransactionStatus) -> Self {
        match s {
            TransactionStatus::Committed => TransactionStatusOut::Committed,
            TransactionStatus::RolledBack => TransactionStatusOut::RolledBack,
        }
    }
}

impl From<TransactionStatusOut> for TransactionStatus {
    fn from(s: TransactionStatusOut) -> Self {
        match s {
            TransactionStatusOut::Committed => TransactionStatus::Committed,
            TransactionStatusOut::RolledBack => TransactionStatus::RolledBack,
        }
    }
}

impl From<TransactionOutcome> for TransactionOut {
    fn from(o: TransactionOutcome) -> Self {
        TransactionOut { transaction_id: o.transaction_id, msg_id: o.msg_id, status: o.status.into() }
    }
}

impl From<TransactionOut> for TransactionOutcome {
    fn from(o: TransactionOut) -> Self {
        TransactionOutcome { transaction_id: o.transaction_id, msg_id: o.msg_id, status: o.status.into() }
    }
}

impl Error {
    /// The contract's error kind of this error, as the gateway answers it. Storage failures
    /// are `internal`; a timeout or a lost connection inside the server is `unavailable`.
    pub fn error_kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::Corrupt { .. } | Error::Poisoned | Error::Closed => ErrorKind::Internal,
            Error::Unavailable(_) | Error::Timeout(_) | Error::Connection(_) => ErrorKind::Unavailable,
            Error::InsufficientStorage { .. } => ErrorKind::InsufficientStorage,
            Error::InvalidArgument { .. } | Error::OffsetOutOfRange { .. } => ErrorKind::InvalidArgument,
            Error::InvalidFilter { .. } => ErrorKind::InvalidFilter,
            Error::MessageTooLarge { .. } | Error::BatchTooLarge { .. } => ErrorKind::PayloadTooLarge,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::IdempotencyConflict { .. } => ErrorKind::IdempotencyConflict,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
        }
    }

    /// The error a peer's problem stands for, chosen by the problem's `type` (never by its
    /// text). `status` is the HTTP status it came with, for problems of an unknown kind.
    pub fn from_problem(problem: &Problem, status: u16) -> Error {
        let detail = problem.detail.clone();
        match problem.error_kind() {
            Some(ErrorKind::InvalidArgument)
            | Some(ErrorKind::MethodNotAllowed)
            | Some(ErrorKind::UnsupportedMediaType) => {
                Error::InvalidArgument { field: problem.first_field().to_string(), message: detail }
            }
            Some(ErrorKind::InvalidFilter) => Error::InvalidFilter { expression: String::new(), message: detail },
            Some(ErrorKind::NotFound) => Error::NotFound { what: "resource", name: detail },
            Some(ErrorKind::Conflict) => Error::Conflict(detail),
            Some(ErrorKind::IdempotencyConflict) => Error::IdempotencyConflict { key: detail },
            Some(ErrorKind::Forbidden) => Error::Forbidden(detail),
            Some(ErrorKind::Unauthorized) => Error::Unauthorized(detail),
            Some(ErrorKind::PayloadTooLarge) => Error::MessageTooLarge { size: 0, max: 0 },
            Some(ErrorKind::InsufficientStorage) => Error::InsufficientStorage { used_ratio: 1.0, max_ratio: 1.0 },
            Some(ErrorKind::Unavailable) => Error::Unavailable(detail),
            Some(ErrorKind::Internal) | None => Error::Unavailable(format!("the server answered {status}: {detail}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_message_round_trips_through_its_wire_form() {
        for body in [b"text".to_vec(), vec![0xff, 0x00]] {
            let m = Message {
                msg_id: "id".into(),
                topic: "t".into(),
                queue_id: Some(1),
                queue_offset: Some(2),
                commit_offset: Some(3),
                body,
                tag: Some("A".into()),
                keys: vec!["k".into()],
                properties: BTreeMap::from([("p".to_string(), "v".to_string())]),
                born_ts: 1,
                store_ts: 2,
                reconsume_times: 4,
                receipt: Some("r".into()),
                state: MessageState::Half,
            };
            let json = serde_json::to_string(&MessageOut::from(m.clone())).expect("serializes");
            let back: MessageOut = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(Message::try_from(back).expect("readable"), m);
        }
    }

    #[test]
    fn a_group_round_trips_through_its_wire_form() {
        let g = GroupDetail {
            group: "g".into(),
            max_reconsume_times: 3,
            subscriptions: vec![
                Subscription {
                    topic: "a".into(),
                    filter: FilterSpec::Sql("x > 1".into()),
                    mode: ConsumeMode::Broadcasting,
                },
                Subscription {
                    topic: "b".into(),
                    filter: FilterSpec::Tag("A || B".into()),
                    mode: ConsumeMode::Clustering,
                },
            ],
            members: vec![MemberInfo { client_id: "c".into(), transport: MemberTransport::Rest, since: 9 }],
            offsets: vec![GroupOffset { topic: "a".into(), queue_id: 0, committed: 1, max: 3, lag: 2 }],
        };
        let json = serde_json::to_string(&GroupDetailOut::from(g.clone())).expect("serializes");
        let back: GroupDetailOut = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(GroupDetail::from(back), g);
    }

    #[test]
    fn errors_cross_the_wire_by_kind() {
        let cases = [
            Error::invalid("/topic", "bad"),
            Error::not_found("topic", "t"),
            Error::Conflict("exists".into()),
            Error::IdempotencyConflict { key: "k".into() },
            Error::Forbidden("no".into()),
            Error::Unauthorized("who".into()),
            Error::MessageTooLarge { size: 2, max: 1 },
            Error::InsufficientStorage { used_ratio: 0.99, max_ratio: 0.95 },
            Error::Unavailable("later".into()),
            Error::InvalidFilter { expression: "(".into(), message: "bad".into() },
        ];
        for err in cases {
            let kind = err.error_kind();
            let mut problem = Problem::new(kind, err.to_string());
            if let Error::InvalidArgument { field, message } = &err {
                problem.errors = Some(vec![ferrymq_proto::FieldError::new(field.clone(), message.clone())]);
            }
            let back = Error::from_problem(&problem, kind.status());
            assert_eq!(back.error_kind(), kind, "{err}");
            assert_eq!(back.kind(), err.kind(), "{err}");
        }
        let invalid = Error::from_problem(&Problem::invalid(vec![ferrymq_proto::FieldError::new("/topic", "x")]), 400);
        assert!(matches!(invalid, Error::InvalidArgument { field, .. } if field == "/topic"));
        assert_eq!(Error::Timeout("slow".into()).error_kind(), ErrorKind::Unavailable);
        let unknown = Problem {
            kind: "urn:other".into(),
            title: String::new(),
            status: 502,
            detail: String::new(),
            errors: None,
        };
        assert_eq!(Error::from_problem(&unknown, 502).kind(), "unavailable");
    }
}
