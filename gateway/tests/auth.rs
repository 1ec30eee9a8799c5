//! Auth with an auth file: bearer tokens, `?token=`, actions and topic/group grants, open
//! routes, and single-use WebSocket tickets.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use ferrymq_gateway::auth::AuthConfig;
use ferrymq_gateway::GatewaySettings;
use serde_json::json;

const AUTH: &str = r#"
[[tokens]]
token = "admin-secret"
topics = ["*"]
groups = ["*"]
actions = ["publish", "consume", "admin"]

[[tokens]]
token = "orders-producer"
topics = ["orders*"]
actions = ["publish"]

[[tokens]]
token = "orders-reader"
topics = ["orders*"]
groups = ["billing"]
actions = ["consume"]
"#;

async fn app() -> TestApp {
    let settings = GatewaySettings { auth: Some(AuthConfig::parse(AUTH).unwrap()), ..settings() };
    TestApp::start_with(|_| {}, settings).await
}

fn with_token(request: axum::http::request::Builder, token: &str) -> axum::http::request::Builder {
    request.header(header::AUTHORIZATION, format!("Bearer {token}"))
}

fn publish(topic: &str, token: &str) -> Request<Body> {
    with_token(Request::post(format!("/v1/topics/{topic}/messages")), token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"body": "x"}).to_string()))
        .unwrap()
}

#[tokio::test]
async fn no_or_bad_token_is_401_but_health_and_spec_are_open() {
    let t = app().await;
    let reply = t.get("/v1/topics").await;
    reply.problem(401, "unauthorized");
    assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
    let request = with_token(Request::get("/v1/topics"), "wrong").body(Body::empty()).unwrap();
    t.send(request).await.problem(401, "unauthorized");
    assert_eq!(t.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(t.get("/openapi.json").await.status, StatusCode::OK);
}

#[tokio::test]
async fn grants_limit_actions_topics_and_groups() {
    let t = app().await;
    assert_eq!(t.send(publish("orders", "orders-producer")).await.status, StatusCode::OK);
    t.send(publish("payments", "orders-producer")).await.problem(403, "forbidden");
    t.send(publish("orders", "orders-reader")).await.problem(403, "forbidden");

    let receive = |group: &str, token: &str| {
        with_token(Request::post(format!("/v1/groups/{group}/receive")), token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"topic": "orders"}).to_string()))
            .unwrap()
    };
    assert_eq!(t.send(receive("billing", "orders-reader")).await.status, StatusCode::OK);
    t.send(receive("shipping", "orders-reader")).await.problem(403, "forbidden");

    let create = with_token(Request::post("/v1/topics"), "orders-producer")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"name": "orders2"}).to_string()))
        .unwrap();
    t.send(create).await.problem(403, "forbidden");
    let metrics = with_token(Request::get("/metrics"), "orders-reader").body(Body::empty()).unwrap();
    t.send(metrics).await.problem(403, "forbidden");
    let metrics = with_token(Request::get("/metrics"), "admin-secret").body(Body::empty()).unwrap();
    assert_eq!(t.send(metrics).await.status, StatusCode::OK);
}

#[tokio::test]
async fn token_query_parameter_works_on_any_route() {
    let t = app().await;
    assert_eq!(t.get("/v1/topics?token=admin-secret").await.status, StatusCode::OK);
    t.get("/v1/topics?token=nope").await.problem(401, "unauthorized");
}

#[tokio::test]
async fn listings_show_only_granted_topics() {
    let t = app().await;
    assert_eq!(t.send(publish("orders", "admin-secret")).await.status, StatusCode::OK);
    assert_eq!(t.send(publish("secret", "admin-secret")).await.status, StatusCode::OK);
    let request = with_token(Request::get("/v1/topics"), "orders-reader").body(Body::empty()).unwrap();
    let reply = t.send(request).await;
    let names: Vec<_> = reply.body["topics"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
    assert_eq!(names, [json!("orders")]);
}

#[tokio::test]
async fn tickets_are_single_use_and_carry_grants() {
    let t = app().await;
    let addr = t.serve().await;
    let request = with_token(Request::post("/v1/ws/tickets"), "orders-reader").body(Body::empty()).unwrap();
    let reply = t.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    let ticket = reply.body["ticket"].as_str().unwrap().to_string();
    assert!(reply.body["expires_at"].as_u64().unwrap() > ferrymq_core::broker::now_ms());
    t.post("/v1/ws/tickets", json!({})).await.problem(401, "unauthorized");

    let mut ws = WsClient::connect(addr, &format!("?ticket={ticket}")).await;
    ws.send(json!({"op": "publish", "req_id": "p", "topic": "orders", "body": "x"})).await;
    let error = ws.next_op("error").await;
    assert_eq!(error["req_id"], "p");
    assert_eq!(error["type"], "urn:ferrymq:error:forbidden");
    ws.close().await;

    let reused = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws?ticket={ticket}")).await;
    assert!(reused.is_err(), "a ticket works once");
    let anonymous = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws")).await;
    assert!(anonymous.is_err(), "a token or ticket is required");
}

#[tokio::test]
async fn tickets_work_without_an_auth_file_too() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    let reply = t.post("/v1/ws/tickets", json!({})).await;
    let ticket = reply.body["ticket"].as_str().unwrap().to_string();
    let mut ws = WsClient::connect(addr, &format!("?ticket={ticket}")).await;
    ws.send(json!({"op": "publish", "req_id": "p", "topic": "t", "body": "x"})).await;
    assert_eq!(ws.next_op("published").await["req_id"], "p");
    ws.close().await;
    let reused = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws?ticket={ticket}")).await;
    assert!(reused.is_err(), "single use without an auth file as well");
}

fn post_json(uri: &str, token: &str, body: serde_json::Value) -> Request<Body> {
    with_token(Request::post(uri), token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Publishes a transactional message as `admin-secret`; returns (transaction_id, msg_id).
async fn half(t: &TestApp, topic: &str, group: &str) -> (String, String) {
    let body = json!({"body": "tx", "transaction": true, "producer_group": group});
    let reply = t.send(post_json(&format!("/v1/topics/{topic}/messages"), "admin-secret", body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    (reply.body["transaction_id"].as_str().unwrap().to_string(), reply.body["msg_id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn ending_a_transaction_needs_publish_on_its_topic_and_ids_are_unguessable() {
    let t = app().await;
    let (payments_tx, _) = half(&t, "payments", "pg").await;
    let commit = |id: &str, token: &str| post_json(&format!("/v1/transactions/{id}/commit"), token, json!({}));
    t.send(commit(&payments_tx, "orders-producer")).await.problem(403, "forbidden");
    let (orders_tx, _) = half(&t, "orders", "pg").await;
    assert_eq!(t.send(commit(&orders_tx, "orders-producer")).await.status, StatusCode::OK);
    assert_eq!(t.send(commit(&payments_tx, "admin-secret")).await.status, StatusCode::OK);
    // Over WebSocket too.
    let addr = t.serve().await;
    let (another, _) = half(&t, "payments", "pg").await;
    let mut ws = WsClient::connect(addr, "?token=orders-producer").await;
    ws.send(json!({"op": "end_transaction", "transaction_id": another, "status": "commit", "req_id": "e"})).await;
    assert_eq!(ws.next_op("error").await["type"], "urn:ferrymq:error:forbidden");
    ws.close().await;
    // Ids are not a counter: the low 64 bits of ids issued one after another are far apart.
    let mut lows = Vec::new();
    for _ in 0..6 {
        let (id, _) = half(&t, "orders", "pg").await;
        lows.push(u64::from_str_radix(&id[id.len() - 16..], 16).unwrap());
    }
    let spread = lows.iter().max().unwrap() - lows.iter().min().unwrap();
    assert!(spread > 1 << 40, "transaction ids look sequential: {lows:?}");
}

#[tokio::test]
async fn checks_reach_only_connections_that_may_publish_to_the_topic() {
    let t = app().await;
    let addr = t.serve().await;
    let (payments_tx, _) = half(&t, "payments", "pg").await;
    // This connection publishes transactionally for "pg" on its own topic, so it answers
    // checks of "pg", but only those of topics its token may publish to.
    let mut ws = WsClient::connect(addr, "?token=orders-producer").await;
    ws.send(json!({"op": "publish", "req_id": "p", "topic": "orders", "body": "mine", "transaction": true,
        "producer_group": "pg"}))
        .await;
    let orders_tx = ws.next_op("published").await["transaction_id"].as_str().unwrap().to_string();
    // Each half is checked up to transaction_check_max (3) times; the payments half, older,
    // has had all its checks by the time the orders half has had three.
    let mut orders_checks = 0;
    while orders_checks < 3 {
        let check = ws.next_op("check").await;
        assert_ne!(check["transaction_id"], payments_tx, "shown a half message of a topic it may not publish to");
        assert_eq!(check["transaction_id"], orders_tx);
        orders_checks += 1;
    }
    ws.close().await;
}

#[tokio::test]
async fn send_back_only_takes_a_message_of_the_frames_topic() {
    let t = app().await;
    let addr = t.serve().await;
    let reply = t.send(post_json("/v1/topics/payments/messages", "admin-secret", json!({"body": "secret"}))).await;
    let msg_id = reply.body["msg_id"].as_str().unwrap().to_string();
    let looked_up = t
        .send(with_token(Request::get(format!("/v1/messages/{msg_id}")), "admin-secret").body(Body::empty()).unwrap())
        .await;
    let commit_offset = looked_up.body["commit_offset"].as_u64().unwrap();
    let mut ws = WsClient::connect(addr, "?token=orders-reader").await;
    ws.send(json!({"op": "send_back", "req_id": "s", "group": "billing", "topic": "orders", "msg_id": msg_id,
        "commit_offset": commit_offset, "delay_ms": 0}))
        .await;
    let answer = ws.next().await;
    assert_eq!(answer["op"], "error", "{answer}");
    assert_eq!(answer["type"], "urn:ferrymq:error:not-found");
    ws.close().await;
}

#[tokio::test]
async fn the_group_grant_covers_native_ops_on_its_retry_topic() {
    let t = app().await;
    let addr = t.serve().await;
    let mut ws = WsClient::connect(addr, "?token=orders-reader").await;
    let retry = "%RETRY%billing";
    ws.send(json!({"op": "pull", "req_id": "p", "group": "billing", "topic": retry, "queue_id": 0, "offset": 0})).await;
    assert_eq!(ws.next().await["op"], "pulled");
    ws.send(json!({"op": "lock", "req_id": "l", "group": "billing", "topic": retry, "queue_id": 0})).await;
    assert_eq!(ws.next().await["op"], "locked");
    ws.send(json!({"op": "query_offset", "req_id": "q", "group": "billing", "topic": retry, "queue_id": 0})).await;
    assert_eq!(ws.next().await["op"], "offset");
    // Another group's retry topic is still out of bounds.
    ws.send(json!({"op": "pull", "req_id": "x", "group": "shipping", "topic": "%RETRY%shipping", "queue_id": 0,
        "offset": 0}))
        .await;
    assert_eq!(ws.next().await["type"], "urn:ferrymq:error:forbidden");
    ws.close().await;
}
