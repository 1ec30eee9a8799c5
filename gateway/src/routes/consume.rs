//! Simple consumption over plain HTTP: receive with a lease, then ack, nack or change the
//! lease. A REST receiver is a clustering member named by `ferry-client-id` or its address.

use std::time::Duration;

use axum::extract::State;
use ferrymq_core::broker::{Broker, ConsumeMode, FilterSpec, MemberTransport, ReceiveRequest, StartPosition};

use crate::access::Caller;
use crate::auth::Action;
use crate::extract::{Json, Path, RestClientId};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use crate::wire::{
    AckBody, AckResult, ChangeInvisibleBody, FailedReceipt, FromMessages, MessageList, NackBody, NackResult,
    ReceiptOut, ReceiveBody,
};

/// Limits of a receive, from the contract.
pub const MAX_MESSAGES: u32 = 1000;
/// Longest long poll.
pub const MAX_WAIT_MS: u64 = 30_000;
/// Shortest and longest invisibility.
pub const INVISIBLE_MS: std::ops::RangeInclusive<u64> = 1_000..=43_200_000;
/// Most receipts in one ack or nack.
const MAX_RECEIPTS: usize = 1000;

/// A tag expression or SQL filter, from a `filter` / `sql` pair of which at most one is set.
pub fn filter_spec(filter: Option<String>, sql: Option<String>, prefix: &str) -> ApiResult<FilterSpec> {
    match (filter, sql) {
        (Some(_), Some(_)) => Err(ApiError::invalid(format!("{prefix}/sql"), "give filter or sql, not both")),
        (_, Some(sql)) => Ok(FilterSpec::Sql(sql)),
        (filter, None) => Ok(FilterSpec::Tag(filter.unwrap_or_else(|| "*".to_string()))),
    }
}

/// Checks an `invisible_ms` against the contract's range.
pub fn invisible(ms: u64, field: &str) -> ApiResult<Duration> {
    if INVISIBLE_MS.contains(&ms) {
        Ok(Duration::from_millis(ms))
    } else {
        Err(ApiError::invalid(field, "must be between 1000 and 43200000"))
    }
}

/// Receives messages with a lease.
#[utoipa::path(
    post,
    path = "/v1/groups/{group}/receive",
    operation_id = "receive_messages",
    tag = "consume",
    params(
        ("group" = String, Path, description = "Consumer group", pattern = "^[A-Za-z0-9_-]{1,127}$"),
        ("ferry-client-id" = Option<String>, Header, description = "Member id (default: the client's address)"),
    ),
    request_body = ReceiveBody,
    responses(
        (status = 200, description = "Messages, each with a receipt", body = MessageList),
        (status = 403, description = "The topic is write-only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
    RestClientId(client_id): RestClientId,
    Json(body): Json<ReceiveBody>,
) -> ApiResult<Json<MessageList>> {
    caller.require(Action::Consume, Some(&body.topic), Some(&group))?;
    let max_messages = body.max_messages.unwrap_or(16);
    if !(1..=MAX_MESSAGES).contains(&max_messages) {
        return Err(ApiError::invalid("/max_messages", "must be between 1 and 1000"));
    }
    let wait_ms = body.wait_ms.unwrap_or(0);
    if wait_ms > MAX_WAIT_MS {
        return Err(ApiError::invalid("/wait_ms", "must be at most 30000"));
    }
    let invisible = invisible(body.invisible_ms.unwrap_or(30_000), "/invisible_ms")?;
    let filter = filter_spec(body.filter, body.sql, "")?;
    let broker = state.broker()?;
    let messages = broker
        .receive(ReceiveRequest {
            group,
            topic: body.topic,
            filter,
            max_messages: max_messages as usize,
            wait: Duration::from_millis(wait_ms),
            invisible,
            client_id,
            transport: MemberTransport::Rest,
            mode: ConsumeMode::Clustering,
            start: StartPosition::First,
            orderly: false,
        })
        .await?;
    Ok(Json(MessageList::from_messages(messages)))
}

/// Refuses the whole request if any receipt does not parse, before any of them takes effect.
fn check_receipts(broker: &Broker, receipts: &[String]) -> ApiResult<()> {
    if receipts.len() > MAX_RECEIPTS {
        return Err(ApiError::invalid("/receipts", format!("at most {MAX_RECEIPTS} receipts at once")));
    }
    for (index, receipt) in receipts.iter().enumerate() {
        broker.validate_receipt(receipt).map_err(|e| at_receipt(e, index))?;
    }
    Ok(())
}

/// Acknowledges received messages.
#[utoipa::path(
    post,
    path = "/v1/groups/{group}/ack",
    operation_id = "ack_messages",
    tag = "consume",
    params(("group" = String, Path, description = "Consumer group", pattern = "^[A-Za-z0-9_-]{1,127}$")),
    request_body = AckBody,
    responses(
        (status = 200, description = "Counts and the receipts that did not apply", body = AckResult),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ack(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
    Json(body): Json<AckBody>,
) -> ApiResult<Json<AckResult>> {
    caller.require(Action::Consume, None, Some(&group))?;
    let broker = state.broker()?;
    check_receipts(&broker, &body.receipts)?;
    let mut result = AckResult { acked: 0, failed: Vec::new() };
    for (index, receipt) in body.receipts.into_iter().enumerate() {
        match broker.ack(&group, &receipt).await.map_err(|e| at_receipt(e, index))? {
            Ok(()) => result.acked += 1,
            Err(failure) => result.failed.push(FailedReceipt { receipt, reason: failure.into() }),
        }
    }
    Ok(Json(result))
}

/// Points an unparseable receipt's error at its place in the list.
fn at_receipt(err: ferrymq_core::Error, index: usize) -> ApiError {
    match err {
        ferrymq_core::Error::InvalidArgument { message, .. } => {
            ApiError::invalid(format!("/receipts/{index}"), message)
        }
        other => other.into(),
    }
}

/// Negatively acknowledges received messages: they come back after a delay.
#[utoipa::path(
    post,
    path = "/v1/groups/{group}/nack",
    operation_id = "nack_messages",
    tag = "consume",
    params(("group" = String, Path, description = "Consumer group", pattern = "^[A-Za-z0-9_-]{1,127}$")),
    request_body = NackBody,
    responses(
        (status = 200, description = "Counts and the receipts that did not apply", body = NackResult),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn nack(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
    Json(body): Json<NackBody>,
) -> ApiResult<Json<NackResult>> {
    caller.require(Action::Consume, None, Some(&group))?;
    let broker = state.broker()?;
    check_receipts(&broker, &body.receipts)?;
    let delay = body.delay_ms.map(Duration::from_millis);
    if let Some(delay) = delay {
        if delay > broker.config().max_delay {
            return Err(ApiError::invalid("/delay_ms", "must be at most max_delay"));
        }
    }
    let mut result = NackResult { nacked: 0, failed: Vec::new() };
    for (index, receipt) in body.receipts.into_iter().enumerate() {
        match broker.nack(&group, &receipt, delay).await.map_err(|e| at_receipt(e, index))? {
            Ok(()) => result.nacked += 1,
            Err(failure) => result.failed.push(FailedReceipt { receipt, reason: failure.into() }),
        }
    }
    Ok(Json(result))
}

/// Changes how long a received message stays invisible; returns a new receipt.
#[utoipa::path(
    post,
    path = "/v1/groups/{group}/change_invisible",
    operation_id = "change_invisible",
    tag = "consume",
    params(("group" = String, Path, description = "Consumer group", pattern = "^[A-Za-z0-9_-]{1,127}$")),
    request_body = ChangeInvisibleBody,
    responses(
        (status = 200, description = "The new receipt", body = ReceiptOut),
        (status = 404, description = "The receipt is no longer held", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn change_invisible(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
    Json(body): Json<ChangeInvisibleBody>,
) -> ApiResult<Json<ReceiptOut>> {
    caller.require(Action::Consume, None, Some(&group))?;
    let invisible = invisible(body.invisible_ms, "/invisible_ms")?;
    let broker = state.broker()?;
    let receipt = broker.change_invisible(&group, &body.receipt, invisible).await.map_err(|e| match e {
        ferrymq_core::Error::InvalidArgument { message, .. } => ApiError::invalid("/receipt", message),
        other => other.into(),
    })?;
    Ok(Json(ReceiptOut { receipt }))
}
