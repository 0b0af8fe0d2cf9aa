//! The backend-specific search over one user's memories, both owner-first
//! (SQLite: a scan of the caller's rows ranked by `service::search_rank`;
//! Postgres: `tsvector` over the caller's rows).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Instant,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, RuntimeErr, Statement, TransactionTrait, Value,
};
use uuid::Uuid;

use super::Filter;
use crate::{
    entity::memory::{self, Column, Entity},
    service::{
        search_query::Term,
        search_rank::{snippet, Matcher, Ranker},
    },
};

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

/// Ranked full-text search over one user's memories, evaluated owner-first:
/// its cost depends on the caller's own rows only, never on other users'.
/// `terms` are the parsed query (see `service::search_query`) and `ts_query`
/// the `to_tsquery` text for the same terms (used on Postgres). The search
/// stops at `deadline`: `Ok(None)` means it did not finish in time.
/// Returns the hits and the total number of matches.
pub async fn search(
    db: &DatabaseConnection,
    user_id: Uuid,
    terms: &[Term],
    ts_query: &str,
    filter: &Filter,
    limit: u64,
    deadline: Instant,
) -> Result<Option<(Vec<Hit>, u64)>, DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => search_sqlite(db, user_id, terms, filter, limit, deadline).await,
        DbBackend::Postgres => {
            search_postgres(db, user_id, ts_query, filter, limit, deadline).await
        }
        other => Err(DbErr::Custom(format!(
            "search is not supported on {other:?}"
        ))),
    }
}

/// Rows read per statement while scanning a user's memories on SQLite.
const SCAN_CHUNK: i64 = 128;
/// SQLite virtual-machine steps between two looks at the clock.
const PROGRESS_STEPS: i32 = 1000;

fn sqlx_err(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

/// SQLite answers `SQLITE_INTERRUPT` (9) when the progress handler stops a
/// statement.
fn sqlite_interrupted(e: &sea_orm::sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "9")
}

/// Clears a progress handler's `active` flag when the search ends, however
/// it ends (a dropped request included), so a handler left on a pooled
/// connection never interrupts a later statement.
struct Budget(Arc<AtomicBool>);

impl Drop for Budget {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// SQLite: read the caller's rows (filters applied) by the `(user_id, seq)`
/// index in chunks, match and rank them in `service::search_rank`, then load
/// the page. A progress handler interrupts any statement running past the
/// deadline, and the scan looks at the clock after every row.
async fn search_sqlite(
    db: &DatabaseConnection,
    user_id: Uuid,
    terms: &[Term],
    filter: &Filter,
    limit: u64,
    deadline: Instant,
) -> Result<Option<(Vec<Hit>, u64)>, DbErr> {
    use sea_orm::sqlx::{self, Row};

    let matcher = Matcher::new(terms);
    let mut conn = db
        .get_sqlite_connection_pool()
        .acquire()
        .await
        .map_err(sqlx_err)?;
    let budget = Budget(Arc::new(AtomicBool::new(true)));
    {
        let active = budget.0.clone();
        let mut handle = conn.lock_handle().await.map_err(sqlx_err)?;
        handle.set_progress_handler(PROGRESS_STEPS, move || {
            !active.load(Ordering::Relaxed) || Instant::now() < deadline
        });
    }
    let scanned: Result<Option<Ranker<_>>, DbErr> = async {
        let mut ranker = Ranker::new(matcher.clone());
        let mut before = i64::MAX;
        loop {
            let mut p = Params {
                backend: DbBackend::Sqlite,
                values: Vec::new(),
            };
            let user = p.push(user_id);
            let mut filters = String::new();
            push_filters(&mut p, &mut filters, user_id, filter);
            let below = p.push(before);
            let lim = p.push(SCAN_CHUNK);
            let sql = format!(
                "SELECT m.seq, m.created_at, m.title, m.content FROM memories m \
                 WHERE m.user_id = {user}{filters} AND m.seq < {below} \
                 ORDER BY m.seq DESC LIMIT {lim}"
            );
            // Audited: the SQL is ours; every value is a bound parameter.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for v in p.values {
                query = match v {
                    Value::String(s) => query.bind(s),
                    Value::BigInt(i) => query.bind(i),
                    Value::Uuid(u) => query.bind(u),
                    Value::ChronoDateTimeUtc(t) => query.bind(t),
                    other => return Err(DbErr::Custom(format!("unexpected parameter {other:?}"))),
                };
            }
            let rows = match query.fetch_all(&mut *conn).await {
                Ok(rows) => rows,
                Err(e) if sqlite_interrupted(&e) => return Ok(None),
                Err(e) => return Err(sqlx_err(e)),
            };
            let full = rows.len() as i64 == SCAN_CHUNK;
            // Scoring is CPU work: off the async workers, so other requests
            // keep being served while it runs.
            let scored = tokio::task::spawn_blocking(move || {
                let mut last = None;
                for row in &rows {
                    if Instant::now() >= deadline {
                        return Ok((ranker, last, false));
                    }
                    let seq: i64 = row.try_get("seq").map_err(sqlx_err)?;
                    let created_at: DateTime<Utc> = row.try_get("created_at").map_err(sqlx_err)?;
                    let title: &str = row.try_get("title").map_err(sqlx_err)?;
                    let content: &str = row.try_get("content").map_err(sqlx_err)?;
                    ranker.add((created_at, seq), title, content);
                    last = Some(seq);
                }
                Ok::<_, DbErr>((ranker, last, true))
            })
            .await
            .map_err(|e| DbErr::Custom(format!("search scoring task: {e}")))??;
            let (scored, last_seq, in_time) = scored;
            ranker = scored;
            if !in_time {
                return Ok(None);
            }
            match last_seq {
                Some(seq) if full => before = seq,
                _ => return Ok(Some(ranker)),
            }
        }
    }
    .await;
    if let Ok(mut handle) = conn.lock_handle().await {
        handle.remove_progress_handler();
    }
    drop(budget);
    drop(conn);
    let Some(ranker) = scanned? else {
        return Ok(None);
    };
    let mut ranked = ranker.finish();
    ranked.sort_by(|(ka, a), (kb, b)| b.total_cmp(a).then(kb.cmp(ka)));
    let total = ranked.len() as u64;
    ranked.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    if ranked.is_empty() {
        return Ok(Some((Vec::new(), total)));
    }
    let rows = Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Seq.is_in(ranked.iter().map(|((_, seq), _)| *seq)))
        .all(db)
        .await?;
    let mut by_seq: std::collections::HashMap<i64, memory::Model> =
        rows.into_iter().map(|m| (m.seq, m)).collect();
    let hits = ranked
        .into_iter()
        .filter_map(|((_, seq), score)| {
            // A row deleted since the scan is left out.
            let memory = by_seq.remove(&seq)?;
            let snippet = snippet(&matcher, &memory.content);
            Some(Hit {
                memory,
                score,
                snippet,
            })
        })
        .collect();
    Ok(Some((hits, total)))
}

/// Postgres answers `query_canceled` (57014) when `statement_timeout` ends a
/// statement.
fn postgres_canceled(e: &DbErr) -> bool {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            inner
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "57014")
        }
        _ => false,
    }
}

/// Postgres: the caller's rows first (a MATERIALIZED CTE by the
/// `(user_id, seq)` index, filters applied), then `@@` and `ts_rank_cd` over
/// those only; headlines for the page alone. One read-only transaction whose
/// `statement_timeout` is what is left of the budget.
async fn search_postgres(
    db: &DatabaseConnection,
    user_id: Uuid,
    ts_query: &str,
    filter: &Filter,
    limit: u64,
    deadline: Instant,
) -> Result<Option<(Vec<Hit>, u64)>, DbErr> {
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
    let sql = format!(
        "WITH q AS (SELECT to_tsquery('simple', {query}) AS query), \
         own AS MATERIALIZED ( \
           SELECT m.seq, m.created_at, m.search FROM memories m \
           WHERE m.user_id = {user}{filters}), \
         ranked AS ( \
           SELECT own.seq, \
             ts_rank_cd('{{0.1, 0.2, 0.4, 1.0}}', own.search, q.query, 1)::float8 AS score, \
             COUNT(*) OVER () AS total \
           FROM own, q \
           WHERE own.search @@ q.query \
           ORDER BY score DESC, own.created_at DESC, own.seq DESC \
           LIMIT {lim}) \
         SELECT {MEMORY_COLUMNS}, ranked.score, ranked.total, \
           ts_headline('simple', m.content, q.query, \
           'StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8, MaxFragments=1, FragmentDelimiter=\" … \"') AS snippet \
         FROM ranked JOIN memories m ON m.seq = ranked.seq, q \
         ORDER BY ranked.score DESC, m.created_at DESC, m.seq DESC"
    );
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Ok(None);
    }
    let txn = db.begin().await?;
    let ms = Ord::max(u64::try_from(left.as_millis()).unwrap_or(u64::MAX), 1);
    txn.execute_unprepared(&format!("SET LOCAL statement_timeout = {ms}"))
        .await?;
    let rows = match txn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, p.values))
        .await
    {
        Ok(rows) => rows,
        Err(e) if postgres_canceled(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    txn.commit().await?;
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
    Ok(Some((hits, total)))
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
