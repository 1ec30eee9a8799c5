//! Errors at the FFI edge: a core [`Error`] becomes a JS `Error` whose message carries its
//! kind, field and text behind a marker; `index.js` (`fromNative`) is the one place where
//! that becomes a `FerryError` subclass with `code` set to the kind.

use ferrymq_core::Error;

/// Separates the parts of an encoded error; never found in a kind or a field.
const SEP: char = '\u{1}';

/// The JS error for a client error: `\x01ferrymq\x01<kind>\x01<field>\x01<message>`.
pub fn to_napi(e: &Error) -> napi::Error {
    let field = match e {
        Error::InvalidArgument { field, .. } => field.as_str(),
        _ => "",
    };
    napi::Error::from_reason(format!("{SEP}ferrymq{SEP}{}{SEP}{field}{SEP}{e}", kind_of(e)))
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

/// A client result as a napi result.
pub fn js<T>(result: ferrymq_core::Result<T>) -> napi::Result<T> {
    result.map_err(|e| to_napi(&e))
}

/// An invalid argument, reported like the client's own validation errors.
pub fn invalid(field: &str, message: impl Into<String>) -> napi::Error {
    to_napi(&Error::invalid(field, message))
}
