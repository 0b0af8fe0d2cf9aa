//! Database migrations for mcpgate.
//!
//! One file per change, named by date, each with a `down`. The server runs
//! [`Migrator`] at start-up and `mcpgate migrate up|down|status` drives it by
//! hand. Every test builds its schema through this Migrator, never from entities.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_users_and_api_keys;
mod m20261122_000002_memories;
mod m20261122_000003_audit_events;
mod m20261122_000004_oauth;
mod m20261122_000005_connections;
mod m20261202_000006_owned_clients;
mod m20261203_000007_idempotency_keys;
mod m20261203_000008_search_owner_first;

/// The ordered list of every migration mcpgate knows.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_users_and_api_keys::Migration),
            Box::new(m20261122_000002_memories::Migration),
            Box::new(m20261122_000003_audit_events::Migration),
            Box::new(m20261122_000004_oauth::Migration),
            Box::new(m20261122_000005_connections::Migration),
            Box::new(m20261202_000006_owned_clients::Migration),
            Box::new(m20261203_000007_idempotency_keys::Migration),
            Box::new(m20261203_000008_search_owner_first::Migration),
        ]
    }
}
