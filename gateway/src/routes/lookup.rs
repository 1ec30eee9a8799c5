//! Message lookups: by id, and by key and store time within a topic.

use axum::extract::State;

use crate::access::Caller;
use crate::auth::Action;
use crate::extract::{Json, Path, Query};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use crate::wire::{FindMessagesQuery, FromMessages, MessageList, MessageOut};

/// Default and largest `limit` of a lookup.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Finds a topic's messages by key and store time, oldest first.
#[utoipa::path(
    get,
    path = "/v1/topics/{topic}/messages",
    operation_id = "find_messages",
    tag = "messages",
    params(("topic" = String, Path, description = "Topic name", pattern = "^[A-Za-z0-9_-]{1,127}$"), FindMessagesQuery),
    responses(
        (status = 200, description = "Matching messages", body = MessageList),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn find(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
    Query(query): Query<FindMessagesQuery>,
) -> ApiResult<Json<MessageList>> {
    caller.require(Action::Consume, Some(&topic), None)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("/limit", format!("must be between 1 and {MAX_LIMIT}")));
    }
    let broker = state.broker()?;
    let messages =
        broker.find_messages(&topic, query.key.as_deref(), query.from_ts, query.to_ts, limit as usize).await?;
    Ok(Json(MessageList::from_messages(messages)))
}

/// Looks a message up by id.
#[utoipa::path(
    get,
    path = "/v1/messages/{msg_id}",
    operation_id = "get_message",
    tag = "messages",
    params(("msg_id" = String, Path, description = "Message id")),
    responses(
        (status = 200, description = "The message", body = MessageOut),
        (status = 404, description = "Unknown message", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(msg_id): Path<String>,
) -> ApiResult<Json<MessageOut>> {
    caller.require(Action::Consume, None, None)?;
    let broker = state.broker()?;
    let message = broker.message(&msg_id).await?;
    caller.require(Action::Consume, Some(&message.topic), None)?;
    Ok(Json(message.into()))
}
