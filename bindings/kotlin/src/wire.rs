//! The JNI fast path's per-message records in uniffi's serialization, with each body copied
//! whole.
//!
//! uniffi 0.32 lifts and lowers a `Vec<u8>` as a sequence of `u8`: one bounds check and one
//! push per byte. For a 1 KiB body that was the largest single cost the fast path had in a
//! profile of the Kotlin bench (`perf`: about a tenth of the process's samples while it sent
//! batches and drained a backlog, in `check_remaining` and `Vec<T>::try_read`). The bytes on
//! the wire are the same either way (an `i32` length, big-endian like every uniffi integer,
//! then the bytes), so the Kotlin side keeps reading and writing with the generated
//! converters; here the records that carry bodies (a delivered message, an outgoing one) are
//! written and read field by field, in declaration order, with uniffi's own impls for the
//! numbers and the outgoing message's other fields. A delivered message is written straight
//! from the client's borrowed `Message` (the conversion of `From<Message> for FfiMessage`,
//! without cloning the message first), when the client hands it over. The tests compare
//! both encodings byte for byte.

use std::collections::BTreeMap;

use ferrymq_core::client::Message;
use uniffi::{Lift, Lower};

use crate::consumer::FfiDelivered;
use crate::error::FfiError;
use crate::message::{signed, state_name, FfiOutgoing};
use crate::UniFfiTag;

fn malformed(e: impl std::fmt::Display) -> FfiError {
    FfiError::internal(format!("malformed arguments: {e}"))
}

fn put<T: Lower<UniFfiTag>>(value: T, buf: &mut Vec<u8>) {
    T::write(value, buf);
}

fn get<T: Lift<UniFfiTag>>(buf: &mut &[u8]) -> Result<T, FfiError> {
    T::try_read(buf).map_err(malformed)
}

/// A `Vec<u8>` as uniffi writes it, in one copy.
fn put_bytes(bytes: &[u8], buf: &mut Vec<u8>) {
    // Bodies are limited to megabytes (`max_message_bytes`); uniffi itself panics here too.
    let len = i32::try_from(bytes.len()).unwrap_or_else(|_| panic!("a body of {} bytes", bytes.len()));
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// A `Vec<u8>` as uniffi reads it, in one copy.
fn get_bytes(buf: &mut &[u8]) -> Result<Vec<u8>, FfiError> {
    let len: i32 = get(buf)?;
    let len = usize::try_from(len).map_err(|_| malformed(format!("a body of length {len}")))?;
    if buf.len() < len {
        return Err(malformed(format!("a body of {len} bytes with {} left", buf.len())));
    }
    let (bytes, rest) = buf.split_at(len);
    *buf = rest;
    Ok(bytes.to_vec())
}

/// A string as uniffi writes it (an `i32` byte length, then UTF-8), from a borrow.
fn put_str(s: &str, buf: &mut Vec<u8>) {
    put_bytes(s.as_bytes(), buf);
}

fn put_opt_str(s: Option<&str>, buf: &mut Vec<u8>) {
    match s {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            put_str(s, buf);
        }
    }
}

fn put_len(len: usize, buf: &mut Vec<u8>) {
    put(i32::try_from(len).unwrap_or(i32::MAX), buf);
}

/// An `FfiDelivered` of `message` under `id`, as uniffi writes it, from a borrow: the
/// message is not cloned, nor converted to an `FfiMessage` first (the same conversion as
/// `From<Message> for FfiMessage`; the properties, a map, in key order).
pub(crate) fn put_delivered(id: i64, message: &Message, buf: &mut Vec<u8>) {
    let Message {
        msg_id,
        topic,
        queue_id,
        queue_offset,
        commit_offset,
        body,
        tag,
        keys,
        properties,
        born_ts,
        store_ts,
        reconsume_times,
        receipt,
        state,
    } = message;
    put(id, buf);
    put_str(msg_id, buf);
    put_str(topic, buf);
    put(queue_id.map(|q| i32::try_from(q).unwrap_or(i32::MAX)), buf);
    put(queue_offset.map(signed), buf);
    put(commit_offset.map(signed), buf);
    put_bytes(body, buf);
    put_opt_str(tag.as_deref(), buf);
    put_len(keys.len(), buf);
    for key in keys {
        put_str(key, buf);
    }
    put_properties(properties, buf);
    put(signed(*born_ts), buf);
    put(signed(*store_ts), buf);
    put(i32::try_from(*reconsume_times).unwrap_or(i32::MAX), buf);
    put_opt_str(receipt.as_deref(), buf);
    put_str(state_name(*state), buf);
}

fn put_properties(properties: &BTreeMap<String, String>, buf: &mut Vec<u8>) {
    put_len(properties.len(), buf);
    for (key, value) in properties {
        put_str(key, buf);
        put_str(value, buf);
    }
}

/// A sequence of `FfiDelivered` from records each written by [`put_delivered`].
pub(crate) fn encode_taken(taken: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(4 + taken.iter().map(|(_, record)| record.len()).sum::<usize>());
    put_len(taken.len(), &mut buf);
    for (_, record) in taken {
        buf.extend_from_slice(record);
    }
    buf
}

/// The records of a sequence of `FfiDelivered` (as [`encode_taken`] wrote it) again, each
/// under its id, for the rare caller that gives them back: read with uniffi, written again.
pub(crate) fn decode_taken(bytes: &[u8]) -> Result<Vec<(i64, Vec<u8>)>, FfiError> {
    let delivered: Vec<FfiDelivered> = whole(bytes, get)?;
    Ok(delivered
        .into_iter()
        .map(|d| {
            let id = d.id;
            let mut record = Vec::new();
            put(d, &mut record);
            (id, record)
        })
        .collect())
}

/// An `FfiDelivered` from one record [`put_delivered`] wrote.
pub(crate) fn decode_delivered(record: &[u8]) -> Result<FfiDelivered, FfiError> {
    whole(record, get)
}

fn get_outgoing(buf: &mut &[u8]) -> Result<FfiOutgoing, FfiError> {
    // Fields are evaluated in the order written: declaration order.
    Ok(FfiOutgoing {
        body: get_bytes(buf)?,
        tag: get(buf)?,
        keys: get(buf)?,
        properties: get(buf)?,
        delay_level: get(buf)?,
        delay_ms: get(buf)?,
        deliver_at: get(buf)?,
        sharding_key: get(buf)?,
        idempotency_key: get(buf)?,
    })
}

fn whole<T>(bytes: &[u8], read: impl FnOnce(&mut &[u8]) -> Result<T, FfiError>) -> Result<T, FfiError> {
    let mut rest = bytes;
    let value = read(&mut rest)?;
    if !rest.is_empty() {
        return Err(FfiError::internal(format!("{} bytes left over after the arguments", rest.len())));
    }
    Ok(value)
}

/// An `FfiOutgoing` from uniffi's serialization, all of `bytes`.
pub(crate) fn decode_outgoing(bytes: &[u8]) -> Result<FfiOutgoing, FfiError> {
    whole(bytes, get_outgoing)
}

/// A sequence of `FfiOutgoing` from uniffi's serialization, all of `bytes`.
pub(crate) fn decode_outgoings(bytes: &[u8]) -> Result<Vec<FfiOutgoing>, FfiError> {
    whole(bytes, |buf| {
        let len: i32 = get(buf)?;
        let len = usize::try_from(len).map_err(|_| malformed(format!("a sequence of length {len}")))?;
        // Each record takes at least its body's length: no larger allocation than the input.
        let mut messages = Vec::with_capacity(len.min(buf.len() / 4));
        for _ in 0..len {
            messages.push(get_outgoing(buf)?);
        }
        Ok(messages)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::message::FfiMessage;

    fn uniffi_bytes<T: Lower<UniFfiTag>>(value: T) -> Vec<u8> {
        let mut buf = Vec::new();
        T::write(value, &mut buf);
        buf
    }

    fn outgoing(n: u8) -> FfiOutgoing {
        FfiOutgoing {
            body: vec![n; 300],
            tag: (n % 2 == 0).then(|| "t".to_string()),
            keys: vec![format!("k{n}")],
            properties: HashMap::from([("p".to_string(), "q".to_string())]),
            delay_level: Some(2),
            delay_ms: None,
            deliver_at: Some(9),
            sharding_key: Some("s".into()),
            idempotency_key: None,
        }
    }

    fn core_message(n: u8, properties: usize) -> Message {
        Message {
            msg_id: format!("id-{n}"),
            topic: "orders".into(),
            queue_id: Some(3),
            queue_offset: if n % 2 == 0 { Some(42) } else { None },
            commit_offset: Some(1 << 40),
            body: (0..=255).map(|b: u8| b.wrapping_add(n)).collect(),
            tag: (n % 2 == 1).then(|| "paid".to_string()),
            keys: vec!["k1".into(), "ключ".into()],
            properties: (0..properties).map(|i| (format!("p{i}"), format!("v{i}"))).collect(),
            born_ts: 1_700_000_000_000,
            store_ts: 5,
            reconsume_times: u32::from(n),
            receipt: (n == 2).then(|| "r".to_string()),
            state: ferrymq_core::broker::MessageState::Stored,
        }
    }

    #[test]
    fn a_borrowed_message_is_written_as_uniffi_writes_its_conversion() {
        for n in 0..4 {
            // One property at most for byte equality: uniffi writes a map in hash order.
            let m = core_message(n, usize::from(n % 2));
            let mut record = Vec::new();
            put_delivered(9, &m, &mut record);
            assert_eq!(record, uniffi_bytes(FfiDelivered { id: 9, message: m.clone().into() }));
            let taken = vec![(9, record.clone()), (10, record)];
            let decoded: Vec<FfiDelivered> = whole(&encode_taken(&taken), get).unwrap();
            assert_eq!(decoded.len(), 2);
            let first = decoded.into_iter().next().unwrap();
            assert_eq!(uniffi_bytes(first.message), uniffi_bytes(FfiMessage::from(m.clone())));
        }
        let m = core_message(1, 5);
        let mut record = Vec::new();
        put_delivered(3, &m, &mut record);
        let decoded = decode_delivered(&record).unwrap();
        assert_eq!(decoded.id, 3);
        assert_eq!(decoded.message.into_core(), m);
        let taken = vec![(3, record.clone())];
        assert_eq!(decode_taken(&encode_taken(&taken)).unwrap()[0].0, 3);
    }

    #[test]
    fn outgoing_messages_are_read_as_uniffi_reads_them() {
        let one = decode_outgoing(&uniffi_bytes(outgoing(1))).unwrap();
        assert_eq!(uniffi_bytes(one), uniffi_bytes(outgoing(1)));
        let batch: Vec<FfiOutgoing> = (0..4).map(outgoing).collect();
        let read = decode_outgoings(&uniffi_bytes(batch.clone())).unwrap();
        assert_eq!(uniffi_bytes(read), uniffi_bytes(batch));
    }

    #[test]
    fn short_or_long_input_is_an_error_not_a_panic() {
        let bytes = uniffi_bytes(outgoing(2));
        assert!(decode_outgoing(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_outgoing(&[bytes.as_slice(), &[0]].concat()).is_err());
        assert!(decode_outgoings(&[0, 0, 0, 5]).is_err());
        assert!(decode_outgoings(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_outgoing(&[0x7f, 0, 0, 0, 1]).is_err());
    }
}
