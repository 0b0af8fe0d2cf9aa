//! Every response a test server sends, checked against `openapi.yaml`.
//!
//! [`SpecCheck`] wraps the whole application of each [`crate::TestServer`]
//! (through [`mcpgate_server::server::Server::start_wrapped`]), so it sees
//! what every client of the suite receives: the typed client, raw requests,
//! the rmcp client, the browser. For a request that matches an operation of
//! the committed spec (method and path template), the status must be one the
//! operation declares, and a JSON body must validate against the schema of
//! that status (JSON Schema 2020-12, formats checked). A mismatch is
//! recorded with the operation, status and the failing locations (never the
//! body: it may hold a secret), written to standard error at once, and fails
//! the test when its server stops or is dropped.
//!
//! Routes outside the spec (`/oauth/*`, pages, `/mcp`) are not checked here;
//! their contracts are RFCs and the MCP schema, asserted by their own tests.

use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use mcpgate_server::server::Around;
use poem::{
    endpoint::BoxEndpoint, http::Method, Endpoint, EndpointExt, IntoResponse, Request, Response,
};
use serde_json::Value;

/// The committed spec as JSON.
pub fn committed() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
        let text = std::fs::read_to_string(&path).expect("openapi.yaml is readable");
        serde_yaml::from_str(&text).expect("openapi.yaml parses")
    })
}

/// One operation of the spec.
pub struct Operation {
    pub id: String,
    pub method: Method,
    pub template: String,
    segments: Vec<Option<String>>,
    /// The operation object itself.
    pub spec: Value,
}

impl Operation {
    /// Whether `path` fits the template, and how many literal segments
    /// matched (the most specific template wins: `/memory/stats` over
    /// `/memory/{id}`).
    fn fit(&self, path: &str) -> Option<usize> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut literal = 0;
        for (part, seg) in parts.iter().zip(&self.segments) {
            match seg {
                Some(s) if s == part => literal += 1,
                Some(_) => return None,
                None if part.is_empty() => return None,
                None => {}
            }
        }
        Some(literal)
    }
}

/// Every operation of the committed spec.
pub fn operations() -> &'static [Operation] {
    static OPS: OnceLock<Vec<Operation>> = OnceLock::new();
    OPS.get_or_init(|| {
        let mut out = Vec::new();
        let paths = committed()["paths"].as_object().expect("paths");
        for (template, item) in paths {
            for (method, op) in item.as_object().expect("path item") {
                let Ok(m) = method.to_ascii_uppercase().parse::<Method>() else {
                    continue;
                };
                out.push(Operation {
                    id: op["operationId"].as_str().unwrap_or_default().to_owned(),
                    method: m,
                    template: template.clone(),
                    segments: template
                        .trim_end_matches('/')
                        .split('/')
                        .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                        .collect(),
                    spec: op.clone(),
                });
            }
        }
        out
    })
}

/// The operation `method path` answers to, if the spec has one.
pub fn operation(method: &Method, path: &str) -> Option<&'static Operation> {
    operations()
        .iter()
        .filter(|op| op.method == *method)
        .filter_map(|op| op.fit(path).map(|n| (n, op)))
        .max_by_key(|(n, _)| *n)
        .map(|(_, op)| op)
}

/// A JSON Schema validator for `schema`, resolving `#/components/...`
/// against the spec; compiled once per distinct schema (each compile holds
/// every component, so compiling per value would dominate a test's time).
pub fn validator(schema: &Value) -> Arc<jsonschema::Validator> {
    static COMPILED: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let key = schema.to_string();
    let cache = COMPILED.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return v.clone();
    }
    let compiled = Arc::new(compile(schema));
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(compiled)
        .clone()
}

fn compile(schema: &Value) -> jsonschema::Validator {
    let root = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": committed()["components"],
    });
    jsonschema::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .build(&root)
        .expect("the spec's schemas compile")
}

/// The body validator of each (operation, status); `None` where the spec
/// declares no JSON body.
type Validators = HashMap<(String, u16), Option<Arc<jsonschema::Validator>>>;

/// What is wrong with `body` as the `status` answer of `op` (empty: nothing).
pub fn check(op: &Operation, status: u16, content_type: &str, body: &[u8]) -> Vec<String> {
    static VALIDATORS: OnceLock<Mutex<Validators>> = OnceLock::new();
    let responses = &op.spec["responses"];
    let Some(declared) = responses
        .get(status.to_string())
        .or_else(|| responses.get("default"))
    else {
        return vec![format!("status {status} is not declared")];
    };
    let validator = {
        let mut cache = VALIDATORS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache
            .entry((op.id.clone(), status))
            .or_insert_with(|| {
                declared["content"]
                    .as_object()
                    .and_then(|c| c.iter().find(|(media, _)| media.contains("json")))
                    .map(|(_, media)| validator(&media["schema"]))
            })
            .clone()
    };
    let is_json = content_type.contains("json");
    match validator {
        None if body.is_empty() => Vec::new(),
        None if is_json => vec![format!(
            "a JSON body where the spec declares none for {status}"
        )],
        None => Vec::new(),
        Some(_) if !is_json => vec![format!(
            "content type {content_type:?} where the spec declares JSON"
        )],
        Some(v) => match serde_json::from_slice::<Value>(body) {
            Err(e) => vec![format!("the body is not JSON: {e}")],
            Ok(value) => v
                .iter_errors(&value)
                .map(|e| format!("at {}: {}", e.instance_path(), e.masked()))
                .collect(),
        },
    }
}

/// The check around one server (and its replicas): the violations it saw.
#[derive(Clone, Default)]
pub struct SpecCheck {
    violations: Arc<Mutex<Vec<String>>>,
}

impl SpecCheck {
    /// The wrapper to start a server with.
    pub fn around(&self) -> Around {
        let violations = self.violations.clone();
        Arc::new(move |app: BoxEndpoint<'static, Response>| {
            let violations = violations.clone();
            app.around(move |app, req: Request| {
                let violations = violations.clone();
                async move {
                    let method = req.method().clone();
                    let path = req.uri().path().to_owned();
                    let resp = app.call(req).await?.into_response();
                    let Some(op) = operation(&method, &path) else {
                        return Ok(resp);
                    };
                    let status = resp.status().as_u16();
                    let content_type = resp
                        .headers()
                        .get(poem::http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let (parts, body) = resp.into_parts();
                    let bytes = body.into_bytes().await.unwrap_or_default();
                    let problems = check(op, status, &content_type, &bytes);
                    if !problems.is_empty() {
                        let line = format!(
                            "spec violation: {method} {path} ({}) answered {status}: {}",
                            op.id,
                            problems.join("; ")
                        );
                        let _ = std::io::stderr()
                            .lock()
                            .write_all(format!("\n{line}\n").as_bytes());
                        violations
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(line);
                    }
                    Ok(Response::from_parts(parts, bytes.into()))
                }
            })
            .boxed()
        })
    }

    /// Take the violations seen so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.violations.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Panic if any response broke the spec.
    pub fn assert_clean(&self) {
        let seen = self.take();
        assert!(
            seen.is_empty(),
            "{} response(s) did not match openapi.yaml:\n{}",
            seen.len(),
            seen.join("\n")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> &'static Operation {
        operation(&Method::GET, "/api/v1/users/me").expect("user_me is in the spec")
    }

    const JSON: &str = "application/json; charset=utf-8";

    #[test]
    fn the_most_specific_template_wins() {
        assert_eq!(
            operation(&Method::GET, "/api/v1/memory/stats").unwrap().id,
            "memory_stats"
        );
        assert_eq!(
            operation(&Method::GET, "/api/v1/memory/0190").unwrap().id,
            "memory_get"
        );
        assert!(operation(&Method::GET, "/oauth/token").is_none());
    }

    #[test]
    fn a_conforming_answer_passes_and_each_kind_of_drift_is_caught() {
        let good = serde_json::json!({
            "user_id": "u", "created_at": "2026-12-03T10:00:00Z",
            "credential": {"kind": "api_key", "id": "k", "scopes": []}
        });
        assert_eq!(
            check(me(), 200, JSON, good.to_string().as_bytes()),
            Vec::<String>::new()
        );
        // `null` where the schema says string: what strict clients refuse.
        let mut null = good.clone();
        null["email"] = Value::Null;
        let found = check(me(), 200, JSON, null.to_string().as_bytes());
        assert!(found.len() == 1 && found[0].contains("/email"), "{found:?}");
        // A required field missing, a malformed date-time.
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("credential");
        assert_eq!(
            check(me(), 200, JSON, missing.to_string().as_bytes()).len(),
            1
        );
        let mut date = good.clone();
        date["created_at"] = "yesterday".into();
        assert_eq!(check(me(), 200, JSON, date.to_string().as_bytes()).len(), 1);
        // A status the operation does not declare; a body that is not JSON.
        assert_eq!(
            check(me(), 418, JSON, b"{}"),
            vec!["status 418 is not declared"]
        );
        assert_eq!(check(me(), 200, "text/plain", b"ok").len(), 1);
        // The error shape of every 4xx.
        let err = serde_json::json!({"error": "x", "message": "m", "request_id": "r"});
        assert!(check(me(), 401, JSON, err.to_string().as_bytes()).is_empty());
        assert_eq!(check(me(), 401, JSON, b"{\"error\": 1}").len(), 3);
    }

    #[test]
    fn violations_never_quote_the_body() {
        let secret = "mcpg_secret_value_that_must_not_leak";
        let body = serde_json::json!({
            "user_id": 7, "email": secret, "created_at": secret,
            "credential": {"kind": "api_key", "id": "k", "scopes": [secret]}
        });
        let found = check(me(), 200, JSON, body.to_string().as_bytes());
        assert!(!found.is_empty());
        assert!(found.iter().all(|f| !f.contains(secret)), "{found:?}");
    }
}
