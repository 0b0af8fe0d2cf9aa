//! The OAuth 2.1 authorization server: authorization requests and codes,
//! the token endpoint's grants, revocation, introspection, and the
//! authentication of access tokens on the REST API (and MCP).
//!
//! Every token, code and client secret is opaque (`mcpg_at_`, `mcpg_rt_`,
//! `mcpg_ac_`, `mcpg_cs_`), stored as SHA-256 under its public id. A *grant*
//! is one authorization of one client by one user: the token family. Codes
//! are single use (a replay revokes the family), refresh tokens rotate on
//! every use (reuse revokes the family), all decided by conditional UPDATEs so
//! replicas agree.

pub mod clients;
pub mod error;
pub mod resource;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use clients::{Client, GrantType};
pub use error::{OAuthError, OAuthResult};
pub use resource::Resource;

use super::{
    audit,
    auth::{Credential, CredentialKind, Principal},
};
use crate::{
    entity::{oauth_access_token, oauth_code, oauth_grant, oauth_refresh_token},
    error::{CredentialProblem, Error, Result},
    scope::Scopes,
    state::AppState,
    store,
    token::{self, Kind},
};

// ================================================================ authorize

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
fn requested_scopes(scope: Option<&str>, allowed: &Scopes) -> OAuthResult<Scopes> {
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

// ================================================================ token

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

fn secs(n: u64) -> Duration {
    Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX / 1000))
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
            "unsupported_grant_type",
            "grant_type must be authorization_code, refresh_token or client_credentials",
        )),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    // A metrics label per known grant; anything else is `other`.
    let label = grant.map_or("other", GrantType::as_str);
    state.metrics.token(label, outcome);
    result
}

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

async fn authorization_code(
    state: &AppState,
    client: &Client,
    req: TokenRequest,
) -> OAuthResult<IssuedTokens> {
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            "unauthorized_client",
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
    let scopes =
        Scopes::parse_space_separated(&code.scopes).map_err(|e| Error::Internal(e.to_string()))?;
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

/// The successor of a refresh token, derived from it with a server key: a
/// retry of the same token computes the same pair, so the grace-period retry
/// can answer with it although only digests are stored. Without the server
/// key, holding a token does not reveal its successor.
fn successor(state: &AppState, presented: &str, kind: Kind) -> token::NewApiKey {
    use hmac::{Hmac, Mac};
    let key = state.master_key.derive("mcpgate refresh-token rotation v1");
    let mac = |label: &str| {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(presented.as_bytes());
        m.update(label.as_bytes());
        m.finalize().into_bytes()
    };
    let label = kind.prefix();
    let id = token::base62_from_bytes(&mac(&format!("{label}id")), token::ID_LEN);
    let secret = token::base62_from_bytes(&mac(&format!("{label}secret")), token::SECRET_LEN);
    token::generate_with(kind, id, &secret)
}

async fn refresh(
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
        let scopes = Scopes::parse_space_separated(&row.scopes)
            .map_err(|e| Error::Internal(e.to_string()))?;
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
                "unauthorized_client",
                "the API key that registered this client is no longer valid",
            )
        })?;
    let key_scopes = Scopes::parse_space_separated(&key.scopes).map_err(|e| {
        OAuthError::from(crate::error::Error::Internal(format!(
            "stored scopes of key {}: {e}",
            key.id
        )))
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

async fn client_credentials(
    state: &AppState,
    client: &Client,
    req: TokenRequest,
) -> OAuthResult<IssuedTokens> {
    if !client.is_confidential() || !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::new(
            "unauthorized_client",
            "this client may not use the client_credentials grant",
        ));
    }
    let owner = client.owner_user_id.ok_or_else(|| {
        OAuthError::new(
            "unauthorized_client",
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

// ================================================================ revoke / introspect

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
async fn presented_refresh(
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

/// `POST /oauth/introspect`: confidential clients only.
pub async fn introspect(
    state: &AppState,
    creds: &ClientCredentials,
    presented: &str,
) -> OAuthResult<Introspection> {
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

// ================================================================ resource server

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
        .map_err(|e| Error::Internal(format!("stored scopes of token {}: {e}", row.id)))?;
    // Counted like key usage (in memory, flushed in batches): the app's
    // "last used" in the authorization list is its last API call.
    state.usage.record(
        &format!("{}{}", super::usage::GRANT_PREFIX, row.grant_id),
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

// ================================================================ authorizations

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
            .map_err(|e| Error::Internal(format!("grant {} scopes: {e}", g.id)))?;
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
