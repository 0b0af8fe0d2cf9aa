//! The client credentials grant (RFC 6749 §4.4): an owned client acts for
//! its owner, within the scopes of the key that registered it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    super::{authorize::requested_scopes, error::OAuthError, error::OAuthResult, resource, secs},
    insert_pair, Client, GrantType, IssuedTokens, Pair, Resource, TokenRequest,
};
use crate::{
    entity::oauth_grant,
    scope::Scopes,
    state::AppState,
    store,
    token::{self, Kind},
};

/// What a client-credentials token may hold now: the client's scopes, and
/// at most the scopes of the API key that registered it, which must still be
/// valid (revoking it deletes the client; an expired one stops it).
async fn delegated_scopes(
    state: &AppState,
    client: &Client,
    now: DateTime<Utc>,
) -> OAuthResult<Scopes> {
    let Some(key_id) = &client.owner_key_id else {
        // An operator's client: the operator chose its scopes.
        return Ok(client.scopes.clone());
    };
    let key = store::api_keys::find(&state.db, key_id).await?;
    let key = key
        .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|at| at > now))
        .ok_or_else(|| {
            OAuthError::new(
                crate::error::OAuthCode::UnauthorizedClient,
                "the API key that registered this client is no longer valid",
            )
        })?;
    let key_scopes = Scopes::parse_space_separated(&key.scopes).map_err(|e| {
        OAuthError::from(crate::error::Error::caused_by(
            format!("stored scopes of key {}", key.id),
            e,
        ))
    })?;
    Ok(Scopes::parse(
        client
            .scopes
            .iter()
            .filter(|s| key_scopes.contains(*s))
            .map(|s| s.as_str()),
    )
    .unwrap_or_default())
}

pub(super) async fn client_credentials(
    state: &AppState,
    client: &Client,
    req: TokenRequest,
) -> OAuthResult<IssuedTokens> {
    if !client.is_confidential() || !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::new(
            crate::error::OAuthCode::UnauthorizedClient,
            "this client may not use the client_credentials grant",
        ));
    }
    let owner = client.owner_user_id.ok_or_else(|| {
        OAuthError::new(
            crate::error::OAuthCode::UnauthorizedClient,
            "this client has no owner account to act for",
        )
    })?;
    let now = state.clock.now();
    let allowed = delegated_scopes(state, client, now).await?;
    let scopes = requested_scopes(req.scope.as_deref(), &allowed)?;
    let resources = resource::parse(state, &req.resource)?;
    let access_ttl = secs(state.config.access_token_ttl_secs);
    let txn = crate::db::begin_write(&state.db).await?;
    let grant_id =
        match store::oauth::find_client_credentials_grant(&txn, &client.id, owner).await? {
            Some(g) => {
                store::oauth::touch_grant(&txn, g.id, now, now + access_ttl).await?;
                g.id
            }
            None => {
                let id = Uuid::now_v7();
                store::oauth::insert_grant(
                    &txn,
                    oauth_grant::Model {
                        id,
                        user_id: owner,
                        client_id: client.id.clone(),
                        grant_type: GrantType::ClientCredentials.as_str().into(),
                        scopes: allowed.to_space_separated(),
                        resources: resource::join(&[Resource::Api, Resource::Mcp]),
                        code_id: None,
                        created_at: now,
                        last_used_at: now,
                        expires_at: now + access_ttl,
                        revoked_at: None,
                    },
                )
                .await?;
                id
            }
        };
    let issued = insert_pair(
        state,
        &txn,
        Pair {
            grant_id,
            user_id: owner,
            client_id: &client.id,
            scopes: &scopes,
            resources: &resources,
            access: token::generate(Kind::AccessToken),
            refresh: None,
            now,
        },
    )
    .await?;
    store::oauth::touch_client(&txn, &client.id, now).await?;
    txn.commit().await?;
    Ok(issued)
}
