//! `ferrymq` for Node.js: the Rust client of `ferrymq-core` as a native addon (napi-rs).
//!
//! A thin layer (see STYLE point 9): it converts arguments and results and reports the
//! client's errors with their kind (`errors.rs`); the package's JavaScript (`index.js`) turns
//! those into the `FerryError` classes and gives the API its Node idiom (Promises, async
//! iterators, events). It holds no broker logic.
//!
//! Every call that waits is an `async fn` run on napi-rs's Tokio runtime, so the JS thread
//! never blocks; sends and consumed messages take cheaper paths, because their per-call cost
//! is the throughput (`producer.rs`, `listener_dispatch.rs`). JavaScript callbacks
//! (listeners, the local transaction, the check-back checker) run on the JS thread through
//! thread-safe functions; the package wraps each so that it resolves to a verdict string and
//! never throws across the FFI.
//!
//! Native classes are named `Native*`: they are the package's internals, not its API.

mod admin;
mod client;
mod config;
mod consumer;
mod errors;
mod listener_dispatch;
mod message;
mod producer;
mod rebalance_hooks;
