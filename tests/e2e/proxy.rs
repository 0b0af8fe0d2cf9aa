//! Behind a reverse proxy: `/mcp`'s Host check admits the names an operator
//! configures and says which setting to change when it refuses;
//! `trusted_proxies` decides whether `X-Forwarded-For` names the client.
//! The proxy is a real one on loopback (`mcpgate_e2e::proxy`), behaving as
//! nginx's default `proxy_pass`.

use mcpgate_e2e::{
    mcp::{mcp_at, tool_names},
    proxy::{ForwardHost, Proxy},
};

use super::*;

fn initialize() -> serde_json::Value {
    serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "raw", "version": "0" },
        },
    })
}

async fn post_mcp(
    server: &TestServer,
    key: &str,
    host: Option<&str>,
    origin: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut req = mcpgate_client::http_client_builder()
        .build()
        .unwrap()
        .post(format!("{}/mcp", server.url))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(h) = host {
        req = req.header("host", h);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Register an account with a plain HTTP client bound to `source` (a
/// loopback address), sending `forwarded_for` if given; the new key.
async fn register_from(base: &str, source: &str, forwarded_for: Option<&str>) -> String {
    let http = mcpgate_client::http_client_builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut req = http
        .post(format!("{base}/api/v1/users/register"))
        .json(&serde_json::json!({
            "email": format!("proxied-{}@example.com", uuid::Uuid::new_v4().simple()),
        }));
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let body: serde_json::Value = resp.json().await.unwrap();
    let key = body["api_key"].as_str().unwrap().to_owned();
    mcpgate_e2e::remember_secret(&key);
    key
}

/// The address the audit trail recorded for the account's registration.
async fn registered_from(server: &TestServer, key: &str) -> Option<String> {
    let page = server
        .with_key(key)
        .audit_list()
        .send()
        .await
        .unwrap()
        .into_inner();
    page.events.last().and_then(|e| e.ip.clone())
}

e2e! {
    async fn mcp_refusals_name_the_header_and_the_setting(backend) {
        let server = TestServer::start(backend).await;
        let key = server.register().await.api_key;
        let (status, body) = post_mcp(&server, &key, Some("mcpgate:8080"), None, &initialize()).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"], "forbidden_host");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("Host header \"mcpgate:8080\"") && message.contains("allowed_hosts"), "{message}");
        assert!(!message.contains("cors_allowed_origins"), "no Origin was sent: {message}");

        let (status, body) = post_mcp(&server, &key, None, Some("https://evil.example"), &initialize()).await;
        assert_eq!(status, 403);
        assert_eq!(body["error"], "forbidden_origin");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("Origin header \"https://evil.example\"") && message.contains("cors_allowed_origins"), "{message}");

        // Loopback names and the listen address pass, on any port.
        for host in ["localhost:1234", "127.0.0.1", "[::1]:8080"] {
            let (status, body) = post_mcp(&server, &key, Some(host), None, &initialize()).await;
            assert_eq!(status, 200, "{host}: {body}");
        }

        // The configured name passes; with a port, only that port.
        let server = server
            .reconfigure(|c| c.allowed_hosts = vec!["mcpgate".into(), "gw.internal:9000".into()])
            .await;
        for (host, expected) in [("mcpgate:8080", 200), ("MCPGATE", 200), ("gw.internal:9000", 200), ("gw.internal:9001", 403), ("gw.internal", 403)] {
            let (status, body) = post_mcp(&server, &key, Some(host), None, &initialize()).await;
            assert_eq!(status, expected, "{host}: {body}");
        }
        server.stop().await;
    }

    async fn mcp_works_behind_nginx_default_proxy_pass_once_the_name_is_allowed(backend) {
        let server = TestServer::start(backend).await;
        let key = server.register().await.api_key;
        let proxy = Proxy::start("127.0.0.1", &server.url, ForwardHost::Upstream("mcpgate:8080".into())).await;
        // /api works through the proxy either way.
        let me = mcpgate_client::http_client_builder().build().unwrap().get(format!("{}/api/v1/users/me", proxy.url)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(me.status().as_u16(), 200);
        let refused = mcp_at(&proxy.url, &key).await.expect_err("Host mcpgate:8080 is not admitted");
        assert!(refused.contains("403") || refused.contains("allowed_hosts"), "{refused}");

        let server = server.reconfigure(|c| c.allowed_hosts = vec!["mcpgate".into()]).await;
        let client = mcp_at(&proxy.url, &key).await.expect("handshake through the proxy");
        assert!(tool_names(&client).await.contains(&"memory_create".to_owned()));
        client.cancel().await.unwrap();

        // `proxy_set_header Host $host`: the public host arrives, nothing to configure.
        let server = server.reconfigure(|c| c.allowed_hosts.clear()).await;
        let forwarding = Proxy::start("127.0.0.1", &server.url, ForwardHost::Client).await;
        let client = mcp_at(&forwarding.url, &key).await.expect("the client's Host (127.0.0.1) is admitted");
        client.cancel().await.unwrap();
        server.stop().await;
    }

    async fn only_trusted_proxies_name_the_client(backend) {
        let server = TestServer::start(backend).await;
        let proxy = Proxy::start("127.0.0.1", &server.url, ForwardHost::Client).await;
        // Not trusted (the default): the client is the proxy, and a forged
        // header changes nothing.
        let key = register_from(&proxy.url, "127.0.0.3", Some("6.6.6.6")).await;
        assert_eq!(registered_from(&server, &key).await.as_deref(), Some("127.0.0.1"));
        let direct = register_from(&server.url, "127.0.0.4", Some("6.6.6.6")).await;
        assert_eq!(registered_from(&server, &direct).await.as_deref(), Some("127.0.0.4"));

        let server = server.reconfigure(|c| c.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
        // Trusted: the address the proxy appended, not the forged one before it.
        let key = register_from(&proxy.url, "127.0.0.3", Some("6.6.6.6")).await;
        assert_eq!(registered_from(&server, &key).await.as_deref(), Some("127.0.0.3"));
        // A client that is not the proxy still cannot choose its address.
        let direct = register_from(&server.url, "127.0.0.4", Some("6.6.6.6")).await;
        assert_eq!(registered_from(&server, &direct).await.as_deref(), Some("127.0.0.4"));
        server.stop().await;
    }

    async fn mcp_answers_batches_and_non_jsonrpc_with_a_jsonrpc_error(backend) {
        let server = TestServer::start(backend).await;
        let key = server.register().await.api_key;
        let cases = [
            (serde_json::json!([initialize()]), "batches are not supported"),
            (serde_json::json!({"id": 7, "method": "tools/list"}), "\"jsonrpc\" must be \"2.0\""),
            (serde_json::json!({"jsonrpc": "2.0", "id": 7}), "needs a \"method\""),
            (serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": 5}), "\"method\" must be a string"),
            (serde_json::json!("hello"), "must be a JSON-RPC 2.0 object"),
        ];
        for (body, says) in cases {
            let (status, answer) = post_mcp(&server, &key, None, None, &body).await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert_eq!(answer["jsonrpc"], "2.0");
            assert_eq!(answer["error"]["code"], -32600, "{answer}");
            assert!(answer["error"]["message"].as_str().unwrap().contains(says), "{answer}");
            let id = body.get("id").cloned().unwrap_or(serde_json::Value::Null);
            assert_eq!(answer["id"], if body.is_object() { id } else { serde_json::Value::Null });
        }
        server.stop().await;
    }
}
