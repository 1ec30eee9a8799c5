//! The Tokio runtime every call runs on.
//!
//! uniffi drives an exported `async fn` from Kotlin's coroutine machinery, with no Tokio
//! context; the client needs one (timers, the embedded broker's tasks, sockets). So each call
//! is spawned here and only its join handle is awaited by uniffi. That also gives two
//! guarantees at the edge: a panic in the call becomes an `internal` [`FfiError`] rather than
//! an unwinding across the FFI, and a cancelled coroutine (uniffi drops the future) aborts the
//! task instead of leaving it running.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use crate::error::FfiError;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The SDK's runtime, started on first use (two workers: the client's work is I/O and
/// channel hops; the store does its blocking I/O on its own threads).
pub fn handle() -> &'static Handle {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("ferrymq-kotlin")
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot start the FerryMQ runtime: {e}"))
        })
        .handle()
}

/// Aborts the task when the caller stops waiting for it.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `future` on the runtime and waits for it; see the module doc.
pub async fn run<T, F>(future: F) -> Result<T, FfiError>
where
    F: Future<Output = Result<T, FfiError>> + Send + 'static,
    T: Send + 'static,
{
    let mut task = AbortOnDrop(handle().spawn(future));
    match (&mut task.0).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(FfiError::panicked(e.into_panic())),
        Err(_) => Err(FfiError::internal("the call was cancelled")),
    }
}

/// Runs `future` on the calling thread, with the runtime's timers and I/O, until it is done:
/// for calls the Kotlin side makes from threads of its own that are meant to wait, where one
/// call in is cheaper than an asynchronous call's completion callback out. The future is not
/// spawned, so whatever completes it wakes this thread directly (one thread hand-off fewer
/// each way). A panic unwinds to uniffi's guard of the synchronous call, which reports it as
/// an internal error; so does a call from one of the runtime's own threads (Tokio refuses to
/// block there).
pub fn block_on<T, F>(future: F) -> Result<T, FfiError>
where
    F: Future<Output = Result<T, FfiError>>,
{
    handle().block_on(future)
}

/// Runs `f` (synchronous, but needing a Tokio context) with the runtime entered.
pub fn enter<T>(f: impl FnOnce() -> T) -> T {
    let _guard = handle().enter();
    f()
}
