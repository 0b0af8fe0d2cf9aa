//! Registration (RFC 7591): checking a client's metadata and storing it.

use secrecy::SecretString;
use uuid::Uuid;

use super::{
    joined, validate_redirect_uri, AuthMethod, Client, ClientKind, GrantType, MAX_REDIRECT_URIS,
};
use crate::{
    entity::oauth_client,
    scope::Scopes,
    service::oauth::error::{OAuthError, OAuthResult},
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
                "invalid_scope",
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
