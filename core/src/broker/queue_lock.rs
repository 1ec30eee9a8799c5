//! Orderly queue locks: an orderly member holds a lease on each queue it consumes, so two
//! members never process one queue at once during a rebalance. A lease expires `lease_ttl` after
//! it was last taken or renewed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Key = (String, String, u32);

/// (group, topic, queue) → holder and expiry.
#[derive(Debug, Default)]
pub(crate) struct QueueLocks {
    locks: Mutex<HashMap<Key, (String, Instant)>>,
}

impl QueueLocks {
    /// Takes or renews the lock for `client_id`; false while another member holds it.
    pub(crate) fn lock(&self, group: &str, topic: &str, queue_id: u32, client_id: &str, ttl: Duration) -> bool {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let key = (group.to_string(), topic.to_string(), queue_id);
        match locks.get(&key) {
            Some((holder, expires)) if holder != client_id && *expires > now => false,
            _ => {
                locks.insert(key, (client_id.to_string(), now + ttl));
                true
            }
        }
    }

    /// Releases the lock if `client_id` holds it.
    pub(crate) fn unlock(&self, group: &str, topic: &str, queue_id: u32, client_id: &str) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        let key = (group.to_string(), topic.to_string(), queue_id);
        if locks.get(&key).is_some_and(|(holder, _)| holder == client_id) {
            locks.remove(&key);
        }
    }

    /// Releases every lock `client_id` holds in `group`.
    pub(crate) fn release_client(&self, group: &str, client_id: &str) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|(g, _, _), (holder, _)| !(g == group && holder == client_id));
    }

    /// The current holder, if the lease is live.
    #[cfg(test)]
    pub(crate) fn holder(&self, group: &str, topic: &str, queue_id: u32) -> Option<String> {
        let locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks
            .get(&(group.to_string(), topic.to_string(), queue_id))
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(h, _)| h.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_excludes_others_until_expiry() {
        let locks = QueueLocks::default();
        assert!(locks.lock("g", "t", 0, "a", Duration::from_millis(50)));
        assert!(!locks.lock("g", "t", 0, "b", Duration::from_millis(50)));
        assert!(locks.lock("g", "t", 0, "a", Duration::from_millis(50)), "renewal by the holder");
        std::thread::sleep(Duration::from_millis(80));
        assert!(locks.lock("g", "t", 0, "b", Duration::from_millis(50)), "expired lease is free");
        assert_eq!(locks.holder("g", "t", 0).as_deref(), Some("b"));
        locks.unlock("g", "t", 0, "a");
        assert_eq!(locks.holder("g", "t", 0).as_deref(), Some("b"), "only the holder unlocks");
        locks.release_client("g", "b");
        assert_eq!(locks.holder("g", "t", 0), None);
    }
}
