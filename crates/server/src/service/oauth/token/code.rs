//! The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636);
//! a replayed code revokes its family.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    super::{authorize::requested_scopes, error::OAuthError, error::OAuthResult, resource, secs},
    insert_pair, narrow_resources, Client, GrantType, IssuedTokens, Pair, TokenRequest,
};
use crate::{
    entity::{oauth_code, oauth_grant},
    error::Error,
    scope::Scopes,
    service::audit,
    state::AppState,
    store,
    token::{self, Kind},
};

/// RFC 7636: BASE64URL(SHA256(verifier)) == challenge, in constant time.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    token::hashes_match(computed.as_bytes(), challenge.as_bytes())
}

fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub(super) async fn authorization_code(
    state: &AppState,
    client: &Client,
    req: TokenRequest,
) -> OAuthResult<IssuedTokens> {
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            crate::error::OAuthCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        ));
    }
    let presented = req
        .code
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let presented = presented.expose_secret();
    let invalid =
        || OAuthError::invalid_grant("the authorization code is invalid, expired or already used");
    let id = token::parse(Kind::AuthorizationCode, presented).map_err(|_| invalid())?;
    let code = store::oauth::find_code(&state.db, id)
        .await?
        .ok_or_else(invalid)?;
    if !token::hashes_match(&token::hash_secret(presented), &code.secret_hash)
        || code.client_id != client.id
    {
        return Err(invalid());
    }
    let now = state.clock.now();
    if code.consumed_at.is_some() {
        revoke_code_family(state, &code, now).await?;
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used; every token issued from it is now revoked",
        ));
    }
    if code.expires_at <= now {
        return Err(invalid());
    }
    if let Some(uri) = &req.redirect_uri {
        if uri != &code.redirect_uri {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
    }
    let verifier = req
        .code_verifier
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let verifier = verifier.expose_secret();
    if !valid_verifier(verifier) || !pkce_matches(verifier, &code.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let code_resources = resource::split(&code.resources);
    let resources = narrow_resources(state, &req.resource, &code_resources)?;
    let scopes = Scopes::parse_space_separated(&code.scopes)
        .map_err(|e| Error::caused_by(format!("stored scopes of code {}", code.id), e))?;
    let scopes = match req.scope.as_deref() {
        Some(s) if !s.trim().is_empty() => requested_scopes(Some(s), &scopes)?,
        _ => scopes,
    };

    let txn = crate::db::begin_write(&state.db).await?;
    if !store::oauth::consume_code(&txn, &code.id, now).await? {
        txn.rollback().await?;
        revoke_code_family(state, &code, now).await?;
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used; every token issued from it is now revoked",
        ));
    }
    let refresh_ttl = secs(state.config.refresh_token_ttl_secs);
    let grant_id = Uuid::now_v7();
    store::oauth::insert_grant(
        &txn,
        oauth_grant::Model {
            id: grant_id,
            user_id: code.user_id,
            client_id: client.id.clone(),
            grant_type: GrantType::AuthorizationCode.as_str().into(),
            scopes: code.scopes.clone(),
            resources: code.resources.clone(),
            code_id: Some(code.id.clone()),
            created_at: now,
            last_used_at: now,
            expires_at: now + refresh_ttl,
            revoked_at: None,
        },
    )
    .await?;
    let at = token::generate(Kind::AccessToken);
    let rt = token::generate(Kind::RefreshToken);
    let issued = insert_pair(
        state,
        &txn,
        Pair {
            grant_id,
            user_id: code.user_id,
            client_id: &client.id,
            scopes: &scopes,
            resources: &resources,
            access: at,
            refresh: Some(rt),
            now,
        },
    )
    .await?;
    store::oauth::touch_client(&txn, &client.id, now).await?;
    txn.commit().await?;
    Ok(issued)
}

/// A replayed code: revoke every grant issued from it (RFC 9700 §4.5.3).
async fn revoke_code_family(
    state: &AppState,
    code: &oauth_code::Model,
    now: DateTime<Utc>,
) -> OAuthResult<()> {
    let grants = store::oauth::grants_from_code(&state.db, &code.id).await?;
    let ids: Vec<Uuid> = grants.iter().map(|g| g.id).collect();
    let txn = crate::db::begin_write(&state.db).await?;
    let revoked = store::oauth::revoke_grants(&txn, &ids, now).await?;
    if revoked > 0 {
        audit::record(
            &txn,
            now,
            audit::Event {
                user_id: code.user_id,
                action: audit::AuditAction::OAuthFamilyRevoked,
                credential_id: None,
                target: Some(&code.client_id),
                details: serde_json::json!({ "reason": "authorization_code_replay", "client_id": code.client_id, "grants": ids }),
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        let verifier = "dBjftJeZ4CVP-mJ92K1uqgsLNdZHrsz2n45HEqkNKiA1";
        let verifier = &verifier[..43];
        assert!(valid_verifier(verifier));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        assert!(pkce_matches(verifier, &challenge));
        assert!(!pkce_matches("x".repeat(43).as_str(), &challenge));
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}!", "a".repeat(43))));
    }
}
