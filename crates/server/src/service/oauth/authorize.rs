//! The authorization endpoint: checking a request, remembered consent, and
//! the approval or denial that answers it.

use secrecy::ExposeSecret;
use uuid::Uuid;

use super::{
    clients, error::OAuthError, error::OAuthResult, resource, secs, Client, GrantType, Resource,
};
use crate::{
    entity::oauth_code,
    error::{Error, Result},
    scope::Scopes,
    service::audit,
    state::AppState,
    store,
    token::{self, Kind},
};

/// The parameters of `GET /oauth/authorize` (also carried by the consent form).
#[derive(Debug, Default, Clone)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub resource: Vec<String>,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub resources: Vec<Resource>,
    pub state: Option<String>,
    pub code_challenge: String,
}

/// Why an authorization request failed, and where the answer goes.
#[derive(Debug)]
pub enum AuthorizeFailure {
    /// The client or redirect URI is not trustworthy: never redirect, show
    /// the user a page instead.
    Page(OAuthError),
    /// A trustworthy redirect URI gets the error (RFC 6749 §4.1.2.1).
    Redirect(String),
}

impl From<OAuthError> for AuthorizeFailure {
    fn from(e: OAuthError) -> Self {
        AuthorizeFailure::Page(e)
    }
}

/// The redirect URL carrying `params` and `iss` (RFC 9207).
pub fn redirect_with(
    state: &AppState,
    redirect_uri: &str,
    params: &[(&str, &str)],
    oauth_state: Option<&str>,
) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = oauth_state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &state.config.public_url);
    }
    url.to_string()
}

/// Check an authorization request, in the order RFC 6749 requires: first
/// what decides whether redirecting is safe (client, redirect URI), then the
/// rest, whose errors go back to the client.
pub async fn validate_authorize(
    state: &AppState,
    p: &AuthorizeParams,
) -> std::result::Result<AuthorizeRequest, AuthorizeFailure> {
    let client_id = p
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
    let client = clients::find(state, client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client_id"))?;
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            "unauthorized_client",
            "this client may not use the authorization code grant",
        )
        .into());
    }
    let redirect_uri = client
        .resolve_redirect(p.redirect_uri.as_deref())
        .ok_or_else(|| {
            OAuthError::invalid_request(if p.redirect_uri.is_some() {
                "redirect_uri does not match any URI registered for this client"
            } else {
                "redirect_uri is required when a client registered several"
            })
        })?;
    let st = p.state.clone();
    let fail = |e: OAuthError| {
        AuthorizeFailure::Redirect(redirect_with(
            state,
            &redirect_uri,
            &[("error", e.code), ("error_description", &e.description)],
            st.as_deref(),
        ))
    };
    if p.state.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(fail(OAuthError::invalid_request(
            "state longer than 1024 characters",
        )));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is required",
            )))
        }
        Some(_) => {
            return Err(fail(OAuthError::new(
                "unsupported_response_type",
                "only response_type=code is supported",
            )))
        }
    }
    let challenge = p.code_challenge.as_deref().ok_or_else(|| {
        fail(OAuthError::invalid_request(
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ))
    })?;
    if p.code_challenge_method.as_deref() != Some("S256") {
        return Err(fail(OAuthError::invalid_request(
            "code_challenge_method must be S256 (plain is not accepted)",
        )));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(fail(OAuthError::invalid_request(
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        )));
    }
    let scopes = requested_scopes(p.scope.as_deref(), &client.scopes).map_err(fail)?;
    let resources = resource::parse(state, &p.resource).map_err(fail)?;
    Ok(AuthorizeRequest {
        client,
        redirect_uri,
        scopes,
        resources,
        state: p.state.clone(),
        code_challenge: challenge.to_owned(),
    })
}

/// The scopes of a request: those asked for (each allowed to the client),
/// or all the client's scopes when none are.
pub(super) fn requested_scopes(scope: Option<&str>, allowed: &Scopes) -> OAuthResult<Scopes> {
    // `offline_access` alone asks for nothing more than the defaults.
    match crate::scope::requested(scope).as_deref() {
        None => Ok(allowed.clone()),
        Some(s) => {
            let asked = Scopes::parse_space_separated(s)
                .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            let missing = allowed.missing_from(&asked);
            if missing.is_empty() {
                Ok(asked)
            } else {
                Err(OAuthError::invalid_scope(format!(
                    "this client may not request {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )))
            }
        }
    }
}

/// True when the user already approved these scopes for this client.
pub async fn consent_remembered(
    state: &AppState,
    user_id: Uuid,
    req: &AuthorizeRequest,
) -> Result<bool> {
    let Some(consent) = store::oauth::find_consent(&state.db, user_id, &req.client.id).await?
    else {
        return Ok(false);
    };
    let granted = Scopes::parse_space_separated(&consent.scopes).unwrap_or_default();
    Ok(granted.missing_from(&req.scopes).is_empty())
}

/// The user approved: remember the consent, issue a code, and return the
/// redirect URL carrying it.
pub async fn approve(state: &AppState, user_id: Uuid, req: &AuthorizeRequest) -> Result<String> {
    let now = state.clock.now();
    let code = token::generate(Kind::AuthorizationCode);
    let txn = crate::db::begin_write(&state.db).await?;
    let remembered = store::oauth::find_consent(&txn, user_id, &req.client.id).await?;
    let mut granted: Vec<_> = remembered
        .and_then(|c| Scopes::parse_space_separated(&c.scopes).ok())
        .map(|s| s.names())
        .unwrap_or_default();
    granted.extend(req.scopes.names());
    let granted = Scopes::parse(granted).map_err(|e| Error::Internal(e.to_string()))?;
    store::oauth::upsert_consent(
        &txn,
        user_id,
        &req.client.id,
        &granted.to_space_separated(),
        now,
    )
    .await?;
    store::oauth::insert_code(
        &txn,
        oauth_code::Model {
            id: code.id.clone(),
            secret_hash: code.hash.to_vec(),
            client_id: req.client.id.clone(),
            user_id,
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.to_space_separated(),
            resources: resource::join(&req.resources),
            code_challenge: req.code_challenge.clone(),
            created_at: now,
            expires_at: now + secs(state.config.authorization_code_ttl_secs),
            consumed_at: None,
        },
    )
    .await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id,
            action: audit::AuditAction::OAuthConsentGranted,
            credential_id: None,
            target: Some(&req.client.id),
            details: serde_json::json!({
                "client_id": req.client.id,
                "client_name": req.client.name,
                "scopes": req.scopes.names(),
                "resources": resource::uris(state, &req.resources),
            }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(redirect_with(
        state,
        &req.redirect_uri,
        &[("code", code.key.expose_secret())],
        req.state.as_deref(),
    ))
}

/// The user denied: the redirect URL carrying `access_denied`.
pub fn deny(state: &AppState, req: &AuthorizeRequest) -> String {
    redirect_with(
        state,
        &req.redirect_uri,
        &[
            ("error", "access_denied"),
            ("error_description", "The user denied the request."),
        ],
        req.state.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_scopes_stay_within_the_client() {
        let allowed = Scopes::parse(["memories:read", "memories:write"]).unwrap();
        assert_eq!(requested_scopes(None, &allowed).unwrap(), allowed);
        assert_eq!(
            requested_scopes(Some("memories:read"), &allowed)
                .unwrap()
                .names(),
            ["memories:read"]
        );
        assert_eq!(
            requested_scopes(Some("keys:write"), &allowed)
                .unwrap_err()
                .code,
            "invalid_scope"
        );
        assert_eq!(
            requested_scopes(Some("nope"), &allowed).unwrap_err().code,
            "invalid_scope"
        );
    }
}
