//! Connections: per-user OAuth connections to third-party providers.
//!
//! A user starts a flow (`start`), the provider sends the browser back
//! (`callback`), and mcpgate stores the provider's tokens encrypted
//! (AES-256-GCM, bound to row and field). MCP servers behind mcpgate then
//! ask for a valid access token (`token`), refreshed first when it expires
//! within 5 minutes; the refresh token never leaves mcpgate. One refresh per
//! connection at a time across replicas: a conditional UPDATE claims it.
//! The OAuth exchanges go through the `oauth2` crate over reqwest.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use oauth2::{
    basic::{BasicClient, BasicErrorResponseType},
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    audit,
    auth::Principal,
    catalog::{Credentials, Provider},
};
use crate::{
    config::TokenAuthMethod,
    crypto::Binding,
    entity::{connect_state, connection},
    error::{Error, Result},
    scope::Scope,
    state::AppState,
    store,
    token::{self, Kind},
    vocabulary::vocabulary,
};

/// How long a connection flow may take.
pub const STATE_TTL_MINUTES: i64 = 10;
/// A token expiring within this is refreshed before it is handed out.
pub const REFRESH_AHEAD_SECS: i64 = 300;
/// How long a refresh claim lasts if its holder dies.
const CLAIM_SECS: i64 = 30;
/// Largest upstream response read.
const MAX_UPSTREAM_BYTES: usize = 256 * 1024;

vocabulary! {
    /// The state of a connection to a provider.
    pub enum ConnectionStatus ("connection status") {
        /// The tokens work (as far as mcpgate knows).
        Connected = "connected",
        /// The last refresh failed for a reason that may pass (the provider
        /// was down); the next use tries again.
        RefreshFailed = "refresh_failed",
        /// The provider refused the refresh token: connect again.
        ReauthorizationRequired = "reauthorization_required",
    }
}

impl ConnectionStatus {
    /// The status stored in a connection row.
    fn of(c: &connection::Model) -> Result<Self> {
        c.status.parse().map_err(|e: crate::vocabulary::Unknown| {
            e.internal(format_args!("connection {}", c.id))
        })
    }
}

fn not_found_provider() -> Error {
    Error::NotFound("provider")
}

fn provider<'a>(state: &'a AppState, name: &str) -> Result<&'a Provider> {
    state.catalog.get(name).ok_or_else(not_found_provider)
}

fn credentials(p: &Provider) -> Result<&Credentials> {
    p.credentials.as_ref().ok_or_else(|| Error::Conflict {
        code: "provider_unavailable",
        message: format!(
            "The provider {} has no client credentials configured on this server.",
            p.name
        ),
    })
}

/// The redirect URI mcpgate registers at providers.
pub fn callback_url(state: &AppState, provider: &str) -> String {
    format!(
        "{}/api/v1/connect/{provider}/callback",
        state.config.public_url
    )
}

// ------------------------------------------------------------------ HTTP

#[derive(Debug, thiserror::Error)]
pub enum UpstreamHttpError {
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider could not be reached")]
    Unreachable,
    #[error("the provider's response is too large")]
    TooLarge,
    #[error("invalid HTTP response")]
    Invalid,
}

/// The HTTP client for providers: no redirects, the configured timeout.
fn http_client(state: &AppState) -> Result<reqwest::Client> {
    crate::http_client::install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(state.config.upstream_timeout_ms))
        .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Internal(format!("upstream HTTP client: {e}")))
}

async fn send(
    client: reqwest::Client,
    req: oauth2::HttpRequest,
) -> std::result::Result<oauth2::HttpResponse, UpstreamHttpError> {
    let (parts, body) = req.into_parts();
    let map = |e: reqwest::Error| {
        if e.is_timeout() {
            UpstreamHttpError::Timeout
        } else {
            UpstreamHttpError::Unreachable
        }
    };
    let mut resp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(map)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(map)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_UPSTREAM_BYTES {
            return Err(UpstreamHttpError::TooLarge);
        }
    }
    let mut out = oauth2::http::Response::builder()
        .status(status)
        .body(bytes)
        .map_err(|_| UpstreamHttpError::Invalid)?;
    *out.headers_mut() = headers;
    Ok(out)
}

type Client = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn oauth_client(state: &AppState, p: &Provider) -> Result<Client> {
    let creds = credentials(p)?;
    let bad = |what: &str| Error::Internal(format!("provider {} {what}", p.name));
    Ok(BasicClient::new(ClientId::new(creds.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            creds.client_secret.expose_secret().to_owned(),
        ))
        .set_auth_uri(
            AuthUrl::new(p.authorization_url.to_string()).map_err(|_| bad("authorization_url"))?,
        )
        .set_token_uri(TokenUrl::new(p.token_url.to_string()).map_err(|_| bad("token_url"))?)
        .set_redirect_uri(
            RedirectUrl::new(callback_url(state, &p.name)).map_err(|_| bad("redirect URI"))?,
        )
        .set_auth_type(match p.token_auth_method {
            TokenAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
            TokenAuthMethod::ClientSecretPost => AuthType::RequestBody,
        }))
}

/// Why talking to the provider failed, in words safe to show and store.
#[derive(Debug)]
pub enum UpstreamError {
    /// The provider refused the grant (`invalid_grant`): the user must connect again.
    InvalidGrant(String),
    /// Any other answer or no answer.
    Failed(String),
}

fn describe<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> UpstreamError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let code = r.error().to_string();
            let detail = r
                .error_description()
                .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            if matches!(r.error(), BasicErrorResponseType::InvalidGrant) {
                UpstreamError::InvalidGrant(format!("the provider answered {code}{detail}"))
            } else {
                UpstreamError::Failed(format!("the provider answered {code}{detail}"))
            }
        }
        RequestTokenError::Request(e) => UpstreamError::Failed(e.to_string()),
        RequestTokenError::Parse(_, _) => {
            UpstreamError::Failed("the provider's token response could not be parsed".into())
        }
        RequestTokenError::Other(s) => UpstreamError::Failed(s.chars().take(200).collect()),
    }
}

// ------------------------------------------------------------------ list / start

/// A provider as the caller sees it.
pub struct ProviderView {
    pub name: String,
    pub display_name: String,
    pub available: bool,
    pub connected: bool,
    pub status: Option<ConnectionStatus>,
    /// The provider's last error for the caller's connection, if any.
    pub last_error: Option<String>,
}

pub async fn providers(state: &AppState, principal: &Principal) -> Result<Vec<ProviderView>> {
    principal.require(Scope::ConnectionsRead)?;
    let mine = store::connections::list_for_user(&state.db, principal.user_id).await?;
    state
        .catalog
        .all()
        .map(|p| {
            let conn = mine.iter().find(|c| c.provider == p.name);
            Ok(ProviderView {
                name: p.name.clone(),
                display_name: p.display_name.clone(),
                available: p.available(),
                connected: conn.is_some(),
                status: conn.map(ConnectionStatus::of).transpose()?,
                last_error: conn.and_then(|c| c.last_error.clone()),
            })
        })
        .collect()
}

/// A started flow.
pub struct Started {
    pub authorization_url: String,
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

/// True when `return_to` is on the allow-list: the public URL's origin (any
/// path), or an entry of `connect_return_to_allowed` (an http(s) origin with
/// an optional path). Origins compare exactly (scheme, host, port: never as
/// text, so `https://app.example.com.evil.example` is not
/// `https://app.example.com`), paths on a `/` boundary (`/cb` admits `/cb`
/// and `/cb/x`, not `/cbx`), both after URL normalisation (so `/cb/../x`
/// is `/x`).
fn return_to_allowed(state: &AppState, return_to: &str) -> bool {
    let Ok(url) = url::Url::parse(return_to) else {
        return false;
    };
    if !matches!(url.scheme(), "https" | "http")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.host().is_none()
    {
        return false;
    }
    let own = url::Url::parse(&state.config.public_url)
        .map(|u| u.origin())
        .ok();
    let under = |allowed: &str| -> bool {
        let Ok(allowed) = url::Url::parse(allowed) else {
            return false;
        };
        if allowed.origin() != url.origin() {
            return false;
        }
        let base = allowed.path().trim_end_matches('/');
        let path = url.path();
        path == base
            || path
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    own.is_some_and(|o| o == url.origin())
        || state
            .config
            .connect_return_to_allowed
            .iter()
            .any(|allowed| under(allowed))
}

pub async fn start(
    state: &AppState,
    principal: &Principal,
    name: &str,
    return_to: Option<String>,
) -> Result<Started> {
    principal.require(Scope::ConnectionsWrite)?;
    let p = provider(state, name)?;
    credentials(p)?;
    if let Some(r) = &return_to {
        if r.len() > 2000 || !return_to_allowed(state, r) {
            return Err(Error::validation(
                "return_to",
                "is not on this server's allow-list (connect_return_to_allowed)",
            ));
        }
    }
    let now = state.clock.now();
    let st = token::generate(Kind::ConnectState);
    let verifier = p.pkce.then(|| SecretString::from(token::random_base62(64)));
    let binding = Binding {
        table: "connect_states",
        row: &st.id,
        field: "pkce_verifier",
    };
    let expires_at = now + chrono::Duration::minutes(STATE_TTL_MINUTES);
    store::connections::insert_state(
        &state.db,
        connect_state::Model {
            id: st.id.clone(),
            secret_hash: st.hash.to_vec(),
            user_id: principal.user_id,
            provider: p.name.clone(),
            pkce_verifier_enc: verifier
                .as_ref()
                .map(|v| state.keyring.encrypt(v, &binding)),
            return_to,
            created_at: now,
            expires_at,
            consumed_at: None,
        },
    )
    .await?;
    let mut url = p.authorization_url.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        if let Some(c) = &p.credentials {
            q.append_pair("client_id", &c.client_id);
        }
        q.append_pair("redirect_uri", &callback_url(state, &p.name));
        if !p.scopes.is_empty() {
            q.append_pair("scope", &p.scopes.join(&p.scope_separator));
        }
        q.append_pair("state", st.key.expose_secret());
        if let Some(v) = &verifier {
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(v.expose_secret().as_bytes()));
            q.append_pair("code_challenge", &challenge);
            q.append_pair("code_challenge_method", "S256");
        }
        for (k, v) in &p.authorization_params {
            q.append_pair(k, v);
        }
    }
    Ok(Started {
        authorization_url: url.to_string(),
        state: st.key.expose_secret().to_owned(),
        expires_at,
    })
}

// ------------------------------------------------------------------ callback

/// Where the browser goes after the callback.
pub enum CallbackOutcome {
    /// Back to the caller's page.
    Redirect(String),
    /// No return URL: a page saying it worked.
    Connected { provider: String },
}

/// Why a callback failed, for the page.
#[derive(Debug)]
pub enum CallbackError {
    /// No provider of that name is configured on this server.
    UnknownProvider,
    /// The state is unknown, of another provider, expired or already used.
    InvalidState(&'static str),
    /// The provider reported an error (`error=access_denied`, ...).
    Provider {
        error: String,
        description: Option<String>,
    },
    /// The code exchange failed; the state stays usable for a retry.
    Exchange(String),
    Internal(Error),
}

impl From<Error> for CallbackError {
    fn from(e: Error) -> Self {
        CallbackError::Internal(e)
    }
}

impl From<sea_orm::DbErr> for CallbackError {
    fn from(e: sea_orm::DbErr) -> Self {
        CallbackError::Internal(e.into())
    }
}

pub struct CallbackParams {
    pub code: Option<SecretString>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The provider's redirect: verify the state, exchange the code, store the
/// connection, consume the state (only now, so a failed exchange can be
/// retried, and never twice).
pub async fn callback(
    state: &AppState,
    name: &str,
    params: CallbackParams,
    session_user: Option<Uuid>,
) -> std::result::Result<CallbackOutcome, CallbackError> {
    let p = provider(state, name).map_err(|_| CallbackError::UnknownProvider)?;
    let presented = params.state.ok_or(CallbackError::InvalidState(
        "the state parameter is missing",
    ))?;
    let id = token::parse(Kind::ConnectState, &presented)
        .map_err(|_| CallbackError::InvalidState("the state is not valid"))?;
    let row = store::connections::find_state(&state.db, id)
        .await?
        .ok_or(CallbackError::InvalidState("the state is not valid"))?;
    let now = state.clock.now();
    if !token::hashes_match(&token::hash_secret(&presented), &row.secret_hash)
        || row.provider != p.name
    {
        return Err(CallbackError::InvalidState("the state is not valid"));
    }
    if row.consumed_at.is_some() {
        return Err(CallbackError::InvalidState(
            "this connection flow was already completed",
        ));
    }
    if row.expires_at <= now {
        return Err(CallbackError::InvalidState(
            "this connection flow expired; start it again",
        ));
    }
    // A browser signed in as someone else must not complete another
    // user's flow.
    if session_user.is_some_and(|u| u != row.user_id) {
        return Err(CallbackError::InvalidState(
            "this connection flow belongs to another account",
        ));
    }
    if let Some(error) = params.error {
        return Err(CallbackError::Provider {
            error: error.chars().take(64).collect(),
            description: params
                .error_description
                .map(|d| d.chars().take(300).collect()),
        });
    }
    let code = params
        .code
        .ok_or(CallbackError::Exchange("the provider sent no code".into()))?;
    let client = oauth_client(state, p)?;
    let http = http_client(state)?;
    let mut request = client.exchange_code(AuthorizationCode::new(code.expose_secret().to_owned()));
    if let Some(enc) = &row.pkce_verifier_enc {
        let verifier = state
            .keyring
            .decrypt(
                enc,
                &Binding {
                    table: "connect_states",
                    row: &row.id,
                    field: "pkce_verifier",
                },
            )
            .map_err(|e| Error::Internal(format!("connect state {}: {e}", row.id)))?;
        request =
            request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()));
    }
    let token = request
        .request_async(&|req| send(http.clone(), req))
        .await
        .map_err(|e| {
            CallbackError::Exchange(match describe(e) {
                UpstreamError::InvalidGrant(s) | UpstreamError::Failed(s) => s,
            })
        })?;
    let access = SecretString::from(token.access_token().secret().to_owned());
    let refresh = token
        .refresh_token()
        .map(|r| SecretString::from(r.secret().to_owned()));
    let external_account_id = match &p.userinfo_url {
        Some(url) => account_id(state, p, url, &access).await,
        None => None,
    };
    let scopes = token
        .scopes()
        .map(|s| {
            s.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| p.scopes.join(" "));
    let expires_at = token
        .expires_in()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| now + d);

    let txn = crate::db::begin_write(&state.db).await?;
    if !store::connections::consume_state(&txn, &row.id, now).await? {
        return Err(CallbackError::InvalidState(
            "this connection flow was already completed",
        ));
    }
    let existing = store::connections::find(&txn, row.user_id, &p.name).await?;
    let conn_id = existing.as_ref().map(|c| c.id).unwrap_or_else(Uuid::now_v7);
    let conn_key = conn_id.to_string();
    let access_enc = state.keyring.encrypt(
        &access,
        &Binding {
            table: "connections",
            row: &conn_key,
            field: "access_token",
        },
    );
    let refresh_enc = refresh.as_ref().map(|r| {
        state.keyring.encrypt(
            r,
            &Binding {
                table: "connections",
                row: &conn_key,
                field: "refresh_token",
            },
        )
    });
    store::connections::save(
        &txn,
        connection::Model {
            id: conn_id,
            user_id: row.user_id,
            provider: p.name.clone(),
            status: ConnectionStatus::Connected.as_str().into(),
            external_account_id: external_account_id.clone(),
            scopes: scopes.chars().take(1000).collect(),
            token_type: "Bearer".into(),
            access_token_enc: access_enc,
            refresh_token_enc: refresh_enc,
            expires_at,
            connected_at: now,
            updated_at: now,
            last_refreshed_at: None,
            last_error: None,
            refresh_claimed_until: None,
        },
        existing.is_some(),
    )
    .await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: row.user_id,
            action: audit::AuditAction::ConnectionCreated,
            credential_id: None,
            target: Some(&p.name),
            details: serde_json::json!({ "external_account_id": external_account_id, "reconnected": existing.is_some() }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(match row.return_to {
        Some(r) => {
            let mut url =
                url::Url::parse(&r).map_err(|_| Error::Internal("stored return_to".into()))?;
            url.query_pairs_mut().append_pair("connected", &p.name);
            CallbackOutcome::Redirect(url.to_string())
        }
        None => CallbackOutcome::Connected {
            provider: p.display_name.clone(),
        },
    })
}

/// The external account id from the provider's user-info document.
async fn account_id(
    state: &AppState,
    p: &Provider,
    url: &url::Url,
    access: &SecretString,
) -> Option<String> {
    let http = http_client(state).ok()?;
    let resp = http
        .get(url.clone())
        .bearer_auth(access.expose_secret())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        tracing::warn!(provider = %p.name, status = resp.status().as_u16(), "user-info request failed");
        return None;
    }
    let body: serde_json::Value = resp.json().await.ok()?;
    let value = body.pointer(p.account_id_pointer.as_deref().unwrap_or("/id"))?;
    Some(match value {
        serde_json::Value::String(s) => s.chars().take(255).collect(),
        other => other.to_string(),
    })
}

// ------------------------------------------------------------------ status / delete

pub struct ConnectionView {
    pub provider: String,
    pub status: ConnectionStatus,
    pub external_account_id: Option<String>,
    pub scopes: Vec<String>,
    pub connected_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

fn view(c: connection::Model) -> Result<ConnectionView> {
    Ok(ConnectionView {
        status: ConnectionStatus::of(&c)?,
        provider: c.provider,
        external_account_id: c.external_account_id,
        scopes: c
            .scopes
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect(),
        connected_at: c.connected_at,
        expires_at: c.expires_at,
        last_refreshed_at: c.last_refreshed_at,
        last_error: c.last_error,
    })
}

async fn mine(state: &AppState, principal: &Principal, name: &str) -> Result<connection::Model> {
    provider(state, name)?;
    store::connections::find(&state.db, principal.user_id, name)
        .await?
        .ok_or(Error::NotFound("connection"))
}

pub async fn get(state: &AppState, principal: &Principal, name: &str) -> Result<ConnectionView> {
    principal.require(Scope::ConnectionsRead)?;
    view(mine(state, principal, name).await?)
}

/// Delete a connection: revoke at the provider when it supports RFC 7009
/// (best effort), delete locally either way.
pub async fn delete(state: &AppState, principal: &Principal, name: &str) -> Result<()> {
    principal.require(Scope::ConnectionsWrite)?;
    let c = mine(state, principal, name).await?;
    let p = provider(state, name)?;
    if let (Some(url), Some(creds)) = (&p.revocation_url, &p.credentials) {
        let key = c.id.to_string();
        let (token, hint) = match &c.refresh_token_enc {
            Some(enc) => (
                state.keyring.decrypt(
                    enc,
                    &Binding {
                        table: "connections",
                        row: &key,
                        field: "refresh_token",
                    },
                ),
                "refresh_token",
            ),
            None => (
                state.keyring.decrypt(
                    &c.access_token_enc,
                    &Binding {
                        table: "connections",
                        row: &key,
                        field: "access_token",
                    },
                ),
                "access_token",
            ),
        };
        if let (Ok(token), Ok(http)) = (token, http_client(state)) {
            let mut req = http.post(url.clone());
            let mut form = vec![
                ("token", token.expose_secret().to_owned()),
                ("token_type_hint", hint.to_owned()),
            ];
            match p.token_auth_method {
                TokenAuthMethod::ClientSecretBasic => {
                    req =
                        req.basic_auth(&creds.client_id, Some(creds.client_secret.expose_secret()));
                }
                TokenAuthMethod::ClientSecretPost => {
                    form.push(("client_id", creds.client_id.clone()));
                    form.push((
                        "client_secret",
                        creds.client_secret.expose_secret().to_owned(),
                    ));
                }
            }
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish();
            let result = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .send()
                .await;
            if let Err(e) = result {
                tracing::warn!(provider = %p.name, error = %e, "revocation at the provider failed; deleting locally");
            }
        }
    }
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    store::connections::delete(&txn, c.id).await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: principal.user_id,
            action: audit::AuditAction::ConnectionDeleted,
            credential_id: Some(&principal.credential.id),
            target: Some(name),
            details: serde_json::json!({}),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

// ------------------------------------------------------------------ token / refresh

/// An upstream access token handed to the caller.
pub struct UpstreamToken {
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
}

/// A valid access token for the caller's connection, refreshed first when
/// it expires within [`REFRESH_AHEAD_SECS`].
pub async fn token(state: &AppState, principal: &Principal, name: &str) -> Result<UpstreamToken> {
    principal.require(Scope::ConnectionsToken)?;
    let mut c = mine(state, principal, name).await?;
    let now = state.clock.now();
    let due = c
        .expires_at
        .is_some_and(|e| e - now <= chrono::Duration::seconds(REFRESH_AHEAD_SECS));
    if due {
        c = refresh(state, c).await?;
    } else if ConnectionStatus::of(&c)? == ConnectionStatus::ReauthorizationRequired {
        return Err(reauthorize(name));
    }
    let key = c.id.to_string();
    let access = state
        .keyring
        .decrypt(
            &c.access_token_enc,
            &Binding {
                table: "connections",
                row: &key,
                field: "access_token",
            },
        )
        .map_err(|e| Error::Internal(format!("connection {}: {e}", c.id)))?;
    Ok(UpstreamToken {
        access_token: access,
        token_type: c.token_type,
        expires_at: c.expires_at,
        scopes: c
            .scopes
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect(),
    })
}

fn reauthorize(name: &str) -> Error {
    Error::Upstream {
        code: "reauthorization_required",
        message: format!("The {name} connection must be authorized again: start a new connection."),
    }
}

/// Refresh a connection, or wait for the replica that is refreshing it.
/// Returns the row as it stands afterwards.
pub async fn refresh(state: &AppState, c: connection::Model) -> Result<connection::Model> {
    let name = c.provider.clone();
    let Some(refresh_enc) = c.refresh_token_enc.clone() else {
        // Nothing to refresh with: hand out what there is until it expires.
        return Ok(c);
    };
    let now = state.clock.now();
    if !store::connections::claim_refresh(
        &state.db,
        c.id,
        &c.access_token_enc,
        now,
        now + chrono::Duration::seconds(CLAIM_SECS),
    )
    .await?
    {
        return wait_for_refresh(state, c).await;
    }
    let p = provider(state, &name)?;
    let key = c.id.to_string();
    let refresh_token = state
        .keyring
        .decrypt(
            &refresh_enc,
            &Binding {
                table: "connections",
                row: &key,
                field: "refresh_token",
            },
        )
        .map_err(|e| Error::Internal(format!("connection {}: {e}", c.id)))?;
    let client = oauth_client(state, p)?;
    let http = http_client(state)?;
    let result = client
        .exchange_refresh_token(&RefreshToken::new(refresh_token.expose_secret().to_owned()))
        .request_async(&|req| send(http.clone(), req))
        .await;
    let now = state.clock.now();
    match result {
        Ok(t) => {
            let access = SecretString::from(t.access_token().secret().to_owned());
            let new_refresh = t
                .refresh_token()
                .map(|r| SecretString::from(r.secret().to_owned()));
            store::connections::store_refreshed(
                &state.db,
                c.id,
                store::connections::Refreshed {
                    access_token_enc: state.keyring.encrypt(
                        &access,
                        &Binding {
                            table: "connections",
                            row: &key,
                            field: "access_token",
                        },
                    ),
                    refresh_token_enc: new_refresh.as_ref().map(|r| {
                        state.keyring.encrypt(
                            r,
                            &Binding {
                                table: "connections",
                                row: &key,
                                field: "refresh_token",
                            },
                        )
                    }),
                    token_type: "Bearer".into(),
                    expires_at: t
                        .expires_in()
                        .and_then(|d| chrono::Duration::from_std(d).ok())
                        .map(|d| now + d),
                    scopes: t.scopes().map(|s| {
                        s.iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    }),
                },
                now,
            )
            .await?;
            state.metrics.upstream_refresh("ok");
            store::connections::find_by_id(&state.db, c.id)
                .await?
                .ok_or(Error::NotFound("connection"))
        }
        Err(e) => {
            let (new_status, message, outcome) = match describe(e) {
                UpstreamError::InvalidGrant(m) => (
                    ConnectionStatus::ReauthorizationRequired,
                    m,
                    "invalid_grant",
                ),
                UpstreamError::Failed(m) => (ConnectionStatus::RefreshFailed, m, "failed"),
            };
            store::connections::mark_failed(&state.db, c.id, new_status, &message, now).await?;
            state.metrics.upstream_refresh(outcome);
            tracing::warn!(provider = %name, connection = %c.id, error = %message, "upstream refresh failed");
            if new_status == ConnectionStatus::ReauthorizationRequired {
                Err(reauthorize(&name))
            } else {
                Err(Error::Upstream {
                    code: "upstream_refresh_failed",
                    message: format!("Refreshing the {name} token failed: {message}. The connection is unchanged; try again."),
                })
            }
        }
    }
}

/// Another replica holds the refresh claim: wait (up to the claim's life)
/// for it to store new tokens or give up.
async fn wait_for_refresh(
    state: &AppState,
    before: connection::Model,
) -> Result<connection::Model> {
    for _ in 0..(CLAIM_SECS * 10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now_row = store::connections::find_by_id(&state.db, before.id)
            .await?
            .ok_or(Error::NotFound("connection"))?;
        if now_row.refresh_claimed_until.is_none() {
            return match ConnectionStatus::of(&now_row)? {
                ConnectionStatus::ReauthorizationRequired => Err(reauthorize(&now_row.provider)),
                ConnectionStatus::RefreshFailed
                    if now_row.access_token_enc == before.access_token_enc =>
                {
                    Err(Error::Upstream {
                        code: "upstream_refresh_failed",
                        message: format!(
                            "Refreshing the {} token failed: {}.",
                            now_row.provider,
                            now_row.last_error.clone().unwrap_or_default()
                        ),
                    })
                }
                _ => Ok(now_row),
            };
        }
    }
    Err(Error::Upstream {
        code: "upstream_refresh_failed",
        message: "Another refresh of this connection did not finish in time; try again.".into(),
    })
}

/// Refresh, in the background, the connections about to expire.
pub async fn refresh_due(state: &AppState) -> Result<usize> {
    let now = state.clock.now();
    let due = store::connections::due_for_refresh(
        &state.db,
        now + chrono::Duration::seconds(REFRESH_AHEAD_SECS * 2),
        now,
        100,
    )
    .await?;
    let mut refreshed = 0;
    for c in due {
        if refresh(state, c).await.is_ok() {
            refreshed += 1;
        }
    }
    Ok(refreshed)
}

/// What a key rotation did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Rotation {
    pub rows_checked: u64,
    pub rows_reencrypted: u64,
    /// Rows changed by a refresh during the pass (already under the new key).
    pub rows_skipped: u64,
}

/// Re-encrypt every connection under the current key (`mcpgate admin
/// rotate-key`). Safe while replicas serve: each row is replaced only if it
/// still holds what was read.
pub async fn rotate_key(state: &AppState) -> Result<Rotation> {
    let mut report = Rotation::default();
    let mut after = None;
    loop {
        let page = store::connections::page_after(&state.db, after, 200).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for c in &page {
            report.rows_checked += 1;
            let stale = state.keyring.needs_rotation(&c.access_token_enc)
                || c.refresh_token_enc
                    .as_deref()
                    .is_some_and(|r| state.keyring.needs_rotation(r));
            if !stale {
                continue;
            }
            let key = c.id.to_string();
            let reseal = |enc: &str, field: &str| -> Result<String> {
                let b = Binding {
                    table: "connections",
                    row: &key,
                    field,
                };
                let plain = state
                    .keyring
                    .decrypt(enc, &b)
                    .map_err(|e| Error::Internal(format!("connection {}: {e}", c.id)))?;
                Ok(state.keyring.encrypt(&plain, &b))
            };
            let access = reseal(&c.access_token_enc, "access_token")?;
            let refresh = c
                .refresh_token_enc
                .as_deref()
                .map(|r| reseal(r, "refresh_token"))
                .transpose()?;
            if store::connections::replace_envelopes(&state.db, c, access, refresh).await? {
                report.rows_reencrypted += 1;
            } else {
                report.rows_skipped += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_refuse_unknown_names() {
        crate::vocabulary::assert_round_trip(ConnectionStatus::ALL, "active");
        let now = chrono::Utc::now();
        let mut row = connection::Model {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            provider: "github".into(),
            status: "refresh_failed".into(),
            external_account_id: None,
            scopes: String::new(),
            token_type: "Bearer".into(),
            access_token_enc: String::new(),
            refresh_token_enc: None,
            expires_at: None,
            connected_at: now,
            updated_at: now,
            last_refreshed_at: None,
            last_error: None,
            refresh_claimed_until: None,
        };
        assert_eq!(
            ConnectionStatus::of(&row).unwrap(),
            ConnectionStatus::RefreshFailed
        );
        row.status = "active".into();
        match ConnectionStatus::of(&row) {
            Err(Error::Internal(m)) => assert_eq!(
                m,
                format!(
                    "connection {}: unknown connection status \"active\"",
                    Uuid::nil()
                )
            ),
            other => panic!("a stored unknown status is an internal error: {other:?}"),
        }
    }

    #[tokio::test]
    async fn return_to_compares_origins_exactly_and_paths_on_a_slash() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::config::Config {
            data_dir: dir.path().join("data"),
            public_url: "https://gate.example".into(),
            connect_return_to_allowed: vec![
                "https://app.example.com".into(),
                "https://tools.example.com/cb".into(),
                "http://127.0.0.1:3000/back/".into(),
            ],
            ..Default::default()
        };
        config.validate().unwrap();
        let state = crate::server::offline_state(config).await.unwrap();
        for (return_to, allowed) in [
            // The public URL's origin, any path.
            ("https://gate.example/account/connections?x=1", true),
            ("https://gate.example.evil.example/", false),
            // An origin entry: that origin exactly, any path.
            ("https://app.example.com", true),
            ("https://app.example.com/x/y?z=1", true),
            ("https://APP.example.com/x", true),
            ("https://app.example.com:443/x", true),
            ("https://app.example.com.evil.example/x", false),
            ("https://app.example.com:8443/", false),
            ("http://app.example.com/", false),
            ("https://app.example.com@evil.example/", false),
            ("https://user@app.example.com/", false),
            ("https://evil.example/https://app.example.com", false),
            // An entry with a path: that path and below it, on a `/` boundary.
            ("https://tools.example.com/cb", true),
            ("https://tools.example.com/cb/", true),
            ("https://tools.example.com/cb/x?y=1", true),
            ("https://tools.example.com/cbx", false),
            ("https://tools.example.com/CB", false),
            ("https://tools.example.com/", false),
            ("https://tools.example.com/cb/../admin", false),
            ("https://tools.example.com/cb%2F..%2Fadmin", false),
            ("http://127.0.0.1:3000/back", true),
            ("http://127.0.0.1:3000/back/x", true),
            ("http://127.0.0.1:3000/backdoor", false),
            ("http://127.0.0.1:3001/back", false),
            // Not a web URL at all.
            ("javascript:alert(1)", false),
            ("/account", false),
            ("not a url", false),
        ] {
            assert_eq!(return_to_allowed(&state, return_to), allowed, "{return_to}");
        }
    }
}
