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
        hex32(u128::from(ms) << 80 | u128::from(self.prefix) << 64 | u128::from(n))
    }
}

/// `v` as 32 upper-case hex digits (what `format!("{v:032X}")` writes, without the
/// formatting machinery: one id per published message).
fn hex32(v: u128) -> String {
    let mut out = String::with_capacity(32);
    super::receipt::push_hex_with(&mut out, &v.to_be_bytes(), super::receipt::UPPER_HEX);
    out
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

    #[test]
    fn ids_are_written_as_the_format_machinery_writes_them() {
        for v in [0u128, 1, 0xABCDEF, u128::MAX, u128::MAX / 3, 1 << 127] {
            assert_eq!(hex32(v), format!("{v:032X}"));
        }
        let gen = IdGen::new("b");
        let id = gen.next();
        let ms = u64::from_str_radix(&id[..12], 16).unwrap();
        assert!(ms.abs_diff(crate::broker::now_ms()) < 60_000, "{id}: the first 12 digits are the time");
        assert_eq!(u16::from_str_radix(&id[12..16], 16).unwrap(), gen.prefix);
    }
}
