//! Queries on `memories` and `memory_tags`, including the backend-specific
//! full-text search (FTS5 on SQLite, `tsvector` on Postgres).

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, Value,
};
use uuid::Uuid;

use crate::entity::{
    memory::{self, Column, Entity},
    memory_tag,
};

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

/// One search hit.
pub struct Hit {
    pub memory: memory::Model,
    pub score: f64,
    pub snippet: String,
}

/// Placeholders in the backend's syntax, bound in order.
struct Params {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Params {
    fn push(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    fn list(&mut self, items: &[String]) -> String {
        items
            .iter()
            .map(|i| self.push(i.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const MEMORY_COLUMNS: &str = "m.seq, m.id, m.user_id, m.title, m.content, m.memory_type, \
     m.tags, m.metadata, m.version, m.size_bytes, m.created_at, m.updated_at";

/// Ranked full-text search over one user's memories. `fts_query` is the FTS5
/// expression and `ts_query` the `to_tsquery` text for the same terms (see
/// `service::search_query`); only the one for `db`'s backend is used.
/// Returns the hits and the total number of matches.
pub async fn search(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    fts_query: &str,
    ts_query: &str,
    filter: &Filter,
    limit: u64,
) -> Result<(Vec<Hit>, u64), DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => search_sqlite(db, user_id, fts_query, filter, limit).await,
        DbBackend::Postgres => search_postgres(db, user_id, ts_query, filter, limit).await,
        other => Err(DbErr::Custom(format!(
            "search is not supported on {other:?}"
        ))),
    }
}

/// The FTS5 owner token of a user: `u` + the hex of the uuid as SQLite stores
/// it (a 16-byte blob), matching the triggers' `'u' || lower(hex(user_id))`.
fn owner_token(user_id: Uuid) -> String {
    format!("u{}", user_id.simple())
}

/// FTS5 auxiliary functions (bm25, snippet) cannot be combined with window
/// functions, so SQLite takes up to three statements: the ranked page, the
/// total (only when the page is full) and the snippets of the page's rows.
async fn search_sqlite(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    fts_query: &str,
    filter: &Filter,
    limit: u64,
) -> Result<(Vec<Hit>, u64), DbErr> {
    let backend = DbBackend::Sqlite;
    let expr = format!("owner : \"{}\" AND ({fts_query})", owner_token(user_id));
    let from_where = |p: &mut Params| {
        let matching = p.push(expr.clone());
        let user = p.push(user_id);
        let mut filters = String::new();
        push_filters(p, &mut filters, user_id, filter);
        format!(
            "FROM memories_fts CROSS JOIN memories m ON m.seq = memories_fts.rowid \
             WHERE memories_fts MATCH {matching} AND m.user_id = {user}{filters}"
        )
    };
    let mut p = Params {
        backend,
        values: Vec::new(),
    };
    let body = from_where(&mut p);
    let lim = p.push(limit as i64);
    let sql = format!(
        "SELECT {MEMORY_COLUMNS}, -bm25(memories_fts, 10.0, 1.0, 0.0) AS score {body} \
         ORDER BY score DESC, m.created_at DESC, m.seq DESC LIMIT {lim}"
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, p.values))
        .await?;
    let mut hits = Vec::with_capacity(rows.len());
    for row in rows {
        hits.push(Hit {
            memory: memory::Model::from_query_result(&row, "")?,
            score: row.try_get::<f64>("", "score")?,
            snippet: String::new(),
        });
    }
    let total = if (hits.len() as u64) < limit {
        hits.len() as u64
    } else {
        let mut p = Params {
            backend,
            values: Vec::new(),
        };
        let body = from_where(&mut p);
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT COUNT(*) AS total {body}"),
                p.values,
            ))
            .await?;
        row.map(|r| r.try_get::<i64>("", "total"))
            .transpose()?
            .map_or(0, |n| u64::try_from(n).unwrap_or(0))
    };
    if !hits.is_empty() {
        let mut p = Params {
            backend,
            values: Vec::new(),
        };
        let matching = p.push(expr.clone());
        let seqs = hits
            .iter()
            .map(|h| p.push(h.memory.seq))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT rowid AS seq, snippet(memories_fts, 1, '<mark>', '</mark>', '…', 24) AS snippet \
                     FROM memories_fts WHERE memories_fts MATCH {matching} AND rowid IN ({seqs})"
                ),
                p.values,
            ))
            .await?;
        for row in rows {
            let seq: i64 = row.try_get("", "seq")?;
            let snippet: String = row.try_get("", "snippet")?;
            if let Some(hit) = hits.iter_mut().find(|h| h.memory.seq == seq) {
                hit.snippet = snippet;
            }
        }
    }
    Ok((hits, total))
}

async fn search_postgres(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    ts_query: &str,
    filter: &Filter,
    limit: u64,
) -> Result<(Vec<Hit>, u64), DbErr> {
    let backend = DbBackend::Postgres;
    let mut p = Params {
        backend,
        values: Vec::new(),
    };
    let query = p.push(ts_query.to_owned());
    let user = p.push(user_id);
    let mut filters = String::new();
    push_filters(&mut p, &mut filters, user_id, filter);
    let lim = p.push(limit as i64);
    // Rank every match (normalized by document length, like bm25), keep the
    // page, and only then build headlines, which are costly.
    let sql = format!(
        "WITH q AS (SELECT to_tsquery('simple', {query}) AS query), \
         hits AS ( \
           SELECT {MEMORY_COLUMNS}, \
             ts_rank_cd('{{0.1, 0.2, 0.4, 1.0}}', m.search, q.query, 1)::float8 AS score, \
             COUNT(*) OVER () AS total \
           FROM memories m, q \
           WHERE m.user_id = {user} AND m.search @@ q.query{filters} \
           ORDER BY score DESC, m.created_at DESC, m.seq DESC \
           LIMIT {lim}) \
         SELECT hits.*, ts_headline('simple', hits.content, q.query, \
           'StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8, MaxFragments=1, FragmentDelimiter=\" … \"') AS snippet \
         FROM hits, q \
         ORDER BY hits.score DESC, hits.created_at DESC, hits.seq DESC"
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, p.values))
        .await?;
    let mut total = 0u64;
    let mut hits = Vec::with_capacity(rows.len());
    for row in rows {
        total = u64::try_from(row.try_get::<i64>("", "total")?).unwrap_or(0);
        hits.push(Hit {
            memory: memory::Model::from_query_result(&row, "")?,
            score: row.try_get::<f64>("", "score")?,
            snippet: row.try_get::<String>("", "snippet")?,
        });
    }
    Ok((hits, total))
}

fn push_filters(p: &mut Params, sql: &mut String, user_id: Uuid, filter: &Filter) {
    if !filter.memory_types.is_empty() {
        let list = p.list(&filter.memory_types);
        sql.push_str(&format!(" AND m.memory_type IN ({list})"));
    }
    if let Some(after) = filter.created_after {
        let v = p.push(after);
        sql.push_str(&format!(" AND m.created_at > {v}"));
    }
    if let Some(before) = filter.created_before {
        let v = p.push(before);
        sql.push_str(&format!(" AND m.created_at < {v}"));
    }
    if !filter.tags.is_empty() {
        let user = p.push(user_id);
        let list = p.list(&filter.tags);
        let n = p.push(filter.tags.len() as i64);
        sql.push_str(&format!(
            " AND m.seq IN (SELECT memory_seq FROM memory_tags \
               WHERE user_id = {user} AND tag IN ({list}) \
               GROUP BY memory_seq HAVING COUNT(*) = {n})"
        ));
    }
}
