//! FerryMQ's Kotlin/JVM SDK, native half: the Rust client ([`ferrymq_core::client`]) exported
//! through uniffi. The generated Kotlin (package `dev.ferrymq.ffi`) is the raw layer; the
//! hand-written Kotlin in `src/main/kotlin` (package `dev.ferrymq`) is the SDK's face: named
//! parameters, suspend functions with blocking twins, `Flow`, enums and the `FerryException`
//! hierarchy.
//!
//! This crate holds no broker logic: it converts types, maps errors to their contract kind,
//! and runs every call on one Tokio runtime of its own ([`runtime`]). Panics never cross the
//! FFI: synchronous calls are guarded by uniffi, asynchronous ones by the runtime's tasks,
//! and both arrive in Kotlin as exceptions.
//!
//! The calls every message makes (send, take, settle, ack) also have a JNI entry point
//! ([`fast_path`]), which the Kotlin layer uses instead of uniffi's JNA path: a JNA call
//! costs tens of microseconds, a JNI call well under one.

uniffi::setup_scaffolding!();

mod admin;
mod client;
mod config;
mod consumer;
mod deliveries;
mod error;
mod fast_path;
mod message;
mod producer;
mod registry;
pub mod runtime;
mod wire;

pub use admin::*;
pub use client::*;
pub use consumer::*;
pub use error::FfiError;
pub use fast_path::ffi_library_marker;
pub use message::*;
pub use producer::*;
