//! The refresh token grant (RFC 6749 §6): rotation on every use, a grace
//! period for retries, and reuse detection that revokes the family.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::{
    super::{
        authorize::requested_scopes, error::OAuthError, error::OAuthResult,
        introspect::presented_refresh, resource, secs,
    },
    insert_pair, narrow_resources, Client, IssuedTokens, Pair, TokenRequest,
};
use crate::{
    entity::{oauth_grant, oauth_refresh_token},
    error::Error,
    scope::Scopes,
    service::audit,
    state::AppState,
    store,
    token::{self, Kind},
};

/// The successor of a refresh token, derived from it with a server key: a
/// retry of the same token computes the same pair, so the grace-period retry
/// can answer with it although only digests are stored. Without the server
/// key, holding a token does not reveal its successor.
fn successor(state: &AppState, presented: &str, kind: Kind) -> token::NewApiKey {
    use hmac::Mac;
    let key = state.master_key.derive("mcpgate refresh-token rotation v1");
    let mac = |label: &str| {
        let mut m = crate::crypto::hmac_sha256(key.as_slice());
        m.update(presented.as_bytes());
        m.update(label.as_bytes());
        m.finalize().into_bytes()
    };
    let label = kind.prefix();
    let id = token::base62_from_bytes(&mac(&format!("{label}id")), token::ID_LEN);
    let secret = token::base62_from_bytes(&mac(&format!("{label}secret")), token::SECRET_LEN);
    token::generate_with(kind, id, &secret)
}

pub(super) async fn refresh(
    state: &AppState,
    client: &Client,
    req: TokenRequest,
) -> OAuthResult<IssuedTokens> {
    let presented = req
        .refresh_token
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let presented = presented.expose_secret();
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let now = state.clock.now();
    // Two passes at most: losing the rotation race re-reads the row.
    for _ in 0..2 {
        let (row, grant) = presented_refresh(state, presented)
            .await?
            .ok_or_else(invalid)?;
        if grant.client_id != client.id {
            return Err(invalid());
        }
        if row.revoked_at.is_some() || grant.revoked_at.is_some() || row.expires_at <= now {
            return Err(invalid());
        }
        if let Some(rotated_at) = row.rotated_at {
            return retry_or_reuse(state, &row, &grant, rotated_at, presented, now).await;
        }
        let scopes = Scopes::parse_space_separated(&row.scopes).map_err(|e| {
            Error::caused_by(format!("stored scopes of refresh token {}", row.id), e)
        })?;
        let scopes = match req.scope.as_deref() {
            Some(s) if !s.trim().is_empty() => requested_scopes(Some(s), &scopes)?,
            _ => scopes,
        };
        let resources = narrow_resources(state, &req.resource, &resource::split(&grant.resources))?;
        let at = successor(state, presented, Kind::AccessToken);
        let rt = successor(state, presented, Kind::RefreshToken);
        let txn = crate::db::begin_write(&state.db).await?;
        if !store::oauth::rotate_refresh(&txn, &row.id, &rt.id, now).await? {
            txn.rollback().await?;
            continue;
        }
        let issued = insert_pair(
            state,
            &txn,
            Pair {
                grant_id: grant.id,
                user_id: grant.user_id,
                client_id: &client.id,
                scopes: &scopes,
                resources: &resources,
                access: at,
                refresh: Some(rt),
                now,
            },
        )
        .await?;
        store::oauth::touch_grant(
            &txn,
            grant.id,
            now,
            now + secs(state.config.refresh_token_ttl_secs),
        )
        .await?;
        store::oauth::touch_client(&txn, &client.id, now).await?;
        txn.commit().await?;
        return Ok(issued);
    }
    Err(invalid())
}

/// A rotated refresh token came back. Within the grace period, and if it is
/// the immediate predecessor of the live token, it is a retry (a lost
/// response): answer with the same pair. Otherwise it is reuse: revoke the
/// family (RFC 9700 §4.14.2).
async fn retry_or_reuse(
    state: &AppState,
    row: &oauth_refresh_token::Model,
    grant: &oauth_grant::Model,
    rotated_at: DateTime<Utc>,
    presented: &str,
    now: DateTime<Utc>,
) -> OAuthResult<IssuedTokens> {
    let grace = secs(state.config.refresh_reuse_grace_secs);
    if now - rotated_at <= grace && state.config.refresh_reuse_grace_secs > 0 {
        let next = match &row.replaced_by {
            Some(id) => store::oauth::find_refresh(&state.db, id).await?,
            None => None,
        };
        if let Some(next) = next.filter(|n| n.rotated_at.is_none() && n.revoked_at.is_none()) {
            let access = store::oauth::find_access(&state.db, &next.access_token_id).await?;
            if let Some(access) = access.filter(|a| a.revoked_at.is_none()) {
                let at = successor(state, presented, Kind::AccessToken);
                let rt = successor(state, presented, Kind::RefreshToken);
                if at.id == access.id && rt.id == next.id {
                    return Ok(IssuedTokens {
                        access_token: at.key,
                        expires_in: (access.expires_at - now).num_seconds().max(0),
                        refresh_token: Some(rt.key),
                        scope: access.scopes,
                    });
                }
            }
        }
    }
    let txn = crate::db::begin_write(&state.db).await?;
    store::oauth::revoke_grants(&txn, &[grant.id], now).await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: grant.user_id,
            action: audit::AuditAction::OAuthFamilyRevoked,
            credential_id: None,
            target: Some(&grant.client_id),
            details: serde_json::json!({ "reason": "refresh_token_reuse", "client_id": grant.client_id, "grant": grant.id }),
        },
    )
    .await?;
    txn.commit().await?;
    Err(OAuthError::invalid_grant(
        "the refresh token was already used; every token of this authorization is now revoked",
    ))
}
