//! The topic table: names, queue counts and permissions, persisted in `meta/topics.json`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::meta::MetaFile;
use super::types::{Perm, TopicInfo};
use crate::{Error, Result};

/// Topic holding delayed messages, one queue per delay level.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Topic holding messages with an arbitrary delivery time.
pub const TIMER_TOPIC: &str = "RMQ_SYS_TIMER_TOPIC";
/// Topic holding transactional half messages.
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
/// Topic recording how transactions ended.
pub const TRANS_OP_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
/// Most queues a topic may have.
pub const MAX_QUEUES: u32 = 1024;

/// The retry topic of a group.
pub fn retry_topic(group: &str) -> String {
    format!("%RETRY%{group}")
}

/// The dead-letter topic of a group.
pub fn dlq_topic(group: &str) -> String {
    format!("%DLQ%{group}")
}

/// Checks a user-supplied topic name: `[A-Za-z0-9_-]{1,127}` and not reserved.
pub fn validate_topic_name(name: &str) -> Result<()> {
    validate_name("/topic", name)?;
    if name == SCHEDULE_TOPIC || name.starts_with("RMQ_SYS_") {
        return Err(Error::invalid("/topic", format!("{name:?} is a reserved system topic name")));
    }
    Ok(())
}

/// Checks a group name: `[A-Za-z0-9_-]{1,127}`.
pub fn validate_group_name(name: &str) -> Result<()> {
    validate_name("/group", name)
}

fn validate_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 127 {
        return Err(Error::invalid(field, "must be 1 to 127 characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(Error::invalid(
            field,
            format!("{name:?} contains {c:?}; only letters, digits, '_' and '-' are allowed"),
        ));
    }
    Ok(())
}

/// The topics of this broker.
#[derive(Debug)]
pub(crate) struct TopicTable {
    file: MetaFile,
    topics: Mutex<BTreeMap<String, TopicInfo>>,
}

impl TopicTable {
    pub(crate) fn open(file: MetaFile) -> Result<TopicTable> {
        let list: Vec<TopicInfo> = file.load()?;
        let topics = list.into_iter().map(|t| (t.name.clone(), t)).collect();
        Ok(TopicTable { file, topics: Mutex::new(topics) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, TopicInfo>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, topics: &BTreeMap<String, TopicInfo>) -> Result<()> {
        self.file.save(&topics.values().collect::<Vec<_>>())
    }

    pub(crate) fn get(&self, name: &str) -> Option<TopicInfo> {
        self.lock().get(name).cloned()
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    pub(crate) fn list(&self) -> Vec<TopicInfo> {
        self.lock().values().cloned().collect()
    }

    /// Creates a topic; `Conflict` if it exists.
    pub(crate) fn create(&self, name: &str, queues: u32, perm: Perm) -> Result<TopicInfo> {
        validate_topic_name(name)?;
        if queues == 0 || queues > MAX_QUEUES {
            return Err(Error::invalid("/queues", format!("must be 1 to {MAX_QUEUES}")));
        }
        let mut topics = self.lock();
        if topics.contains_key(name) {
            return Err(Error::Conflict(format!("topic {name:?} already exists")));
        }
        let info = TopicInfo { name: name.to_string(), queues, perm };
        topics.insert(name.to_string(), info.clone());
        if let Err(e) = self.persist(&topics) {
            topics.remove(name);
            return Err(e);
        }
        Ok(info)
    }

    /// The topic, creating it with `queues` queues if it does not exist.
    pub(crate) fn get_or_create(&self, name: &str, queues: u32) -> Result<TopicInfo> {
        if let Some(t) = self.get(name) {
            return Ok(t);
        }
        match self.create(name, queues, Perm::ReadWrite) {
            Err(Error::Conflict(_)) => self.get(name).ok_or_else(|| Error::not_found("topic", name)),
            other => other,
        }
    }

    pub(crate) fn remove(&self, name: &str) -> Result<TopicInfo> {
        let mut topics = self.lock();
        let info = topics.remove(name).ok_or_else(|| Error::not_found("topic", name))?;
        if let Err(e) = self.persist(&topics) {
            topics.insert(name.to_string(), info);
            return Err(e);
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders_2-a").is_ok());
        assert!(validate_topic_name(&"a".repeat(127)).is_ok());
        for bad in ["", "a b", "a/b", "%RETRY%g", "RMQ_SYS_X", SCHEDULE_TOPIC, &"a".repeat(128)] {
            assert!(matches!(validate_topic_name(bad), Err(Error::InvalidArgument { .. })), "{bad}");
        }
    }
}
