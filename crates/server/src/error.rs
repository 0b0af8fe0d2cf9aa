//! The domain error: what went wrong, in terms of mcpgate, not HTTP.
//! `api::error` maps each variant to a status and a JSON body in one place.

use sea_orm::DbErr;

use crate::scope::Scope;

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
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            message: message.into(),
        }
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
