//! [`Deliveries`]: a push consumer's messages on their way to Kotlin, a pulled batch at a
//! time, and their verdicts on the way back.
//!
//! The consumer's listener is a batch listener ([`Listener::batch`]): the client hands it the
//! messages of one pulled batch that its free workers allow, and waits for one verdict per
//! message. Here each such call queues its messages, numbered with delivery ids, and waits;
//! Kotlin takes every queued message in one call ([`Deliveries::take`]), runs them from a
//! buffer of its own, and answers by id, many per call ([`Deliveries::settle`]). A call's
//! verdicts go back to the client in one wake-up, when its last one is in. The alternative,
//! the client's stream of single messages, costs a task, a channel send and a wake-up per
//! message on each side, which is what bounded consumption from the JVM.
//!
//! The bound on messages handed out and not answered (the SDK's `consumeWorkers` times its
//! prefetch) is kept here, by [`Deliveries::take`], not by the client's `consume_workers`,
//! which the SDK sets high ([`CLIENT_WORKERS`]). The client shares its workers among the
//! pulled batches waiting for them one permit per batch first (a fair semaphore), so with a
//! bound there every call but one carried a single message once a backlog was pulled
//! (999,816 calls for a drain of 1,000,000): a delivery id's call, oneshot and wake-up per
//! message, and Kotlin took 3 to 4 messages per call. Unbounded there, each pulled batch is
//! one call; what waits here is bounded by the client's buffer per queue
//! ([`CLIENT_BUFFER_PER_QUEUE`]), and it waits as a pulled message waits in the client: not
//! started, so given back on close like those.
//!
//! Nothing taken is lost: messages queued or handed out and not answered when the consumer
//! shuts down are answered [`ListenerError::not_started`] ([`Deliveries::close`]): they stay
//! for the queue's next owner, uncommitted, without counting a reconsume. Messages taken for
//! a caller that stopped waiting go back to the front of the queue ([`Deliveries::give_back`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferrymq_core::client::{BatchVerdicts, Listener, ListenerError, Message};
use tokio::sync::{oneshot, Notify};

use crate::wire;

/// The client's `consume_workers` for a consumer whose deliveries these are: high enough
/// never to split a pulled batch (see the module doc); [`Deliveries::take`] keeps the bound.
pub(crate) const CLIENT_WORKERS: usize = 1 << 20;

/// The client's `max_buffered_per_queue` for such a consumer: four pulls of the default 32
/// per queue, so that a queue taken away by a rebalance has no more than this many messages
/// queued here for its release to wait for (the client's default, 1000, would let a slow
/// listener's member keep a queue's release waiting for up to a thousand calls).
pub(crate) const CLIENT_BUFFER_PER_QUEUE: usize = 128;

/// What Kotlin answered for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Consumed.
    Consumed,
    /// Failed: redelivered through retry after this delay, or the retry delay when none.
    Failed(Option<Duration>),
    /// Never run: the consumer closed first.
    NotStarted,
}

impl Verdict {
    fn into_result(self) -> Result<(), ListenerError> {
        match self {
            Verdict::Consumed => Ok(()),
            Verdict::Failed(None) => Err(ListenerError::new("the Kotlin listener failed or nacked the message")),
            Verdict::Failed(Some(delay)) => Err(ListenerError::new("nacked").retry_after(delay)),
            Verdict::NotStarted => Err(ListenerError::not_started()),
        }
    }
}

/// Why a verdict was not recorded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unanswerable {
    /// Answered already, abandoned by close, or never handed out.
    Unknown,
}

/// One call of the batch listener whose verdicts are not all in.
struct Call {
    verdicts: Vec<Option<Verdict>>,
    missing: usize,
    done: oneshot::Sender<Vec<Verdict>>,
}

#[derive(Default)]
struct State {
    /// Closed: calls are answered `NotStarted` at once.
    closed: bool,
    /// Verdicts missing, over every call in `calls`: messages queued or handed out and not
    /// answered (so handed out and not answered: this less `queued.len()`).
    missing: usize,
    /// The last delivery id given out (ids start at 1).
    last_id: i64,
    /// Messages of calls not yet handed to Kotlin, oldest first, each under its delivery id
    /// and already serialized for Kotlin ([`wire::put_delivered`]).
    queued: VecDeque<(i64, Vec<u8>)>,
    /// Calls waiting for verdicts, by the id of their first message (a call's ids are
    /// consecutive).
    calls: BTreeMap<i64, Call>,
}

/// The messages of one push consumer between the client and Kotlin (see the module doc).
pub(crate) struct Deliveries {
    state: Mutex<State>,
    /// Most messages handed out and not answered.
    limit: usize,
    /// Woken when messages are queued, when answers make room under `limit` for queued
    /// ones, or when the deliveries close.
    arrived: Notify,
}

/// Verdicts complete for their calls, to send once the lock is released.
type Finished = Vec<(oneshot::Sender<Vec<Verdict>>, Vec<Verdict>)>;

fn finish(finished: Finished) {
    for (done, verdicts) in finished {
        // The call is gone only if its consumer's task was dropped: nothing to tell.
        let _ = done.send(verdicts);
    }
}

impl Deliveries {
    /// Deliveries handing out at most `limit` messages not answered yet (at least one).
    pub(crate) fn new(limit: usize) -> Self {
        Deliveries { state: Mutex::default(), limit: limit.max(1), arrived: Notify::new() }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The batch listener to give the client's push consumer: it queues each call's messages
    /// here and completes with their verdicts.
    pub(crate) fn listener(self: &Arc<Self>) -> Listener {
        let deliveries = self.clone();
        Listener::batch(move |messages: &[Message]| {
            let n = messages.len();
            let verdicts = deliveries.queue(messages);
            async move {
                let verdicts = match verdicts {
                    Some(verdicts) => verdicts.await.unwrap_or_else(|_| vec![Verdict::NotStarted; n]),
                    None => vec![Verdict::NotStarted; n],
                };
                verdicts.into_iter().map(Verdict::into_result).collect::<BatchVerdicts>()
            }
        })
    }

    /// Queues one call's messages; its verdicts come through the receiver (`None` when
    /// closed: none of them will run). Each message is serialized for Kotlin here, from the
    /// borrow, outside the lock: no clone, no intermediate record.
    fn queue(&self, messages: &[Message]) -> Option<oneshot::Receiver<Vec<Verdict>>> {
        let (done, verdicts) = oneshot::channel();
        if messages.is_empty() {
            let _ = done.send(Vec::new());
            return Some(verdicts);
        }
        let n = messages.len();
        let first = {
            let mut state = self.state();
            if state.closed {
                return None;
            }
            let first = state.last_id + 1;
            state.last_id += n as i64;
            state.missing += n;
            state.calls.insert(first, Call { verdicts: vec![None; n], missing: n, done });
            first
        };
        let records: Vec<(i64, Vec<u8>)> = (first..)
            .zip(messages)
            .map(|(id, message)| {
                let mut record = Vec::with_capacity(message.body.len() + 160);
                wire::put_delivered(id, message, &mut record);
                (id, record)
            })
            .collect();
        {
            let mut state = self.state();
            // Closed meanwhile: close answered the call already.
            if state.closed {
                return Some(verdicts);
            }
            state.queued.extend(records);
        }
        self.arrived.notify_waiters();
        Some(verdicts)
    }

    /// Up to `max` queued messages with their delivery ids, oldest first, without waiting,
    /// and no more than `limit` leaves room for.
    fn take_queued(&self, max: usize) -> (Vec<(i64, Vec<u8>)>, bool) {
        let mut state = self.state();
        let out = state.missing.saturating_sub(state.queued.len());
        let n = max.min(state.queued.len()).min(self.limit.saturating_sub(out));
        (state.queued.drain(..n).collect(), state.closed)
    }

    /// Whether messages are queued that `limit` holds back (holding the lock): answers then
    /// wake a taker.
    fn held_back(&self, state: &State) -> bool {
        !state.queued.is_empty() && state.missing.saturating_sub(state.queued.len()) >= self.limit
    }

    /// Waits (up to `timeout`, forever when none) for a message that `limit` leaves room for,
    /// then takes every one queued, `max` at most (and no more than that room), oldest first,
    /// each serialized as an `FfiDelivered` (see
    /// [`wire::encode_taken`]). Empty on timeout or once closed.
    pub(crate) async fn take(&self, max: usize, timeout: Option<Duration>) -> Vec<(i64, Vec<u8>)> {
        let wait = async {
            loop {
                let notified = self.arrived.notified();
                tokio::pin!(notified);
                // Registered before looking, so that a queue in between still wakes this.
                notified.as_mut().enable();
                let (taken, closed) = self.take_queued(max);
                if !taken.is_empty() || closed {
                    return taken;
                }
                notified.await;
            }
        };
        match timeout {
            None => wait.await,
            Some(t) => tokio::time::timeout(t, wait).await.unwrap_or_default(),
        }
    }

    /// [`take`](Self::take) without a timeout, blocking the calling thread (never one of the
    /// runtime's).
    pub(crate) fn take_blocking(&self, max: usize) -> Vec<(i64, Vec<u8>)> {
        let (taken, _) = self.take_queued(max);
        if !taken.is_empty() {
            return taken;
        }
        crate::runtime::handle().block_on(self.take(max, None))
    }

    /// Puts messages taken for a caller that stopped waiting back at the front of the queue,
    /// in their order, for the next taker (or for [`close`](Self::close)).
    pub(crate) fn give_back(&self, taken: Vec<(i64, Vec<u8>)>) {
        if taken.is_empty() {
            return;
        }
        let closing = {
            let mut state = self.state();
            // Handed out no more: `missing` still counts them, now as queued.
            for entry in taken.into_iter().rev() {
                state.queued.push_front(entry);
            }
            state.closed
        };
        if closing {
            self.answer_queued();
        } else {
            self.arrived.notify_waiters();
        }
    }

    /// Records one verdict per answer: a positive id consumed, a negated one failed (the
    /// retry delay). Returns how many were unknown (answered already, abandoned by close).
    pub(crate) fn settle(&self, answers: &[i64]) -> i32 {
        self.recording(|state, finished| {
            let mut skipped = 0;
            for &answer in answers {
                let verdict = if answer > 0 { Verdict::Consumed } else { Verdict::Failed(None) };
                let recorded =
                    answer.checked_abs().map_or(Err(Unanswerable::Unknown), |id| record(state, id, verdict, finished));
                if recorded.is_err() {
                    skipped += 1;
                }
            }
            skipped
        })
    }

    /// Records one verdict for the delivery `id`.
    pub(crate) fn answer(&self, id: i64, verdict: Verdict) -> Result<(), Unanswerable> {
        self.recording(|state, finished| record(state, id, verdict, finished))
    }

    /// Runs `f` (recording verdicts) under the lock, then completes the calls it finished and
    /// wakes a taker if the answers made room under `limit` for queued messages.
    fn recording<R>(&self, f: impl FnOnce(&mut State, &mut Finished) -> R) -> R {
        let mut finished = Finished::new();
        let (out, room) = {
            let mut state = self.state();
            let held_back = self.held_back(&state);
            let out = f(&mut state, &mut finished);
            (out, held_back && !self.held_back(&state))
        };
        finish(finished);
        if room {
            self.arrived.notify_waiters();
        }
        out
    }

    /// Answers `NotStarted` for the messages queued and not handed out.
    fn answer_queued(&self) {
        let mut finished = Finished::new();
        {
            let mut state = self.state();
            let queued: Vec<i64> = state.queued.drain(..).map(|(id, _)| id).collect();
            for id in queued {
                let _ = record(&mut state, id, Verdict::NotStarted, &mut finished);
            }
        }
        finish(finished);
    }

    /// Closes: every message queued or handed out and not answered is answered `NotStarted`
    /// (it stays for the queue's next owner), and so is every later call; takers waiting get
    /// nothing. Call it once the consumer's queues have stopped. Idempotent.
    pub(crate) fn close(&self) {
        let finished: Finished = {
            let mut state = self.state();
            state.closed = true;
            state.queued.clear();
            state.missing = 0;
            std::mem::take(&mut state.calls)
                .into_values()
                .map(|call| {
                    let verdicts = call.verdicts.into_iter().map(|v| v.unwrap_or(Verdict::NotStarted)).collect();
                    (call.done, verdicts)
                })
                .collect()
        };
        finish(finished);
        self.arrived.notify_waiters();
    }
}

/// Records `verdict` for `id` in its call; a call whose last verdict this is goes to
/// `finished`.
fn record(state: &mut State, id: i64, verdict: Verdict, finished: &mut Finished) -> Result<(), Unanswerable> {
    let Some((&first, call)) = state.calls.range_mut(..=id).next_back() else {
        return Err(Unanswerable::Unknown);
    };
    let slot = usize::try_from(id - first).ok().and_then(|i| call.verdicts.get_mut(i)).ok_or(Unanswerable::Unknown)?;
    if slot.is_some() {
        return Err(Unanswerable::Unknown);
    }
    *slot = Some(verdict);
    call.missing -= 1;
    state.missing -= 1;
    if call.missing == 0 {
        if let Some(call) = state.calls.remove(&first) {
            finished.push((call.done, call.verdicts.into_iter().map(|v| v.unwrap_or(Verdict::NotStarted)).collect()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrymq_core::broker::MessageState;

    fn message(n: u32) -> Message {
        Message {
            msg_id: format!("m{n}"),
            topic: "t".into(),
            queue_id: Some(0),
            queue_offset: Some(u64::from(n)),
            commit_offset: None,
            body: vec![n as u8],
            tag: None,
            keys: Vec::new(),
            properties: Default::default(),
            born_ts: 0,
            store_ts: 0,
            reconsume_times: 0,
            receipt: None,
            state: MessageState::Stored,
        }
    }

    fn ids(taken: &[(i64, Vec<u8>)]) -> Vec<i64> {
        taken.iter().map(|(id, _)| *id).collect()
    }

    #[tokio::test]
    async fn a_call_completes_when_its_last_verdict_is_in() {
        let deliveries = Arc::new(Deliveries::new(100));
        let verdicts = deliveries.queue(&[message(1), message(2), message(3)]).unwrap();
        let taken = deliveries.take(2, None).await;
        assert_eq!(ids(&taken), vec![1, 2]);
        assert_eq!(ids(&deliveries.take(10, None).await), vec![3]);
        assert_eq!(deliveries.settle(&[1, -2, 7]), 1);
        assert_eq!(deliveries.answer(1, Verdict::Consumed), Err(Unanswerable::Unknown));
        deliveries.answer(3, Verdict::Failed(Some(Duration::from_millis(5)))).unwrap();
        let verdicts = verdicts.await.unwrap();
        assert_eq!(
            verdicts,
            vec![Verdict::Consumed, Verdict::Failed(None), Verdict::Failed(Some(Duration::from_millis(5)))]
        );
    }

    #[tokio::test]
    async fn closing_answers_what_is_open_not_started_and_refuses_later_calls() {
        let deliveries = Arc::new(Deliveries::new(100));
        let first = deliveries.queue(&[message(1), message(2)]).unwrap();
        let second = deliveries.queue(&[message(3)]).unwrap();
        let taken = deliveries.take(2, None).await;
        deliveries.settle(&[taken[0].0]);
        deliveries.give_back(taken[1..].to_vec());
        assert_eq!(ids(&deliveries.take(10, Some(Duration::from_millis(1))).await), vec![2, 3]);
        deliveries.close();
        assert_eq!(first.await.unwrap(), vec![Verdict::Consumed, Verdict::NotStarted]);
        assert_eq!(second.await.unwrap(), vec![Verdict::NotStarted]);
        assert!(deliveries.queue(&[message(4)]).is_none());
        assert!(deliveries.take(10, None).await.is_empty());
        assert_eq!(deliveries.settle(&[2]), 1);
    }

    #[tokio::test]
    async fn no_more_than_the_limit_is_handed_out_unanswered() {
        let deliveries = Arc::new(Deliveries::new(2));
        let _first = deliveries.queue(&[message(1), message(2), message(3)]).unwrap();
        let _second = deliveries.queue(&[message(4), message(5)]).unwrap();
        assert_eq!(ids(&deliveries.take(10, None).await), vec![1, 2]);
        assert!(deliveries.take(10, Some(Duration::from_millis(1))).await.is_empty());
        // An answer makes room for one more, and wakes a taker waiting for it.
        let taker = tokio::spawn({
            let deliveries = deliveries.clone();
            async move { ids(&deliveries.take(10, None).await) }
        });
        tokio::task::yield_now().await;
        deliveries.answer(2, Verdict::Consumed).unwrap();
        assert_eq!(taker.await.unwrap(), vec![3]);
        // Given back, a message no longer counts as handed out.
        let taken = deliveries.take(10, Some(Duration::from_millis(1))).await;
        assert!(taken.is_empty());
        deliveries.settle(&[1]);
        let taken = deliveries.take(10, None).await;
        assert_eq!(ids(&taken), vec![4]);
        deliveries.give_back(taken);
        assert_eq!(ids(&deliveries.take(10, None).await), vec![4]);
        assert_eq!(deliveries.settle(&[3, 4]), 0);
        assert_eq!(ids(&deliveries.take(10, None).await), vec![5]);
    }

    #[tokio::test]
    async fn a_waiting_taker_is_woken_by_a_call() {
        let deliveries = Arc::new(Deliveries::new(100));
        let taker = tokio::spawn({
            let deliveries = deliveries.clone();
            async move { ids(&deliveries.take(10, None).await) }
        });
        tokio::task::yield_now().await;
        let _verdicts = deliveries.queue(&[message(1), message(2)]).unwrap();
        assert_eq!(taker.await.unwrap(), vec![1, 2]);
        assert!(deliveries.take(10, Some(Duration::from_millis(1))).await.is_empty());
    }
}
