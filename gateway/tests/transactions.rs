//! Transactions over HTTP: commit, rollback, unknown and ended ids, and check-backs POSTed to a
//! registered `check_url`.

mod common;

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn commit_makes_the_half_message_visible() {
    let t = TestApp::start().await;
    let sent = t.publish("tx", json!({"body": "pay", "transaction": true, "producer_group": "pg"})).await;
    let id = sent["transaction_id"].as_str().unwrap();
    let reply = t.post(&format!("/v1/transactions/{id}/commit"), json!({})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, json!({"transaction_id": id, "msg_id": sent["msg_id"], "status": "committed"}));
    let got = t.receive_n("g", "tx", 1).await;
    assert_eq!(got[0]["msg_id"], sent["msg_id"]);
    t.post(&format!("/v1/transactions/{id}/rollback"), json!({})).await.problem(409, "conflict");
}

#[tokio::test]
async fn rollback_discards_and_unknown_ids_are_404() {
    let t = TestApp::start().await;
    t.post("/v1/topics", json!({"name": "tx"})).await;
    let sent = t.publish("tx", json!({"body": "no", "transaction": true, "producer_group": "pg"})).await;
    let id = sent["transaction_id"].as_str().unwrap();
    let reply = t.post(&format!("/v1/transactions/{id}/rollback"), json!({})).await;
    assert_eq!(reply.body["status"], "rolled_back");
    let reply = t.post("/v1/groups/g/receive", json!({"topic": "tx", "wait_ms": 200})).await;
    assert_eq!(reply.body["messages"], json!([]));
    t.post("/v1/transactions/nope/commit", json!({})).await.problem(404, "not-found");
}

/// A check URL server that answers each check with `answer` and records what it got.
async fn check_server(answer: &'static str) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let app = Router::new().route(
        "/check",
        post(move |axum::Json(body): axum::Json<Value>| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push(body);
                axum::Json(json!({"status": answer}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/check"), seen)
}

#[tokio::test]
async fn check_url_answers_commit_the_transaction() {
    let t = TestApp::start().await;
    let (url, seen) = check_server("commit").await;
    let reply = t.put("/v1/producers/pg", json!({"check_url": url})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, json!({"group": "pg", "check_url": url}));

    let sent = t.publish("tx", json!({"body": "checked", "transaction": true, "producer_group": "pg"})).await;
    let got = t.receive_n("g", "tx", 1).await;
    assert_eq!(got.len(), 1, "committed by the check answer");
    assert_eq!(got[0]["msg_id"], sent["msg_id"]);
    let checks = seen.lock().unwrap().clone();
    assert!(!checks.is_empty());
    assert_eq!(checks[0]["transaction_id"], sent["transaction_id"]);
    assert_eq!(checks[0]["msg_id"], sent["msg_id"]);
    assert_eq!(checks[0]["producer_group"], "pg");
    assert_eq!(checks[0]["check_times"], 1);
    assert_eq!(checks[0]["message"]["body"], "checked");
}

#[tokio::test]
async fn unknown_answers_end_in_a_discard() {
    let t = TestApp::start().await;
    let (url, seen) = check_server("unknown").await;
    t.put("/v1/producers/pg2", json!({"check_url": url})).await;
    let sent = t.publish("tx", json!({"body": "limbo", "transaction": true, "producer_group": "pg2"})).await;
    let id = sent["transaction_id"].as_str().unwrap().to_string();
    eventually("the half message discarded", || async {
        t.get("/metrics").await.text.contains("ferrymq_transactions_discarded_total 1")
    })
    .await;
    t.post(&format!("/v1/transactions/{id}/commit"), json!({})).await.problem(409, "conflict");
    // The last check's POST may still be on its way when the discard is counted.
    eventually("three checks seen", || async { seen.lock().unwrap().len() >= 3 }).await;
    let checks = seen.lock().unwrap().clone();
    assert_eq!(checks.len(), 3, "checked transaction_check_max times");
    let times: Vec<_> = checks.iter().map(|c| c["check_times"].clone()).collect();
    assert_eq!(times, [json!(1), json!(2), json!(3)]);
}

#[tokio::test]
async fn check_url_must_be_http() {
    let t = TestApp::start().await;
    t.put("/v1/producers/pg", json!({"check_url": "not a url"})).await.problem(400, "invalid-argument");
    t.put("/v1/producers/pg", json!({"check_url": "ftp://host/x"})).await.problem(400, "invalid-argument");
}
