//! Server configuration: the layering that fills the configuration keys: defaults, then the
//! TOML file, then `FERRYMQ_<KEY>` environment variables, then `--set key=value` flags, each
//! layer beating the ones before it.
//!
//! Which keys exist, how their values are written, their defaults and bounds are core's one
//! table ([`ferrymq_core::config`]), shared with every binding's embedded config; this module
//! only knows where values come from. The server maps a [`ConfigError`] to exit status 2.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ferrymq_core::config::{find, Scope, SettingError, Settings, Value, KEYS};

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "FERRYMQ_";

/// Keys that are command-line flags rather than configuration keys. clap reads their
/// `FERRYMQ_*` variables itself, so [`Config::load`] skips them without a warning; in the file
/// or in `--set` they are unknown keys.
const CLI_FLAG_KEYS: &[&str] = &["data_dir", "listen", "config"];

/// The server's configuration. Build it with [`Config::load`]; [`Config::default`] holds the
/// defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Address to listen on (the `--listen` flag, not a key).
    pub listen: SocketAddr,
    /// Every key's value: the broker's configuration (its `store.dir` is the `--data-dir`
    /// flag) and the server's own settings.
    pub settings: Settings,
}

impl Default for Config {
    /// The defaults of the flags and of every key (core's table).
    fn default() -> Self {
        Config { listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)), settings: Settings::new("./ferrymq-data") }
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
    #[error("unknown configuration key `{key}` {origin} (`ferrymq config` lists the keys)")]
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
    /// Any other refusal of core's table.
    #[error("{source} {origin}")]
    Setting {
        /// The table's error.
        source: SettingError,
        /// Where the value was written.
        origin: Origin,
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

impl ConfigError {
    fn from_setting(err: SettingError, origin: Origin) -> Self {
        match err {
            SettingError::UnknownKey { key } => ConfigError::UnknownKey { key, origin },
            SettingError::InvalidValue { key, value, reason } => {
                ConfigError::InvalidValue { key, value, origin, reason }
            }
            other => ConfigError::Setting { source: other, origin },
        }
    }
}

/// A TOML value as core's [`Value`]; a table or a date is never one, and is named instead.
fn toml_value(value: toml::Value) -> Result<Value, &'static str> {
    Ok(match value {
        toml::Value::String(s) => Value::Text(s),
        toml::Value::Integer(n) => Value::Int(n),
        toml::Value::Float(x) => Value::Float(x),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Array(items) => Value::List(items.into_iter().map(toml_value).collect::<Result<_, _>>()?),
        toml::Value::Table(_) => return Err("a table"),
        toml::Value::Datetime(_) => return Err("a date"),
    })
}

impl Config {
    /// Builds the configuration from the defaults, then the TOML `file` (flat keys), then the
    /// `FERRYMQ_<KEY>` variables in `env`, then `sets` (`key=value` each), later layers beating
    /// earlier ones. Returns it with warnings for `FERRYMQ_*` variables that name no key.
    ///
    /// `env` is every variable of the process (others are skipped). Pass
    /// `std::env::vars_os()` filtered to UTF-8, since `std::env::vars()` panics on other
    /// values. The data directory and `listen` stay at their defaults: they are command-line
    /// flags.
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
                let origin = Origin::File(path.to_path_buf());
                match toml_value(value) {
                    Ok(value) => config.set(&key, &value, origin)?,
                    Err(_) if find(&key).is_none() => return Err(ConfigError::UnknownKey { key, origin }),
                    Err(kind) => {
                        return Err(ConfigError::InvalidValue {
                            value: format!("<{kind}>"),
                            key,
                            origin,
                            reason: format!("expected a value, got {kind}: keys are flat"),
                        })
                    }
                }
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
            if find(&key).is_none() {
                warnings.push(format!("ignoring environment variable {name}: not a server configuration key"));
                continue;
            }
            config.set(&key, &Value::Text(value), Origin::Env(name))?;
        }

        for arg in sets {
            let Some((key, value)) = arg.split_once('=') else {
                return Err(ConfigError::MalformedSet { arg: arg.clone() });
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(ConfigError::MalformedSet { arg: arg.clone() });
            }
            config.set(key, &Value::Text(value.to_string()), Origin::Set)?;
        }

        Ok((config, warnings))
    }

    /// Applies one value through core's table, turning a refusal into a [`ConfigError`].
    fn set(&mut self, key: &str, value: &Value, origin: Origin) -> Result<(), ConfigError> {
        self.settings.set(key, value).map_err(|err| ConfigError::from_setting(err, origin))
    }
}

/// The keys of core's table, as `ferrymq config` prints them: a header, then per key its
/// name, type, default, bounds and scope on one line and its doc line below.
pub fn describe_keys() -> String {
    let mut out = String::from(
        "Configuration keys of `ferrymq serve`: --set key=value, FERRYMQ_<KEY>, or the --config TOML file.\n\
         Durations need a unit (500ms, 6s, 1m, 2h, 1d); sizes are bytes or 64KiB, 8MiB, 10MB.\n\
         An embedded broker (e.g. Client.embedded in Python) takes the same keys, but not the server-only ones.\n\n",
    );
    let rows: Vec<[String; 5]> = KEYS
        .iter()
        .map(|key| {
            let default = key.default_text();
            [
                key.name().to_string(),
                key.kind().to_string(),
                if default.is_empty() { "(unset)".to_string() } else { default },
                key.bounds(),
                if key.scope() == Scope::Server { "server only".to_string() } else { String::new() },
            ]
        })
        .collect();
    let header = ["KEY", "TYPE", "DEFAULT", "BOUNDS", "SCOPE"].map(String::from);
    // Columns as wide as their cells, except that a long cell (the delay levels) overflows
    // its row rather than widening every other.
    const WIDEST: usize = 24;
    let mut widths = [0; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            let len = cell.chars().count();
            if len <= WIDEST {
                *width = (*width).max(len);
            }
        }
    }
    let line = |row: &[String; 5]| {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        format!("{}\n", cells.join("  ").trim_end())
    };
    out.push_str(&line(&header));
    for (row, key) in rows.iter().zip(KEYS) {
        out.push_str(&line(row));
        out.push_str(&format!("    {}\n", key.doc()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use ferrymq_core::store::FlushMode;

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
    fn delay_levels_parse() {
        let config = load_set(&["delay_levels=100ms 200ms 1s"]).expect("valid");
        assert_eq!(
            config.settings.broker.delay_levels,
            vec![Duration::from_millis(100), Duration::from_millis(200), Duration::from_secs(1)]
        );
        assert_eq!(Config::default().settings.broker.delay_levels, ferrymq_core::broker::default_delay_levels());
        for bad in ["delay_levels=  ", "delay_levels=1s 0s", "delay_levels=1s x"] {
            assert!(matches!(load_set(&[bad]), Err(ConfigError::InvalidValue { .. })), "{bad}");
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let (config, warnings) = Config::load(None, Vec::new(), &[]).expect("defaults load");
        assert!(warnings.is_empty());
        assert_eq!(config, Config::default());
        assert_eq!(config.settings.broker.store.flush, FlushMode::Async);
        assert_eq!(config.settings.broker.store.segment_bytes, 1 << 30);
        assert_eq!(config.settings.broker.max_delay, Duration::from_secs(3 * 86_400));
        assert_eq!(config.settings.broker.store.max_message_bytes, 4 << 20);
        assert_eq!(config.settings.broker.store.disk_max_used_ratio, 0.95);
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.settings.broker.store.dir, PathBuf::from("./ferrymq-data"));
        assert_eq!(config.settings.server.auth_file, None);
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
        assert_eq!(config.settings.broker.store.flush, FlushMode::Sync);
        assert_eq!(config.settings.broker.store.flush_interval, Duration::from_millis(10));
        assert_eq!(config.settings.broker.store.segment_bytes, 65_536);
        assert_eq!(config.settings.broker.delay_levels, vec![Duration::from_secs(1)]);
        assert_eq!(config.settings.broker.max_delay, Duration::from_secs(3600));
        assert_eq!(config.settings.broker.timer_precision, Duration::from_millis(10));
        assert_eq!(config.settings.broker.max_reconsume_times, 0);
        assert_eq!(config.settings.broker.transaction_timeout, Duration::from_secs(1));
        assert_eq!(config.settings.broker.transaction_check_interval, Duration::from_secs(2));
        assert_eq!(config.settings.broker.transaction_check_max, 3);
        assert_eq!(config.settings.broker.lease_ttl, Duration::from_secs(4));
        assert_eq!(config.settings.broker.store.retention, Duration::from_secs(3600));
        assert_eq!(config.settings.broker.store.max_message_bytes, 1024);
        assert_eq!(config.settings.broker.max_batch_messages, 5);
        assert_eq!(config.settings.broker.max_batch_bytes, 2048);
        assert_eq!(config.settings.broker.dedup_window, Duration::ZERO);
        assert_eq!(config.settings.server.ws_ticket_ttl, Duration::from_secs(5));
        assert_eq!(config.settings.broker.store.disk_max_used_ratio, 1.0);
        assert_eq!(config.settings.broker.orderly_suspend, Duration::from_millis(100));
        assert!(!config.settings.broker.auto_create_topics);
        assert_eq!(config.settings.broker.default_queues, 2);
        assert_eq!(config.settings.server.auth_file, Some(PathBuf::from("/etc/ferrymq/auth.toml")));
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
        assert_eq!(config.settings.broker.max_reconsume_times, 3, "--set beats env and file");
        assert_eq!(config.settings.broker.transaction_check_max, 2, "env beats file");
        assert_eq!(config.settings.broker.default_queues, 1, "file beats default");
        assert_eq!(config.settings.broker.lease_ttl, Duration::from_secs(30), "default");
    }

    #[test]
    fn later_set_wins() {
        let config = load_set(&["default_queues=2", "default_queues=4"]).expect("valid");
        assert_eq!(config.settings.broker.default_queues, 4);
    }

    #[test]
    fn file_values_may_be_strings_or_native() {
        for text in ["segment_bytes = 65536", "segment_bytes = \"64KiB\"", "segment_bytes = \"65536\""] {
            let file = write_file(text);
            let (config, _) = Config::load(Some(file.path()), Vec::new(), &[]).expect(text);
            assert_eq!(config.settings.broker.store.segment_bytes, 65_536, "{text}");
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
        assert_eq!(config.settings.broker.store.flush, FlushMode::Sync);
        assert!(!config.settings.broker.auto_create_topics);
        assert_eq!(config.settings.broker.store.disk_max_used_ratio, 0.5);
        assert_eq!(config.settings.broker.max_delay, Duration::from_secs(2 * 86_400));
        assert_eq!(config.settings.broker.delay_levels.len(), 2);
        assert_eq!(config.settings.server.auth_file, Some(PathBuf::from("auth.toml")));
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
        assert_eq!(config.settings.broker.store.flush, FlushMode::Sync);
        assert_eq!(config.settings.broker.store.max_message_bytes, 1 << 20);
        assert!(!config.settings.broker.auto_create_topics);
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
        assert_eq!(config.settings.server.auth_file, None);
    }

    /// The reason the embedded config (what every binding calls, after converting its values
    /// to [`Value`]s) refuses `key = value`.
    fn embedded_refusal(key: &str, value: &Value) -> String {
        match Settings::new("./ferrymq-data").set_embedded(key, value) {
            Err(SettingError::InvalidValue { reason, .. }) => reason,
            other => panic!("{key} = {value}: expected an invalid value, got {other:?}"),
        }
    }

    /// The same `key=value` list given to `ferrymq serve --set` and to an embedded broker's
    /// config yields the same broker configuration, and the same values are refused for the
    /// same reason, including the keys whose parsers disagreed before there was one table
    /// (`retention_hours`, `transaction_check_max`, `max_delay`, `dedup_window`, bare integers
    /// as durations).
    #[test]
    fn server_and_embedded_config_agree() {
        let pairs = [
            ("flush", "sync"),
            ("flush_interval", "10ms"),
            ("segment_bytes", "64KiB"),
            ("delay_levels", "100ms 200ms 1s"),
            ("max_delay", "1h"),
            ("timer_precision", "10ms"),
            ("max_reconsume_times", "0"),
            ("transaction_timeout", "1s"),
            ("transaction_check_interval", "2s"),
            ("transaction_check_max", "1"),
            ("lease_ttl", "4s"),
            ("retention_hours", "1"),
            ("max_message_bytes", "1KiB"),
            ("max_batch_messages", "1"),
            ("max_batch_bytes", "10MB"),
            ("dedup_window", "0s"),
            ("disk_max_used_ratio", "0.5"),
            ("orderly_suspend", "100ms"),
            ("auto_create_topics", "false"),
            ("default_queues", "1024"),
            ("max_receive_bytes", "1MiB"),
        ];
        let args: Vec<String> = pairs.iter().map(|(key, value)| format!("{key}={value}")).collect();
        let (server, _) = Config::load(None, Vec::new(), &args).expect("valid");
        let mut embedded = Settings::new("./ferrymq-data");
        for (key, value) in pairs {
            embedded.set_embedded(key, &Value::from(value)).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(server.settings.broker, embedded.broker);

        // Every broker key is in the list, and each was moved off its default.
        let defaults = Settings::new("./ferrymq-data");
        for key in KEYS.iter().filter(|key| key.scope() == Scope::Broker) {
            assert!(pairs.iter().any(|(name, _)| *name == key.name()), "{} is not compared", key.name());
            assert_ne!(embedded.get(key.name()), defaults.get(key.name()), "{} kept its default", key.name());
        }

        for (key, value) in [
            ("max_delay", "0s"),
            ("max_delay", "3600000"),
            ("dedup_window", "600"),
            ("retention_hours", "0"),
            ("transaction_check_max", "0"),
            ("lease_ttl", "30"),
            ("max_batch_messages", "0"),
            ("max_batch_bytes", "0"),
            ("default_queues", "0"),
            ("default_queues", "1025"),
            ("segment_bytes", "8M"),
            ("disk_max_used_ratio", "2"),
            ("delay_levels", "1s 100"),
            ("flush", "sometimes"),
        ] {
            let server = match load_set(&[&format!("{key}={value}")]) {
                Err(ConfigError::InvalidValue { reason, .. }) => reason,
                other => panic!("{key}={value}: expected an invalid value, got {other:?}"),
            };
            assert_eq!(server, embedded_refusal(key, &Value::from(value)), "{key}={value}");
        }

        // The server-only keys: the server takes them; an embedded broker refuses them by name.
        for (key, value) in [("ws_ticket_ttl", "5s"), ("auth_file", "auth.toml")] {
            assert!(load_set(&[&format!("{key}={value}")]).is_ok(), "{key}");
            let err = Settings::new("./ferrymq-data").set_embedded(key, &Value::from(value)).expect_err(key);
            assert!(matches!(&err, SettingError::ServerOnly { key: named } if named == key), "{err}");
        }
    }

    /// Typed values (a TOML file's, or a binding's objects converted to [`Value`]s) agree too.
    #[test]
    fn typed_values_agree_with_the_embedded_config() {
        let file = write_file(
            "segment_bytes = 65536\n\
             max_reconsume_times = 3\n\
             disk_max_used_ratio = 0.5\n\
             auto_create_topics = false\n\
             delay_levels = [\"1s\", \"2s\"]\n\
             transaction_check_max = 1\n\
             retention_hours = 1\n",
        );
        let (server, _) = Config::load(Some(file.path()), Vec::new(), &[]).expect("valid");
        let mut embedded = Settings::new("./ferrymq-data");
        for (key, value) in [
            ("segment_bytes", Value::Int(65_536)),
            ("max_reconsume_times", Value::Int(3)),
            ("disk_max_used_ratio", Value::Float(0.5)),
            ("auto_create_topics", Value::Bool(false)),
            ("delay_levels", Value::List(vec![Value::from("1s"), Value::from("2s")])),
            ("transaction_check_max", Value::Int(1)),
            ("retention_hours", Value::Int(1)),
        ] {
            embedded.set_embedded(key, &value).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(server.settings.broker, embedded.broker);

        for (line, key, value) in [
            ("max_delay = 3600000", "max_delay", Value::Int(3_600_000)),
            ("delay_levels = [100, \"1s\"]", "delay_levels", Value::List(vec![Value::Int(100), Value::from("1s")])),
            ("retention_hours = 0", "retention_hours", Value::Int(0)),
            ("flush = true", "flush", Value::Bool(true)),
        ] {
            let file = write_file(line);
            let server = match Config::load(Some(file.path()), Vec::new(), &[]) {
                Err(ConfigError::InvalidValue { reason, .. }) => reason,
                other => panic!("{line}: expected an invalid value, got {other:?}"),
            };
            assert_eq!(server, embedded_refusal(key, &value), "{line}");
        }
    }
}
