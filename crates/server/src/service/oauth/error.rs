//! Errors of the OAuth protocol endpoints, in RFC 6749 terms
//! (`{"error", "error_description"}`). The HTTP edge picks the status.

use crate::error::Error;

/// An OAuth protocol error: a registered code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    /// Seconds until a rate-limited client may retry (`slow_down`).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", d)
    }
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new("invalid_target", d)
    }
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new("invalid_client_metadata", d)
    }
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new("invalid_redirect_uri", d)
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

/// Domain errors reaching an OAuth endpoint: rate limits and outages keep
/// their meaning; anything else is a `server_error` (the cause is logged).
impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        if e.is_unavailable() {
            tracing::error!(error = %e, "database unavailable");
            return Self::new(
                "temporarily_unavailable",
                "The server cannot reach its database; try again shortly.",
            );
        }
        match e {
            Error::RateLimited {
                retry_after_secs, ..
            } => Self {
                retry_after: Some(retry_after_secs),
                ..Self::new(
                    "slow_down",
                    format!("Too many requests; retry in {retry_after_secs} s."),
                )
            },
            Error::Validation { field, message } => {
                Self::invalid_request(format!("{field}: {message}"))
            }
            // An `Idempotency-Key` conflict (dynamic registration by an
            // owner): keeps its code; the edge answers 409.
            Error::Conflict { code, message } => Self::new(code, message),
            other => {
                tracing::error!(error = %other, "oauth endpoint failed");
                Self::new("server_error", "An unexpected error occurred.")
            }
        }
    }
}

impl From<sea_orm::DbErr> for OAuthError {
    fn from(e: sea_orm::DbErr) -> Self {
        Error::from(e).into()
    }
}

pub type OAuthResult<T> = std::result::Result<T, OAuthError>;
