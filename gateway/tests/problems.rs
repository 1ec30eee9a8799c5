//! Every failure is an RFC 9457 problem with the contract's kind and status: unknown routes,
//! wrong methods, malformed JSON, wrong types, missing fields, wrong media types, bodies over
//! the limit, and a broker that has not opened yet.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use ferrymq_gateway::{app, AppState};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

#[tokio::test]
async fn unknown_route_is_a_not_found_problem() {
    let t = TestApp::start().await;
    let reply = t.get("/v1/nothing/here").await;
    reply.problem(404, "not-found");
}

#[tokio::test]
async fn wrong_method_is_method_not_allowed_with_allow() {
    let t = TestApp::start().await;
    let reply = t.call(Method::PATCH, "/v1/topics", None).await;
    reply.problem(405, "method-not-allowed");
    let allow = reply.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow}");
}

#[tokio::test]
async fn malformed_json_is_invalid_argument_at_the_root() {
    let t = TestApp::start().await;
    let request = Request::post("/v1/topics")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    let reply = t.send(request).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "");
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_invalid_and_names_no_internal_type() {
    let t = TestApp::start().await;
    for (uri, body) in [
        ("/v1/topics", json!(["arrayed", 2, "rw"])),
        ("/v1/topics/t/messages", json!(["hello"])),
        ("/v1/groups/g/receive", json!("t")),
        ("/v1/topics", json!({"name": "nested", "queues": [2]})),
    ] {
        let reply = t.post(uri, body.clone()).await;
        reply.problem(400, "invalid-argument");
        let detail = reply.body["detail"].as_str().unwrap().to_string();
        for internal in ["struct", "enum", "CreateTopic", "PublishMessage", "ReceiveBody"] {
            assert!(!detail.contains(internal), "{uri} {body}: {detail}");
        }
    }
    assert_eq!(t.get("/v1/topics/arrayed").await.status, 404, "no topic made from an array");
    let reply = t.post("/v1/topics", json!(["arrayed", 2, "rw"])).await;
    assert!(reply.body["detail"].as_str().unwrap().contains("JSON object"), "{}", reply.text);
}

#[tokio::test]
async fn wrong_type_and_missing_field_name_the_field() {
    let t = TestApp::start().await;
    let reply = t.post("/v1/topics", json!({"name": "t", "queues": "eight"})).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/queues");

    let reply = t.post("/v1/groups/g/receive", json!({"max_messages": 3})).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/topic");

    let reply = t.post("/v1/topics/t/messages", json!({"messages": [{"body": "a"}, {"body": 7}]})).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/messages/1/body");
}

#[tokio::test]
async fn non_json_media_type_on_a_json_route_is_415() {
    let t = TestApp::start().await;
    let request = Request::post("/v1/topics")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{\"name\": \"t\"}"))
        .unwrap();
    t.send(request).await.problem(415, "unsupported-media-type");
}

#[tokio::test]
async fn body_over_the_http_limit_is_413() {
    let t = TestApp::start().await;
    let huge = vec![b'x'; settings().body_limit + 1];
    let request = Request::post("/v1/topics/big/messages")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(huge))
        .unwrap();
    t.send(request).await.problem(413, "payload-too-large");
}

#[tokio::test]
async fn message_over_max_message_bytes_is_413() {
    let t = TestApp::start().await;
    let request = Request::post("/v1/topics/big/messages")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(vec![b'x'; MAX_MESSAGE_BYTES + 1]))
        .unwrap();
    t.send(request).await.problem(413, "payload-too-large");
    let ok = Request::post("/v1/topics/big/messages")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(vec![b'x'; MAX_MESSAGE_BYTES]))
        .unwrap();
    assert_eq!(t.send(ok).await.status, StatusCode::OK);
}

#[tokio::test]
async fn health_is_503_until_the_broker_opens() {
    let state = AppState::new(settings());
    let router = app(state.clone());
    let response = router.clone().oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
    let response = router.clone().oneshot(Request::get("/v1/topics").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["type"], "urn:ferrymq:error:unavailable");

    let dir = tempfile::tempdir().unwrap();
    let broker = ferrymq_core::broker::Broker::open(broker_config(dir.path())).await.unwrap();
    state.set_broker(broker.clone());
    let response = router.oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_makes_routes_unavailable() {
    let t = TestApp::start().await;
    assert_eq!(t.get("/healthz").await.status, StatusCode::OK);
    t.state.begin_shutdown();
    t.get("/healthz").await.problem(503, "unavailable");
    t.get("/v1/topics").await.problem(503, "unavailable");
}

#[tokio::test]
async fn bad_query_parameter_names_the_parameter() {
    let t = TestApp::start().await;
    t.publish("q", json!({"body": "x"})).await;
    let reply = t.get("/v1/topics/q/messages?limit=lots").await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/limit");
    let reply = t.get("/v1/topics/q/messages?limit=0").await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/limit");
    t.get("/v1/topics/q/messages?limit=1001").await.problem(400, "invalid-argument");
}

#[tokio::test]
async fn cors_preflight_is_answered_before_auth() {
    let settings = ferrymq_gateway::GatewaySettings {
        auth: Some(
            ferrymq_gateway::auth::AuthConfig::parse("[[tokens]]\ntoken = \"t\"\nactions = [\"admin\"]\n").unwrap(),
        ),
        ..settings()
    };
    let t = TestApp::start_with(|_| {}, settings).await;
    let request = Request::builder()
        .method(Method::OPTIONS)
        .uri("/v1/ws/tickets")
        .header(header::ORIGIN, "http://page.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .body(Body::empty())
        .unwrap();
    let reply = t.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_HEADERS], "authorization");
    let request = Request::get("/v1/topics").header(header::ORIGIN, "http://page.example").body(Body::empty()).unwrap();
    let reply = t.send(request).await;
    reply.problem(401, "unauthorized");
    assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*", "errors are readable cross-origin too");
}

#[tokio::test]
async fn a_wrong_json_type_for_an_enum_field_names_the_field() {
    let t = TestApp::start().await;
    for perm in [json!(5), json!(["rw"]), json!({"x": 1}), json!(true)] {
        let reply = t.post("/v1/topics", json!({"name": "p", "perm": perm})).await;
        reply.problem(400, "invalid-argument");
        assert_eq!(reply.field(), "/perm", "{}", reply.text);
    }
    t.publish("p", json!({"body": "x"})).await;
    for to in [json!(5), json!(["earliest"]), json!(null), json!("sideways")] {
        let reply = t.post("/v1/groups/g/offsets/reset", json!({"topic": "p", "to": to})).await;
        reply.problem(400, "invalid-argument");
        assert_eq!(reply.field(), "/to", "{}", reply.text);
    }
    // A document that is not JSON at all still points at the root.
    let reply = t.call(Method::POST, "/v1/topics", None).await;
    assert_ne!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
}
