//! The gateway's own extractors, so that every rejection is a problem document.
//!
//! [`Json`] and [`Query`] deserialize through `serde_path_to_error`, so a malformed body, a
//! wrong type or a missing field is a `400 invalid-argument` naming the field as a JSON
//! Pointer (`/messages/3/body`). A body over the limit is `413`, a non-JSON media type `415`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::problem::{ApiError, ApiResult};

/// A JSON request body (strictly checked) or response body.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let bytes = read_body(req, state).await?;
        // No body reads as `{}`: routes whose fields are all optional then need none, and the
        // others name the first missing field.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return parse_json(b"{}").map(Json);
        }
        parse_json(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Whether the request's media type is JSON (`application/json` or `*/*+json`).
/// `None` when no `Content-Type` was sent.
pub fn is_json(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let essence = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    Some(essence == "application/json" || essence.ends_with("+json"))
}

/// Accepts JSON or an absent `Content-Type`; anything else is `415`.
pub fn require_json(headers: &HeaderMap) -> ApiResult<()> {
    match is_json(headers) {
        None | Some(true) => Ok(()),
        Some(false) => {
            let got = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("?");
            Err(ApiError::UnsupportedMediaType(format!("this route takes application/json, not {got}")))
        }
    }
}

/// Reads the whole body within the router's body limit (`413` beyond it).
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> ApiResult<Bytes> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("the request body exceeds the server's limit".to_string())
        } else {
            ApiError::invalid("", format!("cannot read the request body: {rejection}"))
        }
    })
}

/// Deserializes JSON, reporting the failing field as a JSON Pointer.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(e, bytes))?;
    de.end().map_err(|e| ApiError::invalid("", format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Deserializes an already parsed JSON value; `prefix` is the pointer of `value` in the body.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value, prefix: &str) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let pointer = pointer(err.path());
        let inner = err.into_inner();
        field_error(prefix, &pointer, &inner.to_string())
    })
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>, bytes: &[u8]) -> ApiError {
    let pointer = pointer(err.path());
    let inner = err.into_inner();
    match inner.classify() {
        // serde_json reports a wrong JSON type for an enum (a number for `perm`) as a syntax
        // error; in a well-formed document it is the field's fault.
        serde_json::error::Category::Syntax
            if !pointer.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() =>
        {
            let message = inner.to_string();
            let message = message.find(" at line ").map_or(message.as_str(), |at| &message[..at]);
            ApiError::invalid(pointer, format!("has the wrong type or value ({message})"))
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            ApiError::invalid("", format!("malformed JSON: {inner}"))
        }
        serde_json::error::Category::Io | serde_json::error::Category::Data => {
            field_error("", &pointer, &inner.to_string())
        }
    }
}

/// Builds the field error of a serde message; a missing field names the field itself.
fn field_error(prefix: &str, pointer: &str, message: &str) -> ApiError {
    // serde_json appends " at line L column C"; the pointer says where already.
    let message = match message.find(" at line ") {
        Some(at) => &message[..at],
        None => message,
    };
    let field = match message.strip_prefix("missing field `").and_then(|s| s.strip_suffix('`')) {
        Some(name) => format!("{prefix}{pointer}/{}", escape_pointer(name)),
        None => format!("{prefix}{pointer}"),
    };
    ApiError::invalid(field, message.to_string())
}

/// A `serde_path_to_error` path as a JSON Pointer.
fn pointer(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            serde_path_to_error::Segment::Map { key } => {
                out.push('/');
                out.push_str(&escape_pointer(key));
            }
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

/// Escapes one JSON Pointer token (RFC 6901).
pub fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Query string parameters, deserialized with the same field reporting as [`Json`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Query).map_err(|err| {
            let pointer = pointer(err.path());
            let inner = err.into_inner();
            field_error("", &pointer, &inner.to_string())
        })
    }
}

/// Path parameters; a rejection (e.g. bad percent-encoding) is `400`.
#[derive(Clone, Debug)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|rejection| ApiError::invalid("", rejection.body_text()))
    }
}

/// The member id of a REST receiver: the `ferry-client-id` header, else the peer's IP address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestClientId(pub String);

/// Header naming a REST receiver.
pub const CLIENT_ID_HEADER: &str = "ferry-client-id";

impl<S: Send + Sync> FromRequestParts<S> for RestClientId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(CLIENT_ID_HEADER) {
            let id = value
                .to_str()
                .map_err(|_| ApiError::invalid("/headers/ferry-client-id", "must be visible ASCII"))?
                .trim();
            if id.is_empty() || id.len() > 255 {
                return Err(ApiError::invalid("/headers/ferry-client-id", "must be 1 to 255 characters"));
            }
            return Ok(RestClientId(id.to_string()));
        }
        // The IP alone: a client that opens a new connection per request keeps one identity.
        let id = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_else(|| "rest-client".to_string());
        Ok(RestClientId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        body: String,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        messages: Vec<Inner>,
    }

    fn field_of(err: ApiError) -> String {
        match err {
            ApiError::Invalid(errors) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn wrong_type_points_at_the_field() {
        let err = parse_json::<Outer>(br#"{"messages": [{"body": "a"}, {"body": 3}]}"#).unwrap_err();
        assert_eq!(field_of(err), "/messages/1/body");
    }

    #[test]
    fn missing_field_points_at_the_missing_field() {
        let err = parse_json::<Outer>(br#"{"messages": [{}]}"#).unwrap_err();
        assert_eq!(field_of(err), "/messages/0/body");
    }

    #[test]
    fn malformed_json_points_at_the_root() {
        let err = parse_json::<Outer>(b"{\"messages\": [").unwrap_err();
        assert_eq!(field_of(err), "");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        assert!(matches!(parse_json::<Inner>(br#"{"body": "a"} x"#), Err(ApiError::Invalid(_))));
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(escape_pointer("a/b~c"), "a~1b~0c");
    }
}
