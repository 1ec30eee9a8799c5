//! `Client.embedded(path, config)`: broker settings by the key names and value forms of
//! `ferrymq serve --set key=value` (`"delay_levels" to "1s 5s"`, `"flush" to "sync"`,
//! `"max_reconsume_times" to "3"`), applied through core's one configuration table
//! ([`ferrymq_core::config`]), so a value means here what it means to the server. An
//! unknown key, a server-only key and a bad value are each an invalid argument whose field is
//! `/config/<key>`.

use std::collections::HashMap;
use std::path::PathBuf;

use ferrymq_core::client::BrokerConfig;
use ferrymq_core::config::{Settings, Value};

use crate::error::FfiError;

/// The configuration of a broker in `path` with the settings of `config` applied, in key
/// order (so the first bad key reported is always the same).
pub fn broker_config(path: PathBuf, config: HashMap<String, String>) -> Result<BrokerConfig, FfiError> {
    let mut settings = Settings::new(path);
    let mut entries: Vec<_> = config.into_iter().collect();
    entries.sort();
    for (key, value) in entries {
        settings.set_embedded(&key, &Value::Text(value)).map_err(ferrymq_core::Error::from)?;
    }
    Ok(settings.broker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(result: Result<BrokerConfig, FfiError>) -> Option<String> {
        match result {
            Err(FfiError::Failure { field, .. }) => field,
            Ok(_) => None,
        }
    }

    #[test]
    fn settings_apply_and_bad_ones_name_their_key() {
        let config = HashMap::from([("delay_levels".to_string(), "100ms 200ms".to_string())]);
        let broker = broker_config(PathBuf::from("/tmp/x"), config).expect("valid settings");
        assert_eq!(broker.delay_levels.len(), 2);
        let unknown = HashMap::from([("no_such_key".to_string(), "1".to_string())]);
        assert_eq!(field(broker_config(PathBuf::from("/tmp/x"), unknown)).as_deref(), Some("/config/no_such_key"));
        let server_only = HashMap::from([("auth_file".to_string(), "a.toml".to_string())]);
        assert_eq!(field(broker_config(PathBuf::from("/tmp/x"), server_only)).as_deref(), Some("/config/auth_file"));
        let bad = HashMap::from([("lease_ttl".to_string(), "soon".to_string())]);
        assert_eq!(field(broker_config(PathBuf::from("/tmp/x"), bad)).as_deref(), Some("/config/lease_ttl"));
    }
}
