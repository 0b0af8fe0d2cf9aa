//! The audit trail: security events with actor, credential, IP, user agent
//! and request id. Recorded in the same transaction as the change they
//! describe, so an event exists exactly when the change does.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{auth::Principal, paging};
use crate::{
    context,
    entity::audit_event,
    error::{Error, Result},
    scope::Scope,
    state::AppState,
    store,
    vocabulary::vocabulary,
};

vocabulary! {
    /// What a security event records.
    pub enum AuditAction ("audit action") {
        UserRegistered = "user.registered",
        KeyCreated = "key.created",
        KeyRotated = "key.rotated",
        KeyRevoked = "key.revoked",
        LoginSucceeded = "login.succeeded",
        LoginFailed = "login.failed",
        Logout = "logout",
        SessionsEnded = "sessions.ended",
        PasswordChanged = "user.password_changed",
        /// The operator set a new password (`mcpgate admin users reset-password`).
        PasswordReset = "user.password_reset",
        OAuthConsentGranted = "oauth.consent_granted",
        OAuthFamilyRevoked = "oauth.token_family_revoked",
        OAuthAuthorizationRevoked = "oauth.authorization_revoked",
        OAuthClientDeleted = "oauth.client_deleted",
        ConnectionCreated = "connection.created",
        ConnectionDeleted = "connection.deleted",
    }
}

/// One event to record.
pub struct Event<'a> {
    pub user_id: Uuid,
    pub action: AuditAction,
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
            action: event.action.as_str().to_owned(),
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

/// A recorded event, as read back.
#[derive(Debug)]
pub struct Recorded {
    pub at: chrono::DateTime<chrono::Utc>,
    pub user_id: Option<Uuid>,
    pub action: AuditAction,
    pub credential_id: Option<String>,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Event-specific details, a JSON object without nulls.
    pub details: serde_json::Value,
}

impl Recorded {
    /// A stored event; a row the code cannot read is an internal error
    /// naming it.
    fn from_row(e: audit_event::Model) -> Result<Self> {
        let action = e.action.parse().map_err(|u: crate::vocabulary::Unknown| {
            u.internal(format_args!("audit event {}", e.seq))
        })?;
        let details = serde_json::from_str(&e.details)
            .map_err(|j| Error::caused_by(format!("audit event {} details", e.seq), j))?;
        Ok(Self {
            at: e.at,
            user_id: e.user_id,
            action,
            credential_id: e.credential_id,
            target: e.target,
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            // Rows written before absent values were omitted may hold nulls.
            details: without_nulls(details),
        })
    }
}

/// A page of events, newest first.
pub struct Page {
    pub events: Vec<Recorded>,
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
        events: events
            .into_iter()
            .map(Recorded::from_row)
            .collect::<Result<_>>()?,
        next_cursor,
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "fixtures and waits of the tests")]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_refuse_unknown_names() {
        crate::vocabulary::assert_round_trip(AuditAction::ALL, "key.deleted");
    }

    #[test]
    fn a_stored_event_with_an_unknown_action_is_an_internal_error() {
        let row = audit_event::Model {
            seq: 7,
            at: chrono::Utc::now(),
            user_id: None,
            action: "key.created".into(),
            credential_id: None,
            target: None,
            ip: None,
            user_agent: None,
            request_id: None,
            details: r#"{"name":"ci","expires_at":null}"#.into(),
        };
        let e = Recorded::from_row(row.clone()).expect("a valid row");
        assert_eq!(e.action, AuditAction::KeyCreated);
        assert_eq!(e.details, serde_json::json!({"name": "ci"}));
        for (bad, why) in [
            (
                audit_event::Model {
                    action: "key.deleted".into(),
                    ..row.clone()
                },
                "audit event 7: unknown audit action \"key.deleted\"",
            ),
            (
                audit_event::Model {
                    details: "{".into(),
                    ..row
                },
                "audit event 7 details: ",
            ),
        ] {
            match Recorded::from_row(bad) {
                Err(e @ Error::Unexpected { .. }) => {
                    let m = crate::error::chain(&e);
                    assert!(m.contains(why), "{m}");
                }
                other => panic!("no silent default: {other:?}"),
            }
        }
    }
}
