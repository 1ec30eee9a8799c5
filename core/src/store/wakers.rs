//! Futures waiting for a log position (durable, dispatched) to reach a target, woken by the
//! thread that moves it. Runtime-agnostic: plain [`Waker`]s, no executor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::Waker;

/// Wakers keyed by the position each waits for.
#[derive(Debug, Default)]
pub(crate) struct Wakers {
    waiting: Mutex<Vec<(u64, Waker)>>,
    closed: AtomicBool,
}

impl Wakers {
    /// Wakes `waker` once the position reaches `target` (or on [`Wakers::close`]). Callers
    /// check the position again after registering: a move in between wakes nobody.
    pub(crate) fn register(&self, target: u64, waker: &Waker) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match waiting.iter_mut().find(|(t, w)| *t == target && w.will_wake(waker)) {
            Some(_) => {}
            None => waiting.push((target, waker.clone())),
        }
    }

    /// Wakes every waiter whose target is at or below `pos`.
    pub(crate) fn wake_reached(&self, pos: u64) {
        let ready: Vec<Waker> = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if waiting.is_empty() {
                return;
            }
            let mut ready = Vec::new();
            waiting.retain(|(target, w)| {
                if *target <= pos {
                    ready.push(w.clone());
                    false
                } else {
                    true
                }
            });
            ready
        };
        for w in ready {
            w.wake();
        }
    }

    /// Wakes everyone (a failure they must see); later registrations still wait.
    pub(crate) fn wake_all(&self) {
        self.wake_reached(u64::MAX);
    }

    /// No more moves are coming: wakes everyone, and [`Wakers::is_closed`] tells them so.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn wakes_exactly_the_reached_targets_once() {
        let w = Wakers::default();
        let (a, b) = (Arc::new(Count(AtomicUsize::new(0))), Arc::new(Count(AtomicUsize::new(0))));
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        w.register(10, &wa);
        w.register(10, &wa); // a repeated poll registers once
        w.register(20, &wb);
        w.wake_reached(15);
        assert_eq!((a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)), (1, 0));
        w.wake_reached(15);
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        w.close();
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        assert!(w.is_closed());
    }
}
