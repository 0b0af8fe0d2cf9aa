//! Connections: per-user OAuth connections to third-party providers.
//!
//! A user starts a flow (`start`), the provider sends the browser back
//! (`callback`), and mcpgate stores the provider's tokens encrypted
//! (AES-256-GCM, bound to row and field). MCP servers behind mcpgate then
//! ask for a valid access token (`token`), refreshed first when it expires
//! within 5 minutes; the refresh token never leaves mcpgate. One refresh per
//! connection at a time across replicas: a conditional UPDATE claims it.
//! The OAuth exchanges go through the `oauth2` crate over reqwest.
//!
//! `flow` is the start and the callback, `tokens` the access token and its
//! refresh, `upstream` the requests to the provider's endpoints, `rotation`
//! the re-encryption under a new master key.

use chrono::{DateTime, Utc};

use super::{
    audit,
    auth::Principal,
    catalog::{Credentials, Provider},
};
use crate::{
    crypto::Binding,
    entity::connection,
    error::{Error, Result},
    scope::Scope,
    state::AppState,
    store,
    vocabulary::vocabulary,
};

mod flow;
mod rotation;
mod tokens;
mod upstream;

pub use flow::{
    callback, start, CallbackError, CallbackOutcome, CallbackParams, Started, STATE_TTL_MINUTES,
};
pub use rotation::{rotate_key, Rotation};
pub use tokens::{refresh, refresh_due, token, UpstreamToken, REFRESH_AHEAD_SECS};
pub use upstream::{UpstreamError, UpstreamHttpError};

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
        if let Ok(token) = token {
            upstream::revoke(state, p, url, creds, &token, hint).await;
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

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn statuses_round_trip_and_refuse_unknown_names() {
        crate::vocabulary::assert_round_trip(ConnectionStatus::ALL, "active");
        let now = chrono::DateTime::UNIX_EPOCH;
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
            Err(e @ Error::Unexpected { .. }) => assert_eq!(
                crate::error::chain(&e),
                format!(
                    "connection {}: unknown connection status \"active\"",
                    Uuid::nil()
                )
            ),
            other => panic!("a stored unknown status is an internal error: {other:?}"),
        }
    }
}
