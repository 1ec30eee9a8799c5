//! Configuration keys: the one table of every key a broker or a server takes (its type, default,
//! bounds and doc line) and the one parser of their values.
//!
//! `ferrymq serve` (`--set key=value`, `FERRYMQ_<KEY>`, the TOML file) and every binding's
//! embedded config go through [`Settings::set`] and [`Settings::set_embedded`], so a value means
//! the same wherever it is written. [`BrokerConfig::new`] and
//! [`StoreConfig::new`](crate::store::StoreConfig::new) take their defaults from [`KEYS`], and
//! `ferrymq config` lists it.
//!
//! How values are written, everywhere:
//! - **durations**: a whole number and a unit, `ms`, `s`, `m` (minutes), `h` or `d`: `500ms`,
//!   `6s`, `2h`, `1d`. A bare number is refused, as text and as an integer alike, since its unit
//!   would be a guess.
//! - **sizes**: bytes, as a number or with a unit: `1024`, `64KiB`, `8MiB` (powers of 1024) or
//!   `10MB` (powers of 1000).
//! - **counts**: whole numbers. **Ratios**: `0.95`. **Booleans**: `true`/`false` (as text also
//!   `1`/`0`, `yes`/`no`, `on`/`off`).
//! - **delay levels**: durations separated by spaces or commas (`100ms 200ms 1s`), or a list of
//!   duration strings.
//!
//! Values arrive as text (the command line, the environment) or typed (TOML values, a
//! language's objects); both become a [`Value`] first. This module knows the keys, not where
//! their values come from: layering sources is the server's business, converting a language's
//! objects the binding's.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::broker::BrokerConfig;
use crate::store::FlushMode;

/// A setting's value as it arrived, before it is typed for its key: the text of a `--set` or
/// an environment variable, or a TOML value or a language's object converted into this.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Text, parsed by the key's rules (`"6s"`, `"8MiB"`, `"true"`, `"42"`).
    Text(String),
    /// An integer: a count or a size in bytes; never a duration.
    Int(i64),
    /// A floating-point number: a ratio.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A list: delay levels as duration strings.
    List(Vec<Value>),
}

impl Value {
    /// What sort of value this is, for error messages.
    fn kind(&self) -> &'static str {
        match self {
            Value::Text(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::List(_) => "a list",
        }
    }
}

/// The value as it was written.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

/// Who takes a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every broker: `ferrymq serve` and an embedded one.
    Broker,
    /// Only `ferrymq serve` (HTTP, WebSocket and auth); an embedded config refuses it.
    Server,
}

/// The settings of `ferrymq serve` that are not the broker's.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSettings {
    /// `ws_ticket_ttl`: validity of a single-use WebSocket ticket.
    pub ws_ticket_ttl: Duration,
    /// `auth_file`: the tokens file; `None` leaves the server open.
    pub auth_file: Option<PathBuf>,
    /// `tls_cert`: the server's certificate chain (PEM); with `tls_key`, HTTPS and WSS.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`: the private key of `tls_cert` (PEM).
    pub tls_key: Option<PathBuf>,
}

impl Default for ServerSettings {
    /// The defaults of [`KEYS`].
    fn default() -> Self {
        ServerSettings {
            ws_ticket_ttl: WS_TICKET_TTL.default(),
            auth_file: AUTH_FILE.default(),
            tls_cert: TLS_CERT.default(),
            tls_key: TLS_KEY.default(),
        }
    }
}

/// What applying settings yields: the broker's configuration and the server's own settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The broker (and its store's) configuration.
    pub broker: BrokerConfig,
    /// Settings only `ferrymq serve` uses.
    pub server: ServerSettings,
}

impl Settings {
    /// Every key at its default, for a broker in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Settings { broker: BrokerConfig::new(dir), server: ServerSettings::default() }
    }

    /// Parses `value` for `key` and stores it; any key of [`KEYS`].
    pub fn set(&mut self, key: &str, value: &Value) -> Result<(), SettingError> {
        let setting = find(key).ok_or_else(|| SettingError::UnknownKey { key: key.to_string() })?;
        setting.apply(self, value).map_err(|reason| SettingError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason,
        })
    }

    /// [`Settings::set`] for an embedded broker: a [`Scope::Server`] key is refused, naming it,
    /// rather than silently ignored.
    pub fn set_embedded(&mut self, key: &str, value: &Value) -> Result<(), SettingError> {
        match find(key) {
            Some(setting) if setting.scope() == Scope::Server => Err(SettingError::ServerOnly { key: key.to_string() }),
            _ => self.set(key, value),
        }
    }

    /// The current value of `key`, written as [`Settings::set`] reads it.
    pub fn get(&self, key: &str) -> Option<String> {
        find(key).map(|setting| setting.value_in(self))
    }
}

/// A setting that could not be applied. Each variant names the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingError {
    /// No such key.
    #[error("unknown configuration key `{key}` (`ferrymq config` lists the keys)")]
    UnknownKey {
        /// The key as written.
        key: String,
    },
    /// A key of the server (HTTP, WebSocket, auth) given to an embedded broker.
    #[error("`{key}` is a server-only key (`ferrymq serve`); an embedded broker does not take it")]
    ServerOnly {
        /// The key.
        key: String,
    },
    /// A known key with a value it cannot take.
    #[error("invalid value `{value}` for `{key}`: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl SettingError {
    /// The key the error is about.
    pub fn key(&self) -> &str {
        match self {
            SettingError::UnknownKey { key }
            | SettingError::ServerOnly { key }
            | SettingError::InvalidValue { key, .. } => key,
        }
    }
}

/// A bad setting is an invalid argument whose field is `/config/<key>` (so the message does
/// not repeat the key).
impl From<SettingError> for crate::Error {
    fn from(err: SettingError) -> Self {
        let message = match &err {
            SettingError::UnknownKey { .. } => {
                "unknown configuration key (`ferrymq config` lists the keys)".to_string()
            }
            SettingError::ServerOnly { .. } => {
                "a server-only key (`ferrymq serve`); an embedded broker does not take it".to_string()
            }
            SettingError::InvalidValue { value, reason, .. } => format!("`{value}` is not valid: {reason}"),
        };
        crate::Error::invalid(format!("/config/{}", err.key()), message)
    }
}

/// The key named `key`, if there is one.
pub fn find(key: &str) -> Option<&'static dyn Setting> {
    KEYS.iter().copied().find(|setting| setting.name() == key).map(|setting| setting as &dyn Setting)
}

/// One row of the table, whatever the type of its values.
pub trait Setting: Sync {
    /// The key, as written in `--set`, the TOML file and a binding's config (and, upper-cased
    /// after `FERRYMQ_`, in the environment).
    fn name(&self) -> &'static str;
    /// One line on what it means.
    fn doc(&self) -> &'static str;
    /// Who takes it.
    fn scope(&self) -> Scope;
    /// The type of its values: `duration`, `size`, `count`, `ratio`, `bool`, `flush`,
    /// `durations` or `path`.
    fn kind(&self) -> &'static str;
    /// The default, written as [`Settings::set`] reads it (empty for "unset").
    fn default_text(&self) -> String;
    /// The values it accepts, e.g. `≥ 1ms` or `1 … 1024`.
    fn bounds(&self) -> String;
    /// Its current value in `settings`, written as [`Settings::set`] reads it.
    fn value_in(&self, settings: &Settings) -> String;
    /// Parses and checks `value` and stores it in `settings`; the error is the reason.
    fn apply(&self, settings: &mut Settings, value: &Value) -> Result<(), String>;
}

/// A key whose values are of type `T`: its row of the table.
pub struct Key<T: 'static> {
    name: &'static str,
    scope: Scope,
    form: &'static (dyn Form<T> + Sync),
    default: fn() -> T,
    access: Access<T>,
    doc: &'static str,
}

impl<T> Key<T> {
    /// The key's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The key's default value: the one place it is written.
    pub fn default(&self) -> T {
        (self.default)()
    }
}

impl<T: 'static> Setting for Key<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn doc(&self) -> &'static str {
        self.doc.trim()
    }

    fn scope(&self) -> Scope {
        self.scope
    }

    fn kind(&self) -> &'static str {
        self.form.kind()
    }

    fn default_text(&self) -> String {
        self.form.show(&self.default())
    }

    fn bounds(&self) -> String {
        self.form.bounds()
    }

    fn value_in(&self, settings: &Settings) -> String {
        self.form.show(&(self.access.0)(settings))
    }

    fn apply(&self, settings: &mut Settings, value: &Value) -> Result<(), String> {
        let typed = self.form.parse(value)?;
        (self.access.1)(settings, typed);
        Ok(())
    }
}

/// Reads and writes the field of [`Settings`] a key sets.
type Access<T> = (fn(&Settings) -> T, fn(&mut Settings, T));

/// How the values of a key are written, read and bounded.
trait Form<T> {
    /// The name of the type, for people.
    fn kind(&self) -> &'static str;
    /// Types and checks a value.
    fn parse(&self, value: &Value) -> Result<T, String>;
    /// Writes a value the way [`Form::parse`] reads it.
    fn show(&self, value: &T) -> String;
    /// The accepted values, for people.
    fn bounds(&self) -> String;
}

/// Reads and writes one field of [`Settings`].
macro_rules! at {
    ($($field:ident).+) => {
        (|c: &Settings| copy_of(&c.$($field).+), |c: &mut Settings, v| c.$($field).+ = v)
    };
}

fn copy_of<T: Clone>(value: &T) -> T {
    value.clone()
}

/// Declares each key as a `pub static` [`Key`] and lists them all in [`KEYS`].
macro_rules! keys {
    ($(#[doc = $doc:literal] $name:ident: $ty:ty = $key:literal, $scope:ident, $form:expr, $default:expr, $access:expr;)*) => {
        $(
            #[doc = concat!("`", $key, "`:", $doc)]
            pub static $name: Key<$ty> = Key {
                name: $key,
                scope: Scope::$scope,
                form: &$form,
                default: || $default,
                access: $access,
                doc: $doc,
            };
        )*
        /// Every configuration key, in the order `ferrymq config` lists them.
        pub static KEYS: &[&(dyn Setting + Sync)] = &[$(&$name),*];
    };
}

const MS: Duration = Duration::from_millis(1);

// The table. A row: doc line; NAME: type = "key", scope, form and bounds, default, field.
keys! {
    /// When a publish is acknowledged: `async` once in the page cache (survives a process crash), `sync` after an fsync covering it (survives a machine crash).
    FLUSH: FlushMode = "flush", Broker, Flush, FlushMode::Async, at!(broker.store.flush);
    /// Period of the background flush; under `async`, a machine crash loses at most this much.
    FLUSH_INTERVAL: Duration = "flush_interval", Broker, Dur { min: MS }, Duration::from_millis(500), at!(broker.store.flush_interval);
    /// Size of one commit-log segment file; a message must fit in one.
    SEGMENT_BYTES: u64 = "segment_bytes", Broker, Size { min: 1 }, 1 << 30, at!(broker.store.segment_bytes);
    /// Delay of each level, level 1 first; retries use level 3 and up.
    DELAY_LEVELS: Vec<Duration> = "delay_levels", Broker, Levels, [1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200].map(Duration::from_secs).to_vec(), at!(broker.delay_levels);
    /// Furthest ahead a `delay_ms` or `deliver_at` may be.
    MAX_DELAY: Duration = "max_delay", Broker, Dur { min: MS }, Duration::from_secs(3 * 86_400), at!(broker.max_delay);
    /// Delay timers round up to this, so they are never early.
    TIMER_PRECISION: Duration = "timer_precision", Broker, Dur { min: MS }, Duration::from_secs(1), at!(broker.timer_precision);
    /// Default, per group, of redeliveries before a message goes to the DLQ.
    MAX_RECONSUME_TIMES: u32 = "max_reconsume_times", Broker, Count { min: 0, max: None }, 16, at!(broker.max_reconsume_times);
    /// Age of an unresolved half message before it is checked back.
    TRANSACTION_TIMEOUT: Duration = "transaction_timeout", Broker, Dur { min: MS }, Duration::from_secs(6), at!(broker.transaction_timeout);
    /// How often unresolved half messages are checked back.
    TRANSACTION_CHECK_INTERVAL: Duration = "transaction_check_interval", Broker, Dur { min: MS }, Duration::from_secs(30), at!(broker.transaction_check_interval);
    /// Check-backs answered `unknown` after which a half message is discarded.
    TRANSACTION_CHECK_MAX: u32 = "transaction_check_max", Broker, Count { min: 1, max: None }, 15, at!(broker.transaction_check_max);
    /// Expiry of group members and of orderly queue leases (not of message invisibility).
    LEASE_TTL: Duration = "lease_ttl", Broker, Dur { min: MS }, Duration::from_secs(30), at!(broker.lease_ttl);
    /// Age in hours after which whole commit-log segments are deleted.
    RETENTION_HOURS: u64 = "retention_hours", Broker, Count { min: 1, max: None }, 72, (|c: &Settings| c.broker.store.retention.as_secs() / 3600, |c: &mut Settings, hours: u64| c.broker.store.retention = Duration::from_secs(hours.saturating_mul(3600)));
    /// Largest body of one message.
    MAX_MESSAGE_BYTES: usize = "max_message_bytes", Broker, Size { min: 1 }, 4 << 20, at!(broker.store.max_message_bytes);
    /// Most messages in one batch publish.
    MAX_BATCH_MESSAGES: usize = "max_batch_messages", Broker, Count { min: 1, max: None }, 1000, at!(broker.max_batch_messages);
    /// Largest sum of bodies in one batch publish.
    MAX_BATCH_BYTES: usize = "max_batch_bytes", Broker, Size { min: 1 }, 16 << 20, at!(broker.max_batch_bytes);
    /// Most body bytes one receive or pull returns; it always returns at least one message.
    MAX_RECEIVE_BYTES: usize = "max_receive_bytes", Broker, Size { min: 1 }, 8 << 20, at!(broker.max_receive_bytes);
    /// How long an idempotency key is remembered; `0s` turns deduplication off.
    DEDUP_WINDOW: Duration = "dedup_window", Broker, Dur { min: Duration::ZERO }, Duration::from_secs(600), at!(broker.dedup_window);
    /// Validity of a single-use WebSocket ticket.
    WS_TICKET_TTL: Duration = "ws_ticket_ttl", Server, Dur { min: MS }, Duration::from_secs(60), at!(server.ws_ticket_ttl);
    /// Share of the data disk in use above which writes are refused (507) and retention deletes early.
    DISK_MAX_USED_RATIO: f64 = "disk_max_used_ratio", Broker, Ratio, 0.95, at!(broker.store.disk_max_used_ratio);
    /// Pause of an orderly queue after a failed delivery.
    ORDERLY_SUSPEND: Duration = "orderly_suspend", Broker, Dur { min: MS }, Duration::from_secs(1), at!(broker.orderly_suspend);
    /// Create a topic on its first publish (otherwise publishing to a missing topic is 404).
    AUTO_CREATE_TOPICS: bool = "auto_create_topics", Broker, Flag, true, at!(broker.auto_create_topics);
    /// Queue count of auto-created topics and of creates that do not say (at most the broker's 1024 queues a topic).
    DEFAULT_QUEUES: u32 = "default_queues", Broker, Count { min: 1, max: Some(1024) }, 8, at!(broker.default_queues);
    /// Tokens file (TOML) limiting who may do what; unset, the server is open. An empty value unsets it.
    AUTH_FILE: Option<PathBuf> = "auth_file", Server, PathForm, None, at!(server.auth_file);
    /// Certificate chain (PEM) of the server; with `tls_key`, `ferrymq serve` speaks HTTPS and WSS on its port.
    TLS_CERT: Option<PathBuf> = "tls_cert", Server, PathForm, None, at!(server.tls_cert);
    /// Private key (PEM) of `tls_cert`.
    TLS_KEY: Option<PathBuf> = "tls_key", Server, PathForm, None, at!(server.tls_key);
}

fn expected(what: &str, value: &Value) -> String {
    format!("expected {what}, got {}", value.kind())
}

/// Durations of at least `min`.
struct Dur {
    min: Duration,
}

impl Form<Duration> for Dur {
    fn kind(&self) -> &'static str {
        "duration"
    }

    fn parse(&self, value: &Value) -> Result<Duration, String> {
        let d = match value {
            Value::Text(text) => parse_duration(text)?,
            Value::Int(_) => return Err(NEEDS_UNIT.to_string()),
            _ => return Err(expected("a duration such as \"6s\"", value)),
        };
        if d < self.min {
            return Err(if self.min == MS {
                "must be longer than zero".to_string()
            } else {
                format!("must be at least {}", show_duration(self.min))
            });
        }
        Ok(d)
    }

    fn show(&self, value: &Duration) -> String {
        show_duration(*value)
    }

    fn bounds(&self) -> String {
        format!("≥ {}", show_duration(self.min))
    }
}

const NEEDS_UNIT: &str = "a duration needs a unit: write it like \"6s\" or \"500ms\"";

/// Sizes in bytes of at least `min`.
struct Size {
    min: u64,
}

impl<T: Copy + TryFrom<u64>> Form<T> for Size
where
    u64: TryFrom<T>,
{
    fn kind(&self) -> &'static str {
        "size"
    }

    fn parse(&self, value: &Value) -> Result<T, String> {
        let n = match value {
            Value::Text(text) => parse_size(text)?,
            Value::Int(n) => {
                <u64 as TryFrom<i64>>::try_from(*n).map_err(|_| "a size cannot be negative".to_string())?
            }
            _ => return Err(expected("a size such as 1024 or \"8MiB\"", value)),
        };
        if n < self.min {
            return Err(format!("must be at least {} byte{}", self.min, if self.min == 1 { "" } else { "s" }));
        }
        T::try_from(n).map_err(|_| "is too large for this machine".to_string())
    }

    fn show(&self, value: &T) -> String {
        show_size(u64::try_from(*value).unwrap_or(u64::MAX))
    }

    fn bounds(&self) -> String {
        format!("≥ {}", show_size(self.min))
    }
}

/// Whole numbers in `min..=max` (and within `T`).
struct Count {
    min: u64,
    max: Option<u64>,
}

impl<T: Copy + TryFrom<u64> + fmt::Display> Form<T> for Count {
    fn kind(&self) -> &'static str {
        "count"
    }

    fn parse(&self, value: &Value) -> Result<T, String> {
        let n = match value {
            Value::Text(text) => text.trim().parse::<u64>().ok(),
            Value::Int(n) => u64::try_from(*n).ok(),
            _ => return Err(expected("a whole number", value)),
        };
        let Some(n) = n else {
            return Err(format!("expected a whole number of at least {}", self.min));
        };
        if n < self.min {
            return Err(format!("must be at least {}", self.min));
        }
        if let Some(max) = self.max.filter(|max| n > *max) {
            return Err(format!("must be at most {max}"));
        }
        T::try_from(n).map_err(|_| "is too large".to_string())
    }

    fn show(&self, value: &T) -> String {
        value.to_string()
    }

    fn bounds(&self) -> String {
        match self.max {
            Some(max) => format!("{} … {max}", self.min),
            None => format!("≥ {}", self.min),
        }
    }
}

/// A share: `0 < r ≤ 1`.
struct Ratio;

impl Form<f64> for Ratio {
    fn kind(&self) -> &'static str {
        "ratio"
    }

    fn parse(&self, value: &Value) -> Result<f64, String> {
        let r = match value {
            Value::Float(x) => *x,
            // Integers are exact in f64 far beyond the only valid one, 1.
            Value::Int(n) => *n as f64,
            Value::Text(text) => {
                text.trim().parse::<f64>().map_err(|_| "expected a number such as 0.95".to_string())?
            }
            _ => return Err(expected("a number such as 0.95", value)),
        };
        if r > 0.0 && r <= 1.0 {
            Ok(r)
        } else {
            Err("must be greater than 0 and at most 1".to_string())
        }
    }

    fn show(&self, value: &f64) -> String {
        value.to_string()
    }

    fn bounds(&self) -> String {
        "0 < r ≤ 1".to_string()
    }
}

/// `true` or `false`.
struct Flag;

impl Form<bool> for Flag {
    fn kind(&self) -> &'static str {
        "bool"
    }

    fn parse(&self, value: &Value) -> Result<bool, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            Value::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err("expected true or false".to_string()),
            },
            _ => Err(expected("true or false", value)),
        }
    }

    fn show(&self, value: &bool) -> String {
        value.to_string()
    }

    fn bounds(&self) -> String {
        "true | false".to_string()
    }
}

/// `async` or `sync`.
struct Flush;

impl Form<FlushMode> for Flush {
    fn kind(&self) -> &'static str {
        "flush"
    }

    fn parse(&self, value: &Value) -> Result<FlushMode, String> {
        match value {
            Value::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "async" => Ok(FlushMode::Async),
                "sync" => Ok(FlushMode::Sync),
                _ => Err("expected \"async\" or \"sync\"".to_string()),
            },
            _ => Err(expected("\"async\" or \"sync\"", value)),
        }
    }

    fn show(&self, value: &FlushMode) -> String {
        match value {
            FlushMode::Async => "async",
            FlushMode::Sync => "sync",
        }
        .to_string()
    }

    fn bounds(&self) -> String {
        "async | sync".to_string()
    }
}

/// Delay levels: one or more durations, each longer than zero.
struct Levels;

impl Form<Vec<Duration>> for Levels {
    fn kind(&self) -> &'static str {
        "durations"
    }

    fn parse(&self, value: &Value) -> Result<Vec<Duration>, String> {
        let positive = Dur { min: MS };
        match value {
            Value::Text(text) => parse_delay_levels(text),
            Value::List(items) => {
                let levels = items.iter().map(|item| positive.parse(item)).collect::<Result<Vec<_>, _>>()?;
                if levels.is_empty() {
                    return Err("at least one delay level is needed".to_string());
                }
                Ok(levels)
            }
            _ => Err(expected("durations such as \"1s 5s 10s\"", value)),
        }
    }

    fn show(&self, value: &Vec<Duration>) -> String {
        value.iter().map(|d| show_duration(*d)).collect::<Vec<_>>().join(" ")
    }

    fn bounds(&self) -> String {
        "1 or more levels, each ≥ 1ms".to_string()
    }
}

/// A file path; empty text unsets it.
struct PathForm;

impl Form<Option<PathBuf>> for PathForm {
    fn kind(&self) -> &'static str {
        "path"
    }

    fn parse(&self, value: &Value) -> Result<Option<PathBuf>, String> {
        match value {
            // An empty value clears a path set by a lower layer.
            Value::Text(text) if text.trim().is_empty() => Ok(None),
            Value::Text(text) => Ok(Some(PathBuf::from(text))),
            _ => Err(expected("a path", value)),
        }
    }

    fn show(&self, value: &Option<PathBuf>) -> String {
        value.as_ref().map(|path| path.display().to_string()).unwrap_or_default()
    }

    fn bounds(&self) -> String {
        "a path, or empty".to_string()
    }
}

/// Parses a duration: a whole number and a unit, `ms`, `s`, `m` (minutes), `h` or `d`, e.g.
/// `500ms`, `6s`, `2h`. A bare number is refused, since its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text, "duration", "500ms, 6s, 1m, 2h or 1d")?;
    let millis_per_unit: u64 = match unit.to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err(format!("`{text}` has no unit: write it like 500ms, 6s, 1m, 2h or 1d")),
        _ => return Err(format!("`{text}` has an unknown unit `{unit}` (expected ms, s, m, h or d)")),
    };
    number.checked_mul(millis_per_unit).map(Duration::from_millis).ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a size in bytes: a whole number, optionally with a unit, `B`, `KB`/`MB`/`GB`/`TB`
/// (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024), e.g. `1024`, `64KiB`, `8MiB`,
/// `10MB`. Units are case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text, "size", "1024, 64KiB, 8MiB or 10MB")?;
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}` (expected B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ))
        }
    };
    number.checked_mul(multiplier).ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses delay levels: durations separated by spaces or commas, level 1 first, e.g.
/// `100ms 200ms 1s`. At least one level, each longer than zero.
pub fn parse_delay_levels(text: &str) -> Result<Vec<Duration>, String> {
    let levels = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let d = parse_duration(part)?;
            if d.is_zero() {
                return Err(format!("`{part}` must be longer than zero"));
            }
            Ok(d)
        })
        .collect::<Result<Vec<_>, String>>()?;
    if levels.is_empty() {
        return Err("at least one delay level is needed".to_string());
    }
    Ok(levels)
}

/// Splits `text` (trimmed) into its leading whole number and the rest (trimmed), the unit.
fn split_number<'a>(text: &'a str, what: &str, examples: &str) -> Result<(u64, &'a str), String> {
    let trimmed = text.trim();
    let digits_end = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (digits, rest) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!("`{text}` is not a {what}: write it like {examples}"));
    }
    if rest.starts_with('.') {
        return Err(format!("`{text}` is not a {what}: use a whole number with a smaller unit"));
    }
    let number = digits.parse::<u64>().map_err(|_| format!("`{text}` is too large"))?;
    Ok((number, rest.trim()))
}

/// A duration in the largest unit that writes it exactly: `500ms`, `6s`, `1m`, `2h`, `3d`.
fn show_duration(d: Duration) -> String {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{d:?}");
    }
    let millis = d.as_millis();
    if millis == 0 {
        return "0s".to_string();
    }
    for (unit, per) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if millis.is_multiple_of(per) {
            return format!("{}{unit}", millis / per);
        }
    }
    format!("{millis}ms")
}

/// A size in the largest binary unit that writes it exactly: `1GiB`, `64KiB`, `1000`.
fn show_size(n: u64) -> String {
    for (unit, per) in [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n > 0 && n.is_multiple_of(per) {
            return format!("{}{unit}", n / per);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::from(s)
    }

    fn fresh() -> Settings {
        Settings::new("/tmp/ferrymq-config-test")
    }

    /// The reason `key` refuses `value`.
    fn reason(key: &str, value: Value) -> String {
        match fresh().set(key, &value) {
            Err(SettingError::InvalidValue { reason, .. }) => reason,
            other => panic!("{key} = {value}: expected an invalid value, got {other:?}"),
        }
    }

    #[test]
    fn keys_are_unique_and_documented() {
        let mut names: Vec<&str> = KEYS.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYS.len(), "a key is listed twice");
        for key in KEYS {
            assert!(!key.doc().is_empty(), "{} has no doc", key.name());
            assert!(!key.bounds().is_empty(), "{} has no bounds", key.name());
        }
    }

    #[test]
    fn every_default_reads_back_as_itself_and_is_in_bounds() {
        let defaults = fresh();
        for key in KEYS {
            let written = key.default_text();
            let mut settings = fresh();
            settings.set(key.name(), &text(&written)).unwrap_or_else(|e| panic!("default of {}: {e}", key.name()));
            assert_eq!(settings, defaults, "{} = {written}", key.name());
            assert_eq!(defaults.get(key.name()), Some(written));
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = fresh();
        assert_eq!(s.broker.store.flush, FlushMode::Async);
        assert_eq!(s.broker.store.flush_interval, Duration::from_millis(500));
        assert_eq!(s.broker.store.segment_bytes, 1 << 30);
        assert_eq!(
            s.get("delay_levels").as_deref(),
            Some("1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h")
        );
        assert_eq!(s.broker.max_delay, Duration::from_secs(3 * 86_400));
        assert_eq!(s.broker.store.retention, Duration::from_secs(72 * 3600));
        assert_eq!(s.broker.store.max_message_bytes, 4 << 20);
        assert_eq!(s.broker.dedup_window, Duration::from_secs(600));
        assert_eq!(s.server.ws_ticket_ttl, Duration::from_secs(60));
        assert_eq!(s.broker.store.disk_max_used_ratio, 0.95);
        assert_eq!(s.server.auth_file, None);
        assert_eq!(s.get("auth_file").as_deref(), Some(""));
        assert_eq!(s.get("segment_bytes").as_deref(), Some("1GiB"));
        assert_eq!(s.get("no_such_key"), None);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("6s"), Ok(Duration::from_secs(6)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 3 S "), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_why() {
        for (input, needle) in [
            ("500", "no unit"),
            ("", "not a duration"),
            ("ms", "not a duration"),
            ("-1s", "not a duration"),
            ("1.5s", "whole number"),
            ("5x", "unknown unit `x`"),
            ("5 sec", "unknown unit `sec`"),
            ("99999999999999999999s", "too large"),
            ("999999999999999999d", "too large"),
        ] {
            let err = parse_duration(input).expect_err(input);
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("2 kb"), Ok(2_000));
        assert_eq!(parse_size("7B"), Ok(7));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
    }

    #[test]
    fn bad_sizes_say_why() {
        for (input, needle) in [
            ("", "not a size"),
            ("MiB", "not a size"),
            ("-5", "not a size"),
            ("1.5GiB", "whole number"),
            ("8M", "unknown unit `M`"),
            ("8 bytes", "unknown unit `bytes`"),
            ("99999999999TiB", "too large"),
        ] {
            let err = parse_size(input).expect_err(input);
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn delay_levels_parse_from_text_or_a_list() {
        let three = vec![Duration::from_millis(100), Duration::from_millis(200), Duration::from_secs(1)];
        assert_eq!(parse_delay_levels("100ms 200ms 1s"), Ok(three.clone()));
        assert_eq!(parse_delay_levels("100ms, 200ms,1s"), Ok(three.clone()));
        let mut s = fresh();
        s.set("delay_levels", &Value::List(vec![text("100ms"), text("200ms"), text("1s")])).expect("a list");
        assert_eq!(s.broker.delay_levels, three);
        assert_eq!(DELAY_LEVELS.default().len(), 18);
        for bad in ["  ", "1s 0s", "1s x", "1s 100"] {
            assert!(parse_delay_levels(bad).is_err(), "{bad}");
            assert!(fresh().set("delay_levels", &text(bad)).is_err(), "{bad}");
        }
        assert!(reason("delay_levels", Value::List(vec![Value::Int(100), text("1s")])).contains("needs a unit"));
        assert!(reason("delay_levels", Value::List(vec![])).contains("at least one"));
    }

    #[test]
    fn a_bare_integer_is_never_a_duration() {
        let durations: Vec<_> = KEYS.iter().filter(|k| k.kind() == "duration").collect();
        assert_eq!(durations.len(), 9);
        for key in durations {
            // Every duration key: as an integer and as bare text alike.
            assert!(reason(key.name(), Value::Int(30)).contains("needs a unit"), "{}", key.name());
            assert!(reason(key.name(), text("30")).contains("no unit"), "{}", key.name());
        }
        assert!(reason("lease_ttl", Value::Int(30)).contains("needs a unit"));
    }

    #[test]
    fn bounds_resolve_what_the_old_parsers_disagreed_on() {
        // Bare integers: refused as durations everywhere (the Python SDK took them as ms).
        assert!(reason("max_delay", Value::Int(3_600_000)).contains("needs a unit"));
        // retention_hours ≥ 1 (the Python SDK took 0, which deletes every segment).
        assert_eq!(reason("retention_hours", Value::Int(0)), "must be at least 1");
        // transaction_check_max ≥ 1 (the Python SDK took 0).
        assert_eq!(reason("transaction_check_max", text("0")), "must be at least 1");
        // max_delay > 0 (the server took 0s).
        assert_eq!(reason("max_delay", text("0s")), "must be longer than zero");
        // dedup_window may be 0 = off (the Python SDK refused it).
        let mut s = fresh();
        s.set("dedup_window", &text("0s")).expect("0s turns deduplication off");
        assert_eq!(s.broker.dedup_window, Duration::ZERO);
        // Counts and sizes the Python SDK took as 0.
        for key in ["max_batch_messages", "max_batch_bytes", "default_queues", "segment_bytes", "max_message_bytes"] {
            assert!(reason(key, Value::Int(0)).starts_with("must be at least 1"), "{key}");
        }
        assert_eq!(reason("default_queues", text("1025")), "must be at most 1024");
    }

    #[test]
    fn every_key_is_settable_from_text() {
        let mut s = fresh();
        for (key, value) in [
            ("flush", "SYNC"),
            ("flush_interval", "10ms"),
            ("segment_bytes", "64KiB"),
            ("delay_levels", "1s"),
            ("max_delay", "1h"),
            ("timer_precision", "10ms"),
            ("max_reconsume_times", "0"),
            ("transaction_timeout", "1s"),
            ("transaction_check_interval", "2s"),
            ("transaction_check_max", "3"),
            ("lease_ttl", "4s"),
            ("retention_hours", "1"),
            ("max_message_bytes", "1KiB"),
            ("max_batch_messages", "5"),
            ("max_batch_bytes", "2KiB"),
            ("dedup_window", "0s"),
            ("ws_ticket_ttl", "5s"),
            ("disk_max_used_ratio", "1"),
            ("orderly_suspend", "100ms"),
            ("auto_create_topics", "off"),
            ("default_queues", "2"),
            ("auth_file", "/etc/ferrymq/auth.toml"),
        ] {
            s.set(key, &text(value)).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(s.broker.store.flush, FlushMode::Sync);
        assert_eq!(s.broker.store.flush_interval, Duration::from_millis(10));
        assert_eq!(s.broker.store.segment_bytes, 65_536);
        assert_eq!(s.broker.delay_levels, vec![Duration::from_secs(1)]);
        assert_eq!(s.broker.max_delay, Duration::from_secs(3600));
        assert_eq!(s.broker.timer_precision, Duration::from_millis(10));
        assert_eq!(s.broker.max_reconsume_times, 0);
        assert_eq!(s.broker.transaction_timeout, Duration::from_secs(1));
        assert_eq!(s.broker.transaction_check_interval, Duration::from_secs(2));
        assert_eq!(s.broker.transaction_check_max, 3);
        assert_eq!(s.broker.lease_ttl, Duration::from_secs(4));
        assert_eq!(s.broker.store.retention, Duration::from_secs(3600));
        assert_eq!(s.broker.store.max_message_bytes, 1024);
        assert_eq!(s.broker.max_batch_messages, 5);
        assert_eq!(s.broker.max_batch_bytes, 2048);
        assert_eq!(s.broker.dedup_window, Duration::ZERO);
        assert_eq!(s.server.ws_ticket_ttl, Duration::from_secs(5));
        assert_eq!(s.broker.store.disk_max_used_ratio, 1.0);
        assert_eq!(s.broker.orderly_suspend, Duration::from_millis(100));
        assert!(!s.broker.auto_create_topics);
        assert_eq!(s.broker.default_queues, 2);
        assert_eq!(s.server.auth_file, Some(PathBuf::from("/etc/ferrymq/auth.toml")));
        s.set("auth_file", &text("")).expect("empty unsets");
        assert_eq!(s.server.auth_file, None);
    }

    #[test]
    fn typed_values_mean_what_their_text_means() {
        for (key, typed, written) in [
            ("segment_bytes", Value::Int(65_536), "64KiB"),
            ("max_reconsume_times", Value::Int(3), "3"),
            ("disk_max_used_ratio", Value::Float(0.5), "0.5"),
            ("disk_max_used_ratio", Value::Int(1), "1"),
            ("auto_create_topics", Value::Bool(false), "false"),
            ("delay_levels", Value::List(vec![text("1s"), text("2s")]), "1s 2s"),
        ] {
            let (mut a, mut b) = (fresh(), fresh());
            a.set(key, &typed).unwrap_or_else(|e| panic!("{e}"));
            b.set(key, &text(written)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(a, b, "{key}");
        }
        assert!(reason("flush", Value::Bool(true)).contains("got a boolean"));
        assert!(reason("auto_create_topics", Value::Int(1)).contains("got an integer"));
        assert!(reason("max_batch_messages", Value::Float(2.0)).contains("got a float"));
        assert!(reason("segment_bytes", Value::Int(-1)).contains("negative"));
        assert!(reason("max_reconsume_times", Value::Int(-1)).contains("whole number"));
        assert!(reason("max_reconsume_times", text("99999999999")).contains("too large"));
    }

    #[test]
    fn ratio_is_in_range() {
        for bad in ["0", "-0.5", "1.01", "2", "NaN", "inf", "x"] {
            assert!(fresh().set("disk_max_used_ratio", &text(bad)).is_err(), "{bad}");
        }
        assert!(fresh().set("disk_max_used_ratio", &Value::Float(1.5)).is_err());
        for good in ["0.01", "0.95", "1", "1.0"] {
            assert!(fresh().set("disk_max_used_ratio", &text(good)).is_ok(), "{good}");
        }
    }

    #[test]
    fn errors_name_key_value_and_reason() {
        let err = fresh().set("lease_ttl", &text("30")).expect_err("no unit");
        let shown = err.to_string();
        assert!(shown.contains("`lease_ttl`") && shown.contains("`30`") && shown.contains("no unit"), "{shown}");
        let err = fresh().set("segment_bites", &Value::Int(1)).expect_err("unknown");
        assert_eq!(err, SettingError::UnknownKey { key: "segment_bites".into() });
        assert!(err.to_string().contains("`segment_bites`"));
    }

    #[test]
    fn embedded_config_refuses_server_only_keys() {
        let server_only: Vec<&str> = KEYS.iter().filter(|k| k.scope() == Scope::Server).map(|k| k.name()).collect();
        assert_eq!(server_only, ["ws_ticket_ttl", "auth_file", "tls_cert", "tls_key"]);
        for key in server_only {
            let err = fresh().set_embedded(key, &text("5s")).expect_err(key);
            assert_eq!(err, SettingError::ServerOnly { key: key.to_string() });
            assert!(err.to_string().contains("server-only"), "{err}");
            let core: crate::Error = err.into();
            assert!(matches!(&core, crate::Error::InvalidArgument { field, .. } if *field == format!("/config/{key}")));
            assert!(core.to_string().contains("server-only"), "{core}");
        }
        let mut s = fresh();
        s.set_embedded("lease_ttl", &text("3s")).expect("a broker key");
        assert_eq!(s.broker.lease_ttl, Duration::from_secs(3));
        assert!(matches!(s.set_embedded("nope", &text("1")), Err(SettingError::UnknownKey { .. })));
    }

    #[test]
    fn shown_values_are_compact() {
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(show_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(show_duration(Duration::ZERO), "0s");
        assert_eq!(show_size(16 << 20), "16MiB");
        assert_eq!(show_size(1000), "1000");
        assert_eq!(show_size(0), "0");
    }
}
