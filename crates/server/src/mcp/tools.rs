//! The MCP tools: the memory store, through the same service layer as the
//! REST routes. The caller comes from the credential the HTTP gate checked
//! (a `Principal` in the request extensions), never from a tool argument.
//! User mistakes (not found, validation, stale version) are tool errors
//! (`isError`) with a structured body; only server failures are protocol
//! errors.
//!
//! Arguments and results are the REST API's types (`api::memory`,
//! `api::connect`): the input schemas come from the request bodies, with the
//! rules the services enforce written in by `constraints::annotate_tool`;
//! every tool has an output schema, that of the REST response it returns.

use std::{borrow::Cow, sync::Arc};

use rmcp::{
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    },
    schemars::{self, JsonSchema},
    service::RequestContext,
    tool, tool_handler, tool_router, ErrorData as McpError, RoleServer, ServerHandler,
};
use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize};

use uuid::Uuid;

use crate::{
    api::{
        connect::ProviderList,
        constraints,
        memory::{
            CreateMemoryRequest, Memory, MemoryPage, MemoryStats, MemoryType, SearchRequest,
            SearchResponse, UpdateMemoryRequest,
        },
    },
    error::Error,
    scope::Scope,
    service::{auth::Principal, idempotency, memories as svc},
    state::AppState,
};

/// A REST request body and the arguments only the tool has, in one JSON
/// object that refuses unknown fields.
///
/// Serde's `flatten` would not do: a flattened struct sees only the fields
/// it names, so its `deny_unknown_fields` never fires, and the outer struct
/// cannot deny them either. Instead the tool's own arguments (the
/// properties of `X`'s schema) are taken out first and the rest goes to the
/// body, which refuses what it does not know; the schema is the body's with
/// `X`'s properties added (`additionalProperties: false` kept).
#[derive(Debug)]
pub struct WithArgs<R, X> {
    pub body: R,
    pub args: X,
}

impl<'de, R, X> Deserialize<'de> for WithArgs<R, X>
where
    R: DeserializeOwned,
    X: DeserializeOwned + JsonSchema + 'static,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut body = serde_json::Map::deserialize(deserializer)?;
        let own: serde_json::Map<String, serde_json::Value> =
            rmcp::handler::server::common::schema_for_type::<X>()
                .get("properties")
                .and_then(serde_json::Value::as_object)
                .map(|names| {
                    names
                        .keys()
                        .filter_map(|name| body.remove_entry(name))
                        .collect()
                })
                .unwrap_or_default();
        Ok(Self {
            args: X::deserialize(serde_json::Value::Object(own)).map_err(D::Error::custom)?,
            body: R::deserialize(serde_json::Value::Object(body)).map_err(D::Error::custom)?,
        })
    }
}

impl<R: JsonSchema, X: JsonSchema> JsonSchema for WithArgs<R, X> {
    fn schema_name() -> Cow<'static, str> {
        format!("{}With{}", R::schema_name(), X::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = R::json_schema(generator);
        let own = X::json_schema(generator);
        let object = schema.ensure_object();
        if let Some(properties) = own.get("properties").and_then(|p| p.as_object()) {
            if let Some(target) = object
                .entry("properties")
                .or_insert_with(|| serde_json::Value::Object(Default::default()))
                .as_object_mut()
            {
                target.extend(properties.clone());
            }
        }
        if let Some(required) = own.get("required").and_then(|r| r.as_array()) {
            if let Some(target) = object
                .entry("required")
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
                .as_array_mut()
            {
                target.extend(required.iter().cloned());
            }
        }
        schema
    }
}

/// `memory_create`'s own argument.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct CreateOnly {
    /// Makes the call safe to retry: the same key with the same arguments
    /// within 24 h returns the first result and creates nothing more.
    /// Printable ASCII.
    pub idempotency_key: Option<String>,
}

/// `memory_create`: the REST body and an idempotency key.
pub type CreateArgs = WithArgs<CreateMemoryRequest, CreateOnly>;

/// `memory_update`'s own arguments (REST has them in the path and `If-Match`).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct UpdateOnly {
    /// The memory's id (a UUID).
    pub id: String,
    /// Apply only if the memory is still at this version (from memory_get).
    pub version: Option<i64>,
}

/// `memory_update`: the REST body, the id and the expected version.
pub type UpdateArgs = WithArgs<UpdateMemoryRequest, UpdateOnly>;

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct IdArgs {
    /// The memory's id (a UUID).
    pub id: String,
}

/// `memory_list`'s arguments: REST's query parameters but the dates, with
/// the tags as a list.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Only this kind.
    pub memory_type: Option<MemoryType>,
    /// Only memories carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// Default 20.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// What `memory_delete` returns (REST answers 204 with no body).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct MemoryDeleted {
    /// The id of the memory deleted.
    pub deleted: String,
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

/// An output schema without `null`: a result omits an absent value (as
/// REST does, `skip_serializing_if`), so an optional property is never
/// `null`, although the generator writes `Option<T>` as `T` or `null`.
fn omitted_not_null(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(map) => {
            let required: Vec<serde_json::Value> = map
                .get("required")
                .and_then(|r| r.as_array())
                .cloned()
                .unwrap_or_default();
            if let Some(properties) = map.get_mut("properties").and_then(|p| p.as_object_mut()) {
                for (name, property) in properties.iter_mut() {
                    if required.iter().any(|r| r.as_str() == Some(name)) {
                        continue;
                    }
                    let Some(property) = property.as_object_mut() else {
                        continue;
                    };
                    if let Some(types) = property.get_mut("type").and_then(|t| t.as_array_mut()) {
                        types.retain(|t| t != "null");
                        if let [only] = types.as_slice() {
                            let only = only.clone();
                            property.insert("type".into(), only);
                        }
                    }
                    if let Some(any) = property.get_mut("anyOf").and_then(|a| a.as_array_mut()) {
                        any.retain(|s| s.get("type").and_then(|t| t.as_str()) != Some("null"));
                    }
                }
            }
            map.values_mut().for_each(omitted_not_null);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(omitted_not_null),
        _ => {}
    }
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
/// A domain error as a tool error: the public rendering (code, sentence,
/// field, when to retry) as the structured result and as text, so a model
/// reads what a REST client reads. An outage or an unexpected failure is a
/// tool error too (`database_unavailable`, `internal_error`), logged first.
fn failure(e: Error) -> Result<CallToolResult, McpError> {
    let p = e.into_public();
    let mut body = serde_json::json!({ "error": p.code, "message": p.message });
    if let Some(f) = &p.field {
        body["field"] = f.as_str().into();
    }
    if let Some(secs) = p.retry_after {
        body["retry_after"] = secs.into();
    }
    let mut result = CallToolResult::structured_error(body);
    result.content = vec![ContentBlock::text(format!(
        "Error ({}): {}",
        p.code, p.message
    ))];
    Ok(result)
}

fn success<T: Serialize>(value: &T, text: String) -> Result<CallToolResult, McpError> {
    let value = serde_json::to_value(value).map_err(|e| {
        tracing::error!(error = %e, "rendering a tool result");
        McpError::internal_error("an unexpected error occurred", None)
    })?;
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
}

fn parse_id(id: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(id.trim()).map_err(|_| Error::validation("id", "must be a memory id (UUID)"))
}

fn render(m: &Memory) -> String {
    let tags = if m.tags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", m.tags.join(", "))
    };
    format!(
        "# {} ({}, v{}){tags}\nid: {}\n\n{}",
        m.title,
        m.memory_type.as_str(),
        m.version,
        m.id,
        m.content
    )
}

/// The MCP server: one instance per request (stateless), cheap to clone.
#[derive(Clone)]
pub struct MemoryTools {
    state: AppState,
    tool_router: Arc<ToolRouter<MemoryTools>>,
}

// Annotations (hints for hosts, which ask before a write from them): every
// tool acts on the caller's own store only (`open_world_hint = false`).
// `memory_update` is destructive (the fields it replaces are gone, there is
// no history) and idempotent (the same arguments again leave the same
// content, or fail on a stale `version`); `memory_create` is neither (each
// call without an idempotency key adds a memory); `memory_delete` is both.
// `title` is set twice: hosts of 2025-06-18 on read the tool's, older ones
// the annotation's.
#[tool_router]
impl MemoryTools {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            tool_router: Arc::new(Self::router()),
        }
    }

    /// The tools as listed: the REST API's argument rules written into the
    /// input schemas, no `null` in the outputs, and only standard formats.
    fn router() -> ToolRouter<Self> {
        let mut router = Self::tool_router();
        for route in router.map.values_mut() {
            let mut input = (*route.attr.input_schema).clone();
            let missing = constraints::annotate_tool(&route.attr.name, &mut input);
            if !missing.is_empty() {
                tracing::error!(?missing, "tool argument rules that match no argument");
            }
            route.attr.input_schema = Arc::new(input);
            if let Some(output) = &route.attr.output_schema {
                let mut output = serde_json::Value::Object((**output).clone());
                omitted_not_null(&mut output);
                if let serde_json::Value::Object(output) = output {
                    route.attr.output_schema = Some(Arc::new(output));
                }
            }
            route.attr = portable(route.attr.clone());
        }
        router
    }

    /// Save a new memory: a fact, decision, preference or note worth recalling
    /// in later conversations. Give it a short descriptive title, the full
    /// text as content, optionally a kind and tags.
    #[tool(
        name = "memory_create",
        title = "Save a memory",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Memory>(),
        annotations(
            title = "Save a memory",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn memory_create(
        &self,
        Parameters(WithArgs { body, args }): Parameters<CreateArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        // What a retry must repeat: every argument but the key.
        let fingerprint = serde_json::to_value(&body)
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or_default();
        let input = svc::CreateInput::from(body);
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
                let m = Memory::from(svc::create(&self.state, &p, input).await?);
                serde_json::to_vec(&m).map_err(|e| Error::caused_by("rendering a memory", e))
            },
        )
        .await;
        let m = match created.and_then(|body| {
            serde_json::from_slice::<Memory>(&body)
                .map_err(|e| Error::caused_by("stored memory_create result", e))
        }) {
            Ok(m) => m,
            // The key is an argument here, not the REST header.
            Err(Error::Validation { field, message }) if field == idempotency::FIELD => {
                return failure(Error::validation("idempotency_key", message))
            }
            Err(e) => return failure(e),
        };
        let text = format!("Saved memory {} (\"{}\").", m.id, m.title);
        success(&m, text)
    }

    /// Search the user's memories by meaning-bearing words; results are ranked
    /// by relevance (title matches weigh most) with a highlighted snippet.
    /// Use this first when the user refers to something they told you before.
    #[tool(
        name = "memory_search",
        title = "Search memories",
        output_schema = rmcp::handler::server::tool::schema_for_output::<SearchResponse>(),
        annotations(
            title = "Search memories",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_search(
        &self,
        Parameters(args): Parameters<SearchRequest>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        match svc::search(&self.state, &p, args.into()).await {
            Ok(found) => {
                let found = SearchResponse::from(found);
                let mut text = format!(
                    "{} of {} matching memories:\n",
                    found.results.len(),
                    found.total_results
                );
                for r in &found.results {
                    text.push_str(&format!(
                        "- {} (id {}): {}\n",
                        r.memory.title, r.memory.id, r.snippet
                    ));
                }
                success(&found, text)
            }
            Err(e) => failure(e),
        }
    }

    /// Read one memory in full by its id (from memory_search or memory_list).
    #[tool(
        name = "memory_get",
        title = "Read a memory",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Memory>(),
        annotations(
            title = "Read a memory",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_get(
        &self,
        Parameters(args): Parameters<IdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        let result = async { svc::get(&self.state, &p, parse_id(&args.id)?).await }.await;
        match result {
            Ok(m) => {
                let m = Memory::from(m);
                success(&m, render(&m))
            }
            Err(e) => failure(e),
        }
    }

    /// Change a memory: only the fields given change (tags and metadata are
    /// replaced as a whole). Pass `version` from memory_get to avoid
    /// overwriting a concurrent change.
    #[tool(
        name = "memory_update",
        title = "Change a memory",
        output_schema = rmcp::handler::server::tool::schema_for_output::<Memory>(),
        annotations(
            title = "Change a memory",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_update(
        &self,
        Parameters(WithArgs { body, args }): Parameters<UpdateArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        let result = async {
            let id = parse_id(&args.id)?;
            svc::update(&self.state, &p, id, body.into_input(args.version)).await
        }
        .await;
        match result {
            Ok(m) => {
                let m = Memory::from(m);
                let text = format!("Updated memory {} (now version {}).", m.id, m.version);
                success(&m, text)
            }
            Err(e) => failure(e),
        }
    }

    /// Delete a memory permanently.
    #[tool(
        name = "memory_delete",
        title = "Delete a memory",
        output_schema = rmcp::handler::server::tool::schema_for_output::<MemoryDeleted>(),
        annotations(
            title = "Delete a memory",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
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
                &MemoryDeleted {
                    deleted: id.to_string(),
                },
                format!("Deleted memory {id}."),
            ),
            Err(e) => failure(e),
        }
    }

    /// List the user's memories, newest first, optionally of one kind or
    /// carrying given tags. Page with `cursor`.
    #[tool(
        name = "memory_list",
        title = "List memories",
        output_schema = rmcp::handler::server::tool::schema_for_output::<MemoryPage>(),
        annotations(
            title = "List memories",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
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
                let page = MemoryPage::from(page);
                let mut text = format!("{} of {} memories:\n", page.memories.len(), page.total);
                for m in &page.memories {
                    text.push_str(&format!(
                        "- {} (id {}, {})\n",
                        m.title,
                        m.id,
                        m.memory_type.as_str()
                    ));
                }
                // The cursor is in the text too: some hosts show the model
                // only `content`, and it must be able to page.
                if let Some(cursor) = &page.next_cursor {
                    text.push_str(&format!(
                        "More: call memory_list again with cursor \"{cursor}\".\n"
                    ));
                }
                success(&page, text)
            }
            Err(e) => failure(e),
        }
    }

    /// List the third-party accounts (GitHub, Google, ...) the user can
    /// connect through this server, whether each is connected, and its
    /// status (`connected`, `refresh_failed`, `reauthorization_required`).
    #[tool(
        name = "connections_list",
        title = "List connected accounts",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ProviderList>(),
        annotations(
            title = "List connected accounts",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn connections_list(
        &self,
        Parameters(_args): Parameters<NoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        match crate::service::connect::providers(&self.state, &p).await {
            Ok(list) => {
                let list = ProviderList::from(list);
                let text = list
                    .providers
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
                success(&list, text)
            }
            Err(e) => failure(e),
        }
    }

    /// Numbers about the user's memories: how many, of which kinds, the most
    /// used tags, size, oldest and newest.
    #[tool(
        name = "memory_stats",
        title = "Memory statistics",
        output_schema = rmcp::handler::server::tool::schema_for_output::<MemoryStats>(),
        annotations(
            title = "Memory statistics",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn memory_stats(
        &self,
        Parameters(_args): Parameters<NoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let p = principal(&ctx).ok_or_else(no_principal)?;
        match svc::stats(&self.state, &p).await {
            Ok(s) => {
                let s = MemoryStats::from(s);
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
                        .map(|t| format!("{} {}", t.tag, t.count))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                success(&s, text)
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

/// The tool schemas against the REST spec: the same rules on the same
/// arguments, the same shape of results.
#[cfg(test)]
mod schema_tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;

    fn spec() -> Value {
        serde_json::from_str(&crate::api::spec_json()).expect("the spec is JSON")
    }

    fn tools() -> Vec<rmcp::model::Tool> {
        MemoryTools::router().list_all()
    }

    fn operation<'a>(spec: &'a Value, id: &str) -> Option<&'a Value> {
        spec["paths"]
            .as_object()?
            .values()
            .filter_map(Value::as_object)
            .flat_map(|item| item.values())
            .find(|op| op["operationId"] == id)
    }

    /// `schema` with a `$ref` (or a one-entry `allOf`) followed, in the spec
    /// or in the tool schema's `$defs`.
    fn resolve<'a>(schema: &'a Value, spec: &'a Value, defs: &'a Value) -> &'a Value {
        if let Some(r) = schema["$ref"].as_str() {
            let target = match r.strip_prefix("#/components/schemas/") {
                Some(name) => &spec["components"]["schemas"][name],
                None => &defs[r.trim_start_matches("#/$defs/")],
            };
            return resolve(target, spec, defs);
        }
        match schema["allOf"].as_array().map(Vec::as_slice) {
            Some([only]) => resolve(only, spec, defs),
            _ => schema,
        }
    }

    /// The rule keywords of a property (and of its items).
    fn rules(property: &Value) -> BTreeMap<String, Value> {
        const KEYWORDS: [&str; 7] = [
            "minLength",
            "maxLength",
            "pattern",
            "minimum",
            "maximum",
            "minItems",
            "maxItems",
        ];
        let mut out = BTreeMap::new();
        for (prefix, schema) in [("", property), ("items.", &property["items"])] {
            for k in KEYWORDS {
                if let Some(v) = schema.get(k) {
                    out.insert(format!("{prefix}{k}"), v.clone());
                }
            }
        }
        out
    }

    /// The REST counterpart of `argument` of `tool`: the property of the
    /// operation's request body, else its parameter of that name
    /// (`Idempotency-Key` for `idempotency_key`).
    fn counterpart<'a>(spec: &'a Value, tool: &str, argument: &str) -> Option<&'a Value> {
        let op = operation(spec, tool)?;
        let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .map(|name| &spec["components"]["schemas"][name]["properties"][argument])
            .filter(|p| !p.is_null());
        body.or_else(|| {
            op["parameters"].as_array()?.iter().find_map(|p| {
                let name = p["name"].as_str()?.to_lowercase().replace('-', "_");
                (name == argument).then_some(&p["schema"])
            })
        })
    }

    #[test]
    fn tool_arguments_carry_the_rest_rules() {
        let spec = spec();
        let mut checked = Vec::new();
        for tool in tools() {
            let schema = Value::Object((*tool.input_schema).clone());
            for (argument, property) in schema["properties"].as_object().into_iter().flatten() {
                if (tool.name.as_ref(), argument.as_str()) == ("memory_list", "tags") {
                    // REST: one comma-separated string; here a list held to
                    // the rule of every tag list.
                    let search = tools()
                        .into_iter()
                        .find(|t| t.name == "memory_search")
                        .unwrap();
                    let search = Value::Object((*search.input_schema).clone());
                    assert_eq!(rules(property), rules(&search["properties"]["tags"]));
                    continue;
                }
                let Some(rest) = counterpart(&spec, &tool.name, argument) else {
                    continue;
                };
                assert_eq!(
                    rules(property),
                    rules(rest),
                    "{}.{argument} and its REST counterpart",
                    tool.name
                );
                if !rules(rest).is_empty() {
                    checked.push(format!("{}.{argument}", tool.name));
                }
            }
        }
        checked.sort();
        assert_eq!(
            checked,
            [
                "memory_create.content",
                "memory_create.idempotency_key",
                "memory_create.tags",
                "memory_create.title",
                "memory_list.limit",
                "memory_search.limit",
                "memory_search.query",
                "memory_search.tags",
                "memory_update.content",
                "memory_update.tags",
                "memory_update.title",
            ]
        );
        // The numbers are the services' own.
        let create = tools()
            .into_iter()
            .find(|t| t.name == "memory_create")
            .unwrap();
        let title = &create.input_schema["properties"]["title"];
        assert_eq!(title["maxLength"], svc::TITLE_MAX_CHARS);
        assert_eq!(
            create.input_schema["properties"]["idempotency_key"]["maxLength"],
            idempotency::MAX_KEY_LEN
        );
    }

    #[test]
    fn every_tool_rule_applies() {
        let routed: Vec<String> = MemoryTools::tool_router()
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        let named = constraints::TOOL_BODIES
            .iter()
            .map(|(t, _)| *t)
            .chain(constraints::TOOL_ARGS.iter().map(|(t, _, _)| *t));
        for name in named {
            assert!(routed.iter().any(|r| r == name), "{name} is not a tool");
        }
        for tool in MemoryTools::tool_router().list_all() {
            let mut schema = (*tool.input_schema).clone();
            assert_eq!(
                constraints::annotate_tool(&tool.name, &mut schema),
                Vec::<String>::new()
            );
        }
    }

    /// A schema's shape: property names, which are required, types (no
    /// `null`), standard formats, enums, items, nested objects.
    fn shape(schema: &Value, spec: &Value, defs: &Value) -> Value {
        let schema = resolve(schema, spec, defs);
        let mut out = serde_json::Map::new();
        for k in ["type", "enum", "required"] {
            if let Some(v) = schema.get(k) {
                let mut v = v.clone();
                if let Some(a) = v.as_array_mut() {
                    a.sort_by_key(|x| x.to_string());
                }
                out.insert(k.into(), v);
            }
        }
        if let Some(f) = schema["format"]
            .as_str()
            .filter(|f| STANDARD_FORMATS.contains(f))
        {
            out.insert("format".into(), f.into());
        }
        if let Some(props) = schema["properties"].as_object() {
            let props = props
                .iter()
                .map(|(k, v)| (k.clone(), shape(v, spec, defs)))
                .collect();
            out.insert("properties".into(), Value::Object(props));
        }
        for k in ["items", "additionalProperties"] {
            match schema.get(k) {
                Some(Value::Object(m)) if m.is_empty() => {
                    out.insert(k.into(), true.into());
                }
                Some(v @ Value::Object(_)) => {
                    out.insert(k.into(), shape(v, spec, defs));
                }
                Some(v) => {
                    out.insert(k.into(), v.clone());
                }
                None => {}
            }
        }
        Value::Object(out)
    }

    #[test]
    fn results_have_the_rest_shape() {
        let spec = spec();
        let mut compared = Vec::new();
        for tool in tools() {
            let output = Value::Object(
                (*tool
                    .output_schema
                    .clone()
                    .expect("every tool has an output schema"))
                .clone(),
            );
            let rest_op = match tool.name.as_ref() {
                "connections_list" => "connect_providers",
                // REST answers 204 without a body.
                "memory_delete" => continue,
                name => name,
            };
            let op = operation(&spec, rest_op).unwrap_or_else(|| panic!("no {rest_op}"));
            let (_, response) = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(status, _)| status.starts_with('2'))
                .unwrap();
            let rest = response["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .map(|media| &media["schema"])
                .unwrap_or_else(|| panic!("{rest_op} answers no JSON"));
            assert_eq!(
                shape(&output, &spec, &output["$defs"]),
                shape(rest, &spec, &Value::Null),
                "{}",
                tool.name
            );
            compared.push(tool.name.to_string());
        }
        assert_eq!(compared.len(), TOOL_SCOPES.len() - 1);
    }
}
