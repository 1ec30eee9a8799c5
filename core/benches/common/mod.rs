//! Helpers shared by the benchmarks: where their data goes and the 1 KiB store message.
#![allow(dead_code)]

use std::path::PathBuf;

use ferrymq_core::store::NewMessage;

/// Body size of every benchmark message.
pub const BODY: usize = 1024;

/// Where benchmark data goes: `$FERRYMQ_BENCH_DIR`, else `/work/tmp` if it exists (the disk a
/// `dd` comparison measures), else the system temp dir.
pub fn bench_root() -> PathBuf {
    if let Ok(d) = std::env::var("FERRYMQ_BENCH_DIR") {
        return PathBuf::from(d);
    }
    let work = PathBuf::from("/work/tmp");
    if work.is_dir() {
        work
    } else {
        std::env::temp_dir()
    }
}

/// The `n`th 1 KiB store message, spread over 8 queues, with a broker-style 32-char id.
pub fn message(n: u64) -> NewMessage {
    NewMessage {
        topic: "bench".to_string(),
        queue_id: (n % 8) as u32,
        msg_id: format!("{n:032X}"),
        body: vec![0x42; BODY],
        born_ts: n,
        ..NewMessage::default()
    }
}
