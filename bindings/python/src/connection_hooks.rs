//! [`connection_listener`]: a remote client's `on_connection` Python callback, fed by the
//! client's [`ConnectionListener`].
//!
//! The client calls its listener on its reconnecting task, which must not wait for Python
//! (the GIL may be held by a thread that waits for a send, which waits for that task). So each
//! event goes into a channel; one task per client takes them in order and calls the callback
//! on Tokio's blocking pool, with the GIL, one call at a time.

use std::sync::Arc;

use ferrymq_core::client::{ConnectionEvent, ConnectionListener};
use pyo3::prelude::*;
use tokio::sync::mpsc;

use crate::producer::log_failure;
use crate::runtime;

/// The listener to put in the client's options: it reports each event to
/// `callback(state, error)`.
pub fn connection_listener(callback: Py<PyAny>) -> ConnectionListener {
    let (tx, mut rx) = mpsc::unbounded_channel::<ConnectionEvent>();
    let callback = Arc::new(callback);
    runtime::handle().spawn(async move {
        while let Some(event) = rx.recv().await {
            let callback = callback.clone();
            let _ = tokio::task::spawn_blocking(move || report(&callback, &event)).await;
        }
    });
    ConnectionListener::new(move |event: &ConnectionEvent| {
        let _ = tx.send(event.clone());
    })
}

/// Calls `callback("dropped", error)` or `callback("restored", None)`; an exception is logged.
fn report(callback: &Py<PyAny>, event: &ConnectionEvent) {
    let (state, error) = match event {
        ConnectionEvent::Dropped { error } => ("dropped", Some(error.as_str())),
        ConnectionEvent::Restored => ("restored", None),
        // A kind of event this binding does not know yet is not reported.
        _ => return,
    };
    runtime::with_python(|py| {
        if let Err(raised) = callback.call1(py, (state, error)) {
            log_failure(py, "the on_connection callback of a client failed", &raised);
        }
    });
}
