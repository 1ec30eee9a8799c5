//! [`ListenerDispatch`]: a push consumer's JS listener, handed its messages in batches.
//!
//! Each call through a thread-safe function wakes the event loop and crosses threads, and a
//! verdict that wakes a task of the client's costs another crossing back: one of each per
//! message bounded consumption (see BENCHMARKS.md, "Node SDK"). So the consumer's listener is
//! a batch listener ([`Listener::batch`]): the client hands it the messages of a pulled batch
//! that free workers allow (up to `consumeWorkers`), and each such call is one call into JS.
//! `index.js` runs the user's listener on each message and reports the verdicts by call
//! through [`ListenerDispatch::settle`]: those of listeners that returned without a promise
//! in one synchronous native call per batch, each later one (a promise) as it settles. The
//! client's call completes when every verdict of its batch is in.
//!
//! A push consumer without a listener (iterated with `for await`) takes the same path:
//! `index.js` keeps the messages of each batch in a buffer that `recv()` hands out from, and
//! reports an `ack()` as a verdict (those of one tick together), a `nack()` at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrymq_core::client::{BatchVerdicts, Listener, ListenerError, Message};
use napi::bindgen_prelude::spawn;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use tokio::sync::{mpsc, oneshot};

use crate::client::{Callback, Release};
use crate::message::{MessageBatch, MetaChunk};

/// Most messages handed to JS in one call (the consumer's workers bound it first).
const MAX_BATCH: usize = 256;

/// The listener as `index.js` wraps it: called on the JS thread with a batch, it starts the
/// user's listener on each message and never throws.
pub type ListenerFn = ThreadsafeFunction<MessageBatch, (), MessageBatch, Status, false>;

/// A verdict from `index.js`: the listener consumed the message.
pub const CONSUMED: u32 = 1;
/// A verdict from `index.js`: the consumer closed before the listener started on the
/// message (see [`ListenerError::not_started`]). Any other number means it failed.
pub const NOT_STARTED: u32 = 2;

/// What JS answered for one message.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    Consumed,
    NotStarted,
    /// Failed: redelivered after this delay, or after the retry delay.
    Failed(Option<Duration>),
}

impl Verdict {
    fn from_js(verdict: u32) -> Verdict {
        match verdict {
            CONSUMED => Verdict::Consumed,
            NOT_STARTED => Verdict::NotStarted,
            _ => Verdict::Failed(None),
        }
    }
}

/// One call of the client's batch listener whose verdicts are not all in.
struct Pending {
    verdicts: Vec<Option<Verdict>>,
    missing: usize,
    done: oneshot::Sender<Vec<Option<Verdict>>>,
}

/// A call of the client's batch listener on its way to the JS thread.
struct Queued {
    chunk: MetaChunk,
    done: oneshot::Sender<Vec<Option<Verdict>>>,
}

/// What becomes of a message whose verdict never comes (the consumer or the client closed,
/// or Node shut down, before JS answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unanswered {
    /// It failed (a listener may have started on it): redelivered through retry.
    Fails,
    /// It goes back to the group untouched, as an iterated message the application held
    /// past the close did through the client's stream.
    GoesBack,
}

/// The JS listener of one push consumer and the verdicts it still owes, by the id of each
/// call's first message (ids are consecutive within a call, and across the calls of one
/// batch handed to JS).
pub struct ListenerDispatch {
    function: Arc<Callback<ListenerFn>>,
    waiting: Mutex<BTreeMap<u64, Pending>>,
}

impl ListenerDispatch {
    /// Starts the task that hands queued calls to `function`; returns the dispatch (for
    /// `settle` and to release) and the listener to put in the consumer's options.
    pub fn start(function: ListenerFn, unanswered: Unanswered) -> (Arc<ListenerDispatch>, Listener) {
        let dispatch = Arc::new(ListenerDispatch { function: Callback::new(function), waiting: Mutex::default() });
        let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
        let feeder = dispatch.clone();
        spawn(async move {
            let mut next_id: u64 = 0;
            while let Some(first) = rx.recv().await {
                let mut size = first.chunk.len();
                let mut calls = vec![first];
                while size < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(queued) => {
                            size += queued.chunk.len();
                            calls.push(queued);
                        }
                        Err(_) => break,
                    }
                }
                next_id = feeder.hand_over(next_id, calls).await;
            }
        });
        let listener = Listener::batch(move |messages: &[Message]| {
            let (done, verdicts) = oneshot::channel();
            // A send fails only once the feeder is gone (Node shut down): `done` then drops.
            let _ = tx.send(Queued { chunk: MetaChunk::new(messages), done });
            let n = messages.len();
            async move {
                let verdicts = verdicts.await.unwrap_or_else(|_| vec![None; n]);
                verdicts
                    .into_iter()
                    .map(|verdict| match verdict {
                        Some(Verdict::Consumed) => Ok(()),
                        Some(Verdict::NotStarted) => Err(ListenerError::not_started()),
                        Some(Verdict::Failed(None)) => Err(ListenerError::new("the message failed")),
                        Some(Verdict::Failed(Some(delay))) => {
                            Err(ListenerError::new("the message failed").retry_after(delay))
                        }
                        None if unanswered == Unanswered::GoesBack => Err(ListenerError::not_started()),
                        None => Err(ListenerError::new("the consumer is closed")),
                    })
                    .collect::<BatchVerdicts>()
            }
        });
        (dispatch, listener)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Pending>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One call into JS with `calls`, their messages numbered from `next_id`; returns the id
    /// after the last. Returns once JS has taken the batch (the listeners started; their
    /// verdicts come later): while the JS thread is busy, the next batch grows instead of
    /// queueing more calls. When the call is impossible (released, or Node is shutting down)
    /// its messages fail at once instead of waiting out the close timeout.
    async fn hand_over(&self, mut next_id: u64, calls: Vec<Queued>) -> u64 {
        let first_id = next_id;
        let mut chunks = Vec::with_capacity(calls.len());
        {
            let mut waiting = self.waiting();
            for Queued { chunk, done } in calls {
                let n = chunk.len();
                waiting.insert(next_id, Pending { verdicts: vec![None; n], missing: n, done });
                next_id += n as u64;
                chunks.push(chunk);
            }
        }
        let called = match self.function.get() {
            Some(function) => function.call_async_catch(MetaChunk::batch(chunks, first_id)).await.is_ok(),
            None => false,
        };
        if !called {
            let mut waiting = self.waiting();
            let ids: Vec<u64> = waiting.range(first_id..next_id).map(|(id, _)| *id).collect();
            for id in ids {
                waiting.remove(&id);
            }
        }
        next_id
    }

    /// Reports verdicts: `verdicts[i]` is that of message `first + i`: [`CONSUMED`],
    /// [`NOT_STARTED`] or (anything else) failed, or `None` for one reported later. Unknown
    /// ids (the call complete, or the consumer closed) are ignored, and so is a second verdict
    /// for one message.
    pub fn settle(&self, first: u64, verdicts: &[Option<u32>]) {
        let verdicts: Vec<Option<Verdict>> = verdicts.iter().map(|v| v.map(Verdict::from_js)).collect();
        self.record(first, &verdicts);
    }

    /// Reports the same verdict on the `count` messages numbered from `first` on (as
    /// [`ListenerDispatch::settle`] reads it).
    pub fn settle_run(&self, first: u64, count: usize, verdict: u32) {
        self.record(first, &vec![Some(Verdict::from_js(verdict)); count]);
    }

    /// Reports message `id` failed, to be redelivered after `delay` (or the retry delay).
    pub fn fail(&self, id: u64, delay: Option<Duration>) {
        self.record(id, &[Some(Verdict::Failed(delay))]);
    }

    fn record(&self, first: u64, verdicts: &[Option<Verdict>]) {
        let end = first + verdicts.len() as u64;
        let mut complete = Vec::new();
        {
            let mut waiting = self.waiting();
            // The call holding `first` may start before it.
            let start = waiting.range(..=first).next_back().map_or(first, |(id, _)| *id);
            for (&base, pending) in waiting.range_mut(start..end) {
                for (i, slot) in pending.verdicts.iter_mut().enumerate() {
                    let id = base + i as u64;
                    if id < first || id >= end || slot.is_some() {
                        continue;
                    }
                    if let Some(verdict) = verdicts[(id - first) as usize] {
                        *slot = Some(verdict);
                        pending.missing -= 1;
                    }
                }
                if pending.missing == 0 {
                    complete.push(base);
                }
            }
            for base in &complete {
                if let Some(pending) = waiting.remove(base) {
                    let _ = pending.done.send(pending.verdicts);
                }
            }
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
