//! The on-disk record format of the commit log.
//!
//! All integers are little-endian. A message record:
//!
//! ```text
//! off len field
//!   0   4 total_len        whole record, this field included
//!   4   4 magic            MAGIC_MESSAGE
//!   8   4 crc              CRC32 (crc32fast, IEEE) over bytes [56, total_len) followed by
//!                          bytes [12, 56): every field after the CRC, so offsets, timestamps
//!                          and strings are protected, not only the body. The variable part
//!                          comes first so it is checksummed before the append lock is taken;
//!                          under the lock only the 44 bytes of assigned fields are added.
//!  12   4 queue_id
//!  16   8 queue_offset
//!  24   8 commit_offset    the record's own position; recovery checks it
//!  32   4 flags            bit 31 = FLAG_BATCH_CONTINUES
//!  36   8 born_ts
//!  44   8 store_ts
//!  52   4 reconsume_times
//!  56   2 msg_id len, msg_id
//!       1 topic len, topic
//!       1 has tag (0/1), 2 tag len, tag
//!       2 key count, then per key: 2 len, key
//!       2 property count, then per property: 2 name len, name, 4 value len, value
//!       4 body len, body
//! ```
//!
//! A region that recovery quarantined (`repair`) becomes a hole: `total_len` = the region's
//! length, magic `MAGIC_HOLE`, a CRC32 of bytes `[0, 8)` and `[12, 24)`, four zero bytes, the
//! hole's own commit offset (u64), zeros to the end. Readers and the dispatcher step over it.
//!
//! A record never spans segments. When one does not fit, the rest of the segment becomes an
//! end-of-segment filler: `total_len` = bytes to the segment end, magic `MAGIC_BLANK`, zeros,
//! and in the last [`TRAILER_LEN`] bytes a trailer (`MAGIC_TRAILER`, CRC of the timestamp, the
//! segment's last store timestamp) that retention reads without scanning the segment. A record
//! is accepted only if it leaves at least [`FILLER_RESERVE`] bytes, so the filler always fits.

use std::collections::BTreeMap;

use super::message::{NewMessage, StoredMessage, FLAG_BATCH_CONTINUES};
use crate::{Error, Result};

/// Magic of a message record.
pub(crate) const MAGIC_MESSAGE: u32 = 0xFE77_0001;
/// Magic of an end-of-segment filler.
pub(crate) const MAGIC_BLANK: u32 = 0xFE77_00EE;
/// Magic of a hole left where recovery quarantined damaged bytes.
pub(crate) const MAGIC_HOLE: u32 = 0xFE77_0D0D;
/// Length of a hole's header (the smallest hole).
pub(crate) const HOLE_HEADER_LEN: usize = 24;
/// Magic of the segment trailer inside the filler.
const MAGIC_TRAILER: u32 = 0xFE77_7A11;
/// Length of the fixed part of a message record.
pub(crate) const HEADER_LEN: usize = 56;
/// Bytes a segment must keep free after every record for the filler.
pub(crate) const FILLER_RESERVE: u64 = 32;
/// Length of the trailer at the end of a sealed segment.
pub(crate) const TRAILER_LEN: usize = 16;
/// Smallest possible message record: empty strings, no keys or properties, empty body.
pub(crate) const MIN_RECORD_LEN: usize = HEADER_LEN + 2 + 1 + 1 + 2 + 2 + 2 + 4;

/// A record encoded and checksummed outside the append lock, except for the fixed fields the
/// appender assigns ([`EncodedTail::finish`] fills them in).
pub(crate) struct EncodedTail {
    /// The whole record; the first `HEADER_LEN` bytes are filled in by `finish`.
    bytes: Vec<u8>,
    /// CRC state over `bytes[HEADER_LEN..]`, continued with the fixed fields under the lock.
    pub(crate) crc: crc32fast::Hasher,
    /// Queue id of the message.
    pub(crate) queue_id: u32,
    /// Flags as given (bit 31 is set or cleared by the appender).
    pub(crate) flags: u32,
    /// Producer timestamp.
    pub(crate) born_ts: u64,
    /// Reconsume count.
    pub(crate) reconsume_times: u32,
    /// Topic (the appender assigns queue offsets per topic and queue).
    pub(crate) topic: String,
}

impl EncodedTail {
    /// Total record length.
    pub(crate) fn record_len(&self) -> usize {
        self.bytes.len()
    }

    /// Fills in the fixed fields and the CRC and returns the complete record.
    pub(crate) fn finish(&mut self, p: Placement) -> &[u8] {
        let total = self.bytes.len();
        let flags = if p.batch_continues { self.flags | FLAG_BATCH_CONTINUES } else { self.flags };
        let h = &mut self.bytes[..HEADER_LEN];
        h[0..4].copy_from_slice(&(total as u32).to_le_bytes());
        h[4..8].copy_from_slice(&MAGIC_MESSAGE.to_le_bytes());
        h[12..16].copy_from_slice(&self.queue_id.to_le_bytes());
        h[16..24].copy_from_slice(&p.queue_offset.to_le_bytes());
        h[24..32].copy_from_slice(&p.commit_offset.to_le_bytes());
        h[32..36].copy_from_slice(&flags.to_le_bytes());
        h[36..44].copy_from_slice(&self.born_ts.to_le_bytes());
        h[44..52].copy_from_slice(&p.store_ts.to_le_bytes());
        h[52..56].copy_from_slice(&self.reconsume_times.to_le_bytes());
        let mut crc = self.crc.clone();
        crc.update(&h[12..]);
        h[8..12].copy_from_slice(&crc.finalize().to_le_bytes());
        &self.bytes
    }
}

/// The fields assigned under the append lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Placement {
    /// Queue offset.
    pub(crate) queue_offset: u64,
    /// Commit offset.
    pub(crate) commit_offset: u64,
    /// Store timestamp.
    pub(crate) store_ts: u64,
    /// Whether more records of the same batch follow.
    pub(crate) batch_continues: bool,
}

/// Checks a message against the format's limits and the configured maximum body size.
pub(crate) fn validate(msg: &NewMessage, max_body: usize) -> Result<()> {
    validate_topic(&msg.topic)?;
    if msg.body.len() > max_body {
        return Err(Error::MessageTooLarge { size: msg.body.len(), max: max_body });
    }
    let u16max = usize::from(u16::MAX);
    if msg.msg_id.len() > u16max {
        return Err(Error::invalid("/msg_id", "longer than 65535 bytes"));
    }
    if msg.tag.as_ref().is_some_and(|t| t.len() > u16max) {
        return Err(Error::invalid("/tag", "longer than 65535 bytes"));
    }
    if msg.keys.len() > u16max {
        return Err(Error::invalid("/keys", "more than 65535 keys"));
    }
    if msg.keys.iter().any(|k| k.len() > u16max) {
        return Err(Error::invalid("/keys", "a key is longer than 65535 bytes"));
    }
    if msg.properties.len() > u16max {
        return Err(Error::invalid("/properties", "more than 65535 properties"));
    }
    if msg.properties.keys().any(|k| k.len() > u16max) {
        return Err(Error::invalid("/properties", "a property name is longer than 65535 bytes"));
    }
    if msg.properties.values().any(|v| v.len() > u32::MAX as usize / 2) {
        return Err(Error::invalid("/properties", "a property value is too long"));
    }
    Ok(())
}

/// A topic the store accepts: 1..=255 bytes, no `/`, no NUL, not `.` or `..` (it names a
/// directory).
pub(crate) fn validate_topic(topic: &str) -> Result<()> {
    if topic.is_empty() {
        return Err(Error::invalid("/topic", "must not be empty"));
    }
    if topic.len() > 255 {
        return Err(Error::invalid("/topic", "longer than 255 bytes"));
    }
    if topic.contains('/') || topic.contains('\0') || topic == "." || topic == ".." {
        return Err(Error::invalid("/topic", format!("{topic:?} contains '/' or NUL or is a relative path")));
    }
    Ok(())
}

/// Encodes the variable part of `msg` (call [`validate`] first).
pub(crate) fn encode_tail(msg: NewMessage) -> EncodedTail {
    let mut len = 2 + msg.msg_id.len() + 1 + msg.topic.len() + 1 + 2 + 2 + 2 + 4 + msg.body.len();
    len += msg.tag.as_ref().map_or(0, String::len);
    len += msg.keys.iter().map(|k| 2 + k.len()).sum::<usize>();
    len += msg.properties.iter().map(|(k, v)| 2 + k.len() + 4 + v.len()).sum::<usize>();
    let mut b = Vec::with_capacity(HEADER_LEN + len);
    b.resize(HEADER_LEN, 0);
    b.extend_from_slice(&(msg.msg_id.len() as u16).to_le_bytes());
    b.extend_from_slice(msg.msg_id.as_bytes());
    b.push(msg.topic.len() as u8);
    b.extend_from_slice(msg.topic.as_bytes());
    match &msg.tag {
        Some(tag) => {
            b.push(1);
            b.extend_from_slice(&(tag.len() as u16).to_le_bytes());
            b.extend_from_slice(tag.as_bytes());
        }
        None => {
            b.push(0);
            b.extend_from_slice(&0u16.to_le_bytes());
        }
    }
    b.extend_from_slice(&(msg.keys.len() as u16).to_le_bytes());
    for k in &msg.keys {
        b.extend_from_slice(&(k.len() as u16).to_le_bytes());
        b.extend_from_slice(k.as_bytes());
    }
    b.extend_from_slice(&(msg.properties.len() as u16).to_le_bytes());
    for (k, v) in &msg.properties {
        b.extend_from_slice(&(k.len() as u16).to_le_bytes());
        b.extend_from_slice(k.as_bytes());
        b.extend_from_slice(&(v.len() as u32).to_le_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b.extend_from_slice(&(msg.body.len() as u32).to_le_bytes());
    b.extend_from_slice(&msg.body);
    debug_assert_eq!(b.len(), HEADER_LEN + len);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b[HEADER_LEN..]);
    EncodedTail {
        bytes: b,
        crc,
        queue_id: msg.queue_id,
        flags: msg.flags & !FLAG_BATCH_CONTINUES,
        born_ts: msg.born_ts,
        reconsume_times: msg.reconsume_times,
        topic: msg.topic,
    }
}

/// Writes an end-of-segment filler with trailer into `dst` (from the record position to the
/// segment end; at least [`FILLER_RESERVE`] bytes).
pub(crate) fn write_filler(dst: &mut [u8], last_store_ts: u64) {
    let len = dst.len();
    debug_assert!(len >= FILLER_RESERVE as usize);
    dst.fill(0);
    dst[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    dst[4..8].copy_from_slice(&MAGIC_BLANK.to_le_bytes());
    let t = &mut dst[len - TRAILER_LEN..];
    t[0..4].copy_from_slice(&MAGIC_TRAILER.to_le_bytes());
    t[8..16].copy_from_slice(&last_store_ts.to_le_bytes());
    let crc = crc32fast::hash(&t[8..16]);
    t[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Turns `dst` (at least [`HOLE_HEADER_LEN`] bytes, starting at `commit_offset`) into a hole.
pub(crate) fn write_hole(dst: &mut [u8], commit_offset: u64) {
    let len = dst.len();
    debug_assert!(len >= HOLE_HEADER_LEN);
    dst.fill(0);
    dst[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    dst[4..8].copy_from_slice(&MAGIC_HOLE.to_le_bytes());
    dst[16..24].copy_from_slice(&commit_offset.to_le_bytes());
    let crc = hole_crc(&dst[..HOLE_HEADER_LEN]);
    dst[8..12].copy_from_slice(&crc.to_le_bytes());
}

fn hole_crc(h: &[u8]) -> u32 {
    let mut c = crc32fast::Hasher::new();
    c.update(&h[0..8]);
    c.update(&h[12..HOLE_HEADER_LEN]);
    c.finalize()
}

/// The length of the hole starting at `commit_offset` whose header starts `b`, if intact.
pub(crate) fn read_hole(b: &[u8], commit_offset: u64) -> Option<u32> {
    if b.len() < HOLE_HEADER_LEN {
        return None;
    }
    let (len, magic) = peek(b);
    let ok = magic == MAGIC_HOLE
        && len as usize >= HOLE_HEADER_LEN
        && u64_at(b, 16) == commit_offset
        && hole_crc(&b[..HOLE_HEADER_LEN]) == u32_at(b, 8);
    ok.then_some(len)
}

/// The last store timestamp from a sealed segment's trailer (its last [`TRAILER_LEN`] bytes),
/// if the trailer is intact.
pub(crate) fn read_trailer(t: &[u8]) -> Option<u64> {
    if t.len() != TRAILER_LEN || u32_at(t, 0) != MAGIC_TRAILER {
        return None;
    }
    (crc32fast::hash(&t[8..16]) == u32_at(t, 4)).then(|| u64_at(t, 8))
}

/// `(total_len, magic)` from the first 8 bytes of a record.
pub(crate) fn peek(b: &[u8]) -> (u32, u32) {
    (u32_at(b, 0), u32_at(b, 4))
}

/// A parsed record borrowing the log's bytes (no copies): what the dispatcher and recovery need.
#[derive(Debug)]
pub(crate) struct RecordView<'a> {
    /// Record length.
    pub(crate) size: u32,
    /// Queue id.
    pub(crate) queue_id: u32,
    /// Queue offset.
    pub(crate) queue_offset: u64,
    /// Commit offset written in the record.
    pub(crate) commit_offset: u64,
    /// Flags.
    pub(crate) flags: u32,
    /// Store timestamp.
    pub(crate) store_ts: u64,
    /// Unique id.
    pub(crate) msg_id: &'a str,
    /// Topic.
    pub(crate) topic: &'a str,
    /// Tag.
    pub(crate) tag: Option<&'a str>,
    keys: &'a [u8],
    key_count: u16,
    rest: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Iterates the keys.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut b = self.keys;
        (0..self.key_count).filter_map(move |_| {
            let mut c = Cursor { b, pos: 0 };
            let k = c.str16().ok()?;
            b = &b[c.pos..];
            Some(k)
        })
    }

    /// Whether more records of the same atomic batch follow.
    pub(crate) fn batch_continues(&self) -> bool {
        self.flags & FLAG_BATCH_CONTINUES != 0
    }
}

/// The CRC a message record must carry (see the module docs for the byte order).
pub(crate) fn record_crc(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&b[HEADER_LEN..]);
    h.update(&b[12..HEADER_LEN]);
    h.finalize()
}

/// Parses a whole message record. With `verify_crc`, also checks the CRC. Every length is
/// bounds-checked: garbage yields an error, never a panic.
pub(crate) fn parse(b: &[u8], verify_crc: bool) -> Result<RecordView<'_>, &'static str> {
    if b.len() < MIN_RECORD_LEN {
        return Err("shorter than the smallest record");
    }
    let (total, magic) = peek(b);
    if magic != MAGIC_MESSAGE {
        return Err("bad magic");
    }
    if total as usize != b.len() {
        return Err("length field does not match");
    }
    if verify_crc && record_crc(b) != u32_at(b, 8) {
        return Err("CRC mismatch");
    }
    let mut c = Cursor { b, pos: HEADER_LEN };
    let msg_id = c.str16()?;
    let topic_len = c.take(1)?[0] as usize;
    let topic = std::str::from_utf8(c.take(topic_len)?).map_err(|_| "topic is not UTF-8")?;
    if topic.is_empty() {
        return Err("empty topic");
    }
    let has_tag = c.take(1)?[0];
    let tag = c.str16()?;
    let tag = match has_tag {
        0 if tag.is_empty() => None,
        1 => Some(tag),
        _ => return Err("bad tag marker"),
    };
    let key_count = c.u16()?;
    let keys_start = c.pos;
    for _ in 0..key_count {
        c.str16()?;
    }
    let keys = &b[keys_start..c.pos];
    let rest_start = c.pos;
    let prop_count = c.u16()?;
    for _ in 0..prop_count {
        c.str16()?;
        let vl = c.u32()? as usize;
        std::str::from_utf8(c.take(vl)?).map_err(|_| "property value is not UTF-8")?;
    }
    let body_len = c.u32()? as usize;
    c.take(body_len)?;
    if c.pos != b.len() {
        return Err("trailing bytes after the body");
    }
    Ok(RecordView {
        size: total,
        queue_id: u32_at(b, 12),
        queue_offset: u64_at(b, 16),
        commit_offset: u64_at(b, 24),
        flags: u32_at(b, 32),
        store_ts: u64_at(b, 44),
        msg_id,
        topic,
        tag,
        keys,
        key_count,
        rest: &b[rest_start..],
    })
}

/// Decodes a whole record into an owned message, checking the CRC if `verify_crc`.
pub(crate) fn decode(b: &[u8], verify_crc: bool) -> Result<StoredMessage, &'static str> {
    let v = parse(b, verify_crc)?;
    let mut c = Cursor { b: v.rest, pos: 0 };
    let prop_count = c.u16()?;
    let mut properties = BTreeMap::new();
    for _ in 0..prop_count {
        let k = c.str16()?.to_string();
        let vl = c.u32()? as usize;
        let val = std::str::from_utf8(c.take(vl)?).map_err(|_| "property value is not UTF-8")?;
        properties.insert(k, val.to_string());
    }
    let body_len = c.u32()? as usize;
    let body = c.take(body_len)?.to_vec();
    Ok(StoredMessage {
        commit_offset: v.commit_offset,
        size: v.size,
        queue_id: v.queue_id,
        queue_offset: v.queue_offset,
        flags: v.flags,
        born_ts: u64_at(b, 36),
        store_ts: v.store_ts,
        reconsume_times: u32_at(b, 52),
        topic: v.topic.to_string(),
        msg_id: v.msg_id.to_string(),
        tag: v.tag.map(str::to_string),
        keys: v.keys().map(str::to_string).collect(),
        properties,
        body,
    })
}

/// Little-endian u32 at `at`; callers have checked the bounds.
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Little-endian u64 at `at`; callers have checked the bounds.
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.b.get(self.pos..end).ok_or("field runs past the record")?;
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32_at(self.take(4)?, 0))
    }
    fn str16(&mut self) -> Result<&'a str, &'static str> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| "string is not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(msg: NewMessage, p: Placement) -> Vec<u8> {
        let mut tail = encode_tail(msg);
        tail.finish(p).to_vec()
    }

    fn placement() -> Placement {
        Placement { queue_offset: 7, commit_offset: 4096, store_ts: 1_700_000_000_123, batch_continues: false }
    }

    fn arb_msg() -> impl Strategy<Value = NewMessage> {
        (
            "[a-zA-Z0-9_%-]{1,40}",
            any::<u32>(),
            "[ -~]{0,40}",
            proptest::option::of("\\PC{0,20}"),
            proptest::collection::vec("\\PC{0,20}", 0..4),
            proptest::collection::btree_map("[a-z]{1,8}", "\\PC{0,30}", 0..4),
            proptest::collection::vec(any::<u8>(), 0..2000),
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
        )
            .prop_map(|(topic, queue_id, msg_id, tag, keys, properties, body, flags, born_ts, rc)| {
                NewMessage { topic, queue_id, msg_id, tag, keys, properties, body, flags, born_ts, reconsume_times: rc }
            })
    }

    proptest! {
        #[test]
        fn round_trip(msg in arb_msg(), batch in any::<bool>()) {
            let p = Placement { batch_continues: batch, ..placement() };
            let buf = encode(msg.clone(), p);
            let back = decode(&buf, true).unwrap();
            prop_assert_eq!(back.size as usize, buf.len());
            prop_assert_eq!(back.commit_offset, p.commit_offset);
            prop_assert_eq!(back.queue_offset, p.queue_offset);
            prop_assert_eq!(back.store_ts, p.store_ts);
            prop_assert_eq!(back.queue_id, msg.queue_id);
            let want_flags = (msg.flags & !FLAG_BATCH_CONTINUES) | if batch { FLAG_BATCH_CONTINUES } else { 0 };
            prop_assert_eq!(back.flags, want_flags);
            prop_assert_eq!(back.born_ts, msg.born_ts);
            prop_assert_eq!(back.reconsume_times, msg.reconsume_times);
            prop_assert_eq!(&back.topic, &msg.topic);
            prop_assert_eq!(&back.msg_id, &msg.msg_id);
            prop_assert_eq!(&back.tag, &msg.tag);
            prop_assert_eq!(&back.keys, &msg.keys);
            prop_assert_eq!(&back.properties, &msg.properties);
            prop_assert_eq!(&back.body, &msg.body);
            let view = parse(&buf, true).unwrap();
            prop_assert_eq!(view.keys().collect::<Vec<_>>(), msg.keys.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert_eq!(view.batch_continues(), batch);
        }

        #[test]
        fn any_flipped_byte_is_detected(msg in arb_msg(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut buf = encode(msg, placement());
            let i = pos.index(buf.len());
            buf[i] ^= 1 << bit;
            prop_assert!(decode(&buf, true).is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes, true);
            let _ = parse(&bytes, false);
        }
    }

    #[test]
    fn filler_trailer_round_trip() {
        let mut seg = [0xAAu8; 100];
        write_filler(&mut seg[20..], 42);
        assert_eq!(peek(&seg[20..]), (80, MAGIC_BLANK));
        assert_eq!(read_trailer(&seg[100 - TRAILER_LEN..]), Some(42));
        seg[99] ^= 1;
        assert_eq!(read_trailer(&seg[100 - TRAILER_LEN..]), None);
    }

    #[test]
    fn bad_topics_are_rejected() {
        for t in ["", ".", "..", "a/b", "a\0b", &"x".repeat(256)] {
            assert!(matches!(validate_topic(t), Err(Error::InvalidArgument { .. })), "{t:?}");
        }
        validate_topic("%RETRY%group").unwrap();
    }

    #[test]
    fn oversized_body_is_typed() {
        let msg = NewMessage { topic: "t".into(), body: vec![0; 11], ..Default::default() };
        assert!(matches!(validate(&msg, 10), Err(Error::MessageTooLarge { size: 11, max: 10 })));
    }

    #[test]
    fn smallest_record_has_min_len() {
        let msg = NewMessage { topic: "t".into(), ..Default::default() };
        assert_eq!(encode(msg, placement()).len(), MIN_RECORD_LEN + 1);
    }
}
