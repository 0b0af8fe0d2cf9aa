//! `/mcp` end to end with the official SDK client: API keys and OAuth
//! tokens, the auth gate, scopes per tool, isolation between users, and
//! every protocol revision.

use mcpgate_e2e::{
    mcp::{self as harness, tool_names, McpClient},
    oauth::http,
};
use mcpgate_server::service::{idempotency, memories, search_query};
use reqwest::StatusCode;
use rmcp::model::{CallToolResult, ProtocolVersion};
use serde_json::{json, Value};

use super::*;

const ALL_TOOLS: [&str; 8] = [
    "connections_list",
    "memory_create",
    "memory_delete",
    "memory_get",
    "memory_list",
    "memory_search",
    "memory_stats",
    "memory_update",
];

/// The errors of `instance` against the JSON Schema `schema` (formats
/// checked too).
fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("not a valid JSON Schema ({e}): {schema}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// `tool` called with `args`. A successful result carries
/// `structuredContent` valid against the tool's `outputSchema`: every call
/// in this module checks it.
async fn call(mcp: &McpClient, tool: &'static str, args: Value) -> CallToolResult {
    let result = harness::call(mcp, tool, args).await;
    if result.is_error != Some(true) {
        let tools = mcp.list_all_tools().await.unwrap();
        let schema = tools
            .iter()
            .find(|t| t.name == tool)
            .and_then(|t| t.output_schema.clone())
            .unwrap_or_else(|| panic!("{tool} has no outputSchema"));
        let content = result
            .structured_content
            .as_ref()
            .unwrap_or_else(|| panic!("{tool} returned no structuredContent"));
        let errors = schema_errors(&Value::Object((*schema).clone()), content);
        assert!(errors.is_empty(), "{tool}: {errors:?} in {content}");
    }
    result
}

fn structured(r: &rmcp::model::CallToolResult) -> serde_json::Value {
    r.structured_content.clone().unwrap_or_default()
}

fn text(r: &rmcp::model::CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A raw JSON-RPC POST to /mcp.
async fn post_raw(
    server: &TestServer,
    bearer: Option<&str>,
    origin: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut req = http()
        .post(format!("{}/mcp", server.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.unwrap()
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;

/// `(tool, readOnlyHint, destructiveHint, idempotentHint)`; no tool
/// reaches beyond the caller's store (`openWorldHint: false`).
const HINTS: [(&str, bool, bool, bool); 8] = [
    ("connections_list", true, false, true),
    ("memory_create", false, false, false),
    ("memory_delete", false, true, true),
    ("memory_get", true, false, true),
    ("memory_list", true, false, true),
    ("memory_search", true, false, true),
    ("memory_stats", true, false, true),
    ("memory_update", false, true, true),
];

e2e! {
    async fn tools_declare_hints_and_output_schemas(backend) {
        let server = TestServer::start(backend).await;
        let key = server.register().await.api_key;
        let mcp = server.mcp(&key).await;
        let tools = mcp.list_all_tools().await.unwrap();
        let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        names.sort();
        assert_eq!(names, HINTS.map(|(name, ..)| name));
        for (name, read_only, destructive, idempotent) in HINTS {
            let tool = tools.iter().find(|t| t.name == name).unwrap();
            let a = tool.annotations.as_ref().unwrap_or_else(|| panic!("{name} has no annotations"));
            assert_eq!(
                (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint),
                (Some(read_only), Some(destructive), Some(idempotent), Some(false)),
                "{name}"
            );
            let title = a.title.as_deref().unwrap_or_default();
            assert!(!title.is_empty() && !title.contains('_'), "{name}: a title for people: {title:?}");
            assert_eq!(tool.title.as_deref(), Some(title), "{name}");
            let output = Value::Object((*tool.output_schema.clone().unwrap_or_else(|| panic!("{name} has no outputSchema"))).clone());
            assert_eq!(output["type"], "object", "{name}");
            // Both schemas compile for a standard validator.
            schema_errors(&output, &json!({}));
            schema_errors(&Value::Object((*tool.input_schema).clone()), &json!({}));
        }
        // On the wire, in the protocol's names.
        let resp = post_raw(&server, Some(&key), None, LIST).await;
        let body: Value = resp.json().await.unwrap();
        let delete = body["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "memory_delete").unwrap();
        assert_eq!(delete["annotations"]["destructiveHint"], true, "{delete}");
        assert_eq!(delete["annotations"]["readOnlyHint"], false, "{delete}");
        assert_eq!(delete["outputSchema"]["properties"]["deleted"]["type"], "string", "{delete}");
        mcp.cancel().await.ok();
        server.stop().await;
    }

    async fn arguments_are_held_to_the_rest_limits(backend) {
        let server = TestServer::start(backend).await;
        let key = server.register().await.api_key;
        let mcp = server.mcp(&key).await;
        let tools = mcp.list_all_tools().await.unwrap();
        let input = |name: &str| Value::Object((*tools.iter().find(|t| t.name == name).unwrap().input_schema).clone());
        let created = call(&mcp, "memory_create", json!({ "title": "Limits", "content": "edges" })).await;
        let id = structured(&created)["id"].as_str().unwrap().to_owned();
        let tags = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
        let max_limit = memories::MAX_LIMIT;
        // (tool, arguments, the field refused; `None`: accepted)
        let cases: Vec<(&'static str, Value, Option<&str>)> = vec![
            ("memory_create", json!({ "title": "t".repeat(memories::TITLE_MAX_CHARS), "content": "c" }), None),
            ("memory_create", json!({ "title": "t".repeat(memories::TITLE_MAX_CHARS + 1), "content": "c" }), Some("title")),
            ("memory_create", json!({ "title": "t", "content": "c".repeat(memories::CONTENT_MAX_CHARS + 1) }), Some("content")),
            ("memory_create", json!({ "title": "t", "content": "c", "tags": tags(memories::MAX_TAGS) }), None),
            ("memory_create", json!({ "title": "t", "content": "c", "tags": tags(memories::MAX_TAGS + 1) }), Some("tags")),
            ("memory_create", json!({ "title": "t", "content": "c", "tags": ["x".repeat(memories::TAG_MAX_CHARS + 1)] }), Some("tags[0]")),
            ("memory_create", json!({ "title": "t", "content": "c", "idempotency_key": "k".repeat(idempotency::MAX_KEY_LEN) }), None),
            ("memory_create", json!({ "title": "t", "content": "c", "idempotency_key": "k".repeat(idempotency::MAX_KEY_LEN + 1) }), Some("idempotency_key")),
            ("memory_update", json!({ "id": id, "title": "t".repeat(memories::TITLE_MAX_CHARS + 1) }), Some("title")),
            ("memory_update", json!({ "id": id, "tags": tags(memories::MAX_TAGS + 1) }), Some("tags")),
            ("memory_search", json!({ "query": "q".repeat(search_query::MAX_QUERY_CHARS + 1) }), Some("query")),
            ("memory_search", json!({ "query": "edges", "limit": max_limit }), None),
            ("memory_search", json!({ "query": "edges", "limit": max_limit + 1 }), Some("limit")),
            ("memory_list", json!({ "limit": 1 }), None),
            ("memory_list", json!({ "limit": 0 }), Some("limit")),
            ("memory_list", json!({ "tags": tags(memories::MAX_TAGS + 1) }), Some("tags")),
        ];
        for (tool, args, refused) in cases {
            let by_schema = schema_errors(&input(tool), &args);
            let result = call(&mcp, tool, args).await;
            match refused {
                None => {
                    assert_eq!(result.is_error, Some(false), "{tool}: {}", text(&result));
                    assert_eq!(by_schema, Vec::<String>::new(), "{tool}: the schema accepts what the tool does");
                }
                Some(field) => {
                    let body = structured(&result);
                    assert_eq!(
                        (result.is_error, body["error"].as_str(), body["field"].as_str()),
                        (Some(true), Some("validation_failed"), Some(field)),
                        "{tool}: {body}"
                    );
                    assert!(text(&result).contains(field), "{}", text(&result));
                    assert!(!by_schema.is_empty(), "{tool}: the schema refuses {field} too");
                }
            }
        }
        // Unknown arguments are refused next to a REST body's fields too.
        for (tool, args) in [
            ("memory_create", json!({ "title": "t", "content": "c", "user_id": "someone" })),
            ("memory_update", json!({ "id": id, "title": "t", "user_id": "someone" })),
            ("memory_search", json!({ "query": "edges", "user_id": "someone" })),
        ] {
            assert!(!schema_errors(&input(tool), &args).is_empty(), "{tool}");
            let result = call(&mcp, tool, args).await;
            assert_eq!(result.is_error, Some(true), "{tool}");
            assert!(text(&result).contains("user_id"), "{tool}: {}", text(&result));
        }
        let stats = call(&mcp, "memory_stats", json!({})).await;
        assert_eq!(structured(&stats)["total_memories"], 4, "only the accepted ones were stored");
        mcp.cancel().await.ok();
        server.stop().await;
    }

    async fn transport_errors_keep_their_reason(backend) {
        let server = TestServer::start(backend).await;
        let key = server.register().await.api_key;
        let send = |accept: &'static str, content_type: &'static str, version: Option<&'static str>| {
            let mut req = http()
                .post(format!("{}/mcp", server.url))
                .bearer_auth(&key)
                .header("accept", accept)
                .header("content-type", content_type)
                .body(LIST);
            if let Some(v) = version {
                req = req.header("mcp-protocol-version", v);
            }
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<serde_json::Value>().await.unwrap())
            }
        };
        let (status, body) = send("text/html", "application/json", None).await;
        assert_eq!((status, body["error"].as_str()), (406, Some("not_acceptable")), "{body}");
        assert!(body["message"].as_str().unwrap().contains("text/event-stream"), "{body}");
        let (status, body) = send("application/json, text/event-stream", "text/plain", None).await;
        assert_eq!((status, body["error"].as_str()), (415, Some("unsupported_media_type")), "{body}");
        assert!(body["message"].as_str().unwrap().contains("application/json"), "{body}");
        let (status, body) = send("application/json, text/event-stream", "application/json", Some("1999-01-01")).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_protocol_version")), "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("1999-01-01") && message.contains("2025-06-18") && message.contains("2025-11-25"), "{message}");
        assert!(!message.contains("could not be processed"), "{message}");

        // Tool schemas carry only JSON Schema's own formats (Ajv strict mode
        // refuses `int64`, `uint32`, …).
        let mcp = server.mcp(&key).await;
        let tools = serde_json::to_string(&mcp.list_all_tools().await.unwrap()).unwrap();
        for bad in ["\"int64\"", "\"int32\"", "\"uint64\"", "\"uint32\"", "\"uint\"", "\"double\"", "\"float\""] {
            assert!(!tools.contains(&format!("\"format\":{bad}")), "{bad} in {tools}");
        }
        mcp.cancel().await.ok();
        server.stop().await;
    }

    async fn memory_tools_with_an_api_key(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register().await;
        let mcp = server.mcp(&user.api_key).await;
        let info = mcp.peer_info().unwrap();
        assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("mcpgate"));
        assert_eq!(tool_names(&mcp).await, ALL_TOOLS);
        let tools = mcp.list_all_tools().await.unwrap();
        let create = tools.iter().find(|t| t.name == "memory_create").unwrap();
        assert!(create.description.as_deref().unwrap().len() > 40, "a description a model can choose by");
        let schema = serde_json::to_value(&create.input_schema).unwrap();
        assert!(schema["properties"]["title"].is_object() && schema["required"].as_array().unwrap().iter().any(|r| r == "content"));

        let created = call(&mcp, "memory_create", serde_json::json!({
            "title": "Deploy runbook", "content": "Run the migrations before upgrading the fleet.", "tags": ["ops"], "memory_type": "workflow",
        })).await;
        assert_eq!(created.is_error, Some(false), "{}", text(&created));
        let memory = structured(&created);
        let id = memory["id"].as_str().unwrap().to_owned();
        assert_eq!(memory["memory_type"], "workflow");
        assert!(text(&created).contains("Deploy runbook"));

        // The same memory through REST: one service layer.
        let rest = server.with_key(&user.api_key).memory_get().id(&id).send().await.unwrap().into_inner();
        assert_eq!(rest.title, "Deploy runbook");

        let found = call(&mcp, "memory_search", serde_json::json!({ "query": "upgrade migrations" })).await;
        let found = structured(&found);
        assert_eq!(found["results"][0]["memory"]["id"], id.as_str());
        assert!(found["results"][0]["snippet"].as_str().unwrap().contains("<mark>"));

        let got = call(&mcp, "memory_get", serde_json::json!({ "id": id })).await;
        assert_eq!(structured(&got)["version"], 1);
        assert!(text(&got).contains("Run the migrations"));

        let updated = call(&mcp, "memory_update", serde_json::json!({ "id": id, "title": "Upgrade runbook", "version": 1 })).await;
        assert_eq!(structured(&updated)["version"], 2);
        // A stale version is a tool error, not a protocol error.
        let stale = call(&mcp, "memory_update", serde_json::json!({ "id": id, "title": "x", "version": 1 })).await;
        assert_eq!(stale.is_error, Some(true));
        assert_eq!(structured(&stale)["error"], "version_mismatch");

        let listed = call(&mcp, "memory_list", serde_json::json!({ "tags": ["ops"] })).await;
        assert_eq!(structured(&listed)["total"], 1);
        let stats = call(&mcp, "memory_stats", serde_json::json!({})).await;
        assert_eq!(structured(&stats)["total_memories"], 1);
        assert_eq!(structured(&stats)["by_type"]["workflow"], 1);

        // Paging works from the text alone (hosts that show the model only `content`).
        for title in ["Page one", "Page two", "Page three"] {
            call(&mcp, "memory_create", serde_json::json!({ "title": title, "content": "paged" })).await;
        }
        let first = call(&mcp, "memory_list", serde_json::json!({ "limit": 2 })).await;
        let first_text = text(&first);
        let cursor = first_text.split("cursor \"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_else(|| panic!("no cursor in {first_text}")).to_owned();
        assert_eq!(structured(&first)["next_cursor"], cursor.as_str());
        let mut seen = 2;
        let mut next = Some(cursor);
        while let Some(c) = next.take() {
            let page = call(&mcp, "memory_list", serde_json::json!({ "limit": 2, "cursor": c })).await;
            seen += structured(&page)["memories"].as_array().unwrap().len();
            next = text(&page).split("cursor \"").nth(1).and_then(|r| r.split('"').next()).map(str::to_owned);
            if next.is_none() {
                assert!(structured(&page).get("next_cursor").is_none(), "the last page has no cursor");
            }
        }
        assert_eq!(seen as u64, structured(&first)["total"].as_u64().unwrap());

        // User mistakes are tool errors naming the problem.
        let bad = call(&mcp, "memory_create", serde_json::json!({ "title": "", "content": "x" })).await;
        assert_eq!((bad.is_error, structured(&bad)["field"].as_str()), (Some(true), Some("title")));
        let missing = call(&mcp, "memory_get", serde_json::json!({ "id": uuid::Uuid::new_v4().to_string() })).await;
        assert_eq!((missing.is_error, structured(&missing)["error"].as_str()), (Some(true), Some("not_found")));
        let not_uuid = call(&mcp, "memory_get", serde_json::json!({ "id": "nope" })).await;
        assert_eq!(not_uuid.is_error, Some(true));

        let deleted = call(&mcp, "memory_delete", serde_json::json!({ "id": id })).await;
        assert_eq!(deleted.is_error, Some(false));
        let again = call(&mcp, "memory_get", serde_json::json!({ "id": id })).await;
        assert_eq!(again.is_error, Some(true));
        mcp.cancel().await.ok();

        // Usage of the key is counted as for REST.
        server.state().usage.flush(&server.state().db).await.unwrap();
        let keys = server.with_key(&user.api_key).key_list().send().await.unwrap().into_inner();
        assert!(keys.keys[0].usage_count >= 10, "usage counted: {}", keys.keys[0].usage_count);
        server.stop().await;
    }

    async fn memory_tools_with_an_oauth_token(backend) {
        let server = TestServer::start(backend).await;
        let mcp_resource = format!("{}/mcp", server.url);
        let (_user, _client, tokens) = server.full_flow(&[("resource", mcp_resource.as_str()), ("scope", "memories:read memories:write")]).await;
        let access = tokens["access_token"].as_str().unwrap();
        let mcp = server.mcp(access).await;
        assert_eq!(tool_names(&mcp).await, ALL_TOOLS[1..], "no connections scope, no connections tool");
        let created = call(&mcp, "memory_create", serde_json::json!({ "title": "From OAuth", "content": "hello" })).await;
        assert_eq!(created.is_error, Some(false), "{}", text(&created));
        mcp.cancel().await.ok();

        // A token requested without `resource` is for both resources (the
        // root): /mcp accepts it, as clients of older revisions expect.
        let (_user, _client, root_tokens) = server.full_flow(&[]).await;
        let root = server.mcp(root_tokens["access_token"].as_str().unwrap()).await;
        assert!(!tool_names(&root).await.is_empty());
        root.cancel().await.ok();

        // A token for /api only is refused by /mcp (wrong audience).
        let api_resource = format!("{}/api", server.url);
        let (_user, _client, api_tokens) = server.full_flow(&[("resource", api_resource.as_str())]).await;
        let resp = post_raw(&server, api_tokens["access_token"].as_str(), None, LIST).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_audience");
        server.stop().await;
    }

    async fn the_gate_refuses_without_credentials(backend) {
        let server = TestServer::start(backend).await;
        let resp = post_raw(&server, None, None, LIST).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()["www-authenticate"].to_str().unwrap(),
            format!("Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"memories:read memories:write connections:read\"", server.url)
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "missing_credentials");
        assert!(body["message"].as_str().unwrap().contains("resource_metadata"));
        // Invalid credentials: 401 too, never a fallback.
        for bad in ["mcpg_nope", "mcpg_at_nope", "some-shared-token"] {
            let resp = post_raw(&server, Some(bad), None, LIST).await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad}");
        }
        // The SDK client fails the handshake.
        assert!(server.mcp_with("mcpg_at_nope", ProtocolVersion::V_2025_06_18).await.is_err());
        // CORS preflight passes the gate when the origin is configured.
        server.stop().await;
        let server = TestServer::start_with(backend, |c| c.cors_allowed_origins = vec!["https://inspector.example".into()]).await;
        let resp = http()
            .request(reqwest::Method::OPTIONS, format!("{}/mcp", server.url))
            .header("origin", "https://inspector.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type, mcp-protocol-version")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        assert_eq!(resp.headers()["access-control-allow-origin"], "https://inspector.example");
        server.stop().await;
    }

    async fn foreign_origins_are_refused(backend) {
        let server = TestServer::start_with(backend, |c| c.cors_allowed_origins = vec!["https://inspector.example".into()]).await;
        let user = server.register().await;
        let resp = post_raw(&server, Some(&user.api_key), Some("https://evil.example"), LIST).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "forbidden_origin");
        for ok in [server.url.clone(), "https://inspector.example".into()] {
            let resp = post_raw(&server, Some(&user.api_key), Some(&ok), LIST).await;
            assert_eq!(resp.status(), StatusCode::OK, "{ok}");
        }
        server.stop().await;
    }

    async fn read_only_credentials_see_and_run_read_tools_only(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register().await;
        let read_only = server
            .with_key(&user.api_key)
            .key_create()
            .body(types::CreateKeyRequest { name: "ro".into(), scopes: vec!["memories:read".into()], expires_in_days: None })
            .send()
            .await
            .unwrap()
            .into_inner();
        mcpgate_e2e::remember_secret(&read_only.api_key);
        let mcp = server.mcp(&read_only.api_key).await;
        assert_eq!(tool_names(&mcp).await, ["memory_get", "memory_list", "memory_search", "memory_stats"]);
        let refused = call(&mcp, "memory_create", serde_json::json!({ "title": "t", "content": "c" })).await;
        assert_eq!(refused.is_error, Some(true));
        assert_eq!(structured(&refused)["error"], "insufficient_scope");
        let stats = call(&mcp, "memory_stats", serde_json::json!({})).await;
        assert_eq!(structured(&stats)["total_memories"], 0, "nothing was stored");
        mcp.cancel().await.ok();

        // A credential with no memory scope at all: 403 at the gate.
        let keys_only = server
            .with_key(&user.api_key)
            .key_create()
            .body(types::CreateKeyRequest { name: "keys".into(), scopes: vec!["keys:read".into()], expires_in_days: None })
            .send()
            .await
            .unwrap()
            .into_inner();
        mcpgate_e2e::remember_secret(&keys_only.api_key);
        let resp = post_raw(&server, Some(&keys_only.api_key), None, LIST).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().contains("error=\"insufficient_scope\""));

        // connections:read alone is a tool scope (the challenge lists it):
        // admitted, and it sees connections_list only.
        let connections_only = server
            .with_key(&user.api_key)
            .key_create()
            .body(types::CreateKeyRequest { name: "conn".into(), scopes: vec!["connections:read".into()], expires_in_days: None })
            .send()
            .await
            .unwrap()
            .into_inner();
        mcpgate_e2e::remember_secret(&connections_only.api_key);
        let mcp = server.mcp(&connections_only.api_key).await;
        assert_eq!(tool_names(&mcp).await, ["connections_list"]);
        let listed = call(&mcp, "connections_list", serde_json::json!({})).await;
        assert_ne!(listed.is_error, Some(true));
        // A name outside the scope table is refused, never run unchecked.
        let unknown = mcp
            .call_tool(rmcp::model::CallToolRequestParams::new("no_such_tool"))
            .await;
        assert!(unknown.is_err(), "{unknown:?}");
        mcp.cancel().await.ok();
        server.stop().await;
    }

    async fn users_never_see_each_other(backend) {
        let server = TestServer::start(backend).await;
        let alice = server.register().await;
        let bob = server.register().await;
        let a = server.mcp(&alice.api_key).await;
        let b = server.mcp(&bob.api_key).await;
        let created = call(&a, "memory_create", serde_json::json!({ "title": "Alice secret plan", "content": "zebra migration" })).await;
        let id = structured(&created)["id"].as_str().unwrap().to_owned();
        let got = call(&b, "memory_get", serde_json::json!({ "id": id })).await;
        assert_eq!((got.is_error, structured(&got)["error"].as_str()), (Some(true), Some("not_found")));
        let found = call(&b, "memory_search", serde_json::json!({ "query": "zebra" })).await;
        assert_eq!(structured(&found)["total_results"], 0);
        let deleted = call(&b, "memory_delete", serde_json::json!({ "id": id })).await;
        assert_eq!(deleted.is_error, Some(true));
        // A tool argument cannot name another user: unknown fields are refused.
        let sneaky = call(&b, "memory_list", serde_json::json!({ "user_id": alice.user_id })).await;
        assert_eq!(sneaky.is_error, Some(true));
        let still = call(&a, "memory_get", serde_json::json!({ "id": id })).await;
        assert_eq!(still.is_error, Some(false));
        a.cancel().await.ok();
        b.cancel().await.ok();
        server.stop().await;
    }

    async fn malformed_messages_are_400_and_store_nothing(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register().await;
        for body in ["{not json", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"memory_create","arguments":{"title":"t","content":"c"}"#] {
            let resp = post_raw(&server, Some(&user.api_key), None, body).await;
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            let err: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(err["error"]["code"], -32700);
        }
        let stats = server.with_key(&user.api_key).memory_stats().send().await.unwrap().into_inner();
        assert_eq!(stats.total_memories, 0);
        server.stop().await;
    }

    async fn every_protocol_revision_works(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register().await;
        for version in [ProtocolVersion::V_2025_06_18, ProtocolVersion::V_2025_11_25] {
            let mcp = server.mcp_with(&user.api_key, version.clone()).await.unwrap();
            assert_eq!(mcp.peer_info().unwrap().protocol_version, version);
            let r = call(&mcp, "memory_create", serde_json::json!({ "title": format!("v {version}"), "content": "x" })).await;
            assert_eq!(r.is_error, Some(false));
            mcp.cancel().await.ok();
        }
        let mcp = server.mcp_stateless(&user.api_key).await;
        assert_eq!(mcp.peer_info().unwrap().protocol_version, ProtocolVersion::V_2026_07_28);
        assert_eq!(tool_names(&mcp).await, ALL_TOOLS);
        let stats = call(&mcp, "memory_stats", serde_json::json!({})).await;
        assert_eq!(structured(&stats)["total_memories"], 2);
        mcp.cancel().await.ok();
        server.stop().await;
    }
}
