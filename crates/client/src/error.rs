//! One error type for everything the client does, telling apart what a
//! caller reacts to differently.

#![warn(missing_docs)]

use std::time::Duration;

use crate::types;

/// What went wrong talking to mcpgate.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or the connection broke.
    #[error("network error: {0}")]
    Network(String),
    /// 401: the credential is missing, invalid, revoked or expired, and
    /// refreshing did not help. Log in again (`mcpg login`).
    #[error("not authenticated: {message} (log in again)")]
    Unauthorized {
        /// The server's error code, e.g. `token_revoked`.
        code: String,
        /// The server's sentence.
        message: String,
    },
    /// 403: the credential lacks a scope.
    #[error("forbidden: {message}")]
    Forbidden {
        /// The server's error code, e.g. `insufficient_scope`.
        code: String,
        /// The server's sentence (names the missing scope).
        message: String,
    },
    /// 404: no such resource (or not yours).
    #[error("not found: {message}")]
    NotFound {
        /// The server's sentence.
        message: String,
    },
    /// 429: slow down; `retry_after` says for how long when the server said.
    #[error("rate limited: {message}")]
    RateLimited {
        /// From `Retry-After`.
        retry_after: Option<Duration>,
        /// The server's sentence.
        message: String,
    },
    /// 400: a field of the request is invalid.
    #[error("invalid request{}: {message}", field.as_ref().map(|f| format!(" ({f})")).unwrap_or_default())]
    Validation {
        /// The request field at fault.
        field: Option<String>,
        /// The server's error code.
        code: String,
        /// The server's sentence.
        message: String,
    },
    /// Any other refusal (4xx): a conflict (409), a failed precondition
    /// (412), a body too large (413), a wrong media type (415), …
    #[error("refused ({status} {code}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's error code, e.g. `provider_unavailable`.
        code: String,
        /// The server's sentence.
        message: String,
    },
    /// A server error (5xx) or an answer the client did not expect.
    #[error("server error {status}: {message}")]
    Server {
        /// The HTTP status (0 when there was none).
        status: u16,
        /// The server's error code, if any.
        code: String,
        /// The server's sentence, or what went wrong.
        message: String,
    },
    /// The OAuth login did not complete (denied, timed out, closed browser,
    /// state or issuer mismatch).
    #[error("login failed: {0}")]
    Login(String),
    /// The token store could not be read or written.
    #[error("token store: {0}")]
    Store(String),
}

impl ClientError {
    /// True when logging in again is the fix.
    pub fn needs_login(&self) -> bool {
        matches!(self, ClientError::Unauthorized { .. })
    }

    /// Build from an HTTP status and the API's error body.
    pub fn from_status(
        status: u16,
        body: Option<types::Error>,
        retry_after: Option<Duration>,
    ) -> Self {
        let (code, message, field) = match body {
            Some(b) => (b.error, b.message, b.field),
            None => (String::new(), format!("HTTP {status}"), None),
        };
        match status {
            400 => ClientError::Validation {
                field,
                code,
                message,
            },
            401 => ClientError::Unauthorized { code, message },
            403 => ClientError::Forbidden { code, message },
            404 => ClientError::NotFound { message },
            429 => ClientError::RateLimited {
                retry_after,
                message,
            },
            s if (400..500).contains(&s) => ClientError::Refused {
                status,
                code,
                message,
            },
            _ => ClientError::Server {
                status,
                code,
                message,
            },
        }
    }
}

impl From<progenitor_client::Error<types::Error>> for ClientError {
    fn from(e: progenitor_client::Error<types::Error>) -> Self {
        use progenitor_client::Error as E;
        match e {
            E::ErrorResponse(rv) => {
                let status = rv.status().as_u16();
                let retry_after = rv
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs);
                ClientError::from_status(status, Some(rv.into_inner()), retry_after)
            }
            E::CommunicationError(e) => ClientError::Network(e.to_string()),
            E::UnexpectedResponse(r) => ClientError::from_status(r.status().as_u16(), None, None),
            other => ClientError::Server {
                status: 0,
                code: "unexpected".into(),
                message: other.to_string(),
            },
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        ClientError::Network(e.to_string())
    }
}
