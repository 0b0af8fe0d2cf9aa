//! The one place where errors become HTTP.
//!
//! Every error an operation can return is an [`ApiError`]: one status per
//! variant, all sharing the JSON body [`ErrorBody`]
//! (`{error, message, request_id, field?}`). Internal detail goes to the log
//! with the request id; the client gets a code and a sentence.

use poem_openapi::{payload::Json, ApiResponse, Object};

use crate::{
    error::{CredentialProblem, Error},
    context,
    service::idempotency,
};

/// Every error response of the REST API.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "Error", skip_serializing_if_is_none)]
pub struct ErrorBody {
    /// Machine-readable snake_case code, e.g. `invalid_api_key`.
    pub error: String,
    /// A sentence for humans.
    pub message: String,
    /// The id of the request, also in the `X-Request-Id` header and the logs.
    pub request_id: String,
    /// The request field at fault, for validation errors.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorBody {
    pub fn new(error: &str, message: impl Into<String>) -> Self {
        Self {
            error: error.to_owned(),
            message: message.into(),
            request_id: context::request_id(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// `Retry-After` of a search that ran past its budget (seconds).
const SEARCH_RETRY_AFTER_SECS: u64 = 1;

/// The `WWW-Authenticate` challenge of a 401 from the REST API.
pub const API_CHALLENGE: &str = "Bearer realm=\"mcpgate\"";

#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed or a field is invalid (`field` names it).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No credentials, or credentials that are malformed, unknown, revoked or expired.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// Valid credentials without the required scope, or an action the server forbids.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource, or it belongs to another account.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state (e.g. email already registered).
    /// `Retry-After` (seconds) is set when retrying the same request will
    /// help, e.g. `idempotency_key_in_progress`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>, #[oai(header = "Retry-After")] Option<u64>),
    /// `If-Match` names a version that is no longer current.
    #[oai(status = 412)]
    PreconditionFailed(Json<ErrorBody>),
    /// The request body exceeds the configured limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The request body is not JSON.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// A rate limit was exceeded; `Retry-After` says when to try again (seconds).
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// An unexpected error; details are in the server log under the request id.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A third-party provider failed or refused (connections); the message says what to do.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// The database is unreachable, or a search ran past its time budget;
    /// retry later (`Retry-After`, seconds, when known).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] Option<u64>),
}

impl ApiError {
    pub fn bad_request(code: &str, message: impl Into<String>, field: Option<String>) -> Self {
        let mut body = ErrorBody::new(code, message);
        body.field = field;
        ApiError::BadRequest(Json(body))
    }

    pub fn unauthorized(code: &str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized(Json(ErrorBody::new(code, message)), API_CHALLENGE.into())
    }

    /// The status and body, for the pages, which render the same code and
    /// sentence as HTML instead of JSON.
    pub fn parts(&self) -> (poem::http::StatusCode, &ErrorBody) {
        use poem::http::StatusCode as S;
        match self {
            ApiError::BadRequest(b) => (S::BAD_REQUEST, &b.0),
            ApiError::Unauthorized(b, _) => (S::UNAUTHORIZED, &b.0),
            ApiError::Forbidden(b) => (S::FORBIDDEN, &b.0),
            ApiError::NotFound(b) => (S::NOT_FOUND, &b.0),
            ApiError::Conflict(b, _) => (S::CONFLICT, &b.0),
            ApiError::PreconditionFailed(b) => (S::PRECONDITION_FAILED, &b.0),
            ApiError::PayloadTooLarge(b) => (S::PAYLOAD_TOO_LARGE, &b.0),
            ApiError::UnsupportedMediaType(b) => (S::UNSUPPORTED_MEDIA_TYPE, &b.0),
            ApiError::TooManyRequests(b, _) => (S::TOO_MANY_REQUESTS, &b.0),
            ApiError::Internal(b) => (S::INTERNAL_SERVER_ERROR, &b.0),
            ApiError::BadGateway(b) => (S::BAD_GATEWAY, &b.0),
            ApiError::Unavailable(b, _) => (S::SERVICE_UNAVAILABLE, &b.0),
        }
    }

    /// As a `poem::Error`, for extractors that must fail with our body.
    pub fn into_poem(self) -> poem::Error {
        use poem::IntoResponse;
        poem::Error::from_response(self.into_response())
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Validation { field, message } => ApiError::BadRequest(Json(
                ErrorBody::new("validation_failed", format!("{field} {message}")).with_field(field),
            )),
            Error::MissingCredentials => ApiError::unauthorized(
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
                    CredentialProblem::Unknown => ("invalid_api_key", "The API key is not valid."),
                    CredentialProblem::Revoked => ("api_key_revoked", "The API key has been revoked."),
                    CredentialProblem::Expired => ("api_key_expired", "The API key has expired."),
                    CredentialProblem::WrongAudience => ("invalid_api_key", "The API key is not valid."),
                };
                ApiError::unauthorized(code, message)
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
                ApiError::Unauthorized(
                    Json(ErrorBody::new(code, message)),
                    format!("{API_CHALLENGE}, error=\"invalid_token\""),
                )
            }
            Error::InsufficientScope { required } => {
                let names: Vec<_> = required.iter().map(|s| s.as_str()).collect();
                ApiError::Forbidden(Json(ErrorBody::new(
                    "insufficient_scope",
                    format!("This credential lacks the scope(s): {}.", names.join(" ")),
                )))
            }
            Error::NotFound(what) => ApiError::NotFound(Json(ErrorBody::new(
                "not_found",
                format!("No such {what}."),
            ))),
            Error::Conflict { code, message } => {
                let retry_after = (code == idempotency::IN_PROGRESS).then_some(1);
                ApiError::Conflict(Json(ErrorBody::new(code, message)), retry_after)
            }
            Error::PreconditionFailed(message) => {
                ApiError::PreconditionFailed(Json(ErrorBody::new("version_mismatch", message)))
            }
            Error::RateLimited {
                kind,
                retry_after_secs,
            } => ApiError::TooManyRequests(
                Json(ErrorBody::new(
                    "rate_limited",
                    format!("Too many requests for this {kind}; retry in {retry_after_secs} s."),
                )),
                retry_after_secs,
            ),
            Error::SearchTimeout { budget_ms } => ApiError::Unavailable(
                Json(ErrorBody::new(
                    "search_timeout",
                    format!(
                        "The search did not finish within its time budget of {budget_ms} ms; use fewer or more specific words, or retry shortly."
                    ),
                )),
                Some(SEARCH_RETRY_AFTER_SECS),
            ),
            Error::RegistrationClosed => ApiError::Forbidden(Json(ErrorBody::new(
                "registration_closed",
                "Registration is closed on this server; ask its operator for an account.",
            ))),
            Error::PayloadTooLarge { limit } => ApiError::PayloadTooLarge(Json(
                ErrorBody::new(
                    "payload_too_large",
                    format!("The request body exceeds {limit} bytes."),
                )
                .with_field("body"),
            )),
            Error::Upstream { code, message } => {
                ApiError::BadGateway(Json(ErrorBody::new(code, message)))
            }
            e @ Error::Database(_) if e.is_unavailable() => {
                tracing::error!(request_id = %context::request_id(), error = %e, "database unavailable");
                ApiError::Unavailable(
                    Json(ErrorBody::new(
                        "database_unavailable",
                        "The database is unreachable; retry shortly.",
                    )),
                    None,
                )
            }
            e @ (Error::Database(_) | Error::Internal(_)) => {
                tracing::error!(request_id = %context::request_id(), error = %e, "internal error");
                ApiError::Internal(Json(ErrorBody::new(
                    "internal_error",
                    "An unexpected error occurred; it has been logged with this request id.",
                )))
            }
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
