//! Problem documents (RFC 9457 `application/problem+json`) and the contract's error kinds.
//!
//! REST answers an error with a [`Problem`]; a WebSocket `error` frame carries the same fields.
//! The `type` is `urn:ferrymq:error:<kind>`, one [`ErrorKind`] per kind, with a fixed status.

use serde::{Deserialize, Serialize};

/// The prefix of every problem `type`.
pub const TYPE_PREFIX: &str = "urn:ferrymq:error:";

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One error kind of the contract, with its status and title.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `invalid-argument`, 400: a field is missing, of the wrong type or out of range.
    InvalidArgument,
    /// `invalid-filter`, 400: a tag or SQL92 expression does not parse.
    InvalidFilter,
    /// `unauthorized`, 401: no valid token.
    Unauthorized,
    /// `forbidden`, 403: the token's grant does not cover the action.
    Forbidden,
    /// `not-found`, 404.
    NotFound,
    /// `method-not-allowed`, 405.
    MethodNotAllowed,
    /// `conflict`, 409: exists already, or already ended.
    Conflict,
    /// `idempotency-conflict`, 409: a repeated idempotency key with a different message.
    IdempotencyConflict,
    /// `payload-too-large`, 413.
    PayloadTooLarge,
    /// `unsupported-media-type`, 415.
    UnsupportedMediaType,
    /// `insufficient-storage`, 507: the data disk is (nearly) full.
    InsufficientStorage,
    /// `unavailable`, 503: starting, recovering, or unable to answer in time.
    Unavailable,
    /// `internal`, 500: a bug or a storage failure; the detail stays in the server log.
    Internal,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::InvalidArgument,
        ErrorKind::InvalidFilter,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::Conflict,
        ErrorKind::IdempotencyConflict,
        ErrorKind::PayloadTooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::InsufficientStorage,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// The kind's name, the last part of its `type`: `not-found`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid-argument",
            ErrorKind::InvalidFilter => "invalid-filter",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not-found",
            ErrorKind::MethodNotAllowed => "method-not-allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::IdempotencyConflict => "idempotency-conflict",
            ErrorKind::PayloadTooLarge => "payload-too-large",
            ErrorKind::UnsupportedMediaType => "unsupported-media-type",
            ErrorKind::InsufficientStorage => "insufficient-storage",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    /// The HTTP status REST answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidArgument | ErrorKind::InvalidFilter => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Conflict | ErrorKind::IdempotencyConflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::InsufficientStorage => 507,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The problem's `title`.
    pub fn title(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "Invalid argument",
            ErrorKind::InvalidFilter => "Invalid filter",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::NotFound => "Not found",
            ErrorKind::MethodNotAllowed => "Method not allowed",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::IdempotencyConflict => "Idempotency conflict",
            ErrorKind::PayloadTooLarge => "Payload too large",
            ErrorKind::UnsupportedMediaType => "Unsupported media type",
            ErrorKind::InsufficientStorage => "Insufficient storage",
            ErrorKind::Unavailable => "Service unavailable",
            ErrorKind::Internal => "Internal error",
        }
    }

    /// The problem's `type`: `urn:ferrymq:error:<kind>`.
    pub fn type_uri(self) -> String {
        format!("{TYPE_PREFIX}{}", self.as_str())
    }

    /// The kind of a problem `type`, `None` for one this version does not know.
    pub fn from_type_uri(uri: &str) -> Option<ErrorKind> {
        let name = uri.strip_prefix(TYPE_PREFIX)?;
        ErrorKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invalid field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// JSON Pointer to the offending field, e.g. `/messages/3/body` (`""` for the whole body).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// An RFC 9457 problem document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// `urn:ferrymq:error:<kind>`, stable per error kind.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(example = "urn:ferrymq:error:not-found"))]
    pub kind: String,
    /// Short, fixed summary of the kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this case.
    pub detail: String,
    /// For validation errors: each invalid field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl Problem {
    /// A problem of `kind`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Problem {
            kind: kind.type_uri(),
            title: kind.title().to_string(),
            status: kind.status(),
            detail: detail.into(),
            errors: None,
        }
    }

    /// An `invalid-argument` problem listing `errors`.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = format!(
            "invalid request: {}",
            errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
        );
        Problem { errors: Some(errors), ..Problem::new(ErrorKind::InvalidArgument, detail) }
    }

    /// The problem's kind, `None` when its `type` is not one of the contract's.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        ErrorKind::from_type_uri(&self.kind)
    }

    /// The first field error's pointer, `""` when there is none.
    pub fn first_field(&self) -> &str {
        self.errors.as_ref().and_then(|e| e.first()).map_or("", |e| e.field.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_type() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_type_uri(&kind.type_uri()), Some(kind));
        }
        assert_eq!(ErrorKind::from_type_uri("urn:ferrymq:error:timeout"), None);
        assert_eq!(ErrorKind::from_type_uri("not-found"), None);
    }

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(ErrorKind::NotFound.status(), 404);
        assert_eq!(ErrorKind::IdempotencyConflict.status(), 409);
        assert_eq!(ErrorKind::InsufficientStorage.status(), 507);
        assert_eq!(ErrorKind::Unavailable.status(), 503);
    }

    #[test]
    fn invalid_problems_list_their_fields() {
        let p = Problem::invalid(vec![FieldError::new("/topic", "is required")]);
        assert_eq!(p.status, 400);
        assert_eq!(p.first_field(), "/topic");
        let json = serde_json::to_value(&p).expect("serializes");
        assert_eq!(json["type"], "urn:ferrymq:error:invalid-argument");
        let back: Problem = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, p);
    }
}
