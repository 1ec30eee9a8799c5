//! `/metrics`: Prometheus text with the contract's names.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

#[tokio::test]
async fn metrics_have_the_documented_series() {
    let t = TestApp::start().await;
    t.publish("m", json!({"body": "12345"})).await;
    let got = t.receive_n("g", "m", 1).await;
    assert_eq!(got.len(), 1);
    let reply = t.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type().starts_with("text/plain"));
    let text = &reply.text;
    for needle in [
        "ferrymq_messages_in_total{topic=\"m\"} 1",
        "ferrymq_bytes_in_total{topic=\"m\"} 5",
        "ferrymq_messages_out_total{topic=\"m\",group=\"g\"} 1",
        "ferrymq_consumer_lag{group=\"g\",topic=\"m\"} 1",
        "ferrymq_transactions_discarded_total 0",
        "# TYPE ferrymq_http_request_duration_seconds histogram",
        "ferrymq_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/topics/{topic}/messages\",status=\"200\"} 1",
        "ferrymq_ws_connections 0",
        "# TYPE ferrymq_store_flush_duration_seconds histogram",
        "ferrymq_store_flush_duration_seconds_count",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}
