//! Errors as HTTP: the status of each [`ErrorKind`] ([`status`], which the
//! pages use too) and the REST API's JSON body.
//!
//! Every error an operation can return is an [`ApiError`]: one status per
//! variant, all sharing the JSON body [`ErrorBody`]
//! (`{error, message, request_id, field?}`) filled from the domain error's
//! public rendering ([`Error::public`]). Internal detail goes to the log
//! with the request id; the client gets a code and a sentence.

use poem::http::StatusCode;
use poem_openapi::{payload::Json, ApiResponse, Object};

use crate::{
    context,
    error::{Error, ErrorKind, PublicError},
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
        ApiError::from(e.into_public())
    }
}

/// The status of each kind of error, on every HTTP face (REST and pages).
pub fn status(kind: ErrorKind) -> StatusCode {
    use ErrorKind as K;
    match kind {
        K::Invalid => StatusCode::BAD_REQUEST,
        K::Unauthenticated | K::InvalidToken => StatusCode::UNAUTHORIZED,
        K::Forbidden => StatusCode::FORBIDDEN,
        K::NotFound => StatusCode::NOT_FOUND,
        K::Conflict => StatusCode::CONFLICT,
        K::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        K::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        K::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        K::Upstream => StatusCode::BAD_GATEWAY,
        K::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        K::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<PublicError> for ApiError {
    fn from(p: PublicError) -> Self {
        use ErrorKind as K;
        let body = Json(ErrorBody {
            error: p.code.to_owned(),
            message: p.message,
            request_id: context::request_id(),
            field: p.field,
        });
        match p.kind {
            K::Invalid => ApiError::BadRequest(body),
            K::Unauthenticated => ApiError::Unauthorized(body, API_CHALLENGE.into()),
            K::InvalidToken => {
                ApiError::Unauthorized(body, format!("{API_CHALLENGE}, error=\"invalid_token\""))
            }
            K::Forbidden => ApiError::Forbidden(body),
            K::NotFound => ApiError::NotFound(body),
            K::Conflict => ApiError::Conflict(body, p.retry_after),
            K::PreconditionFailed => ApiError::PreconditionFailed(body),
            K::TooLarge => ApiError::PayloadTooLarge(body),
            K::RateLimited => ApiError::TooManyRequests(body, p.retry_after.unwrap_or(1)),
            K::Upstream => ApiError::BadGateway(body),
            K::Unavailable => ApiError::Unavailable(body, p.retry_after),
            K::Internal => ApiError::Internal(body),
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// REST answers each kind of error with the status every HTTP face uses.
    #[test]
    fn each_kind_has_one_status_everywhere() {
        use ErrorKind as K;
        for kind in [
            K::Invalid,
            K::Unauthenticated,
            K::InvalidToken,
            K::Forbidden,
            K::NotFound,
            K::Conflict,
            K::PreconditionFailed,
            K::TooLarge,
            K::RateLimited,
            K::Upstream,
            K::Unavailable,
            K::Internal,
        ] {
            let p = PublicError {
                kind,
                code: "some_code",
                message: "A sentence.".into(),
                field: None,
                retry_after: None,
            };
            assert_eq!(ApiError::from(p).parts().0, status(kind), "{kind:?}");
        }
    }
}
