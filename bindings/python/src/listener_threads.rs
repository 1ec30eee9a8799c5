//! [`ListenerThreads`]: runs a push consumer's Python listener on threads of its own.
//!
//! Each thread attaches to the interpreter once and then waits for messages with the GIL
//! released, so a call costs one GIL hand-over rather than a thread hop plus a fresh Python
//! thread state (what a closure on Tokio's blocking pool would pay per message). The client
//! bounds the calls in flight to `consume_workers`, one per thread.
//!
//! The threads stop when the consumer is closed from Python. A listener pool that is merely
//! dropped (its consumer collected, or torn down while the interpreter finalizes) leaves its
//! threads asleep rather than waking them: a thread that re-attaches to a finalizing
//! interpreter could be ended in the middle of Rust code.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use ferrymq_core::client::Message as CoreMessage;
use ferrymq_core::client::{Listener, ListenerError};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use tokio::sync::oneshot;

use crate::errors::{Failure, Outcome};
use crate::message::Message;
use crate::producer::log_failure;

type Verdict = Result<(), ListenerError>;
type Job = (CoreMessage, oneshot::Sender<Verdict>);

/// The listener threads of one push consumer.
pub struct ListenerThreads {
    jobs: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl ListenerThreads {
    /// Starts `workers` threads calling `listener`, and returns the client-side listener that
    /// feeds them.
    pub fn start(py: Python<'_>, listener: Py<PyAny>, workers: usize) -> Outcome<(Arc<ListenerThreads>, Listener)> {
        let is_async = py.import("inspect")?.call_method1("iscoroutinefunction", (&listener,))?.is_truthy()?;
        if is_async {
            return Err(Failure::Py(PyTypeError::new_err(
                "the listener is an async function: use ferrymq.aio for asyncio listeners",
            )));
        }
        if !listener.bind(py).is_callable() {
            return Err(Failure::Py(PyTypeError::new_err("the listener must be callable")));
        }
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let dispatcher = Arc::new(ListenerThreads { jobs: Mutex::new(Some(tx)), threads: Mutex::default() });
        for _ in 0..workers {
            let rx = rx.clone();
            let listener = listener.clone_ref(py);
            let thread = std::thread::Builder::new().name("ferrymq-listener".into()).spawn(move || work(rx, listener));
            match thread {
                Ok(handle) => dispatcher.threads.lock().unwrap_or_else(|e| e.into_inner()).push(handle),
                Err(e) => {
                    dispatcher.stop();
                    let message = format!("cannot start a listener thread: {e}");
                    return Err(Failure::Py(pyo3::exceptions::PyRuntimeError::new_err(message)));
                }
            }
        }
        let feed = dispatcher.clone();
        let client_listener = Listener::new(move |message| {
            let (reply, verdict) = oneshot::channel();
            let queued = feed.send((message, reply));
            async move {
                if !queued {
                    return Err(ListenerError::new("the consumer is closed"));
                }
                verdict.await.unwrap_or_else(|_| Err(ListenerError::new("the listener thread stopped")))
            }
        });
        Ok((dispatcher, client_listener))
    }

    fn send(&self, job: Job) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }

    /// Lets the threads finish: each exits once no job is left. Call from Python, after the
    /// consumer stopped calling the listener.
    pub fn stop(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Stops the threads and waits until they have left the interpreter, so that none is
    /// still re-attaching when the program goes on to exit. Must not run with the GIL held.
    pub async fn stop_and_join(self: Arc<Self>) {
        self.stop();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

impl Drop for ListenerThreads {
    fn drop(&mut self) {
        // See the module comment: without an explicit stop, leave the threads asleep.
        if let Some(tx) = self.jobs.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            std::mem::forget(tx);
        }
    }
}

/// One listener thread: waits for a job with the GIL released, calls the listener with it.
fn work(jobs: Arc<Mutex<Receiver<Job>>>, listener: Py<PyAny>) {
    Python::try_attach(|py| loop {
        let job = py.detach(|| jobs.lock().unwrap_or_else(|e| e.into_inner()).recv());
        let Ok((message, reply)) = job else { return };
        let _ = reply.send(call(py, &listener, message));
    });
}

/// Calls the listener: a return acks, an exception nacks (and is logged with its traceback).
fn call(py: Python<'_>, listener: &Py<PyAny>, message: CoreMessage) -> Verdict {
    let msg_id = message.msg_id.clone();
    match listener.call1(py, (Message::for_listener(message),)) {
        Ok(_) => Ok(()),
        Err(error) => {
            log_failure(py, &format!("the listener failed on message {msg_id}; it will be redelivered"), &error);
            Err(ListenerError::new(error.to_string()))
        }
    }
}
