//! Stable hashes written to disk: the tag hash of consume queue units and the key hash of the
//! index. Both are FNV-1a 64, which is simple, stable across versions and platforms, and good
//! enough for short strings; every index hit is verified against the record anyway.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 over the concatenation of `parts`.
pub(crate) fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h = FNV_OFFSET;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    }
    h
}

/// Stable 64-bit hash of a tag as stored in consume queue units: FNV-1a 64 of the tag's UTF-8
/// bytes (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`). Messages without a tag
/// store 0. The broker's tag filter uses it as a prefilter and confirms against the record.
pub fn tag_hash(tag: &str) -> u64 {
    fnv1a64(&[tag.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_vectors() {
        assert_eq!(tag_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(tag_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(tag_hash("foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64(&[b"foo", b"bar"]), tag_hash("foobar"));
    }
}
