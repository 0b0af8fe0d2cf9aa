//! Typed client for the mcpgate API.
//!
//! The generated module (private; its [`Client`], [`types`] and builders are
//! re-exported here) is written by `cargo xtask gen` from `openapi.yaml` with
//! progenitor (builder interface: `client.key_create().body(...).send()`).
//! This file is the hand-written layer beside it: constructors that attach
//! credentials. Secrets are held in `secrecy` types and sent as sensitive
//! headers, which reqwest keeps out of its `Debug` output.

#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, clippy::unwrap_used, clippy::expect_used, unused_imports, dead_code, missing_docs)]
mod generated;

pub mod auth;
pub mod error;
pub mod login;
mod session;

pub use auth::{Auth, FileTokenStore, MemoryTokenStore, OAuthCredential, TokenStore};
pub use error::ClientError;
pub use generated::{builder, types, Client};
pub use progenitor_client::{ClientInfo, ResponseValue};
pub use session::{Hooks, Session, SessionBuilder, Trace};

/// What a generated builder's `send()` returns on failure (progenitor's
/// error, with the API's error body). `?` turns it into a [`ClientError`],
/// the error to act on; match on this one only to see the raw response.
pub type SendError = progenitor_client::Error<types::Error>;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};

/// Errors building a client.
#[derive(Debug)]
pub enum BuildError {
    /// The API key contains characters that cannot be sent in a header.
    InvalidKey,
    /// The HTTP client could not be built.
    Http(reqwest::Error),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::InvalidKey => {
                f.write_str("the API key contains characters not allowed in an HTTP header")
            }
            BuildError::Http(e) => write!(f, "building the HTTP client: {e}"),
        }
    }
}

impl std::error::Error for BuildError {}

fn install_crypto_provider() {
    // reqwest is built without a default TLS provider; use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder with mcpgate's defaults (timeouts, user agent).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("mcpgate-client/", env!("CARGO_PKG_VERSION")))
}

impl Client {
    /// A client without credentials (for registration and health probes).
    pub fn anonymous(base_url: &str) -> Result<Self, BuildError> {
        let http = http_client_builder().build().map_err(BuildError::Http)?;
        Ok(Client::new_with_client(
            base_url.trim_end_matches('/'),
            http,
            Hooks::default(),
        ))
    }

    /// A client that sends `key` as `Authorization: Bearer <key>` on every
    /// request. The key is a default header of its HTTP client, so requests
    /// made through `client.client()` carry it too; a [`Session`] sets the
    /// credential per request instead.
    pub fn with_api_key(base_url: &str, key: impl Into<SecretString>) -> Result<Self, BuildError> {
        let key: SecretString = key.into();
        let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
            .map_err(|_| BuildError::InvalidKey)?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        let http = http_client_builder()
            .default_headers(headers)
            .build()
            .map_err(BuildError::Http)?;
        Ok(Client::new_with_client(
            base_url.trim_end_matches('/'),
            http,
            Hooks::default(),
        ))
    }
}
