//! Registration and the caller's own account.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{param::Header, payload::Json, ApiResponse, Object, OpenApi};
use secrecy::SecretString;

use super::{
    auth::{Auth, OAuthScope},
    body::JsonBody,
    error::ApiResult,
    idempotency::{self as idempotent, StoredJson},
    ApiTags,
};
use crate::{
    scope::Scope,
    service::{accounts, sessions},
    state::AppState,
    token,
};

pub struct UsersApi;

/// A new account. Every field is optional: an account can live on API keys
/// alone. `email` is unique; `password` (needs
/// `email`) is for the web login.
#[derive(Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Display name.
    pub name: Option<String>,
    /// Email address, unique per server (stored lower-cased).
    pub email: Option<String>,
    /// Password for the web login, at most 72 bytes of UTF-8; stored with
    /// bcrypt.
    pub password: Option<String>,
}

/// The new account and its first API key. The key is shown only here.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Registered {
    pub user_id: String,
    pub key_id: String,
    /// The full API key. Store it now: it cannot be shown again.
    pub api_key: String,
    pub scopes: Vec<String>,
    pub message: String,
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// Account created.
    #[oai(status = 201)]
    Created(Json<Registered>),
}

/// The credential a request was made with (never its secret).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CredentialInfo {
    /// `api_key` or `access_token`.
    pub kind: String,
    /// The credential's public id.
    pub id: String,
    pub scopes: Vec<String>,
}

/// The caller's account.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Me {
    pub user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub credential: CredentialInfo,
}

#[derive(ApiResponse)]
pub enum MeResponse {
    /// The caller's account and credential.
    #[oai(status = 200)]
    Ok(Json<Me>),
}

/// Set or change the password of the web login.
#[derive(Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// The new password; at most 72 bytes of UTF-8.
    pub password: String,
    /// The current password; required when the account already has one.
    pub current_password: Option<String>,
    /// The email to log in with; only for an account that has none yet.
    pub email: Option<String>,
}

/// The password was set.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PasswordSet {
    pub updated_at: DateTime<Utc>,
    pub message: String,
}

#[derive(ApiResponse)]
pub enum PasswordResponse {
    /// Password set; every web session of the account was ended.
    #[oai(status = 200)]
    Ok(StoredJson<PasswordSet>),
}

#[OpenApi(prefix_path = "/api/v1/users")]
impl UsersApi {
    /// Create an account and its first API key (holding every scope).
    ///
    /// Public; answers 403 `registration_closed` when the operator closed
    /// registration and 409 `email_taken` when the email is in use.
    #[oai(
        path = "/register",
        method = "post",
        operation_id = "user_register",
        tag = "ApiTags::Users"
    )]
    async fn register(
        &self,
        state: Data<&AppState>,
        request: &poem::Request,
        body: JsonBody<RegisterRequest>,
    ) -> ApiResult<RegisterResponse> {
        let req = body.0;
        let registered = accounts::register(
            &state,
            accounts::RegisterInput {
                client_ip: crate::http::client_ip(request),
                name: req.name,
                email: req.email,
                password: req.password.map(SecretString::from),
            },
        )
        .await?;
        let key = registered.key;
        Ok(RegisterResponse::Created(Json(Registered {
            user_id: registered.user_id.to_string(),
            key_id: key.info.id,
            api_key: token::reveal(&key.key),
            scopes: key.info.scopes.names(),
            message: "Account created. This API key is shown only once: store it now.".into(),
        })))
    }

    /// Set the password of the web login (scope `keys:write`), so a key-only
    /// account can sign in to approve OAuth clients. Changing an existing
    /// password needs `current_password`; every web session then ends.
    #[oai(
        path = "/me/password",
        method = "put",
        operation_id = "user_set_password",
        tag = "ApiTags::Users"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn set_password(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::KeysWrite")] auth: Auth,
        request: &poem::Request,
        /// Makes the request safe to retry: the same key with the same body
        /// within 24 h returns the first response and changes nothing more
        /// (the body is fingerprinted with a keyed hash, never stored).
        /// Printable ASCII.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<SetPasswordRequest>,
    ) -> ApiResult<PasswordResponse> {
        let req = body.0;
        let fingerprint = serde_json::json!({
            "password": req.password,
            "current_password": req.current_password,
            "email": req.email,
        });
        let set = idempotent::run(
            &state,
            &auth,
            Scope::KeysWrite,
            &idempotency_key,
            request,
            &fingerprint,
            200,
            async {
                let updated_at = sessions::set_password(
                    &state,
                    &auth.0,
                    req.email,
                    req.current_password.map(SecretString::from),
                    SecretString::from(req.password),
                )
                .await?;
                Ok(PasswordSet {
                    updated_at,
                    message: "Password set. Sign in at /login.".into(),
                })
            },
        )
        .await?;
        Ok(PasswordResponse::Ok(set))
    }

    /// The caller's account and the credential used for this request.
    #[oai(
        path = "/me",
        method = "get",
        operation_id = "user_me",
        tag = "ApiTags::Users"
    )]
    async fn me(&self, state: Data<&AppState>, auth: Auth) -> ApiResult<MeResponse> {
        let me = accounts::me(&state, &auth.0).await?;
        Ok(MeResponse::Ok(Json(Me {
            user_id: me.user_id.to_string(),
            name: me.name,
            email: me.email,
            created_at: me.created_at,
            credential: CredentialInfo {
                kind: me.credential.kind.as_str().into(),
                id: me.credential.id,
                scopes: me.credential.scopes.names(),
            },
        })))
    }
}
