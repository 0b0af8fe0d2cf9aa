//! The access token handed out, refreshed ahead of its expiry, once per
//! connection across replicas; the background refresh of the connections
//! about to expire.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::{RefreshToken, TokenResponse};
use secrecy::{ExposeSecret, SecretString};

use super::{
    mine, provider,
    upstream::{describe, http_client, oauth_client, send, UpstreamError},
    ConnectionStatus,
};
use crate::{
    crypto::Binding,
    entity::connection,
    error::{Error, Result},
    scope::Scope,
    service::auth::Principal,
    state::AppState,
    store,
};

/// A token expiring within this is refreshed before it is handed out.
pub const REFRESH_AHEAD_SECS: i64 = 300;
/// How long a refresh claim lasts if its holder dies.
const CLAIM_SECS: i64 = 30;

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
        .map_err(|e| Error::caused_by(format!("connection {}", c.id), e))?;
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
        .map_err(|e| Error::caused_by(format!("connection {}", c.id), e))?;
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
        #[allow(
            clippy::disallowed_methods,
            reason = "the wait is the point: another replica's refresh runs on wall time"
        )]
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
