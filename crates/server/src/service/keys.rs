//! API keys under the caller's own account: create, list, revoke, rotate.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use uuid::Uuid;

use super::{audit, auth::Principal, usage::Snapshot, validate};
use crate::{
    entity::api_key,
    error::{Error, Result},
    scope::{Scope, Scopes},
    state::AppState,
    store, token,
};

/// Longest lifetime a key can be given at creation.
pub const MAX_EXPIRES_IN_DAYS: i64 = 3650;
/// Longest grace period during which a rotated-out secret still works.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;
/// Most keys a user may hold that are not revoked.
pub const MAX_ACTIVE_KEYS: u64 = 100;

/// A key as listed: never the secret.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Scopes,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub usage_count: u64,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just created or rotated: the full key is shown this once.
#[derive(Debug)]
pub struct CreatedKey {
    pub info: KeyInfo,
    pub key: SecretString,
}

pub struct CreateInput {
    pub name: String,
    pub scopes: Option<Vec<String>>,
    pub expires_in_days: Option<i64>,
}

/// Create a key for the caller with at most the caller's scopes.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    input: CreateInput,
) -> Result<CreatedKey> {
    principal.require(Scope::KeysWrite)?;
    let name = validate::text("name", &input.name, validate::NAME_MAX_CHARS)?;
    let scopes = match input.scopes {
        None => principal.credential.scopes.clone(),
        Some(names) => {
            if names.is_empty() {
                return Err(Error::validation(
                    "scopes",
                    "must not be empty; omit it to give the key your own scopes",
                ));
            }
            if names.len() > Scope::ALL.len() {
                return Err(Error::validation(
                    "scopes",
                    format!("must have at most {} entries", Scope::ALL.len()),
                ));
            }
            Scopes::parse(&names).map_err(|e| Error::validation("scopes", e.to_string()))?
        }
    };
    let missing = principal.credential.scopes.missing_from(&scopes);
    if !missing.is_empty() {
        return Err(Error::InsufficientScope { required: missing });
    }
    let now = state.clock.now();
    let expires_at = input
        .expires_in_days
        .map(|d| validate::range("expires_in_days", d, 1, MAX_EXPIRES_IN_DAYS))
        .transpose()?
        .map(|d| now + Duration::days(d));
    let active = store::api_keys::count_active(&state.db, principal.user_id).await?;
    if active >= MAX_ACTIVE_KEYS {
        return Err(Error::Conflict {
            code: "too_many_keys",
            message: format!(
                "An account may hold at most {MAX_ACTIVE_KEYS} active keys; revoke one first."
            ),
        });
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let created = insert_new(&txn, principal.user_id, name, scopes, expires_at, now).await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: principal.user_id,
            action: audit::AuditAction::KeyCreated,
            credential_id: Some(&principal.credential.id),
            target: Some(&created.info.id),
            details: serde_json::json!({
                "name": created.info.name,
                "scopes": created.info.scopes.names(),
                "expires_at": created.info.expires_at,
            }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// Insert a freshly generated key (used by registration inside its transaction).
pub(crate) async fn insert_new(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    name: String,
    scopes: Scopes,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<CreatedKey> {
    let new = token::generate_api_key();
    store::api_keys::insert(
        db,
        store::api_keys::NewKey {
            id: new.id.clone(),
            user_id,
            name: name.clone(),
            scopes: scopes.to_space_separated(),
            secret_hash: new.hash.to_vec(),
            created_at: now,
            expires_at,
        },
    )
    .await?;
    Ok(CreatedKey {
        info: KeyInfo {
            prefix: token::listing_prefix(&new.id),
            id: new.id,
            name,
            scopes,
            created_at: now,
            last_used_at: None,
            usage_count: 0,
            expires_at,
            revoked_at: None,
        },
        key: new.key,
    })
}

/// Every key of the caller, newest first, with usage not yet flushed included.
pub async fn list(state: &AppState, principal: &Principal) -> Result<Vec<KeyInfo>> {
    principal.require(Scope::KeysRead)?;
    // Stored counts and pending ones are read without a flush in between.
    let usage = state.usage.snapshot().await;
    store::api_keys::list_for_user(&state.db, principal.user_id)
        .await?
        .into_iter()
        .map(|k| info(&usage, k))
        .collect()
}

fn info(usage: &Snapshot<'_>, k: api_key::Model) -> Result<KeyInfo> {
    let scopes = Scopes::parse_space_separated(&k.scopes)
        .map_err(|e| Error::caused_by(format!("stored scopes of key {}", k.id), e))?;
    let pending = usage.pending(&k.id);
    let stored = u64::try_from(k.usage_count).unwrap_or(0);
    Ok(KeyInfo {
        prefix: token::listing_prefix(&k.id),
        usage_count: stored + pending.map_or(0, |p| p.count),
        last_used_at: match (k.last_used_at, pending) {
            (Some(a), Some(p)) => Some(a.max(p.last_used_at)),
            (a, p) => a.or(p.map(|p| p.last_used_at)),
        },
        id: k.id,
        name: k.name,
        scopes,
        created_at: k.created_at,
        expires_at: k.expires_at,
        revoked_at: k.revoked_at,
    })
}

/// Revoke one of the caller's keys. Another user's key is "not found".
pub async fn revoke(state: &AppState, principal: &Principal, key_id: &str) -> Result<()> {
    principal.require(Scope::KeysWrite)?;
    if !token::is_key_id(key_id) {
        return Err(Error::NotFound("key"));
    }
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    if store::api_keys::revoke(&txn, principal.user_id, key_id, now).await? {
        // The OAuth clients this key registered were its delegations.
        let clients = store::oauth::delete_clients_of_key(&txn, principal.user_id, key_id).await?;
        audit::record(
            &txn,
            now,
            audit::Event {
                user_id: principal.user_id,
                action: audit::AuditAction::KeyRevoked,
                credential_id: Some(&principal.credential.id),
                target: Some(key_id),
                details: serde_json::json!({ "clients_deleted": clients }),
            },
        )
        .await?;
        for client_id in &clients {
            audit::record(
                &txn,
                now,
                audit::Event {
                    user_id: principal.user_id,
                    action: audit::AuditAction::OAuthClientDeleted,
                    credential_id: Some(&principal.credential.id),
                    target: Some(client_id),
                    details: serde_json::json!({ "client_id": client_id, "reason": "registering_key_revoked", "key_id": key_id }),
                },
            )
            .await?;
        }
        txn.commit().await?;
        return Ok(());
    }
    drop(txn);
    match store::api_keys::find_owned(&state.db, principal.user_id, key_id).await? {
        Some(_) => Err(Error::Conflict {
            code: "key_revoked",
            message: "The key is already revoked.".into(),
        }),
        None => Err(Error::NotFound("key")),
    }
}

/// Give one of the caller's keys a new secret; the old one keeps working for
/// `grace_seconds` (default 0: not at all).
pub async fn rotate(
    state: &AppState,
    principal: &Principal,
    key_id: &str,
    grace_seconds: Option<i64>,
) -> Result<CreatedKey> {
    principal.require(Scope::KeysWrite)?;
    if !token::is_key_id(key_id) {
        return Err(Error::NotFound("key"));
    }
    let grace = validate::range(
        "grace_seconds",
        grace_seconds.unwrap_or(0),
        0,
        MAX_GRACE_SECONDS,
    )?;
    let key = store::api_keys::find_owned(&state.db, principal.user_id, key_id)
        .await?
        .ok_or(Error::NotFound("key"))?;
    let now = state.clock.now();
    if key.revoked_at.is_some() {
        return Err(Error::Conflict {
            code: "key_revoked",
            message: "A revoked key cannot be rotated; create a new one.".into(),
        });
    }
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(Error::Conflict {
            code: "key_expired",
            message: "An expired key cannot be rotated; create a new one.".into(),
        });
    }
    let new = token::generate_api_key_with_id(key.id.clone());
    let txn = crate::db::begin_write(&state.db).await?;
    let rotated = store::api_keys::rotate(
        &txn,
        store::api_keys::Rotation {
            user_id: principal.user_id,
            id: &key.id,
            expected_hash: &key.secret_hash,
            new_hash: new.hash.to_vec(),
            previous_until: (grace > 0).then(|| now + Duration::seconds(grace)),
            at: now,
        },
    )
    .await?;
    if !rotated {
        return Err(Error::Conflict {
            code: "key_changed",
            message: "The key was rotated or revoked concurrently; list keys and retry.".into(),
        });
    }
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: principal.user_id,
            action: audit::AuditAction::KeyRotated,
            credential_id: Some(&principal.credential.id),
            target: Some(&key.id),
            details: serde_json::json!({ "grace_seconds": grace }),
        },
    )
    .await?;
    txn.commit().await?;
    let mut info = info(&state.usage.snapshot().await, key)?;
    info.prefix = token::listing_prefix(&new.id);
    Ok(CreatedKey { info, key: new.key })
}
