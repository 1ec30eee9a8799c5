//! FerryMQ gateway: the `ferrymq` server's REST and WebSocket API over the broker core, its
//! OpenAPI document, metrics, and the command-line client.
//!
//! # Layout
//!
//! - [`routes`]: the REST routes and [`app`], the router that joins them with auth, metrics,
//!   the body limit and problem-shaped fallbacks.
//! - [`ws`]: the WebSocket protocol: one [`ws::protocol::Op`] per client frame, one handler each.
//! - [`problem`]: the one error type and its mapping to `application/problem+json`.
//! - [`extract`]: extractors whose rejections are problems (JSON Pointer fields).
//! - [`wire`]: the JSON shapes of the contract and their conversions.
//! - [`access`] and [`auth`]: who is calling and what they may do.
//! - [`checks`]: routing transaction check-backs to WebSocket producers or check URLs.
//! - [`config`], [`server`]: `ferrymq serve`. [`cli`]: the client subcommands; [`bench`]:
//!   `ferrymq bench`.
//!
//! The gateway knows nothing of file formats: everything goes through
//! [`ferrymq_core::broker::Broker`].

pub mod access;
pub mod auth;
pub mod bench;
pub mod checks;
pub mod cli;
pub mod config;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod server;
pub mod state;
pub mod tls;
pub mod wire;
pub mod ws;

pub use routes::app;
pub use server::serve;
pub use state::{AppState, GatewaySettings};
