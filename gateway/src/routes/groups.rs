//! `/v1/groups`: members, subscriptions, offsets and lag; settings; offset resets; dead
//! letters.

use axum::extract::State;
use ferrymq_core::broker::ResetTarget;

use crate::access::Caller;
use crate::auth::Action;
use crate::extract::{Json, Path};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use crate::wire::{
    FromMessages, GroupDetailOut, GroupList, MessageList, PutGroup, QueueOffsetOut, ResetBody, ResetResult, ResetTo,
    SendResultOut,
};

/// Lists the groups the caller may read.
#[utoipa::path(
    get,
    path = "/v1/groups",
    operation_id = "list_groups",
    tag = "groups",
    responses((status = 200, description = "Every group", body = GroupList))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<GroupList>> {
    caller.require(Action::Consume, None, None)?;
    let broker = state.broker()?;
    let groups = broker
        .groups()
        .into_iter()
        .filter(|g| caller.may(Action::Consume, None, Some(&g.group)))
        .map(Into::into)
        .collect();
    Ok(Json(GroupList { groups }))
}

/// Shows a group: subscriptions, members and offsets with lag.
#[utoipa::path(
    get,
    path = "/v1/groups/{group}",
    operation_id = "get_group",
    tag = "groups",
    params(("group" = String, Path, description = "Consumer group", pattern = "^[A-Za-z0-9_-]{1,127}$")),
    responses(
        (status = 200, description = "The group", body = GroupDetailOut),
        (status = 404, description = "A group never seen", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
) -> ApiResult<Json<GroupDetailOut>> {
    caller.require(Action::Consume, None, Some(&group))?;
    let broker = state.broker()?;
    Ok(Json(broker.group(&group)?.into()))
}

/// Creates a group or changes its settings.
#[utoipa::path(
    put,
    path = "/v1/groups/{group}",
    operation_id = "put_group",
    tag = "groups",
    params(("group" = String, Path, description = "Consumer group", pattern = "^[A-Za-z0-9_-]{1,127}$")),
    request_body = PutGroup,
    responses(
        (status = 200, description = "The group", body = GroupDetailOut),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
    Json(body): Json<PutGroup>,
) -> ApiResult<Json<GroupDetailOut>> {
    caller.require(Action::Admin, None, Some(&group))?;
    let broker = state.broker()?;
    Ok(Json(broker.put_group(&group, body.max_reconsume_times)?.into()))
}

/// Moves the group's offsets on a topic to a time, the earliest or the latest message.
#[utoipa::path(
    post,
    path = "/v1/groups/{group}/offsets/reset",
    operation_id = "reset_offsets",
    tag = "groups",
    params(("group" = String, Path, description = "Consumer group", pattern = "^[A-Za-z0-9_-]{1,127}$")),
    request_body = ResetBody,
    responses(
        (status = 200, description = "The new offsets", body = ResetResult),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reset(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
    Json(body): Json<ResetBody>,
) -> ApiResult<Json<ResetResult>> {
    caller.require(Action::Admin, Some(&body.topic), Some(&group))?;
    let target = match (body.timestamp, body.to) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("/to", "give timestamp or to, not both")),
        (Some(ts), None) => ResetTarget::Timestamp(ts),
        (None, Some(ResetTo::Earliest)) => ResetTarget::Earliest,
        (None, Some(ResetTo::Latest)) => ResetTarget::Latest,
        (None, None) => return Err(ApiError::invalid("/to", "give timestamp or to")),
    };
    let broker = state.broker()?;
    let offsets = broker.reset_offsets(&group, &body.topic, target).await?;
    Ok(Json(ResetResult {
        offsets: offsets.into_iter().map(|(queue_id, offset)| QueueOffsetOut { queue_id, offset }).collect(),
    }))
}

/// Lists the group's dead letters.
#[utoipa::path(
    get,
    path = "/v1/groups/{group}/dlq",
    operation_id = "list_dlq",
    tag = "groups",
    params(("group" = String, Path, description = "Consumer group", pattern = "^[A-Za-z0-9_-]{1,127}$")),
    responses(
        (status = 200, description = "Dead letters", body = MessageList),
        (status = 404, description = "A group never seen", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn dlq(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
) -> ApiResult<Json<MessageList>> {
    caller.require(Action::Consume, None, Some(&group))?;
    let broker = state.broker()?;
    Ok(Json(MessageList::from_messages(broker.dlq(&group).await?)))
}

/// Moves a dead letter back to its topic with `reconsume_times` 0.
#[utoipa::path(
    post,
    path = "/v1/groups/{group}/dlq/{msg_id}/resend",
    operation_id = "resend_dlq",
    tag = "groups",
    params(
        ("group" = String, Path, description = "Consumer group", pattern = "^[A-Za-z0-9_-]{1,127}$"),
        ("msg_id" = String, Path, description = "Message id"),
    ),
    responses(
        (status = 200, description = "The publish result (same msg_id)", body = SendResultOut),
        (status = 404, description = "Not in the DLQ", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, msg_id)): Path<(String, String)>,
) -> ApiResult<Json<SendResultOut>> {
    caller.require(Action::Admin, None, Some(&group))?;
    let broker = state.broker()?;
    Ok(Json(broker.resend_dlq(&group, &msg_id).await?.into()))
}
