//! Server configuration: every tunable of the design, typed and validated, and the layering that
//! fills it: defaults, then the TOML file, then `FERRYMQ_<KEY>` environment variables, then
//! `--set key=value` flags, each layer beating the ones before it.
//!
//! This module only parses; it knows nothing of the broker. The server maps a [`Config`] onto
//! core's options, and maps a [`ConfigError`] to exit status 2.
// The server wiring is in progress: until `main` uses every item, unused ones are expected.
#![cfg_attr(not(test), allow(dead_code))]

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrymq_core::broker::BrokerConfig;
use ferrymq_core::store::FlushMode as StoreFlushMode;

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "FERRYMQ_";

/// Keys that are command-line flags rather than configuration keys. clap reads their
/// `FERRYMQ_*` variables itself, so [`Config::load`] skips them without a warning; in the file
/// or in `--set` they are unknown keys.
const CLI_FLAG_KEYS: &[&str] = &["data_dir", "listen", "config"];

/// The default delay levels, level 1 first, as the design writes them.
pub const DEFAULT_DELAY_LEVELS: &str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";

/// When a publish is acknowledged relative to the fsync of its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlushMode {
    /// Acknowledge once written to the page cache; a background flush runs every
    /// `flush_interval`. Survives a process crash; a machine crash may lose the last interval.
    #[default]
    Async,
    /// Acknowledge only after fsync. Survives a process crash and a machine crash.
    Sync,
}

/// The server's configuration. Build it with [`Config::load`]; [`Config::default`] holds the
/// documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Data directory (the `--data-dir` flag, not a key).
    pub data_dir: PathBuf,
    /// Address to listen on (the `--listen` flag, not a key).
    pub listen: SocketAddr,
    /// `flush`: acknowledge after the page cache (`async`) or after fsync (`sync`).
    pub flush: FlushMode,
    /// `flush_interval`: period of the background flush under `async`.
    pub flush_interval: Duration,
    /// `segment_bytes`: size of one commit-log segment file.
    pub segment_bytes: u64,
    /// `delay_levels`: the delay of each level, level 1 first.
    pub delay_levels: Vec<Duration>,
    /// `max_delay`: furthest ahead a `delay_ms` or `deliver_at` may be.
    pub max_delay: Duration,
    /// `timer_precision`: delay timers round up to this, so they are never early.
    pub timer_precision: Duration,
    /// `max_reconsume_times`: default, per group, of redeliveries before the DLQ.
    pub max_reconsume_times: u32,
    /// `transaction_timeout`: age of a half message before it is checked back.
    pub transaction_timeout: Duration,
    /// `transaction_check_interval`: how often unresolved half messages are checked back.
    pub transaction_check_interval: Duration,
    /// `transaction_check_max`: `unknown` answers after which a half message is discarded.
    pub transaction_check_max: u32,
    /// `lease_ttl`: expiry of group members and of orderly queue leases.
    pub lease_ttl: Duration,
    /// `retention_hours`: age after which whole commit-log segments are deleted.
    pub retention_hours: u64,
    /// `max_message_bytes`: largest body of one message.
    pub max_message_bytes: usize,
    /// `max_batch_messages`: most messages in one batch publish.
    pub max_batch_messages: usize,
    /// `max_batch_bytes`: largest sum of bodies in one batch publish.
    pub max_batch_bytes: usize,
    /// `dedup_window`: how long an idempotency key is remembered.
    pub dedup_window: Duration,
    /// `max_receive_bytes`: most body bytes one receive or pull returns (at least one message).
    pub max_receive_bytes: usize,
    /// `ws_ticket_ttl`: validity of a single-use WebSocket ticket.
    pub ws_ticket_ttl: Duration,
    /// `disk_max_used_ratio`: share of the data disk above which writes are refused (507);
    /// `0 < r <= 1`.
    pub disk_max_used_ratio: f64,
    /// `orderly_suspend`: pause of an orderly queue after a failed delivery.
    pub orderly_suspend: Duration,
    /// `auto_create_topics`: create a topic on its first publish (otherwise 404).
    pub auto_create_topics: bool,
    /// `default_queues`: queue count of auto-created topics and of creates that do not say.
    pub default_queues: u32,
    /// `auth_file`: the tokens file; `None` leaves the server open.
    pub auth_file: Option<PathBuf>,
}

/// The default delay levels as durations (see [`DEFAULT_DELAY_LEVELS`]).
impl Default for Config {
    /// The broker's own defaults ([`BrokerConfig::new`] is the one place they are written),
    /// plus the gateway's keys.
    fn default() -> Self {
        let data_dir = PathBuf::from("./ferrymq-data");
        let b = BrokerConfig::new(&data_dir);
        Config {
            data_dir,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            flush: match b.store.flush {
                StoreFlushMode::Async => FlushMode::Async,
                StoreFlushMode::Sync => FlushMode::Sync,
            },
            flush_interval: b.store.flush_interval,
            segment_bytes: b.store.segment_bytes,
            delay_levels: b.delay_levels,
            max_delay: b.max_delay,
            timer_precision: b.timer_precision,
            max_reconsume_times: b.max_reconsume_times,
            transaction_timeout: b.transaction_timeout,
            transaction_check_interval: b.transaction_check_interval,
            transaction_check_max: b.transaction_check_max,
            lease_ttl: b.lease_ttl,
            retention_hours: b.store.retention.as_secs() / 3600,
            max_message_bytes: b.store.max_message_bytes,
            max_batch_messages: b.max_batch_messages,
            max_batch_bytes: b.max_batch_bytes,
            dedup_window: b.dedup_window,
            max_receive_bytes: b.max_receive_bytes,
            ws_ticket_ttl: Duration::from_secs(60),
            disk_max_used_ratio: b.store.disk_max_used_ratio,
            orderly_suspend: b.orderly_suspend,
            auto_create_topics: b.auto_create_topics,
            default_queues: b.default_queues,
            auth_file: None,
        }
    }
}

/// Where a configuration value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// A `--set key=value` flag.
    Set,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "in config file {}", path.display()),
            Origin::Env(var) => write!(f, "from environment variable {var}"),
            Origin::Set => f.write_str("in --set"),
        }
    }
}

/// Why the configuration could not be loaded. Every variant stops the server (exit status 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key that is not a configuration key, in the file or in `--set`.
    #[error("unknown configuration key `{key}` {origin}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was written.
        origin: Origin,
    },
    /// A known key with a value it cannot take.
    #[error("invalid value `{value}` for `{key}` {origin}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// Where it was written.
        origin: Origin,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--set` argument without `=` or without a key.
    #[error("--set `{arg}` is not of the form key=value")]
    MalformedSet {
        /// The argument as given.
        arg: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {} is not valid TOML: {source}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The TOML error, with line and column.
        source: toml::de::Error,
    },
}

/// A string that is not a valid duration, size or list of durations; says why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(String);

/// Parses a duration: a whole number and a unit, `ms`, `s`, `m` (minutes), `h` or `d`, e.g.
/// `500ms`, `6s`, `2h`. A bare number is refused, since its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let (number, unit) = split_number(text, "duration", "500ms, 6s, 1m, 2h or 1d")?;
    let millis_per_unit: u64 = match unit.to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err(ValueError(format!("`{text}` has no unit: write it like 500ms, 6s, 1m, 2h or 1d"))),
        _ => return Err(ValueError(format!("`{text}` has an unknown unit `{unit}` (expected ms, s, m, h or d)"))),
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| ValueError(format!("`{text}` is too large")))
}

/// Parses a size in bytes: a whole number, optionally with a unit, `B`, `KB`/`MB`/`GB`/`TB`
/// (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024), e.g. `1024`, `64KiB`, `8MiB`,
/// `10MB`. Units are case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
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
            return Err(ValueError(format!(
                "`{text}` has an unknown unit `{unit}` (expected B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            )))
        }
    };
    number.checked_mul(multiplier).ok_or_else(|| ValueError(format!("`{text}` is too large")))
}

/// Parses delay levels: durations separated by spaces (commas are accepted too), level 1
/// first, e.g. `100ms 200ms 1s`. At least one level, each longer than zero.
pub fn parse_delay_levels(text: &str) -> Result<Vec<Duration>, ValueError> {
    let levels = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|part| !part.is_empty())
        .map(parse_positive_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if levels.is_empty() {
        return Err(ValueError("at least one delay level is needed".into()));
    }
    Ok(levels)
}

/// Splits `text` (trimmed) into its leading whole number and the rest (trimmed), the unit.
fn split_number<'a>(text: &'a str, what: &str, examples: &str) -> Result<(u64, &'a str), ValueError> {
    let trimmed = text.trim();
    let digits_end = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (digits, rest) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(ValueError(format!("`{text}` is not a {what}: write it like {examples}")));
    }
    if rest.starts_with('.') {
        return Err(ValueError(format!("`{text}` is not a {what}: use a whole number with a smaller unit")));
    }
    let number = digits.parse::<u64>().map_err(|_| ValueError(format!("`{text}` is too large")))?;
    Ok((number, rest.trim()))
}

fn parse_positive_duration(text: &str) -> Result<Duration, ValueError> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(ValueError(format!("`{text}` must be longer than zero")));
    }
    Ok(duration)
}

/// A value as it arrived (a TOML value, or the text of an environment variable or `--set`),
/// before it is typed for its key.
enum Raw {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Raw>),
    /// A TOML table or date: never a valid value here.
    Other(&'static str),
}

impl From<toml::Value> for Raw {
    fn from(value: toml::Value) -> Self {
        match value {
            toml::Value::String(s) => Raw::Text(s),
            toml::Value::Integer(n) => Raw::Int(n),
            toml::Value::Float(x) => Raw::Float(x),
            toml::Value::Boolean(b) => Raw::Bool(b),
            toml::Value::Array(items) => Raw::List(items.into_iter().map(Raw::from).collect()),
            toml::Value::Table(_) => Raw::Other("a table"),
            toml::Value::Datetime(_) => Raw::Other("a date"),
        }
    }
}

/// Why a key could not be applied.
enum ApplyError {
    UnknownKey,
    Invalid(String),
}

impl From<String> for ApplyError {
    fn from(reason: String) -> Self {
        ApplyError::Invalid(reason)
    }
}

impl From<ValueError> for ApplyError {
    fn from(err: ValueError) -> Self {
        ApplyError::Invalid(err.0)
    }
}

fn kind_of(raw: &Raw) -> &'static str {
    match raw {
        Raw::Text(_) => "a string",
        Raw::Int(_) => "an integer",
        Raw::Float(_) => "a float",
        Raw::Bool(_) => "a boolean",
        Raw::List(_) => "an array",
        Raw::Other(kind) => kind,
    }
}

fn expected(what: &str, raw: &Raw) -> String {
    format!("expected {what}, got {}", kind_of(raw))
}

fn duration(raw: &Raw) -> Result<Duration, ApplyError> {
    match raw {
        Raw::Text(s) => Ok(parse_duration(s)?),
        Raw::Int(_) => Err("a duration needs a unit: write it as a string like \"6s\" or \"500ms\"".to_string().into()),
        _ => Err(expected("a duration such as \"6s\"", raw).into()),
    }
}

fn positive_duration(raw: &Raw) -> Result<Duration, ApplyError> {
    let d = duration(raw)?;
    if d.is_zero() {
        return Err("must be longer than zero".to_string().into());
    }
    Ok(d)
}

fn unsigned(raw: &Raw) -> Result<u64, ApplyError> {
    match raw {
        Raw::Text(s) => s.trim().parse::<u64>().map_err(|_| "expected a whole number of at least 0".to_string().into()),
        Raw::Int(n) => u64::try_from(*n).map_err(|_| "expected a whole number of at least 0".to_string().into()),
        _ => Err(expected("a whole number", raw).into()),
    }
}

/// A whole number in `min..=T::MAX`.
fn count<T: TryFrom<u64>>(raw: &Raw, min: u64) -> Result<T, ApplyError> {
    let n = unsigned(raw)?;
    if n < min {
        return Err(format!("must be at least {min}").into());
    }
    T::try_from(n).map_err(|_| "is too large".to_string().into())
}

/// A size in bytes, at least 1, that fits `T`.
fn size<T: TryFrom<u64>>(raw: &Raw) -> Result<T, ApplyError> {
    let n = match raw {
        Raw::Text(s) => parse_size(s)?,
        Raw::Int(n) => u64::try_from(*n).map_err(|_| "a size cannot be negative".to_string())?,
        _ => return Err(expected("a size such as 1024 or \"8MiB\"", raw).into()),
    };
    if n == 0 {
        return Err("must be at least 1 byte".to_string().into());
    }
    T::try_from(n).map_err(|_| "is too large for this machine".to_string().into())
}

fn boolean(raw: &Raw) -> Result<bool, ApplyError> {
    match raw {
        Raw::Bool(b) => Ok(*b),
        Raw::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".to_string().into()),
        },
        _ => Err(expected("true or false", raw).into()),
    }
}

fn ratio(raw: &Raw) -> Result<f64, ApplyError> {
    let r = match raw {
        Raw::Float(x) => *x,
        // An integer ratio can only be valid as 1; the conversion is exact for it.
        Raw::Int(n) => *n as f64,
        Raw::Text(s) => s.trim().parse::<f64>().map_err(|_| "expected a number such as 0.95".to_string())?,
        _ => return Err(expected("a number such as 0.95", raw).into()),
    };
    if r > 0.0 && r <= 1.0 {
        Ok(r)
    } else {
        Err("must be greater than 0 and at most 1".to_string().into())
    }
}

fn flush_mode(raw: &Raw) -> Result<FlushMode, ApplyError> {
    match raw {
        Raw::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "async" => Ok(FlushMode::Async),
            "sync" => Ok(FlushMode::Sync),
            _ => Err("expected \"async\" or \"sync\"".to_string().into()),
        },
        _ => Err(expected("\"async\" or \"sync\"", raw).into()),
    }
}

fn delay_levels(raw: &Raw) -> Result<Vec<Duration>, ApplyError> {
    match raw {
        Raw::Text(s) => Ok(parse_delay_levels(s)?),
        Raw::List(items) => {
            let levels = items
                .iter()
                .map(|item| -> Result<Duration, ApplyError> {
                    match item {
                        Raw::Text(s) => Ok(parse_positive_duration(s)?),
                        _ => Err(expected("durations such as \"1s\"", item).into()),
                    }
                })
                .collect::<Result<Vec<_>, ApplyError>>()?;
            if levels.is_empty() {
                return Err("at least one delay level is needed".to_string().into());
            }
            Ok(levels)
        }
        _ => Err(expected("durations such as \"1s 5s 10s\"", raw).into()),
    }
}

fn optional_path(raw: &Raw) -> Result<Option<PathBuf>, ApplyError> {
    match raw {
        // An empty value clears a path set by a lower layer.
        Raw::Text(s) if s.trim().is_empty() => Ok(None),
        Raw::Text(s) => Ok(Some(PathBuf::from(s))),
        _ => Err(expected("a path", raw).into()),
    }
}

/// Shows a value as it was written, for error messages.
fn show(raw: &Raw) -> String {
    match raw {
        Raw::Text(s) => s.clone(),
        Raw::Int(n) => n.to_string(),
        Raw::Float(x) => x.to_string(),
        Raw::Bool(b) => b.to_string(),
        Raw::List(items) => {
            let shown: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", shown.join(", "))
        }
        Raw::Other(kind) => format!("<{kind}>"),
    }
}

impl Config {
    /// Builds the configuration from the defaults, then the TOML `file` (flat keys), then the
    /// `FERRYMQ_<KEY>` variables in `env`, then `sets` (`key=value` each), later layers beating
    /// earlier ones. Returns it with warnings for `FERRYMQ_*` variables that name no key.
    ///
    /// `env` is every variable of the process (others are skipped). Pass
    /// `std::env::vars_os()` filtered to UTF-8, since `std::env::vars()` panics on other
    /// values. `data_dir` and `listen` stay at their defaults: they are command-line flags.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        sets: &[String],
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut config = Config::default();
        let mut warnings = Vec::new();

        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::ReadFile { path: path.to_path_buf(), source })?;
            let table: toml::Table =
                toml::from_str(&text).map_err(|source| ConfigError::ParseFile { path: path.to_path_buf(), source })?;
            for (key, value) in table {
                config.set(&key, value.into(), Origin::File(path.to_path_buf()))?;
            }
        }

        // Sorted, so that which error or warning comes first does not depend on the
        // environment's order.
        let mut vars: Vec<(String, String)> =
            env.into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
        vars.sort();
        for (name, value) in vars {
            let key = name[ENV_PREFIX.len()..].to_ascii_lowercase();
            if CLI_FLAG_KEYS.contains(&key.as_str()) {
                continue;
            }
            let origin = Origin::Env(name.clone());
            match config.apply(&key, &Raw::Text(value.clone())) {
                Ok(()) => {}
                Err(ApplyError::UnknownKey) => {
                    warnings.push(format!("ignoring environment variable {name}: not a server configuration key"))
                }
                Err(ApplyError::Invalid(reason)) => {
                    return Err(ConfigError::InvalidValue { key, value, origin, reason })
                }
            }
        }

        for arg in sets {
            let Some((key, value)) = arg.split_once('=') else {
                return Err(ConfigError::MalformedSet { arg: arg.clone() });
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(ConfigError::MalformedSet { arg: arg.clone() });
            }
            config.set(key, Raw::Text(value.to_string()), Origin::Set)?;
        }

        Ok((config, warnings))
    }

    /// Applies one value, turning a failure into a [`ConfigError`] naming the key.
    fn set(&mut self, key: &str, raw: Raw, origin: Origin) -> Result<(), ConfigError> {
        self.apply(key, &raw).map_err(|err| match err {
            ApplyError::UnknownKey => ConfigError::UnknownKey { key: key.to_string(), origin },
            ApplyError::Invalid(reason) => {
                ConfigError::InvalidValue { key: key.to_string(), value: show(&raw), origin, reason }
            }
        })
    }

    /// Types `raw` for `key` and stores it. The one list of keys.
    fn apply(&mut self, key: &str, raw: &Raw) -> Result<(), ApplyError> {
        match key {
            "flush" => self.flush = flush_mode(raw)?,
            "flush_interval" => self.flush_interval = positive_duration(raw)?,
            "segment_bytes" => self.segment_bytes = size(raw)?,
            "delay_levels" => self.delay_levels = delay_levels(raw)?,
            "max_delay" => self.max_delay = duration(raw)?,
            "timer_precision" => self.timer_precision = positive_duration(raw)?,
            "max_reconsume_times" => self.max_reconsume_times = count(raw, 0)?,
            "transaction_timeout" => self.transaction_timeout = positive_duration(raw)?,
            "transaction_check_interval" => self.transaction_check_interval = positive_duration(raw)?,
            "transaction_check_max" => self.transaction_check_max = count(raw, 1)?,
            "lease_ttl" => self.lease_ttl = positive_duration(raw)?,
            "retention_hours" => self.retention_hours = count(raw, 1)?,
            "max_message_bytes" => self.max_message_bytes = size(raw)?,
            "max_batch_messages" => self.max_batch_messages = count(raw, 1)?,
            "max_batch_bytes" => self.max_batch_bytes = size(raw)?,
            "dedup_window" => self.dedup_window = duration(raw)?,
            "max_receive_bytes" => self.max_receive_bytes = size(raw)?,
            "ws_ticket_ttl" => self.ws_ticket_ttl = positive_duration(raw)?,
            "disk_max_used_ratio" => self.disk_max_used_ratio = ratio(raw)?,
            "orderly_suspend" => self.orderly_suspend = positive_duration(raw)?,
            "auto_create_topics" => self.auto_create_topics = boolean(raw)?,
            "default_queues" => self.default_queues = count(raw, 1)?,
            "auth_file" => self.auth_file = optional_path(raw)?,
            _ => return Err(ApplyError::UnknownKey),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn sets(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn write_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("write temp file");
        file
    }

    fn load_set(args: &[&str]) -> Result<Config, ConfigError> {
        Config::load(None, Vec::new(), &sets(args)).map(|(config, _)| config)
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
            assert!(err.to_string().contains(needle), "{input}: {err}");
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
            assert!(err.to_string().contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn delay_levels_parse() {
        assert_eq!(
            parse_delay_levels("100ms 200ms 1s"),
            Ok(vec![Duration::from_millis(100), Duration::from_millis(200), Duration::from_secs(1)])
        );
        assert_eq!(parse_delay_levels(DEFAULT_DELAY_LEVELS), Ok(ferrymq_core::broker::default_delay_levels()));
        assert_eq!(ferrymq_core::broker::default_delay_levels().len(), 18);
        assert!(parse_delay_levels("  ").is_err());
        assert!(parse_delay_levels("1s 0s").is_err());
        assert!(parse_delay_levels("1s x").is_err());

        let config = load_set(&["delay_levels=100ms 200ms 1s"]).expect("valid");
        assert_eq!(config.delay_levels.len(), 3);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let (config, warnings) = Config::load(None, Vec::new(), &[]).expect("defaults load");
        assert!(warnings.is_empty());
        assert_eq!(config, Config::default());
        assert_eq!(config.flush, FlushMode::Async);
        assert_eq!(config.segment_bytes, 1 << 30);
        assert_eq!(config.max_delay, Duration::from_secs(3 * 86_400));
        assert_eq!(config.max_message_bytes, 4 << 20);
        assert_eq!(config.disk_max_used_ratio, 0.95);
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./ferrymq-data"));
        assert_eq!(config.auth_file, None);
    }

    #[test]
    fn every_key_is_settable() {
        let config = load_set(&[
            "flush=sync",
            "flush_interval=10ms",
            "segment_bytes=64KiB",
            "delay_levels=1s",
            "max_delay=1h",
            "timer_precision=10ms",
            "max_reconsume_times=0",
            "transaction_timeout=1s",
            "transaction_check_interval=2s",
            "transaction_check_max=3",
            "lease_ttl=4s",
            "retention_hours=1",
            "max_message_bytes=1KiB",
            "max_batch_messages=5",
            "max_batch_bytes=2KiB",
            "dedup_window=0s",
            "ws_ticket_ttl=5s",
            "disk_max_used_ratio=1",
            "orderly_suspend=100ms",
            "auto_create_topics=false",
            "default_queues=2",
            "auth_file=/etc/ferrymq/auth.toml",
        ])
        .expect("all valid");
        assert_eq!(config.flush, FlushMode::Sync);
        assert_eq!(config.flush_interval, Duration::from_millis(10));
        assert_eq!(config.segment_bytes, 65_536);
        assert_eq!(config.delay_levels, vec![Duration::from_secs(1)]);
        assert_eq!(config.max_delay, Duration::from_secs(3600));
        assert_eq!(config.timer_precision, Duration::from_millis(10));
        assert_eq!(config.max_reconsume_times, 0);
        assert_eq!(config.transaction_timeout, Duration::from_secs(1));
        assert_eq!(config.transaction_check_interval, Duration::from_secs(2));
        assert_eq!(config.transaction_check_max, 3);
        assert_eq!(config.lease_ttl, Duration::from_secs(4));
        assert_eq!(config.retention_hours, 1);
        assert_eq!(config.max_message_bytes, 1024);
        assert_eq!(config.max_batch_messages, 5);
        assert_eq!(config.max_batch_bytes, 2048);
        assert_eq!(config.dedup_window, Duration::ZERO);
        assert_eq!(config.ws_ticket_ttl, Duration::from_secs(5));
        assert_eq!(config.disk_max_used_ratio, 1.0);
        assert_eq!(config.orderly_suspend, Duration::from_millis(100));
        assert!(!config.auto_create_topics);
        assert_eq!(config.default_queues, 2);
        assert_eq!(config.auth_file, Some(PathBuf::from("/etc/ferrymq/auth.toml")));
    }

    #[test]
    fn precedence_is_set_then_env_then_file_then_default() {
        let file = write_file(
            "max_reconsume_times = 1\n\
             transaction_check_max = 1\n\
             default_queues = 1\n",
        );
        let environment =
            env(&[("FERRYMQ_MAX_RECONSUME_TIMES", "2"), ("FERRYMQ_TRANSACTION_CHECK_MAX", "2"), ("PATH", "/usr/bin")]);
        let (config, warnings) =
            Config::load(Some(file.path()), environment, &sets(&["max_reconsume_times=3"])).expect("valid");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.max_reconsume_times, 3, "--set beats env and file");
        assert_eq!(config.transaction_check_max, 2, "env beats file");
        assert_eq!(config.default_queues, 1, "file beats default");
        assert_eq!(config.lease_ttl, Duration::from_secs(30), "default");
    }

    #[test]
    fn later_set_wins() {
        let config = load_set(&["default_queues=2", "default_queues=4"]).expect("valid");
        assert_eq!(config.default_queues, 4);
    }

    #[test]
    fn file_values_may_be_strings_or_native() {
        for text in ["segment_bytes = 65536", "segment_bytes = \"64KiB\"", "segment_bytes = \"65536\""] {
            let file = write_file(text);
            let (config, _) = Config::load(Some(file.path()), Vec::new(), &[]).expect(text);
            assert_eq!(config.segment_bytes, 65_536, "{text}");
        }
        let file = write_file(
            "flush = \"sync\"\n\
             auto_create_topics = false\n\
             disk_max_used_ratio = 0.5\n\
             max_delay = \"2d\"\n\
             delay_levels = [\"1s\", \"2s\"]\n\
             auth_file = \"auth.toml\"\n",
        );
        let (config, _) = Config::load(Some(file.path()), Vec::new(), &[]).expect("valid");
        assert_eq!(config.flush, FlushMode::Sync);
        assert!(!config.auto_create_topics);
        assert_eq!(config.disk_max_used_ratio, 0.5);
        assert_eq!(config.max_delay, Duration::from_secs(2 * 86_400));
        assert_eq!(config.delay_levels.len(), 2);
        assert_eq!(config.auth_file, Some(PathBuf::from("auth.toml")));
    }

    #[test]
    fn env_values_are_typed() {
        let (config, _) = Config::load(
            None,
            env(&[
                ("FERRYMQ_FLUSH", "sync"),
                ("FERRYMQ_MAX_MESSAGE_BYTES", "1MiB"),
                ("FERRYMQ_AUTO_CREATE_TOPICS", "false"),
            ]),
            &[],
        )
        .expect("valid");
        assert_eq!(config.flush, FlushMode::Sync);
        assert_eq!(config.max_message_bytes, 1 << 20);
        assert!(!config.auto_create_topics);
    }

    #[test]
    fn unknown_key_in_file_is_an_error_naming_it() {
        let file = write_file("flush = \"sync\"\nsegment_bites = 1024\n");
        let err = Config::load(Some(file.path()), Vec::new(), &[]).expect_err("unknown key");
        assert!(matches!(&err, ConfigError::UnknownKey { key, origin: Origin::File(_) } if key == "segment_bites"));
        assert!(err.to_string().contains("`segment_bites`"), "{err}");

        // A table is an unknown key too: keys are flat.
        let file = write_file("[server]\nflush = \"sync\"\n");
        let err = Config::load(Some(file.path()), Vec::new(), &[]).expect_err("table");
        assert!(err.to_string().contains("`server`"), "{err}");

        // data_dir and listen are flags, not keys.
        let file = write_file("data_dir = \"/tmp/x\"\n");
        let err = Config::load(Some(file.path()), Vec::new(), &[]).expect_err("flag");
        assert!(err.to_string().contains("`data_dir`"), "{err}");
    }

    #[test]
    fn unknown_key_in_set_is_an_error_naming_it() {
        let err = load_set(&["no_such_key=1"]).expect_err("unknown key");
        assert!(matches!(&err, ConfigError::UnknownKey { key, origin: Origin::Set } if key == "no_such_key"));
        assert!(err.to_string().contains("`no_such_key`"), "{err}");
    }

    #[test]
    fn set_without_equals_is_an_error() {
        for arg in ["flush", "=sync", ""] {
            let err = load_set(&[arg]).expect_err(arg);
            assert!(matches!(err, ConfigError::MalformedSet { .. }), "{arg}");
        }
    }

    #[test]
    fn unknown_env_var_is_a_warning() {
        let (config, warnings) = Config::load(
            None,
            env(&[
                ("FERRYMQ_URL", "http://localhost:8080"),
                ("FERRYMQ_DATA_DIR", "/tmp/data"),
                ("FERRYMQ_LISTEN", "0.0.0.0:1"),
                ("HOME", "/root"),
            ]),
            &[],
        )
        .expect("warnings are not errors");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("FERRYMQ_URL"), "{warnings:?}");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn invalid_values_name_key_and_value() {
        let err = load_set(&["flush=sometimes"]).expect_err("bad flush");
        let text = err.to_string();
        assert!(text.contains("`flush`") && text.contains("`sometimes`"), "{text}");

        let err = Config::load(None, env(&[("FERRYMQ_LEASE_TTL", "30")]), &[]).expect_err("no unit");
        let text = err.to_string();
        assert!(text.contains("`lease_ttl`") && text.contains("`30`") && text.contains("FERRYMQ_LEASE_TTL"), "{text}");

        let file = write_file("max_delay = 3600\n");
        let err = Config::load(Some(file.path()), Vec::new(), &[]).expect_err("int duration");
        assert!(err.to_string().contains("needs a unit"), "{err}");

        for arg in [
            "default_queues=0",
            "default_queues=-1",
            "segment_bytes=0",
            "max_batch_messages=many",
            "auto_create_topics=maybe",
            "lease_ttl=0s",
            "max_reconsume_times=99999999999",
        ] {
            let err = load_set(&[arg]).expect_err(arg);
            assert!(matches!(err, ConfigError::InvalidValue { .. }), "{arg}");
        }
    }

    #[test]
    fn disk_ratio_must_be_in_range() {
        for bad in ["0", "-0.5", "1.01", "2", "NaN", "inf", "x"] {
            let err = load_set(&[&format!("disk_max_used_ratio={bad}")]).expect_err(bad);
            assert!(
                matches!(&err, ConfigError::InvalidValue { key, .. } if key == "disk_max_used_ratio"),
                "{bad}: {err}"
            );
        }
        let file = write_file("disk_max_used_ratio = 1.5\n");
        assert!(Config::load(Some(file.path()), Vec::new(), &[]).is_err());
        for good in ["0.01", "0.95", "1", "1.0"] {
            assert!(load_set(&[&format!("disk_max_used_ratio={good}")]).is_ok(), "{good}");
        }
    }

    #[test]
    fn unreadable_or_invalid_file_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.toml");
        let err = Config::load(Some(&missing), Vec::new(), &[]).expect_err("missing");
        assert!(matches!(err, ConfigError::ReadFile { .. }));

        let file = write_file("flush = \n");
        let err = Config::load(Some(file.path()), Vec::new(), &[]).expect_err("bad toml");
        assert!(matches!(err, ConfigError::ParseFile { .. }));
    }

    #[test]
    fn empty_auth_file_clears_it() {
        let (config, _) =
            Config::load(None, env(&[("FERRYMQ_AUTH_FILE", "/a.toml")]), &sets(&["auth_file="])).expect("valid");
        assert_eq!(config.auth_file, None);
    }
}
