//! The back-channel OAuth endpoints: token, revocation, introspection and
//! dynamic client registration. JSON out, RFC 6749 errors, `no-store`.

use base64::{engine::general_purpose::STANDARD, Engine};
use poem::{
    handler,
    http::{header, HeaderValue, StatusCode},
    web::Data,
    Body, Request, Response,
};
use secrecy::SecretString;

use super::params::{read_form, Params};
use crate::{
    api::auth::presented_credential,
    error::OAuthCode,
    http::client_ip,
    scope::Scope,
    service::{
        auth::{self as key_auth, CredentialKind, Principal},
        idempotency,
        oauth::{self, clients, ClientCredentials, OAuthError, Resource},
        rate_limit::{self, LimitKind},
    },
    state::AppState,
};

/// A JSON body with the headers RFC 6749 §5.1 requires.
fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    json_bytes(
        status,
        serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()),
    )
}

/// [`json`] of a body already rendered.
fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::PRAGMA, "no-cache")
        .body(body)
}

/// The status each OAuth error code calls for (RFC 6749 §5.2: 400 unless
/// the client failed to authenticate; RFC 6750 §3.1 for `invalid_token`).
fn status(code: OAuthCode) -> StatusCode {
    use OAuthCode as C;
    match code {
        C::InvalidClient | C::InvalidToken => StatusCode::UNAUTHORIZED,
        C::AccessDenied => StatusCode::FORBIDDEN,
        C::SlowDown => StatusCode::TOO_MANY_REQUESTS,
        C::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        C::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        C::InvalidRequest
        | C::InvalidGrant
        | C::UnauthorizedClient
        | C::UnsupportedGrantType
        | C::UnsupportedResponseType
        | C::InvalidScope
        | C::InvalidTarget
        | C::InvalidRedirectUri
        | C::InvalidClientMetadata => StatusCode::BAD_REQUEST,
    }
}

/// An RFC 6749 error response with the status its code calls for. A code
/// that is not an OAuth one is a domain conflict kept as it was (an
/// `Idempotency-Key` of a registration): 409.
pub fn error_response(e: &OAuthError) -> Response {
    let code = OAuthCode::parse(e.code);
    let status = code.map_or(StatusCode::CONFLICT, status);
    let mut resp = json(
        status,
        &serde_json::json!({ "error": e.code, "error_description": e.description }),
    );
    if code == Some(OAuthCode::InvalidClient) {
        // RFC 6749 §5.2: name the scheme a client can authenticate with.
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"mcpgate\""),
        );
    }
    if let Some(secs) = e.retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// Client authentication from `Authorization: Basic` (RFC 6749 §2.3.1: each
/// part form-urlencoded) or from `client_id`/`client_secret` in the body.
fn client_credentials(req: &Request, form: &Params) -> Result<ClientCredentials, OAuthError> {
    let body_id = form.one("client_id")?;
    let body_secret = form.one("client_secret")?;
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim().to_owned());
    match basic {
        Some(encoded) => {
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not two",
                ));
            }
            let bad = || OAuthError::invalid_client("malformed Basic credentials");
            let decoded = STANDARD.decode(encoded).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
            let decode = |s: &str| -> String {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            let id = decode(id);
            let secret = decode(secret);
            // Text is text: a NUL never reaches a query.
            if id.contains('\0') || secret.contains('\0') {
                return Err(bad());
            }
            if body_id.as_ref().is_some_and(|b| b != &id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            Ok(ClientCredentials {
                client_id: Some(id),
                secret: Some(SecretString::from(secret)),
                basic: true,
            })
        }
        None => Ok(ClientCredentials {
            client_id: body_id,
            secret: body_secret.map(SecretString::from),
            basic: false,
        }),
    }
}

fn limit(state: &AppState, req: &Request) -> Result<(), OAuthError> {
    if let Some(ip) = client_ip(req) {
        rate_limit::enforce(
            state,
            LimitKind::Token,
            &ip.to_string(),
            state.config.rate_limit_token_per_minute,
        )?;
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    scope: &'a str,
}

#[handler]
pub async fn token(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let result = async {
        limit(&state, req)?;
        let form = read_form(req, body).await?;
        let client = client_credentials(req, &form)?;
        let request = oauth::TokenRequest {
            grant_type: form.one("grant_type")?,
            code: form.one("code")?.map(SecretString::from),
            redirect_uri: form.one("redirect_uri")?,
            code_verifier: form.one("code_verifier")?.map(SecretString::from),
            refresh_token: form.one("refresh_token")?.map(SecretString::from),
            scope: form.one("scope")?,
            resource: form.all("resource"),
            client,
        };
        oauth::token(&state, request).await
    }
    .await;
    match result {
        Ok(issued) => {
            use secrecy::ExposeSecret;
            json(
                StatusCode::OK,
                &TokenBody {
                    access_token: issued.access_token.expose_secret(),
                    token_type: "Bearer",
                    expires_in: issued.expires_in,
                    refresh_token: issued.refresh_token.as_ref().map(|r| r.expose_secret()),
                    scope: &issued.scope,
                },
            )
        }
        Err(e) => error_response(&e),
    }
}

#[handler]
pub async fn revoke(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let result = async {
        limit(&state, req)?;
        let form = read_form(req, body).await?;
        let client = client_credentials(req, &form)?;
        let presented = form
            .one("token")?
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        oauth::revoke(&state, &client, &presented).await
    }
    .await;
    match result {
        Ok(()) => json(StatusCode::OK, &serde_json::json!({})),
        Err(e) => error_response(&e),
    }
}

#[handler]
pub async fn introspect(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let result = async {
        limit(&state, req)?;
        let form = read_form(req, body).await?;
        let client = client_credentials(req, &form)?;
        if client.secret.is_none() {
            return Err(OAuthError::invalid_client(
                "introspection requires client authentication (a confidential client's secret)",
            ));
        }
        let presented = form
            .one("token")?
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        oauth::introspect(&state, &client, &presented).await
    }
    .await;
    match result {
        Ok(info) => json(StatusCode::OK, &info),
        Err(e) => error_response(&e),
    }
}

/// The owner a registration request acts for: the caller of a valid API key
/// holding `keys:write` (the client then holds at most that key's scopes);
/// none when no credential was sent. A token issued to an application never
/// registers a client: that would let an app mint a delegation of its own.
async fn registration_owner(
    state: &AppState,
    req: &Request,
) -> Result<Option<Principal>, OAuthError> {
    let presented = presented_credential(req)
        .map_err(|_| OAuthError::new("invalid_token", "malformed credentials"))?;
    let Some(presented) = presented else {
        return Ok(None);
    };
    let principal = key_auth::authenticate(state, &presented, Resource::Api)
        .await
        .map_err(|e| match e {
            crate::error::Error::InvalidCredentials(_)
            | crate::error::Error::InvalidAccessToken(_) => OAuthError::new(
                "invalid_token",
                "the credential sent with the registration is not valid",
            ),
            other => other.into(),
        })?;
    if principal.credential.kind != CredentialKind::ApiKey {
        return Err(OAuthError::new(
            "access_denied",
            "only an API key can register an owned client; a token issued to an application cannot",
        ));
    }
    if !principal.credential.scopes.contains(Scope::KeysWrite) {
        return Err(OAuthError::new(
            "access_denied",
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
    grant_types: &'a [clients::GrantType],
    response_types: Vec<&'static str>,
    token_endpoint_auth_method: &'static str,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_uri: Option<&'a str>,
}

#[handler]
pub async fn register(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let result = async {
        if state.config.oauth_client_registration == crate::config::RegistrationPolicy::Closed {
            return Err(OAuthError::new(
                "access_denied",
                "dynamic client registration is closed on this server; ask its operator for a client",
            ));
        }
        if let Some(ip) = client_ip(req) {
            rate_limit::enforce(&state, LimitKind::Registration, &format!("oauth:{ip}"), state.config.rate_limit_registration_per_minute)?;
        }
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
        if !is_json {
            return Err(OAuthError::invalid_client_metadata("the body must be application/json"));
        }
        let owner = registration_owner(&state, req).await?;
        let bytes = body
            .into_bytes_limit(super::params::MAX_FORM_BYTES)
            .await
            .map_err(|_| OAuthError::invalid_client_metadata("the body is too large"))?;
        if let Some(field) = crate::api::body::nul_field(&bytes) {
            return Err(OAuthError::invalid_client_metadata(format!(
                "{field} must not contain a NUL character"
            )));
        }
        let registration: clients::Registration = serde_json::from_slice(&bytes)
            .map_err(|e| OAuthError::invalid_client_metadata(format!("invalid JSON metadata: {e}")))?;
        let register = async |owner| {
            let reg = clients::register(&state, registration, clients::ClientKind::Dynamic, owner).await?;
            Ok::<_, OAuthError>(registered_body(&reg))
        };
        // An owned registration is the user's write and honours
        // `Idempotency-Key`; an anonymous one has nobody to store it for.
        let key = req.headers().get(idempotency::FIELD).map(|v| v.to_str().unwrap_or("\u{0}"));
        match (owner, key) {
            (Some(principal), Some(key)) => {
                let owner = owned_by(&principal);
                // The effect's own OAuth error is kept here, so it is answered
                // as RFC 7591 says while the key is released.
                let mut refused = None;
                let stored = idempotency::run(
                    &state,
                    &principal,
                    Scope::KeysWrite,
                    Some(key),
                    idempotency::Request { method: "POST", path: req.uri().path(), body: &bytes },
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
    .await;
    match result {
        Ok(body) => json_bytes(StatusCode::CREATED, body),
        Err(e) => error_response(&e),
    }
}

/// The owner of a client registered with `principal`'s API key.
fn owned_by(principal: &Principal) -> clients::Owner {
    clients::Owner {
        user_id: principal.user_id,
        key_id: Some(principal.credential.id.clone()),
        scopes: principal.credential.scopes.clone(),
    }
}

/// The RFC 7591 registration response, rendered.
fn registered_body(reg: &clients::Registered) -> Vec<u8> {
    let c = &reg.client;
    serde_json::to_vec(&RegisteredBody {
        client_id: &c.id,
        client_secret: reg.secret.as_ref().map(clients::reveal),
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
