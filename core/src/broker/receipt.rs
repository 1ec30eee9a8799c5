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

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
}

impl Receipt {
    pub(crate) fn encode(&self) -> String {
        let body = format!(
            "r1.{}.{}.{}.{}.{:016x}",
            hex(&self.owner),
            hex(&self.topic),
            self.queue_id,
            self.offset,
            self.nonce
        );
        let crc = crc32fast::hash(body.as_bytes());
        format!("{body}.{crc:08x}")
    }

    pub(crate) fn parse(s: &str) -> Result<Receipt> {
        let bad = || Error::invalid("/receipt", format!("{s:?} is not a receipt issued by this broker"));
        let (body, crc) = s.rsplit_once('.').ok_or_else(bad)?;
        if crc.len() != 8 || u32::from_str_radix(crc, 16).ok() != Some(crc32fast::hash(body.as_bytes())) {
            return Err(bad());
        }
        let parts: Vec<&str> = body.split('.').collect();
        let [version, owner, topic, queue, offset, nonce] = parts[..] else { return Err(bad()) };
        if version != "r1" {
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
        assert_eq!(Receipt::parse(&s).expect("parses"), r);
        assert_eq!(r.group(), "g");
        let mut tampered = s.clone().into_bytes();
        tampered[5] = if tampered[5] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(matches!(Receipt::parse(&tampered), Err(Error::InvalidArgument { .. })));
        for bad in ["", "x", "r1.....", "not-a-receipt", &s[..s.len() - 1]] {
            assert!(matches!(Receipt::parse(bad), Err(Error::InvalidArgument { .. })), "{bad:?}");
        }
    }
}
