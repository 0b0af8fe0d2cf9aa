//! The per-user memory store: create, read, list, update (optimistic
//! concurrency), delete, ranked search and stats. Everything is scoped to the
//! principal's own account; another user's memory is "not found".

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{auth::Principal, paging, search_query, search_rank, validate};
use crate::{
    entity::memory,
    error::{Error, Result},
    scope::Scope,
    state::AppState,
    store::{self, memories::Filter},
    vocabulary::vocabulary,
};

pub const TITLE_MAX_CHARS: usize = 200;
pub const CONTENT_MAX_CHARS: usize = 50_000;
pub const MAX_TAGS: usize = 20;
pub const TAG_MAX_CHARS: usize = 50;
pub const METADATA_MAX_BYTES: usize = 16 * 1024;
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
pub const TOP_TAGS: u64 = 10;
/// Cursor kind of memory listings.
const CURSOR_KIND: &str = "m1";

vocabulary! {
    /// The kind of a memory.
    pub enum MemoryType ("memory type") {
        Context = "context",
        Project = "project",
        Knowledge = "knowledge",
        Reference = "reference",
        Personal = "personal",
        Workflow = "workflow",
    }
}

/// The kinds' names, for forms.
pub static MEMORY_TYPES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| MemoryType::ALL.iter().map(|t| t.as_str()).collect());

/// A memory as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    pub id: Uuid,
    pub title: String,
    pub content: String,
    pub memory_type: MemoryType,
    pub tags: Vec<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Memory {
    fn from_row(m: memory::Model) -> Result<Self> {
        let tags = serde_json::from_str(&m.tags)
            .map_err(|e| Error::caused_by(format!("stored tags of memory {}", m.id), e))?;
        let metadata = serde_json::from_str(&m.metadata)
            .map_err(|e| Error::caused_by(format!("stored metadata of memory {}", m.id), e))?;
        Ok(Self {
            id: m.id,
            title: m.title,
            content: m.content,
            memory_type: m
                .memory_type
                .parse()
                .map_err(|e: crate::vocabulary::Unknown| e.internal(format!("memory {}", m.id)))?,
            tags,
            metadata,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

pub struct CreateInput {
    pub title: String,
    pub content: String,
    pub memory_type: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<serde_json::Value>,
}

fn title(value: &str) -> Result<String> {
    validate::text("title", value, TITLE_MAX_CHARS)
}

fn content(value: String) -> Result<String> {
    if value.trim().is_empty() {
        return Err(Error::validation("content", "must not be empty"));
    }
    if value.chars().count() > CONTENT_MAX_CHARS {
        return Err(Error::validation(
            "content",
            format!("must be at most {CONTENT_MAX_CHARS} characters"),
        ));
    }
    if value.contains('\0') {
        return Err(Error::validation(
            "content",
            "must not contain NUL characters",
        ));
    }
    Ok(value)
}

fn memory_type(value: &str) -> Result<MemoryType> {
    value.trim().to_ascii_lowercase().parse().map_err(|_| {
        Error::validation(
            "memory_type",
            format!("must be one of {}", MEMORY_TYPES.join(", ")),
        )
    })
}

/// Trim, lower-case and deduplicate tags (order kept).
pub fn tags(field: &str, values: &[String]) -> Result<Vec<String>> {
    // Counted as sent, duplicates too: the limit the spec states.
    if values.len() > MAX_TAGS {
        return Err(Error::validation(field, format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in values.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let tag = validate::text(&at, raw, TAG_MAX_CHARS)?.to_lowercase();
        if tag.contains(',') {
            return Err(Error::validation(at, "must not contain commas"));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

fn metadata(
    value: serde_json::Value,
) -> Result<(String, serde_json::Map<String, serde_json::Value>)> {
    let serde_json::Value::Object(map) = value else {
        return Err(Error::validation("metadata", "must be a JSON object"));
    };
    let text =
        serde_json::to_string(&map).map_err(|e| Error::caused_by("serializing metadata", e))?;
    if text.len() > METADATA_MAX_BYTES {
        return Err(Error::validation(
            "metadata",
            format!("must be at most {METADATA_MAX_BYTES} bytes as JSON"),
        ));
    }
    Ok((text, map))
}

fn size_of(title: &str, content: &str, metadata: &str) -> i64 {
    (title.len() + content.len() + metadata.len()) as i64
}

pub async fn create(state: &AppState, principal: &Principal, input: CreateInput) -> Result<Memory> {
    principal.require(Scope::MemoriesWrite)?;
    let title = title(&input.title)?;
    let content = content(input.content)?;
    let memory_type = memory_type(input.memory_type.as_deref().unwrap_or("context"))?;
    let tags = tags("tags", input.tags.as_deref().unwrap_or_default())?;
    let (metadata, _) = metadata(input.metadata.unwrap_or_else(|| serde_json::json!({})))?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let row = store::memories::insert(
        &txn,
        store::memories::NewMemory {
            id: Uuid::now_v7(),
            user_id: principal.user_id,
            size_bytes: size_of(&title, &content, &metadata),
            title,
            content,
            memory_type: memory_type.as_str().to_owned(),
            tags,
            metadata,
            at: now,
        },
    )
    .await?;
    txn.commit().await?;
    Memory::from_row(row)
}

pub async fn get(state: &AppState, principal: &Principal, id: Uuid) -> Result<Memory> {
    principal.require(Scope::MemoriesRead)?;
    let row = store::memories::find_owned(&state.db, principal.user_id, id)
        .await?
        .ok_or(Error::NotFound("memory"))?;
    Memory::from_row(row)
}

pub struct UpdateInput {
    pub title: Option<String>,
    pub content: Option<String>,
    pub memory_type: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<serde_json::Value>,
    /// From `If-Match`: apply only if the memory is still at this version.
    pub expected_version: Option<i64>,
}

pub async fn update(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    input: UpdateInput,
) -> Result<Memory> {
    principal.require(Scope::MemoriesWrite)?;
    let new_title = input.title.as_deref().map(title).transpose()?;
    let new_content = input.content.map(content).transpose()?;
    let new_type = input.memory_type.as_deref().map(memory_type).transpose()?;
    let new_tags = input.tags.as_deref().map(|t| tags("tags", t)).transpose()?;
    let new_metadata = input
        .metadata
        .map(metadata)
        .transpose()?
        .map(|(text, _)| text);
    // Read outside the transaction; the transaction then starts with the
    // conditional write, so on SQLite it takes the write lock at once (and
    // waits for it) instead of failing to upgrade a read lock.
    let current = store::memories::find_owned(&state.db, principal.user_id, id)
        .await?
        .ok_or(Error::NotFound("memory"))?;
    if let Some(expected) = input.expected_version {
        if expected != current.version {
            return Err(version_mismatch(current.version));
        }
    }
    let size = size_of(
        new_title.as_deref().unwrap_or(&current.title),
        new_content.as_deref().unwrap_or(&current.content),
        new_metadata.as_deref().unwrap_or(&current.metadata),
    );
    let txn = crate::db::begin_write(&state.db).await?;
    let applied = store::memories::update(
        &txn,
        &current,
        input.expected_version,
        store::memories::Changes {
            title: new_title,
            content: new_content,
            memory_type: new_type.map(|t| t.as_str().to_owned()),
            tags: new_tags,
            metadata: new_metadata,
            size_bytes: size,
            at: state.clock.now(),
        },
    )
    .await?;
    if !applied {
        return Err(version_mismatch(current.version + 1));
    }
    let row = store::memories::find_owned(&txn, principal.user_id, id)
        .await?
        .ok_or(Error::NotFound("memory"))?;
    txn.commit().await?;
    Memory::from_row(row)
}

fn version_mismatch(current: i64) -> Error {
    Error::PreconditionFailed(format!(
        "The memory changed: it is at version {current} or later. Read it again and retry."
    ))
}

pub async fn delete(state: &AppState, principal: &Principal, id: Uuid) -> Result<()> {
    principal.require(Scope::MemoriesWrite)?;
    if store::memories::delete_owned(&state.db, principal.user_id, id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("memory"))
    }
}

pub struct ListInput {
    pub memory_type: Option<String>,
    pub tags: Vec<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct Page {
    pub memories: Vec<Memory>,
    pub next_cursor: Option<String>,
    pub total: u64,
}

fn filter(
    types: Vec<String>,
    tag_list: &[String],
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    types_field: &str,
) -> Result<Filter> {
    let memory_types = types
        .iter()
        .map(|t| {
            memory_type(t).map(|t| t.as_str().to_owned()).map_err(|_| {
                Error::validation(
                    types_field,
                    format!("must be one of {}", MEMORY_TYPES.join(", ")),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Filter {
        memory_types,
        tags: tags("tags", tag_list)?,
        created_after: after,
        created_before: before,
    })
}

pub async fn list(state: &AppState, principal: &Principal, input: ListInput) -> Result<Page> {
    principal.require(Scope::MemoriesRead)?;
    let limit = paging::limit(input.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let before_seq = input
        .cursor
        .as_deref()
        .map(|c| paging::decode(CURSOR_KIND, c))
        .transpose()?;
    let filter = filter(
        input.memory_type.into_iter().collect(),
        &input.tags,
        input.created_after,
        input.created_before,
        "memory_type",
    )?;
    let (rows, total) =
        store::memories::list(&state.db, principal.user_id, &filter, before_seq, limit + 1).await?;
    let (rows, next_cursor) = paging::split(rows, limit, CURSOR_KIND, |m| m.seq);
    Ok(Page {
        memories: rows
            .into_iter()
            .map(Memory::from_row)
            .collect::<Result<_>>()?,
        next_cursor,
        total,
    })
}

pub struct SearchInput {
    pub query: String,
    pub memory_types: Vec<String>,
    pub tags: Vec<String>,
    pub limit: Option<i64>,
}

pub struct SearchHit {
    pub memory: Memory,
    /// 0-100: 100 for the best hit, the others in proportion to their rank
    /// ([`search_rank::relevance`]).
    pub score: f64,
    pub snippet: String,
}

pub struct SearchResults {
    pub results: Vec<SearchHit>,
    pub total_results: u64,
    pub took_ms: f64,
}

pub async fn search(
    state: &AppState,
    principal: &Principal,
    input: SearchInput,
) -> Result<SearchResults> {
    principal.require(Scope::MemoriesRead)?;
    let started = Instant::now();
    let config = &state.config;
    if input.query.chars().count() > search_query::MAX_QUERY_CHARS {
        return Err(Error::validation(
            "query",
            format!(
                "must be at most {} characters",
                search_query::MAX_QUERY_CHARS
            ),
        ));
    }
    let terms = search_query::parse(&input.query);
    if terms.is_empty() {
        return Err(Error::validation("query", "must contain at least one word"));
    }
    let words = search_query::word_count(&terms);
    if words > search_query::MAX_TERMS {
        return Err(Error::validation(
            "query",
            format!(
                "must have at most {} distinct words (each word of a phrase counts); it has {words}",
                search_query::MAX_TERMS
            ),
        ));
    }
    let limit = paging::limit(input.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let filter = filter(input.memory_types, &input.tags, None, None, "memory_types")?;
    // One account runs at most a few searches at a time, whichever of its
    // credentials sends them; the budget starts once it has its turn.
    let _turn = state
        .search_gate
        .enter(
            &principal.user_id.to_string(),
            config.search_concurrency_per_user as usize,
            Duration::from_millis(config.search_queue_ms),
        )
        .await?;
    let budget = Duration::from_millis(config.search_timeout_ms);
    let found = store::memories::search(
        &state.db,
        principal.user_id,
        &terms,
        &search_query::to_tsquery(&terms),
        &filter,
        limit,
        Instant::now() + budget,
    )
    .await?;
    let Some((hits, total)) = found else {
        tracing::warn!(user_id = %principal.user_id, budget_ms = config.search_timeout_ms, "search stopped at its time budget");
        return Err(Error::SearchTimeout {
            budget_ms: config.search_timeout_ms,
        });
    };
    let best = hits.iter().map(|h| h.score).fold(0.0, f64::max);
    let results = hits
        .into_iter()
        .map(|h| {
            Ok(SearchHit {
                memory: Memory::from_row(h.memory)?,
                score: search_rank::relevance(h.score, best),
                snippet: h.snippet,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SearchResults {
        results,
        total_results: total,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

pub struct Stats {
    pub total_memories: i64,
    pub by_type: Vec<(String, i64)>,
    pub top_tags: Vec<(String, i64)>,
    pub total_bytes: i64,
    pub oldest_at: Option<DateTime<Utc>>,
    pub newest_at: Option<DateTime<Utc>>,
}

pub async fn stats(state: &AppState, principal: &Principal) -> Result<Stats> {
    principal.require(Scope::MemoriesRead)?;
    let s = store::memories::stats(&state.db, principal.user_id, TOP_TAGS).await?;
    Ok(Stats {
        total_memories: s.total,
        by_type: s.by_type,
        top_tags: s.top_tags,
        total_bytes: s.total_bytes,
        oldest_at: s.oldest_at,
        newest_at: s.newest_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_types_round_trip_and_unknown_ones_fail() {
        crate::vocabulary::assert_round_trip(MemoryType::ALL, "note");
        assert_eq!(memory_type(" Project ").unwrap(), MemoryType::Project);
        assert!(matches!(
            memory_type("note"),
            Err(Error::Validation { field, .. }) if field == "memory_type"
        ));
    }

    #[test]
    fn a_stored_memory_type_that_does_not_parse_is_an_internal_error() {
        let now = chrono::DateTime::UNIX_EPOCH;
        let row = memory::Model {
            seq: 1,
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            title: "t".into(),
            content: "c".into(),
            memory_type: "note".into(),
            tags: "[]".into(),
            metadata: "{}".into(),
            version: 1,
            size_bytes: 3,
            created_at: now,
            updated_at: now,
        };
        match Memory::from_row(row) {
            Err(e @ Error::Unexpected { .. }) => {
                let m = crate::error::chain(&e);
                assert!(m.contains("memory 0000") && m.contains("note"), "{m}")
            }
            other => panic!("expected an internal error, got {other:?}"),
        }
    }
}
