//! Clean-up: remove what has expired, in small batches so no statement holds
//! the database for long. Runs on a schedule in every server (each pass is
//! idempotent, so replicas may overlap) and on demand with
//! `mcpgate admin purge`.
//!
//! Targets: key digests kept for a rotation grace period that has ended,
//! expired web sessions and authorization codes, access tokens a day past
//! expiry, grants (token families) that expired or were revoked (their
//! tokens go with them), and dynamically registered clients never used
//! within `oauth_unused_client_ttl_secs`, and `Idempotency-Key` records
//! older than 24 h.

use crate::{error::Result, state::AppState, store};

/// Rows touched per statement.
pub const BATCH: u64 = 500;

/// What one purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Rotated-out key digests whose grace period ended.
    pub expired_rotation_secrets: u64,
    pub expired_sessions: u64,
    pub expired_codes: u64,
    pub expired_access_tokens: u64,
    /// Token families that expired or were revoked (with their tokens).
    pub dead_grants: u64,
    /// Registered clients never used.
    pub unused_clients: u64,
    /// Connection flows that expired or completed.
    pub expired_connect_states: u64,
    /// `Idempotency-Key` records older than 24 h.
    pub expired_idempotency_keys: u64,
}

/// Run `step` in batches until a batch comes back short.
async fn batched<F, Fut>(mut step: F) -> Result<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<u64, sea_orm::DbErr>>,
{
    let mut total = 0;
    loop {
        let n = step().await?;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
    }
}

/// Purge everything expired as of the app clock's now.
pub async fn purge(state: &AppState) -> Result<Report> {
    let now = state.clock.now();
    let mut report = Report::default();
    let db = &state.db;
    report.expired_rotation_secrets =
        batched(|| store::api_keys::clear_expired_rotation_secrets(db, now, BATCH)).await?;
    report.expired_sessions = batched(|| store::sessions::delete_expired(db, now, BATCH)).await?;
    report.expired_codes = batched(|| store::oauth::delete_expired_codes(db, now, BATCH)).await?;
    // Kept a day past expiry, so a late request still gets "expired", not "unknown".
    let token_cutoff = now - chrono::Duration::days(1);
    report.expired_access_tokens =
        batched(|| store::oauth::delete_expired_access(db, token_cutoff, BATCH)).await?;
    report.dead_grants =
        batched(|| store::oauth::delete_dead_grants(db, token_cutoff, BATCH)).await?;
    let client_cutoff = now
        - chrono::Duration::seconds(
            i64::try_from(state.config.oauth_unused_client_ttl_secs).unwrap_or(i64::MAX / 1000),
        );
    report.unused_clients =
        batched(|| store::oauth::delete_unused_clients(db, client_cutoff, BATCH)).await?;
    report.expired_connect_states =
        batched(|| store::connections::delete_expired_states(db, now, BATCH)).await?;
    let idempotency_cutoff = super::idempotency::cutoff(now);
    report.expired_idempotency_keys =
        batched(|| store::idempotency::delete_created_before(db, idempotency_cutoff, BATCH))
            .await?;
    Ok(report)
}
