//! `Client.embedded(path, config)`: a dict of settings with the key names and value forms of
//! `ferrymq serve --set key=value`, applied through core's one configuration table
//! ([`ferrymq_core::config`]), so a value means here what it means to the server.
//!
//! This file only converts Python objects into the table's [`Value`]s (`str` → text, `bool`,
//! `int`, `float`, `list`/`tuple` → list); parsing, defaults and bounds are the table's. A
//! duration is a string with a unit (`"500ms"`, `"6s"`), never a bare int; an unknown key, a
//! server-only key and a bad value are each an `InvalidArgument` whose field is
//! `/config/<key>`.

use std::path::PathBuf;
use std::sync::LazyLock;

use ferrymq_core::broker::BrokerConfig;
use ferrymq_core::config::{find, Scope, SettingError, Settings, Value};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::{invalid, Failure, Outcome};
use crate::message::type_name;

/// The keys an embedded broker takes (`ferrymq.BROKER_SETTINGS`): the table's, less the
/// server-only ones.
pub static KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    ferrymq_core::config::KEYS.iter().filter(|key| key.scope() == Scope::Broker).map(|key| key.name()).collect()
});

/// Builds the configuration of a broker in `path` from the settings in `config`.
pub fn broker_config(path: PathBuf, config: Option<&Bound<'_, PyDict>>) -> Outcome<BrokerConfig> {
    let mut settings = Settings::new(path);
    let Some(config) = config else { return Ok(settings.broker) };
    for (key, value) in config.iter() {
        let key: String = match key.cast::<PyString>() {
            Ok(k) => k.to_cow()?.to_string(),
            Err(_) => return Err(invalid("/config", format!("keys must be str, not {}", type_name(&key)))),
        };
        // An unknown key is reported as such, whatever its value.
        if find(&key).is_none() {
            return Err(refused(SettingError::UnknownKey { key }));
        }
        let value = to_value(&key, &value)?;
        settings.set_embedded(&key, &value).map_err(refused)?;
    }
    Ok(settings.broker)
}

fn refused(err: SettingError) -> Failure {
    Failure::Core(err.into())
}

/// A Python object as the table's [`Value`].
fn to_value(key: &str, value: &Bound<'_, PyAny>) -> Outcome<Value> {
    let field = format!("/config/{key}");
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Value::Text(text.to_cow()?.into_owned()));
    }
    // Before int: a bool is an int in Python.
    if value.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(value.is_truthy()?));
    }
    if value.is_instance_of::<PyInt>() {
        return match value.extract::<i64>() {
            Ok(n) => Ok(Value::Int(n)),
            Err(_) => Err(invalid(&field, format!("{} is too large", shown(value)))),
        };
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(Value::Float(value.extract::<f64>()?));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in value.try_iter()? {
            items.push(to_value(key, &item?)?);
        }
        return Ok(Value::List(items));
    }
    Err(invalid(
        &field,
        format!("{} is not valid: expected a str, int, float, bool or list, not {}", shown(value), type_name(value)),
    ))
}

fn shown(value: &Bound<'_, PyAny>) -> String {
    value.repr().map(|r| r.to_string()).unwrap_or_default()
}
