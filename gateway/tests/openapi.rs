//! `openapi/openapi.json` is generated from the code: this test regenerates it and fails on any
//! difference. Run with `UPDATE_OPENAPI=1` to rewrite the checked-in file.

mod common;

use std::path::PathBuf;

use axum::http::StatusCode;
use common::*;

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json")
}

#[test]
fn checked_in_openapi_is_current() {
    let generated = ferrymq_gateway::openapi::document_json().expect("serializes");
    let path = checked_in();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "openapi/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p ferrymq-gateway --test openapi`"
    );
}

#[test]
fn document_covers_every_contract_route() {
    let doc: serde_json::Value = serde_json::from_str(&ferrymq_gateway::openapi::document_json().unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/topics", "post"),
        ("/v1/topics", "get"),
        ("/v1/topics/{topic}", "get"),
        ("/v1/topics/{topic}", "delete"),
        ("/v1/topics/{topic}/messages", "post"),
        ("/v1/topics/{topic}/messages", "get"),
        ("/v1/messages/{msg_id}", "get"),
        ("/v1/groups", "get"),
        ("/v1/groups/{group}", "get"),
        ("/v1/groups/{group}", "put"),
        ("/v1/groups/{group}/receive", "post"),
        ("/v1/groups/{group}/ack", "post"),
        ("/v1/groups/{group}/nack", "post"),
        ("/v1/groups/{group}/change_invisible", "post"),
        ("/v1/groups/{group}/offsets/reset", "post"),
        ("/v1/groups/{group}/dlq", "get"),
        ("/v1/groups/{group}/dlq/{msg_id}/resend", "post"),
        ("/v1/transactions/{id}/commit", "post"),
        ("/v1/transactions/{id}/rollback", "post"),
        ("/v1/producers/{group}", "put"),
        ("/v1/ws", "get"),
        ("/v1/ws/tickets", "post"),
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing");
    }
    let message = &doc["components"]["schemas"]["MessageOut"];
    let required: Vec<&str> = message["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for field in ["msg_id", "body", "tag", "keys", "properties", "receipt", "queue_id", "state"] {
        assert!(required.contains(&field), "{field} is always present");
    }
}

#[tokio::test]
async fn served_document_is_the_generated_one() {
    let t = TestApp::start().await;
    let reply = t.get("/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text, ferrymq_gateway::openapi::document_json().unwrap());
}
