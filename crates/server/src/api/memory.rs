//! The caller's memories: CRUD with optimistic concurrency, ranked search, stats.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    ApiResponse, Object, OpenApi,
};
use uuid::Uuid;

use super::{
    auth::{Auth, OAuthScope},
    body::JsonBody,
    error::{ApiError, ApiResult},
    idempotency::{self as idempotent, StoredJson},
    ApiTags,
};
use crate::{
    error::Error,
    scope::Scope,
    service::memories::{self as svc},
    state::AppState,
};

pub struct MemoryApi;

// The request and response types below are also the MCP tools' (one shape
// for both faces): poem-openapi's derives write the REST spec, serde's and
// schemars' the tools' JSON and schemas (`mcp::tools`). Output `Option`s
// are omitted when absent, as REST omits them.
/// The kind of a memory: the service's vocabulary.
pub use crate::service::memories::MemoryType;

type Metadata = BTreeMap<String, serde_json::Value>;

// `Serialize`: the MCP tool's idempotency fingerprint (absent fields as
// `null`, so the bytes do not depend on which options were sent).
/// A new memory.
#[derive(Object, Clone, serde::Serialize, serde::Deserialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct CreateMemoryRequest {
    /// A short title; trimmed.
    pub title: String,
    /// The text to remember.
    pub content: String,
    /// Default `context`.
    pub memory_type: Option<MemoryType>,
    /// Tags without commas; trimmed, lower-cased, deduplicated.
    pub tags: Option<Vec<String>>,
    /// Any JSON object of at most 16 KiB.
    pub metadata: Option<Metadata>,
}

/// A partial update: only the fields sent change.
#[derive(Object, serde::Deserialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct UpdateMemoryRequest {
    pub title: Option<String>,
    pub content: Option<String>,
    pub memory_type: Option<MemoryType>,
    /// Replaces all tags.
    pub tags: Option<Vec<String>>,
    /// Replaces the metadata object.
    pub metadata: Option<Metadata>,
}

/// A memory.
#[derive(Object, serde::Serialize, serde::Deserialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[schemars(crate = "rmcp::schemars")]
pub struct Memory {
    pub id: String,
    pub title: String,
    pub content: String,
    pub memory_type: MemoryType,
    pub tags: Vec<String>,
    pub metadata: Metadata,
    /// Starts at 1, +1 on every update; send it as `If-Match` to update safely.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One page of memories, newest first.
#[derive(Object, serde::Serialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[schemars(crate = "rmcp::schemars")]
pub struct MemoryPage {
    pub memories: Vec<Memory>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Memories matching the filters, over all pages.
    pub total: u64,
}

/// A search.
#[derive(Object, serde::Deserialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "rmcp::schemars")]
pub struct SearchRequest {
    /// Words (all must match), `"quoted phrases"`, `prefix*`; at most 16 distinct words.
    pub query: String,
    /// Only these kinds.
    pub memory_types: Option<Vec<MemoryType>>,
    /// Only memories carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// Default 20.
    pub limit: Option<i64>,
}

/// One search hit.
#[derive(Object, serde::Serialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[schemars(crate = "rmcp::schemars")]
pub struct SearchResult {
    pub memory: Memory,
    /// Relevance from 0 to 100, one decimal: 100 for the best match of this
    /// search, the others in proportion to how the search ranks them (50 ranks
    /// half as high as the best). It compares the results of one response with
    /// each other; it does not say how well the best one matches, and is not
    /// comparable across searches.
    #[oai(validator(minimum(value = "0"), maximum(value = "100")))]
    pub score: f64,
    /// An excerpt of the content with matches in `<mark>…</mark>` (not HTML-escaped).
    pub snippet: String,
}

/// Ranked search results.
#[derive(Object, serde::Serialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[schemars(crate = "rmcp::schemars")]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    /// All matches, of which `results` is the top `limit`.
    pub total_results: u64,
    pub took_ms: f64,
}

/// A tag and how many memories carry it.
#[derive(Object, serde::Serialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[schemars(crate = "rmcp::schemars")]
pub struct TagCount {
    pub tag: String,
    pub count: i64,
}

/// Numbers about the caller's memories.
#[derive(Object, serde::Serialize, rmcp::schemars::JsonSchema)]
#[oai(skip_serializing_if_is_none)]
#[schemars(crate = "rmcp::schemars")]
pub struct MemoryStats {
    pub total_memories: i64,
    /// Count per memory type (types without memories are absent).
    pub by_type: BTreeMap<String, i64>,
    /// The 10 most used tags.
    pub top_tags: Vec<TagCount>,
    /// Bytes of titles, contents and metadata.
    pub total_bytes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_at: Option<DateTime<Utc>>,
}

#[derive(ApiResponse)]
pub enum MemoryCreated {
    /// Created.
    #[oai(status = 201)]
    Created(StoredJson<Memory>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum MemoryResponse {
    /// The memory; `ETag` is its version.
    #[oai(status = 200)]
    Ok(Json<Memory>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum MemoryPageResponse {
    /// A page of memories.
    #[oai(status = 200)]
    Ok(Json<MemoryPage>),
}

#[derive(ApiResponse)]
pub enum SearchResponseBody {
    /// Ranked results.
    #[oai(status = 200)]
    Ok(Json<SearchResponse>),
}

#[derive(ApiResponse)]
pub enum StatsResponse {
    /// The numbers.
    #[oai(status = 200)]
    Ok(Json<MemoryStats>),
}

#[derive(ApiResponse)]
pub enum DeletedResponse {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

impl From<svc::Memory> for Memory {
    fn from(m: svc::Memory) -> Self {
        Memory {
            id: m.id.to_string(),
            title: m.title,
            content: m.content,
            memory_type: m.memory_type,
            tags: m.tags,
            metadata: m.metadata.into_iter().collect(),
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<svc::Page> for MemoryPage {
    fn from(page: svc::Page) -> Self {
        MemoryPage {
            memories: page.memories.into_iter().map(Memory::from).collect(),
            next_cursor: page.next_cursor,
            total: page.total,
        }
    }
}

impl From<svc::SearchResults> for SearchResponse {
    fn from(found: svc::SearchResults) -> Self {
        SearchResponse {
            results: found
                .results
                .into_iter()
                .map(|h| SearchResult {
                    memory: h.memory.into(),
                    score: h.score,
                    snippet: h.snippet,
                })
                .collect(),
            total_results: found.total_results,
            took_ms: found.took_ms,
        }
    }
}

impl From<svc::Stats> for MemoryStats {
    fn from(s: svc::Stats) -> Self {
        MemoryStats {
            total_memories: s.total_memories,
            by_type: s.by_type.into_iter().collect(),
            top_tags: s
                .top_tags
                .into_iter()
                .map(|(tag, count)| TagCount { tag, count })
                .collect(),
            total_bytes: s.total_bytes,
            oldest_at: s.oldest_at,
            newest_at: s.newest_at,
        }
    }
}

impl From<CreateMemoryRequest> for svc::CreateInput {
    fn from(req: CreateMemoryRequest) -> Self {
        svc::CreateInput {
            title: req.title,
            content: req.content,
            memory_type: req.memory_type.map(|t| t.as_str().to_owned()),
            tags: req.tags,
            metadata: metadata_value(req.metadata),
        }
    }
}

impl UpdateMemoryRequest {
    /// The change, applied only at `expected_version` when given.
    pub(crate) fn into_input(self, expected_version: Option<i64>) -> svc::UpdateInput {
        svc::UpdateInput {
            title: self.title,
            content: self.content,
            memory_type: self.memory_type.map(|t| t.as_str().to_owned()),
            tags: self.tags,
            metadata: metadata_value(self.metadata),
            expected_version,
        }
    }
}

impl From<SearchRequest> for svc::SearchInput {
    fn from(req: SearchRequest) -> Self {
        svc::SearchInput {
            query: req.query,
            memory_types: req
                .memory_types
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            tags: req.tags.unwrap_or_default(),
            limit: req.limit,
        }
    }
}

fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// A memory id from the path; anything that is not a uuid cannot exist.
fn memory_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::from(Error::NotFound("memory")))
}

/// `If-Match: "3"` (or `3`, `W/"3"`); `*` means no condition.
fn if_match(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw.map(str::trim) else {
        return Ok(None);
    };
    if raw == "*" {
        return Ok(None);
    }
    raw.trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| {
            ApiError::from(Error::validation(
                "If-Match",
                "must be a version as returned in ETag, e.g. \"3\"",
            ))
        })
}

fn metadata_value(m: Option<Metadata>) -> Option<serde_json::Value> {
    m.map(|m| serde_json::Value::Object(m.into_iter().collect()))
}

#[OpenApi(prefix_path = "/api/v1")]
impl MemoryApi {
    /// Store a memory (scope `memories:write`).
    #[oai(
        path = "/memory",
        method = "post",
        operation_id = "memory_create",
        tag = "ApiTags::Memory"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::MemoriesWrite")] auth: Auth,
        request: &poem::Request,
        /// Makes the request safe to retry: the same key with the same body
        /// within 24 h returns the first response and creates nothing more.
        /// Printable ASCII.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<CreateMemoryRequest>,
    ) -> ApiResult<MemoryCreated> {
        let req = body.0;
        let input = svc::CreateInput::from(req.clone());
        let created = idempotent::run(
            &state,
            &auth,
            Scope::MemoriesWrite,
            &idempotency_key,
            request,
            &req,
            201,
            async { svc::create(&state, &auth.0, input).await.map(Memory::from) },
        )
        .await?;
        // A new memory is always at version 1 (also when replayed).
        Ok(MemoryCreated::Created(created, etag(1)))
    }

    /// List the caller's memories, newest first (scope `memories:read`).
    #[oai(
        path = "/memory",
        method = "get",
        operation_id = "memory_list",
        tag = "ApiTags::Memory"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::MemoriesRead")] auth: Auth,
        /// Only this kind.
        memory_type: Query<Option<MemoryType>>,
        /// Comma-separated tags; every one must be present.
        tags: Query<Option<String>>,
        /// Created strictly after this instant (RFC 3339).
        created_after: Query<Option<DateTime<Utc>>>,
        /// Created strictly before this instant (RFC 3339).
        created_before: Query<Option<DateTime<Utc>>>,
        /// Default 20.
        limit: Query<Option<i64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<MemoryPageResponse> {
        let tags = tags
            .0
            .map(|t| {
                t.split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let page = svc::list(
            &state,
            &auth.0,
            svc::ListInput {
                memory_type: memory_type.0.map(|t| t.as_str().to_owned()),
                tags,
                created_after: created_after.0,
                created_before: created_before.0,
                limit: limit.0,
                cursor: cursor.0,
            },
        )
        .await?;
        Ok(MemoryPageResponse::Ok(Json(page.into())))
    }

    /// Ranked full-text search over the caller's memories (scope `memories:read`).
    #[oai(
        path = "/memory/search",
        method = "post",
        operation_id = "memory_search",
        tag = "ApiTags::Memory"
    )]
    async fn search(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::MemoriesRead")] auth: Auth,
        body: JsonBody<SearchRequest>,
    ) -> ApiResult<SearchResponseBody> {
        let found = svc::search(&state, &auth.0, body.0.into()).await?;
        Ok(SearchResponseBody::Ok(Json(found.into())))
    }

    /// Numbers about the caller's memories (scope `memories:read`).
    #[oai(
        path = "/memory/stats",
        method = "get",
        operation_id = "memory_stats",
        tag = "ApiTags::Memory"
    )]
    async fn stats(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::MemoriesRead")] auth: Auth,
    ) -> ApiResult<StatsResponse> {
        let s = svc::stats(&state, &auth.0).await?;
        Ok(StatsResponse::Ok(Json(s.into())))
    }

    /// One of the caller's memories (scope `memories:read`).
    #[oai(
        path = "/memory/:id",
        method = "get",
        operation_id = "memory_get",
        tag = "ApiTags::Memory"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::MemoriesRead")] auth: Auth,
        id: Path<String>,
    ) -> ApiResult<MemoryResponse> {
        let m = svc::get(&state, &auth.0, memory_id(&id)?).await?;
        let tag = etag(m.version);
        Ok(MemoryResponse::Ok(Json(m.into()), tag))
    }

    /// Change some fields of a memory (scope `memories:write`). With
    /// `If-Match`, only if the memory is still at that version (else 412).
    #[oai(
        path = "/memory/:id",
        method = "patch",
        operation_id = "memory_update",
        tag = "ApiTags::Memory"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::MemoriesWrite")] auth: Auth,
        id: Path<String>,
        /// The version the change is based on, as returned in `ETag`.
        #[oai(name = "If-Match")]
        if_match_header: Header<Option<String>>,
        body: JsonBody<UpdateMemoryRequest>,
    ) -> ApiResult<MemoryResponse> {
        let id = memory_id(&id)?;
        let expected_version = if_match(if_match_header.0.as_deref())?;
        let m = svc::update(&state, &auth.0, id, body.0.into_input(expected_version)).await?;
        let tag = etag(m.version);
        Ok(MemoryResponse::Ok(Json(m.into()), tag))
    }

    /// Delete one of the caller's memories (scope `memories:write`).
    #[oai(
        path = "/memory/:id",
        method = "delete",
        operation_id = "memory_delete",
        tag = "ApiTags::Memory"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "OAuthScope::MemoriesWrite")] auth: Auth,
        id: Path<String>,
    ) -> ApiResult<DeletedResponse> {
        svc::delete(&state, &auth.0, memory_id(&id)?).await?;
        Ok(DeletedResponse::NoContent)
    }
}
