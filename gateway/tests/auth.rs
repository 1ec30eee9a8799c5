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
