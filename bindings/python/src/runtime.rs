//! The one Tokio runtime of the module, and the two ways Python waits on it: blocking (the
//! sync API, with the GIL released and Ctrl-C honoured) and awaiting (the asyncio API, through
//! an `asyncio.Future` resolved from the runtime).
//!
//! Python code is only ever called with the GIL held and from a thread that is not a runtime
//! worker (the caller's thread, or Tokio's blocking pool), so a slow callback never stalls the
//! client's own tasks.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::IntoPyObjectExt;
use tokio::runtime::{Handle, Runtime};
use tokio::task::AbortHandle;

use crate::errors::{Failure, Outcome};

/// How often a blocking call looks for a pending signal (Ctrl-C) while it waits.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// The runtime and the process it was built in: after `fork` the child cannot use its parent's
/// worker threads (they do not exist there), so it builds its own.
static RUNTIME: OnceLock<Mutex<(u32, &'static Runtime)>> = OnceLock::new();

fn build() -> &'static Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("ferrymq")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot start the FerryMQ runtime: {e}"));
    // The runtime lives as long as the process: clients and consumers may be used until exit.
    Box::leak(Box::new(runtime))
}

/// The module's runtime (a fresh one in a forked child; the parent's is left alone there).
pub fn handle() -> Handle {
    let cell = RUNTIME.get_or_init(|| Mutex::new((std::process::id(), build())));
    let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if guard.0 != pid {
        *guard = (pid, build());
    }
    guard.1.handle().clone()
}

/// Runs `future` to completion on the runtime while the GIL is released, checking for signals
/// every 100 ms so that Ctrl-C interrupts a long wait (the future is then dropped).
pub fn block_on<F, T>(py: Python<'_>, future: F) -> Outcome<T>
where
    F: Future<Output = Outcome<T>> + Send,
    T: Send,
{
    let handle = handle();
    py.detach(move || {
        handle.block_on(async move {
            tokio::pin!(future);
            loop {
                match tokio::time::timeout(SIGNAL_CHECK, &mut future).await {
                    Ok(result) => return result,
                    Err(_) => {
                        if let Some(Err(e)) = Python::try_attach(|py| py.check_signals()) {
                            return Err(Failure::Py(e));
                        }
                    }
                }
            }
        })
    })
}

/// Calls into Python from threads of the runtime that are underway (see [`with_python`]).
static IN_PYTHON: AtomicUsize = AtomicUsize::new(0);
/// Set at interpreter exit: from then on, runtime threads no longer call into Python.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Runs `f` with the GIL on a thread that Python does not know (a runtime worker, the blocking
/// pool), unless the interpreter is exiting; then the call is skipped and `None` returned.
///
/// Such a thread can release the GIL inside Python (`call_soon_threadsafe` writes to a socket)
/// and need it back after the program went on to exit; CPython then ends the thread with
/// `pthread_exit`, which aborts the process when it unwinds through Rust frames. So
/// [`quiesce`] (run at exit, before finalization) waits for the calls underway and stops new
/// ones.
pub fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    IN_PYTHON.fetch_add(1, Ordering::SeqCst);
    let result = if EXITING.load(Ordering::SeqCst) { None } else { Python::try_attach(f) };
    IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Stops calls into Python from runtime threads and waits (with the GIL released, up to
/// `timeout`) for those underway to finish. Called at interpreter exit.
pub fn quiesce(py: Python<'_>, timeout: Duration) {
    EXITING.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + timeout;
        while IN_PYTHON.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// `ferrymq._bridge.resolve(future, ok, value)`: sets the result or exception of an asyncio
/// future unless it was cancelled meanwhile.
static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Runs `future` on the runtime and returns an `asyncio.Future` of the running loop that
/// resolves to its output (converted to Python on completion). Cancelling the asyncio future
/// aborts the task.
pub fn awaitable<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Outcome<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let py_future = event_loop.call_method0("create_future")?;
    let resolve = RESOLVE.import(py, "ferrymq._bridge", "resolve")?.clone().unbind();
    let event_loop = event_loop.unbind();
    let target = py_future.clone().unbind();
    let task = handle().spawn(async move {
        let result = future.await;
        // An interpreter that is shutting down has no loop to resolve on: drop the result.
        with_python(|py| {
            let (ok, value) = match result.map_err(|f| f.into_pyerr(py)).and_then(|v| v.into_py_any(py)) {
                Ok(value) => (true, value),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            // A loop that closed meanwhile refuses the call; nobody is waiting then.
            let _ = event_loop.bind(py).call_method1("call_soon_threadsafe", (resolve, target, ok, value));
        });
    });
    py_future.call_method1("add_done_callback", (AbortOnCancel { task: task.abort_handle() },))?;
    Ok(py_future)
}

/// Done-callback of an asyncio future: aborts the Rust task when the future was cancelled.
#[pyclass(frozen)]
struct AbortOnCancel {
    task: AbortHandle,
}

#[pymethods]
impl AbortOnCancel {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.task.abort();
        }
        Ok(())
    }
}
