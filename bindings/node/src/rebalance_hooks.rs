//! [`RebalanceHooks`]: a push consumer's `onAssign` / `onRevoke`, fed by the client's
//! [`RebalanceListener`].
//!
//! The client calls its listener on the consumer's own task, which must return quickly. So
//! each change goes into a channel; one task per consumer takes them in order, hands each to
//! the JS thread through a thread-safe function (`index.js` wraps the hooks: it calls
//! `onRevoke` then `onAssign`, awaits them, and reports a throw as the consumer's
//! `'hookError'` event, so the promise it returns never rejects) and waits for that promise
//! before the next change. Closing the consumer or the client waits until every change was
//! reported, so the final `onRevoke` has run when `close()` resolves.

use std::sync::Arc;
use std::time::Duration;

use ferrymq_core::client::{QueueRef, RebalanceListener, RebalanceReports};
use napi::bindgen_prelude::{spawn, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;

use crate::client::{Callback, Release};
use crate::consumer::QueueData;

/// How long closing waits for hooks still running (a hook whose promise never settles must
/// not hang `close()`); the client's own default for running listeners.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// One change of a member's queues, as the JS wrapper receives it.
#[napi(object)]
pub struct RebalanceData {
    /// Queues given up, sorted.
    pub revoked: Vec<QueueData>,
    /// Queues taken on, sorted.
    pub assigned: Vec<QueueData>,
}

fn queues(queues: &[QueueRef]) -> Vec<QueueData> {
    queues.iter().map(|q| QueueData { topic: q.topic.clone(), queue_id: q.queue_id }).collect()
}

/// The hooks as `index.js` wraps them: called on the JS thread with a change, it resolves
/// once both hooks have run and never rejects.
pub type HookFn = ThreadsafeFunction<RebalanceData, Promise<()>, RebalanceData, Status, false>;

/// The hooks of one push consumer and the count of changes not yet reported to them.
pub struct RebalanceHooks {
    function: Arc<Callback<HookFn>>,
    reports: Arc<RebalanceReports>,
}

impl RebalanceHooks {
    /// Starts the reporting task; returns the hooks (to wait on at close, and to release) and
    /// the listener to put in the consumer's options.
    pub fn start(function: HookFn) -> (Arc<RebalanceHooks>, RebalanceListener) {
        let (reports, mut changes, listener) = RebalanceReports::channel();
        let hooks = Arc::new(RebalanceHooks { function: Callback::new(function), reports });
        let reporter = hooks.clone();
        spawn(async move {
            while let Some(change) = changes.recv().await {
                if let Some(function) = reporter.function.get() {
                    let data = RebalanceData { revoked: queues(&change.revoked), assigned: queues(&change.assigned) };
                    // The wrapper never rejects; an error here is a released or closing
                    // function (the environment is going away), and nothing is left to tell.
                    match function.call_async_catch(data).await {
                        Ok(promise) => {
                            if let Err(e) = promise.await {
                                tracing::warn!(error = %e.reason, "a rebalance hook failed");
                            }
                        }
                        Err(e) => tracing::debug!(error = %e.reason, "a rebalance hook could not be called"),
                    }
                }
                reporter.reports.reported_one();
            }
        });
        (hooks, listener)
    }

    /// Waits until every change so far has been reported (at most [`REPORT_TIMEOUT`]).
    pub async fn reported(&self) {
        let all = self.reports.all_reported();
        if tokio::time::timeout(REPORT_TIMEOUT, all).await.is_err() {
            tracing::warn!("a rebalance hook did not finish within {REPORT_TIMEOUT:?}; closing without it");
        }
    }
}

impl Release for RebalanceHooks {
    fn release(&self) {
        self.function.release();
    }
}
