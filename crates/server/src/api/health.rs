//! Liveness and readiness probes (public).

use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};

use super::{
    error::{ApiError, ApiResult},
    ApiTags,
};
use crate::{error::Error, state::AppState};

pub struct HealthApi;

/// Probe result.
#[derive(Debug, Object)]
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
    async fn live(&self) -> ApiResult<HealthResponse> {
        Ok(ok())
    }

    /// Readiness: the database answers. 503 while it does not.
    #[oai(
        path = "/readyz",
        method = "get",
        operation_id = "health_ready",
        tag = "ApiTags::Health"
    )]
    async fn ready(&self, state: poem::web::Data<&AppState>) -> ApiResult<HealthResponse> {
        state.db.ping().await.map_err(|e| {
            let e = Error::Database(e);
            if e.is_unavailable() {
                ApiError::from(e)
            } else {
                // Any failure to ping means not ready, whatever its kind.
                ApiError::from(Error::Database(sea_orm::DbErr::Conn(
                    sea_orm::RuntimeErr::Internal(e.to_string()),
                )))
            }
        })?;
        Ok(ok())
    }
}
