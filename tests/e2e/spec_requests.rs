//! Requests generated from `openapi.yaml`: for every rule the spec states on
//! a request body field or a parameter, values at its edges and just past
//! them, each sent alone on an otherwise valid request. The spec's own
//! schema says which values are valid (a JSON Schema validator judges each
//! generated value); the server must accept exactly those (2xx) and refuse
//! the others with 400 naming the field, and never answer 5xx. Every request
//! body also gets an unknown field, which `additionalProperties: false`
//! refuses. A rule the server enforces but the spec does not state, or the
//! reverse, fails here.

use mcpgate_e2e::{
    spec::{self, Operation},
    Remembered,
};
use serde_json::{json, Map, Value};

use super::*;

/// Operations whose valid requests cannot succeed on a test server, and why.
const NOT_SUCCEEDING: &[(&str, &str)] = &[(
    "connect_start",
    "no provider is configured, so a valid start answers 404",
)];

/// Passwords are limited to 72 bytes of UTF-8 (bcrypt's input), which
/// `maxLength` cannot say (their description does): their multi-byte
/// candidate is 72 bytes, the most a password may hold.
fn bytes_limited(schema: &Value) -> bool {
    schema["description"]
        .as_str()
        .is_some_and(|d| d.contains("72 bytes"))
}

fn resolve(schema: &Value) -> &Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &spec::committed()["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn is_valid(schema: &Value, value: &Value) -> bool {
    spec::validator(schema).is_valid(value)
}

/// A string of `n` characters, unique within the run while `n` allows.
fn text(n: usize) -> String {
    let seed = uuid::Uuid::new_v4().simple().to_string();
    seed.chars().chain(std::iter::repeat('x')).take(n).collect()
}

/// An email address of exactly `n` characters (at least 20), within
/// RFC 5321's part limits: a local part of up to 64 characters, domain
/// labels of up to 63.
fn email(n: usize) -> String {
    let local = text(n.saturating_sub(10).min(64));
    let mut domain = String::new();
    let mut left = n - local.len() - 1 - 4; // "@" and ".com"
    while left > 0 {
        if !domain.is_empty() {
            domain.push('.');
            left -= 1;
        }
        let label = left.min(63);
        // Never leave a single character for a label after the dot.
        let label = if left - label == 1 { label - 1 } else { label };
        domain.push_str(&"d".repeat(label));
        left -= label;
    }
    format!("{local}@{domain}.com")
}

/// Candidate values of a property: at and past the edges of its rules.
fn candidates(schema: &Value) -> Vec<Value> {
    let s = resolve(schema);
    let int = |k: &str| s.get(k).and_then(Value::as_i64);
    let len = |k: &str| s.get(k).and_then(Value::as_u64).map(|n| n as usize);
    let mut out: Vec<Value> = Vec::new();
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        out.extend(values.iter().cloned());
        out.push("not-one-of-them".into());
        return out;
    }
    match s.get("type").and_then(Value::as_str) {
        Some("string") if s.get("format").and_then(Value::as_str) == Some("email") => {
            let max = len("maxLength").unwrap_or(254);
            out.extend([email(20), email(max), email(max + 1)].map(Value::from));
            out.extend(["no-at-sign.example.com", "a@b@example.com"].map(Value::from));
        }
        Some("string") if s.get("maxLength").is_some() || s.get("minLength").is_some() => {
            let min = len("minLength").unwrap_or(0);
            let max = len("maxLength");
            out.push(text(min.max(1)).into());
            if min > 0 {
                out.push(text(min - 1).into());
            }
            if let Some(max) = max {
                out.push(text(max).into());
                out.push(text(max + 1).into());
                // Characters, not bytes, are counted; except where the
                // limit is in bytes, which a schema cannot state.
                if bytes_limited(s) {
                    out.push("é".repeat(max / 2).into());
                } else {
                    out.push("é".repeat(max.min(1_000)).into());
                }
            }
            out.push(" ".repeat(min.max(3)).into());
            out.push(format!("{}\u{1}", text(min.max(2))).into());
            out.push(format!(" {} ", text(min.max(1))).into());
        }
        Some("integer") if int("minimum").is_some() || int("maximum").is_some() => {
            for bound in [int("minimum"), int("maximum")].into_iter().flatten() {
                out.extend([bound - 1, bound, bound + 1].map(Value::from));
            }
        }
        Some("array") => {
            let items = &s["items"];
            let item_values: Vec<Value> = candidates(items)
                .into_iter()
                .filter(|v| is_valid(items, v))
                .collect();
            let Some(first) = item_values.first().cloned() else {
                return out;
            };
            // Distinct valid items, as many as needed.
            let nth = |i: usize| -> Value {
                match first {
                    Value::String(_)
                        if item_values.len() > 1 && resolve(items).get("enum").is_some() =>
                    {
                        item_values[i % item_values.len()].clone()
                    }
                    Value::String(_) => format!("item{i}").into(),
                    _ => first.clone(),
                }
            };
            if let Some(max) = len("maxItems") {
                out.push(Value::Array((0..max).map(nth).collect()));
                out.push(Value::Array((0..=max).map(nth).collect()));
            }
            if let Some(min) = len("minItems").filter(|m| *m > 0) {
                out.push(Value::Array((0..min - 1).map(nth).collect()));
            }
            for bad in candidates(items)
                .into_iter()
                .filter(|v| !is_valid(items, v))
            {
                out.push(json!([nth(0), bad]));
            }
        }
        _ => {}
    }
    out
}

/// A typical valid value of a constrained property (fresh on every call,
/// so unique values such as emails stay unique).
fn typical(schema: &Value) -> Option<Value> {
    candidates(schema).into_iter().find(|v| is_valid(schema, v))
}

/// A valid body: every constrained property at a typical value, plus the
/// required ones.
fn base_body(schema: &Value) -> Map<String, Value> {
    let s = resolve(schema);
    let mut body = Map::new();
    for (name, prop) in s["properties"].as_object().into_iter().flatten() {
        if let Some(v) = typical(prop) {
            body.insert(name.clone(), v);
        }
    }
    body
}

/// One generated request.
struct Case {
    what: String,
    body: Option<Map<String, Value>>,
    header: Option<(String, String)>,
    query: Option<(String, String)>,
    valid: bool,
    field: String,
}

fn cases(op: &Operation) -> Vec<Case> {
    let body_schema = op.spec["requestBody"]["content"]
        .as_object()
        .and_then(|c| c.values().next())
        .map(|m| m["schema"].clone());
    let base = || body_schema.as_ref().map(base_body);
    let mut out = Vec::new();
    if let Some(schema) = &body_schema {
        out.push(Case {
            what: "a typical body".into(),
            body: base(),
            header: None,
            query: None,
            valid: true,
            field: String::new(),
        });
        for (name, prop) in resolve(schema)["properties"]
            .as_object()
            .into_iter()
            .flatten()
        {
            for value in candidates(prop) {
                let valid = is_valid(prop, &value);
                let mut body = base().unwrap();
                let shown: String = value.to_string().chars().take(60).collect();
                body.insert(name.clone(), value);
                out.push(Case {
                    what: format!("{name} = {shown}"),
                    body: Some(body),
                    header: None,
                    query: None,
                    valid,
                    field: name.clone(),
                });
            }
        }
        let mut body = base().unwrap();
        body.insert("unexpected_field".into(), json!(1));
        out.push(Case {
            what: "an unknown field".into(),
            body: Some(body),
            header: None,
            query: None,
            valid: false,
            field: "unexpected_field".into(),
        });
    }
    for param in op.spec["parameters"].as_array().into_iter().flatten() {
        let name = param["name"].as_str().unwrap().to_owned();
        let schema = &param["schema"];
        for value in candidates(schema) {
            let valid = is_valid(schema, &value);
            let text = match &value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            // A header value is visible ASCII, and HTTP trims its ends:
            // other candidates cannot reach the server as generated.
            let header = param["in"] == "header";
            if header
                && (!text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') || text.trim() != text)
            {
                continue;
            }
            let shown: String = text.chars().take(60).collect();
            out.push(Case {
                what: format!("{name} = {shown:?}"),
                body: base(),
                header: header.then(|| (name.clone(), text.clone())),
                query: (param["in"] == "query").then(|| (name.clone(), text.clone())),
                valid,
                field: name.clone(),
            });
        }
    }
    out
}

/// Fill the path template of `op` with objects of a fresh account.
async fn path_for(server: &TestServer, op: &Operation, key: &str) -> String {
    let client = server.with_key(key);
    let mut path = op.template.clone();
    if path.contains("{id}") {
        let m = client
            .memory_create()
            .body(types::CreateMemoryRequest {
                title: "fixture".into(),
                content: "fixture".into(),
                memory_type: None,
                tags: vec![],
                metadata: Default::default(),
            })
            .send()
            .await
            .unwrap()
            .into_inner();
        path = path.replace("{id}", &m.id);
    }
    if path.contains("{key_id}") {
        let k = client
            .key_create()
            .body(types::CreateKeyRequest {
                name: "fixture".into(),
                scopes: vec![],
                expires_in_days: None,
            })
            .send()
            .await
            .unwrap()
            .into_inner();
        path = path.replace("{key_id}", &k.key_id);
    }
    path = path.replace("{provider}", "github");
    assert!(!path.contains('{'), "{}: no fixture for {path}", op.id);
    path
}

e2e! {
    async fn every_rule_holds_at_and_past_its_edge(backend) {
        let server = TestServer::start_with(backend, |c| {
            c.rate_limit_registration_per_minute = 100_000;
            c.rate_limit_credential_per_minute = 100_000;
            c.rate_limit_ip_per_minute = 100_000;
            c.rate_limit_login_per_minute = 100_000;
        })
        .await;
        let mut checked = 0;
        let mut refused = 0;
        for op in spec::operations() {
            let cases = cases(op);
            let exception = NOT_SUCCEEDING.iter().find(|(id, _)| *id == op.id);
            let public = op.spec.get("security").is_none();
            for case in cases {
                // A fresh account per request: unique emails, unused
                // idempotency keys, no key-count limit in the way.
                // Without email or password, so a password can be set.
                let key = server
                    .anonymous()
                    .user_register()
                    .body(types::RegisterRequest { name: None, email: None, password: None })
                    .send()
                    .await
                    .expect("registration")
                    .into_inner()
                    .remembered()
                    .api_key;
                let path = path_for(&server, op, &key).await;
                let client = if public { server.anonymous() } else { server.with_key(&key) };
                let mut req = server.raw(&client, op.method.as_str().parse().unwrap(), &path);
                if let Some(body) = &case.body {
                    req = req.json(body);
                }
                if let Some((name, value)) = &case.header {
                    req = req.header(name.as_str(), value.as_str());
                }
                if let Some((name, value)) = &case.query {
                    req = req.query(&[(name, value)]);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let at = format!("{} {} with {}", op.id, path, case.what);
                assert!(status < 500, "{at}: {status} {body}");
                if case.valid {
                    match exception {
                        Some((_, why)) => assert!(status != 400, "{at} ({why}): {body}"),
                        None => assert!((200..300).contains(&status), "{at}: {status} {body}"),
                    }
                } else {
                    refused += 1;
                    let field = body["field"].as_str().unwrap_or_default();
                    assert_eq!(status, 400, "{at}: {body}");
                    assert!(
                        field == case.field
                            || field.starts_with(&format!("{}[", case.field))
                            || field.starts_with(&format!("{}.", case.field)),
                        "{at}: 400 names {field:?}, not {:?}", case.field
                    );
                }
                checked += 1;
            }
        }
        // Every rule of the spec produced cases: the count moves only with the spec.
        assert!(checked >= 180 && refused >= 80, "{checked} requests, {refused} refused");
        server.stop().await;
    }
}
