//! Long polling: pulls and receives that find nothing park on a per-topic [`Notify`] that the
//! store's dispatcher fires the moment a unit of that topic is dispatched. No sleep loops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Per-topic wake-ups.
#[derive(Debug, Default)]
pub(crate) struct PollWaiters {
    topics: Mutex<HashMap<String, Arc<Notify>>>,
}

impl PollWaiters {
    /// The notifier of `topic`; wait on it with `notified()` enabled before re-checking.
    pub(crate) fn notifier(&self, topic: &str) -> Arc<Notify> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics.entry(topic.to_string()).or_default().clone()
    }

    /// Wakes everything waiting on `topic`. Called on the dispatcher thread: cheap.
    pub(crate) fn wake(&self, topic: &str) {
        let notify = self.topics.lock().unwrap_or_else(|e| e.into_inner()).get(topic).cloned();
        if let Some(n) = notify {
            n.notify_waiters();
        }
    }
}

/// Waits until any of `notifiers` fires or `deadline` passes. The caller must have checked its
/// condition *after* calling this function's `prepare` step; to keep that simple, this takes the
/// already-enabled futures.
pub(crate) async fn wait_any(
    notified: Vec<std::pin::Pin<Box<tokio::sync::futures::Notified<'_>>>>,
    deadline: tokio::time::Instant,
) {
    if notified.is_empty() {
        tokio::time::sleep_until(deadline).await;
        return;
    }
    let any = futures::future::select_all(notified);
    let _ = tokio::time::timeout_at(deadline, any).await;
}

/// Creates and enables a `Notified` future for each notifier, so that a wake between now and the
/// await is not missed.
pub(crate) fn enable_all(notifiers: &[Arc<Notify>]) -> Vec<std::pin::Pin<Box<tokio::sync::futures::Notified<'_>>>> {
    notifiers
        .iter()
        .map(|n| {
            let mut f = Box::pin(n.notified());
            f.as_mut().enable();
            f
        })
        .collect()
}
