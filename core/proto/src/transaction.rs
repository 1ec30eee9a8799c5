//! Transactions, producers (check-back URLs), WebSocket tickets and health.

use serde::{Deserialize, Serialize};

use crate::message::MessageOut;

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransactionStatusOut {
    /// Made visible.
    Committed,
    /// Discarded.
    RolledBack,
}

/// The outcome of ending a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransactionOut {
    /// Transaction id.
    pub transaction_id: String,
    /// Message id.
    pub msg_id: String,
    /// `committed` or `rolled_back`.
    pub status: TransactionStatusOut,
}

/// Registers a producer group's check-back URL.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProducerBody {
    /// `http://` URL the broker POSTs check-backs to.
    pub check_url: String,
}

/// A producer group's registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProducerOut {
    /// Producer group.
    pub group: String,
    /// Its check-back URL.
    pub check_url: String,
}

/// What the broker POSTs to a check URL.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckRequest {
    /// Transaction id.
    pub transaction_id: String,
    /// Message id.
    pub msg_id: String,
    /// Producer group asked.
    pub producer_group: String,
    /// 1 for the first check.
    pub check_times: u32,
    /// The half message.
    pub message: MessageOut,
}

/// What a check URL answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckAnswer {
    /// `commit`, `rollback` or `unknown`.
    pub status: String,
}

/// A single-use WebSocket ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketOut {
    /// Pass as `?ticket=` to `/v1/ws`.
    pub ticket: String,
    /// Expiry, epoch ms.
    pub expires_at: u64,
}

/// Health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthOut {
    /// `ok`.
    pub status: String,
}
