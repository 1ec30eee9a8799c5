//! `Client.embedded(path, config)`: the broker settings of a dict, with the key names and
//! value forms of `ferrymq serve --set key=value` (durations as `"500ms"`, `"6s"`, `"2h"` or
//! an int of milliseconds; sizes as `"8MiB"` or an int of bytes), mapped onto
//! [`BrokerConfig`]. An unknown key is an error, as it is for the server.

use std::path::PathBuf;
use std::time::Duration;

use ferrymq_core::broker::BrokerConfig;
use ferrymq_core::store::FlushMode;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use crate::errors::{invalid, Outcome};
use crate::message::type_name;

/// The keys an embedded broker takes (the server's, less those about HTTP).
pub const KEYS: &[&str] = &[
    "flush",
    "flush_interval",
    "segment_bytes",
    "delay_levels",
    "max_delay",
    "timer_precision",
    "max_reconsume_times",
    "transaction_timeout",
    "transaction_check_interval",
    "transaction_check_max",
    "lease_ttl",
    "retention_hours",
    "max_message_bytes",
    "max_batch_messages",
    "max_batch_bytes",
    "dedup_window",
    "disk_max_used_ratio",
    "orderly_suspend",
    "auto_create_topics",
    "default_queues",
];

/// Builds the configuration of a broker in `path` from the settings in `config`.
pub fn broker_config(path: PathBuf, config: Option<&Bound<'_, PyDict>>) -> Outcome<BrokerConfig> {
    let mut broker = BrokerConfig::new(path);
    let Some(config) = config else { return Ok(broker) };
    for (key, value) in config.iter() {
        let key: String = match key.cast::<PyString>() {
            Ok(k) => k.to_cow()?.to_string(),
            Err(_) => return Err(invalid("/config", format!("keys must be str, not {}", type_name(&key)))),
        };
        let v = Value { key: &key, value: &value };
        match key.as_str() {
            "flush" => {
                broker.store.flush = match v.text()?.as_str() {
                    "async" => FlushMode::Async,
                    "sync" => FlushMode::Sync,
                    _ => return Err(v.bad("expected async or sync")),
                }
            }
            "flush_interval" => broker.store.flush_interval = v.positive_duration()?,
            "segment_bytes" => broker.store.segment_bytes = v.size()?,
            "delay_levels" => broker.delay_levels = v.delay_levels()?,
            "max_delay" => broker.max_delay = v.positive_duration()?,
            "timer_precision" => broker.timer_precision = v.positive_duration()?,
            "max_reconsume_times" => broker.max_reconsume_times = v.count()?,
            "transaction_timeout" => broker.transaction_timeout = v.positive_duration()?,
            "transaction_check_interval" => broker.transaction_check_interval = v.positive_duration()?,
            "transaction_check_max" => broker.transaction_check_max = v.count()?,
            "lease_ttl" => broker.lease_ttl = v.positive_duration()?,
            "retention_hours" => {
                broker.store.retention = Duration::from_secs(u64::from(v.count()?).saturating_mul(3600))
            }
            "max_message_bytes" => broker.store.max_message_bytes = v.size_usize()?,
            "max_batch_messages" => broker.max_batch_messages = v.count()? as usize,
            "max_batch_bytes" => broker.max_batch_bytes = v.size_usize()?,
            "dedup_window" => broker.dedup_window = v.positive_duration()?,
            "disk_max_used_ratio" => broker.store.disk_max_used_ratio = v.ratio()?,
            "orderly_suspend" => broker.orderly_suspend = v.positive_duration()?,
            "auto_create_topics" => broker.auto_create_topics = v.boolean()?,
            "default_queues" => broker.default_queues = v.count()?,
            _ => {
                return Err(invalid(
                    &format!("/config/{key}"),
                    format!("unknown broker setting; known ones: {}", KEYS.join(", ")),
                ))
            }
        }
    }
    Ok(broker)
}

/// One setting being read.
struct Value<'a, 'py> {
    key: &'a str,
    value: &'a Bound<'py, PyAny>,
}

impl Value<'_, '_> {
    fn bad(&self, why: &str) -> crate::errors::Failure {
        let shown = self.value.repr().map(|r| r.to_string()).unwrap_or_default();
        invalid(&format!("/config/{}", self.key), format!("{shown} is not valid: {why}"))
    }

    fn is_int(&self) -> bool {
        self.value.is_instance_of::<PyInt>() && !self.value.is_instance_of::<PyBool>()
    }

    fn text(&self) -> Outcome<String> {
        match self.value.cast::<PyString>() {
            Ok(s) => Ok(s.to_cow()?.to_string()),
            Err(_) => Err(self.bad("expected a str")),
        }
    }

    fn int(&self) -> Outcome<u64> {
        if !self.is_int() {
            return Err(self.bad("expected an int"));
        }
        self.value.extract::<u64>().map_err(|_| self.bad("expected a non-negative int"))
    }

    fn count(&self) -> Outcome<u32> {
        u32::try_from(self.int()?).map_err(|_| self.bad("too large"))
    }

    fn boolean(&self) -> Outcome<bool> {
        if self.value.is_instance_of::<PyBool>() {
            return Ok(self.value.is_truthy()?);
        }
        match self.text().map_err(|_| self.bad("expected a bool"))?.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.bad("expected true or false")),
        }
    }

    fn ratio(&self) -> Outcome<f64> {
        let ratio = if self.value.is_instance_of::<PyFloat>() || self.is_int() {
            self.value.extract::<f64>()?
        } else {
            self.text()?.trim().parse::<f64>().map_err(|_| self.bad("expected a number"))?
        };
        if ratio > 0.0 && ratio <= 1.0 {
            Ok(ratio)
        } else {
            Err(self.bad("must be above 0 and at most 1"))
        }
    }

    fn duration(&self) -> Outcome<Duration> {
        if self.is_int() {
            return Ok(Duration::from_millis(self.int()?));
        }
        parse_duration(&self.text()?).map_err(|why| self.bad(&why))
    }

    fn positive_duration(&self) -> Outcome<Duration> {
        let d = self.duration()?;
        if d.is_zero() {
            return Err(self.bad("must be longer than zero"));
        }
        Ok(d)
    }

    fn size(&self) -> Outcome<u64> {
        if self.is_int() {
            return self.int();
        }
        parse_size(&self.text()?).map_err(|why| self.bad(&why))
    }

    fn size_usize(&self) -> Outcome<usize> {
        usize::try_from(self.size()?).map_err(|_| self.bad("too large"))
    }

    /// `"100ms 200ms 1s"` (spaces or commas), or a list of durations.
    fn delay_levels(&self) -> Outcome<Vec<Duration>> {
        let levels: Vec<Duration> = if let Ok(text) = self.value.cast::<PyString>() {
            let text = text.to_cow()?.to_string();
            text.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|part| !part.is_empty())
                .map(|part| parse_duration(part).map_err(|why| self.bad(&why)))
                .collect::<Outcome<_>>()?
        } else {
            let iter = self.value.try_iter().map_err(|_| self.bad("expected a str or a list of durations"))?;
            let mut levels = Vec::new();
            for item in iter {
                let item = item?;
                levels.push(Value { key: self.key, value: &item }.duration()?);
            }
            levels
        };
        if levels.is_empty() || levels.iter().any(Duration::is_zero) {
            return Err(self.bad("at least one level, each longer than zero"));
        }
        Ok(levels)
    }
}

/// `500ms`, `6s`, `1m`, `2h`, `1d`: a whole number and a unit, as the server reads them.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text)?;
    let per_unit: u64 = match unit.to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err("write a duration like 500ms, 6s, 1m, 2h or 1d".into()),
    };
    number.checked_mul(per_unit).map(Duration::from_millis).ok_or_else(|| "too large".into())
}

/// `1024`, `64KiB`, `8MiB`, `10MB`: bytes, with an optional unit.
fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text)?;
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err("write a size like 1024, 64KiB or 8MiB".into()),
    };
    number.checked_mul(multiplier).ok_or_else(|| "too large".into())
}

fn split_number(text: &str) -> Result<(u64, &str), String> {
    let text = text.trim();
    let end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(end);
    let number = digits.parse::<u64>().map_err(|_| "expected a whole number and a unit".to_string())?;
    Ok((number, unit.trim()))
}
