//! `Client.embedded(path, config)`: broker settings by name.
//!
//! Until core's configuration table is in this branch, no key is taken: each is refused,
//! naming it, as the server refuses an unknown key.

use std::collections::HashMap;
use std::path::PathBuf;

use ferrymq_core::client::BrokerConfig;

use crate::error::FfiError;

/// The configuration of a broker in `path` with the settings of `config` applied.
pub fn broker_config(path: PathBuf, config: HashMap<String, String>) -> Result<BrokerConfig, FfiError> {
    match config.keys().min() {
        Some(key) => Err(FfiError::invalid(&format!("/config/{key}"), "unknown configuration key")),
        None => Ok(BrokerConfig::new(path)),
    }
}
