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
    service::{
        idempotency,
        oauth::{self, clients, ClientCredentials, OAuthError},
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
    let status = match e.conflict {
        Some(_) => StatusCode::CONFLICT,
        None => status(e.code),
    };
    let mut resp = json(
        status,
        &serde_json::json!({ "error": e.wire_code(), "error_description": e.description }),
    );
    if e.code == OAuthCode::InvalidClient && e.conflict.is_none() {
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
        let presented = form.one("token")?;
        oauth::introspect(&state, &client, presented.as_deref()).await
    }
    .await;
    match result {
        Ok(info) => json(StatusCode::OK, &info),
        Err(e) => error_response(&e),
    }
}

#[handler]
pub async fn register(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    let result = clients::register_dynamic(
        &state,
        clients::DynamicRegistration {
            client_ip: client_ip(req),
            credential: presented_credential(req),
            is_json,
            body: read_registration(body).await,
            idempotency_key: req
                .headers()
                .get(idempotency::FIELD)
                .map(|v| v.to_str().unwrap_or("\u{0}")),
            path: req.uri().path(),
        },
    )
    .await;
    match result {
        Ok(body) => json_bytes(StatusCode::CREATED, body),
        Err(e) => error_response(&e),
    }
}

/// The registration metadata of a JSON body, and the body itself.
async fn read_registration(body: Body) -> Result<(Vec<u8>, clients::Registration), OAuthError> {
    let bytes = body
        .into_bytes_limit(super::params::MAX_FORM_BYTES)
        .await
        .map_err(|_| OAuthError::invalid_client_metadata("the body is too large"))?;
    if let Some(field) = crate::api::body::nul_field(&bytes) {
        return Err(OAuthError::invalid_client_metadata(format!(
            "{field} must not contain a NUL character"
        )));
    }
    let registration = serde_json::from_slice(&bytes)
        .map_err(|e| OAuthError::invalid_client_metadata(format!("invalid JSON metadata: {e}")))?;
    Ok((bytes.to_vec(), registration))
}
