//! A connection flow: `start` sends the user to the provider, `callback`
//! takes the provider's redirect.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use oauth2::{AuthorizationCode, PkceCodeVerifier, TokenResponse};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    audit, callback_url, credentials, provider,
    upstream::{account_id, describe, http_client, oauth_client, send, UpstreamError},
    ConnectionStatus,
};
use crate::{
    crypto::Binding,
    entity::{connect_state, connection},
    error::{Error, Result},
    scope::Scope,
    service::{auth::Principal, catalog::Provider},
    state::AppState,
    store,
    token::{self, Kind},
};

/// How long a connection flow may take.
pub const STATE_TTL_MINUTES: i64 = 10;

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
    let now = state.clock.now();
    let row = verify_state(state, p, params.state, session_user, now).await?;
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
    let tokens = exchange(state, p, &row, &code, now).await?;
    store_connection(state, p, &row, tokens, now).await?;
    Ok(match row.return_to {
        Some(r) => {
            let mut url =
                url::Url::parse(&r).map_err(|e| Error::caused_by("stored return_to", e))?;
            url.query_pairs_mut().append_pair("connected", &p.name);
            CallbackOutcome::Redirect(url.to_string())
        }
        None => CallbackOutcome::Connected {
            provider: p.display_name.clone(),
        },
    })
}

/// The flow state the provider sent back, if it is this provider's, unused,
/// unexpired and (when a browser session is signed in) that user's.
async fn verify_state(
    state: &AppState,
    p: &Provider,
    presented: Option<String>,
    session_user: Option<Uuid>,
    now: DateTime<Utc>,
) -> std::result::Result<connect_state::Model, CallbackError> {
    let presented = presented.ok_or(CallbackError::InvalidState(
        "the state parameter is missing",
    ))?;
    let id = token::parse(Kind::ConnectState, &presented)
        .map_err(|_| CallbackError::InvalidState("the state is not valid"))?;
    let row = store::connections::find_state(&state.db, id)
        .await?
        .ok_or(CallbackError::InvalidState("the state is not valid"))?;
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
    Ok(row)
}

/// What the code exchange brought back, ready to store.
struct Exchanged {
    access: SecretString,
    refresh: Option<SecretString>,
    external_account_id: Option<String>,
    scopes: String,
    expires_at: Option<DateTime<Utc>>,
}

/// Exchange the code (with the flow's PKCE verifier) for the provider's
/// tokens, then ask the user-info endpoint, if any, for the account id.
async fn exchange(
    state: &AppState,
    p: &Provider,
    row: &connect_state::Model,
    code: &SecretString,
    now: DateTime<Utc>,
) -> std::result::Result<Exchanged, CallbackError> {
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
            .map_err(|e| Error::caused_by(format!("connect state {}", row.id), e))?;
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
    Ok(Exchanged {
        access,
        refresh,
        external_account_id,
        scopes,
        expires_at,
    })
}

/// In one transaction: consume the state (refused if another callback did
/// first), create or replace the user's connection with the tokens
/// encrypted, record the audit event.
async fn store_connection(
    state: &AppState,
    p: &Provider,
    row: &connect_state::Model,
    tokens: Exchanged,
    now: DateTime<Utc>,
) -> std::result::Result<(), CallbackError> {
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
        &tokens.access,
        &Binding {
            table: "connections",
            row: &conn_key,
            field: "access_token",
        },
    );
    let refresh_enc = tokens.refresh.as_ref().map(|r| {
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
            external_account_id: tokens.external_account_id.clone(),
            scopes: tokens.scopes.chars().take(1000).collect(),
            token_type: "Bearer".into(),
            access_token_enc: access_enc,
            refresh_token_enc: refresh_enc,
            expires_at: tokens.expires_at,
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
            details: serde_json::json!({ "external_account_id": tokens.external_account_id, "reconnected": existing.is_some() }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
