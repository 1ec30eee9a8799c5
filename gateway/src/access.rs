//! Who is calling: the middleware that turns a bearer token, `?token=` or (on `/v1/ws`)
//! `?ticket=` into a [`Caller`] with [`Grants`], and the checks handlers make against it.
//!
//! Whether a token is valid and what it may do is decided by [`crate::auth`]; this module only
//! reads credentials off HTTP requests.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Action, Grants};
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

/// The authenticated caller of a request or WebSocket connection.
#[derive(Clone, Debug)]
pub struct Caller {
    /// What it may do.
    pub grants: Grants,
}

impl Caller {
    /// A caller allowed everything (no auth file).
    pub fn unrestricted() -> Self {
        Caller { grants: Grants::unrestricted() }
    }

    /// `403` unless the grants allow `action` on `topic` and `group`.
    pub fn require(&self, action: Action, topic: Option<&str>, group: Option<&str>) -> ApiResult<()> {
        if self.grants.allows(action, topic, group) {
            return Ok(());
        }
        let mut on = Vec::new();
        if let Some(topic) = topic {
            on.push(format!("topic {topic:?}"));
        }
        if let Some(group) = group {
            on.push(format!("group {group:?}"));
        }
        let target = if on.is_empty() { String::new() } else { format!(" on {}", on.join(" and ")) };
        Err(ApiError::Forbidden(format!("the token is not granted {action}{target}")))
    }

    /// Whether `action` on `topic` is allowed (for filtering listings).
    pub fn may(&self, action: Action, topic: Option<&str>, group: Option<&str>) -> bool {
        self.grants.allows(action, topic, group)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("no credentials were checked".to_string()))
    }
}

/// Paths anyone may read.
fn is_open(path: &str) -> bool {
    path == "/healthz" || path == "/openapi.json"
}

/// Middleware: authenticates the request and stores its [`Caller`] in the extensions.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match caller_for(&state, req.uri().path(), req.uri().query(), req.headers()) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(err) => err.into_response(),
    }
}

fn caller_for(state: &AppState, path: &str, query: Option<&str>, headers: &HeaderMap) -> ApiResult<Caller> {
    if is_open(path) {
        return Ok(Caller::unrestricted());
    }
    let params = Credentials::from_request(query, headers)?;
    // Tickets are single use with or without an auth file, so one is always redeemed.
    if path == "/v1/ws" {
        if let Some(ticket) = &params.ticket {
            return match state.tickets().redeem(ticket) {
                Some(grants) => Ok(Caller { grants }),
                None => Err(ApiError::Unauthorized("the ticket is unknown, expired or already used".to_string())),
            };
        }
    }
    let Some(auth) = &state.settings().auth else {
        return Ok(Caller::unrestricted());
    };
    let Some(token) = params.token else {
        return Err(ApiError::Unauthorized("a token is required: send Authorization: Bearer <token>".to_string()));
    };
    auth.authenticate(&token)
        .map(|grants| Caller { grants })
        .ok_or_else(|| ApiError::Unauthorized("the token is not valid".to_string()))
}

/// Credentials found on a request.
#[derive(Debug, Default)]
struct Credentials {
    token: Option<String>,
    ticket: Option<String>,
}

impl Credentials {
    fn from_request(query: Option<&str>, headers: &HeaderMap) -> ApiResult<Credentials> {
        let mut found = Credentials::default();
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value =
                value.to_str().map_err(|_| ApiError::Unauthorized("malformed Authorization header".to_string()))?;
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| ApiError::Unauthorized("Authorization must be `Bearer <token>`".to_string()))?;
            found.token = Some(token.trim().to_string());
        }
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "token" if found.token.is_none() => found.token = Some(value.into_owned()),
                "ticket" => found.ticket = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(found)
    }
}
