//! Revocation (RFC 7009) and introspection (RFC 7662), and the lookup of
//! a presented token they share with the refresh grant.

use super::{
    authenticate_client, error::OAuthError, error::OAuthResult, resource, ClientCredentials,
};
use crate::{
    entity::{oauth_access_token, oauth_grant, oauth_refresh_token},
    state::AppState,
    store,
    token::{self, Kind},
};

/// The access-token row `presented` names, when its secret matches. No
/// validity checks: the caller decides what revoked or expired means to it.
async fn presented_access(
    state: &AppState,
    presented: &str,
) -> OAuthResult<Option<oauth_access_token::Model>> {
    let Ok(id) = token::parse(Kind::AccessToken, presented) else {
        return Ok(None);
    };
    Ok(store::oauth::find_access(&state.db, id)
        .await?
        .filter(|r| token::hashes_match(&token::hash_secret(presented), &r.secret_hash)))
}

/// The refresh-token row `presented` names and its grant, when its secret
/// matches. No validity checks.
pub(super) async fn presented_refresh(
    state: &AppState,
    presented: &str,
) -> OAuthResult<Option<(oauth_refresh_token::Model, oauth_grant::Model)>> {
    let Ok(id) = token::parse(Kind::RefreshToken, presented) else {
        return Ok(None);
    };
    let Some(row) = store::oauth::find_refresh(&state.db, id)
        .await?
        .filter(|r| token::hashes_match(&token::hash_secret(presented), &r.secret_hash))
    else {
        return Ok(None);
    };
    Ok(store::oauth::find_grant(&state.db, row.grant_id)
        .await?
        .map(|grant| (row, grant)))
}

/// `POST /oauth/revoke` (RFC 7009): a refresh token revokes its whole grant,
/// an access token itself. Unknown tokens and tokens of other clients are
/// answered the same way (success), so the endpoint reveals nothing.
pub async fn revoke(
    state: &AppState,
    creds: &ClientCredentials,
    presented: &str,
) -> OAuthResult<()> {
    let client = authenticate_client(state, creds).await?;
    let now = state.clock.now();
    match token::kind_of(presented) {
        Some(Kind::AccessToken) => {
            if let Some(row) = presented_access(state, presented).await? {
                if row.client_id == client.id {
                    store::oauth::revoke_access(&state.db, &row.id, now).await?;
                }
            }
        }
        Some(Kind::RefreshToken) => {
            if let Some((_, grant)) = presented_refresh(state, presented).await? {
                if grant.client_id == client.id {
                    let txn = crate::db::begin_write(&state.db).await?;
                    store::oauth::revoke_grants(&txn, &[grant.id], now).await?;
                    txn.commit().await?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// What introspection reports about an active token (RFC 7662).
#[derive(Debug, serde::Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

impl Introspection {
    fn inactive() -> Self {
        Self {
            active: false,
            scope: None,
            client_id: None,
            sub: None,
            exp: None,
            iat: None,
            token_type: None,
            aud: None,
            iss: None,
        }
    }
}

/// `POST /oauth/introspect`: confidential clients only, so a request
/// without a client secret is refused before anything is looked up.
pub async fn introspect(
    state: &AppState,
    creds: &ClientCredentials,
    presented: Option<&str>,
) -> OAuthResult<Introspection> {
    if creds.secret.is_none() {
        return Err(OAuthError::invalid_client(
            "introspection requires client authentication (a confidential client's secret)",
        ));
    }
    let presented = presented.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let client = authenticate_client(state, creds).await?;
    if !client.is_confidential() {
        return Err(OAuthError::invalid_client(
            "introspection requires a confidential client",
        ));
    }
    let now = state.clock.now();
    match token::kind_of(presented) {
        Some(Kind::AccessToken) => {
            let Some(row) = presented_access(state, presented).await? else {
                return Ok(Introspection::inactive());
            };
            if row.revoked_at.is_some() || row.expires_at <= now {
                return Ok(Introspection::inactive());
            }
            Ok(Introspection {
                active: true,
                scope: Some(row.scopes),
                client_id: Some(row.client_id),
                sub: Some(row.user_id.to_string()),
                exp: Some(row.expires_at.timestamp()),
                iat: Some(row.created_at.timestamp()),
                token_type: Some("Bearer"),
                aud: Some(resource::uris(state, &resource::split(&row.resources))),
                iss: Some(state.config.public_url.clone()),
            })
        }
        Some(Kind::RefreshToken) => {
            let Some((row, grant)) = presented_refresh(state, presented).await? else {
                return Ok(Introspection::inactive());
            };
            if row.revoked_at.is_some()
                || row.rotated_at.is_some()
                || grant.revoked_at.is_some()
                || row.expires_at <= now
            {
                return Ok(Introspection::inactive());
            }
            Ok(Introspection {
                active: true,
                scope: Some(row.scopes),
                client_id: Some(grant.client_id),
                sub: Some(grant.user_id.to_string()),
                exp: Some(row.expires_at.timestamp()),
                iat: Some(row.created_at.timestamp()),
                token_type: Some("refresh_token"),
                aud: Some(resource::uris(state, &resource::split(&grant.resources))),
                iss: Some(state.config.public_url.clone()),
            })
        }
        _ => Ok(Introspection::inactive()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn introspection_without_a_client_secret_is_refused_first() {
        let (_dir, state) = crate::service::oauth::test_state(|_| {}).await;
        let public = ClientCredentials {
            client_id: Some("mcpg_ci_unknown".into()),
            secret: None,
            basic: false,
        };
        for presented in [None, Some("mcpg_at_x")] {
            let e = introspect(&state, &public, presented).await.unwrap_err();
            assert_eq!(e.code, crate::error::OAuthCode::InvalidClient);
            assert!(e.description.contains("client authentication"), "{e:?}");
        }
        let confidential = ClientCredentials {
            secret: Some("mcpg_cs_x".to_owned().into()),
            ..public
        };
        let e = introspect(&state, &confidential, None).await.unwrap_err();
        assert_eq!(e.code, crate::error::OAuthCode::InvalidRequest);
        let e = introspect(&state, &confidential, Some("mcpg_at_x"))
            .await
            .unwrap_err();
        assert_eq!(e.code, crate::error::OAuthCode::InvalidClient);
    }
}
