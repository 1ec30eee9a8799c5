//! Receipt handles: opaque strings naming one delivery of one message to one group.
//!
//! Form: `r1.<owner hex>.<topic hex>.<queue>.<offset>.<nonce hex>.<crc32 hex>`, where the CRC
//! covers everything before it. Anything else is unparseable (a `400`); a well-formed receipt
//! the broker does not hold is `unknown`.

use crate::{Error, Result};

/// What a receipt names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Receipt {
    /// Whose consumption state: the group, or `group` + NUL + client id in broadcasting.
    pub(crate) owner: String,
    /// The store topic the message sits in (its topic, or the group's retry topic).
    pub(crate) topic: String,
    pub(crate) queue_id: u32,
    pub(crate) offset: u64,
    /// Distinguishes this delivery from earlier and later ones of the same message.
    pub(crate) nonce: u64,
}

/// Hex digits of receipts.
const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
/// Hex digits of message ids.
pub(crate) const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `bytes` as two `digits` each, high nibble first.
pub(crate) fn push_hex_with(out: &mut String, bytes: &[u8], digits: &[u8; 16]) {
    out.reserve(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 0xf)]));
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    push_hex_with(out, bytes, LOWER_HEX);
}

fn unhex(s: &str) -> Option<String> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    // Sized once: collecting through `Option` cannot know the length and grew the vector.
    let mut bytes = Vec::with_capacity(s.len() / 2);
    for p in pairs {
        bytes.push(nibble(p[0])? << 4 | nibble(p[1])?);
    }
    String::from_utf8(bytes).ok()
}

/// What every receipt of one queue for one owner starts with (`r1.<owner hex>.<topic
/// hex>.<queue>.`) and the CRC state after it: a receive encodes it once per queue and then
/// only the offset, nonce and CRC per message.
#[derive(Clone, Debug)]
pub(crate) struct ReceiptPrefix {
    text: String,
    crc: crc32fast::Hasher,
}

impl ReceiptPrefix {
    pub(crate) fn new(owner: &str, topic: &str, queue_id: u32) -> ReceiptPrefix {
        let mut text = String::with_capacity(16 + 2 * (owner.len() + topic.len()));
        text.push_str("r1.");
        push_hex(&mut text, owner.as_bytes());
        text.push('.');
        push_hex(&mut text, topic.as_bytes());
        text.push('.');
        text.push_str(itoa::Buffer::new().format(queue_id));
        text.push('.');
        let mut crc = crc32fast::Hasher::new();
        crc.update(text.as_bytes());
        ReceiptPrefix { text, crc }
    }

    /// The receipt of the delivery with `nonce` of the message at `offset`.
    pub(crate) fn receipt(&self, offset: u64, nonce: u64) -> String {
        let mut out = String::with_capacity(self.text.len() + 20 + 1 + 16 + 1 + 8);
        out.push_str(&self.text);
        let tail = out.len();
        out.push_str(itoa::Buffer::new().format(offset));
        out.push('.');
        push_hex(&mut out, &nonce.to_be_bytes());
        let mut crc = self.crc.clone();
        crc.update(&out.as_bytes()[tail..]);
        out.push('.');
        push_hex(&mut out, &crc.finalize().to_be_bytes());
        out
    }
}

impl Receipt {
    pub(crate) fn encode(&self) -> String {
        ReceiptPrefix::new(&self.owner, &self.topic, self.queue_id).receipt(self.offset, self.nonce)
    }

    pub(crate) fn parse(s: &str) -> Result<Receipt> {
        let bad = || Error::invalid("/receipt", format!("{s:?} is not a receipt issued by this broker"));
        let (body, crc) = s.rsplit_once('.').ok_or_else(bad)?;
        if crc.len() != 8 || u32::from_str_radix(crc, 16).ok() != Some(crc32fast::hash(body.as_bytes())) {
            return Err(bad());
        }
        let mut parts = body.split('.');
        let mut next = || parts.next().ok_or_else(bad);
        let (version, owner, topic, queue, offset, nonce) = (next()?, next()?, next()?, next()?, next()?, next()?);
        if version != "r1" || parts.next().is_some() {
            return Err(bad());
        }
        Ok(Receipt {
            owner: unhex(owner).ok_or_else(bad)?,
            topic: unhex(topic).ok_or_else(bad)?,
            queue_id: queue.parse().map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
            nonce: u64::from_str_radix(nonce, 16).map_err(|_| bad())?,
        })
    }

    /// The group part of the owner.
    pub(crate) fn group(&self) -> &str {
        self.owner.split('\0').next().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_tampering() {
        let r = Receipt { owner: "g\0c".into(), topic: "%RETRY%g".into(), queue_id: 3, offset: 42, nonce: 7 };
        let s = r.encode();
        // The form is fixed: receipts handed out before an upgrade stay valid after it.
        assert_eq!(s, "r1.670063.2552455452592567.3.42.0000000000000007.51d46471");
        assert_eq!(Receipt::parse(&s).expect("parses"), r);
        assert_eq!(r.group(), "g");
        let mut tampered = s.clone().into_bytes();
        tampered[5] = if tampered[5] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(matches!(Receipt::parse(&tampered), Err(Error::InvalidArgument { .. })));
        // Well-formed but for one part too many.
        let long = format!("{}.9", &s[..s.len() - 9]);
        let extra = format!("{long}.{:08x}", crc32fast::hash(long.as_bytes()));
        for bad in ["", "x", "r1.....", "not-a-receipt", &s[..s.len() - 1], &extra] {
            assert!(matches!(Receipt::parse(bad), Err(Error::InvalidArgument { .. })), "{bad:?}");
        }
    }
}
