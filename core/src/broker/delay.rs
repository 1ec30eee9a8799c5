//! Delayed delivery: the [`Broker::run_delay_scheduler`] task re-stores due messages from the
//! schedule topic (one queue per delay level, due times in order within a queue) and from the
//! timer topic (arbitrary times, held in a min-heap) into their real topic, keeping their
//! `msg_id`. Progress is persisted in `meta/delay.json`; a message re-stored just before a crash
//! is recognised after the restart by its id and not delivered twice.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::long_poll::{enable_all, wait_any};
use super::meta::MetaFile;
use super::props::{self, DELIVER_AT, REAL_TOPIC};
use super::topic::{SCHEDULE_TOPIC, TIMER_TOPIC};
use super::{now_ms, Broker};
use crate::store::{NewMessage, Store, StoredMessage};
use crate::Result;

/// Most due messages stored in one append.
const DELIVER_BATCH: usize = 256;
/// Longest the scheduler sleeps without re-checking (it is woken earlier by new messages).
const MAX_SLEEP: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Progress {
    /// Next offset to deliver per level queue.
    levels: BTreeMap<u32, u64>,
    /// Every timer-queue offset below this is delivered.
    timer_below: u64,
    /// Timer-queue offsets at or above `timer_below` already delivered, as ranges
    /// `[start, end)`: timers delivered out of queue order (short ones behind a long one) merge
    /// into a few ranges instead of one entry each.
    #[serde(default)]
    timer_done_ranges: BTreeMap<u64, u64>,
    /// The single offsets an older version wrote; read once, then kept as ranges.
    #[serde(default, skip_serializing)]
    timer_done: BTreeSet<u64>,
}

impl Progress {
    fn timer_is_done(&self, offset: u64) -> bool {
        self.timer_done_ranges.range(..=offset).next_back().is_some_and(|(_, end)| offset < *end)
    }

    /// Marks one timer offset delivered, merging it with its neighbouring ranges, and moves
    /// `timer_below` past a range that starts there.
    fn timer_delivered(&mut self, offset: u64) {
        if offset < self.timer_below || self.timer_is_done(offset) {
            return;
        }
        let mut start = offset;
        let mut end = offset + 1;
        if let Some((&s, &e)) = self.timer_done_ranges.range(..offset).next_back() {
            if e == offset {
                start = s;
                self.timer_done_ranges.remove(&s);
            }
        }
        if let Some(e) = self.timer_done_ranges.remove(&end) {
            end = e;
        }
        if start == self.timer_below {
            self.timer_below = end;
        } else {
            self.timer_done_ranges.insert(start, end);
        }
    }

    /// Takes in the single offsets of an older version's file.
    fn migrate(&mut self) {
        for offset in std::mem::take(&mut self.timer_done) {
            self.timer_delivered(offset);
        }
    }
}

/// Persisted delivery progress of the delay scheduler.
#[derive(Debug)]
pub(crate) struct DelayScheduler {
    file: MetaFile,
    progress: Mutex<Progress>,
}

impl DelayScheduler {
    pub(crate) fn open(file: MetaFile) -> Result<DelayScheduler> {
        let mut progress: Progress = file.load()?;
        progress.migrate();
        Ok(DelayScheduler { file, progress: Mutex::new(progress) })
    }

    /// Ranges of delivered timer offsets above the lowest undelivered one.
    pub(crate) fn timer_done_len(&self) -> usize {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).timer_done_ranges.len()
    }

    fn snapshot(&self) -> Progress {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn save(&self, p: Progress) -> Result<()> {
        self.file.save(&p)?;
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = p;
        Ok(())
    }
}

fn due_of(rec: &StoredMessage) -> u64 {
    rec.properties.get(DELIVER_AT).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// True when a copy of `rec` already sits in its real topic after the scheduled record.
fn already_delivered(s: &Store, rec: &StoredMessage, real: &str) -> Result<bool> {
    for offset in s.lookup_msg_id(&rec.msg_id)? {
        if offset > rec.commit_offset && s.read(offset)?.topic == real {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Broker {
    /// The copy of one due scheduled record for its real topic; `None` when there is nothing
    /// to store (no target, a deleted topic, or delivered already before a crash).
    async fn scheduled_copy(&self, rec: StoredMessage) -> Result<Option<NewMessage>> {
        let Some(real) = rec.properties.get(REAL_TOPIC).cloned() else {
            tracing::warn!(msg_id = %rec.msg_id, "scheduled message without a target topic dropped");
            return Ok(None);
        };
        if self.dropped.hides(&real, rec.commit_offset) {
            tracing::warn!(topic = %real, msg_id = %rec.msg_id, "delayed message for a deleted topic dropped");
            return Ok(None);
        }
        let queue_id = if real.starts_with('%') {
            0
        } else {
            match self.topics.get(&real) {
                Some(t) => self.select_queue(&t, rec.properties.get(props::SHARDING_KEY).map(String::as_str)),
                None => {
                    tracing::warn!(topic = %real, msg_id = %rec.msg_id, "delayed message for a deleted topic dropped");
                    return Ok(None);
                }
            }
        };
        let check = rec.clone();
        let target = real.clone();
        if self.blocking(move |s| already_delivered(s, &check, &target)).await? {
            return Ok(None);
        }
        let mut properties = rec.properties;
        properties.remove(REAL_TOPIC);
        properties.remove(DELIVER_AT);
        Ok(Some(NewMessage {
            topic: real,
            queue_id,
            msg_id: rec.msg_id,
            tag: rec.tag,
            keys: rec.keys,
            properties,
            body: rec.body,
            flags: 0,
            born_ts: rec.born_ts,
            reconsume_times: rec.reconsume_times,
        }))
    }

    /// Stores the copies gathered so far in one atomic append.
    async fn flush_scheduled(&self, batch: &mut Vec<NewMessage>) -> Result<()> {
        if !batch.is_empty() {
            self.append_and_dispatch(std::mem::take(batch)).await?;
        }
        Ok(())
    }

    /// The delay scheduler: delivers due level and timer messages, sleeping until the next due
    /// time or until a new scheduled message arrives.
    pub(crate) async fn run_delay_scheduler(self: std::sync::Arc<Self>) {
        let mut stop = self.shutdown_signal();
        let notifiers = [self.waiters.notifier(SCHEDULE_TOPIC), self.waiters.notifier(TIMER_TOPIC)];
        let mut heap: BinaryHeap<Reverse<(u64, u64, u64)>> = BinaryHeap::new();
        let mut timer_scanned = self.delay.snapshot().timer_below;
        loop {
            let notified = enable_all(&notifiers);
            let next = match self.delay_round(&mut heap, &mut timer_scanned).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "delay scheduler round failed; retrying");
                    now_ms() + 500
                }
            };
            let wait = Duration::from_millis(next.saturating_sub(now_ms())).min(MAX_SLEEP);
            tokio::select! {
                _ = wait_any(notified, tokio::time::Instant::now() + wait) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }

    /// Delivers everything due; returns the next due time.
    async fn delay_round(
        &self,
        heap: &mut BinaryHeap<Reverse<(u64, u64, u64)>>,
        timer_scanned: &mut u64,
    ) -> Result<u64> {
        let mut popped = Vec::new();
        let result = self.delay_round_inner(heap, timer_scanned, &mut popped).await;
        if result.is_err() {
            // What was taken off the heap is not delivered for sure: take it again next round
            // (a copy that made it is recognised by its id and not stored twice).
            heap.extend(popped);
        }
        result
    }

    async fn delay_round_inner(
        &self,
        heap: &mut BinaryHeap<Reverse<(u64, u64, u64)>>,
        timer_scanned: &mut u64,
        popped: &mut Vec<Reverse<(u64, u64, u64)>>,
    ) -> Result<u64> {
        let mut progress = self.delay.snapshot();
        let mut dirty = false;
        let mut next = u64::MAX;
        // Due copies are stored in batches, one append for many messages.
        let mut batch = Vec::new();
        for level in 0..self.config.delay_levels.len() as u32 {
            loop {
                let (min, max) = self.store.queue_bounds(SCHEDULE_TOPIC, level);
                let pos = progress.levels.get(&level).copied().unwrap_or(0).max(min);
                if pos >= max {
                    break;
                }
                // Reads run on a blocking thread, not a runtime worker.
                let found = self
                    .blocking(move |s| {
                        let Some(unit) = s.read_queue(SCHEDULE_TOPIC, level, pos, 1)?.into_iter().next() else {
                            return Ok(None);
                        };
                        Ok(Some((unit.queue_offset, s.read(unit.commit_offset)?)))
                    })
                    .await?;
                let Some((unit_offset, rec)) = found else { break };
                let due = due_of(&rec);
                if due > now_ms() {
                    next = next.min(due);
                    break;
                }
                batch.extend(self.scheduled_copy(rec).await?);
                if batch.len() >= DELIVER_BATCH {
                    self.flush_scheduled(&mut batch).await?;
                }
                progress.levels.insert(level, unit_offset + 1);
                dirty = true;
            }
        }
        let (min, max) = self.store.queue_bounds(TIMER_TOPIC, 0);
        *timer_scanned = (*timer_scanned).max(min).max(progress.timer_below);
        while *timer_scanned < max {
            let from = *timer_scanned;
            let units = self.blocking(move |s| s.read_queue(TIMER_TOPIC, 0, from, 256)).await?;
            let Some(last) = units.last().map(|u| u.queue_offset) else { break };
            let wanted: Vec<_> = units.into_iter().filter(|u| !progress.timer_is_done(u.queue_offset)).collect();
            let timers = self
                .blocking(move |s| {
                    wanted
                        .into_iter()
                        .map(|u| Ok((due_of(&s.read(u.commit_offset)?), u.queue_offset, u.commit_offset)))
                        .collect::<Result<Vec<_>>>()
                })
                .await?;
            heap.extend(timers.into_iter().map(Reverse));
            *timer_scanned = last + 1;
        }
        while let Some(Reverse((due, queue_offset, commit_offset))) = heap.peek().copied() {
            if due > now_ms() {
                next = next.min(due);
                break;
            }
            if let Some(entry) = heap.pop() {
                popped.push(entry);
            }
            let rec = self.blocking(move |s| s.read(commit_offset)).await?;
            batch.extend(self.scheduled_copy(rec).await?);
            if batch.len() >= DELIVER_BATCH {
                self.flush_scheduled(&mut batch).await?;
            }
            progress.timer_delivered(queue_offset);
            dirty = true;
        }
        if progress.timer_below < min {
            progress.timer_below = min;
            progress.timer_done_ranges.retain(|_, end| *end > min);
            if let Some((&start, &end)) = progress.timer_done_ranges.first_key_value() {
                if start <= min {
                    progress.timer_done_ranges.remove(&start);
                    progress.timer_below = end;
                }
            }
            dirty = true;
        }
        self.flush_scheduled(&mut batch).await?;
        if dirty {
            self.off_runtime(move |b| b.delay.save(progress)).await?;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_timers_merge_into_ranges() {
        let mut p = Progress::default();
        for o in [5, 6, 8, 7, 2, 1, 3] {
            p.timer_delivered(o);
        }
        assert_eq!(p.timer_below, 0);
        assert_eq!(p.timer_done_ranges.iter().map(|(s, e)| (*s, *e)).collect::<Vec<_>>(), [(1, 4), (5, 9)]);
        assert!(p.timer_is_done(8) && !p.timer_is_done(4) && !p.timer_is_done(9));
        p.timer_delivered(0);
        assert_eq!(p.timer_below, 4);
        p.timer_delivered(4);
        assert_eq!(p.timer_below, 9);
        assert!(p.timer_done_ranges.is_empty());
        let mut old = Progress { timer_done: [0, 1, 3].into(), ..Progress::default() };
        old.migrate();
        assert_eq!((old.timer_below, old.timer_done_ranges.len()), (2, 1));
    }
}
