//! Credentials: an API key, or an OAuth token set that refreshes itself.
//!
//! An [`OAuthCredential`] is shared across tasks (`Arc`); it refreshes its
//! access token shortly before expiry, and once more when the server answers
//! 401, one refresh at a time, and saves every new token set in its
//! [`TokenStore`].

#![warn(missing_docs)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::{
    error::{request_id_header, ClientError},
    http_client_builder, BuildError,
};

/// Refresh this long before the access token expires.
const REFRESH_MARGIN_SECS: i64 = 60;

/// What a token store keeps per server. The tokens are secrets: `Debug`
/// shows them as `[REDACTED]`, and only serializing (for the store) writes
/// them out.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredCredential {
    /// The OAuth client the tokens were issued to.
    pub client_id: String,
    /// Where to refresh them.
    pub token_endpoint: String,
    /// The current access token.
    #[serde(serialize_with = "exposed::serialize")]
    pub access_token: SecretString,
    /// The refresh token, if one was issued.
    #[serde(serialize_with = "exposed::serialize_option")]
    pub refresh_token: Option<SecretString>,
    /// When the access token expires (client clock).
    pub expires_at: Option<DateTime<Utc>>,
    /// The granted scopes, space-separated.
    pub scope: Option<String>,
    /// Where to revoke the tokens (RFC 7009), from the server's metadata.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

/// A token store is where tokens are meant to be written: these serialize
/// a secret as its plain value (`secrecy` refuses to by default).
mod exposed {
    use secrecy::{ExposeSecret, SecretString};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose_secret())
    }

    pub fn serialize_option<S: Serializer>(
        secret: &Option<SecretString>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match secret {
            Some(secret) => s.serialize_some(secret.expose_secret()),
            None => s.serialize_none(),
        }
    }
}

/// Where OAuth credentials persist, one entry per server URL.
pub trait TokenStore: Send + Sync {
    /// The credential stored for `server`, if any.
    fn load(&self, server: &str) -> Result<Option<StoredCredential>, ClientError>;
    /// Store (or replace) the credential of `server`.
    fn save(&self, server: &str, credential: &StoredCredential) -> Result<(), ClientError>;
    /// Forget the credential of `server`.
    fn remove(&self, server: &str) -> Result<(), ClientError>;
}

/// Credentials kept in memory only.
#[derive(Default)]
pub struct MemoryTokenStore(Mutex<BTreeMap<String, StoredCredential>>);

impl TokenStore for MemoryTokenStore {
    fn load(&self, server: &str) -> Result<Option<StoredCredential>, ClientError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(server)
            .cloned())
    }
    fn save(&self, server: &str, credential: &StoredCredential) -> Result<(), ClientError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(server.to_owned(), credential.clone());
        Ok(())
    }
    fn remove(&self, server: &str) -> Result<(), ClientError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(server);
        Ok(())
    }
}

/// Credentials in a JSON file (default `~/.config/mcpgate/credentials.json`),
/// written atomically with mode 0600.
pub struct FileTokenStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileTokenStore {
    /// A store in the file at `path` (created on the first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    /// `$XDG_CONFIG_HOME/mcpgate/credentials.json`, else `~/.config/…`.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("mcpgate").join("credentials.json"))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<BTreeMap<String, StoredCredential>, ClientError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::Store(format!("{} is not valid: {e}", self.path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(ClientError::Store(format!(
                "reading {}: {e}",
                self.path.display()
            ))),
        }
    }

    fn write(&self, all: &BTreeMap<String, StoredCredential>) -> Result<(), ClientError> {
        let fail =
            |e: std::io::Error| ClientError::Store(format!("writing {}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let bytes =
            serde_json::to_vec_pretty(all).map_err(|e| ClientError::Store(e.to_string()))?;
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp).map_err(fail)?;
            file.write_all(&bytes).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(fail)
    }
}

impl TokenStore for FileTokenStore {
    fn load(&self, server: &str) -> Result<Option<StoredCredential>, ClientError> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.read()?.remove(server))
    }
    fn save(&self, server: &str, credential: &StoredCredential) -> Result<(), ClientError> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read()?;
        all.insert(server.to_owned(), credential.clone());
        self.write(&all)
    }
    fn remove(&self, server: &str) -> Result<(), ClientError> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read()?;
        if all.remove(server).is_some() {
            self.write(&all)?;
        }
        Ok(())
    }
}

/// The live token set of an OAuth credential.
struct TokenSet {
    access_token: SecretString,
    refresh_token: Option<SecretString>,
    expires_at: Option<DateTime<Utc>>,
    scope: Option<String>,
}

/// An OAuth credential for one server: refreshes itself, one refresh at a
/// time, and persists every new token set.
pub struct OAuthCredential {
    server: String,
    client_id: String,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    tokens: tokio::sync::Mutex<TokenSet>,
    store: Arc<dyn TokenStore>,
    http: reqwest::Client,
}

impl std::fmt::Debug for OAuthCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthCredential")
            .field("server", &self.server)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// A token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    error_description: Option<String>,
}

impl OAuthCredential {
    /// Load the credential stored for `server`, if any.
    pub fn from_store(
        server: &str,
        store: Arc<dyn TokenStore>,
    ) -> Result<Option<Arc<Self>>, ClientError> {
        let server = server.trim_end_matches('/').to_owned();
        let Some(stored) = store.load(&server)? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Self::from_stored(server, stored, store)?)))
    }

    /// [`OAuthCredential::from_store`] refreshing and revoking through the
    /// caller's HTTP client.
    pub fn from_store_with(
        server: &str,
        store: Arc<dyn TokenStore>,
        http: reqwest::Client,
    ) -> Result<Option<Arc<Self>>, ClientError> {
        let server = server.trim_end_matches('/').to_owned();
        let Some(stored) = store.load(&server)? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Self::from_stored_with(
            server, stored, store, http,
        ))))
    }

    pub(crate) fn from_stored(
        server: String,
        s: StoredCredential,
        store: Arc<dyn TokenStore>,
    ) -> Result<Self, ClientError> {
        let http = http_client_builder().build().map_err(BuildError::Http)?;
        Ok(Self::from_stored_with(server, s, store, http))
    }

    pub(crate) fn from_stored_with(
        server: String,
        s: StoredCredential,
        store: Arc<dyn TokenStore>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            server,
            client_id: s.client_id,
            token_endpoint: s.token_endpoint,
            revocation_endpoint: s.revocation_endpoint,
            tokens: tokio::sync::Mutex::new(TokenSet {
                access_token: s.access_token,
                refresh_token: s.refresh_token,
                expires_at: s.expires_at,
                scope: s.scope,
            }),
            store,
            http,
        }
    }

    /// The server this credential is for.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A valid access token, refreshed first when it expires within a minute.
    pub async fn access_token(&self) -> Result<SecretString, ClientError> {
        let mut t = self.tokens.lock().await;
        let expiring = t
            .expires_at
            .is_some_and(|e| e - Utc::now() < chrono::Duration::seconds(REFRESH_MARGIN_SECS));
        if expiring && t.refresh_token.is_some() {
            self.refresh_locked(&mut t).await?;
        }
        Ok(t.access_token.clone())
    }

    /// Log out: revoke the tokens at the server (the refresh token revokes
    /// the whole grant) and forget them in the store.
    pub async fn revoke(&self) -> Result<(), ClientError> {
        let t = self.tokens.lock().await;
        if let Some(endpoint) = &self.revocation_endpoint {
            let (token, hint) = match &t.refresh_token {
                Some(r) => (r.expose_secret(), "refresh_token"),
                None => (t.access_token.expose_secret(), "access_token"),
            };
            let resp = self
                .http
                .post(endpoint)
                .form(&[
                    ("token", token),
                    ("token_type_hint", hint),
                    ("client_id", self.client_id.as_str()),
                ])
                .send()
                .await?;
            if !resp.status().is_success() {
                return Err(ClientError::Server {
                    status: resp.status().as_u16(),
                    code: "revocation_failed".into(),
                    message: "the server did not revoke the tokens".into(),
                    request_id: request_id_header(resp.headers()),
                });
            }
        }
        self.store.remove(&self.server)
    }

    /// The server refused `rejected`: refresh, unless another task already
    /// did since (then its token is used).
    pub async fn refresh_after_401(
        &self,
        rejected: &SecretString,
    ) -> Result<SecretString, ClientError> {
        let mut t = self.tokens.lock().await;
        if t.access_token.expose_secret() == rejected.expose_secret() {
            self.refresh_locked(&mut t).await?;
        }
        Ok(t.access_token.clone())
    }

    async fn refresh_locked(&self, t: &mut TokenSet) -> Result<(), ClientError> {
        let Some(refresh) = t.refresh_token.as_ref() else {
            return Err(ClientError::Unauthorized {
                code: "no_refresh_token".into(),
                message: "the session has no refresh token".into(),
                request_id: None,
            });
        };
        let resp = self
            .http
            .post(&self.token_endpoint)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose_secret()),
                ("client_id", &self.client_id),
            ])
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let request_id = request_id_header(resp.headers());
            let body: Option<OAuthErrorBody> = resp.json().await.ok();
            let (code, message) = body
                .map(|b| (b.error.clone(), b.error_description.unwrap_or(b.error)))
                .unwrap_or_else(|| ("refresh_failed".into(), format!("HTTP {status}")));
            return Err(if status.as_u16() == 400 || status.as_u16() == 401 {
                ClientError::Unauthorized {
                    code,
                    message,
                    request_id,
                }
            } else {
                ClientError::Server {
                    status: status.as_u16(),
                    code,
                    message,
                    request_id,
                }
            });
        }
        let body: TokenResponse = resp.json().await?;
        *t = TokenSet {
            access_token: SecretString::from(body.access_token),
            refresh_token: body
                .refresh_token
                .map(SecretString::from)
                .or_else(|| t.refresh_token.take()),
            expires_at: body
                .expires_in
                .map(|s| Utc::now() + chrono::Duration::seconds(s)),
            scope: body.scope.or_else(|| t.scope.take()),
        };
        self.store.save(&self.server, &self.stored(t))
    }

    fn stored(&self, t: &TokenSet) -> StoredCredential {
        StoredCredential {
            client_id: self.client_id.clone(),
            token_endpoint: self.token_endpoint.clone(),
            access_token: t.access_token.clone(),
            refresh_token: t.refresh_token.clone(),
            expires_at: t.expires_at,
            scope: t.scope.clone(),
            revocation_endpoint: self.revocation_endpoint.clone(),
        }
    }
}

/// How requests are authenticated.
#[derive(Clone)]
pub enum Auth {
    /// An API key, sent as `Authorization: Bearer`.
    ApiKey(SecretString),
    /// An OAuth credential (refreshing itself).
    OAuth(Arc<OAuthCredential>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::ApiKey(_) => f.write_str("Auth::ApiKey([REDACTED])"),
            Auth::OAuth(c) => write!(f, "Auth::OAuth({c:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred() -> StoredCredential {
        StoredCredential {
            client_id: "mcpg_ci_x".into(),
            token_endpoint: "http://127.0.0.1:1/oauth/token".into(),
            access_token: "mcpg_at_secret-access".into(),
            refresh_token: Some("mcpg_rt_secret-refresh".into()),
            expires_at: None,
            scope: Some("memories:read".into()),
            revocation_endpoint: None,
        }
    }

    #[test]
    fn file_store_is_private_and_keeps_one_entry_per_server() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("sub").join("credentials.json"));
        store.save("http://a", &cred()).unwrap();
        store.save("http://b", &cred()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(
            store.load("http://a").unwrap().unwrap().client_id,
            "mcpg_ci_x"
        );
        store.remove("http://a").unwrap();
        assert!(store.load("http://a").unwrap().is_none());
        assert!(store.load("http://b").unwrap().is_some());
    }

    #[test]
    fn debug_never_shows_a_token() {
        let stored = cred();
        let shown = format!("{stored:?}");
        assert!(shown.contains("mcpg_ci_x"), "{shown}");
        assert!(!shown.contains("secret-access"), "{shown}");
        assert!(!shown.contains("secret-refresh"), "{shown}");
        let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::default());
        let oauth =
            Arc::new(OAuthCredential::from_stored("http://a".into(), stored, store).unwrap());
        for shown in [
            format!("{:?}", Auth::OAuth(oauth)),
            format!("{:?}", Auth::ApiKey("mcpg_k_secret-key".into())),
        ] {
            assert!(!shown.contains("secret-"), "{shown}");
        }
    }

    #[test]
    fn the_store_keeps_the_tokens_themselves() {
        let json = serde_json::to_value(cred()).unwrap();
        assert_eq!(json["access_token"], "mcpg_at_secret-access");
        assert_eq!(json["refresh_token"], "mcpg_rt_secret-refresh");
        let back: StoredCredential = serde_json::from_value(json).unwrap();
        assert_eq!(back.access_token.expose_secret(), "mcpg_at_secret-access");
        let mut no_refresh = serde_json::to_value(cred()).unwrap();
        no_refresh.as_object_mut().unwrap().remove("refresh_token");
        let back: StoredCredential = serde_json::from_value(no_refresh).unwrap();
        assert!(back.refresh_token.is_none());
    }
}
