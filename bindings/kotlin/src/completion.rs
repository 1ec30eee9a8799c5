//! Calls that complete through a queue instead of a callback: the Kotlin side starts a call
//! with a token and returns at once; when the call ends its outcome is queued here, and one
//! Kotlin thread takes every outcome ready with [`ffi_poll_completions`] (blocking) and resumes
//! the waiting coroutines.
//!
//! That replaces what an `async fn` exported by uniffi costs per call (a JNA callback out of
//! a runtime thread into the JVM, then three more calls in to poll, complete and free the
//! future) by one call in to start and a share of one call in to collect, which many calls in
//! flight at once share.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, OnceLock};

use futures::FutureExt;
use tokio::sync::mpsc;

use crate::error::FfiError;
use crate::message::FfiSendResult;
use crate::runtime;

/// A failed call, as data (the fields of [`FfiError::Failure`]).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FfiFailure {
    /// Stable kind, as in `urn:ferrymq:error:<kind>`.
    pub kind: String,
    /// What went wrong.
    pub detail: String,
    /// The offending argument, for `invalid-argument`.
    pub field: Option<String>,
}

impl From<FfiError> for FfiFailure {
    fn from(e: FfiError) -> Self {
        let FfiError::Failure { kind, detail, field } = e;
        FfiFailure { kind, detail, field }
    }
}

/// The outcome of one started call: its results, or its failure.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FfiCompletion {
    /// The token the call was started with.
    pub token: i64,
    /// The publish results, in order (one for a single send).
    pub results: Vec<FfiSendResult>,
    /// Set when the call failed (then `results` is empty).
    pub failure: Option<FfiFailure>,
}

struct Queue {
    sender: mpsc::UnboundedSender<FfiCompletion>,
    receiver: Mutex<mpsc::UnboundedReceiver<FfiCompletion>>,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

fn queue() -> &'static Queue {
    QUEUE.get_or_init(|| {
        let (sender, receiver) = mpsc::unbounded_channel();
        Queue { sender, receiver: Mutex::new(receiver) }
    })
}

/// Runs `call` on the runtime and queues its outcome under `token`. A panic in the call is
/// queued as an `internal` failure.
pub(crate) fn spawn<F>(token: i64, call: F)
where
    F: Future<Output = Result<Vec<FfiSendResult>, FfiError>> + Send + 'static,
{
    let sender = queue().sender.clone();
    runtime::handle().spawn(async move {
        let outcome =
            AssertUnwindSafe(call).catch_unwind().await.unwrap_or_else(|panic| Err(FfiError::panicked(panic)));
        let completion = match outcome {
            Ok(results) => FfiCompletion { token, results, failure: None },
            Err(e) => FfiCompletion { token, results: Vec::new(), failure: Some(e.into()) },
        };
        // The queue lives as long as the process: sending cannot fail.
        let _ = sender.send(completion);
    });
}

/// Waits for at least one call to complete, then takes every outcome queued, `max` at most
/// (at least one). Blocks the calling thread: the Kotlin side calls it from one thread of its
/// own, never from a runtime thread.
#[uniffi::export]
pub fn ffi_poll_completions(max: i32) -> Vec<FfiCompletion> {
    let max = usize::try_from(max).unwrap_or(0).max(1);
    let mut receiver = queue().receiver.lock().unwrap_or_else(|e| e.into_inner());
    let Some(first) = receiver.blocking_recv() else { return Vec::new() };
    let mut taken = vec![first];
    while taken.len() < max {
        match receiver.try_recv() {
            Ok(completion) => taken.push(completion),
            Err(_) => break,
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_panics_arrive_under_their_tokens() {
        spawn(1, async { Ok(Vec::new()) });
        spawn(2, async { Err(FfiError::invalid("/topic", "bad")) });
        spawn(3, async { panic!("boom") });
        let mut seen = Vec::new();
        while seen.len() < 3 {
            seen.extend(ffi_poll_completions(8));
        }
        seen.sort_by_key(|c| c.token);
        assert_eq!(seen[0].failure, None);
        let bad = seen[1].failure.as_ref().expect("a failure");
        assert_eq!((bad.kind.as_str(), bad.field.as_deref()), ("invalid-argument", Some("/topic")));
        let panicked = seen[2].failure.as_ref().expect("a failure");
        assert!(panicked.kind == "internal" && panicked.detail.contains("boom"), "{panicked:?}");
    }
}
