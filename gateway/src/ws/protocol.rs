//! The frames of the WebSocket protocol (`openapi/asyncapi.yaml` documents them), defined once
//! in [`ferrymq_proto::ws`]: [`Op`] is what a client may send, [`ServerFrame`] what the server
//! sends. This module adds what the server does with them: parse errors as [`ApiError`]s and
//! `error` frames from them.

pub use ferrymq_proto::ws::{
    AckFrame, CheckFrame, ClientFrame as Op, CommitFrame, CreditFrame, EndTransactionFrame, ErrorFrame, FrameIds,
    HeartbeatFrame, LockFrame, NackFrame, PublishBody, PublishFrame, PublishedBody, PullFrame, QueryOffsetFrame,
    RegisterProducerFrame, SendBackFrame, ServerFrame, StartIn, StartName, SubscribeFrame, SubscriptionIn,
    UnsubscribeFrame, OPS,
};

use crate::problem::ApiError;

/// Parses a text frame. On failure, the error and whatever ids could be read.
pub fn parse(text: &str) -> Result<(Op, FrameIds), (ApiError, FrameIds)> {
    Op::parse(text).map_err(|(err, ids)| (ApiError::from(err), ids))
}

/// An `error` frame for `err`, echoing `ids`.
pub fn error_frame(err: &ApiError, ids: FrameIds) -> ServerFrame {
    ServerFrame::error(err.problem(), ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_are_invalid_argument_problems_with_ids() {
        let (err, ids) = parse(r#"{"op": "dance", "id": "s1"}"#).unwrap_err();
        assert_eq!(ids.id.as_deref(), Some("s1"));
        assert_eq!(err.problem().kind, "urn:ferrymq:error:invalid-argument");
        let (err, _) = parse(r#"{"op": "credit", "id": "a", "n": "many"}"#).unwrap_err();
        assert_eq!(err.problem().errors.expect("field errors")[0].field, "/n");
    }

    #[test]
    fn error_frames_carry_the_problem_and_the_ids() {
        let ids = FrameIds { id: None, req_id: Some("r1".into()) };
        let json = serde_json::to_value(error_frame(&ApiError::Forbidden("no".into()), ids)).expect("serializes");
        assert_eq!(json["op"], "error");
        assert_eq!(json["req_id"], "r1");
        assert_eq!(json["type"], "urn:ferrymq:error:forbidden");
        assert_eq!(json["status"], 403);
    }
}
