//! Liveness and readiness probes (public).

use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};

use super::{
    error::{ApiError, ErrorBody},
    ApiTags,
};
use crate::{service::health, state::AppState};

pub struct HealthApi;

/// Probe result.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// Server version.
    pub version: String,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The probe passed.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

/// The only ways a probe fails.
#[derive(Debug, ApiResponse)]
pub enum ProbeError {
    /// An unexpected error; details are in the server log under the request id.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database is unreachable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
    /// The per-IP limit, which covers every route, was exceeded;
    /// `Retry-After` says when to try again (seconds).
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}

impl From<ApiError> for ProbeError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unavailable(body, _) => ProbeError::Unavailable(body),
            ApiError::TooManyRequests(body, after) => ProbeError::TooManyRequests(body, after),
            ApiError::BadRequest(body)
            | ApiError::Unauthorized(body, _)
            | ApiError::Forbidden(body)
            | ApiError::NotFound(body)
            | ApiError::Conflict(body, _)
            | ApiError::PreconditionFailed(body)
            | ApiError::PayloadTooLarge(body)
            | ApiError::UnsupportedMediaType(body)
            | ApiError::BadGateway(body)
            | ApiError::Internal(body) => ProbeError::Internal(body),
        }
    }
}

fn ok() -> HealthResponse {
    HealthResponse::Ok(Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

#[OpenApi]
impl HealthApi {
    /// Liveness: the process is up and serving.
    #[oai(
        path = "/healthz",
        method = "get",
        operation_id = "health_live",
        tag = "ApiTags::Health"
    )]
    async fn live(&self) -> Result<HealthResponse, ProbeError> {
        Ok(ok())
    }

    /// Readiness: the database answers. 503 while it does not.
    #[oai(
        path = "/readyz",
        method = "get",
        operation_id = "health_ready",
        tag = "ApiTags::Health"
    )]
    async fn ready(&self, state: poem::web::Data<&AppState>) -> Result<HealthResponse, ProbeError> {
        health::ready(&state)
            .await
            .map_err(|e| ProbeError::from(ApiError::from(e)))?;
        Ok(ok())
    }
}
