//! Search is evaluated over the caller's own rows (see
//! `mcpgate_server::store::memories::search`), so the shared full-text
//! indexes are no longer read: drop them and their upkeep on every write.
//! SQLite: the FTS5 table, its triggers and its source view. Postgres: the
//! GIN index (the generated `search` column stays; it is what is matched).
//! `down` restores both, rebuilding the FTS5 index from the rows.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

use crate::m20261122_000002_memories as memories;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Sqlite => {
                for sql in memories::SQLITE_DOWN {
                    db.execute_unprepared(sql).await?;
                }
            }
            DatabaseBackend::Postgres => {
                db.execute_unprepared("DROP INDEX IF EXISTS memories_search_idx")
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Sqlite => {
                for sql in memories::SQLITE_UP {
                    db.execute_unprepared(sql).await?;
                }
                db.execute_unprepared("INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')")
                    .await?;
            }
            DatabaseBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE INDEX IF NOT EXISTS memories_search_idx ON memories USING GIN (search)",
                )
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
