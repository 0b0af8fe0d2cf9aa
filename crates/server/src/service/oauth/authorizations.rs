//! The applications a user has authorized, and revoking one.

use chrono::{DateTime, Utc};

use super::{clients, resource};
use crate::{
    error::{Error, Result},
    scope::Scopes,
    service::{audit, auth::Principal},
    state::AppState,
    store,
};

/// One application the user has authorized.
pub struct Authorization {
    pub client_id: String,
    pub client_name: String,
    pub verified: bool,
    pub scopes: Scopes,
    pub resources: Vec<String>,
    /// The client's registered redirect URIs (where its sign-ins return).
    pub redirect_uris: Vec<String>,
    pub authorized_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// The caller's authorized applications, one entry per client.
pub async fn authorizations(state: &AppState, principal: &Principal) -> Result<Vec<Authorization>> {
    principal.require(crate::scope::Scope::KeysRead)?;
    let grants =
        store::oauth::live_grants_of_user(&state.db, principal.user_id, state.clock.now()).await?;
    let mut out: Vec<Authorization> = Vec::new();
    for g in grants {
        let scopes = Scopes::parse_space_separated(&g.scopes)
            .map_err(|e| Error::caused_by(format!("grant {} scopes", g.id), e))?;
        let resources = resource::uris(state, &resource::split(&g.resources));
        if let Some(existing) = out.iter_mut().find(|a| a.client_id == g.client_id) {
            let mut names = existing.scopes.names();
            names.extend(scopes.names());
            existing.scopes = Scopes::parse(names).unwrap_or_default();
            for r in resources {
                if !existing.resources.contains(&r) {
                    existing.resources.push(r);
                }
            }
            existing.authorized_at = existing.authorized_at.min(g.created_at);
            existing.last_used_at = existing.last_used_at.max(g.last_used_at);
            continue;
        }
        let client = store::oauth::find_client(&state.db, &g.client_id).await?;
        out.push(Authorization {
            client_name: client
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_else(|| g.client_id.clone()),
            verified: client.as_ref().is_some_and(|c| c.kind == "operator"),
            redirect_uris: client
                .as_ref()
                .and_then(|c| serde_json::from_str(&c.redirect_uris).ok())
                .unwrap_or_default(),
            client_id: g.client_id,
            scopes,
            resources,
            authorized_at: g.created_at,
            last_used_at: g.last_used_at,
        });
    }
    Ok(out)
}

/// Revoke everything a client holds for the caller: every grant (and so
/// every token) and the remembered consent.
pub async fn revoke_authorization(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
) -> Result<()> {
    principal.require(crate::scope::Scope::KeysWrite)?;
    if client_id.len() > clients::MAX_METADATA_URL_LEN {
        return Err(Error::NotFound("authorization"));
    }
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let ids = store::oauth::live_grant_ids(&txn, principal.user_id, client_id).await?;
    let consents = store::oauth::delete_consent(&txn, principal.user_id, client_id).await?;
    store::oauth::revoke_grants(&txn, &ids, now).await?;
    // A client the caller owns is their own delegation: revoking its access
    // removes it, or it would mint client-credentials tokens again.
    let owned = store::oauth::delete_owned_client(&txn, principal.user_id, client_id).await?;
    if ids.is_empty() && consents == 0 && owned == 0 {
        return Err(Error::NotFound("authorization"));
    }
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: principal.user_id,
            action: audit::AuditAction::OAuthAuthorizationRevoked,
            credential_id: Some(&principal.credential.id),
            target: Some(client_id),
            details: serde_json::json!({ "client_id": client_id, "grants": ids.len(), "client_deleted": owned == 1 }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
