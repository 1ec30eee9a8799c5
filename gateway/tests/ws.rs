//! The WebSocket protocol against a real server: subscriptions as full group members with
//! credit windows, acks and nacks, publish, bad frames, producer checks, closing, and the
//! native clients' low-level ops.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

async fn lag(t: &TestApp, group: &str) -> u64 {
    let reply = t.get(&format!("/v1/groups/{group}")).await;
    reply.body["offsets"].as_array().map_or(u64::MAX, |o| o.iter().map(|o| o["lag"].as_u64().unwrap()).sum())
}

#[tokio::test]
async fn subscribe_receive_ack_leaves_no_lag() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.publish("t", json!({"body": "before"})).await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "s1", "group": "g", "topic": "t"})).await;
    assert_eq!(ws.next().await, json!({"op": "subscribed", "id": "s1"}));
    let first = ws.next_op("message").await;
    assert_eq!(first["id"], "s1");
    assert_eq!(first["body"], "before", "a new group starts at the first message");
    assert!(first["receipt"].is_string());
    for field in ferrymq_gateway::wire::MESSAGE_FIELDS {
        assert!(first.get(field).is_some(), "{field} missing");
    }
    t.publish("t", json!({"body": "after"})).await;
    let second = ws.next_op("message").await;
    assert_eq!(second["body"], "after");
    for m in [&first, &second] {
        ws.send(json!({"op": "ack", "receipt": m["receipt"]})).await;
    }
    eventually("lag 0", || async { lag(&t, "g").await == 0 }).await;
    let group = t.get("/v1/groups/g").await;
    assert_eq!(group.body["members"][0]["transport"], "ws");
    assert_eq!(group.body["subscriptions"][0]["topic"], "t");
    assert!(ws.next_within(Duration::from_millis(200)).await.is_none(), "acks get no reply");
    ws.close().await;
}

#[tokio::test]
async fn never_more_in_flight_than_credits() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    for i in 0..6 {
        t.publish("c", json!({"body": i.to_string()})).await;
    }
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "s", "group": "g", "topic": "c", "credits": 2})).await;
    ws.next_op("subscribed").await;
    let a = ws.next_op("message").await;
    let _b = ws.next_op("message").await;
    assert!(ws.next_within(Duration::from_millis(500)).await.is_none(), "window of 2 is full");

    ws.send(json!({"op": "ack", "receipt": a["receipt"]})).await;
    let c = ws.next_op("message").await;
    assert!(ws.next_within(Duration::from_millis(400)).await.is_none(), "one slot freed, one message");

    ws.send(json!({"op": "nack", "receipt": c["receipt"], "delay_ms": 5000})).await;
    ws.next_op("message").await;
    assert!(ws.next_within(Duration::from_millis(400)).await.is_none());

    ws.send(json!({"op": "credit", "id": "s", "n": 2})).await;
    ws.next_op("message").await;
    ws.next_op("message").await;
    assert!(ws.next_within(Duration::from_millis(400)).await.is_none(), "window of 4 is full again");
    ws.close().await;
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_connection_stays_open() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send_text("this is not json").await;
    let error = ws.next().await;
    assert_eq!(error["op"], "error");
    assert_eq!(error["type"], "urn:ferrymq:error:invalid-argument");
    assert!(error["title"].is_string() && error["detail"].is_string());

    ws.send(json!({"op": "teleport", "id": "x"})).await;
    let error = ws.next().await;
    assert_eq!(error["type"], "urn:ferrymq:error:invalid-argument");
    assert_eq!(error["id"], "x");

    ws.send(json!({"op": "credit", "id": "s", "n": "lots"})).await;
    let error = ws.next().await;
    assert_eq!(error["errors"][0]["field"], "/n");

    ws.send(json!({"op": "publish", "topic": "t", "body": "no req_id"})).await;
    assert_eq!(ws.next().await["type"], "urn:ferrymq:error:invalid-argument");

    ws.send(json!({"op": "subscribe", "id": "m", "group": "g", "topic": "missing"})).await;
    let error = ws.next().await;
    assert_eq!(error["type"], "urn:ferrymq:error:not-found");
    assert_eq!(error["id"], "m");

    t.post("/v1/topics", json!({"name": "f"})).await;
    ws.send(json!({"op": "subscribe", "id": "f", "group": "g", "topic": "f", "sql": "a >"})).await;
    assert_eq!(ws.next().await["type"], "urn:ferrymq:error:invalid-filter");

    ws.send(json!({"op": "ack", "receipt": "garbage"})).await;
    assert_eq!(ws.next().await["type"], "urn:ferrymq:error:invalid-argument");

    ws.send(json!({"op": "credit", "id": "nope", "n": 1})).await;
    assert_eq!(ws.next().await["type"], "urn:ferrymq:error:not-found");

    // Still open and working.
    ws.send(json!({"op": "publish", "req_id": "r1", "topic": "t", "body": "ok"})).await;
    let published = ws.next_op("published").await;
    assert_eq!(published["req_id"], "r1");
    assert!(published["msg_id"].is_string());
    ws.close().await;
}

#[tokio::test]
async fn a_frame_over_the_size_limit_is_payload_too_large_then_a_1009_close() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "publish", "req_id": "r1", "topic": "t", "body": "before"})).await;
    assert_eq!(ws.next_op("published").await["req_id"], "r1");
    // A batch over the broker's limits in a frame over the HTTP body limit is still read and
    // refused for its req_id; the connection stays open.
    let body = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 100 * 1024]);
    let batch: Vec<Value> = (0..4).map(|_| json!({"body_base64": body})).collect();
    let frame = json!({"op": "publish", "req_id": "over", "topic": "t", "messages": batch});
    assert!(frame.to_string().len() > settings().body_limit);
    ws.send(frame).await;
    let error = ws.next().await;
    assert_eq!((&error["op"], &error["req_id"]), (&json!("error"), &json!("over")));
    assert_eq!(error["type"], "urn:ferrymq:error:payload-too-large");
    ws.send(json!({"op": "publish", "req_id": "r2", "topic": "t", "body": "still open"})).await;
    assert_eq!(ws.next_op("published").await["req_id"], "r2");

    let limit = 2 * settings().body_limit;
    let huge = "x".repeat(limit);
    ws.send(json!({"op": "publish", "req_id": "big", "topic": "t", "body": huge})).await;
    let error = ws.next().await;
    assert_eq!(error["op"], "error");
    assert_eq!(error["type"], "urn:ferrymq:error:payload-too-large");
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.contains(&limit.to_string()), "{detail}");
    // The rest of an oversized frame cannot be skipped: the server closes with 1009 (too big).
    assert_eq!(ws.closed_with().await, Some(1009));
    // The server goes on: a new connection publishes.
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "publish", "req_id": "r3", "topic": "t", "body": "after"})).await;
    assert_eq!(ws.next_op("published").await["req_id"], "r3");
}

#[tokio::test]
async fn acking_an_unknown_receipt_reports_unknown() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.publish("t", json!({"body": "a"})).await;
    let rest = t.receive_n("other", "t", 1).await;
    let foreign = rest[0]["receipt"].clone();
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "s", "group": "g", "topic": "t"})).await;
    ws.next_op("subscribed").await;
    let m = ws.next_op("message").await;
    ws.send(json!({"op": "ack", "receipt": foreign})).await;
    let error = ws.next_op("error").await;
    assert_eq!(error["reason"], "unknown");
    assert_eq!(error["receipt"], foreign);
    ws.send(json!({"op": "ack", "receipt": m["receipt"]})).await;
    ws.send(json!({"op": "ack", "receipt": m["receipt"]})).await;
    let error = ws.next_op("error").await;
    assert_eq!(error["reason"], "acked");
    ws.close().await;
}

#[tokio::test]
async fn publish_batch_and_errors_echo_req_id() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "publish", "req_id": "b", "topic": "t", "messages": [{"body": "1"}, {"body": "2"}]})).await;
    let published = ws.next_op("published").await;
    assert_eq!(published["req_id"], "b");
    assert_eq!(published["results"].as_array().unwrap().len(), 2);
    ws.send(json!({"op": "publish", "req_id": "big", "topic": "t", "body": "x".repeat(MAX_MESSAGE_BYTES + 1)})).await;
    let error = ws.next_op("error").await;
    assert_eq!(error["req_id"], "big");
    assert_eq!(error["type"], "urn:ferrymq:error:payload-too-large");
    ws.send(json!({"op": "publish", "req_id": "k1", "topic": "t", "body": "same", "idempotency_key": "k"})).await;
    let first = ws.next_op("published").await;
    ws.send(json!({"op": "publish", "req_id": "k2", "topic": "t", "body": "same", "idempotency_key": "k"})).await;
    let second = ws.next_op("published").await;
    assert_eq!(first["msg_id"], second["msg_id"]);
    ws.close().await;
}

/// "The connection leaves `members` at once": once the server has ended a closed connection
/// (what a client sees as closed), the group no longer lists it, with no waiting. Closing right
/// after `subscribed` meets the subscription's first receive while it runs: the receive renewed
/// the membership after the connection had left (a member for the lease's length).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_ended_is_no_member_any_more() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.publish("t", json!({"body": "x"})).await;
    for round in 0..20 {
        let mut ws = WsClient::connect(addr, "").await;
        ws.send(json!({"op": "subscribe", "id": "s", "group": "quick", "topic": "t"})).await;
        ws.next_op("subscribed").await;
        ws.close_and_wait().await;
        let members = t.get("/v1/groups/quick").await.body["members"].clone();
        assert_eq!(members, json!([]), "round {round}");
    }
}

#[tokio::test]
async fn closing_returns_held_messages_and_leaves_the_group_at_once() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.publish("t", json!({"body": "held"})).await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "s", "group": "g", "topic": "t"})).await;
    ws.next_op("message").await;
    assert_eq!(t.get("/v1/groups/g").await.body["members"].as_array().unwrap().len(), 1);
    ws.close().await;
    eventually("the member gone", || async {
        t.get("/v1/groups/g").await.body["members"].as_array().is_some_and(|m| m.is_empty())
    })
    .await;
    let reply = t.post("/v1/groups/g/receive", json!({"topic": "t", "wait_ms": 1000})).await;
    let messages = reply.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "back at once, long before the 30 s lease: {}", reply.text);
    assert_eq!(messages[0]["reconsume_times"], 0, "a closed connection counts no reconsume");
}

#[tokio::test]
async fn a_subscription_ends_with_an_error_when_its_topic_is_deleted() {
    // A long lease makes the subscription's long polls long (10 s).
    let t = TestApp::start_with(|c| c.lease_ttl = Duration::from_secs(60), settings()).await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "doomed", "queues": 2})).await;
    t.publish("doomed", json!({"body": "last words"})).await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "s", "group": "g", "topic": "doomed"})).await;
    ws.next_op("message").await;
    assert_eq!(t.delete("/v1/topics/doomed").await.status, 204);
    // At once, not after the subscription's long poll runs out.
    let error =
        tokio::time::timeout(Duration::from_secs(2), ws.next_op("error")).await.expect("an error frame at once");
    assert_eq!((&error["id"], &error["type"]), (&json!("s"), &json!("urn:ferrymq:error:not-found")), "{error}");
    // The subscription is over: its id can be used again once the topic is back.
    t.post("/v1/topics", json!({"name": "doomed", "queues": 2})).await;
    ws.send(json!({"op": "subscribe", "id": "s", "group": "g", "topic": "doomed"})).await;
    ws.next_op("subscribed").await;
    t.publish("doomed", json!({"body": "born again"})).await;
    assert_eq!(ws.next_op("message").await["body"], "born again");
    ws.close().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "u"})).await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "s", "group": "g", "topic": "u", "start": "last"})).await;
    ws.next_op("subscribed").await;
    ws.send(json!({"op": "unsubscribe", "id": "s"})).await;
    assert_eq!(ws.next_op("unsubscribed").await["id"], "s");
    t.publish("u", json!({"body": "nobody listens"})).await;
    assert!(ws.next_within(Duration::from_millis(400)).await.is_none());
    ws.send(json!({"op": "unsubscribe", "id": "s"})).await;
    assert_eq!(ws.next().await["type"], "urn:ferrymq:error:not-found");
    ws.close().await;
}

#[tokio::test]
async fn broadcasting_delivers_to_every_member() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "b"})).await;
    let mut one = WsClient::connect(addr, "").await;
    let mut two = WsClient::connect(addr, "").await;
    for ws in [&mut one, &mut two] {
        ws.send(json!({"op": "subscribe", "id": "s", "group": "bg", "topic": "b", "mode": "broadcasting"})).await;
        ws.next_op("subscribed").await;
    }
    t.publish("b", json!({"body": "all"})).await;
    assert_eq!(one.next_op("message").await["body"], "all");
    assert_eq!(two.next_op("message").await["body"], "all");
}

#[tokio::test]
async fn checks_go_to_the_producer_connection_which_ends_them() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "register_producer", "group": "wpg"})).await;
    ws.send(json!({"op": "publish", "req_id": "tx", "topic": "t", "body": "half", "transaction": true, "producer_group": "wpg"}))
        .await;
    let published = ws.next_op("published").await;
    let transaction_id = published["transaction_id"].clone();
    assert!(transaction_id.is_string());
    let check = ws.next_op("check").await;
    assert_eq!(check["transaction_id"], transaction_id);
    assert_eq!(check["msg_id"], published["msg_id"]);
    assert_eq!(check["message"]["body"], "half");
    ws.send(json!({"op": "end_transaction", "transaction_id": transaction_id, "status": "commit", "req_id": "e"}))
        .await;
    let ended = ws.next_op("transaction_ended").await;
    assert_eq!(ended["status"], "committed");
    assert_eq!(t.receive_n("g", "t", 1).await.len(), 1);

    ws.send(json!({"op": "end_transaction", "transaction_id": transaction_id, "status": "rollback"})).await;
    assert_eq!(ws.next_op("error").await["type"], "urn:ferrymq:error:conflict");
    ws.send(json!({"op": "end_transaction", "transaction_id": "x", "status": "maybe"})).await;
    assert_eq!(ws.next_op("error").await["type"], "urn:ferrymq:error:invalid-argument");
    ws.close().await;
}

#[tokio::test]
async fn native_ops_heartbeat_pull_commit_lock() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "n", "queues": 1})).await;
    for i in 0..3 {
        t.publish("n", json!({"body": i.to_string(), "tag": if i == 1 { "B" } else { "A" }})).await;
    }
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "heartbeat", "req_id": "h", "group": "ng", "client_id": "native-1",
                   "subscriptions": [{"topic": "n", "filter": "*"}]}))
        .await;
    let ack = ws.next_op("heartbeat_ack").await;
    assert_eq!(ack["req_id"], "h");
    assert_eq!(ack["members"][0]["client_id"], "native-1");
    assert_eq!(ack["members"][0]["transport"], "native");

    ws.send(json!({"op": "pull", "req_id": "p1", "group": "ng", "topic": "n", "queue_id": 0, "offset": 0, "max": 10, "filter": "A"}))
        .await;
    let pulled = ws.next_op("pulled").await;
    assert_eq!(pulled["req_id"], "p1");
    let bodies: Vec<Value> = pulled["messages"].as_array().unwrap().iter().map(|m| m["body"].clone()).collect();
    assert_eq!(bodies, [json!("0"), json!("2")]);
    assert_eq!(pulled["next_offset"], 3);
    assert_eq!(pulled["max_offset"], 3);

    ws.send(
        json!({"op": "pull", "req_id": "p2", "group": "ng", "topic": "n", "queue_id": 0, "offset": 3, "wait_ms": 5000}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.publish("n", json!({"body": "late"})).await;
    let pulled = ws.next_op("pulled").await;
    assert_eq!(pulled["messages"][0]["body"], "late", "long poll woke");

    ws.send(json!({"op": "commit", "req_id": "c", "group": "ng", "topic": "n", "queue_id": 0, "offset": 4})).await;
    assert_eq!(ws.next_op("committed").await["req_id"], "c");
    assert_eq!(lag(&t, "ng").await, 0);
    ws.send(json!({"op": "commit", "req_id": "c2", "group": "ng", "topic": "n", "queue_id": 0, "offset": 99})).await;
    assert_eq!(ws.next_op("error").await["type"], "urn:ferrymq:error:invalid-argument");

    ws.send(json!({"op": "lock", "req_id": "l1", "group": "ng", "topic": "n", "queue_id": 0, "client_id": "native-1"}))
        .await;
    assert_eq!(ws.next_op("locked").await["locked"], true);
    let mut other = WsClient::connect(addr, "").await;
    other
        .send(
            json!({"op": "lock", "req_id": "l2", "group": "ng", "topic": "n", "queue_id": 0, "client_id": "native-2"}),
        )
        .await;
    assert_eq!(other.next_op("locked").await["locked"], false);
    ws.send(
        json!({"op": "unlock", "req_id": "u", "group": "ng", "topic": "n", "queue_id": 0, "client_id": "native-1"}),
    )
    .await;
    assert_eq!(ws.next_op("unlocked").await["req_id"], "u");
    other
        .send(
            json!({"op": "lock", "req_id": "l3", "group": "ng", "topic": "n", "queue_id": 0, "client_id": "native-2"}),
        )
        .await;
    assert_eq!(other.next_op("locked").await["locked"], true);

    ws.close().await;
    eventually("native-1 gone with its connection", || async {
        let members = t.get("/v1/groups/ng").await.body["members"].clone();
        members.as_array().is_some_and(|m| m.iter().all(|m| m["client_id"] != "native-1"))
    })
    .await;
}

#[tokio::test]
async fn plain_get_on_the_ws_route_is_a_problem() {
    let t = TestApp::start().await;
    let reply = t.get("/v1/ws").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.problem(400, "invalid-argument");
}

#[tokio::test]
async fn ws_connections_gauge_counts_open_sockets() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    let ws = WsClient::connect(addr, "").await;
    eventually("gauge at 1", || async { t.get("/metrics").await.text.contains("ferrymq_ws_connections 1") }).await;
    ws.close().await;
    eventually("gauge at 0", || async { t.get("/metrics").await.text.contains("ferrymq_ws_connections 0") }).await;
}

#[tokio::test]
async fn native_send_back_retries_through_the_group() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "sb", "queues": 1})).await;
    let sent = t.publish("sb", json!({"body": "fails"})).await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "pull", "req_id": "p", "group": "sbg", "topic": "sb", "queue_id": 0, "offset": 0})).await;
    let pulled = ws.next_op("pulled").await;
    let message = &pulled["messages"][0];
    ws.send(json!({"op": "commit", "group": "sbg", "topic": "sb", "queue_id": 0, "offset": 1})).await;
    ws.send(json!({"op": "send_back", "req_id": "b", "group": "sbg", "msg_id": message["msg_id"], "topic": "sb",
                   "commit_offset": message["commit_offset"], "reconsume_times": 0, "delay_ms": 0}))
        .await;
    assert_eq!(ws.next_op("sent_back").await["req_id"], "b");
    let again = t.receive_n("sbg", "sb", 1).await;
    assert_eq!(again.len(), 1, "redelivered through the retry topic");
    assert_eq!(again[0]["msg_id"], sent["msg_id"]);
    assert_eq!(again[0]["reconsume_times"], 1);
    assert_eq!(again[0]["topic"], "sb");

    ws.send(json!({"op": "send_back", "req_id": "x", "group": "sbg", "msg_id": "other", "topic": "sb",
                   "commit_offset": message["commit_offset"]}))
        .await;
    let error = ws.next_op("error").await;
    assert_eq!(error["req_id"], "x");
    assert_eq!(error["type"], "urn:ferrymq:error:not-found");
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_subscription_gets_everything_stored_after_subscribed() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "fresh", "queues": 2})).await;
    t.publish("fresh", json!({"body": "before"})).await;
    let mut ws = WsClient::connect(addr, "").await;
    for round in 0..20 {
        let group = format!("tail-{round}");
        ws.send(json!({"op": "subscribe", "id": group, "group": group, "topic": "fresh", "start": "last"})).await;
        ws.next_op("subscribed").await;
        // The start is fixed by the time `subscribed` arrives: the group already holds it.
        let offsets = t.get(&format!("/v1/groups/{group}")).await.body["offsets"].clone();
        let committed: u64 = offsets.as_array().unwrap().iter().map(|o| o["committed"].as_u64().unwrap()).sum();
        assert_eq!(committed, round + 1, "round {round}: {offsets}");
        let sent = t.publish("fresh", json!({"body": format!("after {round}")})).await;
        let message = ws.next_op("message").await;
        assert_eq!((&message["id"], &message["msg_id"]), (&json!(group), &sent["msg_id"]), "round {round}");
        ws.send(json!({"op": "ack", "receipt": message["receipt"]})).await;
        ws.send(json!({"op": "unsubscribe", "id": group})).await;
        ws.next_op("unsubscribed").await;
    }
    ws.close().await;
}

#[tokio::test]
async fn start_positions_apply_to_a_new_group() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "sp", "queues": 1})).await;
    t.publish("sp", json!({"body": "old"})).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = ferrymq_core::broker::now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    t.publish("sp", json!({"body": "new"})).await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "ts", "group": "g-ts", "topic": "sp", "start": {"timestamp": cut}})).await;
    assert_eq!(ws.next_op("message").await["body"], "new", "from the timestamp on");
    ws.send(json!({"op": "subscribe", "id": "last", "group": "g-last", "topic": "sp", "start": "last"})).await;
    ws.next_op("subscribed").await;
    assert!(ws.next_within(Duration::from_millis(300)).await.is_none(), "nothing before the subscription");
    t.publish("sp", json!({"body": "latest"})).await;
    let frames = [ws.next_op("message").await, ws.next_op("message").await];
    let last = frames.iter().find(|f| f["id"] == "last").expect("the last subscription got the new message");
    assert_eq!(last["body"], "latest");
    ws.close().await;
}

#[tokio::test]
async fn orderly_subscription_holds_a_queue_until_its_messages_are_acked() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "o", "queues": 1})).await;
    for i in 0..3 {
        t.publish("o", json!({"body": i.to_string()})).await;
    }
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "o", "group": "og", "topic": "o", "orderly": true, "credits": 10})).await;
    let mut held = Vec::new();
    for expected in ["0", "1", "2"] {
        let m = ws.next_op("message").await;
        assert_eq!(m["body"], expected, "in queue order");
        held.push(m["receipt"].clone());
    }
    t.publish("o", json!({"body": "3"})).await;
    for receipt in &held[..2] {
        ws.send(json!({"op": "ack", "receipt": receipt})).await;
    }
    assert!(ws.next_within(Duration::from_millis(400)).await.is_none(), "the queue is held while one is in flight");
    ws.send(json!({"op": "ack", "receipt": held[2]})).await;
    assert_eq!(ws.next_op("message").await["body"], "3");
    ws.close().await;
}

#[tokio::test]
async fn pipelined_publishes_are_stored_in_order_and_errors_stay_with_their_frame() {
    let t = TestApp::start().await;
    t.post("/v1/topics", json!({"name": "pipe", "queues": 1})).await;
    let addr = t.serve().await;
    let mut ws = WsClient::connect(addr, "").await;
    for i in 0..200 {
        let body = if i == 100 { "x".repeat(MAX_MESSAGE_BYTES + 1) } else { format!("m{i}") };
        ws.send(json!({"op": "publish", "req_id": format!("p{i}"), "topic": "pipe", "body": body})).await;
    }
    let mut offsets = Vec::new();
    for i in 0..200 {
        let frame = ws.next().await;
        assert_eq!(frame["req_id"], format!("p{i}"), "answers come back in publish order");
        if i == 100 {
            assert_eq!(frame["op"], "error");
            assert_eq!(frame["type"], "urn:ferrymq:error:payload-too-large");
        } else {
            assert_eq!(frame["op"], "published");
            offsets.push(frame["queue_offset"].as_u64().unwrap());
        }
    }
    assert_eq!(offsets, (0..199).collect::<Vec<u64>>(), "stored in order, nothing lost, nothing twice");
    ws.close().await;
}

#[tokio::test]
async fn query_offset_is_null_until_the_group_commits() {
    let t = TestApp::start().await;
    t.post("/v1/topics", json!({"name": "qo", "queues": 1})).await;
    let addr = t.serve().await;
    let mut ws = WsClient::connect(addr, "").await;
    let query = json!({"op": "query_offset", "req_id": "q1", "group": "native", "topic": "qo", "queue_id": 0});
    ws.send(query.clone()).await;
    assert_eq!(ws.next_op("offset").await, json!({"op": "offset", "req_id": "q1", "offset": null}));
    t.publish("qo", json!({"body": "x"})).await;
    ws.send(json!({"op": "commit", "req_id": "c1", "group": "native", "topic": "qo", "queue_id": 0, "offset": 1}))
        .await;
    ws.next_op("committed").await;
    ws.send(query).await;
    assert_eq!(ws.next_op("offset").await["offset"], 1);
    ws.send(json!({"op": "query_offset", "req_id": "q2", "group": "bad group", "topic": "qo", "queue_id": 0})).await;
    assert_eq!(ws.next_op("error").await["type"], "urn:ferrymq:error:invalid-argument");
    ws.close().await;
}

/// A large first publish (answered as `slow`), so that publishes sent right after it queue up.
async fn publish_slowly(ws: &mut WsClient) {
    let big: Vec<Value> = (0..50).map(|_| json!({"body": "x".repeat(4000)})).collect();
    ws.send(json!({"op": "publish", "req_id": "slow", "topic": "other", "messages": big})).await;
}

#[tokio::test]
async fn pipelined_publishes_with_one_idempotency_key_store_one_message() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    let mut ws = WsClient::connect(addr, "").await;
    // The keyed ones queue up behind a slow publish and are folded together.
    publish_slowly(&mut ws).await;
    for i in 0..20 {
        ws.send(json!({"op": "publish", "req_id": format!("r{i}"), "topic": "idem-ws", "body": "once",
            "idempotency_key": "same"}))
            .await;
    }
    let mut ids = std::collections::BTreeSet::new();
    assert_eq!(ws.next_op("published").await["req_id"], "slow");
    for _ in 0..20 {
        let published = ws.next_op("published").await;
        ids.insert((published["msg_id"].to_string(), published["queue_offset"].to_string()));
    }
    assert_eq!(ids.len(), 1, "every repeat answers the first result: {ids:?}");
    let stored = t.stored("idem-ws").await;
    assert_eq!(stored, 1);
    ws.close().await;
}

#[tokio::test]
async fn one_bad_publish_among_folded_ones_fails_alone() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    let mut ws = WsClient::connect(addr, "").await;
    // The singles queue up behind a slow publish and are folded together.
    publish_slowly(&mut ws).await;
    for i in 0..10 {
        // The broker, not the frame's parse, refuses this tag.
        let tag = if i == 4 { "a||b" } else { "ok" };
        ws.send(json!({"op": "publish", "req_id": format!("r{i}"), "topic": "mixed", "body": format!("m{i}"),
            "tag": tag}))
            .await;
    }
    assert_eq!(ws.next_op("published").await["req_id"], "slow");
    for i in 0..10 {
        let answer = ws.next().await;
        assert_eq!(answer["req_id"], format!("r{i}"), "answers come in the order of the publishes");
        if i == 4 {
            assert_eq!(answer["op"], "error", "{answer}");
            assert_eq!(answer["errors"][0]["field"], "/tag", "{answer}");
        } else {
            assert_eq!(answer["op"], "published", "{answer}");
        }
    }
    let stored = t.stored("mixed").await;
    assert_eq!(stored, 9);
    ws.close().await;
}

#[tokio::test]
async fn an_orderly_nack_with_one_credit_redelivers_from_the_failed_message() {
    // The default lease_ttl, so that the subscriber's long polls are as long as in production:
    // the redelivery must not wait for one to end.
    let t = TestApp::start_with(|c| c.lease_ttl = Duration::from_secs(30), settings()).await;
    let addr = t.serve().await;
    for i in 1..=4 {
        t.publish("fifo", json!({"body": format!("m{i}"), "sharding_key": "order-7"})).await;
    }
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "s", "group": "g", "topic": "fifo", "orderly": true, "credits": 1})).await;
    ws.next_op("subscribed").await;
    let first = ws.next_op("message").await;
    assert_eq!(first["body"], "m1");
    ws.send(json!({"op": "ack", "receipt": first["receipt"]})).await;
    let second = ws.next_op("message").await;
    assert_eq!(second["body"], "m2");
    ws.send(json!({"op": "nack", "receipt": second["receipt"]})).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let m = ws.next_op("message").await;
        seen.push((m["body"].as_str().unwrap().to_string(), m["reconsume_times"].as_u64().unwrap()));
        ws.send(json!({"op": "ack", "receipt": m["receipt"]})).await;
    }
    assert_eq!(seen, [("m2".to_string(), 1), ("m3".to_string(), 0), ("m4".to_string(), 0)]);
    ws.close().await;
}

#[tokio::test]
async fn an_orderly_nack_frees_the_window_slots_of_the_later_messages() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    for i in 1..=3 {
        t.publish("fifo", json!({"body": format!("m{i}"), "sharding_key": "k"})).await;
    }
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "s", "group": "g", "topic": "fifo", "orderly": true, "credits": 3})).await;
    ws.next_op("subscribed").await;
    let got: Vec<Value> = vec![ws.next_op("message").await, ws.next_op("message").await, ws.next_op("message").await];
    let bodies: Vec<&str> = got.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["m1", "m2", "m3"]);
    ws.send(json!({"op": "nack", "receipt": got[0]["receipt"]})).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let m = ws.next_op("message").await;
        seen.push(m["body"].as_str().unwrap().to_string());
        ws.send(json!({"op": "ack", "receipt": m["receipt"]})).await;
    }
    assert_eq!(seen, ["m1", "m2", "m3"]);
    ws.close().await;
}

/// Subscribes `n` connections to one clustering group with wide windows, publishes a burst of
/// 40 in one batch, and returns how many each connection got.
async fn share_a_burst(n: usize) -> Vec<usize> {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "burst", "queues": 8})).await;
    let mut members = Vec::new();
    for i in 0..n {
        let mut ws = WsClient::connect(addr, "").await;
        ws.send(json!({"op": "subscribe", "id": format!("s{i}"), "group": "g", "topic": "burst", "credits": 1000}))
            .await;
        ws.next_op("subscribed").await;
        members.push(ws);
    }
    let batch: Vec<Value> = (0..40).map(|i| json!({"body": format!("m{i}")})).collect();
    let reply = t.post("/v1/topics/burst/messages", json!({"messages": batch})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let mut counts = vec![0; n];
    let mut bodies = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bodies.len() < 40 && tokio::time::Instant::now() < deadline {
        for (i, ws) in members.iter_mut().enumerate() {
            while let Some(frame) = ws.next_within(Duration::from_millis(100)).await {
                if frame["op"] == "message" {
                    assert!(bodies.insert(frame["body"].as_str().unwrap().to_string()), "delivered twice: {frame}");
                    counts[i] += 1;
                }
            }
        }
    }
    assert_eq!(bodies.len(), 40, "every message delivered once");
    for ws in members {
        ws.close().await;
    }
    counts
}

#[tokio::test]
async fn two_waiting_subscribers_share_a_burst() {
    let counts = share_a_burst(2).await;
    assert_eq!(counts, [20, 20], "each takes half of the 8 queues");
}

#[tokio::test]
async fn three_waiting_subscribers_share_a_burst() {
    let mut counts = share_a_burst(3).await;
    counts.sort_unstable();
    assert_eq!(counts, [10, 15, 15], "8 queues spread 3, 3, 2");
}

#[tokio::test]
async fn a_broadcast_nack_comes_back_after_its_delay() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.publish("news", json!({"body": "n1"})).await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(json!({"op": "subscribe", "id": "b", "group": "screens", "topic": "news", "mode": "broadcasting"})).await;
    ws.next_op("subscribed").await;
    let first = ws.next_op("message").await;
    let nacked_at = std::time::Instant::now();
    ws.send(json!({"op": "nack", "receipt": first["receipt"], "delay_ms": 600})).await;
    let again = ws.next_op("message").await;
    assert!(nacked_at.elapsed() >= Duration::from_millis(600), "redelivered after {:?}", nacked_at.elapsed());
    assert_eq!((again["body"].as_str(), again["reconsume_times"].as_u64()), (Some("n1"), Some(1)));
    ws.close().await;
}

#[tokio::test]
async fn a_broadcast_member_with_a_client_id_keeps_its_position_across_reconnects() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "news", "queues": 1})).await;
    for i in 1..=3 {
        t.publish("news", json!({"body": format!("n{i}")})).await;
    }
    let subscribe = json!({"op": "subscribe", "id": "b", "group": "screens", "topic": "news",
        "mode": "broadcasting", "client_id": "screen-1"});
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(subscribe.clone()).await;
    ws.next_op("subscribed").await;
    for i in 1..=3 {
        let m = ws.next_op("message").await;
        assert_eq!(m["body"], format!("n{i}"));
        ws.send(json!({"op": "ack", "receipt": m["receipt"]})).await;
    }
    let fourth = {
        t.publish("news", json!({"body": "n4"})).await;
        ws.next_op("message").await
    };
    assert_eq!(fourth["body"], "n4");
    // n4 is left unacknowledged: it comes back to this member after the reconnect.
    ws.close().await;
    eventually("member gone", || async { t.get("/v1/groups/screens").await.body["members"] == json!([]) }).await;
    t.publish("news", json!({"body": "n5"})).await;
    let mut ws = WsClient::connect(addr, "").await;
    ws.send(subscribe).await;
    ws.next_op("subscribed").await;
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let m = ws.next_op("message").await;
        bodies.push(m["body"].as_str().unwrap().to_string());
        ws.send(json!({"op": "ack", "receipt": m["receipt"]})).await;
    }
    assert_eq!(bodies, ["n4", "n5"], "no replay of what was acked before the reconnect");
    assert!(ws.next_within(Duration::from_millis(300)).await.is_none());
    let members = t.get("/v1/groups/screens").await.body["members"].clone();
    assert_eq!(members[0]["client_id"], "screen-1");
    ws.close().await;
}

#[tokio::test]
async fn a_connection_holds_at_most_64_subscriptions_and_1024_pulls() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.publish("lim", json!({"body": "x"})).await;
    let mut ws = WsClient::connect(addr, "").await;
    for i in 0..64 {
        ws.send(json!({"op": "subscribe", "id": format!("s{i}"), "group": format!("g{i}"), "topic": "lim"})).await;
        ws.next_op("subscribed").await;
    }
    ws.send(json!({"op": "subscribe", "id": "s64", "group": "g64", "topic": "lim"})).await;
    let refused = ws.next_op("error").await;
    assert_eq!((refused["id"].as_str(), refused["type"].as_str()), (Some("s64"), Some("urn:ferrymq:error:conflict")));
    ws.send(json!({"op": "unsubscribe", "id": "s0"})).await;
    ws.next_op("unsubscribed").await;
    ws.send(json!({"op": "subscribe", "id": "s64", "group": "g64", "topic": "lim"})).await;
    ws.next_op("subscribed").await;
    ws.close().await;

    let mut ws = WsClient::connect(addr, "").await;
    let t0 = t.get("/v1/topics/lim").await.body["queue_offsets"][0]["max"].as_u64().unwrap();
    for i in 0..1025 {
        // Long polls past the end of queue 0: they stay outstanding.
        ws.send(json!({"op": "pull", "req_id": format!("p{i}"), "group": "pg", "topic": "lim", "queue_id": 0,
            "offset": t0, "wait_ms": 30000}))
            .await;
    }
    let refused = ws.next_op("error").await;
    assert_eq!(refused["req_id"], "p1024");
    assert_eq!(refused["type"], "urn:ferrymq:error:conflict");
    ws.close().await;
}

#[tokio::test]
async fn a_broadcast_member_without_a_client_id_leaves_no_state_behind() {
    let t = TestApp::start().await;
    let addr = t.serve().await;
    t.post("/v1/topics", json!({"name": "news", "queues": 2})).await;
    t.publish("news", json!({"body": "n1"})).await;
    for _ in 0..3 {
        let mut ws = WsClient::connect(addr, "").await;
        ws.send(json!({"op": "subscribe", "id": "b", "group": "screens", "topic": "news", "mode": "broadcasting"}))
            .await;
        ws.next_op("message").await;
        ws.close().await;
    }
    eventually("connections closed", || async { t.get("/v1/groups/screens").await.body["members"] == json!([]) }).await;
    eventually("no broadcast state left", || async { t.broker.table_sizes().queue_states == 0 }).await;
}
