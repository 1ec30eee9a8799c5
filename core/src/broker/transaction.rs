//! Transactional messages: a half message sits in `RMQ_SYS_TRANS_HALF_TOPIC`, invisible, until
//! its producer commits (it is re-stored in its real topic) or rolls back. Every end, check and
//! discard is recorded in `RMQ_SYS_TRANS_OP_HALF_TOPIC`, and the table is rebuilt from both
//! topics at start-up. Half messages unresolved after `transaction_timeout` are checked back
//! every `transaction_check_interval`, at most `transaction_check_max` times, then discarded.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::props::{self, DELIVER_AT, PRODUCER_GROUP, REAL_TOPIC, TX_HALF_OFFSET, TX_ID, TX_OP};
use super::topic::{TRANS_HALF_TOPIC, TRANS_OP_TOPIC};
use super::types::*;
use super::{now_ms, validate_group_name, Broker};
use crate::store::NewMessage;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    Pending,
    Ending,
    Committed,
    RolledBack,
    Discarded,
}

#[derive(Debug, Clone)]
struct TxEntry {
    msg_id: String,
    /// The topic the message is published to once committed.
    topic: String,
    half_offset: u64,
    producer_group: String,
    created_ms: u64,
    check_times: u32,
    last_check_ms: u64,
    state: TxState,
    /// When it reached a final state (committed, rolled back, discarded), epoch ms.
    ended_ms: u64,
}

/// Most ended transactions remembered, to answer `conflict` to a second end.
pub const MAX_ENDED_TRANSACTIONS: usize = 1_000;

/// Where a half message is and what it is for.
pub(crate) struct HalfInfo<'a> {
    pub(crate) msg_id: &'a str,
    pub(crate) topic: &'a str,
    pub(crate) offset: u64,
    pub(crate) created_ms: u64,
}

/// Transaction id → its half message and state.
#[derive(Debug, Default)]
pub(crate) struct TransactionTable {
    inner: Mutex<HashMap<String, TxEntry>>,
}

impl TransactionTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TxEntry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add_half(&self, tx: &str, half: HalfInfo<'_>, group: Option<String>) {
        self.lock().insert(
            tx.to_string(),
            TxEntry {
                msg_id: half.msg_id.to_string(),
                topic: half.topic.to_string(),
                half_offset: half.offset,
                producer_group: group.unwrap_or_default(),
                created_ms: half.created_ms,
                check_times: 0,
                last_check_ms: 0,
                state: TxState::Pending,
                ended_ms: 0,
            },
        );
    }

    /// Forgets the oldest ended transactions beyond [`MAX_ENDED_TRANSACTIONS`] (ending one of
    /// those again answers `not found` instead of `conflict`). Pending ones are all kept.
    pub(crate) fn compact(&self) {
        let mut table = self.lock();
        let mut ended: Vec<(u64, String)> = table
            .iter()
            .filter(|(_, e)| matches!(e.state, TxState::Committed | TxState::RolledBack | TxState::Discarded))
            .map(|(k, e)| (e.ended_ms, k.clone()))
            .collect();
        if ended.len() <= MAX_ENDED_TRANSACTIONS {
            return;
        }
        ended.sort_unstable();
        let excess = ended.len() - MAX_ENDED_TRANSACTIONS;
        for (_, tx) in ended.into_iter().take(excess) {
            table.remove(&tx);
        }
    }

    /// Transactions remembered (pending and recently ended).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn is_pending(&self, tx: &str) -> bool {
        self.lock().get(tx).is_some_and(|e| matches!(e.state, TxState::Pending | TxState::Ending))
    }
}

fn op_record(tx: &str, entry: &TxEntry, op: &str) -> NewMessage {
    let mut properties = BTreeMap::new();
    properties.insert(TX_ID.to_string(), tx.to_string());
    properties.insert(TX_OP.to_string(), op.to_string());
    properties.insert(TX_HALF_OFFSET.to_string(), entry.half_offset.to_string());
    NewMessage {
        topic: TRANS_OP_TOPIC.into(),
        queue_id: 0,
        msg_id: entry.msg_id.clone(),
        properties,
        born_ts: now_ms(),
        ..NewMessage::default()
    }
}

impl Broker {
    /// Rebuilds the transaction table from the half and op topics.
    pub(crate) async fn rebuild_transactions(self: Arc<Self>) -> Result<()> {
        let this = self.clone();
        // One record at a time, keeping only what the table needs: never every half message
        // (with its body) in memory at once.
        self.blocking(move |s| {
            let each = |topic: &str, f: &mut dyn FnMut(crate::store::StoredMessage)| -> Result<()> {
                let (min, max) = s.queue_bounds(topic, 0);
                let mut pos = min;
                while pos < max {
                    let units = s.read_queue(topic, 0, pos, 1024)?;
                    let Some(last) = units.last().map(|u| u.queue_offset) else { break };
                    for u in units {
                        f(s.read(u.commit_offset)?);
                    }
                    pos = last + 1;
                }
                Ok(())
            };
            each(TRANS_HALF_TOPIC, &mut |h| {
                if let Some(tx) = h.properties.get(TX_ID) {
                    let topic = h.properties.get(REAL_TOPIC).map(String::as_str).unwrap_or_default();
                    let half = HalfInfo { msg_id: &h.msg_id, topic, offset: h.commit_offset, created_ms: h.store_ts };
                    this.transactions.add_half(tx, half, h.properties.get(PRODUCER_GROUP).cloned());
                }
            })?;
            each(TRANS_OP_TOPIC, &mut |op| {
                let (Some(tx), Some(kind)) = (op.properties.get(TX_ID), op.properties.get(TX_OP)) else { return };
                let mut table = this.transactions.lock();
                let Some(entry) = table.get_mut(tx) else { return };
                match kind.as_str() {
                    "commit" | "rollback" | "discard" => {
                        entry.state = match kind.as_str() {
                            "commit" => TxState::Committed,
                            "rollback" => TxState::RolledBack,
                            _ => TxState::Discarded,
                        };
                        entry.ended_ms = op.store_ts;
                    }
                    "check" => {
                        entry.check_times += 1;
                        entry.last_check_ms = op.store_ts;
                    }
                    _ => {}
                }
            })?;
            this.transactions.compact();
            Ok(())
        })
        .await
    }

    /// Ends a transaction: commit makes its message visible in its topic (exactly once),
    /// rollback discards it. `NotFound` for an unknown id, `Conflict` when it has ended already.
    pub async fn end_transaction(
        &self,
        transaction_id: &str,
        resolution: TransactionResolution,
    ) -> Result<TransactionOutcome> {
        let (op, status) = match resolution {
            TransactionResolution::Commit => ("commit", TransactionStatus::Committed),
            TransactionResolution::Rollback => ("rollback", TransactionStatus::RolledBack),
            TransactionResolution::Unknown => {
                return Err(Error::invalid("/status", "only commit or rollback end a transaction"));
            }
        };
        let entry = {
            let mut table = self.transactions.lock();
            let entry = table.get_mut(transaction_id).ok_or_else(|| Error::not_found("transaction", transaction_id))?;
            if entry.state != TxState::Pending {
                return Err(Error::Conflict(format!("transaction {transaction_id:?} has already ended")));
            }
            entry.state = TxState::Ending;
            entry.clone()
        };
        let result = self.write_end(transaction_id, &entry, op).await;
        let mut table = self.transactions.lock();
        if let Some(e) = table.get_mut(transaction_id) {
            e.state = match (&result, status) {
                (Err(_), _) => TxState::Pending,
                (Ok(()), TransactionStatus::Committed) => TxState::Committed,
                (Ok(()), TransactionStatus::RolledBack) => TxState::RolledBack,
            };
            e.ended_ms = now_ms();
        }
        result?;
        Ok(TransactionOutcome { transaction_id: transaction_id.to_string(), msg_id: entry.msg_id, status })
    }

    /// Appends the op record, and for a commit the real message with it, in one atomic batch.
    async fn write_end(&self, tx: &str, entry: &TxEntry, op: &str) -> Result<()> {
        let mut records = Vec::new();
        if op == "commit" {
            let offset = entry.half_offset;
            let half = self.blocking(move |s| s.read(offset)).await?;
            let real = half.properties.get(REAL_TOPIC).cloned().unwrap_or_default();
            let due = half.properties.get(DELIVER_AT).and_then(|v| v.parse::<u64>().ok());
            let mut properties = half.properties.clone();
            for p in [REAL_TOPIC, TX_ID, PRODUCER_GROUP, DELIVER_AT] {
                properties.remove(p);
            }
            let mut copy = NewMessage {
                topic: real.clone(),
                queue_id: 0,
                msg_id: half.msg_id.clone(),
                tag: half.tag.clone(),
                keys: half.keys.clone(),
                properties,
                body: half.body.clone(),
                flags: 0,
                born_ts: half.born_ts,
                reconsume_times: 0,
            };
            // Half messages written before their topic was deleted belong to the deleted one,
            // also when a topic of that name exists again.
            let deleted_since = self.dropped.hides(&real, offset);
            match (due, self.topics.get(&real).filter(|_| !deleted_since)) {
                (_, None) => tracing::warn!(topic = %real, tx, "committed transaction for a deleted topic dropped"),
                (Some(at), Some(_)) if at > now_ms() => {
                    self.schedule_record(&mut copy, Delay::At(at), now_ms(), &real);
                    records.push(copy);
                }
                (_, Some(topic)) => {
                    copy.queue_id =
                        self.select_queue(&topic, copy.properties.get(props::SHARDING_KEY).map(String::as_str));
                    records.push(copy);
                }
            }
        }
        records.push(op_record(tx, entry, op));
        self.append_and_dispatch(records).await.map(|_| ())
    }

    /// The topic a transaction's message is published to, if the transaction is known: who
    /// ends a transaction needs the right to publish there.
    pub fn transaction_topic(&self, transaction_id: &str) -> Option<String> {
        self.transactions.lock().get(transaction_id).map(|e| e.topic.clone())
    }

    /// Subscribes to check-backs: the gateway and embedded clients route each to a producer of
    /// its group and end the transaction with the answer.
    pub fn transaction_checks(&self) -> tokio::sync::broadcast::Receiver<TransactionCheck> {
        self.checks.subscribe()
    }

    /// Counts checks that reached no producer: the gateway reports the ones its router missed
    /// by falling behind the channel (the broker asks again at the next interval).
    pub fn note_lost_checks(&self, n: u64) {
        self.counters.checks_lost.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Registers the URL the broker POSTs check-backs of `group` to (kept across restarts).
    pub fn register_check_url(&self, group: &str, url: &str) -> Result<()> {
        validate_group_name(group)?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::invalid("/check_url", "must be an http:// or https:// URL"));
        }
        let mut urls = self.check_urls.lock().unwrap_or_else(|e| e.into_inner());
        urls.insert(group.to_string(), url.to_string());
        self.check_url_file.save(&*urls)
    }

    /// The check-back URL of a producer group, if one is registered.
    pub fn check_url(&self, group: &str) -> Option<String> {
        self.check_urls.lock().unwrap_or_else(|e| e.into_inner()).get(group).cloned()
    }

    /// The check-back service.
    pub(crate) async fn run_transaction_checks(self: Arc<Self>) {
        let mut stop = self.shutdown_signal();
        let tick = self
            .config
            .transaction_check_interval
            .min(self.config.transaction_timeout)
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            if let Err(e) = self.check_round().await {
                tracing::error!(error = %e, "transaction check round failed");
            }
        }
    }

    async fn check_round(&self) -> Result<()> {
        self.transactions.compact();
        let now = now_ms();
        let timeout = self.config.transaction_timeout.as_millis() as u64;
        let interval = self.config.transaction_check_interval.as_millis() as u64;
        let due: Vec<(String, TxEntry)> = self
            .transactions
            .lock()
            .iter()
            .filter(|(_, e)| {
                e.state == TxState::Pending
                    && now.saturating_sub(e.created_ms) >= timeout
                    && (e.check_times == 0 || now.saturating_sub(e.last_check_ms) >= interval)
            })
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        // Decide under the table's lock (a transaction ended meanwhile is left alone), then
        // record every check and discard of the round in one append.
        let mut discards = Vec::new();
        let mut checks = Vec::new();
        {
            let mut table = self.transactions.lock();
            for (tx, _) in due {
                let Some(e) = table.get_mut(&tx) else { continue };
                if e.state != TxState::Pending {
                    continue;
                }
                if e.check_times >= self.config.transaction_check_max {
                    e.state = TxState::Discarded;
                    e.ended_ms = now_ms();
                    discards.push((tx, e.clone()));
                } else {
                    e.check_times += 1;
                    e.last_check_ms = now;
                    checks.push((tx, e.clone()));
                }
            }
        }
        if discards.is_empty() && checks.is_empty() {
            return Ok(());
        }
        let records = discards
            .iter()
            .map(|(tx, e)| op_record(tx, e, "discard"))
            .chain(checks.iter().map(|(tx, e)| op_record(tx, e, "check")))
            .collect();
        if let Err(err) = self.append_and_dispatch(records).await {
            // Not recorded: as if this round had not happened.
            let mut table = self.transactions.lock();
            for (tx, _) in &discards {
                if let Some(e) = table.get_mut(tx) {
                    e.state = TxState::Pending;
                }
            }
            for (tx, _) in &checks {
                if let Some(e) = table.get_mut(tx) {
                    e.check_times = e.check_times.saturating_sub(1);
                }
            }
            return Err(err);
        }
        for (tx, _) in &discards {
            self.counters.transactions_discarded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(transaction_id = %tx, "half message discarded after its last check-back");
        }
        for (tx, entry) in checks {
            let offset = entry.half_offset;
            let half = self.blocking(move |s| s.read(offset)).await?;
            let check = TransactionCheck {
                transaction_id: tx,
                msg_id: entry.msg_id.clone(),
                producer_group: entry.producer_group.clone(),
                check_times: entry.check_times,
                message: props::to_message(half, MessageState::Half),
            };
            if self.checks.send(check).is_err() {
                self.note_lost_checks(1);
            }
        }
        Ok(())
    }
}
