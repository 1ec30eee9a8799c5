//! Ending transactions over HTTP, and registering a producer group's check-back URL.

use axum::extract::State;
use ferrymq_core::broker::TransactionResolution;

use crate::access::Caller;
use crate::auth::Action;
use crate::extract::{Json, Path};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use crate::wire::{ProducerBody, ProducerOut, TransactionOut};

async fn end(
    state: &AppState,
    caller: &Caller,
    id: &str,
    resolution: TransactionResolution,
) -> ApiResult<TransactionOut> {
    let broker = state.broker()?;
    // Ending a transaction publishes (or discards) its message: it needs `publish` on the
    // message's topic. An unknown id is 404 below, for any publisher.
    caller.require(Action::Publish, broker.transaction_topic(id).as_deref(), None)?;
    Ok(broker.end_transaction(id, resolution).await?.into())
}

/// Commits a transactional message: it becomes visible in its topic.
#[utoipa::path(
    post,
    path = "/v1/transactions/{id}/commit",
    operation_id = "commit_transaction",
    tag = "transactions",
    params(("id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, description = "Committed", body = TransactionOut),
        (status = 404, description = "Unknown transaction", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already ended", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn commit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TransactionOut>> {
    end(&state, &caller, &id, TransactionResolution::Commit).await.map(Json)
}

/// Rolls a transactional message back: it is discarded.
#[utoipa::path(
    post,
    path = "/v1/transactions/{id}/rollback",
    operation_id = "rollback_transaction",
    tag = "transactions",
    params(("id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, description = "Rolled back", body = TransactionOut),
        (status = 404, description = "Unknown transaction", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already ended", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TransactionOut>> {
    end(&state, &caller, &id, TransactionResolution::Rollback).await.map(Json)
}

/// Registers the URL the broker POSTs transaction check-backs of this producer group to.
#[utoipa::path(
    put,
    path = "/v1/producers/{group}",
    operation_id = "put_producer",
    tag = "transactions",
    params(("group" = String, Path, description = "Producer group", pattern = "^[A-Za-z0-9_-]{1,127}$")),
    request_body = ProducerBody,
    responses(
        (status = 200, description = "Registered (kept across restarts)", body = ProducerOut),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_producer(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
    Json(body): Json<ProducerBody>,
) -> ApiResult<Json<ProducerOut>> {
    caller.require(Action::Admin, None, Some(&group))?;
    let url = reqwest::Url::parse(&body.check_url)
        .map_err(|e| ApiError::invalid("/check_url", format!("is not a URL: {e}")))?;
    if url.scheme() != "http" || url.host().is_none() {
        return Err(ApiError::invalid("/check_url", "must be an http:// URL with a host"));
    }
    let broker = state.broker()?;
    broker.register_check_url(&group, &body.check_url)?;
    Ok(Json(ProducerOut { group, check_url: body.check_url }))
}
