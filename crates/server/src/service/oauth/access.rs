//! The resource server side: authenticating an access token presented to
//! the REST API or MCP.

use super::{resource, Resource};
use crate::{
    error::{CredentialProblem, Error, Result},
    scope::Scopes,
    service::auth::{Credential, CredentialKind, Principal},
    state::AppState,
    store,
    token::{self, Kind},
};

/// Authenticate an access token presented to `resource`. Costs one
/// primary-key read, like an API key.
pub async fn authenticate_access_token(
    state: &AppState,
    presented: &str,
    resource: Resource,
) -> Result<Principal> {
    let id = token::parse(Kind::AccessToken, presented)
        .map_err(|_| Error::InvalidAccessToken(CredentialProblem::Malformed))?;
    let row = store::oauth::find_access(&state.db, id)
        .await?
        .filter(|r| token::hashes_match(&token::hash_secret(presented), &r.secret_hash))
        .ok_or(Error::InvalidAccessToken(CredentialProblem::Unknown))?;
    if row.revoked_at.is_some() {
        return Err(Error::InvalidAccessToken(CredentialProblem::Revoked));
    }
    if row.expires_at <= state.clock.now() {
        return Err(Error::InvalidAccessToken(CredentialProblem::Expired));
    }
    if !resource::split(&row.resources).contains(&resource) {
        return Err(Error::InvalidAccessToken(CredentialProblem::WrongAudience));
    }
    let scopes = Scopes::parse_space_separated(&row.scopes)
        .map_err(|e| Error::caused_by(format!("stored scopes of token {}", row.id), e))?;
    // Counted like key usage (in memory, flushed in batches): the app's
    // "last used" in the authorization list is its last API call.
    state.usage.record(
        &format!("{}{}", crate::service::usage::GRANT_PREFIX, row.grant_id),
        state.clock.now(),
    );
    Ok(Principal {
        user_id: row.user_id,
        credential: Credential {
            kind: CredentialKind::AccessToken,
            id: row.id,
            scopes,
        },
    })
}
