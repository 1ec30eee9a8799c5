//! A WebSocket subscription: the credit window that bounds the messages in flight, and the
//! task that receives from the broker as a group member and never exceeds the window.
//!
//! A message is in flight from its `message` frame until its ack or nack, or until its lease
//! runs out (the broker then hands it out again, so it no longer occupies the window).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferrymq_core::broker::{Broker, ConsumeMode, MemberTransport, ReadyGuard, ReceiveRequest, Subscription};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::problem::ApiError;
use crate::ws::protocol::{FrameIds, ServerFrame};
use crate::ws::Outbox;

/// Most messages one receive asks for, so that a wide window still streams in small steps.
const MAX_RECEIVE: usize = 64;
/// Longest long poll of one receive.
const MAX_POLL: Duration = Duration::from_secs(10);

/// The credit window of one subscription.
#[derive(Debug)]
pub struct Window {
    inner: Mutex<WindowState>,
    changed: Notify,
    /// An orderly subscription's: a nack can take back other deliveries too.
    orderly: bool,
}

#[derive(Debug)]
struct WindowState {
    credits: u64,
    /// Receipt → when its lease ends. (Receipts are the broker's, with a random nonce in
    /// each: a cheap hash spreads them.)
    in_flight: rustc_hash::FxHashMap<String, Instant>,
    /// No lease in flight ends before this; it may be earlier than any (the delivery whose
    /// lease it was was answered since), never later. Leases are looked over only from then.
    earliest_end: Option<Instant>,
}

impl Window {
    /// A window of `credits` messages.
    pub fn new(credits: u64) -> Self {
        Window {
            inner: Mutex::new(WindowState { credits, in_flight: Default::default(), earliest_end: None }),
            changed: Notify::new(),
            orderly: false,
        }
    }

    /// A window of an orderly subscription, whose nacks take back later deliveries too.
    pub fn orderly(credits: u64) -> Self {
        Window { orderly: true, ..Window::new(credits) }
    }

    /// Whether this is an orderly subscription's window.
    pub fn is_orderly(&self) -> bool {
        self.orderly
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Widens the window by `n`.
    pub fn grant(&self, n: u64) {
        let mut state = self.lock();
        state.credits = state.credits.saturating_add(n);
        drop(state);
        self.changed.notify_one();
    }

    /// Messages of one receive go out under `receipts`, all leased until `until`.
    pub fn record_all(&self, receipts: impl IntoIterator<Item = String>, until: Instant) {
        let mut state = self.lock();
        let before = state.in_flight.len();
        state.in_flight.extend(receipts.into_iter().map(|r| (r, until)));
        if state.in_flight.len() > before {
            state.earliest_end = Some(state.earliest_end.map_or(until, |t| t.min(until)));
        }
    }

    /// Whether `receipt` is in flight here.
    pub fn holds(&self, receipt: &str) -> bool {
        self.lock().in_flight.contains_key(receipt)
    }

    /// Frees the slot of `receipt` (acked, nacked or failed); whether it was held.
    pub fn release(&self, receipt: &str) -> bool {
        let removed = self.lock().in_flight.remove(receipt).is_some();
        if removed {
            self.changed.notify_one();
        }
        removed
    }

    /// Frees the slots of deliveries for which `held` says false (the broker took them back,
    /// e.g. later messages of an orderly queue returned with an earlier failure); how many.
    pub fn retain_held(&self, held: impl Fn(&str) -> bool) -> usize {
        let mut state = self.lock();
        let before = state.in_flight.len();
        state.in_flight.retain(|receipt, _| held(receipt));
        let freed = before - state.in_flight.len();
        drop(state);
        if freed > 0 {
            self.changed.notify_one();
        }
        freed
    }

    /// Messages in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// Free slots after dropping expired leases, and the next lease end.
    fn available(&self, now: Instant) -> (usize, Option<Instant>) {
        let mut state = self.lock();
        // Looking over every lease is needed only once one may have ended: not on every
        // delivery of a busy stream with thousands in flight.
        if state.earliest_end.is_some_and(|t| t <= now) {
            state.in_flight.retain(|_, until| *until > now);
            state.earliest_end = state.in_flight.values().min().copied();
        }
        if state.in_flight.is_empty() {
            state.earliest_end = None;
        }
        let used = state.in_flight.len() as u64;
        let free = state.credits.saturating_sub(used);
        (usize::try_from(free).unwrap_or(usize::MAX), state.earliest_end)
    }
}

/// What a subscription task needs.
pub struct SubscriptionTask {
    /// Subscription id (echoed on frames).
    pub id: String,
    /// The broker.
    pub broker: Arc<Broker>,
    /// The receive template (`max_messages` and `wait` are set per call).
    pub request: ReceiveRequest,
    /// Its window.
    pub window: Arc<Window>,
    /// The connection's outgoing frames.
    pub out: Outbox,
    /// Registration as a waiting member (clustering), taken before `subscribed` goes out so
    /// that a burst right after it is already shared; held while the window has free credits.
    pub ready: Option<ReadyGuard>,
}

impl SubscriptionTask {
    /// Runs until the connection goes away or the broker refuses (then an `error` frame).
    pub async fn run(mut self) {
        let lease_ttl = self.broker.config().lease_ttl;
        // Often enough that the member never expires while its window is full.
        let keepalive = (lease_ttl / 3).max(Duration::from_millis(50));
        let poll = (lease_ttl / 2).clamp(Duration::from_millis(100), MAX_POLL);
        loop {
            let free = loop {
                let (free, next_expiry) = self.window.available(Instant::now());
                if free > 0 {
                    self.mark_ready(true);
                    break free;
                }
                self.mark_ready(false);
                // A full window may hold deliveries the broker has taken back.
                let group = &self.request.group;
                if self.window.retain_held(|receipt| self.broker.holds_receipt(group, receipt)) > 0 {
                    continue;
                }
                let mut wake = Instant::now() + keepalive;
                if let Some(expiry) = next_expiry {
                    wake = wake.min(expiry);
                }
                tokio::select! {
                    _ = self.window.changed.notified() => {}
                    _ = tokio::time::sleep_until(wake) => self.keep_membership(),
                }
            };
            let mut request = self.request.clone();
            request.max_messages = free.min(MAX_RECEIVE);
            request.wait = poll;
            let messages = match self.broker.receive(request).await {
                Ok(messages) => messages,
                Err(err) => {
                    let ids = FrameIds { id: Some(self.id.clone()), req_id: None };
                    let _ = self.out.send(crate::ws::protocol::error_frame(&ApiError::Core(err), ids)).await;
                    return;
                }
            };
            // Recorded before any of them goes out, so that no ack can come first.
            let until = Instant::now() + self.request.invisible;
            self.window.record_all(messages.iter().filter_map(|m| m.receipt.clone()), until);
            for message in messages {
                let frame = ServerFrame::Message { id: self.id.clone(), message: message.into() };
                if self.out.send(frame).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Holds the waiting registration while the window has room, and only then.
    fn mark_ready(&mut self, ready: bool) {
        if !ready {
            self.ready = None;
        } else if self.ready.is_none() && self.request.mode == ConsumeMode::Clustering {
            let r = &self.request;
            self.ready = Some(self.broker.ready_receiver(&r.group, &r.topic, &r.client_id));
        }
    }

    /// Keeps the connection a live member while it is not receiving.
    fn keep_membership(&self) {
        let subscription = Subscription {
            topic: self.request.topic.clone(),
            filter: self.request.filter.clone(),
            mode: self.request.mode,
        };
        let _ = self.broker.heartbeat(
            &self.request.group,
            &self.request.client_id,
            MemberTransport::Ws,
            vec![subscription],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_in_flight_against_credits() {
        let window = Window::new(2);
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        assert_eq!(window.available(now).0, 2);
        window.record_all(["a".into()], later);
        window.record_all(["b".into()], later);
        assert_eq!(window.available(now).0, 0);
        assert!(window.release("a"));
        assert!(!window.release("a"));
        assert_eq!(window.available(now).0, 1);
        window.grant(3);
        assert_eq!(window.available(now).0, 4);
    }

    #[test]
    fn expired_leases_free_their_slots() {
        let window = Window::new(1);
        let now = Instant::now();
        window.record_all(["a".into()], now + Duration::from_millis(10));
        assert_eq!(window.available(now).0, 0);
        assert_eq!(window.available(now + Duration::from_millis(20)).0, 1);
        assert!(!window.holds("a"));
    }

    #[test]
    fn the_next_lease_end_follows_answers_and_expiries() {
        let window = Window::new(3);
        let now = Instant::now();
        let at = |ms| now + Duration::from_millis(ms);
        window.record_all(["a".into()], at(10));
        window.record_all(["b".into()], at(20));
        window.record_all(["c".into()], at(30));
        assert_eq!(window.available(now), (0, Some(at(10))));
        // "a" answered: its end may still be named, never a later one than the next.
        assert!(window.release("a"));
        let (free, next) = window.available(now);
        assert_eq!(free, 1);
        assert!(next.is_some_and(|t| t <= at(20)));
        // At 15 ms nothing expired ("a" was answered), and the next end is b's.
        assert_eq!(window.available(at(15)), (1, Some(at(20))));
        assert_eq!(window.available(at(25)), (2, Some(at(30))));
        assert!(!window.holds("b") && window.holds("c"));
        assert_eq!(window.available(at(35)), (3, None));
    }
}
