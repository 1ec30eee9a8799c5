//! [`ListenerDispatch`]: a push consumer's JS listener, handed its messages in batches.
//!
//! Each call through a thread-safe function wakes the event loop and crosses threads, and a
//! promise awaited from Rust costs another crossing back: one of each per message bounded
//! consumption (see BENCHMARKS.md, "Node SDK"). So the client's listener calls (up to
//! `consumeWorkers` run at once) only queue their message with an id and wait for its
//! verdict; one task per consumer hands everything queued to the JS thread in one call, one
//! call at a time (so what arrives while JS is busy makes the next batch bigger), and
//! `index.js` runs the user's listener on each message and reports each verdict by id
//! through [`ListenerDispatch::settle`] (a synchronous call, at once for a listener that
//! returns without a promise). A slow message holds only its own worker, not its batch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ferrymq_core::client::{Listener, ListenerError, Message};
use napi::bindgen_prelude::spawn;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use tokio::sync::{mpsc, oneshot};

use crate::client::{Callback, Release};
use crate::message::MessageBatch;

/// Most messages handed to JS in one call (the consumer's workers bound it first).
const MAX_BATCH: usize = 256;

/// The listener as `index.js` wraps it: called on the JS thread with a batch, it starts the
/// user's listener on each message and never throws.
pub type ListenerFn = ThreadsafeFunction<MessageBatch, (), MessageBatch, Status, false>;

/// The JS listener of one push consumer and the verdicts it still owes.
pub struct ListenerDispatch {
    function: Arc<Callback<ListenerFn>>,
    waiting: Mutex<HashMap<u32, oneshot::Sender<bool>>>,
    next: AtomicU32,
}

impl ListenerDispatch {
    /// Starts the task that hands queued messages to `function`; returns the dispatch (for
    /// `settle` and to release) and the listener to put in the consumer's options.
    pub fn start(function: ListenerFn) -> (Arc<ListenerDispatch>, Listener) {
        let dispatch = Arc::new(ListenerDispatch {
            function: Callback::new(function),
            waiting: Mutex::default(),
            next: AtomicU32::new(0),
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<(u32, Message)>();
        let feeder = dispatch.clone();
        spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(queued) => batch.push(queued),
                        Err(_) => break,
                    }
                }
                feeder.hand_over(batch).await;
            }
        });
        let queue = dispatch.clone();
        let listener = Listener::new(move |message: Message| {
            let id = queue.next.fetch_add(1, Ordering::Relaxed);
            let (verdict_tx, verdict) = oneshot::channel();
            queue.waiting().insert(id, verdict_tx);
            if tx.send((id, message)).is_err() {
                queue.waiting().remove(&id);
            }
            async move {
                match verdict.await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(ListenerError::new("the listener threw")),
                    Err(_) => Err(ListenerError::new("the consumer is closed")),
                }
            }
        });
        (dispatch, listener)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<bool>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One call into JS with `batch`, returning once JS has taken it (the listeners started;
    /// their verdicts come later): while the JS thread is busy, the next batch grows instead
    /// of queueing more calls. When the call is impossible (released, or Node is shutting
    /// down) its messages fail at once instead of waiting out the close timeout.
    async fn hand_over(&self, batch: Vec<(u32, Message)>) {
        let ids: Vec<u32> = batch.iter().map(|(id, _)| *id).collect();
        let called = match self.function.get() {
            Some(function) => {
                let batch = MessageBatch::new(batch.iter().map(|(id, m)| (*id, m)));
                function.call_async_catch(batch).await.is_ok()
            }
            None => false,
        };
        if !called {
            let mut waiting = self.waiting();
            for id in ids {
                waiting.remove(&id);
            }
        }
    }

    /// Reports the verdict of call `id`: consumed (`ok`) or failed. An unknown id (already
    /// settled, or the consumer closed) is ignored.
    pub fn settle(&self, id: u32, ok: bool) {
        if let Some(verdict) = self.waiting().remove(&id) {
            let _ = verdict.send(ok);
        }
    }
}

impl Release for ListenerDispatch {
    fn release(&self) {
        self.function.release();
        // Whatever is still owed fails now: nothing will report it.
        self.waiting().clear();
    }
}
