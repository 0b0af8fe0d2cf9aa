//! Text input is text: a NUL character in anything a request carries — a
//! form field, a query parameter, a path segment, a JSON string or key, a
//! credential — is refused at the edge with 400 naming it (401 for a
//! credential), never 5xx, and the same on both backends (Postgres cannot
//! hold a NUL in `text`; SQLite would store it).
//!
//! The REST rows are read from the served spec: every operation with a path
//! parameter, a query parameter or a JSON body, so a new route is covered
//! the day it exists.

use base64::{engine::general_purpose::STANDARD, Engine};
use mcpgate_e2e::oauth::{browser, hidden_fields, http};
use reqwest::{Method, StatusCode};

use super::*;

/// What a refused request answers.
#[derive(Debug, Clone)]
enum Answer {
    /// REST: 400 `validation_failed` with `field`.
    Rest(String),
    /// OAuth endpoint: 400 with this RFC 6749 `error`, the description
    /// naming the field.
    OAuth(&'static str, &'static str),
    /// A page: 400 HTML naming the field.
    Page(&'static str),
    /// A credential: 401, like any malformed one.
    Credential,
    /// `/mcp`: 400 with a JSON-RPC error naming the field.
    JsonRpc(&'static str),
}

/// One request with a NUL in it.
struct Case {
    what: String,
    request: reqwest::RequestBuilder,
    answer: Answer,
}

fn case(what: impl Into<String>, request: reqwest::RequestBuilder, answer: Answer) -> Case {
    Case {
        what: what.into(),
        request,
        answer,
    }
}

/// Send `c` and check its answer.
async fn check(c: Case) {
    let resp = c.request.send().await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = resp.text().await.unwrap_or_default();
    let what = &c.what;
    assert!(!status.is_server_error(), "{what}: {status} {text}");
    let json = || -> serde_json::Value {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"))
    };
    match &c.answer {
        Answer::Rest(field) => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
            let body = json();
            assert_eq!(body["error"], "validation_failed", "{what}: {body}");
            assert_eq!(
                body["field"].as_str(),
                Some(field.as_str()),
                "{what}: {body}"
            );
            assert!(
                body["message"].as_str().unwrap().contains("NUL character"),
                "{what}: {body}"
            );
        }
        Answer::OAuth(code, field) => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
            let body = json();
            assert_eq!(body["error"], *code, "{what}: {body}");
            assert_eq!(
                body["error_description"].as_str(),
                Some(format!("{field} must not contain a NUL character").as_str()),
                "{what}: {body}"
            );
        }
        Answer::Page(field) => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
            assert!(
                content_type.starts_with("text/html"),
                "{what}: {content_type}"
            );
            let sentence = format!("{field} must not contain a NUL character");
            assert!(
                text.to_lowercase().contains(&sentence.to_lowercase()),
                "{what}: no {sentence:?} in\n{text}"
            );
        }
        Answer::Credential => {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {text}");
        }
        Answer::JsonRpc(field) => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
            let body = json();
            assert_eq!(body["jsonrpc"], "2.0", "{what}: {body}");
            assert_eq!(body["error"]["data"]["field"], *field, "{what}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("NUL character"),
                "{what}: {body}"
            );
        }
    }
}

const NUL: &str = "a\u{0}b";
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `path` of the spec with every `{param}` replaced by `value`.
fn fill(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The schema `s` points to, following `$ref` and a one-element `allOf`.
fn resolve<'a>(spec: &'a serde_json::Value, s: &'a serde_json::Value) -> &'a serde_json::Value {
    if let Some(r) = s["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return resolve(spec, &spec["components"]["schemas"][name]);
    }
    if let Some(first) = s["allOf"].as_array().and_then(|a| a.first()) {
        return resolve(spec, first);
    }
    s
}

/// A value of `schema` carrying a NUL, and the field name that names it
/// relative to the property (`""`, `[0]`, `.k`); none for numbers and
/// booleans, which cannot carry text.
fn nul_value(
    spec: &serde_json::Value,
    schema: &serde_json::Value,
) -> Option<(serde_json::Value, &'static str)> {
    let schema = resolve(spec, schema);
    match schema["type"].as_str() {
        Some("string") => Some((NUL.into(), "")),
        Some("array") => {
            let (item, _) = nul_value(spec, &schema["items"])?;
            Some((serde_json::json!([item]), "[0]"))
        }
        Some("object") => Some((serde_json::json!({ "k": NUL }), ".k")),
        _ => None,
    }
}

/// Every REST operation of the served spec with a path parameter, a query
/// parameter or a JSON body, as rows.
async fn rest_cases(server: &TestServer, key: &str) -> Vec<Case> {
    let spec: serde_json::Value = http()
        .get(format!("{}/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut cases = Vec::new();
    let (mut paths, mut queries, mut bodies) = (0, 0, 0);
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let id = op["operationId"].as_str().unwrap();
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let send = |target: String| {
                http()
                    .request(m.clone(), format!("{}{target}", server.url))
                    .header("x-api-key", key)
            };
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            // A NUL in the path, in each segment that is a parameter.
            if path.contains('{') {
                paths += 1;
                let mut req = send(fill(path, "a%00b"));
                if op.get("requestBody").is_some() {
                    req = req.header("content-type", "application/json").body("{}");
                }
                cases.push(case(
                    format!("{id}: path"),
                    req,
                    Answer::Rest("path".into()),
                ));
            }
            let target = fill(path, &uuid);
            for p in params.iter().filter(|p| p["in"] == "query") {
                queries += 1;
                let name = p["name"].as_str().unwrap();
                cases.push(case(
                    format!("{id}: query {name}"),
                    send(format!("{target}?{name}=a%00b")),
                    Answer::Rest(name.into()),
                ));
            }
            let Some(body) = op.get("requestBody") else {
                continue;
            };
            let schema = body["content"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(ct, _)| ct.starts_with("application/json"))
                .map(|(_, c)| &c["schema"])
                .unwrap_or_else(|| panic!("{id}: a JSON body"));
            let schema = resolve(&spec, schema);
            let json = |value: serde_json::Value| {
                send(target.clone())
                    .header("content-type", "application/json")
                    .body(value.to_string())
            };
            bodies += 1;
            // A NUL in a key: keys are text too.
            cases.push(case(
                format!("{id}: body key"),
                json(serde_json::json!({ NUL: 1 })),
                Answer::Rest("a\\u0000b".into()),
            ));
            for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
                if let Some((value, suffix)) = nul_value(&spec, prop) {
                    cases.push(case(
                        format!("{id}: body {name}"),
                        json(serde_json::json!({ name: value })),
                        Answer::Rest(format!("{name}{suffix}")),
                    ));
                }
            }
        }
    }
    // The walk found what the spec has today, at least.
    assert!(
        paths >= 10 && queries >= 5 && bodies >= 8,
        "{paths} {queries} {bodies}"
    );
    cases
}

/// A browser signed in as `user`, and the CSRF token of its console forms.
async fn signed_in(
    server: &TestServer,
    user: &mcpgate_e2e::oauth::TestUser,
) -> (reqwest::Client, String) {
    let b = browser();
    let resp = server.login(&b, user, "/").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let html = b
        .get(format!("{}/account/keys", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (b, csrf_token(&html))
}

fn csrf_token(html: &str) -> String {
    hidden_fields(html)
        .into_iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v)
        .expect("a csrf_token field")
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// The status of a request written byte for byte on a fresh connection.
async fn raw_status(server: &TestServer, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_end(&mut buf),
    )
    .await;
    let head = String::from_utf8_lossy(&buf);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"))
}

e2e! {
    async fn nul_characters_are_refused_at_the_edge_everywhere(backend) {
        let server = TestServer::start_with(backend, |c| c.rate_limit_registration_per_minute = 100).await;
        let reg = server.register().await;
        let user = server.register_with_password().await;
        let (signed_in, console_token) = signed_in(&server, &user).await;
        let url = |path: &str| format!("{}{path}", server.url);
        let page_get = |b: &reqwest::Client, path: &str| b.get(url(path)).header("accept", "text/html");
        let page_post = |b: &reqwest::Client, path: &str, form: Vec<(String, String)>| {
            b.post(url(path)).header("accept", "text/html").form(&form)
        };
        let field = |k: &str, v: &str| (k.to_owned(), v.to_owned());

        let mut cases = rest_cases(&server, &reg.api_key).await;

        // The pages: the login form (with its CSRF token, so nothing else is wrong).
        let login = browser();
        let html = login.get(url("/login")).send().await.unwrap().text().await.unwrap();
        let mut form = hidden_fields(&html);
        form.extend([field("email", &format!("{NUL}@example.com")), field("password", "whatever1")]);
        cases.push(case("POST /login email", page_post(&login, "/login", form), Answer::Page("email")));
        let signup = browser();
        let html = signup.get(url("/signup")).send().await.unwrap().text().await.unwrap();
        let mut form = hidden_fields(&html);
        form.extend([field("name", NUL), field("email", "new@example.com"), field("password", "long-enough-1")]);
        cases.push(case("POST /signup name", page_post(&signup, "/signup", form), Answer::Page("name")));
        cases.push(case(
            "GET /oauth/authorize client_id",
            page_get(&signed_in, "/oauth/authorize?response_type=code&client_id=a%00b&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_challenge=x&code_challenge_method=S256&state=s"),
            Answer::Page("client_id"),
        ));
        cases.push(case(
            "POST /oauth/authorize client_id",
            page_post(&signed_in, "/oauth/authorize", vec![field("csrf_token", &console_token), field("client_id", NUL), field("decision", "approve")]),
            Answer::Page("client_id"),
        ));
        cases.push(case(
            "POST /account/keys name",
            page_post(&signed_in, "/account/keys", vec![field("csrf_token", &console_token), field("name", NUL)]),
            Answer::Page("name"),
        ));
        cases.push(case(
            "POST /account/keys/{id}/revoke path",
            page_post(&signed_in, "/account/keys/a%00b/revoke", vec![field("csrf_token", &console_token)]),
            Answer::Page("path"),
        ));
        cases.push(case("GET /account/memories q", page_get(&signed_in, "/account/memories?q=a%00b"), Answer::Page("q")));
        cases.push(case(
            "GET /api/v1/connect/{provider}/callback state",
            page_get(&signed_in, "/api/v1/connect/github/callback?code=x&state=a%00b"),
            Answer::Page("state"),
        ));
        cases.push(case(
            "GET /api/v1/connect/{provider}/callback path",
            page_get(&signed_in, "/api/v1/connect/a%00b/callback?code=x&state=y"),
            Answer::Page("path"),
        ));

        // The OAuth endpoints: RFC 6749 errors.
        let oauth = |path: &str, form: &[(&str, &str)]| http().post(url(path)).form(form);
        cases.push(case(
            "POST /oauth/token client_id",
            oauth("/oauth/token", &[("grant_type", "authorization_code"), ("code", "x"), ("client_id", NUL)]),
            Answer::OAuth("invalid_request", "client_id"),
        ));
        cases.push(case(
            "POST /oauth/token refresh_token",
            oauth("/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", NUL), ("client_id", "mcpg_ci_x")]),
            Answer::OAuth("invalid_request", "refresh_token"),
        ));
        cases.push(case(
            "POST /oauth/revoke client_id",
            oauth("/oauth/revoke", &[("token", "x"), ("client_id", NUL)]),
            Answer::OAuth("invalid_request", "client_id"),
        ));
        cases.push(case(
            "POST /oauth/introspect client_id",
            oauth("/oauth/introspect", &[("token", "x"), ("client_id", NUL), ("client_secret", "s")]),
            Answer::OAuth("invalid_request", "client_id"),
        ));
        // Basic credentials with a NUL in either part (raw, or form-encoded
        // as RFC 6749 §2.3.1 has it) are malformed: 401 `invalid_client`.
        for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
            for id in [NUL, "a%00b"] {
                cases.push(case(
                    format!("POST {path} Basic {id:?}"),
                    http().post(url(path)).header("authorization", basic(id, "secret")).form(&[("grant_type", "client_credentials"), ("token", "x")]),
                    Answer::Credential,
                ))
            }
        }
        // Registration metadata with a NUL in a string is refused naming it.
        cases.push(case(
            "POST /oauth/register client_uri",
            http().post(url("/oauth/register")).json(&serde_json::json!({
                "redirect_uris": ["https://app.example/cb"],
                "token_endpoint_auth_method": "none",
                "client_uri": format!("https://app.example/{NUL}"),
            })),
            Answer::OAuth("invalid_client_metadata", "client_uri"),
        ));

        // Credentials: never decoded, so a NUL spelled out is a malformed key.
        cases.push(case(
            "X-API-Key with %00",
            http().get(url("/api/v1/users/me")).header("x-api-key", "mcpg_a%00b"),
            Answer::Credential,
        ));
        cases.push(case(
            "Bearer with %00",
            http().get(url("/api/v1/users/me")).bearer_auth("mcpg_at_a%00b"),
            Answer::Credential,
        ));

        // MCP: a tool argument.
        cases.push(case(
            "/mcp tools/call memory_create title",
            http()
                .post(url("/mcp"))
                .bearer_auth(&reg.api_key)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(serde_json::json!({
                    "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": { "name": "memory_create", "arguments": { "title": NUL, "content": "x" } },
                }).to_string()),
            Answer::JsonRpc("params.arguments.title"),
        ));

        let count = cases.len();
        for c in cases {
            check(c).await;
        }
        assert!(count > 50, "{count} rows");

        // A raw NUL cannot even be in a header: the HTTP parser refuses the
        // request (400) before any route or query.
        let host = server.url.trim_start_matches("http://");
        for header in ["X-API-Key: mcpg_a\0b", "Authorization: Basic a\0b", "Cookie: mcpgate_session=a\0b"] {
            let request = format!("GET /api/v1/users/me HTTP/1.1\r\nHost: {host}\r\n{header}\r\nConnection: close\r\n\r\n");
            assert_eq!(raw_status(&server, request.as_bytes()).await, 400, "{header:?}");
        }

        // Nothing was stored by any of it.
        let client = server.with_key(&reg.api_key);
        assert_eq!(client.key_list().send().await.unwrap().into_inner().keys.len(), 1);
        assert_eq!(client.memory_list().send().await.unwrap().into_inner().memories.len(), 0);
        let owner = server.with_key(&user.api_key);
        assert_eq!(owner.key_list().send().await.unwrap().into_inner().keys.len(), 1);
        server.stop().await;
    }
}
