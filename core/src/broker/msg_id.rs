//! Message ids: unique, sortable by creation, and stable for a message's whole life.
//!
//! An id is 32 hex digits: 48 bits of epoch milliseconds, 16 bits of a per-process random
//! prefix mixed with the broker name, and 64 bits of a counter seeded randomly at start-up. The
//! counter makes ids from one process unique; the random parts keep two processes (or one broker
//! restarted within the same millisecond) apart.

use std::sync::atomic::{AtomicU64, Ordering};

/// Generates message and transaction ids.
#[derive(Debug)]
pub(crate) struct IdGen {
    prefix: u16,
    counter: AtomicU64,
}

impl IdGen {
    pub(crate) fn new(broker_name: &str) -> IdGen {
        let name_hash = crate::store::tag_hash(broker_name) as u16;
        IdGen { prefix: name_hash ^ rand::random::<u16>(), counter: AtomicU64::new(rand::random()) }
    }

    /// A fresh id.
    pub(crate) fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let ms = super::now_ms() & 0xFFFF_FFFF_FFFF;
        format!("{ms:012X}{:04X}{n:016X}", self.prefix)
    }
}

/// Whether `s` has the shape of an id this broker issues.
pub(crate) fn is_well_formed(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let gen = IdGen::new("b");
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| gen.next()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| is_well_formed(id)));
    }
}
