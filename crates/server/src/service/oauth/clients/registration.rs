//! Registration (RFC 7591): checking a client's metadata and storing it.

use std::net::IpAddr;

use secrecy::SecretString;
use uuid::Uuid;

use super::{
    joined, validate_redirect_uri, AuthMethod, Client, ClientKind, GrantType, MAX_REDIRECT_URIS,
};
use crate::{
    config::RegistrationPolicy,
    entity::oauth_client,
    scope::{Scope, Scopes},
    service::{
        auth::{self as key_auth, CredentialKind, Principal},
        idempotency,
        oauth::{
            error::{OAuthError, OAuthResult},
            Resource,
        },
        rate_limit::{self, LimitKind},
    },
    state::AppState,
    store,
    token::{self, Kind},
};

/// What a client asks to be registered with (RFC 7591 metadata).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Registration {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
    pub client_uri: Option<String>,
}

/// A client just registered, with its secret (shown once).
pub struct Registered {
    pub client: Client,
    pub secret: Option<SecretString>,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("client", &self.client)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Validated registration metadata, ready to store.
pub(super) struct Checked {
    pub(super) name: String,
    pub(super) redirect_uris: Vec<String>,
    pub(super) scopes: Scopes,
    pub(super) grant_types: Vec<GrantType>,
    pub(super) auth_method: AuthMethod,
    pub(super) client_uri: Option<String>,
}

/// Who an owned client acts for, and with what: the registering
/// credential's account, its key (none for operator clients), and the
/// scopes the client may hold at most.
#[derive(Debug, Clone)]
pub struct Owner {
    pub user_id: Uuid,
    pub key_id: Option<String>,
    pub scopes: Scopes,
}

pub(super) fn check(
    reg: Registration,
    default_name: &str,
    owner: Option<&Owner>,
) -> OAuthResult<Checked> {
    let owned = owner.is_some();
    let auth_method = match reg.token_endpoint_auth_method.as_deref() {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => m.parse().map_err(|_| {
            OAuthError::invalid_client_metadata(format!(
                "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post (got {:?})",
                m.chars().take(40).collect::<String>()
            ))
        })?,
    };
    let asked = match reg.grant_types {
        None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        Some(names) => names
            .iter()
            .map(|g| {
                g.parse::<GrantType>().map_err(|_| {
                    OAuthError::invalid_client_metadata(format!(
                        "unsupported grant type {:?}; supported: {}",
                        g.chars().take(60).collect::<String>(),
                        joined(GrantType::ALL, ", ")
                    ))
                })
            })
            .collect::<OAuthResult<_>>()?,
    };
    if asked.is_empty() {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types must not be empty",
        ));
    }
    let mut grant_types: Vec<GrantType> = GrantType::ALL
        .iter()
        .copied()
        .filter(|g| asked.contains(g))
        .collect();
    if grant_types.contains(&GrantType::AuthorizationCode)
        && !grant_types.contains(&GrantType::RefreshToken)
    {
        // Refresh tokens are always issued with the code grant.
        grant_types.insert(1, GrantType::RefreshToken);
    }
    if grant_types.contains(&GrantType::ClientCredentials) {
        if auth_method == AuthMethod::None {
            return Err(OAuthError::invalid_client_metadata(
                "client_credentials needs a confidential client (client_secret_basic or client_secret_post)",
            ));
        }
        if !owned {
            return Err(OAuthError::invalid_client_metadata(
                "client_credentials tokens act for the client's owner: register with an API key holding keys:write",
            ));
        }
    }
    if let Some(rt) = &reg.response_types {
        if rt.iter().any(|r| r != "code") {
            return Err(OAuthError::invalid_client_metadata(
                "response_types must be [\"code\"]",
            ));
        }
    }
    let uses_code = grant_types.contains(&GrantType::AuthorizationCode);
    if uses_code && reg.redirect_uris.is_empty() {
        return Err(OAuthError::invalid_redirect_uri(
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    if reg.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris"
        )));
    }
    for uri in &reg.redirect_uris {
        validate_redirect_uri(uri).map_err(|why| {
            OAuthError::invalid_redirect_uri(format!(
                "redirect URI {:?}: {why}",
                uri.chars().take(100).collect::<String>()
            ))
        })?;
    }
    let scopes = match crate::scope::requested(reg.scope.as_deref()).as_deref() {
        // An owned client holds at most what registered it; an unowned one
        // may ask for any scope, each authorization then bounded by consent.
        None => owner.map(|o| o.scopes.clone()).unwrap_or_else(Scopes::all),
        Some(s) => Scopes::parse_space_separated(s)
            .map_err(|e| OAuthError::invalid_client_metadata(format!("scope: {e}")))?,
    };
    if let Some(o) = owner {
        let missing = o.scopes.missing_from(&scopes);
        if !missing.is_empty() {
            return Err(OAuthError::new(
                crate::error::OAuthCode::InvalidScope,
                format!(
                    "an owned client may hold at most the scopes of the credential registering it; it lacks {}",
                    missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
                ),
            ));
        }
    }
    let name = match reg.client_name.as_deref().map(str::trim) {
        None | Some("") => default_name.to_owned(),
        Some(n) => {
            if n.chars().count() > 100 || n.chars().any(char::is_control) {
                return Err(OAuthError::invalid_client_metadata(
                    "client_name must be at most 100 characters without control characters",
                ));
            }
            n.to_owned()
        }
    };
    let client_uri = match reg.client_uri {
        None => None,
        Some(u) => {
            let parsed = url::Url::parse(&u)
                .ok()
                .filter(|p| p.scheme() == "https" && u.len() <= 512);
            if parsed.is_none() {
                return Err(OAuthError::invalid_client_metadata(
                    "client_uri must be an https URL of at most 512 characters",
                ));
            }
            Some(u)
        }
    };
    Ok(Checked {
        name,
        redirect_uris: reg.redirect_uris,
        scopes,
        grant_types,
        auth_method,
        client_uri,
    })
}

/// Register a client. `owner` is the account of the credential the request
/// carried, if any (required for `client_credentials`).
pub async fn register(
    state: &AppState,
    reg: Registration,
    kind: ClientKind,
    owner: Option<Owner>,
) -> OAuthResult<Registered> {
    let checked = check(reg, "Unnamed client", owner.as_ref())?;
    let now = state.clock.now();
    let id = format!("mcpg_ci_{}", token::random_base62(24));
    let (secret, secret_hash) = if checked.auth_method == AuthMethod::None {
        (None, None)
    } else {
        let new = token::generate(Kind::ClientSecret);
        (Some(new.key), Some(new.hash.to_vec()))
    };
    let row = oauth_client::Model {
        id,
        secret_hash,
        name: checked.name,
        kind: kind.as_str().into(),
        redirect_uris: serde_json::to_string(&checked.redirect_uris)
            .unwrap_or_else(|_| "[]".into()),
        scopes: checked.scopes.to_space_separated(),
        grant_types: joined(&checked.grant_types, " "),
        token_endpoint_auth_method: checked.auth_method.as_str().into(),
        owner_user_id: owner.as_ref().map(|o| o.user_id),
        owner_key_id: owner.and_then(|o| o.key_id),
        client_uri: checked.client_uri,
        created_at: now,
        last_used_at: None,
        metadata_expires_at: None,
    };
    store::oauth::insert_client(&state.db, row.clone()).await?;
    Ok(Registered {
        client: Client::from_row(row)?,
        secret,
    })
}

/// A `POST /oauth/register` request as it arrived.
pub struct DynamicRegistration<'a> {
    /// The client's IP, for the registration rate limit.
    pub client_ip: Option<IpAddr>,
    /// The credential the request carried, if any (an error when malformed):
    /// an API key registers a client its account owns.
    pub credential: crate::error::Result<Option<String>>,
    /// The body was declared `application/json`.
    pub is_json: bool,
    /// The body as sent and the metadata read from it, or why it could not be.
    pub body: OAuthResult<(Vec<u8>, Registration)>,
    /// `Idempotency-Key`, honoured for an owned registration.
    pub idempotency_key: Option<&'a str>,
    /// The request path, part of the idempotency fingerprint.
    pub path: &'a str,
}

/// `POST /oauth/register` (RFC 7591): the server's registration policy, the
/// rate limit, the owner's credential and its scope, then the registration;
/// the answer is the RFC 7591 response body.
pub async fn register_dynamic(
    state: &AppState,
    req: DynamicRegistration<'_>,
) -> OAuthResult<Vec<u8>> {
    if state.config.oauth_client_registration == RegistrationPolicy::Closed {
        return Err(OAuthError::new(
            crate::error::OAuthCode::AccessDenied,
            "dynamic client registration is closed on this server; ask its operator for a client",
        ));
    }
    if let Some(ip) = req.client_ip {
        rate_limit::enforce(
            state,
            LimitKind::Registration,
            &format!("oauth:{ip}"),
            state.config.rate_limit_registration_per_minute,
        )?;
    }
    if !req.is_json {
        return Err(OAuthError::invalid_client_metadata(
            "the body must be application/json",
        ));
    }
    let owner = registration_owner(state, req.credential).await?;
    let (bytes, registration) = req.body?;
    let register = async |owner| {
        let reg = register(state, registration, ClientKind::Dynamic, owner).await?;
        Ok::<_, OAuthError>(registered_body(&reg))
    };
    // An owned registration is the user's write and honours
    // `Idempotency-Key`; an anonymous one has nobody to store it for.
    match (owner, req.idempotency_key) {
        (Some(principal), Some(key)) => {
            let owner = owned_by(&principal);
            // The effect's own OAuth error is kept here, so it is answered
            // as RFC 7591 says while the key is released.
            let mut refused = None;
            let stored = idempotency::run(
                state,
                &principal,
                Scope::KeysWrite,
                Some(key),
                idempotency::Request {
                    method: "POST",
                    path: req.path,
                    body: &bytes,
                },
                201,
                async {
                    register(Some(owner)).await.map_err(|e| {
                        refused = Some(e);
                        crate::error::Error::validation("registration", "refused")
                    })
                },
            )
            .await;
            match (stored, refused) {
                (_, Some(e)) => Err(e),
                (Ok(body), None) => Ok(body),
                (Err(e), None) => Err(e.into()),
            }
        }
        (owner, _) => register(owner.as_ref().map(owned_by)).await,
    }
}

/// The owner a registration request acts for: the caller of a valid API key
/// holding `keys:write` (the client then holds at most that key's scopes);
/// none when no credential was sent. A token issued to an application never
/// registers a client: that would let an app mint a delegation of its own.
async fn registration_owner(
    state: &AppState,
    credential: crate::error::Result<Option<String>>,
) -> OAuthResult<Option<Principal>> {
    let presented = credential.map_err(|_| {
        OAuthError::new(
            crate::error::OAuthCode::InvalidToken,
            "malformed credentials",
        )
    })?;
    let Some(presented) = presented else {
        return Ok(None);
    };
    let principal = key_auth::authenticate(state, &presented, Resource::Api)
        .await
        .map_err(|e| match e {
            crate::error::Error::InvalidCredentials(_)
            | crate::error::Error::InvalidAccessToken(_) => OAuthError::new(
                crate::error::OAuthCode::InvalidToken,
                "the credential sent with the registration is not valid",
            ),
            other => other.into(),
        })?;
    if principal.credential.kind != CredentialKind::ApiKey {
        return Err(OAuthError::new(
            crate::error::OAuthCode::AccessDenied,
            "only an API key can register an owned client; a token issued to an application cannot",
        ));
    }
    if !principal.credential.scopes.contains(Scope::KeysWrite) {
        return Err(OAuthError::new(
            crate::error::OAuthCode::AccessDenied,
            "registering an owned client needs a credential with keys:write",
        ));
    }
    Ok(Some(principal))
}

#[derive(serde::Serialize)]
struct RegisteredBody<'a> {
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    client_id_issued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<i64>,
    client_name: &'a str,
    redirect_uris: &'a [String],
    grant_types: &'a [GrantType],
    response_types: Vec<&'static str>,
    token_endpoint_auth_method: &'static str,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_uri: Option<&'a str>,
}

/// The owner of a client registered with `principal`'s API key.
fn owned_by(principal: &Principal) -> Owner {
    Owner {
        user_id: principal.user_id,
        key_id: Some(principal.credential.id.clone()),
        scopes: principal.credential.scopes.clone(),
    }
}

/// The RFC 7591 registration response, rendered.
fn registered_body(reg: &Registered) -> Vec<u8> {
    let c = &reg.client;
    serde_json::to_vec(&RegisteredBody {
        client_id: &c.id,
        client_secret: reg.secret.as_ref().map(super::reveal),
        client_id_issued_at: c.created_at.timestamp(),
        client_secret_expires_at: reg.secret.as_ref().map(|_| 0),
        client_name: &c.name,
        redirect_uris: &c.redirect_uris,
        grant_types: &c.grant_types,
        response_types: vec!["code"],
        token_endpoint_auth_method: c.auth_method.as_str(),
        scope: c.scopes.to_space_separated(),
        client_uri: c.client_uri.as_deref(),
    })
    .unwrap_or_else(|_| unreachable!("a registration response always serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn state(policy: RegistrationPolicy) -> (tempfile::TempDir, AppState) {
        crate::service::oauth::test_state(|c| c.oauth_client_registration = policy).await
    }

    fn request(body: &str) -> DynamicRegistration<'static> {
        let bytes = body.as_bytes().to_vec();
        let parsed = serde_json::from_slice(&bytes)
            .map(|reg| (bytes, reg))
            .map_err(|e| OAuthError::invalid_client_metadata(e.to_string()));
        DynamicRegistration {
            client_ip: None,
            credential: Ok(None),
            is_json: true,
            body: parsed,
            idempotency_key: None,
            path: "/oauth/register",
        }
    }

    const PUBLIC: &str =
        r#"{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}"#;

    #[tokio::test]
    async fn dynamic_registration_applies_the_rules_in_order() {
        let (_dir, closed) = state(RegistrationPolicy::Closed).await;
        // A closed server refuses before looking at anything else.
        let e = register_dynamic(
            &closed,
            DynamicRegistration {
                is_json: false,
                credential: Ok(Some("mcpg_nonsense".into())),
                ..request("{")
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, crate::error::OAuthCode::AccessDenied);

        let (_dir, open) = state(RegistrationPolicy::Open).await;
        let e = register_dynamic(
            &open,
            DynamicRegistration {
                is_json: false,
                ..request(PUBLIC)
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, crate::error::OAuthCode::InvalidClientMetadata);
        // A credential is checked before the body.
        let e = register_dynamic(
            &open,
            DynamicRegistration {
                credential: Ok(Some("mcpg_nonsense".into())),
                ..request("{")
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, crate::error::OAuthCode::InvalidToken);
        let e = register_dynamic(
            &open,
            DynamicRegistration {
                credential: Err(crate::error::Error::InvalidCredentials(
                    crate::error::CredentialProblem::Malformed,
                )),
                ..request(PUBLIC)
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, crate::error::OAuthCode::InvalidToken);
        let e = register_dynamic(&open, request("{")).await.unwrap_err();
        assert_eq!(e.code, crate::error::OAuthCode::InvalidClientMetadata);

        // Anonymous and well formed: registered, the RFC 7591 body returned.
        let body = register_dynamic(&open, request(PUBLIC)).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["client_id"].as_str().unwrap().starts_with("mcpg_ci_"));
        assert_eq!(body["token_endpoint_auth_method"], "none");
        assert!(body.get("client_secret").is_none());
        assert_eq!(body["redirect_uris"][0], "https://app.example/cb");
    }
}
