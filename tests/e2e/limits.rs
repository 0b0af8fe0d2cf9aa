//! Rate limits (429 with Retry-After) and CORS.

use chrono::Duration;

use super::*;

e2e! {
    async fn a_password_check_waits_for_a_free_core_then_is_refused(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let me = server.with_key(&user.api_key);
        let change = || me.user_set_password().body(types::SetPasswordRequest {
            password: "a new password".into(),
            current_password: Some(user.password.clone()),
            email: None,
        });
        // Every core busy with bcrypt: the server's own gate, held here.
        let gate = server.state().bcrypt.clone();
        let held = gate.acquire_many(gate.available_permits() as u32).await.unwrap();
        let started = std::time::Instant::now();
        let res = server
            .raw(&me, reqwest::Method::PUT, "/api/v1/users/me/password")
            .json(&serde_json::json!({ "password": "a new password", "current_password": user.password }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 429);
        assert_eq!(res.headers()["retry-after"], "1");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "rate_limited", "{body}");
        assert!(started.elapsed() >= std::time::Duration::from_secs(4), "it waited for a core first");
        // A core frees up: the same request goes through.
        drop(held);
        change().send().await.expect("password changed once a core is free");
        server.stop().await;
    }

    async fn password_checks_through_the_api_are_limited_like_logins(backend) {
        let server = TestServer::start_with(backend, |c| c.rate_limit_login_per_minute = 3).await;
        let user = server.register_with_password().await;
        let me = server.with_key(&user.api_key);
        let wrong = || me.user_set_password().body(types::SetPasswordRequest {
            password: "a new password".into(),
            current_password: Some("not the password".into()),
            email: None,
        });
        for _ in 0..3 {
            let (status, body) = expect_error(wrong().send().await);
            assert_eq!((status, body.field.as_deref()), (400, Some("current_password")));
        }
        // The fourth check within the minute is refused before any bcrypt runs.
        let refused = wrong().send().await;
        let Err(mcpgate_client::SendError::ErrorResponse(rv)) = refused else { panic!("expected 429") };
        assert_eq!(rv.status().as_u16(), 429);
        assert!(rv.headers().contains_key("retry-after"));
        server.stop().await;
    }

    async fn registration_is_limited_per_ip(backend) {
        let server = TestServer::start_with(backend, |c| c.rate_limit_registration_per_minute = 3).await;
        let anon = server.anonymous();
        let register = || anon.user_register().body(types::RegisterRequest { name: None, email: None, password: None });
        for _ in 0..3 {
            register().send().await.expect("within the limit");
        }
        let refused = register().send().await;
        let Err(mcpgate_client::SendError::ErrorResponse(rv)) = refused else { panic!("expected 429") };
        assert_eq!(rv.status().as_u16(), 429);
        assert_eq!(rv.headers()["retry-after"], "20", "3 a minute: one slot every 20 s");
        assert_eq!(rv.into_inner().error, "rate_limited");
        server.clock.advance(Duration::seconds(20));
        register().send().await.expect("a slot came back");
        server.stop().await;
    }

    async fn each_credential_has_its_own_limit(backend) {
        let server = TestServer::start_with(backend, |c| c.rate_limit_credential_per_minute = 5).await;
        let alice = server.register().await;
        let bob = server.register().await;
        let a = server.with_key(&alice.api_key);
        for _ in 0..5 {
            a.user_me().send().await.expect("within the limit");
        }
        let (status, body) = expect_error(a.user_me().send().await);
        assert_eq!((status, body.error.as_str()), (429, "rate_limited"));
        server.with_key(&bob.api_key).user_me().send().await.expect("bob is not limited by alice");
        server.clock.advance(Duration::seconds(12));
        a.user_me().send().await.expect("one slot every 12 s");
        server.stop().await;
    }

    async fn every_route_is_limited_per_ip(backend) {
        let server = TestServer::start_with(backend, |c| c.rate_limit_ip_per_minute = 4).await;
        let client = server.anonymous();
        for _ in 0..4 {
            client.health_live().send().await.expect("within the limit");
        }
        let resp = server.raw(&client, reqwest::Method::GET, "/healthz").send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 429);
        assert_eq!(resp.headers()["retry-after"], "15");
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!((body["error"].as_str(), body["request_id"].as_str()), (Some("rate_limited"), Some(id.as_str())));
        server.stop().await;
    }

    async fn cors_allows_only_configured_origins_and_preflight_needs_no_key(backend) {
        let server = TestServer::start_with(backend, |c| {
            c.cors_allowed_origins = vec!["https://app.example.com".into()];
        })
        .await;
        let client = server.anonymous();
        let preflight = |origin: &'static str| {
            server
                .raw(&client, reqwest::Method::OPTIONS, "/api/v1/keys")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization, content-type")
                .send()
        };
        let ok = preflight("https://app.example.com").await.unwrap();
        assert!(ok.status().is_success(), "{}", ok.status());
        assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example.com");
        let allowed_headers = ok.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
        assert!(allowed_headers.contains("authorization"), "{allowed_headers}");
        let foreign = preflight("https://evil.example").await.unwrap();
        assert!(foreign.headers().get("access-control-allow-origin").is_none());
        assert!(!foreign.status().is_success());
        // A simple request from the allowed origin gets the grant and still needs a key.
        let resp = server.raw(&client, reqwest::Method::GET, "/api/v1/keys")
            .header("origin", "https://app.example.com").send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example.com");
        server.stop().await;

        // With no origins configured (the default), no browser gets a grant.
        let server = TestServer::start(backend).await;
        let client = server.anonymous();
        let resp = server.raw(&client, reqwest::Method::OPTIONS, "/api/v1/keys")
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "GET")
            .send().await.unwrap();
        assert!(resp.headers().get("access-control-allow-origin").is_none());
        server.stop().await;
    }
}
