//! A set of queue offsets kept as disjoint half-open ranges: the offsets a group finished
//! above its committed offset. Acks arrive mostly in order, so the set is a few ranges with
//! the holes of what is still in flight between them: its size follows the holes, not the
//! number of offsets (a group consuming ten million messages past one long lease holds one
//! range).

use std::collections::BTreeMap;

/// Disjoint, non-adjacent `[start, end)` ranges, keyed by start.
#[derive(Debug, Default, Clone)]
pub(crate) struct OffsetRanges {
    ranges: BTreeMap<u64, u64>,
}

impl OffsetRanges {
    /// Adds `offset`, merging with the ranges it touches.
    pub(crate) fn insert(&mut self, offset: u64) {
        if self.contains(offset) {
            return;
        }
        let (mut start, mut end) = (offset, offset + 1);
        // A range ending exactly at `offset` grows by one.
        if let Some((&s, &e)) = self.ranges.range(..offset).next_back() {
            if e == offset {
                start = s;
                self.ranges.remove(&s);
            }
        }
        // A range starting right after `offset` joins.
        if let Some(e) = self.ranges.remove(&end) {
            end = e;
        }
        self.ranges.insert(start, end);
    }

    /// Whether `offset` is in the set.
    pub(crate) fn contains(&self, offset: u64) -> bool {
        self.ranges.range(..=offset).next_back().is_some_and(|(_, &e)| offset < e)
    }

    /// If a range starts at `from`, removes it and returns its end: the offset a contiguous
    /// run from `from` reaches. Otherwise `from`.
    pub(crate) fn take_run_from(&mut self, from: u64) -> u64 {
        self.ranges.remove(&from).unwrap_or(from)
    }

    /// Drops every offset below `min`.
    pub(crate) fn retain_from(&mut self, min: u64) {
        let mut above = self.ranges.split_off(&min);
        if let Some((_, &e)) = self.ranges.iter().next_back() {
            if e > min {
                above.insert(min, e);
            }
        }
        self.ranges = above;
    }

    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Number of ranges held (what the set costs in memory).
    pub(crate) fn ranges(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn runs_merge_and_are_taken_from_the_start() {
        let mut r = OffsetRanges::default();
        for o in [5, 7, 6, 9, 3] {
            r.insert(o);
        }
        assert_eq!(r.ranges(), 3); // [3,4) [5,8) [9,10)
        assert!(r.contains(6) && !r.contains(8) && !r.contains(4));
        assert_eq!(r.take_run_from(4), 4);
        r.insert(4);
        assert_eq!(r.ranges(), 2); // [3,8) [9,10)
        assert_eq!(r.take_run_from(3), 8);
        r.retain_from(9);
        assert_eq!(r.ranges(), 1);
        r.insert(20);
        r.retain_from(21);
        assert_eq!(r.ranges(), 0);
    }

    proptest! {
        /// The same answers as a plain set of offsets.
        #[test]
        fn behaves_like_a_set(ops in proptest::collection::vec((0u8..4, 0u64..64), 1..200)) {
            let (mut r, mut s) = (OffsetRanges::default(), BTreeSet::new());
            for (op, o) in ops {
                match op {
                    0 | 1 => { r.insert(o); s.insert(o); }
                    2 => {
                        // As the queue state calls it: from at or below every offset held.
                        let from = s.iter().next().map_or(o, |m| o.min(*m));
                        let mut end = from;
                        while s.remove(&end) { end += 1; }
                        prop_assert_eq!(r.take_run_from(from), end);
                    }
                    _ => { r.retain_from(o); s.retain(|x| *x >= o); }
                }
                for x in 0..70 {
                    prop_assert_eq!(r.contains(x), s.contains(&x), "offset {}", x);
                }
            }
        }
    }
}
