//! One error type for everything the client does, telling apart what a
//! caller reacts to differently.

#![warn(missing_docs)]

use std::time::Duration;

use crate::{types, BuildError, SendError};

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
        /// The server's id for the request (`X-Request-Id`, and in its
        /// logs), to quote when reporting a problem.
        request_id: Option<String>,
    },
    /// 403: the credential lacks a scope.
    #[error("forbidden: {message}")]
    Forbidden {
        /// The server's error code, e.g. `insufficient_scope`.
        code: String,
        /// The server's sentence (names the missing scope).
        message: String,
        /// The server's id for the request (`X-Request-Id`, and in its
        /// logs), to quote when reporting a problem.
        request_id: Option<String>,
    },
    /// 404: no such resource (or not yours).
    #[error("not found: {message}")]
    NotFound {
        /// The server's sentence.
        message: String,
        /// The server's id for the request (`X-Request-Id`, and in its
        /// logs), to quote when reporting a problem.
        request_id: Option<String>,
    },
    /// 429: slow down; `retry_after` says for how long when the server said.
    #[error("rate limited: {message}")]
    RateLimited {
        /// From `Retry-After`.
        retry_after: Option<Duration>,
        /// The server's sentence.
        message: String,
        /// The server's id for the request (`X-Request-Id`, and in its
        /// logs), to quote when reporting a problem.
        request_id: Option<String>,
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
        /// The server's id for the request (`X-Request-Id`, and in its
        /// logs), to quote when reporting a problem.
        request_id: Option<String>,
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
        /// The server's id for the request (`X-Request-Id`, and in its
        /// logs), to quote when reporting a problem.
        request_id: Option<String>,
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
        /// The server's id for the request (`X-Request-Id`, and in its
        /// logs), to quote when reporting a problem.
        request_id: Option<String>,
    },
    /// The OAuth login did not complete (denied, timed out, closed browser,
    /// state or issuer mismatch).
    #[error("login failed: {0}")]
    Login(String),
    /// The token store could not be read or written.
    #[error("token store: {0}")]
    Store(String),
    /// The credential could not be set on a request before sending it
    /// (refreshing the OAuth token failed; [`crate::Session::call`] reports
    /// the refresh's own error instead).
    #[error("credential: {0}")]
    Credential(String),
    /// The HTTP client could not be built (nothing was sent).
    #[error("{0}")]
    Build(#[from] BuildError),
}

impl ClientError {
    /// True when logging in again is the fix.
    pub fn needs_login(&self) -> bool {
        matches!(self, ClientError::Unauthorized { .. })
    }

    /// The server's id for the request that failed, when it answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ClientError::Unauthorized { request_id, .. }
            | ClientError::Forbidden { request_id, .. }
            | ClientError::NotFound { request_id, .. }
            | ClientError::RateLimited { request_id, .. }
            | ClientError::Validation { request_id, .. }
            | ClientError::Refused { request_id, .. }
            | ClientError::Server { request_id, .. } => request_id.as_deref(),
            ClientError::Network(_)
            | ClientError::Credential(_)
            | ClientError::Login(_)
            | ClientError::Store(_)
            | ClientError::Build(_) => None,
        }
    }

    /// Build from an HTTP status, the API's error body (when there was
    /// one) and the response headers (`Retry-After`, `X-Request-Id`).
    pub fn from_response(
        status: u16,
        body: Option<types::Error>,
        headers: &reqwest::header::HeaderMap,
    ) -> Self {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let header_id = request_id_header(headers);
        let (code, message, field, request_id) = match body {
            Some(b) => {
                let id = Some(b.request_id).filter(|id| !id.is_empty());
                (b.error, b.message, b.field, id.or(header_id))
            }
            None => (String::new(), format!("HTTP {status}"), None, header_id),
        };
        match status {
            400 => ClientError::Validation {
                field,
                code,
                message,
                request_id,
            },
            401 => ClientError::Unauthorized {
                code,
                message,
                request_id,
            },
            403 => ClientError::Forbidden {
                code,
                message,
                request_id,
            },
            404 => ClientError::NotFound {
                message,
                request_id,
            },
            429 => ClientError::RateLimited {
                retry_after,
                message,
                request_id,
            },
            s if (400..500).contains(&s) => ClientError::Refused {
                status,
                code,
                message,
                request_id,
            },
            _ => ClientError::Server {
                status,
                code,
                message,
                request_id,
            },
        }
    }
}

/// The `X-Request-Id` of a response.
pub(crate) fn request_id_header(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl From<SendError> for ClientError {
    fn from(e: SendError) -> Self {
        use progenitor_client::Error as E;
        match e {
            E::ErrorResponse(rv) => {
                let status = rv.status().as_u16();
                let headers = rv.headers().clone();
                ClientError::from_response(status, Some(rv.into_inner()), &headers)
            }
            E::CommunicationError(e) => ClientError::Network(e.to_string()),
            // The only custom errors are the pre-hook's.
            E::Custom(message) => ClientError::Credential(message),
            E::UnexpectedResponse(r) => {
                ClientError::from_response(r.status().as_u16(), None, r.headers())
            }
            other => ClientError::Server {
                status: 0,
                code: "unexpected".into(),
                message: other.to_string(),
                request_id: None,
            },
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        ClientError::Network(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    fn body(request_id: &str) -> types::Error {
        types::Error {
            error: "memory_not_found".into(),
            field: None,
            message: "No such memory.".into(),
            request_id: request_id.into(),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_request_id_is_kept() {
        let e = ClientError::from_response(404, Some(body("req-body")), &headers(&[]));
        assert!(matches!(e, ClientError::NotFound { .. }), "{e:?}");
        assert_eq!(e.request_id(), Some("req-body"));
        // Without a body, from the header.
        let e = ClientError::from_response(502, None, &headers(&[("x-request-id", "req-hdr")]));
        assert!(
            matches!(e, ClientError::Server { status: 502, .. }),
            "{e:?}"
        );
        assert_eq!(e.request_id(), Some("req-hdr"));
        let e = ClientError::from_response(
            429,
            Some(body("")),
            &headers(&[("x-request-id", "req-hdr"), ("retry-after", "7")]),
        );
        assert_eq!(e.request_id(), Some("req-hdr"));
        assert!(
            matches!(e, ClientError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 7),
            "{e:?}"
        );
        assert_eq!(ClientError::Network("down".into()).request_id(), None);
    }
}
