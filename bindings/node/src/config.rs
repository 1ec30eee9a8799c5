//! `Client.embedded(path, { config })`: an object of settings with the key names and value
//! forms of `ferrymq serve --set key=value`, applied through core's one configuration table
//! ([`ferrymq_core::config`]), so a value means here what it means to the server.
//!
//! This file only converts JSON values into the table's [`Value`]s (string → text, boolean,
//! integral number → int, other number → float, array → list); parsing, defaults and bounds
//! are the table's. An unknown key, a server-only key and a bad value are each an
//! `InvalidArgument` whose field is `/config/<key>`.

use std::collections::HashMap;

use ferrymq_core::client::BrokerConfig;
use ferrymq_core::config::{find, SettingError, Settings, Value};

use crate::errors::{invalid, to_napi};

/// The configuration of a broker in `path` with the settings of `config`.
pub fn broker_config(path: String, config: Option<HashMap<String, serde_json::Value>>) -> napi::Result<BrokerConfig> {
    let mut settings = Settings::new(path);
    let mut config: Vec<_> = config.unwrap_or_default().into_iter().collect();
    // One order, so that of two bad keys the same one is reported every time.
    config.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in config {
        // An unknown key is reported as such, whatever its value.
        if find(&key).is_none() {
            return Err(refused(SettingError::UnknownKey { key }));
        }
        let value = to_value(&key, &value)?;
        settings.set_embedded(&key, &value).map_err(refused)?;
    }
    Ok(settings.broker)
}

fn refused(err: SettingError) -> napi::Error {
    to_napi(&err.into())
}

/// A JSON value as the table's [`Value`]. JavaScript has one number type: an integral
/// number is an int (a count or a size), any other a float (a ratio).
fn to_value(key: &str, value: &serde_json::Value) -> napi::Result<Value> {
    use serde_json::Value as Json;
    Ok(match value {
        Json::String(text) => Value::Text(text.clone()),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => Value::Int(f as i64),
            (None, Some(f)) => Value::Float(f),
            (None, None) => return Err(invalid(&format!("/config/{key}"), format!("{n} is not a usable number"))),
        },
        Json::Array(items) => Value::List(items.iter().map(|v| to_value(key, v)).collect::<napi::Result<_>>()?),
        Json::Null | Json::Object(_) => {
            return Err(invalid(
                &format!("/config/{key}"),
                format!("{value} is not valid: expected a string, number, boolean or array"),
            ))
        }
    })
}
