//! The token endpoint (RFC 6749 §3.2): client authentication, the dispatch
//! to each grant, and the issuing of a token pair.

mod client_credentials;
mod code;
mod refresh;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{
    clients, error::OAuthError, error::OAuthResult, resource, secs, Client, GrantType, Resource,
};
use crate::{
    entity::{oauth_access_token, oauth_refresh_token},
    scope::Scopes,
    state::AppState,
    store, token,
};
use client_credentials::client_credentials;
use code::authorization_code;
use refresh::refresh;

/// How the client presented itself at the token, revocation or
/// introspection endpoint.
#[derive(Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub secret: Option<SecretString>,
    /// The credentials came in `Authorization: Basic`.
    pub basic: bool,
}

/// A token-endpoint request (RFC 6749 §4.1.3, §6, §4.4).
#[derive(Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<SecretString>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    pub scope: Option<String>,
    pub resource: Vec<String>,
    pub client: ClientCredentials,
}

/// A successful token response. Secrets stay in `SecretString` until the
/// edge writes the body.
pub struct IssuedTokens {
    pub access_token: SecretString,
    pub expires_in: i64,
    pub refresh_token: Option<SecretString>,
    pub scope: String,
}

/// Authenticate the client of a back-channel request.
pub async fn authenticate_client(
    state: &AppState,
    creds: &ClientCredentials,
) -> OAuthResult<Client> {
    let id = creds
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            OAuthError::invalid_client("client authentication is required (client_id)")
        })?;
    let client = clients::find(state, id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client or wrong secret"))?;
    match (&creds.secret, client.is_confidential()) {
        (Some(secret), true) if client.secret_matches(secret.expose_secret()) => Ok(client),
        (None, false) => Ok(client),
        (Some(_), false) => Err(OAuthError::invalid_client(
            "this is a public client: it must not send a client secret",
        )),
        _ => Err(OAuthError::invalid_client("unknown client or wrong secret")),
    }
}

/// `POST /oauth/token`.
pub async fn token(state: &AppState, req: TokenRequest) -> OAuthResult<IssuedTokens> {
    let grant_type = req
        .grant_type
        .clone()
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let client = authenticate_client(state, &req.client).await?;
    let grant = grant_type.parse::<GrantType>();
    let result = match grant {
        Ok(GrantType::AuthorizationCode) => authorization_code(state, &client, req).await,
        Ok(GrantType::RefreshToken) => refresh(state, &client, req).await,
        Ok(GrantType::ClientCredentials) => client_credentials(state, &client, req).await,
        Err(_) => Err(OAuthError::new(
            crate::error::OAuthCode::UnsupportedGrantType,
            "grant_type must be authorization_code, refresh_token or client_credentials",
        )),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.wire_code(),
    };
    // A metrics label per known grant; anything else is `other`.
    let label = grant.map_or("other", GrantType::as_str);
    state.metrics.token(label, outcome);
    result
}

/// The resources of a token request: the ones named (each within what was
/// authorized), or all authorized ones.
fn narrow_resources(
    state: &AppState,
    asked: &[String],
    granted: &[Resource],
) -> OAuthResult<Vec<Resource>> {
    if asked.is_empty() {
        return Ok(granted.to_vec());
    }
    let asked = resource::parse(state, asked)?;
    if asked.iter().all(|r| granted.contains(r)) {
        Ok(asked)
    } else {
        Err(OAuthError::invalid_target(
            "a requested resource was not part of the authorization",
        ))
    }
}

struct Pair<'a> {
    grant_id: Uuid,
    user_id: Uuid,
    client_id: &'a str,
    scopes: &'a Scopes,
    resources: &'a [Resource],
    access: token::NewApiKey,
    refresh: Option<token::NewApiKey>,
    now: DateTime<Utc>,
}

async fn insert_pair(
    state: &AppState,
    db: &impl sea_orm::ConnectionTrait,
    p: Pair<'_>,
) -> OAuthResult<IssuedTokens> {
    let access_ttl = secs(state.config.access_token_ttl_secs);
    store::oauth::insert_access(
        db,
        oauth_access_token::Model {
            id: p.access.id.clone(),
            secret_hash: p.access.hash.to_vec(),
            grant_id: p.grant_id,
            user_id: p.user_id,
            client_id: p.client_id.to_owned(),
            scopes: p.scopes.to_space_separated(),
            resources: resource::join(p.resources),
            created_at: p.now,
            expires_at: p.now + access_ttl,
            revoked_at: None,
        },
    )
    .await?;
    if let Some(rt) = &p.refresh {
        store::oauth::insert_refresh(
            db,
            oauth_refresh_token::Model {
                id: rt.id.clone(),
                secret_hash: rt.hash.to_vec(),
                grant_id: p.grant_id,
                access_token_id: p.access.id.clone(),
                scopes: p.scopes.to_space_separated(),
                created_at: p.now,
                expires_at: p.now + secs(state.config.refresh_token_ttl_secs),
                rotated_at: None,
                replaced_by: None,
                revoked_at: None,
            },
        )
        .await?;
    }
    Ok(IssuedTokens {
        access_token: p.access.key,
        expires_in: access_ttl.num_seconds(),
        refresh_token: p.refresh.map(|r| r.key),
        scope: p.scopes.to_space_separated(),
    })
}
