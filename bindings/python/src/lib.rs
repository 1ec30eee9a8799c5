//! `ferrymq._native`: the Rust client of `ferrymq-core` as a Python extension module.
//!
//! A thin layer (see STYLE point 9): it converts arguments and results, maps the client's
//! error kinds onto the `FerryError` hierarchy (`errors.rs`), and runs every call on one Tokio
//! runtime owned by the module (`runtime.rs`), with the GIL released while Rust works. Each
//! blocking method has an `_async` twin that returns an asyncio future; the package's
//! pure-Python `ferrymq.aio` builds the asyncio classes on those. It holds no broker logic.
//!
//! Python callbacks (listeners, transaction checkers, local transactions) run with the GIL on
//! Tokio's blocking pool, never on a runtime worker; an exception in one is a nack (or an
//! `unknown` verdict), never a panic across the FFI.

mod admin;
mod client;
mod config;
mod connection_hooks;
mod consumer;
mod errors;
mod listener_threads;
mod log_bridge;
mod message;
mod producer;
mod rebalance_hooks;
mod runtime;

use pyo3::prelude::*;

/// The native half of the `ferrymq` package; import `ferrymq` instead.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    log_bridge::install();
    m.add_class::<client::Client>()?;
    m.add_class::<producer::Producer>()?;
    m.add_class::<producer::TransactionProducer>()?;
    m.add_class::<consumer::PushConsumer>()?;
    m.add_class::<consumer::SimpleConsumer>()?;
    m.add_class::<admin::Admin>()?;
    m.add_class::<message::Message>()?;
    m.add_class::<message::SendResult>()?;
    m.add_class::<admin::Topic>()?;
    m.add_class::<admin::QueueOffsets>()?;
    m.add_class::<admin::Group>()?;
    m.add_class::<admin::Subscription>()?;
    m.add_class::<admin::Member>()?;
    m.add_class::<admin::GroupOffset>()?;
    m.add_function(wrap_pyfunction!(client::at_exit, m)?)?;
    m.add("BROKER_SETTINGS", config::KEYS.to_vec())?;
    Ok(())
}
