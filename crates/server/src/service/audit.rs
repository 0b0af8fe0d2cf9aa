//! The audit trail: security events with actor, credential, IP, user agent
//! and request id. Recorded in the same transaction as the change they
//! describe, so an event exists exactly when the change does.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::auth::Principal;
use crate::{
    entity::audit_event,
    error::{Error, Result},
    http::context,
    scope::Scope,
    state::AppState,
    store,
};

/// Event names.
pub mod action {
    pub const USER_REGISTERED: &str = "user.registered";
    pub const KEY_CREATED: &str = "key.created";
    pub const KEY_ROTATED: &str = "key.rotated";
    pub const KEY_REVOKED: &str = "key.revoked";
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
            target: event.target.map(str::to_owned),
            ip: origin.ip,
            user_agent: origin.user_agent,
            request_id: (!request_id.is_empty()).then_some(request_id),
            details: event.details.to_string(),
        },
    )
    .await?;
    Ok(())
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// A page of events, newest first.
pub struct Page {
    pub events: Vec<audit_event::Model>,
    pub next_cursor: Option<String>,
}

fn parse_cursor(cursor: &str) -> Result<i64> {
    cursor
        .strip_prefix("a")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::validation("cursor", "is not a cursor returned by this API"))
}

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
    let limit =
        super::validate::range("limit", limit.unwrap_or(DEFAULT_LIMIT), 1, MAX_LIMIT)? as u64;
    let before = cursor.map(parse_cursor).transpose()?;
    let mut events = store::audit::list(&state.db, user_id, before, limit + 1).await?;
    let next_cursor = if events.len() as u64 > limit {
        events.truncate(limit as usize);
        events.last().map(|e| format!("a{}", e.seq))
    } else {
        None
    };
    Ok(Page {
        events,
        next_cursor,
    })
}
