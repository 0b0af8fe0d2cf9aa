//! Connections to third-party providers: list, start, status, token, delete.
//! (The provider's redirect, `GET /api/v1/connect/{provider}/callback`, is a
//! browser page served by `web::connect`.)

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    param::{Header, Path},
    payload::Json,
    ApiResponse, Object, OpenApi,
};

use super::{
    auth::{Auth, OAuthScope},
    body::OptionalJsonBody,
    error::ApiResult,
    idempotency::{self as idempotent, StoredJson},
    ApiTags,
};
use crate::{
    scope::Scope,
    service::connect::{self, ConnectionStatus},
    state::AppState,
};

pub struct ConnectApi;

// Also the output of the MCP tool `connections_list` (serde and schemars
// derives; absent values omitted, as REST omits them).
/// A provider and the caller's connection to it.
#[derive(Object, serde::Serialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProviderInfo {
    /// The name in routes.
    pub name: String,
    pub display_name: String,
    /// False when the server has no client credentials for it.
    pub available: bool,
    pub connected: bool,
    /// The connection's status; absent when not connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ConnectionStatus>,
}

#[derive(Object, serde::Serialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProviderList {
    pub providers: Vec<ProviderInfo>,
}

impl From<Vec<connect::ProviderView>> for ProviderList {
    fn from(list: Vec<connect::ProviderView>) -> Self {
        ProviderList {
            providers: list
                .into_iter()
                .map(|p| ProviderInfo {
                    name: p.name,
                    display_name: p.display_name,
                    available: p.available,
                    connected: p.connected,
                    status: p.status,
                })
                .collect(),
        }
    }
}

#[derive(ApiResponse)]
pub enum ProviderListResponse {
    /// Every configured provider.
    #[oai(status = 200)]
    Ok(Json<ProviderList>),
}

/// Start a connection flow.
#[derive(Object, serde::Deserialize, Default)]
#[oai(skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Where to send the browser when the flow completes; must be on the
    /// server's allow-list. Without it, the callback shows a result page.
    pub return_to: Option<String>,
}

/// Open `authorization_url` in the user's browser.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StartedFlow {
    pub authorization_url: String,
    /// The flow's state (also inside the URL); single use.
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum StartResponse {
    /// The flow is ready.
    #[oai(status = 200)]
    Ok(StoredJson<StartedFlow>),
}

/// The caller's connection to a provider. Never contains a token.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ConnectionInfo {
    pub provider: String,
    pub connected: bool,
    pub status: ConnectionStatus,
    pub external_account_id: Option<String>,
    pub scopes: Vec<String>,
    pub connected_at: DateTime<Utc>,
    /// When the current access token expires, if the provider said.
    pub expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// The provider's error from the last failed refresh.
    pub last_error: Option<String>,
}

#[derive(ApiResponse)]
pub enum ConnectionResponse {
    /// The connection.
    #[oai(status = 200)]
    Ok(Json<ConnectionInfo>),
}

/// A valid upstream access token.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UpstreamToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
}

#[derive(ApiResponse)]
pub enum UpstreamTokenResponse {
    /// A token valid for at least 5 more minutes (or without a known expiry).
    #[oai(status = 200)]
    Ok(Json<UpstreamToken>),
}

#[derive(ApiResponse)]
pub enum DisconnectedResponse {
    /// Disconnected.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(prefix_path = "/api/v1/connect")]
impl ConnectApi {
    /// List the configured providers and whether the caller is connected (scope `connections:read`).
    #[oai(
        path = "/providers",
        method = "get",
        operation_id = "connect_providers",
        tag = "ApiTags::Connect"
    )]
    async fn providers(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::ConnectionsRead")] auth: Auth,
    ) -> ApiResult<ProviderListResponse> {
        let list = connect::providers(&state, &auth.0).await?;
        Ok(ProviderListResponse::Ok(Json(list.into())))
    }

    /// Start connecting a provider (scope `connections:write`): returns the
    /// URL to open in the browser. The state is single use and expires in
    /// 10 minutes; PKCE is used toward providers that support it.
    #[oai(
        path = "/:provider/start",
        method = "post",
        operation_id = "connect_start",
        tag = "ApiTags::Connect"
    )]
    async fn start(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::ConnectionsWrite")] auth: Auth,
        provider: Path<String>,
        request: &poem::Request,
        /// Makes the request safe to retry: the same key with the same body
        /// within 24 h returns the first flow and starts no other.
        /// Printable ASCII.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        /// Optional: no body means `{}`.
        body: OptionalJsonBody<StartRequest>,
    ) -> ApiResult<StartResponse> {
        let return_to = body.0.return_to.clone();
        let started = idempotent::run(
            &state,
            &auth,
            Scope::ConnectionsWrite,
            &idempotency_key,
            request,
            &body.0,
            200,
            async {
                let started = connect::start(&state, &auth.0, &provider, return_to).await?;
                Ok(StartedFlow {
                    authorization_url: started.authorization_url,
                    state: started.state,
                    expires_at: started.expires_at,
                })
            },
        )
        .await?;
        Ok(StartResponse::Ok(started))
    }

    /// The caller's connection to a provider (scope `connections:read`); 404 when not connected.
    #[oai(
        path = "/:provider",
        method = "get",
        operation_id = "connect_status",
        tag = "ApiTags::Connect"
    )]
    async fn status(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::ConnectionsRead")] auth: Auth,
        provider: Path<String>,
    ) -> ApiResult<ConnectionResponse> {
        let c = connect::get(&state, &auth.0, &provider).await?;
        Ok(ConnectionResponse::Ok(Json(ConnectionInfo {
            provider: c.provider,
            connected: true,
            status: c.status,
            external_account_id: c.external_account_id,
            scopes: c.scopes,
            connected_at: c.connected_at,
            expires_at: c.expires_at,
            last_refreshed_at: c.last_refreshed_at,
            last_error: c.last_error,
        })))
    }

    /// A valid access token for the caller's connection (scope
    /// `connections:token`), refreshed first when it expires within 5
    /// minutes. 404 when not connected; 502 when the provider refuses or
    /// fails (`reauthorization_required`, `upstream_refresh_failed`).
    #[oai(
        path = "/:provider/token",
        method = "get",
        operation_id = "connect_token",
        tag = "ApiTags::Connect"
    )]
    async fn token(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::ConnectionsToken")] auth: Auth,
        provider: Path<String>,
    ) -> ApiResult<UpstreamTokenResponse> {
        let t = connect::token(&state, &auth.0, &provider).await?;
        Ok(UpstreamTokenResponse::Ok(Json(UpstreamToken {
            access_token: secrecy::ExposeSecret::expose_secret(&t.access_token).to_owned(),
            token_type: t.token_type,
            expires_at: t.expires_at,
            scopes: t.scopes,
        })))
    }

    /// Disconnect (scope `connections:write`): revokes at the provider when
    /// it supports RFC 7009, deletes locally either way. 404 when not connected.
    #[oai(
        path = "/:provider",
        method = "delete",
        operation_id = "connect_delete",
        tag = "ApiTags::Connect"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::ConnectionsWrite")] auth: Auth,
        provider: Path<String>,
    ) -> ApiResult<DisconnectedResponse> {
        connect::delete(&state, &auth.0, &provider).await?;
        Ok(DisconnectedResponse::NoContent)
    }
}
