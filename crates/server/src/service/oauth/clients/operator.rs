//! Clients the operator manages: the docs client registered at start-up
//! and `mcpgate admin clients`.

use super::{
    joined, register, AuthMethod, Client, ClientKind, GrantType, Owner, Registered, Registration,
};
use crate::{entity::oauth_client, scope::Scopes, state::AppState, store};

/// The client id of Swagger UI at `/docs`, registered by every server at start-up.
pub const DOCS_CLIENT_ID: &str = "mcpgate-docs";

/// Register (or re-point, when the public URL changed) the public client
/// Swagger UI uses to authorize against this server.
pub async fn ensure_docs_client(state: &AppState) -> crate::error::Result<()> {
    let redirect = format!("{}/docs/oauth2-redirect.html", state.config.public_url);
    let row = oauth_client::Model {
        id: DOCS_CLIENT_ID.into(),
        secret_hash: None,
        name: "mcpgate API docs (Swagger UI)".into(),
        kind: ClientKind::Operator.as_str().into(),
        redirect_uris: serde_json::to_string(&[&redirect]).unwrap_or_else(|_| "[]".into()),
        scopes: Scopes::all().to_space_separated(),
        grant_types: joined(
            &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            " ",
        ),
        token_endpoint_auth_method: AuthMethod::None.as_str().into(),
        owner_user_id: None,
        owner_key_id: None,
        client_uri: None,
        created_at: state.clock.now(),
        last_used_at: None,
        metadata_expires_at: None,
    };
    match store::oauth::find_client(&state.db, DOCS_CLIENT_ID).await? {
        Some(existing) if existing.redirect_uris == row.redirect_uris => Ok(()),
        Some(_) => Ok(store::oauth::replace_client(&state.db, row).await?),
        None => match store::oauth::insert_client(&state.db, row).await {
            Err(e) if !store::is_unique_violation(&e) => Err(e.into()),
            _ => Ok(()),
        },
    }
}

/// Operator registration (`mcpgate admin clients create`).
pub struct OperatorClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Option<String>,
    pub confidential: bool,
    /// The account a `client_credentials` client acts for; the grant is
    /// enabled exactly when an owner is named.
    pub owner_email: Option<String>,
}

/// Register an operator's client. An owner (`--owner`) means the
/// `client_credentials` grant, so the client must be confidential.
pub async fn create_operator_client(
    state: &AppState,
    input: OperatorClient,
) -> anyhow::Result<Registered> {
    if input.owner_email.is_some() && !input.confidential {
        anyhow::bail!("--owner (client_credentials) needs --confidential");
    }
    let owner = match &input.owner_email {
        None => None,
        Some(email) => Some(
            store::users::find_by_email(&state.db, &email.trim().to_lowercase())
                .await?
                .ok_or_else(|| anyhow::anyhow!("no account has the email {email}"))?
                .id,
        )
        .map(|user_id| Owner {
            user_id,
            key_id: None,
            scopes: Scopes::all(),
        }),
    };
    let mut grant_types = Vec::new();
    if !input.redirect_uris.is_empty() {
        grant_types.push(GrantType::AuthorizationCode.as_str().to_owned());
    }
    if input.owner_email.is_some() {
        grant_types.push(GrantType::ClientCredentials.as_str().to_owned());
    }
    let reg = Registration {
        redirect_uris: input.redirect_uris,
        client_name: Some(input.name),
        token_endpoint_auth_method: Some(
            if input.confidential {
                AuthMethod::ClientSecretBasic
            } else {
                AuthMethod::None
            }
            .as_str()
            .into(),
        ),
        grant_types: Some(grant_types),
        response_types: None,
        scope: input.scopes,
        client_uri: None,
    };
    register(state, reg, ClientKind::Operator, owner)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.description))
}

pub async fn list(state: &AppState) -> anyhow::Result<Vec<Client>> {
    store::oauth::list_clients(&state.db)
        .await?
        .into_iter()
        .map(|r| Client::from_row(r).map_err(|e| anyhow::anyhow!(crate::error::chain(&e))))
        .collect()
}

pub async fn delete(state: &AppState, client_id: &str) -> anyhow::Result<bool> {
    Ok(store::oauth::delete_client(&state.db, client_id).await? == 1)
}
