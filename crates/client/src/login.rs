//! Log in with OAuth (authorization code + PKCE) through a loopback listener.
//!
//! [`pkce`] discovers the server from its metadata, registers itself when it
//! has no client id (a public client whose redirect URI is
//! `http://127.0.0.1/callback`, valid on any port), binds 127.0.0.1 (a fixed
//! port if asked, else any free one), hands the authorization URL to the
//! caller's `open` callback (an IDE opens its own browser; a CLI opens the
//! system browser and prints it), waits for the redirect, checks `state` and
//! `iss`, exchanges the code with the PKCE verifier, and stores the result.

#![warn(missing_docs)]

use std::{sync::Arc, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::{
    auth::{OAuthCredential, StoredCredential, TokenResponse, TokenStore},
    error::ClientError,
    http_client_builder, BuildError,
};

/// How to log in.
pub struct LoginOptions {
    /// A registered client id; `None` registers one dynamically.
    pub client_id: Option<String>,
    /// The name shown on the consent page when registering.
    pub client_name: String,
    /// Scopes to ask for; empty asks for everything the client may have.
    pub scopes: Vec<String>,
    /// Resources (`<server>/api`, `<server>/mcp`); empty: the API.
    pub resources: Vec<String>,
    /// A fixed loopback port; `None` takes any free one.
    pub port: Option<u16>,
    /// How long to wait for the browser.
    pub timeout: Duration,
    /// Where the credential is kept.
    pub store: Arc<dyn TokenStore>,
    /// Receives the authorization URL to open.
    pub open: Box<dyn Fn(&str) + Send + Sync>,
    /// The HTTP client for discovery, registration, the code exchange and
    /// every later refresh; `None` builds one with
    /// [`crate::http_client_builder`].
    pub http: Option<reqwest::Client>,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    registration_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
}

fn random(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Log in to `server_url`; returns the stored, self-refreshing credential.
pub async fn pkce(
    server_url: &str,
    options: LoginOptions,
) -> Result<Arc<OAuthCredential>, ClientError> {
    let server = server_url.trim_end_matches('/').to_owned();
    let http = match options.http.clone() {
        Some(http) => http,
        None => http_client_builder().build().map_err(BuildError::Http)?,
    };
    let meta: Metadata = http
        .get(format!("{server}/.well-known/oauth-authorization-server"))
        .send()
        .await?
        .error_for_status()
        .map_err(|e| {
            ClientError::Login(format!("no authorization-server metadata at {server}: {e}"))
        })?
        .json()
        .await
        .map_err(|e| ClientError::Login(format!("invalid authorization-server metadata: {e}")))?;

    let listener = TcpListener::bind(("127.0.0.1", options.port.unwrap_or(0)))
        .await
        .map_err(|e| {
            ClientError::Login(format!(
                "cannot listen on 127.0.0.1 for the browser's redirect: {e}"
            ))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| ClientError::Login(e.to_string()))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");

    let client_id = match options.client_id.clone() {
        Some(id) => id,
        None => {
            let endpoint = meta.registration_endpoint.clone().ok_or_else(|| {
                ClientError::Login(
                    "the server does not allow registration; pass a client id".into(),
                )
            })?;
            let resp = http
                .post(endpoint)
                .json(&serde_json::json!({
                    "client_name": options.client_name,
                    "redirect_uris": ["http://127.0.0.1/callback"],
                    "token_endpoint_auth_method": "none",
                    "grant_types": ["authorization_code", "refresh_token"],
                }))
                .send()
                .await?;
            if !resp.status().is_success() {
                return Err(ClientError::Login(format!(
                    "client registration refused (HTTP {})",
                    resp.status()
                )));
            }
            let body: serde_json::Value = resp.json().await?;
            body["client_id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ClientError::Login("registration returned no client_id".into()))?
        }
    };

    let verifier = random(64);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = random(32);
    let mut url = url::Url::parse(&meta.authorization_endpoint)
        .map_err(|_| ClientError::Login("invalid authorization endpoint".into()))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", &client_id);
        q.append_pair("redirect_uri", &redirect_uri);
        q.append_pair("code_challenge", &challenge);
        q.append_pair("code_challenge_method", "S256");
        q.append_pair("state", &state);
        if !options.scopes.is_empty() {
            q.append_pair("scope", &options.scopes.join(" "));
        }
        for r in &options.resources {
            q.append_pair("resource", r);
        }
    }
    (options.open)(url.as_str());

    let params = tokio::time::timeout(options.timeout, wait_for_redirect(&listener))
        .await
        .map_err(|_| {
            ClientError::Login(format!(
                "no answer from the browser within {} s (was it closed?)",
                options.timeout.as_secs()
            ))
        })??;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("state").as_deref() != Some(state.as_str()) {
        return Err(ClientError::Login(
            "the redirect's state does not match this login".into(),
        ));
    }
    if let Some(iss) = get("iss") {
        if iss != meta.issuer {
            return Err(ClientError::Login(
                "the redirect came from another issuer".into(),
            ));
        }
    }
    if let Some(error) = get("error") {
        return Err(ClientError::Login(match error.as_str() {
            "access_denied" => "access was denied on the consent page".into(),
            other => format!(
                "the server answered {other}: {}",
                get("error_description").unwrap_or_default()
            ),
        }));
    }
    let code =
        get("code").ok_or_else(|| ClientError::Login("the redirect carried no code".into()))?;
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", redirect_uri.clone()),
        ("code_verifier", verifier),
        ("client_id", client_id.clone()),
    ];
    for r in &options.resources {
        form.push(("resource", r.clone()));
    }
    let resp = http.post(&meta.token_endpoint).form(&form).send().await?;
    if !resp.status().is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        return Err(ClientError::Login(format!(
            "the code exchange failed: {}",
            body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("unknown error")
        )));
    }
    let tokens: TokenResponse = resp.json().await?;
    let stored = StoredCredential {
        client_id,
        token_endpoint: meta.token_endpoint,
        access_token: tokens.access_token.into(),
        refresh_token: tokens.refresh_token.map(Into::into),
        expires_at: tokens
            .expires_in
            .map(|s| chrono::Utc::now() + chrono::Duration::seconds(s)),
        scope: tokens.scope,
        revocation_endpoint: meta.revocation_endpoint,
    };
    options.store.save(&server, &stored)?;
    Ok(Arc::new(OAuthCredential::from_stored_with(
        server,
        stored,
        options.store.clone(),
        http,
    )))
}

/// Accept connections until one is the redirect to `/callback`; answer it
/// with a page the user can close.
async fn wait_for_redirect(listener: &TcpListener) -> Result<Vec<(String, String)>, ClientError> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| ClientError::Login(e.to_string()))?;
        let mut buf = vec![0u8; 8192];
        let mut len = 0;
        while len < buf.len() {
            let n = stream.read(&mut buf[len..]).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            len += n;
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..len]).to_string();
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("");
        let Some(query) = target.strip_prefix("/callback") else {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        };
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
                .into_owned()
                .collect();
        let ok = params.iter().any(|(k, _)| k == "code");
        let body = if ok {
            "<!doctype html><title>mcpgate</title><p>Signed in. You can close this window.</p>"
        } else {
            "<!doctype html><title>mcpgate</title><p>Sign-in did not complete. You can close this window.</p>"
        };
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(resp.as_bytes()).await;
        return Ok(params);
    }
}
