//! Authentication: turn a presented credential into a [`Principal`].
//!
//! An API key costs: a shape and checksum check (no database), one primary-key
//! lookup, one SHA-256 and a constant-time compare. No cache sits in front of
//! the lookup, so a revocation is effective on the very next request.

use uuid::Uuid;

use crate::{
    error::{CredentialProblem, Error, Result},
    scope::{Scope, Scopes},
    state::AppState,
    store, token,
};

/// Which kind of credential authenticated a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    ApiKey,
    AccessToken,
    /// A signed-in browser on the account console: the person themselves,
    /// holding every scope of their own account.
    WebSession,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => "api_key",
            CredentialKind::AccessToken => "access_token",
            CredentialKind::WebSession => "web_session",
        }
    }
}

/// The credential behind a request: its kind, public id and scopes. Never
/// holds the secret.
#[derive(Debug, Clone)]
pub struct Credential {
    pub kind: CredentialKind,
    pub id: String,
    pub scopes: Scopes,
}

/// Who is calling, and with what.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub credential: Credential,
}

impl Principal {
    /// Fail with 403 `insufficient_scope` unless the credential holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.credential.scopes.contains(scope) {
            Ok(())
        } else {
            Err(Error::InsufficientScope {
                required: vec![scope],
            })
        }
    }
}

/// Authenticate any presented credential for `resource`: an OAuth access
/// token (whose audience must include `resource`) or an API key. Records the
/// attempt in the metrics.
pub async fn authenticate(
    state: &AppState,
    presented: &str,
    resource: super::oauth::Resource,
) -> Result<Principal> {
    let (kind, principal) = if token::kind_of(presented) == Some(token::Kind::AccessToken) {
        (
            "access_token",
            super::oauth::authenticate_access_token(state, presented, resource).await,
        )
    } else {
        ("api_key", authenticate_api_key(state, presented).await)
    };
    state.metrics.auth(kind, outcome(&principal));
    principal
}

/// Metric label of an authentication result.
fn outcome(result: &Result<Principal>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Error::MissingCredentials) => "missing",
        Err(Error::InvalidCredentials(p) | Error::InvalidAccessToken(p)) => match p {
            CredentialProblem::Malformed => "malformed",
            CredentialProblem::UnsupportedScheme => "unsupported_scheme",
            CredentialProblem::Unknown => "unknown",
            CredentialProblem::Revoked => "revoked",
            CredentialProblem::Expired => "expired",
            CredentialProblem::WrongAudience => "wrong_audience",
        },
        Err(_) => "error",
    }
}

/// Authenticate an API key.
pub async fn authenticate_api_key(state: &AppState, presented: &str) -> Result<Principal> {
    let id = token::parse_api_key(presented)
        .map_err(|_| Error::InvalidCredentials(CredentialProblem::Malformed))?;
    let key = store::api_keys::find(&state.db, id)
        .await?
        .ok_or(Error::InvalidCredentials(CredentialProblem::Unknown))?;
    let now = state.clock.now();
    let presented_hash = token::hash_secret(presented);
    let current = token::hashes_match(&presented_hash, &key.secret_hash);
    let previous = !current
        && match (&key.previous_secret_hash, key.previous_expires_at) {
            (Some(hash), Some(until)) => token::hashes_match(&presented_hash, hash) && now < until,
            _ => false,
        };
    if !current && !previous {
        return Err(Error::InvalidCredentials(CredentialProblem::Unknown));
    }
    // Only the holder of the real secret learns why a known key is refused.
    if key.revoked_at.is_some() {
        return Err(Error::InvalidCredentials(CredentialProblem::Revoked));
    }
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(Error::InvalidCredentials(CredentialProblem::Expired));
    }
    let scopes = Scopes::parse_space_separated(&key.scopes)
        .map_err(|e| Error::caused_by(format!("stored scopes of key {}", key.id), e))?;
    state.usage.record(&key.id, now);
    Ok(Principal {
        user_id: key.user_id,
        credential: Credential {
            kind: CredentialKind::ApiKey,
            id: key.id,
            scopes,
        },
    })
}
