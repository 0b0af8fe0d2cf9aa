//! Every database query lives here, one module per table. Services call
//! these; handlers never see a connection.

pub mod api_keys;
pub mod audit;
pub mod connections;
pub mod idempotency;
pub mod memories;
pub mod oauth;
pub mod sessions;
pub mod users;

use sea_orm::{DbErr, SqlErr};

/// True when `e` is a unique-constraint violation (duplicate email, ...).
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
