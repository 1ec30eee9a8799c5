//! `POST /v1/topics/{topic}/messages`: publish one JSON message, a JSON batch, or a raw body
//! with its attributes in `ferry-*` headers (any content type other than JSON), so that
//! `curl -d hello .../messages` works.

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use ferrymq_core::broker::OutgoingMessage;
use utoipa::ToSchema;

use crate::access::Caller;
use crate::auth::Action;
use crate::extract::{from_value, is_application_json, parse_json, read_body, Json, Path};
use crate::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::state::AppState;
use crate::wire::{
    BatchResult, IntoOutgoing, PublishBatch, PublishContext, PublishMessage, PublishRequest, PublishResponse,
};

/// A raw message body, stored byte for byte.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct RawBody(Vec<u8>);

/// Header carrying a publish's idempotency key (for a batch: the whole batch).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Publishes one message, a batch, or a raw body.
#[utoipa::path(
    post,
    path = "/v1/topics/{topic}/messages",
    operation_id = "publish_messages",
    tag = "messages",
    params(
        ("topic" = String, Path, description = "Topic name", pattern = "^[A-Za-z0-9_-]{1,127}$"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key: a repeat within the dedup window returns the first result"),
        ("traceparent" = Option<String>, Header, description = "W3C Trace Context, kept as the message property `traceparent`"),
        ("ferry-tag" = Option<String>, Header, description = "Raw body: the tag"),
        ("ferry-keys" = Option<String>, Header, description = "Raw body: comma-separated keys"),
        ("ferry-sharding-key" = Option<String>, Header, description = "Raw body: the sharding key"),
        ("ferry-delay-level" = Option<u32>, Header, description = "Raw body: delay level"),
        ("ferry-delay-ms" = Option<u64>, Header, description = "Raw body: delay in ms"),
        ("ferry-deliver-at" = Option<u64>, Header, description = "Raw body: delivery time, epoch ms"),
        ("ferry-transaction" = Option<bool>, Header, description = "Raw body: `true` for a transactional message"),
        ("ferry-producer-group" = Option<String>, Header, description = "Raw body: producer group"),
    ),
    request_body(
        description = "JSON (one message or `{\"messages\": [...]}`), or a raw body of any other type",
        content(
            (PublishRequest = "application/json"),
            (String = "text/plain"),
            (RawBody = "application/octet-stream"),
        )
    ),
    responses(
        (status = 200, description = "Stored: one result, or `{\"results\": [...]}` for a batch", body = PublishResponse),
        (status = 403, description = "The topic is read-only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic and auto-creation is off", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency key reused for a different message", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or batch too large", body = Problem, content_type = "application/problem+json"),
        (status = 507, description = "Disk nearly full", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Json<PublishResponse>> {
    caller.require(Action::Publish, Some(&topic), None)?;
    let broker = state.broker()?;
    let ctx = PublishContext {
        delay_levels: broker.config().delay_levels.len(),
        max_delay: broker.config().max_delay,
        traceparent: text_header(&headers, "traceparent")?,
    };
    let idempotency_key = text_header(&headers, IDEMPOTENCY_KEY)?;
    let body = read_body(req, &()).await?;
    if !is_application_json(&headers) {
        let mut msg = raw_message(&headers, &ctx)?;
        msg.body = body.to_vec();
        msg.idempotency_key = idempotency_key;
        let result = broker.send(&topic, msg).await?;
        return Ok(Json(PublishResponse::Single(result.into())));
    }
    // Read in one pass, straight into the messages; a body that does not read so goes through
    // a JSON tree, which words the error.
    let request = match PublishRequest::parse_hot(&body) {
        Some(request) => request,
        None => {
            let value: serde_json::Value = parse_json(&body)?;
            if value.get("messages").is_some() {
                PublishRequest::Batch(from_value(value, "")?)
            } else {
                PublishRequest::Single(Box::new(from_value(value, "")?))
            }
        }
    };
    match request {
        PublishRequest::Batch(batch) => {
            let msgs = batch_messages(batch, &ctx)?;
            let results = broker.send_batch(&topic, msgs, idempotency_key).await?;
            let results = results.into_iter().map(Into::into).collect();
            Ok(Json(PublishResponse::Batch(BatchResult { results })))
        }
        PublishRequest::Single(single) => {
            let mut msg = single.into_outgoing("", &ctx)?;
            if idempotency_key.is_some() {
                msg.idempotency_key = idempotency_key;
            }
            let result = broker.send(&topic, msg).await?;
            Ok(Json(PublishResponse::Single(result.into())))
        }
    }
}

/// Converts every message of a batch, collecting the errors of all of them.
pub fn batch_messages(batch: PublishBatch, ctx: &PublishContext) -> ApiResult<Vec<OutgoingMessage>> {
    if batch.messages.is_empty() {
        return Err(ApiError::invalid("/messages", "a batch needs at least one message"));
    }
    let mut errors: Vec<FieldError> = Vec::new();
    let mut msgs = Vec::with_capacity(batch.messages.len());
    for (index, message) in batch.messages.into_iter().enumerate() {
        match message.into_outgoing(&format!("/messages/{index}"), ctx) {
            Ok(msg) => msgs.push(msg),
            Err(ApiError::Invalid(mut e)) => errors.append(&mut e),
            Err(other) => return Err(other),
        }
    }
    if errors.is_empty() {
        Ok(msgs)
    } else {
        Err(ApiError::Invalid(errors))
    }
}

/// A header as text; `400` if it is not visible ASCII/UTF-8.
fn text_header(headers: &HeaderMap, name: &str) -> ApiResult<Option<String>> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => std::str::from_utf8(value.as_bytes())
            .map(|s| Some(s.trim().to_string()))
            .map_err(|_| ApiError::invalid(format!("/headers/{name}"), "is not valid UTF-8")),
    }
}

fn number_header<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> ApiResult<Option<T>> {
    match text_header(headers, name)? {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("/headers/{name}"), format!("{text:?} is not a valid number"))),
    }
}

/// The attributes of a raw-body publish, from its `ferry-*` headers (body left empty).
pub fn raw_message(headers: &HeaderMap, ctx: &PublishContext) -> ApiResult<OutgoingMessage> {
    let keys = text_header(headers, "ferry-keys")?
        .map(|k| k.split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    let transaction = match text_header(headers, "ferry-transaction")?.as_deref() {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(other) => {
            return Err(ApiError::invalid("/headers/ferry-transaction", format!("{other:?} is neither true nor false")))
        }
    };
    let mut properties = BTreeMap::new();
    for (name, value) in headers {
        if let Some(prop) = name.as_str().strip_prefix("ferry-prop-") {
            let value = std::str::from_utf8(value.as_bytes())
                .map_err(|_| ApiError::invalid(format!("/headers/{name}"), "is not valid UTF-8"))?;
            properties.insert(prop.to_string(), value.to_string());
        }
    }
    let message = PublishMessage {
        // The real body replaces this placeholder; it only satisfies the body check.
        body: Some(String::new()),
        body_base64: None,
        tag: text_header(headers, "ferry-tag")?,
        keys,
        properties,
        delay_level: number_header(headers, "ferry-delay-level")?,
        delay_ms: number_header(headers, "ferry-delay-ms")?,
        deliver_at: number_header(headers, "ferry-deliver-at")?,
        sharding_key: text_header(headers, "ferry-sharding-key")?,
        transaction,
        producer_group: text_header(headers, "ferry-producer-group")?,
        idempotency_key: None,
    };
    message.into_outgoing("", ctx)
}
