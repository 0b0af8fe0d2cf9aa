//! Error bodies, request ids, malformed and oversized input.

use super::*;

async fn send_raw(
    server: &TestServer,
    key: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value, Option<String>) {
    let client = server.with_key(key);
    let mut req = server.raw(&client, reqwest::Method::POST, path).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap(), request_id)
}

e2e! {
    async fn malformed_bodies_get_400_naming_the_field(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let json = Some("application/json");
        // (body, content type, status, error code, field)
        type Case<'a> = (&'a str, Option<&'a str>, u16, &'a str, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (r#"{"name": "x""#, json, 400, "invalid_json", Some("body")),
            (r#"not json"#, json, 400, "invalid_json", Some("body")),
            (r#"{"name": 5}"#, json, 400, "validation_failed", Some("name")),
            (r#"{"nme": "x"}"#, json, 400, "validation_failed", Some("nme")),
            (r#"{"scopes": []}"#, json, 400, "validation_failed", Some("name")),
            (r#"{"name": "x", "scopes": [1]}"#, json, 400, "validation_failed", Some("scopes[0]")),
            (r#"{"name": "x", "expires_in_days": "10"}"#, json, 400, "validation_failed", Some("expires_in_days")),
            (r#"{"name": "   "}"#, json, 400, "validation_failed", Some("name")),
            (r#"{"name": "x", "scopes": []}"#, json, 400, "validation_failed", Some("scopes")),
            ("", json, 400, "invalid_body", Some("body")),
            (r#"{"name": "x"} trailing"#, json, 400, "invalid_json", Some("body")),
            (r#"{"name": "x"}"#, Some("text/plain"), 415, "unsupported_media_type", Some("body")),
            (r#"{"name": "x"}"#, None, 415, "unsupported_media_type", Some("body")),
        ];
        for (body, ct, status, code, field) in cases {
            let (got, value, request_id) = send_raw(&server, &reg.api_key, "/api/v1/keys", ct, body.into()).await;
            assert_eq!(got, status, "{body}: {value}");
            assert_eq!(value["error"], code, "{body}: {value}");
            assert_eq!(value["field"].as_str(), field, "{body}: {value}");
            assert!(!value["message"].as_str().unwrap().is_empty());
            assert_eq!(value["request_id"].as_str(), request_id.as_deref());
        }
        // Nothing was created by any of them.
        let keys = server.with_key(&reg.api_key).key_list().send().await.unwrap().into_inner();
        assert_eq!(keys.keys.len(), 1);
        server.stop().await;
    }

    async fn oversized_bodies_get_413(backend) {
        let server = TestServer::start_with(backend, |c| c.max_body_bytes = 4096).await;
        let reg = server.register().await;
        let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(10_000));
        let (status, value, _) = send_raw(&server, &reg.api_key, "/api/v1/keys", Some("application/json"), huge.into()).await;
        assert_eq!(status, 413, "{value}");
        assert_eq!(value["error"], "payload_too_large");
        // Within the byte limit but over the field limit: 400 naming the field.
        let long = format!(r#"{{"name": "{}"}}"#, "x".repeat(101));
        let (status, value, _) = send_raw(&server, &reg.api_key, "/api/v1/keys", Some("application/json"), long.into()).await;
        assert_eq!((status, value["field"].as_str()), (400, Some("name")), "{value}");
        // Registration is limited the same way, before any account exists.
        let client = server.anonymous();
        let resp = server
            .raw(&client, reqwest::Method::POST, "/api/v1/users/register")
            .header("content-type", "application/json")
            .body(format!(r#"{{"name": "{}"}}"#, "y".repeat(8192)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 413);
        server.stop().await;
    }

    async fn every_response_carries_a_request_id(backend) {
        let server = TestServer::start(backend).await;
        let client = server.anonymous();
        for (method, path, status) in [
            (reqwest::Method::GET, "/healthz", 200),
            (reqwest::Method::GET, "/no/such/route", 404),
            (reqwest::Method::DELETE, "/api/v1/users/register", 405),
            (reqwest::Method::GET, "/api/v1/keys", 401),
        ] {
            let resp = server.raw(&client, method.clone(), path).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), status, "{method} {path}");
            let id = resp.headers().get("x-request-id").expect("x-request-id").to_str().unwrap().to_owned();
            assert!(id.starts_with("req_") && id.len() == 24, "{id}");
            if status >= 400 {
                let body: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(body["request_id"], id.as_str(), "{body}");
                assert!(body["error"].is_string() && body["message"].is_string(), "{body}");
            }
        }
        // A plain incoming id from a proxy is kept; a hostile one is replaced.
        let resp = server.raw(&client, reqwest::Method::GET, "/healthz")
            .header("x-request-id", "lb-1234.abc").send().await.unwrap();
        assert_eq!(resp.headers()["x-request-id"], "lb-1234.abc");
        let resp = server.raw(&client, reqwest::Method::GET, "/healthz")
            .header("x-request-id", "evil id\" injected=1").send().await.unwrap();
        assert!(resp.headers()["x-request-id"].to_str().unwrap().starts_with("req_"));
        server.stop().await;
    }

    async fn every_405_says_what_is_allowed(backend) {
        let server = TestServer::start(backend).await;
        let key = server.register().await.api_key;
        let client = server.with_key(&key);
        // Every REST path of the published spec, with a method it lacks.
        let spec: serde_json::Value = server.raw(&client, reqwest::Method::GET, "/openapi.json").send().await.unwrap().json().await.unwrap();
        let mut checked = 0;
        for (template, ops) in spec["paths"].as_object().unwrap() {
            let mut allowed: Vec<String> = ops.as_object().unwrap().keys().map(|m| m.to_ascii_uppercase()).collect();
            if allowed.contains(&"GET".to_owned()) {
                allowed.push("HEAD".into());
            }
            let Some(wrong) = ["PUT", "PATCH", "DELETE", "POST", "GET"].into_iter().find(|m| !allowed.iter().any(|a| a == m)) else {
                continue;
            };
            let path: String = template
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let resp = server.raw(&client, wrong.parse().unwrap(), &path).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 405, "{wrong} {path}");
            let allow = resp.headers().get("allow").unwrap_or_else(|| panic!("{wrong} {path}: no Allow")).to_str().unwrap().to_owned();
            let mut got: Vec<&str> = allow.split(", ").collect();
            got.sort();
            let mut want: Vec<&str> = allowed.iter().map(String::as_str).collect();
            want.sort();
            assert_eq!(got, want, "{wrong} {path}");
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "method_not_allowed");
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} paths checked");
        // HEAD is served where GET is, as Allow says.
        let head = server.raw(&client, reqwest::Method::HEAD, "/api/v1/memory").send().await.unwrap();
        assert_eq!(head.status().as_u16(), 200);
        let head = server.raw(&client, reqwest::Method::HEAD, "/login").send().await.unwrap();
        assert_eq!(head.status().as_u16(), 200);
        // Pages, protocol endpoints and discovery documents.
        for (method, path, allow) in [
            ("PUT", "/login", "GET, HEAD, POST"),
            ("GET", "/oauth/token", "POST"),
            ("DELETE", "/oauth/register", "POST"),
            ("POST", "/account/keys/k/revoke/x", ""),
            ("PUT", "/account/memories", "GET, HEAD, POST"),
            ("POST", "/.well-known/oauth-authorization-server", "GET, HEAD, OPTIONS"),
            ("DELETE", "/favicon.svg", "GET, HEAD"),
        ] {
            let resp = server.raw(&client, method.parse().unwrap(), path).send().await.unwrap();
            if allow.is_empty() {
                assert_eq!(resp.status().as_u16(), 404, "{method} {path}");
                continue;
            }
            assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
            assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
        }
        // A browser gets the page, with the header too.
        let resp = server.raw(&client, reqwest::Method::PUT, "/login").header("accept", "text/html").send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 405);
        assert_eq!(resp.headers()["allow"], "GET, HEAD, POST");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        server.stop().await;
    }

    async fn absent_values_are_omitted_never_null(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        // Rows with every optional value absent: a key without expiry, a
        // memory list with no next page, a provider without credentials.
        client.key_create().body(types::CreateKeyRequest { name: "no expiry".into(), scopes: vec![], expires_in_days: None }).send().await.unwrap();
        fn nulls(path: &str, v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Null => out.push(path.to_owned()),
                serde_json::Value::Array(items) => items.iter().enumerate().for_each(|(i, x)| nulls(&format!("{path}[{i}]"), x, out)),
                serde_json::Value::Object(map) => map.iter().for_each(|(k, x)| nulls(&format!("{path}.{k}"), x, out)),
                _ => {}
            }
        }
        for path in [
            "/api/v1/users/me",
            "/api/v1/keys",
            "/api/v1/audit",
            "/api/v1/memory",
            "/api/v1/connect/providers",
            "/api/v1/clients",
            "/api/v1/authorizations",
            "/api/v1/memory/stats",
            "/healthz",
            "/api/v1/no-such-route",
        ] {
            let body: serde_json::Value = server.raw(&client, reqwest::Method::GET, path).send().await.unwrap().json().await.unwrap();
            let mut found = Vec::new();
            nulls("", &body, &mut found);
            assert!(found.is_empty(), "{path}: null at {found:?}: {body}");
        }
        server.stop().await;
    }
}
