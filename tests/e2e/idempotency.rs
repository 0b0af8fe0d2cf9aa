//! `Idempotency-Key`: a retried create returns the first response and acts
//! once; a reused key with another body, a malformed key and a key after its
//! 24 h are handled as documented in docs/http-status-codes.md.

use chrono::Duration;
use mcpgate_e2e::mcp::call;

use super::*;

fn note(title: &str) -> types::CreateMemoryRequest {
    types::CreateMemoryRequest {
        title: title.into(),
        content: "Retry me.".into(),
        memory_type: None,
        tags: vec![],
        metadata: Default::default(),
    }
}

async fn memory_count(client: &mcpgate_client::Client) -> u64 {
    client
        .memory_list()
        .send()
        .await
        .unwrap()
        .into_inner()
        .total
}

e2e! {
    async fn a_retried_memory_create_returns_the_first_response(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        let send = || {
            server
                .raw(&client, reqwest::Method::POST, "/api/v1/memory")
                .header("Idempotency-Key", "create-note-1")
                .json(&note("Deploy notes"))
                .send()
        };
        let first = send().await.unwrap();
        assert_eq!(first.status().as_u16(), 201);
        let first_etag = first.headers()["etag"].clone();
        let first = first.bytes().await.unwrap();
        server.clock.advance(Duration::seconds(5));
        let second = send().await.unwrap();
        assert_eq!(second.status().as_u16(), 201);
        assert_eq!(second.headers()["etag"], first_etag);
        let second = second.bytes().await.unwrap();
        assert_eq!(first, second, "the replay is the first body, byte for byte");
        assert_eq!(memory_count(&client).await, 1);

        // Through the typed client: same id.
        let a = client.memory_create().idempotency_key("typed").body(note("A")).send().await.unwrap().into_inner();
        let b = client.memory_create().idempotency_key("typed").body(note("A")).send().await.unwrap().into_inner();
        assert_eq!(a.id, b.id);
        assert_eq!(memory_count(&client).await, 2);

        // The same key with another body is refused and creates nothing.
        let (status, body) = expect_error(
            client.memory_create().idempotency_key("typed").body(note("B")).send().await,
        );
        assert_eq!((status, body.error.as_str()), (409, "idempotency_key_reused"));
        assert!(body.message.contains("Idempotency-Key"), "{}", body.message);
        assert_eq!(memory_count(&client).await, 2);

        // Without a key, every request creates.
        client.memory_create().body(note("A")).send().await.unwrap();
        client.memory_create().body(note("A")).send().await.unwrap();
        assert_eq!(memory_count(&client).await, 4);
        server.stop().await;
    }

    async fn keys_are_per_user(backend) {
        let server = TestServer::start(backend).await;
        let alice = server.with_key(&server.register().await.api_key);
        let bob = server.with_key(&server.register().await.api_key);
        let a = alice.memory_create().idempotency_key("shared").body(note("Alice")).send().await.unwrap().into_inner();
        // Another user's key of the same name is independent, even with another body.
        let b = bob.memory_create().idempotency_key("shared").body(note("Bob")).send().await.unwrap().into_inner();
        assert_ne!(a.id, b.id);
        assert_eq!(b.title, "Bob");
        assert_eq!(memory_count(&alice).await, 1);
        assert_eq!(memory_count(&bob).await, 1);
        server.stop().await;
    }

    async fn a_replayed_key_create_returns_the_same_secret_once_created(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let owner = server.with_key(&reg.api_key);
        let req = || types::CreateKeyRequest { name: "ci".into(), scopes: vec![], expires_in_days: None };
        let first = owner.key_create().idempotency_key("key-1").body(req()).send().await.unwrap();
        assert_eq!(first.status().as_u16(), 201);
        let first = first.into_inner();
        mcpgate_e2e::remember_secret(&first.api_key);
        let second = owner.key_create().idempotency_key("key-1").body(req()).send().await.unwrap().into_inner();
        assert_eq!((&second.key_id, &second.api_key), (&first.key_id, &first.api_key));
        let keys = owner.key_list().send().await.unwrap().into_inner().keys;
        assert_eq!(keys.len(), 2, "the registration key and one new key");
        // The stored response is encrypted: the secret is nowhere in the table.
        use sea_orm::{ConnectionTrait, Statement};
        let db = &server.state().db;
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT response_body FROM idempotency_keys",
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let stored: String = rows[0].try_get("", "response_body").unwrap();
        assert!(!stored.contains(&first.api_key[22..]), "no plaintext secret at rest");

        // Rotation replays too: one rotation, the same new secret.
        let rotate = || owner.key_rotate().key_id(&first.key_id).idempotency_key("rot-1").body(types::RotateKeyRequest { grace_seconds: None }).send();
        let r1 = rotate().await.unwrap().into_inner();
        mcpgate_e2e::remember_secret(&r1.api_key);
        let r2 = rotate().await.unwrap().into_inner();
        assert_eq!(r1.api_key, r2.api_key);
        server.with_key(&r1.api_key).key_list().send().await.expect("the rotated secret works");
        server.stop().await;
    }

    async fn a_malformed_key_is_a_validation_error(backend) {
        let server = TestServer::start(backend).await;
        let client = server.with_key(&server.register().await.api_key);
        for key in ["k".repeat(256), String::new(), "tab\there".into()] {
            let res = server
                .raw(&client, reqwest::Method::POST, "/api/v1/memory")
                .header("Idempotency-Key", key.as_str())
                .json(&note("x"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 400, "{key:?}");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["error"], "validation_failed");
            assert_eq!(body["field"], "Idempotency-Key");
        }
        client.memory_create().idempotency_key("k".repeat(255)).body(note("x")).send().await.expect("255 characters pass");
        assert_eq!(memory_count(&client).await, 1);
        server.stop().await;
    }

    async fn a_key_is_free_again_after_24_hours_and_the_purge(backend) {
        let server = TestServer::start(backend).await;
        let client = server.with_key(&server.register().await.api_key);
        let a = client.memory_create().idempotency_key("daily").body(note("Monday")).send().await.unwrap().into_inner();
        server.clock.advance(Duration::hours(23));
        let (status, _) = expect_error(client.memory_create().idempotency_key("daily").body(note("Tuesday")).send().await);
        assert_eq!(status, 409, "still reserved within 24 h");
        server.clock.advance(Duration::hours(2));
        let report = mcpgate_server::service::cleanup::purge(server.state()).await.unwrap();
        assert_eq!(report.expired_idempotency_keys, 1);
        let b = client.memory_create().idempotency_key("daily").body(note("Tuesday")).send().await.unwrap().into_inner();
        assert_ne!(a.id, b.id);
        assert_eq!(b.title, "Tuesday");
        server.stop().await;
    }

    async fn a_failed_request_releases_its_key(backend) {
        let server = TestServer::start(backend).await;
        let client = server.with_key(&server.register().await.api_key);
        let (status, _) = expect_error(client.memory_create().idempotency_key("fix-me").body(note(" ")).send().await);
        assert_eq!(status, 400);
        // The 400 changed nothing: the corrected request may use the same key.
        client.memory_create().idempotency_key("fix-me").body(note("Fixed")).send().await.expect("key released");
        assert_eq!(memory_count(&client).await, 1);
        server.stop().await;
    }

    async fn a_retried_password_change_answers_the_first_success(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        let set = |current: Option<&str>, new: &str| types::SetPasswordRequest {
            password: new.into(),
            current_password: current.map(Into::into),
            email: None,
        };
        client.user_set_password().body(set(None, "first-password")).send().await.unwrap();
        let change = || client.user_set_password().idempotency_key("pw-1").body(set(Some("first-password"), "second-password")).send();
        let a = change().await.unwrap().into_inner();
        // Without the key this retry would fail: the current password changed.
        let b = change().await.unwrap().into_inner();
        assert_eq!(a.updated_at, b.updated_at);
        let (status, body) = expect_error(
            client.user_set_password().idempotency_key("pw-1").body(set(Some("second-password"), "third-password")).send().await,
        );
        assert_eq!((status, body.error.as_str()), (409, "idempotency_key_reused"));
        // Nothing in the table can be tested against a password guess: the
        // fingerprint is keyed.
        use sea_orm::{ConnectionTrait, Statement};
        let db = &server.state().db;
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT request_hash FROM idempotency_keys"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let stored: Vec<u8> = rows[0].try_get("", "request_hash").unwrap();
        use sha2::Digest;
        let mut plain = sha2::Sha256::new();
        for part in [&b"PUT"[..], b"/api/v1/users/me/password", br#"{"current_password":"first-password","email":null,"password":"second-password"}"#] {
            plain.update((part.len() as u64).to_be_bytes());
            plain.update(part);
        }
        assert_ne!(stored, plain.finalize().to_vec());
        server.stop().await;
    }

    async fn a_retried_owned_client_registration_registers_once(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        let register = |name: &str| {
            mcpgate_client::http_client_builder().build().unwrap()
                .post(format!("{}/oauth/register", server.url))
                .bearer_auth(&reg.api_key)
                .header("Idempotency-Key", "ci-client")
                .json(&serde_json::json!({
                    "client_name": name,
                    "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": "client_secret_post",
                }))
                .send()
        };
        let first = register("ci").await.unwrap();
        assert_eq!(first.status().as_u16(), 201);
        let first: serde_json::Value = first.json().await.unwrap();
        mcpgate_e2e::remember_secret(first["client_secret"].as_str().unwrap());
        let second = register("ci").await.unwrap();
        assert_eq!(second.status().as_u16(), 201);
        let second: serde_json::Value = second.json().await.unwrap();
        assert_eq!(first, second, "the same client and secret");
        let other = register("another name").await.unwrap();
        assert_eq!(other.status().as_u16(), 409);
        let clients = client.client_list().send().await.unwrap().into_inner();
        assert_eq!(clients.clients.len(), 1);
        server.stop().await;
    }

    async fn the_mcp_tool_honours_idempotency_key(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let mcp = server.mcp(&reg.api_key).await;
        let args = serde_json::json!({
            "title": "From the agent",
            "content": "Retry me.",
            "idempotency_key": "tool-call-1",
        });
        let first = call(&mcp, "memory_create", args.clone()).await;
        let second = call(&mcp, "memory_create", args).await;
        assert_ne!(first.is_error, Some(true), "{first:?}");
        assert_eq!(first.structured_content, second.structured_content);
        let other = call(&mcp, "memory_create", serde_json::json!({
            "title": "Something else",
            "content": "Retry me.",
            "idempotency_key": "tool-call-1",
        })).await;
        assert_eq!(other.is_error, Some(true));
        assert_eq!(other.structured_content.unwrap()["error"], "idempotency_key_reused");
        let client = server.with_key(&reg.api_key);
        assert_eq!(memory_count(&client).await, 1);
        mcp.cancel().await.ok();
        server.stop().await;
    }
}
