//! Broker semantics on top of the store: topics, groups, offsets, filters, delay,
//! transactions, retry and dead letters, leases, long polling. Knows nothing of HTTP.

pub mod filter;
