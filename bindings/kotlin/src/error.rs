//! Errors at the FFI edge: every failure is one [`FfiError::Failure`] carrying the contract's
//! kind (`invalid-argument`, `not-found`, ...), which the Kotlin layer turns into the
//! matching subclass of its sealed `FerryException`. Arguments this binding rejects itself
//! are reported as core errors too, so every bad value surfaces the same way.

use std::any::Any;

use ferrymq_core::Error;

/// A failed call: the contract's error `kind`, a human-readable `detail` and, for invalid
/// arguments, the offending `field` (a JSON-Pointer-like path such as `/delay_level`).
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum FfiError {
    /// The one shape of every failure.
    #[error("{detail}")]
    Failure {
        /// Stable kind, as in `urn:ferrymq:error:<kind>`.
        kind: String,
        /// What went wrong.
        detail: String,
        /// The offending argument, for `invalid-argument`.
        field: Option<String>,
    },
}

impl FfiError {
    /// An invalid argument named by `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::invalid(field, message).into()
    }

    /// An error of kind `internal`.
    pub fn internal(detail: impl Into<String>) -> Self {
        FfiError::Failure { kind: "internal".into(), detail: detail.into(), field: None }
    }

    /// A panic caught at the edge, as an `internal` error naming the panic's message.
    pub fn panicked(payload: Box<dyn Any + Send>) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        FfiError::internal(format!("the FerryMQ native library panicked: {what}"))
    }
}

/// The kind of `e`. The remote transport reports a WebSocket upgrade that the gateway refused
/// with 401 or 403 as a connection error; that is the gateway's `unauthorized` or
/// `forbidden`, so it is reported as one.
fn kind_of(e: &Error) -> &'static str {
    match e {
        Error::Connection(detail) if detail.contains("HTTP error: 401") => "unauthorized",
        Error::Connection(detail) if detail.contains("HTTP error: 403") => "forbidden",
        other => other.kind(),
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        let field = match &e {
            Error::InvalidArgument { field, .. } => Some(field.clone()),
            _ => None,
        };
        FfiError::Failure { kind: kind_of(&e).to_string(), detail: e.to_string(), field }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_kind_and_field() {
        let e = FfiError::from(Error::invalid("/topic", "bad"));
        assert!(matches!(e, FfiError::Failure { ref kind, ref field, .. }
            if kind == "invalid-argument" && field.as_deref() == Some("/topic")));
        let e = FfiError::from(Error::Connection("HTTP error: 401 Unauthorized".into()));
        assert!(matches!(e, FfiError::Failure { ref kind, .. } if kind == "unauthorized"));
    }

    #[test]
    fn panics_name_their_message() {
        let e = FfiError::panicked(Box::new("boom"));
        assert!(matches!(e, FfiError::Failure { ref kind, ref detail, .. }
            if kind == "internal" && detail.contains("boom")));
    }
}
