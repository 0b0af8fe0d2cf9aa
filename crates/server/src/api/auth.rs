//! `Auth`: the typed credential argument of every protected operation.
//!
//! A handler that takes `auth: Auth` is documented in the spec with the
//! `ApiKey` (header `X-API-Key`), `Bearer` and `OAuth` security schemes, and
//! only runs once the credential is valid. The scope it needs is declared on
//! the argument (`#[oai(scope = "OAuthScope::..")]`), so the spec states it;
//! the service checks it (`principal.require(..)`), which answers 403
//! `insufficient_scope`.

use poem::{Request, RequestBody};
use poem_openapi::{
    auth::{ApiKey, Bearer},
    registry::Registry,
    ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme,
};

use super::error::ApiError;
use crate::{
    context::{Caller, RequestContext},
    error::{CredentialProblem, Error},
    service::{
        auth::{self, Principal},
        oauth::Resource,
        rate_limit::{self, LimitKind},
    },
    state::AppState,
};

/// An API key in the `X-API-Key` header. A key holds scopes as a token
/// does: an operation needs the scopes its `OAuth` requirement lists.
#[allow(dead_code)]
#[derive(SecurityScheme)]
#[oai(
    rename = "ApiKey",
    ty = "api_key",
    key_name = "X-API-Key",
    key_in = "header"
)]
struct ApiKeyScheme(ApiKey);

/// An API key or an OAuth access token (audience `<public url>/api`) as
/// `Authorization: Bearer <credential>`, held to the scopes the operation's
/// `OAuth` requirement lists.
#[allow(dead_code)]
#[derive(SecurityScheme)]
#[oai(rename = "Bearer", ty = "bearer")]
struct BearerScheme(Bearer);

/// The scopes, as the OAuth security scheme lists them and as operations
/// declare them: `#[oai(scope = "OAuthScope::KeysRead")] auth: Auth` puts
/// `keys:read` in each of the operation's security requirements (API keys
/// carry the same scopes as access tokens). Enforcement is the service's
/// `principal.require(..)`; the end-to-end suite checks the two agree.
#[derive(poem_openapi::OAuthScopes)]
pub enum OAuthScope {
    /// Read and search memories.
    #[oai(rename = "memories:read")]
    MemoriesRead,
    /// Create, change and delete memories.
    #[oai(rename = "memories:write")]
    MemoriesWrite,
    /// See connected third-party accounts.
    #[oai(rename = "connections:read")]
    ConnectionsRead,
    /// Connect and disconnect third-party accounts.
    #[oai(rename = "connections:write")]
    ConnectionsWrite,
    /// Obtain tokens of connected accounts.
    #[oai(rename = "connections:token")]
    ConnectionsToken,
    /// See API keys, authorized apps and security events.
    #[oai(rename = "keys:read")]
    KeysRead,
    /// Manage API keys and authorized apps.
    #[oai(rename = "keys:write")]
    KeysWrite,
}

/// An OAuth access token from mcpgate's own authorization server
/// (authorization code with PKCE), sent as `Authorization: Bearer`.
#[allow(dead_code)]
#[derive(SecurityScheme)]
#[oai(
    rename = "OAuth",
    ty = "oauth2",
    flows(authorization_code(
        authorization_url = "/oauth/authorize",
        token_url = "/oauth/token",
        refresh_url = "/oauth/token",
        scopes = "OAuthScope"
    ))
)]
struct OAuthScheme(Bearer);

/// The authenticated caller of an operation.
pub struct Auth(pub Principal);

/// Name of the header carrying an API key without the Bearer scheme.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Extract the presented credential: `Authorization: Bearer …` or `X-API-Key`.
///
/// `to_str` accepts visible ASCII only, so a credential never carries a NUL
/// (or any other control character) past this point: such a header is a
/// malformed credential, 401 like any other, and costs no query.
pub fn presented_credential(req: &Request) -> Result<Option<String>, Error> {
    let bearer = match req.headers().get(poem::http::header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| Error::InvalidCredentials(CredentialProblem::Malformed))?;
            let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(Error::InvalidCredentials(
                    CredentialProblem::UnsupportedScheme,
                ));
            }
            Some(rest.trim().to_owned())
        }
    };
    let header = req
        .headers()
        .get(API_KEY_HEADER)
        .map(|v| v.to_str().map(|s| s.trim().to_owned()))
        .transpose()
        .map_err(|_| Error::InvalidCredentials(CredentialProblem::Malformed))?;
    match (bearer, header) {
        (Some(a), Some(b)) if a != b => Err(Error::validation(
            "Authorization",
            "send one credential: Authorization and X-API-Key differ",
        )),
        (Some(a), _) | (None, Some(a)) => Ok(Some(a)),
        (None, None) => Ok(None),
    }
}

/// Authenticate a request for `resource`: the presented credential (API key
/// or access token), then the per-credential rate limit; the caller is named
/// in the request's access-log line. Shared by every REST operation and `/mcp`.
pub async fn authenticate_request(
    state: &AppState,
    req: &Request,
    resource: Resource,
) -> Result<Principal, Error> {
    let presented = presented_credential(req)?.ok_or(Error::MissingCredentials)?;
    let principal = auth::authenticate(state, &presented, resource).await?;
    rate_limit::enforce(
        state,
        LimitKind::Credential,
        &principal.credential.id,
        state.config.rate_limit_credential_per_minute,
    )?;
    if let Some(ctx) = req.extensions().get::<std::sync::Arc<RequestContext>>() {
        ctx.set_caller(Caller {
            user_id: principal.user_id,
            credential_id: principal.credential.id.clone(),
        });
    }
    Ok(principal)
}

impl<'a> ApiExtractor<'a> for Auth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <ApiKeyScheme as ApiExtractor>::register(registry);
        <BearerScheme as ApiExtractor>::register(registry);
        <OAuthScheme as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec!["ApiKey", "Bearer", "OAuth"]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = req.data::<AppState>().ok_or_else(|| {
            ApiError::from(Error::internal("application state missing")).into_poem()
        })?;
        let principal = authenticate_request(state, req, Resource::Api)
            .await
            .map_err(|e| ApiError::from(e).into_poem())?;
        Ok(Auth(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    #[test]
    fn a_credential_with_a_control_or_odd_byte_is_malformed() {
        // A NUL cannot be in a header value at all (hyper answers 400 before
        // any route); anything that is not visible ASCII is a malformed key.
        assert!(HeaderValue::from_bytes(b"mcpg_a\0b").is_err());
        for header in [API_KEY_HEADER, "authorization"] {
            let value = if header == API_KEY_HEADER {
                HeaderValue::from_bytes(b"mcpg_\xff").unwrap()
            } else {
                HeaderValue::from_bytes(b"Bearer mcpg_\xff").unwrap()
            };
            let req = Request::builder().header(header, value).finish();
            assert!(
                matches!(
                    presented_credential(&req),
                    Err(Error::InvalidCredentials(CredentialProblem::Malformed))
                ),
                "{header}"
            );
        }
    }
}
