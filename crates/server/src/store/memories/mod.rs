//! Queries on `memories` and `memory_tags`. The backend-specific search is
//! in `search`.

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::{
    memory::{self, Column, Entity},
    memory_tag,
};

mod search;

pub use search::{search, Hit};

pub struct NewMemory {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub content: String,
    pub memory_type: String,
    pub tags: Vec<String>,
    pub metadata: String,
    pub size_bytes: i64,
    pub at: DateTime<Utc>,
}

/// Insert a memory and its tag rows (call inside a transaction).
pub async fn insert(db: &impl ConnectionTrait, new: NewMemory) -> Result<memory::Model, DbErr> {
    let tags_json = serde_json::to_string(&new.tags).unwrap_or_else(|_| "[]".into());
    let result = Entity::insert(memory::ActiveModel {
        seq: sea_orm::ActiveValue::NotSet,
        id: Set(new.id),
        user_id: Set(new.user_id),
        title: Set(new.title),
        content: Set(new.content),
        memory_type: Set(new.memory_type),
        tags: Set(tags_json),
        metadata: Set(new.metadata),
        version: Set(1),
        size_bytes: Set(new.size_bytes),
        created_at: Set(new.at),
        updated_at: Set(new.at),
    })
    .exec(db)
    .await?;
    replace_tags(db, result.last_insert_id, new.user_id, &new.tags).await?;
    Entity::find_by_id(result.last_insert_id)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("inserted memory".into()))
}

/// Replace the tag rows of a memory.
pub async fn replace_tags(
    db: &impl ConnectionTrait,
    seq: i64,
    user_id: Uuid,
    tags: &[String],
) -> Result<(), DbErr> {
    memory_tag::Entity::delete_many()
        .filter(memory_tag::Column::MemorySeq.eq(seq))
        .exec(db)
        .await?;
    if tags.is_empty() {
        return Ok(());
    }
    memory_tag::Entity::insert_many(tags.iter().map(|tag| memory_tag::ActiveModel {
        memory_seq: Set(seq),
        tag: Set(tag.clone()),
        user_id: Set(user_id),
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A memory, only if it belongs to `user_id`.
pub async fn find_owned(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<memory::Model>, DbErr> {
    Entity::find()
        .filter(Column::Id.eq(id))
        .filter(Column::UserId.eq(user_id))
        .one(db)
        .await
}

/// Filters shared by listing and search.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub memory_types: Vec<String>,
    /// Every one of these tags must be present.
    pub tags: Vec<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

fn condition(user_id: Uuid, filter: &Filter) -> Condition {
    let mut cond = Condition::all().add(Column::UserId.eq(user_id));
    if !filter.memory_types.is_empty() {
        cond = cond.add(Column::MemoryType.is_in(filter.memory_types.clone()));
    }
    if let Some(after) = filter.created_after {
        cond = cond.add(Column::CreatedAt.gt(after));
    }
    if let Some(before) = filter.created_before {
        cond = cond.add(Column::CreatedAt.lt(before));
    }
    if !filter.tags.is_empty() {
        let n = filter.tags.len() as i64;
        let tagged = Query::select()
            .column(memory_tag::Column::MemorySeq)
            .from(memory_tag::Entity)
            .and_where(memory_tag::Column::UserId.eq(user_id))
            .and_where(memory_tag::Column::Tag.is_in(filter.tags.clone()))
            .group_by_col(memory_tag::Column::MemorySeq)
            .and_having(Expr::col(memory_tag::Column::Tag).count().eq(n))
            .to_owned();
        cond = cond.add(Column::Seq.in_subquery(tagged));
    }
    cond
}

/// One page of a user's memories, newest first, starting after `before_seq`.
/// Returns the page and the number of memories matching the filter.
pub async fn list(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    filter: &Filter,
    before_seq: Option<i64>,
    limit: u64,
) -> Result<(Vec<memory::Model>, u64), DbErr> {
    let cond = condition(user_id, filter);
    let total = Entity::find().filter(cond.clone()).count(db).await?;
    let mut page = Entity::find().filter(cond);
    if let Some(seq) = before_seq {
        page = page.filter(Column::Seq.lt(seq));
    }
    let rows = page.order_by_desc(Column::Seq).limit(limit).all(db).await?;
    Ok((rows, total))
}

pub struct Changes {
    pub title: Option<String>,
    pub content: Option<String>,
    pub memory_type: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<String>,
    pub size_bytes: i64,
    pub at: DateTime<Utc>,
}

/// Apply `changes` if the memory is the user's and (when given) still at
/// `expected_version`. One conditional statement, so of two concurrent
/// updates with the same version exactly one wins. Returns whether it applied.
pub async fn update(
    db: &impl ConnectionTrait,
    current: &memory::Model,
    expected_version: Option<i64>,
    changes: Changes,
) -> Result<bool, DbErr> {
    let mut update = Entity::update_many()
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(changes.at))
        .col_expr(Column::SizeBytes, Expr::value(changes.size_bytes));
    if let Some(v) = changes.title {
        update = update.col_expr(Column::Title, Expr::value(v));
    }
    if let Some(v) = changes.content {
        update = update.col_expr(Column::Content, Expr::value(v));
    }
    if let Some(v) = changes.memory_type {
        update = update.col_expr(Column::MemoryType, Expr::value(v));
    }
    if let Some(v) = &changes.tags {
        let json = serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        update = update.col_expr(Column::Tags, Expr::value(json));
    }
    if let Some(v) = changes.metadata {
        update = update.col_expr(Column::Metadata, Expr::value(v));
    }
    // Without If-Match, still guard against a concurrent change between our
    // read and this write: the size and tags we computed are for `current`.
    let version = expected_version.unwrap_or(current.version);
    let result = update
        .filter(Column::Seq.eq(current.seq))
        .filter(Column::UserId.eq(current.user_id))
        .filter(Column::Version.eq(version))
        .exec(db)
        .await?;
    if result.rows_affected != 1 {
        return Ok(false);
    }
    if let Some(tags) = &changes.tags {
        replace_tags(db, current.seq, current.user_id, tags).await?;
    }
    Ok(true)
}

/// Delete a user's memory. Returns false when there was none.
pub async fn delete_owned(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<bool, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Aggregate numbers of one user's memories.
#[derive(Debug, Default)]
pub struct Stats {
    pub total: i64,
    pub total_bytes: i64,
    pub oldest_at: Option<DateTime<Utc>>,
    pub newest_at: Option<DateTime<Utc>>,
    pub by_type: Vec<(String, i64)>,
    pub top_tags: Vec<(String, i64)>,
}

#[derive(Debug, FromQueryResult)]
struct Totals {
    total: i64,
    total_bytes: Option<i64>,
    oldest_at: Option<DateTime<Utc>>,
    newest_at: Option<DateTime<Utc>>,
}

#[derive(Debug, FromQueryResult)]
struct Count {
    key: String,
    n: i64,
}

pub async fn stats(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    top_tags: u64,
) -> Result<Stats, DbErr> {
    let totals = Entity::find()
        .select_only()
        .column_as(Expr::col(Column::Seq).count(), "total")
        .column_as(
            Expr::col(Column::SizeBytes).sum().cast_as("BIGINT"),
            "total_bytes",
        )
        .column_as(Expr::col(Column::CreatedAt).min(), "oldest_at")
        .column_as(Expr::col(Column::CreatedAt).max(), "newest_at")
        .filter(Column::UserId.eq(user_id))
        .into_model::<Totals>()
        .one(db)
        .await?;
    let by_type = Entity::find()
        .select_only()
        .column_as(Column::MemoryType, "key")
        .column_as(Expr::col(Column::Seq).count(), "n")
        .filter(Column::UserId.eq(user_id))
        .group_by(Column::MemoryType)
        .order_by_asc(Column::MemoryType)
        .into_model::<Count>()
        .all(db)
        .await?;
    let tags = memory_tag::Entity::find()
        .select_only()
        .column_as(memory_tag::Column::Tag, "key")
        .column_as(Expr::col(memory_tag::Column::MemorySeq).count(), "n")
        .filter(memory_tag::Column::UserId.eq(user_id))
        .group_by(memory_tag::Column::Tag)
        .order_by_desc(Expr::col(memory_tag::Column::MemorySeq).count())
        .order_by_asc(memory_tag::Column::Tag)
        .limit(top_tags)
        .into_model::<Count>()
        .all(db)
        .await?;
    let totals = totals.unwrap_or(Totals {
        total: 0,
        total_bytes: None,
        oldest_at: None,
        newest_at: None,
    });
    Ok(Stats {
        total: totals.total,
        total_bytes: totals.total_bytes.unwrap_or(0),
        oldest_at: totals.oldest_at,
        newest_at: totals.newest_at,
        by_type: by_type.into_iter().map(|c| (c.key, c.n)).collect(),
        top_tags: tags.into_iter().map(|c| (c.key, c.n)).collect(),
    })
}
