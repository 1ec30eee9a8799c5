//! The one error type of `ferrymq-core`.
//!
//! Every fallible call in the store, the broker and the client returns [`Error`]. Its
//! [`Error::kind`] is a stable, append-only name that the gateway maps to a problem `type`
//! (`urn:ferrymq:error:<kind>`) and the SDKs map to typed exceptions: never rename or reuse one.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout `ferrymq-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a file of the store failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Bytes on disk do not form what they should; recovery stops or skips there.
    #[error("corrupt data in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file involved.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// A previous fsync failed: the store no longer knows what is durable and refuses writes.
    #[error("the store is poisoned by an earlier failed flush and refuses writes")]
    Poisoned,
    /// The store has been shut down.
    #[error("the store is closed")]
    Closed,
    /// The data disk is fuller than `disk_max_used_ratio`; writes are refused.
    #[error("disk usage {used_ratio:.3} is above the limit {max_ratio:.3}; writes are refused")]
    InsufficientStorage {
        /// Share of the disk in use.
        used_ratio: f64,
        /// The configured limit.
        max_ratio: f64,
    },
    /// A request argument is invalid. `field` is a JSON Pointer-like path (`/topic`).
    #[error("invalid {field}: {message}")]
    InvalidArgument {
        /// The offending field, e.g. `/topic` or `/messages/3/body`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A tag or SQL92 filter expression does not parse.
    #[error("invalid filter {expression:?}: {message}")]
    InvalidFilter {
        /// The expression as given.
        expression: String,
        /// Why it does not parse.
        message: String,
    },
    /// A message body is larger than allowed.
    #[error("message body of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Actual size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A batch holds more messages, or more body bytes, than allowed.
    #[error("a batch of {size} {unit} exceeds the limit of {max} {unit}")]
    BatchTooLarge {
        /// What was counted: `messages` or `body bytes`.
        unit: &'static str,
        /// The batch's count.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Something named does not exist.
    #[error("{what} {name:?} not found")]
    NotFound {
        /// The kind of thing (`topic`, `group`, `message`, ...).
        what: &'static str,
        /// Its name or id.
        name: String,
    },
    /// The request conflicts with the current state (exists already, ended already, ...).
    #[error("{0}")]
    Conflict(String),
    /// An idempotency key was reused with a different message.
    #[error("idempotency key {key:?} was already used for a different message")]
    IdempotencyConflict {
        /// The key.
        key: String,
    },
    /// The operation is not permitted on this resource (e.g. publishing to a read-only topic).
    #[error("{0}")]
    Forbidden(String),
    /// An offset lies outside what a queue holds.
    #[error("offset {offset} of {topic}/{queue_id} is outside [{min}, {max})")]
    OffsetOutOfRange {
        /// Topic.
        topic: String,
        /// Queue.
        queue_id: u32,
        /// Requested offset.
        offset: u64,
        /// Lowest retained offset.
        min: u64,
        /// Next offset to be written.
        max: u64,
    },
    /// An operation did not complete in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The service is not ready (recovery running) or shutting down.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A remote endpoint could not be reached or the connection broke.
    #[error("connection error: {0}")]
    Connection(String),
    /// Missing or invalid credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
}

impl Error {
    /// The stable, append-only name of this error's kind, as in `urn:ferrymq:error:<kind>`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { .. } | Error::Corrupt { .. } | Error::Poisoned | Error::Closed => "internal",
            Error::Unavailable(_) => "unavailable",
            Error::InsufficientStorage { .. } => "insufficient-storage",
            Error::InvalidArgument { .. } | Error::OffsetOutOfRange { .. } => "invalid-argument",
            Error::InvalidFilter { .. } => "invalid-filter",
            Error::MessageTooLarge { .. } | Error::BatchTooLarge { .. } => "payload-too-large",
            Error::NotFound { .. } => "not-found",
            Error::Conflict(_) => "conflict",
            Error::IdempotencyConflict { .. } => "idempotency-conflict",
            Error::Forbidden(_) => "forbidden",
            Error::Timeout(_) => "timeout",
            Error::Connection(_) => "connection",
            Error::Unauthorized(_) => "unauthorized",
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument { field: field.into(), message: message.into() }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound { what, name: name.into() }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
