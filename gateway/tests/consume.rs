//! Simple consumption over REST: receive with leases, ack outcomes, nack and redelivery,
//! change_invisible, filters, validation, membership by `ferry-client-id`.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use serde_json::json;

#[tokio::test]
async fn receive_then_ack_reports_outcomes() {
    let t = TestApp::start().await;
    t.publish("t", json!({"body": "a"})).await;
    let got = t.receive_n("g", "t", 1).await;
    let receipt = got[0]["receipt"].as_str().unwrap().to_string();
    assert_eq!(got[0]["reconsume_times"], 0);

    let reply = t.post("/v1/groups/g/ack", json!({"receipts": [receipt]})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, json!({"acked": 1, "failed": []}));

    let reply = t.post("/v1/groups/g/ack", json!({"receipts": [receipt]})).await;
    assert_eq!(reply.body, json!({"acked": 0, "failed": [{"receipt": receipt, "reason": "acked"}]}));

    let reply = t.post("/v1/groups/other/ack", json!({"receipts": [receipt]})).await;
    assert_eq!(reply.body["failed"][0]["reason"], "unknown");
}

#[tokio::test]
async fn unparseable_receipt_fails_the_whole_request_before_any_ack() {
    let t = TestApp::start().await;
    t.publish("t", json!({"body": "a"})).await;
    let got = t.receive_n("g", "t", 1).await;
    let receipt = got[0]["receipt"].as_str().unwrap().to_string();
    let reply = t.post("/v1/groups/g/ack", json!({"receipts": [receipt, "garbage"]})).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/receipts/1");
    // The good receipt was not acked by the refused request.
    let reply = t.post("/v1/groups/g/ack", json!({"receipts": [receipt]})).await;
    assert_eq!(reply.body["acked"], 1);
    t.post("/v1/groups/g/nack", json!({"receipts": ["nope"]})).await.problem(400, "invalid-argument");
}

#[tokio::test]
async fn nack_brings_the_message_back_with_reconsume_times() {
    let t = TestApp::start().await;
    let sent = t.publish("t", json!({"body": "retry me"})).await;
    let got = t.receive_n("g", "t", 1).await;
    let receipt = got[0]["receipt"].as_str().unwrap();
    let reply = t.post("/v1/groups/g/nack", json!({"receipts": [receipt], "delay_ms": 50})).await;
    assert_eq!(reply.body, json!({"nacked": 1, "failed": []}), "{}", reply.text);
    let again = t.receive_n("g", "t", 1).await;
    assert_eq!(again[0]["msg_id"], sent["msg_id"]);
    assert_eq!(again[0]["reconsume_times"], 1);
    assert_eq!(again[0]["topic"], "t");
}

#[tokio::test]
async fn change_invisible_issues_a_new_receipt() {
    let t = TestApp::start().await;
    t.publish("t", json!({"body": "a"})).await;
    let got = t.receive_n("g", "t", 1).await;
    let old = got[0]["receipt"].as_str().unwrap().to_string();
    let reply = t.post("/v1/groups/g/change_invisible", json!({"receipt": old, "invisible_ms": 5000})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let new = reply.body["receipt"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    t.post("/v1/groups/g/change_invisible", json!({"receipt": old, "invisible_ms": 5000}))
        .await
        .problem(404, "not-found");
    t.post("/v1/groups/g/change_invisible", json!({"receipt": new, "invisible_ms": 10}))
        .await
        .problem(400, "invalid-argument");
    t.post("/v1/groups/g/change_invisible", json!({"receipt": "bad", "invisible_ms": 5000}))
        .await
        .problem(400, "invalid-argument");
    let reply = t.post("/v1/groups/g/ack", json!({"receipts": [new]})).await;
    assert_eq!(reply.body["acked"], 1);
}

#[tokio::test]
async fn filters_select_and_bad_filters_are_400() {
    let t = TestApp::start().await;
    t.publish("f", json!({"body": "a", "tag": "A", "properties": {"n": "5"}})).await;
    t.publish("f", json!({"body": "b", "tag": "B", "properties": {"n": "50"}})).await;
    let reply = t.post("/v1/groups/tags/receive", json!({"topic": "f", "filter": "B"})).await;
    let bodies: Vec<_> = reply.body["messages"].as_array().unwrap().iter().map(|m| m["body"].clone()).collect();
    assert_eq!(bodies, [json!("b")]);
    let reply = t.post("/v1/groups/sql/receive", json!({"topic": "f", "sql": "n > 10"})).await;
    let bodies: Vec<_> = reply.body["messages"].as_array().unwrap().iter().map(|m| m["body"].clone()).collect();
    assert_eq!(bodies, [json!("b")]);

    t.post("/v1/groups/g/receive", json!({"topic": "f", "sql": "n >"})).await.problem(400, "invalid-filter");
    t.post("/v1/groups/g/receive", json!({"topic": "f", "filter": "A ||"})).await.problem(400, "invalid-filter");
    t.post("/v1/groups/g/receive", json!({"topic": "f", "filter": "A", "sql": "n > 1"}))
        .await
        .problem(400, "invalid-argument");
}

#[tokio::test]
async fn receive_validates_its_limits() {
    let t = TestApp::start().await;
    t.publish("v", json!({"body": "a"})).await;
    for (body, field) in [
        (json!({"topic": "v", "max_messages": 0}), "/max_messages"),
        (json!({"topic": "v", "max_messages": 1001}), "/max_messages"),
        (json!({"topic": "v", "wait_ms": 30001}), "/wait_ms"),
        (json!({"topic": "v", "invisible_ms": 999}), "/invisible_ms"),
        (json!({"topic": "v", "invisible_ms": 43200001u64}), "/invisible_ms"),
        (json!({"topic": "v", "wait_ms": -1}), "/wait_ms"),
    ] {
        let reply = t.post("/v1/groups/g/receive", body).await;
        reply.problem(400, "invalid-argument");
        assert_eq!(reply.field(), field);
    }
}

#[tokio::test]
async fn receive_from_missing_or_write_only_topic() {
    let t = TestApp::start().await;
    t.post("/v1/groups/g/receive", json!({"topic": "missing"})).await.problem(404, "not-found");
    assert_eq!(t.post("/v1/topics", json!({"name": "wo", "perm": "w"})).await.status, StatusCode::CREATED);
    t.post("/v1/groups/g/receive", json!({"topic": "wo"})).await.problem(403, "forbidden");
}

#[tokio::test]
async fn long_poll_wakes_on_publish() {
    let t = TestApp::start().await;
    t.post("/v1/topics", json!({"name": "lp"})).await;
    let router = t.router();
    let waiter = tokio::spawn(async move {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let request = Request::post("/v1/groups/g/receive")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"topic": "lp", "wait_ms": 5000}).to_string()))
            .unwrap();
        let started = std::time::Instant::now();
        let response = router.oneshot(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (started.elapsed(), serde_json::from_slice::<serde_json::Value>(&bytes).unwrap())
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    t.publish("lp", json!({"body": "wake"})).await;
    let (elapsed, body) = waiter.await.unwrap();
    assert_eq!(body["messages"][0]["body"], "wake");
    assert!(elapsed < std::time::Duration::from_secs(4), "woke early: {elapsed:?}");
}

#[tokio::test]
async fn rest_receiver_is_a_member_named_by_its_header() {
    let t = TestApp::start().await;
    t.publish("m", json!({"body": "a"})).await;
    let request = Request::post("/v1/groups/members/receive")
        .header(header::CONTENT_TYPE, "application/json")
        .header("ferry-client-id", "worker-7")
        .body(Body::from(json!({"topic": "m"}).to_string()))
        .unwrap();
    assert_eq!(t.send(request).await.status, StatusCode::OK);
    let group = t.get("/v1/groups/members").await;
    let members = group.body["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{}", group.text);
    assert_eq!(members[0]["client_id"], "worker-7");
    assert_eq!(members[0]["transport"], "rest");
    assert!(members[0]["since"].is_u64());
}

#[tokio::test]
async fn waiting_rest_receivers_share_a_burst() {
    let t = TestApp::start().await;
    t.post("/v1/topics", serde_json::json!({"name": "burst", "queues": 8})).await;
    let receive_as = |client: &'static str| {
        let t = &t;
        async move {
            let request = axum::http::Request::builder()
                .method(axum::http::Method::POST)
                .uri("/v1/groups/g/receive")
                .header("content-type", "application/json")
                .header("ferry-client-id", client)
                .body(axum::body::Body::from(
                    serde_json::json!({"topic": "burst", "max_messages": 40, "wait_ms": 10000}).to_string(),
                ))
                .unwrap();
            let reply = t.send(request).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            reply.body["messages"].as_array().unwrap().len()
        }
    };
    let publish = async {
        eventually("two waiting receivers", || async { t.broker.waiting_receivers("g", "burst") == 2 }).await;
        let batch: Vec<serde_json::Value> = (0..40).map(|i| serde_json::json!({"body": format!("m{i}")})).collect();
        let reply = t.post("/v1/topics/burst/messages", serde_json::json!({"messages": batch})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    };
    let (a, b, ()) = tokio::join!(receive_as("a"), receive_as("b"), publish);
    assert!(a > 0 && b > 0, "both waiting receivers got a share: {a} and {b}");
    assert!(a + b <= 40);
}
