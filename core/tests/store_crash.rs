//! Crash tests: a child process (this test binary, re-executed in child mode) appends from
//! several threads and prints every acknowledged append; the parent kills it with SIGKILL at a
//! random moment, reopens the store and checks what must survive.
//!
//! What must survive a process kill: every acknowledged append, in `Sync` mode (it was
//! msynced) and in `Async` mode too (it was written to the shared mapping, so the page cache
//! holds it even though the process died). After recovery the queue offsets of every queue are
//! dense, agree with the consume queue, and the msg_id and key indexes find every
//! acknowledged message.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::tiny_config;
use ferrymq_core::store::{FlushMode, NewMessage, Store};
use rand::{Rng, SeedableRng};

const CHILD_DIR: &str = "FERRYMQ_CRASH_CHILD_DIR";
const CHILD_MODE: &str = "FERRYMQ_CRASH_CHILD_MODE";
const CHILD_GEN: &str = "FERRYMQ_CRASH_CHILD_GEN";
const TOPIC: &str = "crash";
const QUEUES: u32 = 3;
const THREADS: u32 = 4;

/// The message thread `t` of child generation `g` sends as its `i`-th.
fn crash_msg(g: u32, t: u32, i: u64) -> NewMessage {
    let len = 16 + ((t as usize * 131 + i as usize * 17) % 900);
    let seed = format!("g{g}t{t}i{i}|");
    NewMessage {
        topic: TOPIC.to_string(),
        queue_id: ((i + u64::from(t)) % u64::from(QUEUES)) as u32,
        msg_id: format!("m-{g}-{t}-{i}"),
        tag: i.is_multiple_of(2).then(|| "even".to_string()),
        keys: vec![format!("key-{g}-{t}-{i}")],
        properties: BTreeMap::new(),
        body: seed.bytes().cycle().take(len).collect(),
        flags: 0,
        born_ts: i,
        reconsume_times: 0,
    }
}

/// Child mode: append forever from several threads, printing `ack t i commit_offset
/// queue_offset` for every append that returned. A no-op in a normal test run.
#[test]
fn crash_child_process() {
    let (Ok(dir), Ok(mode), Ok(g)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_MODE), std::env::var(CHILD_GEN))
    else {
        return;
    };
    let g: u32 = g.parse().expect("generation");
    let flush = if mode == "sync" { FlushMode::Sync } else { FlushMode::Async };
    let store = Store::open(tiny_config(Path::new(&dir), flush)).expect("child open");
    let stdout = std::io::stdout();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let store = &store;
            let stdout = &stdout;
            s.spawn(move || {
                let mut i = 0u64;
                let started = Instant::now();
                // Safety net if the parent never kills us.
                while started.elapsed() < Duration::from_secs(30) {
                    // Every seventh step is an atomic batch of three.
                    let n = if i % 7 == 6 { 3 } else { 1 };
                    let msgs: Vec<_> = (i..i + n).map(|j| crash_msg(g, t, j)).collect();
                    let results = if n == 1 {
                        vec![store.append(msgs.into_iter().next().unwrap()).expect("append")]
                    } else {
                        store.append_batch(msgs).expect("append_batch")
                    };
                    let mut lines = String::new();
                    for (k, r) in results.iter().enumerate() {
                        lines.push_str(&format!(
                            "ack {g} {t} {} {} {}\n",
                            i + k as u64,
                            r.commit_offset,
                            r.queue_offset
                        ));
                    }
                    let mut out = stdout.lock();
                    out.write_all(lines.as_bytes()).expect("stdout");
                    out.flush().expect("stdout flush");
                    drop(out);
                    i += n;
                }
            });
        }
    });
}

#[derive(Clone, Copy, Debug)]
struct Ack {
    g: u32,
    t: u32,
    i: u64,
    commit_offset: u64,
    queue_offset: u64,
}

/// Runs the child until a random moment after its first acknowledgement, kills it with
/// SIGKILL and returns every acknowledgement it printed.
fn run_and_kill(dir: &Path, mode: &str, g: u32, seed: u64) -> Vec<Ack> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child_process", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_MODE, mode)
        .env(CHILD_GEN, g.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut acks = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // A line cut by the kill has no newline: it was never fully acknowledged.
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {}
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 6 && f[0] == "ack" {
                if acks.is_empty() {
                    let _ = tx.send(());
                }
                acks.push(Ack {
                    g: f[1].parse().unwrap(),
                    t: f[2].parse().unwrap(),
                    i: f[3].parse().unwrap(),
                    commit_offset: f[4].parse().unwrap(),
                    queue_offset: f[5].parse().unwrap(),
                });
            }
        }
        acks
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("child acknowledged nothing");
    std::thread::sleep(Duration::from_millis(rng.gen_range(0..250)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

/// Reopens the store and checks every acknowledged append and the queue invariants.
fn verify(dir: &Path, acks: &[Ack]) {
    let store = Store::open(tiny_config(dir, FlushMode::Sync)).expect("reopen after crash");
    assert!(store.wait_dispatched(store.stats().max_offset, Duration::from_secs(10)));

    // Every acknowledged append, byte for byte.
    for a in acks {
        let want = crash_msg(a.g, a.t, a.i);
        let got = store.read(a.commit_offset).unwrap_or_else(|e| panic!("acked {a:?} unreadable: {e}"));
        assert_eq!(got.msg_id, want.msg_id);
        assert_eq!(got.body, want.body, "{a:?}");
        assert_eq!(got.queue_id, want.queue_id);
        assert_eq!(got.queue_offset, a.queue_offset);
        assert_eq!(got.tag, want.tag);
        assert_eq!(got.keys, want.keys);
    }

    // Queues are dense from 0 and agree with the records they point at.
    let mut in_queue: HashMap<u64, (u32, u64)> = HashMap::new();
    for q in 0..QUEUES {
        let (min, max) = store.queue_bounds(TOPIC, q);
        assert_eq!(min, 0);
        let units = store.read_queue(TOPIC, q, 0, usize::MAX).unwrap();
        assert_eq!(units.len() as u64, max, "queue {q} is dense");
        for (n, u) in units.iter().enumerate() {
            assert_eq!(u.queue_offset, n as u64);
            let m = store.read(u.commit_offset).unwrap();
            assert_eq!((m.queue_id, m.queue_offset, m.size), (q, n as u64, u.size));
            in_queue.insert(u.commit_offset, (q, n as u64));
        }
    }
    for a in acks {
        let want_q = crash_msg(a.g, a.t, a.i).queue_id;
        assert_eq!(in_queue.get(&a.commit_offset), Some(&(want_q, a.queue_offset)), "{a:?}");
    }

    // The indexes find them (spot-check a spread of acknowledgements to bound the time).
    let step = (acks.len() / 200).max(1);
    for a in acks.iter().step_by(step) {
        let ids = store.lookup_msg_id(&format!("m-{}-{}-{}", a.g, a.t, a.i)).unwrap();
        assert_eq!(ids, vec![a.commit_offset], "{a:?}");
        let keys = store.lookup_key(TOPIC, &format!("key-{}-{}-{}", a.g, a.t, a.i), 10).unwrap();
        assert_eq!(keys, vec![a.commit_offset], "{a:?}");
    }

    // Appends continue after the recovered end with the next queue offsets.
    let before: Vec<u64> = (0..QUEUES).map(|q| store.queue_bounds(TOPIC, q).1).collect();
    let extra = crash_msg(999, 0, acks.len() as u64);
    let q = extra.queue_id;
    let r = store.append(extra).unwrap();
    assert_eq!(r.queue_offset, before[q as usize]);
    assert!(r.commit_offset >= acks.iter().map(|a| a.commit_offset).max().unwrap_or(0));
    store.shutdown().unwrap();
}

fn crash_rounds(mode: &str, seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let dir = tempfile::tempdir().unwrap();
        let mut acks = Vec::new();
        // Two crashes per directory: recovery must also cope with a store that recovered
        // once, and the first run's acknowledgements must still be there after the second.
        for g in 0..2u32 {
            let new = run_and_kill(dir.path(), mode, g, seed * 2 + u64::from(g));
            assert!(!new.is_empty());
            acks.extend(new);
            verify(dir.path(), &acks);
        }
        eprintln!("{mode} seed {seed}: {} acknowledged appends survived", acks.len());
    }
}

#[test]
fn sync_acknowledged_appends_survive_sigkill() {
    crash_rounds("sync", 0..20);
}

#[test]
fn async_appends_survive_process_kill() {
    crash_rounds("async", 100..106);
}
