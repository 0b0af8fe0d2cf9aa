//! OAuth applications the caller has authorized.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{param::Path, payload::Json, ApiResponse, Object, OpenApi};

use super::{
    auth::{Auth, OAuthScope},
    error::ApiResult,
    ApiTags,
};
use crate::{service::oauth, state::AppState};

pub struct AuthorizationsApi;

/// One application with access to the caller's account.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuthorizationInfo {
    pub client_id: String,
    pub client_name: String,
    /// Registered by the server's operator (not self-registered).
    pub verified: bool,
    /// Every scope the application holds.
    pub scopes: Vec<String>,
    /// The resources its tokens are for (`<public url>/mcp`, `<public url>/api`).
    pub resources: Vec<String>,
    pub authorized_at: DateTime<Utc>,
    /// When the application last used one of its tokens or obtained one
    /// (written within `usage_flush_interval_secs`).
    pub last_used_at: DateTime<Utc>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuthorizationList {
    pub authorizations: Vec<AuthorizationInfo>,
}

#[derive(ApiResponse)]
pub enum AuthorizationListResponse {
    /// The caller's authorized applications, most recently used first.
    #[oai(status = 200)]
    Ok(Json<AuthorizationList>),
}

#[derive(ApiResponse)]
pub enum AuthorizationRevokedResponse {
    /// Every token of the application was revoked and its consent forgotten.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(prefix_path = "/api/v1")]
impl AuthorizationsApi {
    /// List the OAuth applications the caller has authorized (scope `keys:read`).
    #[oai(
        path = "/authorizations",
        method = "get",
        operation_id = "authorization_list",
        tag = "ApiTags::Authorizations"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysRead")] auth: Auth,
    ) -> ApiResult<AuthorizationListResponse> {
        let list = oauth::authorizations(&state, &auth.0).await?;
        Ok(AuthorizationListResponse::Ok(Json(AuthorizationList {
            authorizations: list
                .into_iter()
                .map(|a| AuthorizationInfo {
                    client_id: a.client_id,
                    client_name: a.client_name,
                    verified: a.verified,
                    scopes: a.scopes.names(),
                    resources: a.resources,
                    authorized_at: a.authorized_at,
                    last_used_at: a.last_used_at,
                })
                .collect(),
        })))
    }

    /// Revoke an application (scope `keys:write`): every access and refresh
    /// token it holds for the caller stops working at once, and the next
    /// authorization asks for consent again. 404 when it holds nothing.
    #[oai(
        path = "/authorizations/:client_id",
        method = "delete",
        operation_id = "authorization_revoke",
        tag = "ApiTags::Authorizations"
    )]
    async fn revoke(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysWrite")] auth: Auth,
        client_id: Path<String>,
    ) -> ApiResult<AuthorizationRevokedResponse> {
        oauth::revoke_authorization(&state, &auth.0, &client_id).await?;
        Ok(AuthorizationRevokedResponse::NoContent)
    }
}
