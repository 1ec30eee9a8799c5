//! FerryMQ's contract in code: every JSON shape of the REST API and of the WebSocket protocol
//! ("Contract details" in DESIGN.md), the problem documents and their kinds, and the
//! validation of a message in. Serde only: no runtime, no HTTP.
//!
//! The gateway serves these types, the remote transport of `ferrymq-core` and the CLI send and
//! read them, and the OpenAPI document is generated from them (feature `openapi`). Field
//! names are the public contract: add fields freely, never rename one.
//!
//! ```
//! use ferrymq_proto::message::{PublishContext, PublishMessage};
//!
//! let message: PublishMessage = serde_json::from_str(r#"{"body": "hello", "tag": "TagA"}"#).unwrap();
//! let valid = message.validate("", &PublishContext::default()).unwrap();
//! assert_eq!(valid.body, b"hello");
//! ```

pub mod consume;
pub mod group;
pub mod json;
pub mod message;
pub mod problem;
pub mod topic;
pub mod transaction;
pub mod ws;

pub use problem::{ErrorKind, FieldError, Problem};

/// Current time in epoch milliseconds.
pub fn now_ms() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Treats an explicit `null` like an absent field.
pub(crate) fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(de)?.unwrap_or_default())
}
