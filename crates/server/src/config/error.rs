//! Configuration errors, phrased as what to change, and figment's errors
//! retold without the values they may quote.

use std::path::PathBuf;

/// A configuration problem, phrased as what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist (set MCPGATE_CONFIG or --config to an existing TOML file)")]
    MissingFile { path: PathBuf },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("could not read {what} from {path}: {source}")]
    SecretFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Figment errors can quote the offending value; for secrets that must not
/// happen, so only the kind and the key path are kept.
pub(super) fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let path = e.path.join(".");
            let kind = match &e.kind {
                figment::error::Kind::UnknownField(field, _) => {
                    format!("unknown key `{field}`")
                }
                figment::error::Kind::InvalidType(actual, expected) => {
                    format!("expected {expected}, found {actual}")
                }
                figment::error::Kind::InvalidValue(_, expected) => {
                    format!("invalid value, expected {expected}")
                }
                figment::error::Kind::UnknownVariant(_, expected) => {
                    format!("expected one of {}", expected.join(", "))
                }
                figment::error::Kind::Message(msg) if !is_secret_path(&path) => msg.clone(),
                other => format!("{}", KindName(other)),
            };
            let origin = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            if path.is_empty() {
                format!("{kind}{origin}")
            } else {
                format!("`{path}`: {kind}{origin}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_secret_path(path: &str) -> bool {
    path.contains("secret") || path.contains("key") || path.contains("database_url")
}

struct KindName<'a>(&'a figment::error::Kind);

impl std::fmt::Display for KindName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use figment::error::Kind::*;
        let name = match self.0 {
            Message(_) => "invalid value",
            InvalidType(..) => "invalid type",
            InvalidValue(..) => "invalid value",
            InvalidLength(..) => "invalid length",
            UnknownVariant(..) => "unknown variant",
            UnknownField(..) => "unknown key",
            MissingField(_) => "missing key",
            DuplicateField(_) => "duplicate key",
            ISizeOutOfRange(_) | USizeOutOfRange(_) => "number out of range",
            Unsupported(_) => "unsupported value",
            UnsupportedKey(..) => "unsupported key",
        };
        f.write_str(name)
    }
}
