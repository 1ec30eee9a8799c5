//! Transaction check-backs: the broker asks a producer group about half messages it has not
//! heard the end of. The gateway routes each check to a WebSocket connection that publishes for
//! that group (it answers with an `end_transaction` frame), or else POSTs it to the group's
//! registered `check_url` and ends the transaction with the answer. A failure, a timeout or
//! `unknown` leaves the transaction open for the broker's next check.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use ferrymq_core::broker::{TransactionCheck, TransactionResolution};
use tokio::sync::broadcast;

use crate::auth::{Action, Grants};
use crate::state::AppState;
use crate::wire::{CheckAnswer, CheckRequest, MessageOut};
use crate::ws::protocol::{CheckFrame, ServerFrame};
use crate::ws::Outbox;

/// One connection's outbox, keyed by its sequence number, with its token's grants.
type Producer = (u64, Grants, Outbox);

/// WebSocket connections that answer checks, by producer group.
#[derive(Debug, Default)]
pub struct ProducerRegistry {
    groups: Mutex<HashMap<String, Vec<Producer>>>,
}

impl ProducerRegistry {
    /// Connection `conn` answers checks of `group` (again: it moves to the front).
    /// Only checks of topics that `grants` may publish to reach it.
    pub fn register(&self, group: &str, conn: u64, grants: Grants, out: Outbox) {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let list = groups.entry(group.to_string()).or_default();
        list.retain(|(c, _, _)| *c != conn);
        list.push((conn, grants, out));
    }

    /// Connection `conn` closed.
    pub fn unregister(&self, conn: u64) {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups.retain(|_, list| {
            list.retain(|(c, _, _)| *c != conn);
            !list.is_empty()
        });
    }

    /// The most recently registered open connection of `group` whose token may publish to
    /// `topic` (the check shows it a message of that topic, and it could end the transaction).
    pub fn pick(&self, group: &str, topic: &str) -> Option<Outbox> {
        let groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups
            .get(group)?
            .iter()
            .rev()
            .find(|(_, grants, out)| !out.is_closed() && grants.allows(Action::Publish, Some(topic), None))
            .map(|(_, _, out)| out.clone())
    }
}

/// Starts the task that routes the broker's checks until shutdown. Needs a Tokio runtime;
/// without one (a state built outside any runtime) checks are not routed.
pub fn spawn_router(state: AppState) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no async runtime: transaction checks will not be routed");
        return;
    };
    let Some(broker) = state.opened_broker() else { return };
    let mut checks = broker.transaction_checks();
    let mut shutdown = state.shutdown_signal();
    runtime.spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                check = checks.recv() => match check {
                    Ok(check) => {
                        tokio::spawn(route(state.clone(), check));
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "transaction checks dropped; the broker will ask again");
                        broker.note_lost_checks(missed);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    });
}

/// Routes one check: WebSocket producer first, else the check URL.
async fn route(state: AppState, check: TransactionCheck) {
    if let Some(out) = state.producers().pick(&check.producer_group, &check.message.topic) {
        let frame = ServerFrame::Check(CheckFrame {
            transaction_id: check.transaction_id.clone(),
            msg_id: check.msg_id.clone(),
            producer_group: check.producer_group.clone(),
            check_times: check.check_times,
            message: check.message.clone().into(),
        });
        if out.send(frame).await.is_ok() {
            return;
        }
    }
    let Some(broker) = state.opened_broker() else { return };
    let Some(url) = broker.check_url(&check.producer_group) else {
        tracing::debug!(group = %check.producer_group, "no producer to ask about a transaction");
        return;
    };
    let resolution = ask_url(&state, &url, &check).await;
    if matches!(resolution, TransactionResolution::Commit | TransactionResolution::Rollback) {
        if let Err(err) = broker.end_transaction(&check.transaction_id, resolution).await {
            tracing::info!(transaction = %check.transaction_id, error = %err, "check answer not applied");
        }
    }
}

/// POSTs the check; anything but a `2xx` with a valid `{"status"}` in time is `Unknown`.
async fn ask_url(state: &AppState, url: &str, check: &TransactionCheck) -> TransactionResolution {
    let body = CheckRequest {
        transaction_id: check.transaction_id.clone(),
        msg_id: check.msg_id.clone(),
        producer_group: check.producer_group.clone(),
        check_times: check.check_times,
        message: MessageOut::from(check.message.clone()),
    };
    let response = match state.http().post(url).json(&body).send().await {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            tracing::info!(%url, status = %response.status(), "check URL refused the check");
            return TransactionResolution::Unknown;
        }
        Err(err) => {
            tracing::info!(%url, error = %err, "check URL unreachable");
            return TransactionResolution::Unknown;
        }
    };
    match response.json::<CheckAnswer>().await {
        Ok(answer) => TransactionResolution::parse(&answer.status).unwrap_or(TransactionResolution::Unknown),
        Err(err) => {
            tracing::info!(%url, error = %err, "check URL answered without a valid status");
            TransactionResolution::Unknown
        }
    }
}
