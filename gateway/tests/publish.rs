//! Publishing: JSON single and batch, raw bodies with `ferry-*` headers, idempotency,
//! traceparent, delayed and transactional sends, auto-creation, permissions.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use serde_json::json;

#[tokio::test]
async fn json_single_returns_a_result_and_is_receivable() {
    let t = TestApp::start().await;
    let result = t.publish("t", json!({"body": "hello", "tag": "A", "keys": ["k1"], "properties": {"p": "1"}})).await;
    assert!(result["msg_id"].is_string());
    assert!(result["queue_id"].is_u64());
    assert!(result["queue_offset"].is_u64());
    assert!(result.get("transaction_id").is_none(), "only for transactional sends");
    let got = t.receive_n("g", "t", 1).await;
    assert_eq!(got[0]["body"], "hello");
    assert_eq!(got[0]["tag"], "A");
    assert_eq!(got[0]["keys"], json!(["k1"]));
    assert_eq!(got[0]["properties"]["p"], "1");
    assert_eq!(got[0]["msg_id"], result["msg_id"]);
}

#[tokio::test]
async fn batch_returns_results_in_order() {
    let t = TestApp::start().await;
    let reply = t
        .post(
            "/v1/topics/b/messages",
            json!({"messages": [{"body": "1", "sharding_key": "s"}, {"body_base64": "Mg==", "sharding_key": "s"}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let results = reply.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["queue_id"], results[1]["queue_id"]);
    assert_eq!(results[0]["queue_offset"].as_u64().unwrap() + 1, results[1]["queue_offset"].as_u64().unwrap());
    let got = t.receive_n("g", "b", 2).await;
    let bodies: Vec<&str> = got.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["1", "2"]);
}

#[tokio::test]
async fn batch_errors_point_into_the_batch() {
    let t = TestApp::start().await;
    let reply = t.post("/v1/topics/b/messages", json!({"messages": [{"body": "ok"}, {"tag": "no body"}]})).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/messages/1/body");
    let reply = t.post("/v1/topics/b/messages", json!({"messages": []})).await;
    reply.problem(400, "invalid-argument");
    let too_many: Vec<_> = (0..51).map(|i| json!({"body": i.to_string()})).collect();
    let reply = t.post("/v1/topics/b/messages", json!({"messages": too_many})).await;
    let detail = reply.problem(413, "payload-too-large")["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("51 messages") && !detail.contains("message body"), "{detail}");
}

#[tokio::test]
async fn a_batch_reads_the_same_whichever_key_comes_first() {
    let t = TestApp::start().await;
    let post = |text: &'static str| {
        let request = Request::post("/v1/topics/order/messages")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(text))
            .unwrap();
        t.send(request)
    };
    for text in [
        r#"{"messages": [{"body": "a"}, {"body": "b"}]}"#,
        "\n { \"messages\" :[{\"body\": \"a\"}, {\"body\": \"b\"}], \"extra\": 1}",
        r#"{"extra": {"messages": 1}, "messages": [{"body": "a"}, {"body": "b"}]}"#,
    ] {
        let reply = post(text).await;
        assert_eq!(reply.status, StatusCode::OK, "{text}: {}", reply.text);
        assert_eq!(reply.body["results"].as_array().map(Vec::len), Some(2), "{text}");
    }
    for text in
        [r#"{"messages": [{"body": "a"}, {"body": 7}]}"#, r#"{"tag": "x", "messages": [{"body": "a"}, {"body": 7}]}"#]
    {
        let reply = post(text).await;
        reply.problem(400, "invalid-argument");
        assert_eq!(reply.field(), "/messages/1/body", "{text}");
    }
    // Not an object, and a `messages` that is not a list.
    post(r#"["messages"]"#).await.problem(400, "invalid-argument");
    let reply = post(r#"{"messages": {"body": "a"}}"#).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/messages");
}

#[tokio::test]
async fn raw_body_is_stored_byte_for_byte_with_header_attributes() {
    let t = TestApp::start().await;
    let body: Vec<u8> = vec![0, 159, 146, 150, 255];
    let request = Request::post("/v1/topics/raw/messages")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("ferry-tag", "TagA")
        .header("ferry-keys", "k1, k2 ,")
        .header("ferry-prop-color", "red")
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .body(Body::from(body.clone()))
        .unwrap();
    let reply = t.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let msg_id = reply.body["msg_id"].as_str().unwrap().to_string();
    let reply = t.get(&format!("/v1/messages/{msg_id}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let m = &reply.body;
    assert!(m["body"].is_null(), "not UTF-8");
    assert_eq!(m["body_base64"], "AJ+Slv8=");
    assert_eq!(m["tag"], "TagA");
    assert_eq!(m["keys"], json!(["k1", "k2"]));
    assert_eq!(m["properties"]["color"], "red");
    assert_eq!(m["properties"]["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert!(m["receipt"].is_null());
    assert_eq!(m["state"], "stored");
}

#[tokio::test]
async fn only_application_json_is_a_json_message_and_other_json_media_types_are_raw_bodies() {
    let t = TestApp::start().await;
    let cases = [
        ("application/problem+json", true),
        ("application/cloudevents+json; charset=utf-8", true),
        ("Application/JSON; charset=utf-8", false),
    ];
    for (i, (media_type, raw)) in cases.into_iter().enumerate() {
        let text = format!("{{\"body\":\"case {i}\"}}");
        let request = Request::post("/v1/topics/media/messages")
            .header(header::CONTENT_TYPE, media_type)
            .body(Body::from(text.clone()))
            .unwrap();
        assert_eq!(t.send(request).await.status, StatusCode::OK, "{media_type}");
        let got = t.receive_n("g", "media", 1).await;
        let expected = if raw { text } else { format!("case {i}") };
        assert_eq!(got[0]["body"], expected, "{media_type}");
        t.post("/v1/groups/g/ack", json!({"receipts": [got[0]["receipt"]]})).await;
    }
}

#[tokio::test]
async fn curl_form_body_is_a_raw_body() {
    let t = TestApp::start().await;
    let request = Request::post("/v1/topics/curl/messages")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("hello"))
        .unwrap();
    assert_eq!(t.send(request).await.status, StatusCode::OK);
    let got = t.receive_n("g", "curl", 1).await;
    assert_eq!(got[0]["body"], "hello");
}

#[tokio::test]
async fn bad_raw_headers_are_400() {
    let t = TestApp::start().await;
    let request = Request::post("/v1/topics/raw/messages")
        .header(header::CONTENT_TYPE, "text/plain")
        .header("ferry-delay-ms", "soon")
        .body(Body::from("x"))
        .unwrap();
    let reply = t.send(request).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/headers/ferry-delay-ms");
    let request = Request::post("/v1/topics/raw/messages")
        .header(header::CONTENT_TYPE, "text/plain")
        .header("ferry-transaction", "maybe")
        .body(Body::from("x"))
        .unwrap();
    t.send(request).await.problem(400, "invalid-argument");
}

#[tokio::test]
async fn idempotency_key_returns_the_first_result() {
    let t = TestApp::start().await;
    let send = |body: &'static str| {
        Request::post("/v1/topics/idem/messages")
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", "key-1")
            .body(Body::from(json!({"body": body}).to_string()))
            .unwrap()
    };
    let first = t.send(send("same")).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = t.send(send("same")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(first.body, again.body, "same msg_id and offset");
    t.send(send("different")).await.problem(409, "idempotency-conflict");
    assert_eq!(t.receive_n("g", "idem", 2).await.len(), 1, "stored once");

    // Per message in JSON too.
    let a = t.publish("idem2", json!({"body": "x", "idempotency_key": "m"})).await;
    let b = t.publish("idem2", json!({"body": "x", "idempotency_key": "m"})).await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn batch_idempotency_key_covers_the_batch() {
    let t = TestApp::start().await;
    let send = || {
        Request::post("/v1/topics/idemb/messages")
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", "batch-1")
            .body(Body::from(json!({"messages": [{"body": "a"}, {"body": "b"}]}).to_string()))
            .unwrap()
    };
    let first = t.send(send()).await;
    let again = t.send(send()).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, again.body);
}

#[tokio::test]
async fn delayed_publish_has_no_place_yet_and_shows_scheduled() {
    let t = TestApp::start().await;
    let result = t.publish("d", json!({"body": "later", "delay_ms": 300})).await;
    assert!(result["queue_id"].is_null());
    assert!(result["queue_offset"].is_null());
    let m = t.get(&format!("/v1/messages/{}", result["msg_id"].as_str().unwrap())).await;
    assert_eq!(m.body["state"], "scheduled", "{}", m.text);
    assert!(m.body["commit_offset"].is_null());
    let got = t.receive_n("g", "d", 1).await;
    assert_eq!(got[0]["msg_id"], result["msg_id"]);

    t.post("/v1/topics/d/messages", json!({"body": "x", "delay_level": 19})).await.problem(400, "invalid-argument");
    t.post("/v1/topics/d/messages", json!({"body": "x", "delay_ms": 0})).await.problem(400, "invalid-argument");
    t.post("/v1/topics/d/messages", json!({"body": "x", "deliver_at": 0})).await.problem(400, "invalid-argument");
    let far = json!({"body": "x", "delay_ms": 4 * 24 * 3600 * 1000u64});
    t.post("/v1/topics/d/messages", far).await.problem(400, "invalid-argument");
}

#[tokio::test]
async fn transactional_publish_returns_a_transaction_id() {
    let t = TestApp::start().await;
    let result = t.publish("tx", json!({"body": "half", "transaction": true, "producer_group": "pg"})).await;
    assert!(result["transaction_id"].is_string());
    assert!(result["queue_id"].is_null());
    let m = t.get(&format!("/v1/messages/{}", result["msg_id"].as_str().unwrap())).await;
    assert_eq!(m.body["state"], "half");
    let reply = t.post("/v1/topics/tx/messages", json!({"body": "half", "transaction": true})).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/producer_group");
}

#[tokio::test]
async fn unknown_topic_without_auto_create_is_404() {
    let t = TestApp::start_with(|c| c.auto_create_topics = false, settings()).await;
    t.post("/v1/topics/nope/messages", json!({"body": "x"})).await.problem(404, "not-found");
    let request = Request::post("/v1/topics/nope/messages").body(Body::from("raw")).unwrap();
    t.send(request).await.problem(404, "not-found");
}

#[tokio::test]
async fn read_only_topic_refuses_publishes() {
    let t = TestApp::start().await;
    assert_eq!(t.post("/v1/topics", json!({"name": "ro", "perm": "r"})).await.status, StatusCode::CREATED);
    t.post("/v1/topics/ro/messages", json!({"body": "x"})).await.problem(403, "forbidden");
}

#[tokio::test]
async fn body_and_body_base64_together_are_400() {
    let t = TestApp::start().await;
    let reply = t.post("/v1/topics/x/messages", json!({"body": "a", "body_base64": "YQ=="})).await;
    reply.problem(400, "invalid-argument");
    assert_eq!(reply.field(), "/body_base64");
    t.post("/v1/topics/x/messages", json!({"body_base64": "***"})).await.problem(400, "invalid-argument");
    t.post("/v1/topics/x/messages", json!("just a string")).await.problem(400, "invalid-argument");
}

#[tokio::test]
async fn a_key_repeated_inside_one_batch_is_one_message() {
    let t = TestApp::start().await;
    let batch = json!({"messages": [
        {"body": "a", "idempotency_key": "k1"},
        {"body": "b", "idempotency_key": "k2"},
        {"body": "a", "idempotency_key": "k1"},
        {"body": "c"},
    ]});
    let reply = t.post("/v1/topics/idem-batch/messages", batch).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let results = reply.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[2], results[0], "the repeat answers the first result");
    assert_ne!(results[1]["msg_id"], results[0]["msg_id"]);
    let stored = t.stored("idem-batch").await;
    assert_eq!(stored, 3, "k1 stored once");
    let conflict = json!({"messages": [
        {"body": "x", "idempotency_key": "k3"},
        {"body": "y", "idempotency_key": "k3"},
    ]});
    t.post("/v1/topics/idem-batch/messages", conflict).await.problem(409, "idempotency-conflict");
}
