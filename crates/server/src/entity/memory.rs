use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memories")]
pub struct Model {
    /// Internal sequence: SQLite rowid, FTS key and paging cursor.
    #[sea_orm(primary_key)]
    pub seq: i64,
    /// Public id.
    #[sea_orm(unique)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub content: String,
    pub memory_type: String,
    /// JSON array of normalized tags (the `memory_tags` rows are the index).
    pub tags: String,
    /// JSON object.
    pub metadata: String,
    pub version: i64,
    /// Bytes of title + content + metadata, for stats.
    pub size_bytes: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
