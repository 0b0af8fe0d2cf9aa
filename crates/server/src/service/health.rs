//! Readiness: whether the database answers.

use sea_orm::{DbErr, RuntimeErr};

use crate::{
    error::{Error, Result},
    state::AppState,
};

/// `Ok` when the database answers a ping. Any failure means "not ready",
/// whatever its kind, so it is reported as an outage (its cause is logged).
pub async fn ready(state: &AppState) -> Result<()> {
    state.db.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        Error::Database(DbErr::Conn(RuntimeErr::Internal("ping failed".into())))
    })
}
