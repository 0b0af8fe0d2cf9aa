//! Memories, their tags, and full-text search.
//!
//! `seq` is an integer primary key: it is SQLite's rowid (stable, so the FTS5
//! external-content index can point at it) and the paging cursor on both
//! backends. The public id is the `id` uuid.
//!
//! Both backends index words unstemmed and without stop words (FTS5
//! `unicode61`, Postgres `simple`); the query side matches a word by its
//! English stem as a prefix (`upgrades` -> `upgrad*`), so stemming and typed
//! prefixes (`observab*`) behave the same on both.
//!
//! Search is backend-specific:
//! - SQLite: an FTS5 external-content table `memories_fts(title, content, owner)`
//!   kept in sync by triggers. `owner` holds `u<hex of user_id>`, so a search
//!   intersects with the caller's rows inside the index instead of ranking
//!   every user's matches and filtering afterwards.
//! - Postgres: a generated `simple` `tsvector` column (title weight A, content weight B)
//!   with a GIN index, ranked by `ts_rank_cd`.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Memories::Table)
                    .col(big_pk_auto(Memories::Seq))
                    .col(uuid_uniq(Memories::Id))
                    .col(uuid(Memories::UserId))
                    .col(string_len(Memories::Title, 800))
                    .col(text(Memories::Content))
                    .col(string_len(Memories::MemoryType, 20))
                    .col(text(Memories::Tags))
                    .col(text(Memories::Metadata))
                    .col(big_integer(Memories::Version))
                    .col(big_integer(Memories::SizeBytes))
                    .col(timestamp_with_time_zone(Memories::CreatedAt))
                    .col(timestamp_with_time_zone(Memories::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("memories_user_id_fkey")
                            .from(Memories::Table, Memories::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("memories_user_seq_idx")
                    .table(Memories::Table)
                    .col(Memories::UserId)
                    .col(Memories::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MemoryTags::Table)
                    .col(big_integer(MemoryTags::MemorySeq))
                    .col(uuid(MemoryTags::UserId))
                    .col(string_len(MemoryTags::Tag, 200))
                    .primary_key(
                        Index::create()
                            .col(MemoryTags::MemorySeq)
                            .col(MemoryTags::Tag),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("memory_tags_memory_seq_fkey")
                            .from(MemoryTags::Table, MemoryTags::MemorySeq)
                            .to(Memories::Table, Memories::Seq)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("memory_tags_user_tag_idx")
                    .table(MemoryTags::Table)
                    .col(MemoryTags::UserId)
                    .col(MemoryTags::Tag)
                    .col(MemoryTags::MemorySeq)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Sqlite => {
                for sql in SQLITE_UP {
                    db.execute_unprepared(sql).await?;
                }
            }
            DatabaseBackend::Postgres => {
                for sql in POSTGRES_UP {
                    db.execute_unprepared(sql).await?;
                }
            }
            other => {
                return Err(DbErr::Migration(format!(
                    "unsupported database backend {other:?}"
                )))
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            let db = manager.get_connection();
            for sql in SQLITE_DOWN {
                db.execute_unprepared(sql).await?;
            }
        }
        manager
            .drop_table(Table::drop().table(MemoryTags::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Memories::Table).to_owned())
            .await
    }
}

pub(crate) const SQLITE_UP: &[&str] = &[
    // The external content is a view, so FTS5 can read every column it
    // indexes (snippets read `title` and `content` back from it).
    "CREATE VIEW memories_fts_source AS \
        SELECT seq, title, content, 'u' || lower(hex(user_id)) AS owner FROM memories",
    "CREATE VIRTUAL TABLE memories_fts USING fts5(\
        title, content, owner, \
        content='memories_fts_source', content_rowid='seq', \
        tokenize='unicode61 remove_diacritics 2', prefix='3 4 5 6 7 8')",
    "CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN \
        INSERT INTO memories_fts(rowid, title, content, owner) \
        VALUES (new.seq, new.title, new.content, 'u' || lower(hex(new.user_id))); \
    END",
    "CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN \
        INSERT INTO memories_fts(memories_fts, rowid, title, content, owner) \
        VALUES ('delete', old.seq, old.title, old.content, 'u' || lower(hex(old.user_id))); \
    END",
    "CREATE TRIGGER memories_fts_update AFTER UPDATE OF title, content ON memories BEGIN \
        INSERT INTO memories_fts(memories_fts, rowid, title, content, owner) \
        VALUES ('delete', old.seq, old.title, old.content, 'u' || lower(hex(old.user_id))); \
        INSERT INTO memories_fts(rowid, title, content, owner) \
        VALUES (new.seq, new.title, new.content, 'u' || lower(hex(new.user_id))); \
    END",
];

pub(crate) const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS memories_fts_update",
    "DROP TRIGGER IF EXISTS memories_fts_delete",
    "DROP TRIGGER IF EXISTS memories_fts_insert",
    "DROP TABLE IF EXISTS memories_fts",
    "DROP VIEW IF EXISTS memories_fts_source",
];

pub(crate) const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE memories ADD COLUMN search tsvector GENERATED ALWAYS AS (\
        setweight(to_tsvector('simple', title), 'A') || \
        setweight(to_tsvector('simple', content), 'B')) STORED",
    "CREATE INDEX memories_search_idx ON memories USING GIN (search)",
];

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Memories {
    Table,
    Seq,
    Id,
    UserId,
    Title,
    Content,
    MemoryType,
    Tags,
    Metadata,
    Version,
    SizeBytes,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MemoryTags {
    Table,
    MemorySeq,
    UserId,
    Tag,
}
