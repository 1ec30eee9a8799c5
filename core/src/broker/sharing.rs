//! Fair sharing in clustering groups: which members are waiting for messages of a topic right
//! now, so that a burst is spread over them instead of going to whichever asks first.
//!
//! A member counts as waiting while a receive of it runs, and while it holds a
//! [`ReadyGuard`] (a WebSocket subscription with free credits holds one between its
//! receives). A receive then takes only its share of the topic's queues: queue `j` (the
//! group's retry queue counting as one more) belongs to the `j mod n`-th of the `n` waiting
//! members in id order, as an average-by-circle rebalance would assign it. A member alone
//! takes every queue.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

type Key = (String, String);

/// Members waiting per (group, topic), with how many waits each has open.
#[derive(Debug, Default)]
pub(crate) struct ReadyTable {
    inner: Mutex<HashMap<Key, BTreeMap<String, usize>>>,
}

impl ReadyTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, BTreeMap<String, usize>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `client_id` waiting on `topic` for `group` until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>, group: &str, topic: &str, client_id: &str) -> ReadyGuard {
        let key = (group.to_string(), topic.to_string());
        *self.lock().entry(key.clone()).or_default().entry(client_id.to_string()).or_default() += 1;
        ReadyGuard { table: self.clone(), key, client_id: client_id.to_string() }
    }

    fn leave(&self, key: &Key, client_id: &str) {
        let mut inner = self.lock();
        let Some(members) = inner.get_mut(key) else { return };
        if let Some(n) = members.get_mut(client_id) {
            *n -= 1;
            if *n == 0 {
                members.remove(client_id);
            }
        }
        if members.is_empty() {
            inner.remove(key);
        }
    }

    /// The waiting members, in id order.
    pub(crate) fn members(&self, group: &str, topic: &str) -> Vec<String> {
        self.lock()
            .get(&(group.to_string(), topic.to_string()))
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Which of `queues` queue indexes `client_id` takes now: `None` for all of them.
    pub(crate) fn share(&self, group: &str, topic: &str, client_id: &str) -> Option<(usize, usize)> {
        let members = self.members(group, topic);
        if members.len() < 2 {
            return None;
        }
        let index = members.iter().position(|m| m == client_id)?;
        Some((index, members.len()))
    }
}

/// A member's registration as waiting for messages; it ends when the guard drops.
#[derive(Debug)]
pub struct ReadyGuard {
    table: Arc<ReadyTable>,
    key: Key,
    client_id: String,
}

impl Drop for ReadyGuard {
    fn drop(&mut self) {
        self.table.leave(&self.key, &self.client_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_share_while_their_guards_live() {
        let table = Arc::new(ReadyTable::default());
        let a = table.enter("g", "t", "a");
        assert_eq!(table.share("g", "t", "a"), None, "alone: every queue");
        let b = table.enter("g", "t", "b");
        let b2 = table.enter("g", "t", "b");
        assert_eq!(table.share("g", "t", "a"), Some((0, 2)));
        assert_eq!(table.share("g", "t", "b"), Some((1, 2)));
        drop(b);
        assert_eq!(table.share("g", "t", "a"), Some((0, 2)), "b still waits once");
        drop(b2);
        assert_eq!(table.share("g", "t", "a"), None);
        drop(a);
        assert!(table.members("g", "t").is_empty());
    }
}
