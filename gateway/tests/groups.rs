//! `/v1/groups`: listing, detail with offsets and lag, settings, offset resets, dead letters.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

#[tokio::test]
async fn group_detail_shows_subscriptions_offsets_and_lag() {
    let t = TestApp::start().await;
    t.post("/v1/topics", json!({"name": "t", "queues": 2})).await;
    for i in 0..3 {
        t.publish("t", json!({"body": i.to_string()})).await;
    }
    let got = t.receive_n("g", "t", 1).await;
    let receipt = got[0]["receipt"].as_str().unwrap();
    let reply = t.get("/v1/groups/g").await;
    assert_eq!(reply.status, StatusCode::OK);
    let g = &reply.body;
    assert_eq!(g["group"], "g");
    assert_eq!(g["max_reconsume_times"], 16);
    assert_eq!(g["subscriptions"], json!([{"topic": "t", "filter": "*", "mode": "clustering"}]));
    let lag: u64 = g["offsets"].as_array().unwrap().iter().map(|o| o["lag"].as_u64().unwrap()).sum();
    assert_eq!(lag, 3, "nothing acked yet: {}", reply.text);
    for o in g["offsets"].as_array().unwrap() {
        assert_eq!(o["topic"], "t");
        assert_eq!(o["lag"].as_u64().unwrap(), o["max"].as_u64().unwrap() - o["committed"].as_u64().unwrap());
    }
    t.post("/v1/groups/g/ack", json!({"receipts": [receipt]})).await;
    let rest = t.receive_n("g", "t", 2).await;
    let receipts: Vec<_> = rest.iter().map(|m| m["receipt"].clone()).collect();
    t.post("/v1/groups/g/ack", json!({"receipts": receipts})).await;
    let reply = t.get("/v1/groups/g").await;
    let lag: u64 = reply.body["offsets"].as_array().unwrap().iter().map(|o| o["lag"].as_u64().unwrap()).sum();
    assert_eq!(lag, 0);

    let list = t.get("/v1/groups").await;
    let groups = list.body["groups"].as_array().unwrap();
    let entry = groups.iter().find(|g| g["group"] == "g").expect("listed");
    assert!(entry["members"].is_u64());
    assert_eq!(entry["topics"], json!(["t"]));
}

#[tokio::test]
async fn put_without_a_body_creates_the_group_with_defaults() {
    let t = TestApp::start().await;
    let reply = t.call(axum::http::Method::PUT, "/v1/groups/bare", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["max_reconsume_times"], 16);
    let reply = t.call(axum::http::Method::POST, "/v1/groups/bare/receive", None).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/topic");
}

#[tokio::test]
async fn unknown_group_is_404_and_put_creates_it() {
    let t = TestApp::start().await;
    t.get("/v1/groups/fresh").await.problem(404, "not-found");
    let reply = t.put("/v1/groups/fresh", json!({"max_reconsume_times": 2})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["max_reconsume_times"], 2);
    assert_eq!(t.get("/v1/groups/fresh").await.body["max_reconsume_times"], 2);
    t.put("/v1/groups/fresh", json!({"max_reconsume_times": 100000})).await.problem(400, "invalid-argument");
}

#[tokio::test]
async fn reset_replays_from_earliest_and_skips_to_latest() {
    let t = TestApp::start().await;
    t.post("/v1/topics", json!({"name": "r", "queues": 1})).await;
    for i in 0..3 {
        t.publish("r", json!({"body": i.to_string()})).await;
    }
    let got = t.receive_n("g", "r", 3).await;
    let receipts: Vec<_> = got.iter().map(|m| m["receipt"].clone()).collect();
    t.post("/v1/groups/g/ack", json!({"receipts": receipts})).await;

    let reply = t.post("/v1/groups/g/offsets/reset", json!({"topic": "r", "to": "earliest"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, json!({"offsets": [{"queue_id": 0, "offset": 0}]}));
    assert_eq!(t.receive_n("g", "r", 3).await.len(), 3, "replayed");

    let reply = t.post("/v1/groups/g/offsets/reset", json!({"topic": "r", "to": "latest"})).await;
    assert_eq!(reply.body, json!({"offsets": [{"queue_id": 0, "offset": 3}]}));

    let reply = t.post("/v1/groups/g/offsets/reset", json!({"topic": "r", "timestamp": 0})).await;
    assert_eq!(reply.body["offsets"][0]["offset"], 0);

    t.post("/v1/groups/g/offsets/reset", json!({"topic": "r"})).await.problem(400, "invalid-argument");
    t.post("/v1/groups/g/offsets/reset", json!({"topic": "r", "to": "latest", "timestamp": 1}))
        .await
        .problem(400, "invalid-argument");
    t.post("/v1/groups/g/offsets/reset", json!({"topic": "r", "to": "middle"})).await.problem(400, "invalid-argument");
    t.post("/v1/groups/g/offsets/reset", json!({"topic": "none", "to": "latest"})).await.problem(404, "not-found");
}

#[tokio::test]
async fn a_group_never_seen_has_no_dead_letters_to_list_but_a_known_one_has_an_empty_list() {
    let t = TestApp::start().await;
    t.get("/v1/groups/never-seen/dlq").await.problem(404, "not-found");
    t.post("/v1/groups/never-seen/dlq/0123/resend", json!({})).await.problem(404, "not-found");
    assert_eq!(t.put("/v1/groups/made", json!({})).await.status, 200);
    let listed = t.get("/v1/groups/made/dlq").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body, json!({"messages": []}));
}

#[tokio::test]
async fn failing_message_reaches_the_dlq_and_can_be_resent() {
    let t = TestApp::start().await;
    t.put("/v1/groups/dg", json!({"max_reconsume_times": 1})).await;
    let sent = t.publish("d", json!({"body": "poison"})).await;
    for attempt in 0..2 {
        let got = t.receive_n("dg", "d", 1).await;
        assert_eq!(got.len(), 1, "delivery {attempt}");
        assert_eq!(got[0]["reconsume_times"], attempt);
        let reply = t.post("/v1/groups/dg/nack", json!({"receipts": [got[0]["receipt"]], "delay_ms": 10})).await;
        assert_eq!(reply.body["nacked"], 1);
    }
    eventually("the message in the DLQ", || async {
        t.get("/v1/groups/dg/dlq").await.body["messages"].as_array().is_some_and(|m| !m.is_empty())
    })
    .await;
    let dlq = t.get("/v1/groups/dg/dlq").await.body;
    assert_eq!(dlq["messages"][0]["msg_id"], sent["msg_id"]);
    assert_eq!(dlq["messages"][0]["topic"], "d");

    let msg_id = sent["msg_id"].as_str().unwrap();
    let reply = t.post(&format!("/v1/groups/dg/dlq/{msg_id}/resend"), json!({})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["msg_id"], sent["msg_id"]);
    let again = t.receive_n("dg", "d", 1).await;
    assert_eq!(again[0]["msg_id"], sent["msg_id"]);
    assert_eq!(again[0]["reconsume_times"], 0);
    t.post(&format!("/v1/groups/dg/dlq/{msg_id}/resend"), json!({})).await.problem(404, "not-found");
}
