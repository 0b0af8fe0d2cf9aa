//! Talking to the provider's endpoints: the HTTP client, the `oauth2`
//! client, the words for what went wrong, the user-info document, the
//! revocation request.

use std::time::Duration;

use oauth2::{
    basic::{BasicClient, BasicErrorResponseType},
    AuthType, AuthUrl, ClientId, ClientSecret, RedirectUrl, RequestTokenError, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

use super::{callback_url, credentials};
use crate::{
    config::TokenAuthMethod,
    error::{Error, Result},
    service::catalog::{Credentials, Provider},
    state::AppState,
};

/// Largest upstream response read.
const MAX_UPSTREAM_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamHttpError {
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider could not be reached")]
    Unreachable,
    #[error("the provider's response is too large")]
    TooLarge,
    #[error("invalid HTTP response")]
    Invalid,
}

/// The HTTP client for providers: no redirects, the configured timeout.
pub(super) fn http_client(state: &AppState) -> Result<reqwest::Client> {
    crate::http_client::install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(state.config.upstream_timeout_ms))
        .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::caused_by("upstream HTTP client", e))
}

pub(super) async fn send(
    client: reqwest::Client,
    req: oauth2::HttpRequest,
) -> std::result::Result<oauth2::HttpResponse, UpstreamHttpError> {
    let (parts, body) = req.into_parts();
    let map = |e: reqwest::Error| {
        if e.is_timeout() {
            UpstreamHttpError::Timeout
        } else {
            UpstreamHttpError::Unreachable
        }
    };
    let mut resp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(map)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(map)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_UPSTREAM_BYTES {
            return Err(UpstreamHttpError::TooLarge);
        }
    }
    let mut out = oauth2::http::Response::builder()
        .status(status)
        .body(bytes)
        .map_err(|_| UpstreamHttpError::Invalid)?;
    *out.headers_mut() = headers;
    Ok(out)
}

type Client = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

pub(super) fn oauth_client(state: &AppState, p: &Provider) -> Result<Client> {
    let creds = credentials(p)?;
    let bad =
        |what: &str, e: url::ParseError| Error::caused_by(format!("provider {} {what}", p.name), e);
    Ok(BasicClient::new(ClientId::new(creds.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            creds.client_secret.expose_secret().to_owned(),
        ))
        .set_auth_uri(
            AuthUrl::new(p.authorization_url.to_string())
                .map_err(|e| bad("authorization_url", e))?,
        )
        .set_token_uri(TokenUrl::new(p.token_url.to_string()).map_err(|e| bad("token_url", e))?)
        .set_redirect_uri(
            RedirectUrl::new(callback_url(state, &p.name)).map_err(|e| bad("redirect URI", e))?,
        )
        .set_auth_type(match p.token_auth_method {
            TokenAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
            TokenAuthMethod::ClientSecretPost => AuthType::RequestBody,
        }))
}

/// Why talking to the provider failed, in words safe to show and store.
#[derive(Debug)]
pub enum UpstreamError {
    /// The provider refused the grant (`invalid_grant`): the user must connect again.
    InvalidGrant(String),
    /// Any other answer or no answer.
    Failed(String),
}

pub(super) fn describe<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> UpstreamError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let code = r.error().to_string();
            let detail = r
                .error_description()
                .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            if matches!(r.error(), BasicErrorResponseType::InvalidGrant) {
                UpstreamError::InvalidGrant(format!("the provider answered {code}{detail}"))
            } else {
                UpstreamError::Failed(format!("the provider answered {code}{detail}"))
            }
        }
        RequestTokenError::Request(e) => UpstreamError::Failed(e.to_string()),
        RequestTokenError::Parse(_, _) => {
            UpstreamError::Failed("the provider's token response could not be parsed".into())
        }
        RequestTokenError::Other(s) => UpstreamError::Failed(s.chars().take(200).collect()),
    }
}

/// The external account id from the provider's user-info document.
pub(super) async fn account_id(
    state: &AppState,
    p: &Provider,
    url: &url::Url,
    access: &SecretString,
) -> Option<String> {
    let http = http_client(state).ok()?;
    let resp = http
        .get(url.clone())
        .bearer_auth(access.expose_secret())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        tracing::warn!(provider = %p.name, status = resp.status().as_u16(), "user-info request failed");
        return None;
    }
    let body: serde_json::Value = resp.json().await.ok()?;
    let value = body.pointer(p.account_id_pointer.as_deref().unwrap_or("/id"))?;
    Some(match value {
        serde_json::Value::String(s) => s.chars().take(255).collect(),
        other => other.to_string(),
    })
}

/// Revoke a token at the provider (RFC 7009), best effort: a failure is
/// logged, never returned.
pub(super) async fn revoke(
    state: &AppState,
    p: &Provider,
    url: &url::Url,
    creds: &Credentials,
    token: &SecretString,
    hint: &str,
) {
    let Ok(http) = http_client(state) else {
        return;
    };
    let mut req = http.post(url.clone());
    let mut form = vec![
        ("token", token.expose_secret().to_owned()),
        ("token_type_hint", hint.to_owned()),
    ];
    match p.token_auth_method {
        TokenAuthMethod::ClientSecretBasic => {
            req = req.basic_auth(&creds.client_id, Some(creds.client_secret.expose_secret()));
        }
        TokenAuthMethod::ClientSecretPost => {
            form.push(("client_id", creds.client_id.clone()));
            form.push((
                "client_secret",
                creds.client_secret.expose_secret().to_owned(),
            ));
        }
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter())
        .finish();
    let result = req
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await;
    if let Err(e) = result {
        tracing::warn!(provider = %p.name, error = %e, "revocation at the provider failed; deleting locally");
    }
}
