//! OAuth clients: dynamic registration (RFC 7591), operator registration,
//! Client ID Metadata Documents, and the redirect-URI rules.
//!
//! Redirect URIs are compared exactly, except that a loopback redirect
//! (`http://127.0.0.1`, `http://[::1]`, `http://localhost`) matches on any
//! port (RFC 8252 §7.3). `https` is accepted for any host, `http` only for
//! loopback, private-use schemes (`cursor://`, `vscode://`, ...) as given;
//! `javascript:`, `data:` and similar never.

mod metadata_document;
mod operator;
mod owned;
mod redirect_uri;
mod registration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::{
    entity::oauth_client, scope::Scopes, state::AppState, store, token, vocabulary::vocabulary,
};
pub use metadata_document::find;
pub use operator::{
    create_operator_client, delete, ensure_docs_client, list, OperatorClient, DOCS_CLIENT_ID,
};
pub use owned::{delete_owned, get_owned, owned};
pub use redirect_uri::{redirect_matches, validate_redirect_uri};
pub use registration::{
    register, register_dynamic, DynamicRegistration, Owner, Registered, Registration,
};

/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;
/// Longest client id URL of a metadata document.
pub const MAX_METADATA_URL_LEN: usize = 512;

vocabulary! {
    /// How a client was registered.
    pub enum ClientKind ("client kind") {
        /// `POST /oauth/register`: unverified, shown with a warning.
        Dynamic = "dynamic",
        /// `mcpgate admin clients create`: trusted by the operator.
        Operator = "operator",
        /// An https `client_id` whose metadata document was fetched.
        MetadataDocument = "metadata_document",
    }
}

vocabulary! {
    /// How a client authenticates at the token endpoint
    /// (`token_endpoint_auth_method`, RFC 7591).
    pub enum AuthMethod ("token endpoint auth method") {
        /// A public client: no secret.
        None = "none",
        /// The secret in an HTTP Basic `Authorization` header.
        ClientSecretBasic = "client_secret_basic",
        /// The secret in the form body.
        ClientSecretPost = "client_secret_post",
    }
}

vocabulary! {
    /// An OAuth grant type (RFC 6749) a client may use.
    pub enum GrantType ("grant type") {
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
        ClientCredentials = "client_credentials",
    }
}

/// A registered client. Never holds a plaintext secret.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub scopes: Scopes,
    pub grant_types: Vec<GrantType>,
    pub auth_method: AuthMethod,
    pub owner_user_id: Option<Uuid>,
    /// The API key that registered an owned client.
    pub owner_key_id: Option<String>,
    pub client_uri: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    secret_hash: Option<Vec<u8>>,
}

impl Client {
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Constant-time check of a presented client secret.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(hash) => token::hashes_match(&token::hash_secret(presented), hash),
            None => false,
        }
    }

    /// The redirect URI of a request: the registered one it matches, or the
    /// only registered one when none was sent.
    pub fn resolve_redirect(&self, presented: Option<&str>) -> Option<String> {
        match presented {
            Some(p) => self
                .redirect_uris
                .iter()
                .any(|r| redirect_matches(r, p))
                .then(|| p.to_owned()),
            None if self.redirect_uris.len() == 1 => Some(self.redirect_uris[0].clone()),
            None => None,
        }
    }

    fn from_row(row: oauth_client::Model) -> crate::error::Result<Self> {
        let internal = |what: &str, e: Box<dyn std::error::Error + Send + Sync>| {
            crate::error::Error::caused_by(format!("client {} {what}", row.id), e)
        };
        let redirect_uris: Vec<String> = serde_json::from_str(&row.redirect_uris)
            .map_err(|e| internal("redirect_uris", e.into()))?;
        let scopes =
            Scopes::parse_space_separated(&row.scopes).map_err(|e| internal("scopes", e.into()))?;
        let kind = row
            .kind
            .parse()
            .map_err(|e: crate::vocabulary::Unknown| internal("kind", e.into()))?;
        let auth_method =
            row.token_endpoint_auth_method
                .parse()
                .map_err(|e: crate::vocabulary::Unknown| {
                    internal("token_endpoint_auth_method", e.into())
                })?;
        let grant_types = row
            .grant_types
            .split_ascii_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e: crate::vocabulary::Unknown| internal("grant_types", e.into()))?;
        Ok(Self {
            kind,
            auth_method,
            grant_types,
            id: row.id,
            name: row.name,
            redirect_uris,
            scopes,
            owner_user_id: row.owner_user_id,
            owner_key_id: row.owner_key_id,
            client_uri: row.client_uri,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            secret_hash: row.secret_hash,
        })
    }
}

/// The names of `grants` joined with `sep` (a space, as stored).
pub fn joined(grants: &[GrantType], sep: &str) -> String {
    grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(sep)
}

/// The name to show for a client already known to this server, without
/// fetching anything (the login page uses it to say where sign-in leads).
pub async fn known_name(state: &AppState, client_id: &str) -> crate::error::Result<Option<String>> {
    if client_id.len() > MAX_METADATA_URL_LEN {
        return Ok(None);
    }
    Ok(store::oauth::find_client(&state.db, client_id)
        .await?
        .map(|c| c.name))
}

/// Expose a new client secret for the one response that shows it.
pub fn reveal(secret: &SecretString) -> String {
    secret.expose_secret().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::assert_round_trip;

    #[test]
    fn vocabularies_round_trip_and_refuse_unknown_names() {
        assert_round_trip(ClientKind::ALL, "static");
        assert_round_trip(AuthMethod::ALL, "private_key_jwt");
        assert_round_trip(GrantType::ALL, "password");
    }

    #[test]
    fn a_stored_client_with_an_unknown_name_is_a_server_error() {
        let row = oauth_client::Model {
            id: "mcpg_ci_x".into(),
            secret_hash: None,
            name: "x".into(),
            kind: "dynamic".into(),
            redirect_uris: "[]".into(),
            scopes: "memories:read".into(),
            grant_types: "authorization_code refresh_token".into(),
            token_endpoint_auth_method: "none".into(),
            owner_user_id: None,
            owner_key_id: None,
            client_uri: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            last_used_at: None,
            metadata_expires_at: None,
        };
        let c = Client::from_row(row.clone()).expect("a valid row");
        assert_eq!(c.kind, ClientKind::Dynamic);
        assert_eq!(c.auth_method, AuthMethod::None);
        assert_eq!(
            c.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        let bad = [
            oauth_client::Model {
                kind: "static".into(),
                ..row.clone()
            },
            oauth_client::Model {
                token_endpoint_auth_method: "private_key_jwt".into(),
                ..row.clone()
            },
            oauth_client::Model {
                grant_types: "authorization_code password".into(),
                ..row
            },
        ];
        for row in bad {
            let e = Client::from_row(row).expect_err("no silent default");
            assert_eq!(e.public().code, "internal_error");
        }
    }
}
