//! Consumer groups: settings and subscriptions (persisted in `meta/groups.json`) and live
//! members (in memory, expiring), with a change counter that rebalancers wait on.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::meta::MetaFile;
use super::types::{MemberInfo, MemberTransport, Subscription};
use crate::Result;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct GroupDoc {
    max_reconsume_times: Option<u32>,
    subscriptions: BTreeMap<String, Subscription>,
}

#[derive(Debug, Clone)]
struct Member {
    info: MemberInfo,
    last_seen: Instant,
    /// The lowest commit offset its last receive that found messages read.
    read_from: Option<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    docs: BTreeMap<String, GroupDoc>,
    members: BTreeMap<String, BTreeMap<String, Member>>,
}

/// Groups of this broker.
#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    file: MetaFile,
    inner: Mutex<Inner>,
    changes: watch::Sender<u64>,
}

impl GroupCoordinator {
    pub(crate) fn open(file: MetaFile) -> Result<GroupCoordinator> {
        let docs = file.load()?;
        let (changes, _) = watch::channel(0);
        Ok(GroupCoordinator { file, inner: Mutex::new(Inner { docs, members: BTreeMap::new() }), changes })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, inner: &Inner) -> Result<()> {
        self.file.save(&inner.docs)
    }

    fn bump(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// A counter that changes whenever any group's membership or subscriptions change.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn exists(&self, group: &str) -> bool {
        let inner = self.lock();
        inner.docs.contains_key(group) || inner.members.get(group).is_some_and(|m| !m.is_empty())
    }

    /// Creates the group if needed; sets `max_reconsume_times` when given.
    pub(crate) fn put(&self, group: &str, max_reconsume_times: Option<u32>) -> Result<()> {
        let mut inner = self.lock();
        let existed = inner.docs.contains_key(group);
        let doc = inner.docs.entry(group.to_string()).or_default();
        let before = doc.max_reconsume_times;
        if max_reconsume_times.is_some() {
            doc.max_reconsume_times = max_reconsume_times;
        }
        if !existed || before != max_reconsume_times {
            self.persist(&inner)?;
        }
        Ok(())
    }

    pub(crate) fn max_reconsume_times(&self, group: &str) -> Option<u32> {
        self.lock().docs.get(group).and_then(|d| d.max_reconsume_times)
    }

    /// Records (or replaces) the group's subscription to `sub.topic`.
    pub(crate) fn subscribe(&self, group: &str, sub: Subscription) -> Result<()> {
        let mut inner = self.lock();
        let doc = inner.docs.entry(group.to_string()).or_default();
        if doc.subscriptions.get(&sub.topic) == Some(&sub) {
            return Ok(());
        }
        doc.subscriptions.insert(sub.topic.clone(), sub);
        self.persist(&inner)?;
        drop(inner);
        self.bump();
        Ok(())
    }

    /// Whether the group's subscription to `sub.topic` is `sub` already.
    pub(crate) fn has_subscription(&self, group: &str, sub: &Subscription) -> bool {
        self.lock().docs.get(group).is_some_and(|d| d.subscriptions.get(&sub.topic) == Some(sub))
    }

    pub(crate) fn subscriptions(&self, group: &str) -> Vec<Subscription> {
        self.lock().docs.get(group).map(|d| d.subscriptions.values().cloned().collect()).unwrap_or_default()
    }

    /// Marks `client_id` alive now, adding it if new.
    /// Renews a member's lease (adding it if new); where its last receive read from.
    pub(crate) fn touch(&self, group: &str, client_id: &str, transport: MemberTransport) -> Option<u64> {
        let mut inner = self.lock();
        let members = inner.members.entry(group.to_string()).or_default();
        let now = Instant::now();
        match members.get_mut(client_id) {
            Some(m) => {
                m.last_seen = now;
                m.read_from
            }
            None => {
                members.insert(
                    client_id.to_string(),
                    Member {
                        info: MemberInfo { client_id: client_id.to_string(), transport, since: super::now_ms() },
                        last_seen: now,
                        read_from: None,
                    },
                );
                drop(inner);
                self.bump();
                None
            }
        }
    }

    /// Notes where a member's receive read from (the lowest commit offset it read).
    pub(crate) fn note_read(&self, group: &str, client_id: &str, commit_offset: u64) {
        if let Some(m) = self.lock().members.get_mut(group).and_then(|m| m.get_mut(client_id)) {
            m.read_from = Some(commit_offset);
        }
    }

    /// Removes a member at once; true if it was there.
    pub(crate) fn leave(&self, group: &str, client_id: &str) -> bool {
        let removed = self.lock().members.get_mut(group).and_then(|m| m.remove(client_id)).is_some();
        if removed {
            self.bump();
        }
        removed
    }

    pub(crate) fn members(&self, group: &str) -> Vec<MemberInfo> {
        self.lock().members.get(group).map(|m| m.values().map(|m| m.info.clone()).collect()).unwrap_or_default()
    }

    /// Drops REST and native members not seen for `ttl`; WebSocket members live as long as their
    /// connection. Returns the (group, client) pairs that left.
    pub(crate) fn expire(&self, ttl: Duration) -> Vec<(String, String)> {
        let mut gone = Vec::new();
        let now = Instant::now();
        let mut inner = self.lock();
        for (group, members) in inner.members.iter_mut() {
            members.retain(|id, m| {
                let keep = m.info.transport == MemberTransport::Ws || now.duration_since(m.last_seen) < ttl;
                if !keep {
                    gone.push((group.clone(), id.clone()));
                }
                keep
            });
        }
        drop(inner);
        if !gone.is_empty() {
            self.bump();
        }
        gone
    }

    /// Every group known: with settings, subscriptions or live members.
    pub(crate) fn names(&self) -> Vec<String> {
        let inner = self.lock();
        let mut names: Vec<String> = inner.docs.keys().cloned().collect();
        names.extend(inner.members.iter().filter(|(_, m)| !m.is_empty()).map(|(g, _)| g.clone()));
        names.sort();
        names.dedup();
        names
    }

    /// Drops every subscription to `topic`.
    pub(crate) fn remove_topic(&self, topic: &str) -> Result<()> {
        let mut inner = self.lock();
        let mut changed = false;
        for doc in inner.docs.values_mut() {
            changed |= doc.subscriptions.remove(topic).is_some();
        }
        if changed {
            self.persist(&inner)?;
        }
        Ok(())
    }
}
