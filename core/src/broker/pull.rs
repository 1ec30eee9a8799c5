//! Low-level pulls by `(topic, queue, offset, max)` for native push consumers, with the filter
//! applied broker-side (tag hash first, then the full expression) and long polling.

use super::long_poll::{enable_all, wait_any};
use super::props;
use super::types::{Message, MessageState, PullRequest, PullResult};
use super::{compile_filter, retry_topic, validate_group_name, Broker, Filter};
use crate::{Error, Result};

/// Most units a pull examines before answering (bounds work on heavily filtered queues).
const PULL_SCAN_LIMIT: u64 = 8192;
/// Longest long poll of one pull.
const MAX_PULL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Broker {
    /// Pulls matching messages from one queue. An offset below the queue's minimum starts at the
    /// minimum; past its maximum is `OffsetOutOfRange`. With nothing new, waits up to
    /// `req.wait` and answers the moment a message is dispatched to the queue.
    pub async fn pull(&self, req: PullRequest) -> Result<PullResult> {
        validate_group_name(&req.group)?;
        if req.max == 0 || req.max > 1000 {
            return Err(Error::invalid("/max", "must be 1 to 1000"));
        }
        if req.wait > MAX_PULL_WAIT {
            return Err(Error::invalid("/wait_ms", "must be at most 30000"));
        }
        let is_retry = req.topic == retry_topic(&req.group);
        if !is_retry {
            let topic = self.topic_for_read(&req.topic)?;
            if req.queue_id >= topic.queues {
                return Err(Error::invalid("/queue_id", format!("topic has {} queues", topic.queues)));
            }
        }
        let filter = compile_filter(&req.filter)?;
        let notifier = [self.waiters.notifier(&req.topic)];
        let deadline = tokio::time::Instant::now() + req.wait;
        let mut woken = false;
        loop {
            let notified = enable_all(&notifier);
            let (min, max) = self.store.queue_bounds(&req.topic, req.queue_id);
            if req.offset > max {
                return Err(Error::OffsetOutOfRange {
                    topic: req.topic.clone(),
                    queue_id: req.queue_id,
                    offset: req.offset,
                    min,
                    max,
                });
            }
            let (messages, pos) = if woken {
                // Nothing was there before the wake-up: what is there now was just written and
                // is read from memory, here (see `Broker::receive`).
                self.pull_scan(&req, &filter, is_retry, min, max)?
            } else {
                // The first look may read a backlog from disk: on a blocking thread.
                let (req, filter) = (req.clone(), filter.clone());
                self.off_runtime(move |b| b.pull_scan(&req, &filter, is_retry, min, max)).await?
            };
            if !messages.is_empty() || pos > req.offset.max(min) || tokio::time::Instant::now() >= deadline {
                if !messages.is_empty() {
                    let topic = messages[0].topic.clone();
                    self.counters.delivered(&topic, &req.group, messages.len() as u64);
                }
                return Ok(PullResult { messages, next_offset: pos, min_offset: min, max_offset: max });
            }
            wait_any(notified, deadline).await;
            woken = true;
        }
    }

    /// Reads matching messages of one queue from `req.offset` (at least `min`); returns them
    /// and the offset to pull from next.
    fn pull_scan(
        &self,
        req: &PullRequest,
        filter: &Filter,
        is_retry: bool,
        min: u64,
        max: u64,
    ) -> Result<(Vec<Message>, u64)> {
        let mut pos = req.offset.max(min);
        let scan_end = max.min(pos + PULL_SCAN_LIMIT);
        let mut messages = Vec::new();
        let mut bytes = 0usize;
        let mut full = false;
        while !full && messages.len() < req.max && pos < scan_end {
            let units = self.store.read_queue(&req.topic, req.queue_id, pos, 64)?;
            if units.is_empty() {
                break;
            }
            for unit in units {
                if messages.len() >= req.max || full {
                    break;
                }
                if !is_retry && !filter.may_match_hash(unit.tag_hash) {
                    pos = unit.queue_offset + 1;
                    continue;
                }
                let rec = self.store.read(unit.commit_offset)?;
                if filter.matches(rec.tag.as_deref(), &props::user_properties(&rec.properties)) {
                    // At most max_receive_bytes of bodies, but always at least one message;
                    // the next pull starts at the one left out.
                    if !messages.is_empty() && bytes + rec.body.len() > self.config.max_receive_bytes {
                        full = true;
                        break;
                    }
                    bytes += rec.body.len();
                    messages.push(props::to_message(rec, MessageState::Stored));
                }
                pos = unit.queue_offset + 1;
            }
        }
        Ok((messages, pos))
    }
}
