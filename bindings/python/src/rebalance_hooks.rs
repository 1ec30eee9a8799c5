//! [`RebalanceHooks`]: a push consumer's `on_assign` / `on_revoke` Python callbacks, fed by
//! the client's [`RebalanceListener`].
//!
//! The client calls its listener on the consumer's own task, which must not wait for Python
//! (the GIL may be held by a thread that waits for that task). So each change goes into a
//! channel; one task per consumer takes them in order and calls the callbacks on Tokio's
//! blocking pool, with the GIL. `close()` waits until every change was reported, so the final
//! `on_revoke` has run when it returns.

use std::sync::Arc;

use ferrymq_core::client::{QueueRef, Rebalance, RebalanceListener, RebalanceReports};
use pyo3::prelude::*;

use crate::producer::log_failure;
use crate::runtime;

/// The callbacks of one push consumer and the changes not yet reported to them.
pub struct RebalanceHooks {
    reports: Arc<RebalanceReports>,
}

impl RebalanceHooks {
    /// Starts the reporting task; returns the hooks (to wait on at close) and the listener to
    /// put in the consumer's options.
    pub fn start(
        on_assign: Option<Py<PyAny>>,
        on_revoke: Option<Py<PyAny>>,
    ) -> (Arc<RebalanceHooks>, RebalanceListener) {
        let (reports, mut changes, listener) = RebalanceReports::channel();
        let callbacks = Arc::new((on_assign, on_revoke));
        let reporter = reports.clone();
        runtime::handle().spawn(async move {
            while let Some(change) = changes.recv().await {
                let callbacks = callbacks.clone();
                let _ = tokio::task::spawn_blocking(move || report(&callbacks.0, &callbacks.1, &change)).await;
                reporter.reported_one();
            }
        });
        (Arc::new(RebalanceHooks { reports }), listener)
    }

    /// Waits until every change so far has been reported.
    pub async fn reported(&self) {
        self.reports.all_reported().await;
    }
}

fn pairs(queues: &[QueueRef]) -> Vec<(String, u32)> {
    queues.iter().map(|q| (q.topic.clone(), q.queue_id)).collect()
}

/// Calls `on_revoke(lost)` then `on_assign(gained)`, each only when its list is not empty.
fn report(on_assign: &Option<Py<PyAny>>, on_revoke: &Option<Py<PyAny>>, change: &Rebalance) {
    runtime::with_python(|py| {
        for (callback, queues, what) in
            [(on_revoke, &change.revoked, "on_revoke"), (on_assign, &change.assigned, "on_assign")]
        {
            let Some(callback) = callback else { continue };
            if queues.is_empty() {
                continue;
            }
            if let Err(raised) = callback.call1(py, (pairs(queues),)) {
                log_failure(py, &format!("the {what} callback of a push consumer failed"), &raised);
            }
        }
    });
}
