//! `Client.embedded(path, { config })`: broker settings by name.

use std::collections::HashMap;

use ferrymq_core::client::BrokerConfig;

use crate::errors::invalid;

/// The configuration of a broker in `path` with the settings of `config`.
pub fn broker_config(path: String, config: Option<HashMap<String, serde_json::Value>>) -> napi::Result<BrokerConfig> {
    match config {
        Some(config) if !config.is_empty() => Err(invalid("/config", "settings are not supported yet")),
        _ => Ok(BrokerConfig::new(path)),
    }
}
