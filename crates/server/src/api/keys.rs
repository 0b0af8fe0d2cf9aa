//! API keys under the caller's own account.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    param::{Header, Path},
    payload::Json,
    ApiResponse, Object, OpenApi,
};

use super::{
    auth::{Auth, OAuthScope},
    body::JsonBody,
    error::ApiResult,
    idempotency::{self as idempotent, StoredJson},
    ApiTags,
};
use crate::{
    scope::Scope,
    service::keys::{self, CreatedKey, KeyInfo},
    state::AppState,
    token,
};

pub struct KeysApi;

/// A new key for the caller.
#[derive(Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// What the key is for.
    pub name: String,
    /// Scopes for the key; default: the scopes of the credential creating it.
    /// Must be a subset of them (403 `insufficient_scope` otherwise).
    pub scopes: Option<Vec<String>>,
    /// Lifetime in days; default: no expiry.
    pub expires_in_days: Option<i64>,
}

/// A new secret for an existing key.
#[derive(Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// Seconds the old secret stays valid; default 0 (invalid at once).
    pub grace_seconds: Option<i64>,
}

/// An API key as listed. Never contains the secret.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyInfo {
    pub key_id: String,
    pub name: String,
    /// The key's visible start, `mcpg_<key_id>`.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub usage_count: u64,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key with its full secret, shown only in this response.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyCreated {
    pub key_id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The full API key. Store it now: it cannot be shown again.
    pub api_key: String,
}

/// Every key of the caller, newest first.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiKeyList {
    pub keys: Vec<ApiKeyInfo>,
}

#[derive(ApiResponse)]
pub enum CreatedKeyResponse {
    /// The key, with its secret shown once.
    #[oai(status = 201)]
    Created(StoredJson<ApiKeyCreated>),
}

#[derive(ApiResponse)]
pub enum RotatedKeyResponse {
    /// The key's new secret, shown once.
    #[oai(status = 200)]
    Ok(StoredJson<ApiKeyCreated>),
}

#[derive(ApiResponse)]
pub enum KeyListResponse {
    /// The caller's keys.
    #[oai(status = 200)]
    Ok(Json<ApiKeyList>),
}

#[derive(ApiResponse)]
pub enum RevokedResponse {
    /// Revoked; effective on the next request.
    #[oai(status = 204)]
    NoContent,
}

fn listed(k: KeyInfo) -> ApiKeyInfo {
    ApiKeyInfo {
        scopes: k.scopes.names(),
        key_id: k.id,
        name: k.name,
        prefix: k.prefix,
        created_at: k.created_at,
        last_used_at: k.last_used_at,
        usage_count: k.usage_count,
        expires_at: k.expires_at,
        revoked_at: k.revoked_at,
    }
}

fn created(k: CreatedKey) -> ApiKeyCreated {
    ApiKeyCreated {
        api_key: token::reveal(&k.key),
        scopes: k.info.scopes.names(),
        key_id: k.info.id,
        name: k.info.name,
        prefix: k.info.prefix,
        created_at: k.info.created_at,
        expires_at: k.info.expires_at,
    }
}

#[OpenApi(prefix_path = "/api/v1")]
impl KeysApi {
    /// Create an API key (scope `keys:write`).
    #[oai(
        path = "/keys",
        method = "post",
        operation_id = "key_create",
        tag = "ApiTags::Keys"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysWrite")] auth: Auth,
        request: &poem::Request,
        /// Makes the request safe to retry: the same key with the same body
        /// within 24 h returns the first response (the same secret) and
        /// changes nothing more. Printable ASCII.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<CreateKeyRequest>,
    ) -> ApiResult<CreatedKeyResponse> {
        let req = body.0;
        let input = keys::CreateInput {
            name: req.name.clone(),
            scopes: req.scopes.clone(),
            expires_in_days: req.expires_in_days,
        };
        let key = idempotent::run(
            &state,
            &auth,
            Scope::KeysWrite,
            &idempotency_key,
            request,
            &req,
            201,
            async { keys::create(&state, &auth.0, input).await.map(created) },
        )
        .await?;
        Ok(CreatedKeyResponse::Created(key))
    }

    /// List the caller's API keys (scope `keys:read`).
    #[oai(
        path = "/keys",
        method = "get",
        operation_id = "key_list",
        tag = "ApiTags::Keys"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysRead")] auth: Auth,
    ) -> ApiResult<KeyListResponse> {
        let keys = keys::list(&state, &auth.0).await?;
        Ok(KeyListResponse::Ok(Json(ApiKeyList {
            keys: keys.into_iter().map(listed).collect(),
        })))
    }

    /// Revoke one of the caller's keys (scope `keys:write`). Effective on the
    /// very next request. Another account's key answers 404.
    #[oai(
        path = "/keys/:key_id",
        method = "delete",
        operation_id = "key_revoke",
        tag = "ApiTags::Keys"
    )]
    async fn revoke(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysWrite")] auth: Auth,
        key_id: Path<String>,
    ) -> ApiResult<RevokedResponse> {
        keys::revoke(&state, &auth.0, &key_id).await?;
        Ok(RevokedResponse::NoContent)
    }

    /// Give one of the caller's keys a new secret (scope `keys:write`). The
    /// old secret is accepted until `grace_seconds` have passed.
    #[oai(
        path = "/keys/:key_id/rotate",
        method = "post",
        operation_id = "key_rotate",
        tag = "ApiTags::Keys"
    )]
    async fn rotate(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysWrite")] auth: Auth,
        key_id: Path<String>,
        request: &poem::Request,
        /// Makes the request safe to retry: the same key with the same body
        /// within 24 h returns the first response (the same secret) and
        /// changes nothing more. Printable ASCII.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<RotateKeyRequest>,
    ) -> ApiResult<RotatedKeyResponse> {
        let grace = body.0.grace_seconds;
        let key = idempotent::run(
            &state,
            &auth,
            Scope::KeysWrite,
            &idempotency_key,
            request,
            &body.0,
            200,
            async {
                keys::rotate(&state, &auth.0, &key_id, grace)
                    .await
                    .map(created)
            },
        )
        .await?;
        Ok(RotatedKeyResponse::Ok(key))
    }
}
