//! The OAuth clients the caller owns: registered at `POST /oauth/register`
//! with one of the caller's API keys, for `client_credentials`.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{param::Path, payload::Json, ApiResponse, Object, OpenApi};

use super::{
    auth::{Auth, OAuthScope},
    error::ApiResult,
    ApiTags,
};
use crate::{
    service::oauth::clients::{self, AuthMethod, Client, GrantType},
    state::AppState,
};

pub struct ClientsApi;

/// An OAuth client the caller owns. Never contains its secret.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OwnedClient {
    pub client_id: String,
    pub client_name: String,
    /// The most its tokens can hold: at most the scopes of the key that
    /// registered it.
    pub scopes: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    /// The API key that registered it; revoking that key deletes the client.
    /// Absent for a client the operator created for the account.
    #[oai(skip_serializing_if_is_none)]
    pub registered_with_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it last obtained a token; absent if never.
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OwnedClientList {
    pub clients: Vec<OwnedClient>,
}

#[derive(ApiResponse)]
pub enum OwnedClientListResponse {
    /// The caller's clients, newest first.
    #[oai(status = 200)]
    Ok(Json<OwnedClientList>),
}

#[derive(ApiResponse)]
pub enum OwnedClientResponse {
    /// The client.
    #[oai(status = 200)]
    Ok(Json<OwnedClient>),
}

#[derive(ApiResponse)]
pub enum OwnedClientDeletedResponse {
    /// Deleted; every token it held stopped working at once.
    #[oai(status = 204)]
    NoContent,
}

fn shown(c: Client) -> OwnedClient {
    OwnedClient {
        scopes: c.scopes.names(),
        token_endpoint_auth_method: c.auth_method,
        client_id: c.id,
        client_name: c.name,
        grant_types: c.grant_types,
        redirect_uris: c.redirect_uris,
        registered_with_key: c.owner_key_id,
        created_at: c.created_at,
        last_used_at: c.last_used_at,
    }
}

#[OpenApi(prefix_path = "/api/v1")]
impl ClientsApi {
    /// List the OAuth clients the caller owns (scope `keys:read`).
    #[oai(
        path = "/clients",
        method = "get",
        operation_id = "client_list",
        tag = "ApiTags::Clients"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysRead")] auth: Auth,
    ) -> ApiResult<OwnedClientListResponse> {
        let owned = clients::owned(&state, &auth.0).await?;
        Ok(OwnedClientListResponse::Ok(Json(OwnedClientList {
            clients: owned.into_iter().map(shown).collect(),
        })))
    }

    /// One of the caller's OAuth clients (scope `keys:read`). Another
    /// account's client, or one nobody owns, answers 404.
    #[oai(
        path = "/clients/:client_id",
        method = "get",
        operation_id = "client_get",
        tag = "ApiTags::Clients"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysRead")] auth: Auth,
        client_id: Path<String>,
    ) -> ApiResult<OwnedClientResponse> {
        let c = clients::get_owned(&state, &auth.0, &client_id).await?;
        Ok(OwnedClientResponse::Ok(Json(shown(c))))
    }

    /// Delete one of the caller's OAuth clients (scope `keys:write`): every
    /// token it holds stops working at once.
    #[oai(
        path = "/clients/:client_id",
        method = "delete",
        operation_id = "client_delete",
        tag = "ApiTags::Clients"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysWrite")] auth: Auth,
        client_id: Path<String>,
    ) -> ApiResult<OwnedClientDeletedResponse> {
        clients::delete_owned(&state, &auth.0, &client_id).await?;
        Ok(OwnedClientDeletedResponse::NoContent)
    }
}
