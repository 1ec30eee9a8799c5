//! Operations: health, Prometheus metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::access::Caller;
use crate::auth::Action;
use crate::extract::Json;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use crate::wire::HealthOut;

/// Health: `200` once the broker has finished recovery, `503` before.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health",
    tag = "operations",
    responses(
        (status = 200, description = "The broker is open", body = HealthOut),
        (status = 503, description = "Recovery still running or shutting down", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> ApiResult<Json<HealthOut>> {
    state.broker()?;
    Ok(Json(HealthOut { status: "ok".to_string() }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> ApiResult<impl IntoResponse> {
    caller.require(Action::Admin, None, None)?;
    let broker = state.opened_broker();
    let text = state.metrics().render(broker.as_deref());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

/// This API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
pub async fn openapi() -> impl IntoResponse {
    match crate::openapi::document_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot serialize the OpenAPI document");
            ApiError::Unavailable("the OpenAPI document is not available".to_string()).into_response()
        }
    }
}
