//! The `MCPGATE_*` environment as a configuration layer.
//!
//! The keys and their types are not listed here: they are read off
//! `Config::default()` serialized ([`keys`]), so a field added to `Config`
//! (with its default) is a key of the file, of the environment and of the
//! documentation table (`config::tests::every_key_is_documented`) at once.

use std::{collections::BTreeMap, sync::OnceLock};

use super::Config;

/// Environment variables with the `MCPGATE_` prefix that are not config keys
/// but are known to mcpgate or its tools.
pub const KNOWN_OTHER_ENV: &[&str] = &["config"];

/// How a key's value is written in the environment, from its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number: `MCPGATE_MAX_BODY_BYTES=2048`.
    Number,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// Comma-separated: `MCPGATE_CORS_ALLOWED_ORIGINS=https://a.example,https://b.example`.
    List,
    /// Text as given (strings, paths, addresses, enum names, secrets).
    Text,
    /// A table (`providers`): set field by field, `MCPGATE_PROVIDERS__<NAME>__<FIELD>`.
    Table,
}

/// Every top-level key with its kind, read off the defaults.
pub fn keys() -> &'static BTreeMap<String, Kind> {
    static KEYS: OnceLock<BTreeMap<String, Kind>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
        defaults
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, value)| {
                let kind = match value {
                    serde_json::Value::Number(_) => Kind::Number,
                    serde_json::Value::Bool(_) => Kind::Bool,
                    serde_json::Value::Array(_) => Kind::List,
                    serde_json::Value::Object(_) => Kind::Table,
                    serde_json::Value::String(_) | serde_json::Value::Null => Kind::Text,
                };
                (key.clone(), kind)
            })
            .collect()
    })
}

/// The configuration values `env` sets, and warnings for `MCPGATE_*`
/// variables that are not keys.
pub fn overlay(
    env: &[(String, String)],
) -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut values = serde_json::Map::new();
    for (name, value) in env {
        if name == "DATABASE_URL" {
            values.insert("database_url".into(), value.clone().into());
            continue;
        }
        let Some(key) = name.strip_prefix("MCPGATE_") else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        // MCPGATE_PROVIDERS__<NAME>__<FIELD>: one field of one provider.
        if let Some(rest) = key.strip_prefix("providers__") {
            if let Some((provider, field)) = rest.split_once("__") {
                let table = values
                    .entry("providers")
                    .or_insert_with(|| serde_json::Value::Object(Default::default()));
                if let Some(entry) = table.as_object_mut().map(|t| {
                    t.entry(provider.to_owned())
                        .or_insert_with(|| serde_json::Value::Object(Default::default()))
                }) {
                    if let Some(obj) = entry.as_object_mut() {
                        obj.insert(field.to_owned(), provider_env_value(field, value));
                    }
                }
                continue;
            }
        }
        if let Some(kind) = keys().get(&key) {
            let value = env_value(*kind, value);
            values.insert(key, value);
        } else if !KNOWN_OTHER_ENV.contains(&key.as_str()) {
            warnings.push(format!(
                "ignoring environment variable {name}: not a configuration key"
            ));
        }
    }
    (values, warnings)
}

/// A value from the environment, typed as its key's default is, so
/// `MCPGATE_MAX_BODY_BYTES=2048` reaches figment as a number.
fn env_value(kind: Kind, value: &str) -> serde_json::Value {
    match kind {
        Kind::List => list(value),
        Kind::Bool => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true.into(),
            "false" | "0" | "no" | "off" | "" => false.into(),
            _ => value.into(),
        },
        Kind::Number => match value.trim().parse::<u64>() {
            Ok(n) => n.into(),
            Err(_) => value.into(),
        },
        Kind::Text | Kind::Table => value.into(),
    }
}

fn list(value: &str) -> serde_json::Value {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| serde_json::Value::String(s.to_owned()))
        .collect::<Vec<_>>()
        .into()
}

/// A provider field from the environment: lists are comma-separated, `pkce`
/// is a boolean.
fn provider_env_value(field: &str, value: &str) -> serde_json::Value {
    match field {
        "scopes" => list(value),
        "pkce" => matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        )
        .into(),
        _ => value.into(),
    }
}
