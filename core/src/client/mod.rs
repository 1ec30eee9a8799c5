//! The client: producer, consumers and rebalance strategies, behind a transport.

pub mod rebalance;
