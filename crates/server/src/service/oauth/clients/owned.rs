//! The clients a user owns (registered with one of their API keys).

use super::{Client, MAX_METADATA_URL_LEN};
use crate::{state::AppState, store};

/// The OAuth clients the caller owns (registered with one of their API keys
/// for `client_credentials`), newest first.
pub async fn owned(
    state: &AppState,
    principal: &crate::service::auth::Principal,
) -> crate::error::Result<Vec<Client>> {
    principal.require(crate::scope::Scope::KeysRead)?;
    store::oauth::clients_of_owner(&state.db, principal.user_id)
        .await?
        .into_iter()
        .map(Client::from_row)
        .collect()
}

/// One client the caller owns; another account's, or an unowned one, is 404.
pub async fn get_owned(
    state: &AppState,
    principal: &crate::service::auth::Principal,
    client_id: &str,
) -> crate::error::Result<Client> {
    principal.require(crate::scope::Scope::KeysRead)?;
    if client_id.len() > MAX_METADATA_URL_LEN {
        return Err(crate::error::Error::NotFound("client"));
    }
    let row = store::oauth::find_client(&state.db, client_id)
        .await?
        .filter(|c| c.owner_user_id == Some(principal.user_id))
        .ok_or(crate::error::Error::NotFound("client"))?;
    Client::from_row(row)
}

/// Delete a client the caller owns; its grants and tokens go with it (the
/// schema cascades). Another account's client, or an unowned one, is 404.
pub async fn delete_owned(
    state: &AppState,
    principal: &crate::service::auth::Principal,
    client_id: &str,
) -> crate::error::Result<()> {
    use crate::service::audit;
    principal.require(crate::scope::Scope::KeysWrite)?;
    if client_id.len() > MAX_METADATA_URL_LEN {
        return Err(crate::error::Error::NotFound("client"));
    }
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let deleted = store::oauth::delete_owned_client(&txn, principal.user_id, client_id).await?;
    if deleted == 0 {
        return Err(crate::error::Error::NotFound("client"));
    }
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: principal.user_id,
            action: audit::AuditAction::OAuthClientDeleted,
            credential_id: Some(&principal.credential.id),
            target: Some(client_id),
            details: serde_json::json!({ "client_id": client_id }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
