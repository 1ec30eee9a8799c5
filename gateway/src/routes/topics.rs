//! `/v1/topics`: create, list, show and delete topics.

use axum::extract::State;
use axum::http::StatusCode;

use crate::access::Caller;
use crate::auth::Action;
use crate::extract::{Json, Path};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use crate::wire::{CreateTopic, TopicDetailOut, TopicList, TopicOut};

/// Creates a topic.
#[utoipa::path(
    post,
    path = "/v1/topics",
    operation_id = "create_topic",
    tag = "topics",
    request_body = CreateTopic,
    responses(
        (status = 201, description = "Created", body = TopicOut),
        (status = 409, description = "The topic exists", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateTopic>,
) -> ApiResult<(StatusCode, Json<TopicOut>)> {
    caller.require(Action::Admin, Some(&body.name), None)?;
    let broker = state.broker()?;
    let topic = broker.create_topic(&body.name, body.queues, body.perm.map(Into::into)).map_err(|e| match e {
        // The request names the topic in `name`.
        ferrymq_core::Error::InvalidArgument { field, message } if field == "/topic" => {
            ferrymq_core::Error::InvalidArgument { field: "/name".into(), message }
        }
        other => other,
    })?;
    Ok((StatusCode::CREATED, Json(topic.into())))
}

/// Lists the topics the caller may read.
#[utoipa::path(
    get,
    path = "/v1/topics",
    operation_id = "list_topics",
    tag = "topics",
    responses((status = 200, description = "Every topic", body = TopicList))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<TopicList>> {
    caller.require(Action::Consume, None, None)?;
    let broker = state.broker()?;
    let topics = broker
        .topics()
        .into_iter()
        .filter(|t| caller.may(Action::Consume, Some(&t.name), None))
        .map(Into::into)
        .collect();
    Ok(Json(TopicList { topics }))
}

/// Shows a topic with its queues' offsets.
#[utoipa::path(
    get,
    path = "/v1/topics/{topic}",
    operation_id = "get_topic",
    tag = "topics",
    params(("topic" = String, Path, description = "Topic name", pattern = "^[A-Za-z0-9_-]{1,127}$")),
    responses(
        (status = 200, description = "The topic", body = TopicDetailOut),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
) -> ApiResult<Json<TopicDetailOut>> {
    caller.require(Action::Consume, Some(&topic), None)?;
    let broker = state.broker()?;
    Ok(Json(broker.topic(&topic)?.into()))
}

/// Deletes a topic, its queues and the groups' offsets on it.
#[utoipa::path(
    delete,
    path = "/v1/topics/{topic}",
    operation_id = "delete_topic",
    tag = "topics",
    params(("topic" = String, Path, description = "Topic name", pattern = "^[A-Za-z0-9_-]{1,127}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(topic): Path<String>) -> ApiResult<StatusCode> {
    caller.require(Action::Admin, Some(&topic), None)?;
    let broker = state.broker()?;
    broker.delete_topic(&topic).await?;
    Ok(StatusCode::NO_CONTENT)
}
