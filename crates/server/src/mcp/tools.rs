//! The MCP tools: the memory store, through the same service layer as the
//! REST routes. The caller comes from the credential the HTTP gate checked
//! (a `Principal` in the request extensions), never from a tool argument.
//! User mistakes (not found, validation, stale version) are tool errors
//! (`isError`) with a structured body; only server failures are protocol
//! errors.

use std::sync::Arc;

use rmcp::{
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    },
    schemars,
    service::RequestContext,
    tool, tool_handler, tool_router, ErrorData as McpError, RoleServer, ServerHandler,
};
use serde::{Deserialize, Serialize};

use uuid::Uuid;

use crate::{
    api::memory::MemoryType,
    error::Error,
    scope::Scope,
    service::{auth::Principal, idempotency, memories as svc},
    state::AppState,
};

type Metadata = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    /// Short title, 1-200 characters.
    pub title: String,
    /// The text to remember, 1-50,000 characters.
    pub content: String,
    /// Kind of memory (default `context`).
    pub memory_type: Option<MemoryType>,
    /// Up to 20 tags of 1-50 characters.
    pub tags: Option<Vec<String>>,
    /// Any JSON object of at most 16 KiB.
    pub metadata: Option<Metadata>,
    /// Makes the call safe to retry: the same key with the same arguments
    /// within 24 h returns the first result and creates nothing more.
    /// 1-255 printable ASCII characters.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words (all must match), "quoted phrases", prefix*; at most 1,000 characters.
    pub query: String,
    /// Only these kinds.
    pub memory_types: Option<Vec<MemoryType>>,
    /// Only memories carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// 1-100, default 20.
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct IdArgs {
    /// The memory's id (a UUID).
    pub id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// The memory's id (a UUID).
    pub id: String,
    pub title: Option<String>,
    pub content: Option<String>,
    pub memory_type: Option<MemoryType>,
    /// Replaces all tags.
    pub tags: Option<Vec<String>>,
    /// Replaces the metadata object.
    pub metadata: Option<Metadata>,
    /// Apply only if the memory is still at this version (from memory_get).
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Only this kind.
    pub memory_type: Option<MemoryType>,
    /// Only memories carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// 1-100, default 20.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A memory as tools return it (the REST `Memory` shape).
#[derive(Serialize)]
struct MemoryOut {
    id: String,
    title: String,
    content: String,
    memory_type: String,
    tags: Vec<String>,
    metadata: Metadata,
    version: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<svc::Memory> for MemoryOut {
    fn from(m: svc::Memory) -> Self {
        Self {
            id: m.id.to_string(),
            title: m.title,
            content: m.content,
            memory_type: m.memory_type,
            tags: m.tags,
            metadata: m.metadata,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// The scope each tool needs: the one table the tool list, the calls, the
/// gate and the 401 challenge use. A tool missing here cannot be called
/// (`every_tool_has_a_scope` ties it to the router).
pub const TOOL_SCOPES: &[(&str, Scope)] = &[
    ("memory_search", Scope::MemoriesRead),
    ("memory_get", Scope::MemoriesRead),
    ("memory_list", Scope::MemoriesRead),
    ("memory_stats", Scope::MemoriesRead),
    ("memory_create", Scope::MemoriesWrite),
    ("memory_update", Scope::MemoriesWrite),
    ("memory_delete", Scope::MemoriesWrite),
    ("connections_list", Scope::ConnectionsRead),
];

/// The scope `tool` needs; `None` for a name not in [`TOOL_SCOPES`].
pub fn required_scope(tool: &str) -> Option<Scope> {
    TOOL_SCOPES
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, scope)| *scope)
}

/// The distinct scopes of the tools, in table order.
pub fn tool_scopes() -> Vec<Scope> {
    let mut out: Vec<Scope> = Vec::new();
    for (_, s) in TOOL_SCOPES {
        if !out.contains(s) {
            out.push(*s);
        }
    }
    out
}

/// The formats of JSON Schema itself (2020-12 §7.3); strict validators
/// (Ajv in strict mode) refuse any other, such as the `int64` and `uint32`
/// the schema generator writes for Rust integers.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// `tool` with schemas every validator accepts: non-standard `format`s
/// removed (the type and its `minimum` still say what is allowed).
fn portable(mut tool: rmcp::model::Tool) -> rmcp::model::Tool {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if map
                    .get("format")
                    .and_then(|f| f.as_str())
                    .is_some_and(|f| !STANDARD_FORMATS.contains(&f))
                {
                    map.remove("format");
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    fn fix(schema: &Arc<rmcp::model::JsonObject>) -> Arc<rmcp::model::JsonObject> {
        let mut value = serde_json::Value::Object((**schema).clone());
        strip(&mut value);
        match value {
            serde_json::Value::Object(map) => Arc::new(map),
            _ => schema.clone(),
        }
    }
    tool.input_schema = fix(&tool.input_schema);
    tool.output_schema = tool.output_schema.as_ref().map(fix);
    tool
}

/// The principal the HTTP gate authenticated.
fn principal(ctx: &RequestContext<RoleServer>) -> Option<Principal> {
    ctx.extensions
        .get::<poem::http::request::Parts>()?
        .extensions
        .get::<Principal>()
        .cloned()
}

fn no_principal() -> McpError {
    McpError::internal_error("no authenticated caller", None)
}

/// A domain error as a tool result: user mistakes are tool errors, server
/// failures protocol errors (logged, without detail to the client).
fn failure(e: Error) -> Result<CallToolResult, McpError> {
    let (code, message, field) = match e {
        Error::Validation { field, message } => (
            "validation_failed",
            format!("{field} {message}"),
            Some(field),
        ),
        Error::NotFound(what) => ("not_found", format!("No such {what}."), None),
        Error::PreconditionFailed(message) => ("version_mismatch", message, None),
        Error::Conflict { code, message } => (code, message, None),
        Error::InsufficientScope { required } => (
            "insufficient_scope",
            format!(
                "This credential lacks the scope(s): {}.",
                required
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            None,
        ),
        Error::RateLimited {
            retry_after_secs, ..
        } => (
            "rate_limited",
            format!("Too many requests; retry in {retry_after_secs} s."),
            None,
        ),
        Error::SearchTimeout { budget_ms } => (
            "search_timeout",
            format!("The search did not finish within its time budget of {budget_ms} ms; use fewer or more specific words, or retry shortly."),
            None,
        ),
        other => {
            tracing::error!(request_id = %crate::http::context::request_id(), error = %other, "mcp tool failed");
            return Err(McpError::internal_error(
                if other.is_unavailable() {
                    "the database is unreachable; retry shortly"
                } else {
                    "an unexpected error occurred"
                },
                None,
            ));
        }
    };
    let mut body = serde_json::json!({ "error": code, "message": message });
    if let Some(f) = field {
        body["field"] = f.into();
    }
    let mut result = CallToolResult::structured_error(body);
    result.content = vec![ContentBlock::text(format!("Error ({code}): {message}"))];
    Ok(result)
}

fn success(value: serde_json::Value, text: String) -> Result<CallToolResult, McpError> {
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
}

fn parse_id(id: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(id.trim()).map_err(|_| Error::validation("id", "must be a memory id (UUID)"))
}

fn render(m: &MemoryOut) -> String {
    let tags = if m.tags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", m.tags.join(", "))
    };
    format!(
        "# {} ({}, v{}){tags}\nid: {}\n\n{}",
        m.title, m.memory_type, m.version, m.id, m.content
    )
}

fn to_json(v: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// The MCP server: one instance per request (stateless), cheap to clone.
#[derive(Clone)]
pub struct MemoryTools {
    state: AppState,
    tool_router: Arc<ToolRouter<MemoryTools>>,
}

#[tool_router]
impl MemoryTools {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            tool_router: Arc::new(Self::tool_router()),
        }
    }

    /// Save a new memory: a fact, decision, preference or note worth recalling
    /// in later conversations. Give it a short descriptive title, the full
    /// text as content, optionally a kind and tags.
    #[tool(name = "memory_create")]
    async fn memory_create(
        &self,
        Parameters(args): Parameters<CreateArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        let memory_type = args.memory_type.map(|t| t.as_str().to_owned());
        // What a retry must repeat: every argument but the key.
        let fingerprint = serde_json::to_vec(&serde_json::json!({
            "title": args.title,
            "content": args.content,
            "memory_type": memory_type,
            "tags": args.tags,
            "metadata": args.metadata,
        }))
        .unwrap_or_default();
        let input = svc::CreateInput {
            title: args.title,
            content: args.content,
            memory_type,
            tags: args.tags,
            metadata: args.metadata.map(serde_json::Value::Object),
        };
        let created = idempotency::run(
            &self.state,
            &p,
            Scope::MemoriesWrite,
            args.idempotency_key.as_deref(),
            idempotency::Request {
                method: "MCP tools/call",
                path: "memory_create",
                body: &fingerprint,
            },
            200,
            async {
                let m = MemoryOut::from(svc::create(&self.state, &p, input).await?);
                serde_json::to_vec(&m)
                    .map_err(|e| Error::Internal(format!("rendering a memory: {e}")))
            },
        )
        .await;
        let m = match created.and_then(|body| {
            serde_json::from_slice::<serde_json::Value>(&body)
                .map_err(|e| Error::Internal(format!("stored memory_create result: {e}")))
        }) {
            Ok(m) => m,
            Err(e) => return failure(e),
        };
        let text = format!(
            "Saved memory {} (\"{}\").",
            m["id"].as_str().unwrap_or_default(),
            m["title"].as_str().unwrap_or_default()
        );
        success(m, text)
    }

    /// Search the user's memories by meaning-bearing words; results are ranked
    /// by relevance (title matches weigh most) with a highlighted snippet.
    /// Use this first when the user refers to something they told you before.
    #[tool(name = "memory_search")]
    async fn memory_search(
        &self,
        Parameters(args): Parameters<SearchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        let input = svc::SearchInput {
            query: args.query,
            memory_types: args
                .memory_types
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            tags: args.tags.unwrap_or_default(),
            limit: args.limit,
        };
        match svc::search(&self.state, &p, input).await {
            Ok(found) => {
                let results: Vec<serde_json::Value> = found
                    .results
                    .into_iter()
                    .map(|h| serde_json::json!({ "memory": to_json(&MemoryOut::from(h.memory)), "score": h.score, "snippet": h.snippet }))
                    .collect();
                let mut text = format!(
                    "{} of {} matching memories:\n",
                    results.len(),
                    found.total_results
                );
                for r in &results {
                    text.push_str(&format!(
                        "- {} (id {}): {}\n",
                        r["memory"]["title"].as_str().unwrap_or_default(),
                        r["memory"]["id"].as_str().unwrap_or_default(),
                        r["snippet"].as_str().unwrap_or_default()
                    ));
                }
                success(
                    serde_json::json!({ "results": results, "total_results": found.total_results, "took_ms": found.took_ms }),
                    text,
                )
            }
            Err(e) => failure(e),
        }
    }

    /// Read one memory in full by its id (from memory_search or memory_list).
    #[tool(name = "memory_get")]
    async fn memory_get(
        &self,
        Parameters(args): Parameters<IdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        let result = async { svc::get(&self.state, &p, parse_id(&args.id)?).await }.await;
        match result {
            Ok(m) => {
                let m = MemoryOut::from(m);
                success(to_json(&m), render(&m))
            }
            Err(e) => failure(e),
        }
    }

    /// Change a memory: only the fields given change (tags and metadata are
    /// replaced as a whole). Pass `version` from memory_get to avoid
    /// overwriting a concurrent change.
    #[tool(name = "memory_update")]
    async fn memory_update(
        &self,
        Parameters(args): Parameters<UpdateArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        let result = async {
            let id = parse_id(&args.id)?;
            svc::update(
                &self.state,
                &p,
                id,
                svc::UpdateInput {
                    title: args.title,
                    content: args.content,
                    memory_type: args.memory_type.map(|t| t.as_str().to_owned()),
                    tags: args.tags,
                    metadata: args.metadata.map(serde_json::Value::Object),
                    expected_version: args.version,
                },
            )
            .await
        }
        .await;
        match result {
            Ok(m) => {
                let m = MemoryOut::from(m);
                success(
                    to_json(&m),
                    format!("Updated memory {} (now version {}).", m.id, m.version),
                )
            }
            Err(e) => failure(e),
        }
    }

    /// Delete a memory permanently.
    #[tool(name = "memory_delete")]
    async fn memory_delete(
        &self,
        Parameters(args): Parameters<IdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        let result = async {
            let id = parse_id(&args.id)?;
            svc::delete(&self.state, &p, id).await.map(|()| id)
        }
        .await;
        match result {
            Ok(id) => success(
                serde_json::json!({ "deleted": id.to_string() }),
                format!("Deleted memory {id}."),
            ),
            Err(e) => failure(e),
        }
    }

    /// List the user's memories, newest first, optionally of one kind or
    /// carrying given tags. Page with `cursor`.
    #[tool(name = "memory_list")]
    async fn memory_list(
        &self,
        Parameters(args): Parameters<ListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        let input = svc::ListInput {
            memory_type: args.memory_type.map(|t| t.as_str().to_owned()),
            tags: args.tags.unwrap_or_default(),
            created_after: None,
            created_before: None,
            limit: args.limit,
            cursor: args.cursor,
        };
        match svc::list(&self.state, &p, input).await {
            Ok(page) => {
                let memories: Vec<MemoryOut> =
                    page.memories.into_iter().map(MemoryOut::from).collect();
                let mut text = format!("{} of {} memories:\n", memories.len(), page.total);
                for m in &memories {
                    text.push_str(&format!("- {} (id {}, {})\n", m.title, m.id, m.memory_type));
                }
                // The cursor is in the text too: some hosts show the model
                // only `content`, and it must be able to page.
                let mut out =
                    serde_json::json!({ "memories": to_json(&memories), "total": page.total });
                if let Some(cursor) = &page.next_cursor {
                    text.push_str(&format!(
                        "More: call memory_list again with cursor \"{cursor}\".\n"
                    ));
                    out["next_cursor"] = cursor.as_str().into();
                }
                success(out, text)
            }
            Err(e) => failure(e),
        }
    }

    /// List the third-party accounts (GitHub, Google, ...) the user can
    /// connect through this server, whether each is connected, and its
    /// status (`connected`, `refresh_failed`, `reauthorization_required`).
    #[tool(name = "connections_list")]
    async fn connections_list(
        &self,
        Parameters(_args): Parameters<NoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        match crate::service::connect::providers(&self.state, &p).await {
            Ok(list) => {
                let items: Vec<serde_json::Value> = list
                    .iter()
                    .map(|x| serde_json::json!({
                        "provider": x.name, "display_name": x.display_name, "available": x.available,
                        "connected": x.connected, "status": x.status,
                    }))
                    .collect();
                let text = list
                    .iter()
                    .map(|x| {
                        format!(
                            "- {} ({}): {}",
                            x.display_name,
                            x.name,
                            match (&x.status, x.available) {
                                (Some(s), _) => s.to_string(),
                                (None, true) => "not connected".into(),
                                (None, false) => "unavailable on this server".into(),
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                success(serde_json::json!({ "providers": items }), text)
            }
            Err(e) => failure(e),
        }
    }

    /// Numbers about the user's memories: how many, of which kinds, the most
    /// used tags, size, oldest and newest.
    #[tool(name = "memory_stats")]
    async fn memory_stats(
        &self,
        Parameters(_args): Parameters<NoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        match svc::stats(&self.state, &p).await {
            Ok(s) => {
                let by_type: serde_json::Map<String, serde_json::Value> = s
                    .by_type
                    .iter()
                    .map(|(k, v)| (k.clone(), (*v).into()))
                    .collect();
                let top_tags: Vec<serde_json::Value> = s
                    .top_tags
                    .iter()
                    .map(|(t, c)| serde_json::json!({ "tag": t, "count": c }))
                    .collect();
                let text = format!(
                    "{} memories ({} bytes); by type: {}; top tags: {}",
                    s.total_memories,
                    s.total_bytes,
                    s.by_type
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    s.top_tags
                        .iter()
                        .map(|(t, c)| format!("{t} {c}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                success(
                    serde_json::json!({
                        "total_memories": s.total_memories,
                        "by_type": by_type,
                        "top_tags": top_tags,
                        "total_bytes": s.total_bytes,
                        "oldest_at": s.oldest_at,
                        "newest_at": s.newest_at,
                    }),
                    text,
                )
            }
            Err(e) => failure(e),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for MemoryTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mcpgate", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "The user's personal memory store. Search it (memory_search) before answering \
                 questions about things the user told you earlier; save durable facts, decisions \
                 and preferences with memory_create.",
            )
    }

    /// Only the tools the credential's scopes allow.
    async fn list_tools(
        &self,
        _req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        let tools = self
            .tool_router
            .list_all()
            .into_iter()
            .filter(|t| required_scope(&t.name).is_some_and(|s| p.credential.scopes.contains(s)))
            .map(portable)
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    /// Refuse a tool the credential may not call, as a tool error.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        // Fail closed: a tool without a scope in the table is not callable.
        let Some(scope) = required_scope(&request.name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool: {}", request.name),
                None,
            ));
        };
        if !p.credential.scopes.contains(scope) {
            return failure(Error::InsufficientScope {
                required: vec![scope],
            })
            .map(Into::into);
        }
        let tcc = ToolCallContext::new(self, request, ctx);
        self.tool_router.call(tcc).await
    }
}

#[cfg(test)]
mod scope_table_tests {
    use super::*;

    #[test]
    fn tool_schemas_use_only_standard_formats() {
        fn formats(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(f) = m.get("format").and_then(|f| f.as_str()) {
                        out.push(f.to_owned());
                    }
                    m.values().for_each(|x| formats(x, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| formats(x, out)),
                _ => {}
            }
        }
        let mut before = Vec::new();
        let mut after = Vec::new();
        for tool in MemoryTools::tool_router().list_all() {
            formats(
                &serde_json::Value::Object((*tool.input_schema).clone()),
                &mut before,
            );
            let tool = portable(tool);
            formats(
                &serde_json::Value::Object((*tool.input_schema).clone()),
                &mut after,
            );
        }
        assert!(
            before
                .iter()
                .any(|f| !STANDARD_FORMATS.contains(&f.as_str())),
            "the generator writes non-standard formats: {before:?}"
        );
        assert!(
            after.iter().all(|f| STANDARD_FORMATS.contains(&f.as_str())),
            "{after:?}"
        );
    }

    #[test]
    fn every_tool_has_a_scope() {
        let router = MemoryTools::tool_router();
        let mut routed: Vec<String> = router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        routed.sort();
        let mut table: Vec<String> = TOOL_SCOPES.iter().map(|(n, _)| (*n).to_owned()).collect();
        table.sort();
        assert_eq!(routed, table, "the router's tools and TOOL_SCOPES differ");
    }
}
