//! Scope coverage of the REST API, driven by the committed `openapi.yaml`:
//! every operation the spec protects is called with a key lacking each
//! scope its security requirements list (403 `insufficient_scope` naming
//! that scope), with a key holding exactly those scopes (admitted: neither
//! 401 nor 403) and with no credential (401); the public operations answer
//! without one. A new operation without a declared scope, or a declared
//! scope the server does not enforce (or one it enforces but the spec does
//! not declare), fails here.

use std::collections::{BTreeMap, BTreeSet};

use mcpgate_e2e::oauth::http;
use mcpgate_server::scope::Scope;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;

/// Operations anyone may call, without a credential.
const PUBLIC: &[&str] = &["health_live", "health_ready", "user_register"];

/// Operations any valid credential may call, whatever its scopes: the spec
/// lists no scope for them. Any other protected operation must declare one.
const ANY_SCOPE: &[&str] = &["user_me"];

/// One operation of the spec.
struct Operation {
    id: String,
    method: Method,
    /// The path template, such as `/api/v1/keys/{key_id}`.
    path: String,
    /// `None` for a public operation; otherwise the scopes every security
    /// requirement of the operation lists.
    scopes: Option<Vec<String>>,
    body_required: bool,
    required_params: Vec<String>,
}

fn committed_spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("openapi.yaml exists"))
        .expect("openapi.yaml parses")
}

fn operations(spec: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let id = op["operationId"].as_str().expect("operationId").to_owned();
            let scopes = op["security"]
                .as_array()
                .filter(|reqs| !reqs.is_empty())
                .map(|reqs| {
                    // Each requirement is one scheme with its scopes.
                    let mut per_scheme = BTreeMap::new();
                    for requirement in reqs {
                        for (scheme, scopes) in requirement.as_object().expect("requirement") {
                            let scopes: Vec<String> = scopes
                                .as_array()
                                .expect("scope list")
                                .iter()
                                .map(|s| s.as_str().expect("scope name").to_owned())
                                .collect();
                            per_scheme.insert(scheme.clone(), scopes);
                        }
                    }
                    let oauth = per_scheme
                        .get("OAuth")
                        .unwrap_or_else(|| panic!("{id}: no OAuth security requirement"))
                        .clone();
                    // OpenAPI 3.0: only OAuth lists scopes; a key and an
                    // access token carry the same ones.
                    for (scheme, scopes) in &per_scheme {
                        if scheme != "OAuth" {
                            assert!(scopes.is_empty(), "{id}: {scheme} lists scopes");
                        }
                    }
                    for name in &oauth {
                        name.parse::<Scope>()
                            .unwrap_or_else(|e| panic!("{id}: {e}"));
                    }
                    oauth
                });
            let required_params = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] != "path" && p["required"] == true)
                .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
                .collect();
            ops.push(Operation {
                method: method.to_uppercase().parse().expect("method"),
                path: path.clone(),
                scopes,
                body_required: op["requestBody"]["required"] == true,
                required_params,
                id,
            });
        }
    }
    ops
}

/// A valid body for each operation that takes one, so the request reaches
/// the scope check (a body is parsed and checked before it). Every scope
/// set that holds the operation's own scopes may send it: `key_create`
/// names no scopes, so the key gets the caller's own.
fn body(op: &str) -> Option<Value> {
    Some(match op {
        "user_register" => json!({
            "name": "Scope Check",
            "email": format!("scopes-{}@example.com", uuid::Uuid::new_v4().simple()),
        }),
        "user_set_password" => json!({"password": "correct horse battery staple"}),
        "key_create" => json!({"name": "scope check"}),
        "key_rotate" => json!({"grace_seconds": 0}),
        "memory_create" => {
            json!({"title": "Scope check", "content": "Each route checks its scope."})
        }
        "memory_search" => json!({"query": "scope"}),
        "memory_update" => json!({"title": "Scope check, changed"}),
        _ => return None,
    })
}

/// Operations that [`body`] has a body for.
const WITH_BODY: &[&str] = &[
    "user_register",
    "user_set_password",
    "key_create",
    "key_rotate",
    "memory_create",
    "memory_search",
    "memory_update",
];

struct Sent {
    status: StatusCode,
    body: Value,
}

async fn send(server: &TestServer, op: &Operation, path: &str, key: Option<&str>) -> Sent {
    let mut req = http().request(op.method.clone(), format!("{}{path}", server.url));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body(&op.id) {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let body = resp.json().await.unwrap_or(Value::Null);
    Sent { status, body }
}

/// `POST /api/v1/keys` with `owner`: a key holding exactly `scopes`, and its id.
async fn key_with(server: &TestServer, owner: &str, scopes: &BTreeSet<&str>) -> (String, String) {
    let resp = http()
        .post(format!("{}/api/v1/keys", server.url))
        .bearer_auth(owner)
        .json(&json!({"name": "scope coverage", "scopes": scopes}))
        .send()
        .await
        .expect("key request");
    assert_eq!(resp.status(), StatusCode::CREATED, "key with {scopes:?}");
    let body: Value = resp.json().await.expect("key json");
    let key = body["api_key"].as_str().expect("api_key").to_owned();
    mcpgate_e2e::remember_secret(&key);
    (key, body["key_id"].as_str().expect("key_id").to_owned())
}

e2e! {
    async fn every_operation_enforces_the_scope_the_spec_declares(backend) {
        let spec = committed_spec();
        let ops = operations(&spec);
        let ids: BTreeSet<&str> = ops.iter().map(|o| o.id.as_str()).collect();
        for listed in PUBLIC.iter().chain(ANY_SCOPE).chain(WITH_BODY) {
            assert!(ids.contains(listed), "{listed} is listed here but not in openapi.yaml");
        }
        for op in &ops {
            assert_eq!(
                op.scopes.is_none(),
                PUBLIC.contains(&op.id.as_str()),
                "{} {} ({}): public in the spec if and only if listed in PUBLIC",
                op.method, op.path, op.id
            );
            if op.scopes.as_ref().is_some_and(Vec::is_empty) {
                assert!(
                    ANY_SCOPE.contains(&op.id.as_str()),
                    "{} {} ({}) declares no scope: give its `auth: Auth` argument \
                     #[oai(scope = \"OAuthScope::…\")] and check it in the service, \
                     or list it in ANY_SCOPE if every credential may call it",
                    op.method, op.path, op.id
                );
            }
            assert_eq!(
                body(&op.id).is_some(),
                op.body_required || WITH_BODY.contains(&op.id.as_str()),
                "{}: a required request body needs a sample in `body()` (and WITH_BODY)",
                op.id
            );
            assert!(
                op.required_params.is_empty(),
                "{}: required parameters {:?} need values in this test",
                op.id, op.required_params
            );
        }

        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let owner = reg.api_key.clone();
        let all: BTreeSet<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();

        // Real objects for the path parameters, made with the owner's key
        // (which holds every scope); none of them is the key under test.
        let (_, victim_id) = key_with(&server, &owner, &all).await;
        let memory: Value = http()
            .post(format!("{}/api/v1/memory", server.url))
            .bearer_auth(&owner)
            .json(&json!({"title": "Target", "content": "A memory to read, change and delete."}))
            .send().await.unwrap().json().await.unwrap();
        let memory_id = memory["id"].as_str().expect("memory id").to_owned();
        let client: Value = http()
            .post(format!("{}/oauth/register", server.url))
            .bearer_auth(&owner)
            .json(&json!({
                "client_name": "Scope coverage",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_post",
            }))
            .send().await.unwrap().json().await.unwrap();
        if let Some(secret) = client["client_secret"].as_str() {
            mcpgate_e2e::remember_secret(secret);
        }
        let client_id = client["client_id"].as_str().expect("client id").to_owned();
        let params: BTreeMap<&str, &str> = [
            ("key_id", victim_id.as_str()),
            ("id", memory_id.as_str()),
            ("client_id", client_id.as_str()),
            ("provider", "github"),
        ]
        .into();
        let fill = |template: &str| -> String {
            let mut path = template.to_owned();
            while let Some(start) = path.find('{') {
                let end = path[start..].find('}').expect("closing brace") + start;
                let name = &path[start + 1..end];
                let value = params
                    .get(name)
                    .unwrap_or_else(|| panic!("{template}: no value for the path parameter {name}"));
                path.replace_range(start..=end, value);
            }
            path
        };

        let mut keys: BTreeMap<BTreeSet<&str>, String> = BTreeMap::new();
        let mut checked = 0;
        for op in &ops {
            let path = fill(&op.path);
            let what = format!("{} {} ({})", op.method, op.path, op.id);
            let Some(scopes) = &op.scopes else {
                let sent = send(&server, op, &path, None).await;
                assert!(sent.status.is_success(), "{what} needs no credential: {} {}", sent.status, sent.body);
                continue;
            };
            let sent = send(&server, op, &path, None).await;
            assert_eq!(sent.status, StatusCode::UNAUTHORIZED, "{what} without a credential: {}", sent.body);

            // Lacking any one declared scope: refused, naming it.
            for scope in scopes {
                let mut lacking = all.clone();
                lacking.remove(scope.as_str());
                if !keys.contains_key(&lacking) {
                    let (key, _) = key_with(&server, &owner, &lacking).await;
                    keys.insert(lacking.clone(), key);
                }
                let sent = send(&server, op, &path, Some(&keys[&lacking])).await;
                assert_eq!(
                    (sent.status, sent.body["error"].as_str()),
                    (StatusCode::FORBIDDEN, Some("insufficient_scope")),
                    "{what} with every scope but {scope}: {}", sent.body
                );
                let message = sent.body["message"].as_str().unwrap_or_default();
                assert!(message.contains(scope.as_str()), "{what}: the refusal names {scope}: {message}");
                checked += 1;
            }

            // Holding exactly the declared scopes (for an operation that
            // declares none, any one scope): admitted.
            let holdings: Vec<BTreeSet<&str>> = if scopes.is_empty() {
                all.iter().map(|s| BTreeSet::from([*s])).collect()
            } else {
                vec![scopes.iter().map(String::as_str).collect()]
            };
            for holding in holdings {
                if !keys.contains_key(&holding) {
                    let (key, _) = key_with(&server, &owner, &holding).await;
                    keys.insert(holding.clone(), key);
                }
                let sent = send(&server, op, &path, Some(&keys[&holding])).await;
                assert!(
                    sent.status != StatusCode::UNAUTHORIZED && sent.status != StatusCode::FORBIDDEN,
                    "{what} with exactly {holding:?}: {} {}", sent.status, sent.body
                );
            }
        }
        assert!(checked >= 20, "only {checked} refusals checked: the spec lost its scopes");
        server.stop().await;
    }
}
