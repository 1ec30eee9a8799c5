//! `/v1/topics`: create, list, show with queue offsets, delete; name rules and conflicts.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

#[tokio::test]
async fn create_list_show_delete() {
    let t = TestApp::start().await;
    let reply = t.post("/v1/topics", json!({"name": "orders", "queues": 4, "perm": "rw"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body, json!({"name": "orders", "queues": 4, "perm": "rw"}));

    let reply = t.get("/v1/topics").await;
    assert_eq!(reply.status, StatusCode::OK);
    let topics = reply.body["topics"].as_array().unwrap();
    assert!(topics.contains(&json!({"name": "orders", "queues": 4, "perm": "rw"})), "{}", reply.text);

    t.publish("orders", json!({"body": "one", "sharding_key": "k"})).await;
    let reply = t.get("/v1/topics/orders").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["name"], "orders");
    let queues = reply.body["queue_offsets"].as_array().unwrap();
    assert_eq!(queues.len(), 4);
    let total: u64 = queues.iter().map(|q| q["max"].as_u64().unwrap() - q["min"].as_u64().unwrap()).sum();
    assert_eq!(total, 1);
    for q in queues {
        assert!(q["queue_id"].is_u64());
    }

    let reply = t.delete("/v1/topics/orders").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    t.get("/v1/topics/orders").await.problem(404, "not-found");
    t.delete("/v1/topics/orders").await.problem(404, "not-found");
}

#[tokio::test]
async fn defaults_are_the_server_queue_count_and_rw() {
    let t = TestApp::start().await;
    let reply = t.post("/v1/topics", json!({"name": "plain"})).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["queues"], 8);
    assert_eq!(reply.body["perm"], "rw");
}

#[tokio::test]
async fn existing_topic_is_a_conflict() {
    let t = TestApp::start().await;
    assert_eq!(t.post("/v1/topics", json!({"name": "dup"})).await.status, StatusCode::CREATED);
    t.post("/v1/topics", json!({"name": "dup"})).await.problem(409, "conflict");
}

#[tokio::test]
async fn bad_and_reserved_names_are_400() {
    let t = TestApp::start().await;
    for name in ["", "has space", "a%b", "RMQ_SYS_X", "SCHEDULE_TOPIC_XXXX", &"x".repeat(128)] {
        let reply = t.post("/v1/topics", json!({"name": name})).await;
        reply.problem(400, "invalid-argument");
        assert_eq!(reply.body["errors"][0]["field"], "/name", "the error points at the request's field");
    }
    t.post("/v1/topics", json!({"name": "ok", "perm": "x"})).await.problem(400, "invalid-argument");
    t.post("/v1/topics", json!({"name": "ok", "queues": 0})).await.problem(400, "invalid-argument");
}
