//! The domain error: what went wrong, in terms of mcpgate, not HTTP.
//!
//! [`Error::public`] is the one rendering a client may see (a code, a
//! sentence, the field at fault, when to retry, and the [`ErrorKind`] an edge
//! picks its status from); every edge (REST in `api::error`, the pages, the
//! OAuth endpoints, the MCP tools) renders it and chooses only the status and
//! the transport. Causes are logged by [`Error::log`], never sent.

use std::error::Error as StdError;

use sea_orm::DbErr;

use crate::{context, scope::Scope};

/// Result alias for the domain.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialProblem {
    /// Not the shape of any mcpgate credential (checked without the database).
    Malformed,
    /// An `Authorization` header with a scheme other than Bearer.
    UnsupportedScheme,
    /// Well-formed but unknown, or the secret does not match.
    Unknown,
    Revoked,
    Expired,
    /// An access token issued for another resource (RFC 8707 audience).
    WrongAudience,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the request is invalid.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// No credentials were sent.
    #[error("no credentials")]
    MissingCredentials,
    /// Credentials were sent but are not valid.
    #[error("invalid credentials: {0:?}")]
    InvalidCredentials(CredentialProblem),
    /// An OAuth access token was sent but is not valid here.
    #[error("invalid access token: {0:?}")]
    InvalidAccessToken(CredentialProblem),
    /// Valid credentials without the scopes the operation needs.
    #[error("insufficient scope: requires {}", .required.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))]
    InsufficientScope { required: Vec<Scope> },
    /// The resource does not exist, or belongs to someone else.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A precondition (`If-Match` version) no longer holds.
    #[error("{0}")]
    PreconditionFailed(String),
    /// Too many requests for one of the rate limits.
    #[error("rate limited ({kind}); retry in {retry_after_secs} s")]
    RateLimited {
        kind: &'static str,
        retry_after_secs: u64,
    },
    /// A search did not finish within its time budget (`search_timeout_ms`).
    #[error("search over its time budget of {budget_ms} ms")]
    SearchTimeout { budget_ms: u64 },
    /// Registration is closed by configuration.
    #[error("registration is closed")]
    RegistrationClosed,
    /// The request body is larger than allowed.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A third-party provider failed or refused (502).
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// Something that should not happen: `context` says what was being done,
    /// `source` is the cause. Logged with its source chain, never sent.
    #[error("{context}")]
    Unexpected {
        context: String,
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
}

/// What kind of failure an error is, which is all an edge needs to choose a
/// status: each kind is one status on every HTTP face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or a field is invalid (400).
    Invalid,
    /// No credentials, or an API key that is not valid (401).
    Unauthenticated,
    /// An OAuth access token that is not valid here (401, `invalid_token`).
    InvalidToken,
    /// Valid credentials without the right, or an action refused (403).
    Forbidden,
    /// No such resource, or someone else's (404).
    NotFound,
    /// The request conflicts with the current state (409).
    Conflict,
    /// An `If-Match` version that is no longer current (412).
    PreconditionFailed,
    /// A body over its limit (413).
    TooLarge,
    /// A rate limit (429, with `retry_after`).
    RateLimited,
    /// A third-party provider failed or refused (502).
    Upstream,
    /// The database is unreachable, or a search ran past its budget (503).
    Unavailable,
    /// Anything unexpected; the cause is in the log (500).
    Internal,
}

/// The public face of an [`Error`]: all a client is ever told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicError {
    pub kind: ErrorKind,
    /// Machine-readable snake_case code, e.g. `validation_failed`.
    pub code: &'static str,
    /// A sentence for humans.
    pub message: String,
    /// The request field at fault.
    pub field: Option<String>,
    /// Seconds after which the same request may succeed.
    pub retry_after: Option<u64>,
}

impl PublicError {
    fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The error as an OAuth endpoint reports it (RFC 6749 §5.2): outages
    /// and rate limits keep their meaning, a field error is
    /// `invalid_request`, anything else a `server_error`. A conflict (an
    /// `Idempotency-Key` of a registration) keeps its own code, so it is
    /// `None` here.
    pub fn oauth_code(&self) -> Option<OAuthCode> {
        Some(match self.kind {
            ErrorKind::Unavailable => OAuthCode::TemporarilyUnavailable,
            ErrorKind::RateLimited => OAuthCode::SlowDown,
            ErrorKind::Invalid => OAuthCode::InvalidRequest,
            ErrorKind::Conflict => return None,
            _ => OAuthCode::ServerError,
        })
    }
}

/// `Retry-After` of a search that ran past its budget (seconds).
const SEARCH_RETRY_AFTER_SECS: u64 = 1;

/// `Retry-After` of a request whose `Idempotency-Key` is still in use.
const IN_PROGRESS_RETRY_AFTER_SECS: u64 = 1;

/// The error codes of the OAuth endpoints: RFC 6749 (§4.1.2.1, §5.2) and the
/// extensions this server answers with: `invalid_token` (RFC 6750),
/// `invalid_redirect_uri` and `invalid_client_metadata` (RFC 7591),
/// `invalid_target` (RFC 8707) and `slow_down` (RFC 8628) for a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InvalidTarget,
    InvalidRedirectUri,
    InvalidClientMetadata,
    SlowDown,
}

impl OAuthCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::AccessDenied => "access_denied",
            OAuthCode::ServerError => "server_error",
            OAuthCode::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthCode::InvalidToken => "invalid_token",
            OAuthCode::InvalidTarget => "invalid_target",
            OAuthCode::InvalidRedirectUri => "invalid_redirect_uri",
            OAuthCode::InvalidClientMetadata => "invalid_client_metadata",
            OAuthCode::SlowDown => "slow_down",
        }
    }
}

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An unexpected failure with its cause, which the log shows and the
    /// client never sees.
    pub fn caused_by(
        context: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Error::Unexpected {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// An unexpected failure with nothing more to say than `context`.
    pub fn internal(context: impl Into<String>) -> Self {
        Error::Unexpected {
            context: context.into(),
            source: None,
        }
    }

    /// What a client is told: the one rendering every edge uses.
    pub fn public(&self) -> PublicError {
        use ErrorKind as K;
        match self {
            Error::Validation { field, message } => {
                PublicError::new(K::Invalid, "validation_failed", format!("{field} {message}"))
                    .field(field.clone())
            }
            Error::MissingCredentials => PublicError::new(
                K::Unauthenticated,
                "missing_credentials",
                "Send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`, or an OAuth access token as `Authorization: Bearer <token>`.",
            ),
            Error::InvalidCredentials(problem) => {
                let (code, message) = match problem {
                    CredentialProblem::Malformed => (
                        "invalid_api_key",
                        "The API key is malformed: check that it was copied completely.",
                    ),
                    CredentialProblem::UnsupportedScheme => (
                        "invalid_authorization",
                        "The Authorization header must use the Bearer scheme: `Authorization: Bearer <key>`.",
                    ),
                    CredentialProblem::Unknown | CredentialProblem::WrongAudience => {
                        ("invalid_api_key", "The API key is not valid.")
                    }
                    CredentialProblem::Revoked => ("api_key_revoked", "The API key has been revoked."),
                    CredentialProblem::Expired => ("api_key_expired", "The API key has expired."),
                };
                PublicError::new(K::Unauthenticated, code, message)
            }
            Error::InvalidAccessToken(problem) => {
                let (code, message) = match problem {
                    CredentialProblem::Revoked => ("token_revoked", "The access token has been revoked."),
                    CredentialProblem::Expired => (
                        "token_expired",
                        "The access token has expired: refresh it at the token endpoint.",
                    ),
                    CredentialProblem::WrongAudience => (
                        "invalid_audience",
                        "The access token was issued for another resource (RFC 8707); request one for this resource.",
                    ),
                    _ => ("invalid_token", "The access token is not valid."),
                };
                PublicError::new(K::InvalidToken, code, message)
            }
            Error::InsufficientScope { required } => {
                let names: Vec<_> = required.iter().map(|s| s.as_str()).collect();
                PublicError::new(
                    K::Forbidden,
                    "insufficient_scope",
                    format!("This credential lacks the scope(s): {}.", names.join(" ")),
                )
            }
            Error::NotFound(what) => {
                PublicError::new(K::NotFound, "not_found", format!("No such {what}."))
            }
            Error::Conflict { code, message } => {
                let p = PublicError::new(K::Conflict, code, message.clone());
                if *code == crate::service::idempotency::IN_PROGRESS {
                    p.retry_after(IN_PROGRESS_RETRY_AFTER_SECS)
                } else {
                    p
                }
            }
            Error::PreconditionFailed(message) => {
                PublicError::new(K::PreconditionFailed, "version_mismatch", message.clone())
            }
            Error::RateLimited {
                kind,
                retry_after_secs,
            } => PublicError::new(
                K::RateLimited,
                "rate_limited",
                format!("Too many requests for this {kind}; retry in {retry_after_secs} s."),
            )
            .retry_after(*retry_after_secs),
            Error::SearchTimeout { budget_ms } => PublicError::new(
                K::Unavailable,
                "search_timeout",
                format!(
                    "The search did not finish within its time budget of {budget_ms} ms; use fewer or more specific words, or retry shortly."
                ),
            )
            .retry_after(SEARCH_RETRY_AFTER_SECS),
            Error::RegistrationClosed => PublicError::new(
                K::Forbidden,
                "registration_closed",
                "Registration is closed on this server; ask its operator for an account.",
            ),
            Error::PayloadTooLarge { limit } => PublicError::new(
                K::TooLarge,
                "payload_too_large",
                format!("The request body exceeds {limit} bytes."),
            )
            .field("body"),
            Error::Upstream { code, message } => PublicError::new(K::Upstream, code, message.clone()),
            e if e.is_unavailable() => PublicError::new(
                K::Unavailable,
                "database_unavailable",
                "The database is unreachable; retry shortly.",
            ),
            Error::Database(_) | Error::Unexpected { .. } => PublicError::new(
                K::Internal,
                "internal_error",
                "An unexpected error occurred; it has been logged with this request id.",
            ),
        }
    }

    /// Log what the client is not told: an outage or an unexpected failure,
    /// with the source chain and the request id. Errors that are the
    /// client's (a bad field, a missing credential) are not logged here.
    pub fn log(&self) {
        match self.public().kind {
            ErrorKind::Unavailable if self.is_unavailable() => tracing::error!(
                request_id = %context::request_id(),
                error = %chain(self),
                "database unavailable"
            ),
            ErrorKind::Internal => tracing::error!(
                request_id = %context::request_id(),
                error = %chain(self),
                "internal error"
            ),
            _ => {}
        }
    }

    /// [`Error::log`], then [`Error::public`]: what an edge calls.
    pub fn into_public(self) -> PublicError {
        self.log();
        self.public()
    }

    /// True when the database could not be reached at all (as opposed to a
    /// query failing): the edge answers 503 and the caller may retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Database(e) => db_unavailable(e),
            _ => false,
        }
    }
}

fn db_unavailable(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            matches!(
                inner.as_ref(),
                sea_orm::sqlx::Error::Io(_)
                    | sea_orm::sqlx::Error::PoolTimedOut
                    | sea_orm::sqlx::Error::PoolClosed
                    | sea_orm::sqlx::Error::WorkerCrashed
            )
        }
        _ => false,
    }
}

/// An error and its causes, `outer: inner: innermost`; a cause whose text
/// its parent already ends with is not repeated.
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_in_the_chain_not_in_the_public_face() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::caused_by("writing the key file", io);
        assert_eq!(chain(&e), "writing the key file: disk on fire");
        let p = e.public();
        assert_eq!((p.kind, p.code), (ErrorKind::Internal, "internal_error"));
        assert!(!p.message.contains("disk"), "{}", p.message);
        let db = Error::Database(DbErr::Custom("no such table".into()));
        assert_eq!(chain(&db), "database error: Custom Error: no such table");
    }

    #[test]
    fn outages_and_limits_keep_their_meaning_everywhere() {
        let down = Error::Database(DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout,
        ));
        let p = down.public();
        assert_eq!(
            (p.kind, p.code),
            (ErrorKind::Unavailable, "database_unavailable")
        );
        assert_eq!(p.oauth_code(), Some(OAuthCode::TemporarilyUnavailable));
        let limited = Error::RateLimited {
            kind: "IP",
            retry_after_secs: 7,
        }
        .public();
        assert_eq!(
            (limited.kind, limited.retry_after, limited.oauth_code()),
            (ErrorKind::RateLimited, Some(7), Some(OAuthCode::SlowDown))
        );
        let field = Error::validation("title", "is required").public();
        assert_eq!(
            (field.code, field.field.as_deref(), field.oauth_code()),
            (
                "validation_failed",
                Some("title"),
                Some(OAuthCode::InvalidRequest)
            )
        );
    }
}
