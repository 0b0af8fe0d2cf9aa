//! Configuration: one struct, layered defaults -> TOML file -> `MCPGATE_*`
//! environment -> command-line flags.
//!
//! Unknown keys in the TOML file are rejected. Unknown `MCPGATE_*` environment
//! variables are reported as warnings rather than errors, because the same
//! environment also carries the variables of mcpgate's client tools
//! (`MCPGATE_URL`, `MCPGATE_API_KEY`, ...). Every secret can also be read from
//! a file named by `<key>_file` (`MCPGATE_<KEY>_FILE`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    providers::{Format, Serialized, Toml},
    Figment,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

mod env;
mod error;

pub use env::Kind as KeyKind;
use error::describe_figment_error;
pub use error::ConfigError;

/// Every top-level configuration key and how the environment writes it.
pub fn keys() -> &'static std::collections::BTreeMap<String, KeyKind> {
    env::keys()
}

/// Secrets serialize as `null` when absent and as a placeholder when set:
/// a serialized `Config` (the source of the key list) never holds one.
fn redacted<S: serde::Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        None => s.serialize_none(),
        Some(_) => s.serialize_str("[redacted]"),
    }
}

/// Who may create an account through `POST /api/v1/users/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// Anyone who can reach the server (the default).
    #[default]
    Open,
    /// Nobody: registration answers 403.
    Closed,
}

/// How mcpgate authenticates at a provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// `client_id` and `client_secret` in the form body.
    #[default]
    ClientSecretPost,
    /// HTTP Basic authentication.
    ClientSecretBasic,
}

/// One `[providers.<name>]` table: a connection provider, or overrides of a
/// built-in one. Every field is optional here; the catalog checks that the
/// merged entry is complete.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    pub display_name: Option<String>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    /// RFC 7009 revocation endpoint, if the provider has one.
    pub revocation_url: Option<String>,
    pub userinfo_url: Option<String>,
    /// JSON pointer of the external account id in the user-info document.
    pub account_id_pointer: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub scope_separator: Option<String>,
    pub pkce: Option<bool>,
    pub token_auth_method: Option<TokenAuthMethod>,
    pub authorization_params: Option<std::collections::BTreeMap<String, String>>,
    pub client_id: Option<String>,
    #[serde(serialize_with = "redacted")]
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
}

impl ProviderConfig {
    /// This entry with every field `other` sets replaced by `other`'s.
    pub fn overridden_by(self, other: ProviderConfig) -> ProviderConfig {
        ProviderConfig {
            display_name: other.display_name.or(self.display_name),
            authorization_url: other.authorization_url.or(self.authorization_url),
            token_url: other.token_url.or(self.token_url),
            revocation_url: other.revocation_url.or(self.revocation_url),
            userinfo_url: other.userinfo_url.or(self.userinfo_url),
            account_id_pointer: other.account_id_pointer.or(self.account_id_pointer),
            scopes: other.scopes.or(self.scopes),
            scope_separator: other.scope_separator.or(self.scope_separator),
            pkce: other.pkce.or(self.pkce),
            token_auth_method: other.token_auth_method.or(self.token_auth_method),
            authorization_params: other.authorization_params.or(self.authorization_params),
            client_id: other.client_id.or(self.client_id),
            client_secret: other.client_secret.or(self.client_secret),
            client_secret_file: other.client_secret_file.or(self.client_secret_file),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The whole configuration of a server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`MCPGATE_LISTEN`, `--listen`).
    pub listen: SocketAddr,
    /// Directory for the SQLite database and the generated master key.
    pub data_dir: PathBuf,
    /// Canonical public URL: the OAuth issuer and base of every redirect URI.
    pub public_url: String,
    /// `postgres://…` or `sqlite://…`; default: SQLite in the data dir.
    #[serde(serialize_with = "redacted")]
    pub database_url: Option<SecretString>,
    pub database_url_file: Option<PathBuf>,
    /// Largest number of pooled database connections.
    pub database_max_connections: u32,
    /// Master key for encryption at rest: base64 of 32 bytes.
    #[serde(serialize_with = "redacted")]
    pub encryption_key: Option<SecretString>,
    pub encryption_key_file: Option<PathBuf>,
    /// The previous master key during a rotation: still decrypts, never
    /// encrypts (see `mcpgate admin rotate-key`).
    #[serde(serialize_with = "redacted")]
    pub encryption_key_previous: Option<SecretString>,
    pub encryption_key_previous_file: Option<PathBuf>,
    /// `open` (default) or `closed`.
    pub registration: RegistrationPolicy,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info,mcpgate_server=debug`.
    pub log: String,
    /// `text` (default) or `json`.
    pub log_format: LogFormat,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// How often in-memory key usage is written to the database (seconds, 1-10).
    pub usage_flush_interval_secs: u64,
    /// How long in-flight requests may run after a shutdown signal (seconds).
    pub shutdown_timeout_secs: u64,
    /// Registrations per client IP per minute (0: unlimited).
    pub rate_limit_registration_per_minute: u32,
    /// Requests per credential (API key) per minute (0: unlimited).
    pub rate_limit_credential_per_minute: u32,
    /// Requests per client IP per minute, any route (0: unlimited).
    pub rate_limit_ip_per_minute: u32,
    /// Origins allowed to call the API from a browser (CORS); none by default.
    pub cors_allowed_origins: Vec<String>,
    /// `Host` values `/mcp` accepts besides the public URL's host, the listen
    /// address and loopback names (DNS-rebinding protection): `name` admits
    /// any port, `name:port` that port only. Behind a proxy that forwards its
    /// upstream's name (nginx's default `proxy_pass http://mcpgate:8080`),
    /// add that name.
    pub allowed_hosts: Vec<String>,
    /// Proxies (IP addresses or CIDR ranges) whose `Forwarded` /
    /// `X-Forwarded-For` header names the client, for rate limits, the audit
    /// trail and logs. None by default: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// The parsed `trusted_proxies` (filled by [`Config::validate`]).
    #[serde(skip)]
    pub trusted_proxy_nets: Vec<ipnet::IpNet>,
    /// Seconds a client has to send a request's headers, from its first byte
    /// (or from connecting); then the connection is closed. 0: no limit.
    pub header_read_timeout_secs: u64,
    /// Seconds a request's body may stall: the longest wait for more body
    /// bytes once the headers are in. 0: no limit.
    pub body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may sit unused before it is closed.
    /// 0: no limit.
    pub idle_timeout_secs: u64,
    /// Most open connections; past it a new connection is closed at once.
    /// 0 (default): derived from the file-descriptor limit.
    pub max_connections: usize,
    /// Serve Prometheus metrics at `/metrics` (off by default).
    pub metrics_enabled: bool,
    /// How often expired data is purged (seconds; 0: never, use `mcpgate admin purge`).
    pub cleanup_interval_secs: u64,
    /// Who may register OAuth clients at `POST /oauth/register`: `open` (default) or `closed`.
    pub oauth_client_registration: RegistrationPolicy,
    /// Dynamically registered clients never used within this time are deleted (seconds).
    pub oauth_unused_client_ttl_secs: u64,
    /// Lifetime of OAuth access tokens (seconds).
    pub access_token_ttl_secs: u64,
    /// Lifetime of OAuth refresh tokens (seconds).
    pub refresh_token_ttl_secs: u64,
    /// Lifetime of authorization codes (seconds).
    pub authorization_code_ttl_secs: u64,
    /// A retry of the just-rotated refresh token within this time gets the same new pair (seconds).
    pub refresh_reuse_grace_secs: u64,
    /// Lifetime of a web-login session (seconds).
    pub session_ttl_secs: u64,
    /// Accept `http://` client ID metadata documents (development only).
    pub client_metadata_allow_http: bool,
    /// Fetch client ID metadata documents from loopback and private addresses (development only).
    pub client_metadata_allow_private_addresses: bool,
    /// Time limit for fetching a client ID metadata document (milliseconds).
    pub client_metadata_timeout_ms: u64,
    /// Size limit of a client ID metadata document (bytes).
    pub client_metadata_max_bytes: usize,
    /// Time budget of one memory search (milliseconds); past it the search
    /// stops and answers 503 `search_timeout`.
    pub search_timeout_ms: u64,
    /// Memory searches one account may run at a time, all its credentials together.
    pub search_concurrency_per_user: u32,
    /// How long a search past that bound waits for a turn before 429 (milliseconds).
    pub search_queue_ms: u64,
    /// Login attempts per client IP and per email per minute (0: unlimited).
    pub rate_limit_login_per_minute: u32,
    /// Token-endpoint requests per client IP per minute (0: unlimited).
    pub rate_limit_token_per_minute: u32,
    /// Time limit of a request to a connection provider (milliseconds).
    pub upstream_timeout_ms: u64,
    /// How often the signing key of identity assertions changes (days).
    pub identity_key_rotation_days: u32,
    /// How often connections about to expire are refreshed in the
    /// background (seconds; 0: only on demand).
    pub connect_refresh_interval_secs: u64,
    /// Where `POST /api/v1/connect/{provider}/start` may send the browser
    /// back to: http(s) origins, each with an optional path admitting that
    /// path and below it (the public URL's origin is always allowed).
    pub connect_return_to_allowed: Vec<String>,
    /// Connection providers: `[providers.<name>]` tables
    /// (`MCPGATE_PROVIDERS__<NAME>__<KEY>` in the environment).
    pub providers: std::collections::BTreeMap<String, ProviderConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            public_url: "http://127.0.0.1:8080".into(),
            database_url: None,
            database_url_file: None,
            database_max_connections: 10,
            encryption_key: None,
            encryption_key_file: None,
            encryption_key_previous: None,
            encryption_key_previous_file: None,
            registration: RegistrationPolicy::Open,
            log: "info".into(),
            log_format: LogFormat::Text,
            max_body_bytes: 1024 * 1024,
            usage_flush_interval_secs: 5,
            shutdown_timeout_secs: 30,
            rate_limit_registration_per_minute: 10,
            rate_limit_credential_per_minute: 600,
            rate_limit_ip_per_minute: 1200,
            cors_allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            trusted_proxy_nets: Vec::new(),
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 0,
            metrics_enabled: false,
            cleanup_interval_secs: 3600,
            oauth_client_registration: RegistrationPolicy::Open,
            oauth_unused_client_ttl_secs: 86_400,
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 86_400,
            authorization_code_ttl_secs: 600,
            refresh_reuse_grace_secs: 2,
            session_ttl_secs: 86_400,
            client_metadata_allow_http: false,
            client_metadata_allow_private_addresses: false,
            client_metadata_timeout_ms: 5000,
            client_metadata_max_bytes: 5 * 1024,
            search_timeout_ms: 2000,
            search_concurrency_per_user: 2,
            search_queue_ms: 1000,
            rate_limit_login_per_minute: 10,
            rate_limit_token_per_minute: 60,
            upstream_timeout_ms: 10_000,
            identity_key_rotation_days: 30,
            connect_refresh_interval_secs: 60,
            connect_return_to_allowed: Vec::new(),
            providers: Default::default(),
        }
    }
}

/// Values given on the command line; each one overrides every other layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub public_url: Option<String>,
    pub log_format: Option<LogFormat>,
}

/// The result of loading: the config and warnings to log once logging is up.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Load from the layers: defaults, the TOML file (if any), the process
    /// environment, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env, overrides)
    }

    /// Like [`Config::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Loaded, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile {
                    path: path.to_owned(),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let (values, warnings) = env::overlay(env);
        figment = figment.merge(Serialized::defaults(values));
        if let Some(v) = overrides.listen {
            figment = figment.merge(("listen", v.to_string()));
        }
        if let Some(v) = &overrides.data_dir {
            figment = figment.merge(("data_dir", v));
        }
        if let Some(v) = &overrides.public_url {
            figment = figment.merge(("public_url", v));
        }
        if let Some(v) = overrides.log_format {
            figment = figment.merge(("log_format", v));
        }
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe_figment_error(e)))?;
        config.resolve_secret_files()?;
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        for provider in self.providers.values_mut() {
            resolve_secret(
                "providers.*.client_secret",
                &mut provider.client_secret,
                &provider.client_secret_file,
            )?;
        }
        resolve_secret(
            "database_url",
            &mut self.database_url,
            &self.database_url_file,
        )?;
        resolve_secret(
            "encryption_key",
            &mut self.encryption_key,
            &self.encryption_key_file,
        )?;
        resolve_secret(
            "encryption_key_previous",
            &mut self.encryption_key_previous,
            &self.encryption_key_previous_file,
        )?;
        Ok(())
    }

    /// Check every value and normalize the public URL.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let url = self.public_url.trim().trim_end_matches('/').to_owned();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "public_url must start with http:// or https:// (got {:?})",
                    self.public_url
                ))
            })?;
        if rest.is_empty() || rest.contains(['?', '#', ' ']) {
            return Err(ConfigError::Invalid(format!(
                "public_url must be an absolute URL without query or fragment (got {:?})",
                self.public_url
            )));
        }
        self.public_url = url;
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be at least 1024".into(),
            ));
        }
        if !(1..=10).contains(&self.usage_flush_interval_secs) {
            return Err(ConfigError::Invalid(
                "usage_flush_interval_secs must be between 1 and 10".into(),
            ));
        }
        for (name, value) in [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            (
                "authorization_code_ttl_secs",
                self.authorization_code_ttl_secs,
            ),
            ("session_ttl_secs", self.session_ttl_secs),
            (
                "client_metadata_timeout_ms",
                self.client_metadata_timeout_ms,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1")));
            }
        }
        crate::service::catalog::Catalog::build(&self.providers)?;
        if self.search_timeout_ms == 0 || self.search_concurrency_per_user == 0 {
            return Err(ConfigError::Invalid(
                "search_timeout_ms and search_concurrency_per_user must be at least 1".into(),
            ));
        }
        if !(1..=365).contains(&self.identity_key_rotation_days) {
            return Err(ConfigError::Invalid(
                "identity_key_rotation_days must be between 1 and 365".into(),
            ));
        }
        if self.refresh_reuse_grace_secs > 60 {
            return Err(ConfigError::Invalid(
                "refresh_reuse_grace_secs must be at most 60".into(),
            ));
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError::Invalid(
                "database_max_connections must be at least 1".into(),
            ));
        }
        for origin in &mut self.cors_allowed_origins {
            let trimmed = origin.trim().trim_end_matches('/').to_owned();
            let valid = (trimmed.starts_with("https://") || trimmed.starts_with("http://"))
                && !trimmed["https://".len().min(trimmed.len())..].contains('/')
                && !trimmed.contains(['*', ' ', '?', '#']);
            if !valid {
                return Err(ConfigError::Invalid(format!(
                    "cors_allowed_origins: {origin:?} is not an origin like https://app.example.com"
                )));
            }
            *origin = trimmed;
        }
        for host in &mut self.allowed_hosts {
            let trimmed = host.trim().to_ascii_lowercase();
            let valid = !trimmed.is_empty()
                && !trimmed.contains(['/', '*', ' ', '@', '?', '#'])
                && trimmed.parse::<poem::http::uri::Authority>().is_ok();
            if !valid {
                return Err(ConfigError::Invalid(format!(
                    "allowed_hosts: {host:?} is not a host name with an optional port, like mcpgate or mcpgate:8080"
                )));
            }
            *host = trimmed;
        }
        self.trusted_proxy_nets = self
            .trusted_proxies
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::Invalid(format!(
                            "trusted_proxies: {entry:?} is not an IP address or CIDR range, like 10.0.0.0/8 or 127.0.0.1"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        for entry in &mut self.connect_return_to_allowed {
            let trimmed = entry.trim().to_owned();
            if !is_origin_with_path(&trimmed) {
                return Err(ConfigError::Invalid(format!(
                    "connect_return_to_allowed: {entry:?} is not an http(s) origin with an optional path, like https://app.example.com or https://app.example.com/connected"
                )));
            }
            *entry = trimmed;
        }
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            if !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
            {
                return Err(ConfigError::Invalid(
                    "database_url must start with postgres://, postgresql:// or sqlite: (value not shown)".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn usage_flush_interval(&self) -> Duration {
        Duration::from_secs(self.usage_flush_interval_secs)
    }

    /// True when the public URL is https: cookies are then `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// `scheme://host[:port][/path]` with an http(s) scheme: no user info, query,
/// fragment or wildcard (an entry of `connect_return_to_allowed`).
fn is_origin_with_path(entry: &str) -> bool {
    url::Url::parse(entry).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host().is_some()
            && u.username().is_empty()
            && u.password().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
            && !entry.contains(['*', ' '])
            // What was written is what is compared: `https://a.example/x/..`
            // would silently mean `https://a.example/`.
            && !entry.split('/').any(|segment| segment == "." || segment == "..")
    })
}

fn resolve_secret(
    what: &'static str,
    value: &mut Option<SecretString>,
    file: &Option<PathBuf>,
) -> Result<(), ConfigError> {
    let Some(path) = file else { return Ok(()) };
    if value.is_some() {
        return Err(ConfigError::Invalid(format!(
            "both {what} and {what}_file are set; set only one"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        what,
        path: path.clone(),
        source,
    })?;
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "{what}_file {} is empty",
            path.display()
        )));
    }
    *value = Some(SecretString::from(trimmed.to_owned()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_need_no_configuration() {
        let loaded = Config::load_from(None, &[], &Overrides::default()).unwrap();
        let c = loaded.config;
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.registration, RegistrationPolicy::Open);
        assert!(c.database_url.is_none());
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let file = toml_file(
            "listen = \"127.0.0.1:9000\"\nregistration = \"closed\"\npublic_url = \"https://file.example/\"\nmax_body_bytes = 4096\n",
        );
        let e = env(&[
            ("MCPGATE_PUBLIC_URL", "https://env.example"),
            ("MCPGATE_MAX_BODY_BYTES", "8192"),
            ("DATABASE_URL", "postgres://u@h/db"),
        ]);
        let flags = Overrides {
            public_url: Some("https://flag.example".into()),
            ..Default::default()
        };
        let c = Config::load_from(Some(file.path()), &e, &flags)
            .unwrap()
            .config;
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000"); // file
        assert_eq!(c.registration, RegistrationPolicy::Closed); // file
        assert_eq!(c.max_body_bytes, 8192); // env over file
        assert_eq!(c.public_url, "https://flag.example"); // flag over env
        assert_eq!(c.database_url.unwrap().expose_secret(), "postgres://u@h/db");
    }

    #[test]
    fn unknown_file_keys_are_rejected_and_named() {
        let file = toml_file("listn = \"127.0.0.1:9000\"\n");
        let err = Config::load_from(Some(file.path()), &[], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key `listn`"), "{err}");
    }

    #[test]
    fn unknown_env_vars_warn_but_do_not_fail() {
        let e = env(&[
            ("MCPGATE_LISTN", "x"),
            ("MCPGATE_URL", "http://x"),
            ("MCPGATE_CONFIG", ""),
        ]);
        let loaded = Config::load_from(None, &e, &Overrides::default()).unwrap();
        assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("MCPGATE_LISTN"));
    }

    #[test]
    fn secrets_come_from_files_and_never_from_both() {
        let secret = toml_file("c2VjcmV0\n");
        let path = secret.path().to_str().unwrap().to_owned();
        let e = env(&[("MCPGATE_ENCRYPTION_KEY_FILE", &path)]);
        let c = Config::load_from(None, &e, &Overrides::default())
            .unwrap()
            .config;
        assert_eq!(c.encryption_key.unwrap().expose_secret(), "c2VjcmV0");

        let e = env(&[
            ("MCPGATE_ENCRYPTION_KEY_FILE", &path),
            ("MCPGATE_ENCRYPTION_KEY", "other"),
        ]);
        let err = Config::load_from(None, &e, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("set only one"), "{err}");

        let e = env(&[("MCPGATE_DATABASE_URL_FILE", "/nonexistent/db-url")]);
        let err = Config::load_from(None, &e, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/db-url"), "{err}");
    }

    #[test]
    fn bad_values_are_explained_without_echoing_secrets() {
        let e = env(&[("MCPGATE_PUBLIC_URL", "ftp://x")]);
        let err = Config::load_from(None, &e, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("public_url"), "{err}");

        let e = env(&[("DATABASE_URL", "mysql://user:hunter2@h/db")]);
        let err = Config::load_from(None, &e, &Overrides::default()).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let e = env(&[("MCPGATE_REGISTRATION", "sometimes")]);
        let err = Config::load_from(None, &e, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("registration"), "{err}");

        let file = toml_file("missing = 1");
        drop(file.path().to_owned());
        let err = Config::load_from(
            Some(Path::new("/nonexistent/mcpgate.toml")),
            &[],
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("MCPGATE_CONFIG"), "{err}");
    }

    #[test]
    fn providers_come_from_the_environment_and_never_print_their_secret() {
        let e = env(&[
            ("MCPGATE_PROVIDERS__GITHUB__CLIENT_ID", "gh-client"),
            ("MCPGATE_PROVIDERS__GITHUB__CLIENT_SECRET", "gh-very-secret"),
            ("MCPGATE_PROVIDERS__GITHUB__SCOPES", "repo, read:user"),
        ]);
        let c = Config::load_from(None, &e, &Overrides::default())
            .unwrap()
            .config;
        let gh = &c.providers["github"];
        assert_eq!(gh.client_id.as_deref(), Some("gh-client"));
        assert_eq!(
            gh.scopes.as_deref(),
            Some(&["repo".to_owned(), "read:user".to_owned()][..])
        );
        assert!(!format!("{c:?}").contains("gh-very-secret"));
        // A provider that cannot work stops start-up with its name.
        let e = env(&[("MCPGATE_PROVIDERS__MINE__CLIENT_ID", "x")]);
        let err = Config::load_from(None, &e, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("providers.mine"), "{err}");
    }

    #[test]
    fn connect_return_to_entries_are_origins_with_an_optional_path() {
        let mut c = Config {
            connect_return_to_allowed: vec![
                " https://app.example.com ".into(),
                "https://app.example.com/connected/".into(),
                "http://127.0.0.1:3000/cb".into(),
            ],
            ..Config::default()
        };
        c.validate().unwrap();
        assert_eq!(c.connect_return_to_allowed[0], "https://app.example.com");
        for bad in [
            "app.example.com",
            "/connected",
            "ftp://app.example.com",
            "javascript:alert(1)",
            "https://",
            "https://user@app.example.com",
            "https://app.example.com/?x=1",
            "https://app.example.com/#x",
            "https://*.example.com",
            "https://app.example.com/a/../b",
        ] {
            let mut c = Config {
                connect_return_to_allowed: vec![bad.into()],
                ..Config::default()
            };
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("connect_return_to_allowed"), "{bad}: {err}");
        }
    }

    #[test]
    fn keys_and_their_kinds_come_from_the_defaults() {
        let keys = keys();
        assert_eq!(keys.get("max_body_bytes"), Some(&KeyKind::Number));
        assert_eq!(keys.get("metrics_enabled"), Some(&KeyKind::Bool));
        assert_eq!(keys.get("allowed_hosts"), Some(&KeyKind::List));
        assert_eq!(keys.get("listen"), Some(&KeyKind::Text));
        assert_eq!(keys.get("database_url"), Some(&KeyKind::Text));
        assert_eq!(keys.get("providers"), Some(&KeyKind::Table));
        // Derived state is not a key.
        assert!(!keys.contains_key("trusted_proxy_nets"));
        // Every numeric key is read from the environment as a number.
        let env: Vec<(String, String)> = keys
            .iter()
            .filter(|(_, k)| **k == KeyKind::Number)
            .map(|(key, _)| (format!("MCPGATE_{}", key.to_uppercase()), "7".into()))
            .collect();
        let (values, warnings) = env::overlay(&env);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(values.values().all(|v| v == &serde_json::json!(7)));
    }

    /// The table of docs/operations.md lists every key (`providers` has a
    /// section of its own in docs/connect.md).
    #[test]
    fn every_key_is_documented() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md"),
        )
        .unwrap();
        let missing: Vec<&String> = keys()
            .iter()
            .filter(|(k, kind)| !k.ends_with("_file") && **kind != KeyKind::Table)
            .map(|(k, _)| k)
            .filter(|k| !doc.contains(&format!("| `{k}`")))
            .collect();
        assert!(missing.is_empty(), "docs/operations.md lacks {missing:?}");
    }

    #[test]
    fn a_serialized_config_holds_no_secret() {
        let mut c = Config {
            database_url: Some(SecretString::from("postgres://u:hunter2@db/x".to_owned())),
            encryption_key: Some(SecretString::from("k".repeat(44))),
            ..Config::default()
        };
        c.providers.insert(
            "gh".into(),
            ProviderConfig {
                client_secret: Some(SecretString::from("shh-provider-secret".to_owned())),
                ..Default::default()
            },
        );
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("kkkk") && !text.contains("shh"));
    }

    #[test]
    fn debug_hides_secrets() {
        let e = env(&[("MCPGATE_ENCRYPTION_KEY", "c2VjcmV0LWtleQ==")]);
        let c = Config::load_from(None, &e, &Overrides::default())
            .unwrap()
            .config;
        assert!(!format!("{c:?}").contains("c2VjcmV0LWtleQ=="));
    }
}
