//! The audit trail: security events with actor, credential, IP, user agent
//! and request id. Recorded in the same transaction as the change they
//! describe, so an event exists exactly when the change does.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{auth::Principal, paging};
use crate::{
    entity::audit_event, error::Result, http::context, scope::Scope, state::AppState, store,
};

/// Event names.
pub mod action {
    pub const USER_REGISTERED: &str = "user.registered";
    pub const KEY_CREATED: &str = "key.created";
    pub const KEY_ROTATED: &str = "key.rotated";
    pub const KEY_REVOKED: &str = "key.revoked";
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    pub const LOGIN_FAILED: &str = "login.failed";
    pub const LOGOUT: &str = "logout";
    pub const SESSIONS_ENDED: &str = "sessions.ended";
    pub const PASSWORD_CHANGED: &str = "user.password_changed";
    /// The operator set a new password (`mcpgate admin users reset-password`).
    pub const PASSWORD_RESET: &str = "user.password_reset";
    pub const OAUTH_CONSENT_GRANTED: &str = "oauth.consent_granted";
    pub const OAUTH_FAMILY_REVOKED: &str = "oauth.token_family_revoked";
    pub const OAUTH_AUTHORIZATION_REVOKED: &str = "oauth.authorization_revoked";
    pub const OAUTH_CLIENT_DELETED: &str = "oauth.client_deleted";
    pub const CONNECTION_CREATED: &str = "connection.created";
    pub const CONNECTION_DELETED: &str = "connection.deleted";
}

/// One event to record.
pub struct Event<'a> {
    pub user_id: Uuid,
    pub action: &'static str,
    pub credential_id: Option<&'a str>,
    pub target: Option<&'a str>,
    pub details: serde_json::Value,
}

/// Record `event` on `db` (pass the transaction of the change).
pub async fn record(
    db: &impl ConnectionTrait,
    at: chrono::DateTime<chrono::Utc>,
    event: Event<'_>,
) -> Result<()> {
    let origin = context::origin();
    let request_id = context::request_id();
    store::audit::insert(
        db,
        store::audit::NewEvent {
            at,
            user_id: Some(event.user_id),
            action: event.action.to_owned(),
            credential_id: event.credential_id.map(str::to_owned),
            // The column holds 128 characters; a longer target (a client id
            // that is a metadata-document URL) is cut, and OAuth events carry
            // the full client id in `details`.
            target: event.target.map(|t| t.chars().take(128).collect()),
            ip: origin.ip,
            user_agent: origin.user_agent,
            request_id: (!request_id.is_empty()).then_some(request_id),
            details: without_nulls(event.details).to_string(),
        },
    )
    .await?;
    Ok(())
}

/// An absent value is omitted, never `null` (the API's one rule), in the
/// free-form details too.
pub fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, without_nulls(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        serde_json::Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// A page of events, newest first.
pub struct Page {
    pub events: Vec<audit_event::Model>,
    pub next_cursor: Option<String>,
}

/// Cursor kind of audit listings.
const CURSOR_KIND: &str = "a1";

/// Events of the caller's account (scope `keys:read`: the trail names keys).
pub async fn list_own(
    state: &AppState,
    principal: &Principal,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page> {
    principal.require(Scope::KeysRead)?;
    list(state, Some(principal.user_id), limit, cursor).await
}

/// Events of one account or, with `None`, of all (for operators).
pub async fn list(
    state: &AppState,
    user_id: Option<Uuid>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page> {
    let limit = paging::limit(limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let before = cursor.map(|c| paging::decode(CURSOR_KIND, c)).transpose()?;
    let events = store::audit::list(&state.db, user_id, before, limit + 1).await?;
    let (events, next_cursor) = paging::split(events, limit, CURSOR_KIND, |e| e.seq);
    Ok(Page {
        events,
        next_cursor,
    })
}
