//! `openapi/asyncapi.yaml` documents every op: each client op the server parses and each frame
//! the server sends has its message, named after its `op`.

use std::path::PathBuf;

use ferrymq_gateway::problem::ApiError;
use ferrymq_gateway::wire::{MessageOut, MessageStateOut, SendResultOut, TransactionStatusOut};
use ferrymq_gateway::ws::protocol::{CheckFrame, FrameIds, PublishedBody, ServerFrame, OPS};

fn document() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/asyncapi.yaml");
    std::fs::read_to_string(path).expect("asyncapi.yaml")
}

fn documented(doc: &str, op: &str) -> bool {
    doc.contains(&format!("\n    {op}:\n")) && doc.contains(&format!("op: {{ const: {op} }}"))
}

#[test]
fn every_client_op_is_documented() {
    let doc = document();
    for op in OPS {
        assert!(documented(&doc, op), "client op {op} is not in asyncapi.yaml");
    }
}

#[test]
fn every_server_frame_is_documented() {
    let doc = document();
    let message = MessageOut {
        msg_id: "m".into(),
        topic: "t".into(),
        queue_id: None,
        queue_offset: None,
        commit_offset: None,
        body_base64: String::new(),
        body: None,
        tag: None,
        keys: vec![],
        properties: Default::default(),
        born_ts: 0,
        store_ts: 0,
        reconsume_times: 0,
        receipt: None,
        state: MessageStateOut::Stored,
    };
    let result = SendResultOut { msg_id: "m".into(), queue_id: None, queue_offset: None, transaction_id: None };
    let r = || "r".to_string();
    let frames = vec![
        ServerFrame::Subscribed { id: r() },
        ServerFrame::Unsubscribed { id: r() },
        ServerFrame::Message { id: r(), message: message.clone() },
        ServerFrame::Published { req_id: r(), result: PublishedBody::Single(result) },
        ServerFrame::Check(CheckFrame {
            transaction_id: r(),
            msg_id: r(),
            producer_group: r(),
            check_times: 1,
            message,
        }),
        ServerFrame::error(ApiError::invalid("/x", "y").problem(), FrameIds::default()),
        ServerFrame::HeartbeatAck { req_id: r(), group: r(), members: vec![] },
        ServerFrame::Pulled { req_id: r(), messages: vec![], next_offset: 0, min_offset: 0, max_offset: 0 },
        ServerFrame::Committed { req_id: r() },
        ServerFrame::Locked { req_id: r(), locked: true },
        ServerFrame::Unlocked { req_id: r() },
        ServerFrame::SentBack { req_id: r() },
        ServerFrame::Offset { req_id: r(), offset: None },
        ServerFrame::TransactionEnded {
            req_id: r(),
            transaction_id: r(),
            msg_id: r(),
            status: TransactionStatusOut::Committed,
        },
    ];
    for frame in frames {
        // No wildcard: a new kind of frame stops this test from compiling until it is listed.
        match &frame {
            ServerFrame::Subscribed { .. }
            | ServerFrame::Unsubscribed { .. }
            | ServerFrame::Message { .. }
            | ServerFrame::Published { .. }
            | ServerFrame::Check(_)
            | ServerFrame::Error(_)
            | ServerFrame::HeartbeatAck { .. }
            | ServerFrame::Pulled { .. }
            | ServerFrame::Committed { .. }
            | ServerFrame::Locked { .. }
            | ServerFrame::Unlocked { .. }
            | ServerFrame::SentBack { .. }
            | ServerFrame::Offset { .. }
            | ServerFrame::TransactionEnded { .. } => {}
        }
        let json = serde_json::to_value(&frame).expect("serializes");
        let op = json["op"].as_str().expect("op").to_string();
        assert!(documented(&doc, &op), "server frame {op} is not in asyncapi.yaml");
    }
}
