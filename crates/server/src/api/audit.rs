//! The caller's own audit trail.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{param::Query, payload::Json, ApiResponse, Object, OpenApi};

use super::{
    auth::{Auth, OAuthScope},
    error::ApiResult,
    ApiTags,
};
use crate::{
    service::audit::{self, AuditAction},
    state::AppState,
};

pub struct AuditApi;

/// One security event.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub action: AuditAction,
    /// The credential that acted (its public id), when one did.
    pub credential_id: Option<String>,
    /// What was acted on, e.g. a key id.
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Event-specific details.
    pub details: serde_json::Value,
}

/// A page of events, newest first.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `cursor` for older events; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum AuditResponse {
    /// The events.
    #[oai(status = 200)]
    Ok(Json<AuditPage>),
}

/// The API shape of a recorded event.
pub fn to_api(e: audit::Recorded) -> AuditEvent {
    AuditEvent {
        at: e.at,
        action: e.action,
        credential_id: e.credential_id,
        target: e.target,
        ip: e.ip,
        user_agent: e.user_agent,
        request_id: e.request_id,
        details: e.details,
    }
}

#[OpenApi(prefix_path = "/api/v1")]
impl AuditApi {
    /// Security events of the caller's account, newest first (scope `keys:read`).
    #[oai(
        path = "/audit",
        method = "get",
        operation_id = "audit_list",
        tag = "ApiTags::Audit"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysRead")] auth: Auth,
        /// Default 50.
        limit: Query<Option<i64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<AuditResponse> {
        let page = audit::list_own(&state, &auth.0, limit.0, cursor.0.as_deref()).await?;
        Ok(AuditResponse::Ok(Json(AuditPage {
            events: page.events.into_iter().map(to_api).collect(),
            next_cursor: page.next_cursor,
        })))
    }
}
