//! The gateway's one error type and its single mapping to RFC 9457 `application/problem+json`.
//!
//! Every handler returns [`ApiError`]; every core [`Error`] variant is mapped here, explicitly,
//! to a stable `type` (`urn:ferrymq:error:<kind>`) and status. Internal causes (I/O, corruption,
//! a poisoned or closed store) are logged and never shown to the client. WebSocket `error`
//! frames reuse [`ApiError::problem`] so both transports speak the same kinds.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrymq_core::Error;
pub use ferrymq_proto::problem::PROBLEM_JSON;
pub use ferrymq_proto::{ErrorKind, FieldError, Problem};

/// Everything a gateway request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An error of the broker core.
    #[error(transparent)]
    Core(#[from] Error),
    /// One or more request fields are invalid (`400 invalid-argument`).
    #[error("invalid request: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// No route has this path (`404 not-found`).
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The route exists but not with this method (`405 method-not-allowed`).
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// The request body has a media type the route does not take (`415`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request body is larger than the server accepts (`413 payload-too-large`).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// No valid token, or a token the auth file does not know (`401`).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token without the needed grant (`403`).
    #[error("{0}")]
    Forbidden(String),
    /// The broker has not opened yet or is shutting down (`503`).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// A single-field validation error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError { field: field.into(), message: message.into() }])
    }

    /// Kind, status and client-facing detail. Internal errors are logged here, once.
    /// The contract's kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Core(err) => err.error_kind(),
            ApiError::Invalid(_) => ErrorKind::InvalidArgument,
            ApiError::RouteNotFound(_) => ErrorKind::NotFound,
            ApiError::MethodNotAllowed(_) => ErrorKind::MethodNotAllowed,
            ApiError::UnsupportedMediaType(_) => ErrorKind::UnsupportedMediaType,
            ApiError::PayloadTooLarge(_) => ErrorKind::PayloadTooLarge,
            ApiError::Unauthorized(_) => ErrorKind::Unauthorized,
            ApiError::Forbidden(_) => ErrorKind::Forbidden,
            ApiError::Unavailable(_) => ErrorKind::Unavailable,
        }
    }

    /// The problem document. Internal causes (I/O, corruption, a poisoned or closed store)
    /// are logged here and never shown to the client.
    pub fn problem(&self) -> Problem {
        let kind = self.kind();
        if kind == ErrorKind::Internal {
            tracing::error!(error = %self, "internal error while serving a request");
            return Problem::new(kind, "internal error; the server log has the details");
        }
        let errors = match self {
            ApiError::Invalid(errors) => Some(errors.clone()),
            ApiError::Core(Error::InvalidArgument { field, message }) => {
                Some(vec![FieldError { field: field.clone(), message: message.clone() }])
            }
            _ => None,
        };
        Problem { errors, ..Problem::new(kind, self.to_string()) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        ApiError::Invalid(vec![err])
    }
}

/// Result alias of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::Core(Error::io("/secret/path", std::io::Error::other("disk on fire")));
        let problem = err.problem();
        assert_eq!(problem.status, 500);
        assert_eq!(problem.kind, "urn:ferrymq:error:internal");
        assert!(!problem.detail.contains("secret"));
    }

    #[test]
    fn invalid_argument_carries_its_field() {
        let problem = ApiError::Core(Error::invalid("/messages/3/body", "too long")).problem();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.kind, "urn:ferrymq:error:invalid-argument");
        let errors = problem.errors.expect("field errors");
        assert_eq!(errors[0].field, "/messages/3/body");
    }

    #[test]
    fn statuses_follow_the_contract() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (Error::not_found("topic", "t").into(), 404, "not-found"),
            (Error::Conflict("x".into()).into(), 409, "conflict"),
            (Error::IdempotencyConflict { key: "k".into() }.into(), 409, "idempotency-conflict"),
            (Error::MessageTooLarge { size: 2, max: 1 }.into(), 413, "payload-too-large"),
            (Error::InsufficientStorage { used_ratio: 0.99, max_ratio: 0.95 }.into(), 507, "insufficient-storage"),
            (Error::Forbidden("r".into()).into(), 403, "forbidden"),
            (Error::Unavailable("x".into()).into(), 503, "unavailable"),
            (Error::Timeout("slow".into()).into(), 503, "unavailable"),
            (Error::BatchTooLarge { unit: "messages", size: 2, max: 1 }.into(), 413, "payload-too-large"),
            (Error::InvalidFilter { expression: "a".into(), message: "b".into() }.into(), 400, "invalid-filter"),
            (ApiError::MethodNotAllowed("PATCH".into()), 405, "method-not-allowed"),
            (ApiError::UnsupportedMediaType("x".into()), 415, "unsupported-media-type"),
        ];
        for (err, status, kind) in cases {
            let problem = err.problem();
            assert_eq!(problem.status, status, "{kind}");
            assert_eq!(problem.kind, format!("urn:ferrymq:error:{kind}"));
        }
    }
}
