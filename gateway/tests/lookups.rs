//! Message lookups by id, by key and by store time.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

#[tokio::test]
async fn message_by_id_has_every_field() {
    let t = TestApp::start().await;
    let sent = t.publish("l", json!({"body": "hi"})).await;
    let reply = t.get(&format!("/v1/messages/{}", sent["msg_id"].as_str().unwrap())).await;
    assert_eq!(reply.status, StatusCode::OK);
    let m = reply.body.as_object().unwrap();
    for field in ferrymq_gateway::wire::MESSAGE_FIELDS {
        assert!(m.contains_key(field), "{field} missing");
    }
    assert_eq!(m["tag"], serde_json::Value::Null);
    assert_eq!(m["keys"], json!([]));
    assert_eq!(m["properties"], json!({}));
    assert_eq!(m["body_base64"], "aGk=");
    t.get("/v1/messages/unknown-id").await.problem(404, "not-found");
}

#[tokio::test]
async fn find_by_key_and_time() {
    let t = TestApp::start().await;
    let before = ferrymq_core::broker::now_ms();
    t.publish("k", json!({"body": "1", "keys": ["order-1"]})).await;
    t.publish("k", json!({"body": "2", "keys": ["order-2"]})).await;
    t.publish("k", json!({"body": "3", "keys": ["order-1"]})).await;
    let reply = t.get("/v1/topics/k/messages?key=order-1").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let bodies: Vec<_> = reply.body["messages"].as_array().unwrap().iter().map(|m| m["body"].clone()).collect();
    assert_eq!(bodies, [json!("1"), json!("3")]);

    let reply = t.get(&format!("/v1/topics/k/messages?from_ts={before}&limit=2")).await;
    assert_eq!(reply.body["messages"].as_array().unwrap().len(), 2);
    let reply = t.get(&format!("/v1/topics/k/messages?to_ts={before}")).await;
    assert_eq!(reply.body["messages"], json!([]));
}
