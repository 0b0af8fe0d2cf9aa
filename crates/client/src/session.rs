//! An authenticated client for one server, and the hooks the generated
//! client runs on every request.
//!
//! The generated [`Client`] carries a [`Hooks`] (progenitor's inner type).
//! Before each request, progenitor's async pre-hook ([`authorize`]) sets
//! `Authorization` to the current credential, refreshing an OAuth token that
//! is about to expire; after each answer, the crate's `ClientHooks` impl
//! reports the operation id, status and `X-Request-Id` to the caller's trace.
//! A [`Session`] builds that client once, over the caller's `reqwest::Client`
//! if there is one, and retries once after a refresh when the server still
//! answers 401.

#![warn(missing_docs)]

use std::{future::Future, sync::Arc};

use progenitor_client::{ClientHooks, ClientInfo, Error, OperationInfo, ResponseValue};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use secrecy::ExposeSecret;

use crate::{
    auth::Auth, error::request_id_header, http_client_builder, BuildError, Client, ClientError,
    SendError,
};

/// One request as the trace sees it, once answered (or failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace<'a> {
    /// The operation, e.g. `memory_list`.
    pub operation_id: &'static str,
    /// The HTTP status; `None` when no answer came (network failure).
    pub status: Option<u16>,
    /// The server's id for the request (`X-Request-Id`), to find it in the
    /// server's logs.
    pub request_id: Option<&'a str>,
}

type TraceFn = dyn Fn(&Trace<'_>) + Send + Sync;

/// What the generated [`Client`] carries besides its HTTP client: the
/// credential the pre-hook sends and the trace answers are reported to.
/// The default sends no credential and traces nothing.
#[derive(Clone, Default)]
pub struct Hooks {
    auth: Option<Auth>,
    trace: Option<Arc<TraceFn>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("auth", &self.auth)
            .field("trace", &self.trace.is_some())
            .finish()
    }
}

/// The async pre-hook (generated into every operation): set
/// `Authorization: Bearer` to the current credential. An error here reaches
/// the caller as [`ClientError::Credential`].
pub(crate) async fn authorize(
    hooks: &Hooks,
    request: &mut reqwest::Request,
) -> Result<(), ClientError> {
    let token = match &hooks.auth {
        None => return Ok(()),
        Some(Auth::ApiKey(key)) => key.clone(),
        Some(Auth::OAuth(credential)) => credential.access_token().await?,
    };
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| BuildError::InvalidKey)?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}

impl ClientHooks<Hooks> for Client {
    async fn post<E>(
        &self,
        result: &reqwest::Result<reqwest::Response>,
        info: &OperationInfo,
    ) -> Result<(), Error<E>> {
        if let Some(trace) = &self.inner().trace {
            let response = result.as_ref().ok();
            let request_id = response.and_then(|r| request_id_header(r.headers()));
            trace(&Trace {
                operation_id: info.operation_id,
                status: response.map(|r| r.status().as_u16()),
                request_id: request_id.as_deref(),
            });
        }
        Ok(())
    }
}

/// An authenticated client for one server: the generated [`Client`], built
/// once, sends the credential on every request; [`Session::call`] also
/// retries once after a refresh when an OAuth token is refused.
#[derive(Clone, Debug)]
pub struct Session {
    client: Client,
    auth: Auth,
}

/// Builds a [`Session`]: a caller-supplied HTTP client, a trace.
pub struct SessionBuilder {
    base_url: String,
    auth: Auth,
    http: Option<reqwest::Client>,
    trace: Option<Arc<TraceFn>>,
}

impl SessionBuilder {
    /// Send through `http` (its timeouts, proxy, TLS roots, connection
    /// pool) instead of a client with the crate's defaults. The credential
    /// is set per request, so `http` needs none. Start from
    /// [`crate::http_client_builder`] to keep the defaults and the TLS
    /// provider it installs (reqwest is built without one).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Call `trace` after every answer (and every failed send) with the
    /// operation id, status and `X-Request-Id`.
    pub fn trace(mut self, trace: impl Fn(&Trace<'_>) + Send + Sync + 'static) -> Self {
        self.trace = Some(Arc::new(trace));
        self
    }

    /// The session.
    pub fn build(self) -> Result<Session, BuildError> {
        let http = match self.http {
            Some(http) => http,
            None => http_client_builder().build().map_err(BuildError::Http)?,
        };
        let hooks = Hooks {
            auth: Some(self.auth.clone()),
            trace: self.trace,
        };
        Ok(Session {
            client: Client::new_with_client(&self.base_url, http, hooks),
            auth: self.auth,
        })
    }
}

impl Session {
    /// A session with `base_url` authenticated with `auth`, over an HTTP
    /// client with the crate's defaults.
    pub fn new(base_url: &str, auth: Auth) -> Result<Self, BuildError> {
        Self::builder(base_url, auth).build()
    }

    /// A session with more settings (see [`SessionBuilder`]).
    pub fn builder(base_url: &str, auth: Auth) -> SessionBuilder {
        SessionBuilder {
            base_url: base_url.trim_end_matches('/').to_owned(),
            auth,
            http: None,
            trace: None,
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        self.client.baseurl()
    }

    /// The generated client, sending the credential on every request (an
    /// OAuth token refreshed when it is about to expire). Its errors do not
    /// retry after a 401; [`Session::call`] does.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Run `call` with the client; on 401 with an OAuth credential, refresh
    /// and run it once more.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<ResponseValue<T>, SendError>>,
    {
        let Auth::OAuth(credential) = &self.auth else {
            return Ok(call(self.client.clone()).await?.into_inner());
        };
        // Refreshing here rather than in the pre-hook keeps a failed
        // refresh's own error; the hook then finds the token fresh.
        let token = credential.access_token().await?;
        match call(self.client.clone()).await {
            Ok(v) => Ok(v.into_inner()),
            Err(e) => {
                let err = ClientError::from(e);
                if !err.needs_login() {
                    return Err(err);
                }
                credential.refresh_after_401(&token).await?;
                Ok(call(self.client.clone()).await?.into_inner())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use secrecy::SecretString;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;
    use crate::auth::{MemoryTokenStore, OAuthCredential, StoredCredential, TokenStore};

    /// A server that records each request's head and answers `/healthz`
    /// with 200 when the bearer is `mcpg_at_good` (else 401, with a request
    /// id), and the token endpoint with that token.
    async fn server() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 16384];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    len += stream.read(&mut buf[len..]).await.unwrap();
                }
                let head = String::from_utf8_lossy(&buf[..len]).to_lowercase();
                log.lock().unwrap().push(head.clone());
                let (status, body) = if head.starts_with("post /oauth/token") {
                    (
                        "200 OK",
                        r#"{"access_token":"mcpg_at_good","expires_in":3600}"#,
                    )
                } else if head.contains("authorization: bearer mcpg_at_good\r\n") {
                    ("200 OK", r#"{"status":"ok","version":"test"}"#)
                } else {
                    ("401 Unauthorized", "")
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-request-id: req-42\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        (url, seen)
    }

    /// An OAuth credential holding `access`, expiring in `expires_in`
    /// seconds, refreshed at `url`'s token endpoint.
    fn oauth(url: &str, access: &str, expires_in: i64) -> Auth {
        let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::default());
        let stored = StoredCredential {
            client_id: "mcpg_ci_x".into(),
            token_endpoint: format!("{url}/oauth/token"),
            access_token: access.into(),
            refresh_token: Some("mcpg_rt_x".into()),
            expires_at: Some(chrono::Utc::now() + chrono::Duration::seconds(expires_in)),
            scope: None,
            revocation_endpoint: None,
        };
        Auth::OAuth(Arc::new(
            OAuthCredential::from_stored(url.into(), stored, store).unwrap(),
        ))
    }

    fn bearers(seen: &Mutex<Vec<String>>) -> Vec<String> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|head| {
                let first = head.lines().next().unwrap_or("");
                let bearer = head
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: bearer "))
                    .unwrap_or("-");
                format!("{} {bearer}", first.split(' ').nth(1).unwrap_or(""))
            })
            .collect()
    }

    #[tokio::test]
    async fn the_pre_hook_sends_the_current_token() {
        let (url, seen) = server().await;
        let key = Session::new(&url, Auth::ApiKey(SecretString::from("mcpg_at_good"))).unwrap();
        key.client().health_live().send().await.unwrap();
        // A token about to expire is refreshed before the request is sent.
        let expiring = Session::new(&url, oauth(&url, "mcpg_at_old", 10)).unwrap();
        expiring.client().health_live().send().await.unwrap();
        assert_eq!(
            bearers(&seen),
            [
                "/healthz mcpg_at_good",
                "/oauth/token -",
                "/healthz mcpg_at_good"
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_token_is_refreshed_once_and_the_call_retried() {
        let (url, seen) = server().await;
        let session = Session::new(&url, oauth(&url, "mcpg_at_revoked", 3600)).unwrap();
        let health = session
            .call(|c| async move { c.health_live().send().await })
            .await
            .unwrap();
        assert_eq!(health.version, "test");
        assert_eq!(
            bearers(&seen),
            [
                "/healthz mcpg_at_revoked",
                "/oauth/token -",
                "/healthz mcpg_at_good"
            ]
        );
    }

    #[tokio::test]
    async fn a_caller_supplied_http_client_is_used() {
        let (url, seen) = server().await;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-plugin", HeaderValue::from_static("my-ide"));
        let http = crate::http_client_builder()
            .default_headers(headers)
            .build()
            .unwrap();
        let session = Session::builder(&url, Auth::ApiKey("mcpg_at_good".into()))
            .http_client(http)
            .build()
            .unwrap();
        session.client().health_live().send().await.unwrap();
        let head = seen.lock().unwrap()[0].clone();
        assert!(head.contains("x-plugin: my-ide\r\n"), "{head}");
        assert!(
            head.contains("authorization: bearer mcpg_at_good\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn answers_are_traced_and_errors_keep_the_request_id() {
        let (url, _) = server().await;
        let traced = Arc::new(Mutex::new(Vec::new()));
        let sink = traced.clone();
        let session = Session::builder(&url, Auth::ApiKey("mcpg_at_wrong".into()))
            .trace(move |t| {
                sink.lock().unwrap().push(format!(
                    "{} {:?} {:?}",
                    t.operation_id, t.status, t.request_id
                ))
            })
            .build()
            .unwrap();
        let err = session
            .call(|c| async move { c.health_live().send().await })
            .await
            .unwrap_err();
        assert!(err.needs_login(), "{err:?}");
        assert_eq!(err.request_id(), Some("req-42"));
        assert_eq!(
            *traced.lock().unwrap(),
            [r#"health_live Some(401) Some("req-42")"#]
        );
        // Nobody listening: traced without a status.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let sink = traced.clone();
        let session = Session::builder(&dead, Auth::ApiKey("k".into()))
            .trace(move |t| sink.lock().unwrap().push(format!("{:?}", t.status)))
            .build()
            .unwrap();
        let err = session.client().health_live().send().await.unwrap_err();
        assert!(matches!(ClientError::from(err), ClientError::Network(_)));
        assert_eq!(traced.lock().unwrap().last().unwrap(), "None");
    }

    #[test]
    fn debug_never_shows_a_token() {
        let session = Session::new(
            "http://127.0.0.1:1",
            Auth::ApiKey("mcpg_k_secret-key".into()),
        )
        .unwrap();
        let shown = format!("{session:?}");
        assert!(!shown.contains("secret-key"), "{shown}");
    }
}
