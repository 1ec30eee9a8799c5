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

/// The request's media type without parameters, lower-cased; `None` when no `Content-Type`
/// was sent.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    Some(value.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// Whether the request's media type is JSON (`application/json` or `*/*+json`).
/// `None` when no `Content-Type` was sent.
pub fn is_json(headers: &HeaderMap) -> Option<bool> {
    media_type(headers).map(|essence| essence == "application/json" || essence.ends_with("+json"))
}

/// Whether the request's media type is exactly `application/json` (any parameters): what makes
/// a publish a JSON message. Every other media type, `+json` ones included, is a raw body.
pub fn is_application_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|essence| essence == "application/json")
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

/// Deserializes a JSON object, reporting the failing field as a JSON Pointer. Every request
/// body of the API is an object: an array is not read as a struct's fields in order.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::invalid("", "the body must be a JSON object"));
    }
    Ok(ferrymq_proto::json::parse(bytes)?)
}

/// Deserializes an already parsed JSON value; `prefix` is the pointer of `value` in the body.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value, prefix: &str) -> ApiResult<T> {
    Ok(ferrymq_proto::json::from_value(value, prefix)?)
}

pub use ferrymq_proto::json::escape_pointer;

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
        Ok(ferrymq_proto::json::deserialize(de).map(Query)?)
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
