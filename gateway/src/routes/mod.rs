//! The REST routes of `/v1`, plus `/healthz`, `/metrics` and `/openapi.json`, and the router
//! that puts them together with auth, metrics, the body limit and problem-shaped fallbacks. The
//! web console's static files ([`console`]) are merged in last, outside auth.

pub mod console;
pub mod consume;
pub mod groups;
pub mod lookup;
pub mod ops;
pub mod publish;
pub mod tickets;
pub mod topics;
pub mod transactions;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post, put};
use axum::{middleware, Router};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

use crate::problem::ApiError;
use crate::state::AppState;

/// The whole gateway: every route, with auth, request metrics and the body limit.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/v1/topics", post(topics::create).get(topics::list))
        .route("/v1/topics/{topic}", get(topics::get).delete(topics::delete))
        .route("/v1/topics/{topic}/messages", post(publish::publish).get(lookup::find))
        .route("/v1/messages/{msg_id}", get(lookup::get))
        .route("/v1/groups", get(groups::list))
        .route("/v1/groups/{group}", get(groups::get).put(groups::put))
        .route("/v1/groups/{group}/receive", post(consume::receive))
        .route("/v1/groups/{group}/ack", post(consume::ack))
        .route("/v1/groups/{group}/nack", post(consume::nack))
        .route("/v1/groups/{group}/change_invisible", post(consume::change_invisible))
        .route("/v1/groups/{group}/offsets/reset", post(groups::reset))
        .route("/v1/groups/{group}/dlq", get(groups::dlq))
        .route("/v1/groups/{group}/dlq/{msg_id}/resend", post(groups::resend))
        .route("/v1/transactions/{id}/commit", post(transactions::commit))
        .route("/v1/transactions/{id}/rollback", post(transactions::rollback))
        .route("/v1/producers/{group}", put(transactions::put_producer))
        .route("/v1/ws", get(crate::ws::upgrade))
        .route("/v1/ws/tickets", post(tickets::issue))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings().body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), crate::access::authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), crate::metrics::track))
        .layer(cors())
        .with_state(state)
        .merge(console::router())
}

/// Browser pages on other origins may call the API: credentials travel as bearer tokens (never
/// cookies), so any origin is allowed, and preflights are answered before auth.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(std::time::Duration::from_secs(3600))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_string())
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}
