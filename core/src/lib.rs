//! FerryMQ core: everything but HTTP.
//!
//! # Layout
//!
//! - [`store`]: bytes on disk. The commit log, consume queues, the index, flushing,
//!   checkpoints, recovery and retention. Knows nothing of groups or delivery.
//! - [`broker`]: meaning. Topics, sending, pulling with filters, consumer groups and offsets,
//!   leases, delay, retry and dead letters, transactions, long polling.
//! - [`client`]: producers, consumers and rebalance, over a transport that is either the
//!   embedded broker or a remote gateway.
//! - [`config`]: the configuration keys, one table with each key's type, default, bounds and
//!   doc, and the one parser of their values, used by the server and every binding.
//!
//! - [`wire`]: the broker's types converted to and from the contract's wire types, which
//!   live in the serde-only crate [`ferrymq_proto`] (re-exported here as [`proto`]).
//!
//! Errors of all three are one [`Error`] with a stable [`Error::kind`].
#![deny(missing_docs)]

pub mod broker;
pub mod client;
pub mod config;
pub mod error;
pub mod store;
pub mod wire;

pub use error::{Error, Result};
pub use ferrymq_proto as proto;
