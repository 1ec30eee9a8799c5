//! Prometheus metrics: the gateway's own (request durations, WebSocket connections) plus the
//! broker's counters and the store's flush timings, rendered in the text exposition format.
//!
//! Every name starts with `ferrymq_`. Label values are escaped; series of the broker exist from
//! the moment their topic or group does, so they are rendered even at 0.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ferrymq_core::broker::Broker;

use crate::state::AppState;

/// Upper bounds (seconds) of the request-duration histogram.
const HTTP_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Clone, Debug, Default)]
struct Histogram {
    buckets: [u64; HTTP_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The gateway's own metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Request durations by (method, route, status).
    http: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    ws_connections: AtomicI64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        let h = http.entry((method.to_string(), route.to_string(), status)).or_default();
        for (bucket, bound) in h.buckets.iter_mut().zip(HTTP_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// A WebSocket connection opened (`+1`) or closed (`-1`).
    pub fn ws_connection(&self, delta: i64) {
        self.ws_connections.fetch_add(delta, Ordering::Relaxed);
    }

    /// Open WebSocket connections now.
    pub fn ws_connections(&self) -> i64 {
        self.ws_connections.load(Ordering::Relaxed)
    }

    /// The whole exposition: gateway metrics, then the broker's and the store's if it is open.
    pub fn render(&self, broker: Option<&Broker>) -> String {
        let mut out = String::new();
        out.push_str("# HELP ferrymq_http_request_duration_seconds Time to answer an HTTP request.\n");
        out.push_str("# TYPE ferrymq_http_request_duration_seconds histogram\n");
        {
            let http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
            for ((method, route, status), h) in http.iter() {
                let labels = format!("method=\"{}\",route=\"{}\",status=\"{status}\"", escape(method), escape(route));
                for (count, bound) in h.buckets.iter().zip(HTTP_BUCKETS) {
                    let _ = writeln!(
                        out,
                        "ferrymq_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                    );
                }
                let _ =
                    writeln!(out, "ferrymq_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "ferrymq_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "ferrymq_http_request_duration_seconds_count{{{labels}}} {}", h.count);
            }
        }
        out.push_str("# HELP ferrymq_ws_connections Open WebSocket connections.\n");
        out.push_str("# TYPE ferrymq_ws_connections gauge\n");
        let _ = writeln!(out, "ferrymq_ws_connections {}", self.ws_connections());
        if let Some(broker) = broker {
            render_broker(&mut out, broker);
        }
        out
    }
}

/// Renders the broker's counters and the store's flush histogram.
fn render_broker(out: &mut String, broker: &Broker) {
    let m = broker.metrics();
    header(out, "ferrymq_messages_in_total", "counter", "Messages stored, by topic.");
    for (topic, n) in &m.messages_in {
        let _ = writeln!(out, "ferrymq_messages_in_total{{topic=\"{}\"}} {n}", escape(topic));
    }
    header(out, "ferrymq_bytes_in_total", "counter", "Body bytes stored, by topic.");
    for (topic, n) in &m.bytes_in {
        let _ = writeln!(out, "ferrymq_bytes_in_total{{topic=\"{}\"}} {n}", escape(topic));
    }
    header(out, "ferrymq_messages_out_total", "counter", "Deliveries, by topic and group.");
    for ((topic, group), n) in &m.messages_out {
        let _ =
            writeln!(out, "ferrymq_messages_out_total{{topic=\"{}\",group=\"{}\"}} {n}", escape(topic), escape(group));
    }
    header(out, "ferrymq_consumer_lag", "gauge", "Messages not yet consumed, by group and topic.");
    for ((group, topic), n) in &m.consumer_lag {
        let _ = writeln!(out, "ferrymq_consumer_lag{{group=\"{}\",topic=\"{}\"}} {n}", escape(group), escape(topic));
    }
    header(
        out,
        "ferrymq_transactions_discarded_total",
        "counter",
        "Half messages discarded after their last unanswered check.",
    );
    let _ = writeln!(out, "ferrymq_transactions_discarded_total {}", m.transactions_discarded);
    header(
        out,
        "ferrymq_transaction_checks_lost_total",
        "counter",
        "Transaction checks that reached no producer; each is asked again later.",
    );
    let _ = writeln!(out, "ferrymq_transaction_checks_lost_total {}", m.transaction_checks_lost);

    let stats = broker.store().stats();
    header(out, "ferrymq_store_flush_duration_seconds", "histogram", "Time of one commit log flush.");
    for (count, bound) in stats.flush_buckets.iter().zip(ferrymq_core::broker::FLUSH_BUCKETS) {
        let _ = writeln!(out, "ferrymq_store_flush_duration_seconds_bucket{{le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "ferrymq_store_flush_duration_seconds_bucket{{le=\"+Inf\"}} {}", stats.flush_count);
    let _ = writeln!(out, "ferrymq_store_flush_duration_seconds_sum {}", stats.flush_seconds_sum);
    let _ = writeln!(out, "ferrymq_store_flush_duration_seconds_count {}", stats.flush_count);
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Middleware: times every request by its route pattern (not its concrete path, which would
/// make one series per topic).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    state.metrics().observe_request(&method, &route, response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_request("GET", "/v1/topics", 200, 0.003);
        m.observe_request("GET", "/v1/topics", 200, 0.2);
        let text = m.render(None);
        assert!(text.contains(
            "ferrymq_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/topics\",status=\"200\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "ferrymq_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/topics\",status=\"200\"} 2"
        ));
        assert!(text.contains("ferrymq_ws_connections 0"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
