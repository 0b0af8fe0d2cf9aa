//! Clean-up: remove what has expired, in small batches so no statement holds
//! the database for long. Runs on a schedule in every server (each pass is
//! idempotent, so replicas may overlap) and on demand with
//! `mcpgate admin purge`.
//!
//! Today's targets: key digests kept for a rotation grace period that has
//! ended. Sessions, authorization codes, tokens and stale registered clients
//! join this list as those features land.

use sea_orm::{
    sea_query::{Expr, Query},
    ColumnTrait, EntityTrait, QueryFilter,
};

use crate::{
    entity::api_key::{self, Column},
    error::Result,
    state::AppState,
};

/// Rows touched per statement.
pub const BATCH: u64 = 500;

/// What one purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Rotated-out key digests whose grace period ended.
    pub expired_rotation_secrets: u64,
}

/// Purge everything expired as of the app clock's now.
pub async fn purge(state: &AppState) -> Result<Report> {
    let now = state.clock.now();
    let mut report = Report::default();
    loop {
        let batch = Query::select()
            .column(Column::Id)
            .from(api_key::Entity)
            .and_where(Column::PreviousExpiresAt.lte(now))
            .limit(BATCH)
            .to_owned();
        let cleared = api_key::Entity::update_many()
            .col_expr(
                Column::PreviousSecretHash,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .col_expr(
                Column::PreviousExpiresAt,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(Column::Id.in_subquery(batch))
            .exec(&state.db)
            .await?
            .rows_affected;
        report.expired_rotation_secrets += cleared;
        if cleared < BATCH {
            break;
        }
    }
    Ok(report)
}
