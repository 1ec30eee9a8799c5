//! The Rust side's `tracing` events (the client, the embedded broker, this module) as records
//! of Python's `logging`, on the `ferrymq` logger: configure that logger (level, handlers) as
//! any other. Each record has the Rust file and line, and the event's target as `rust_target`.
//!
//! The thread that emits an event may hold a lock that a thread holding the GIL is waiting for
//! (a consumer's state, the store's), so it must never wait for the GIL itself: the layer only
//! formats the event and hands it to one forwarding thread, which logs it with the GIL, in
//! order. Whether an event is wanted at all is decided without the GIL, against a cached copy
//! of the logger's effective level. The forwarder refreshes that copy with every record it
//! handles, and a copy older than a second lets one event through to be refreshed; so an
//! unwanted event costs two atomic loads, the GIL is taken at most once a second for them,
//! and a level set in Python applies within about a second.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// How old the cached level may get before an unwanted event is let through to refresh it.
const REFRESH: Duration = Duration::from_secs(1);
/// Records waiting for the forwarder; beyond that, events are dropped rather than block.
const QUEUE: usize = 10_000;

/// The `ferrymq` logger's effective level, as Python numbers it (clamped to 0..=255).
static LEVEL: AtomicU8 = AtomicU8::new(30);
/// When [`LEVEL`] was read, in ms since [`START`] plus one (0: never).
static LEVEL_READ_AT: AtomicU64 = AtomicU64::new(0);
static START: OnceLock<Instant> = OnceLock::new();

fn now_ms() -> u64 {
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
}

/// Python's number for a tracing level.
fn python_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// Whether an event at `level` should go to the forwarder: the cached level allows it, or the
/// cache is stale.
fn wanted(level: u8) -> bool {
    if level >= LEVEL.load(Ordering::Relaxed) {
        return true;
    }
    let read_at = LEVEL_READ_AT.load(Ordering::Relaxed);
    read_at == 0 || now_ms().saturating_sub(read_at) >= REFRESH.as_millis() as u64
}

/// One event, formatted off the GIL.
struct Record {
    level: u8,
    target: String,
    file: String,
    line: u32,
    message: String,
}

/// Collects an event's message and its other fields as ` key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={:?}", field.name(), value);
        }
    }
}

/// The layer that hands events to the forwarder.
struct PythonLogging {
    records: SyncSender<Record>,
}

impl<S: Subscriber> Layer<S> for PythonLogging {
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        // Never cached as always or never: the Python level can change at any time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        // Spans are not forwarded (Python's logging has no such thing): never build them.
        metadata.is_event() && wanted(python_level(metadata.level()))
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let record = Record {
            level: python_level(metadata.level()),
            target: metadata.target().to_string(),
            file: metadata.file().unwrap_or("<rust>").to_string(),
            line: metadata.line().unwrap_or(0),
            message: fields.message + &fields.rest,
        };
        // A full queue (Python stopped reading, e.g. in a forked child) drops the event.
        let _ = self.records.try_send(record);
    }
}

/// `logging.getLogger("ferrymq")`.
static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Logs `record` on the `ferrymq` logger if its level allows, refreshing the cached level.
fn log(py: Python<'_>, record: Record) -> PyResult<()> {
    let logger = LOGGER
        .get_or_try_init(py, || py.import("logging")?.call_method1("getLogger", ("ferrymq",)).map(Bound::unbind))?
        .bind(py);
    let level: i64 = logger.call_method0("getEffectiveLevel")?.extract()?;
    LEVEL.store(level.clamp(0, 255) as u8, Ordering::Relaxed);
    LEVEL_READ_AT.store(now_ms(), Ordering::Relaxed);
    if !logger.call_method1("isEnabledFor", (record.level,))?.is_truthy()? {
        return Ok(());
    }
    let extra = PyDict::new(py);
    extra.set_item("rust_target", record.target)?;
    let no_args = pyo3::types::PyTuple::empty(py);
    let made = logger.call_method1(
        "makeRecord",
        ("ferrymq", record.level, record.file, record.line, record.message, no_args, py.None(), py.None(), extra),
    )?;
    logger.call_method1("handle", (made,))?;
    Ok(())
}

/// The forwarding thread: logs each record with the GIL (unless the interpreter is exiting).
fn forward(records: Receiver<Record>) {
    while let Ok(record) = records.recv() {
        crate::runtime::with_python(|py| {
            if let Err(e) = log(py, record) {
                // A handler that raised: Python's own logging would print it too.
                e.print(py);
            }
        });
    }
}

/// Installs the layer as the process's tracing subscriber (unless one is installed already)
/// and starts the forwarder. Called once, when the module is imported.
pub fn install() {
    let (records, receiver) = sync_channel(QUEUE);
    let subscriber = tracing_subscriber::registry().with(PythonLogging { records });
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        let _ = std::thread::Builder::new().name("ferrymq-logging".into()).spawn(move || forward(receiver));
    }
}
