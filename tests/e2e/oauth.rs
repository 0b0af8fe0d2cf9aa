//! The OAuth 2.1 authorization server, driven like a browser and an MCP
//! client: discovery, registration, login and consent forms, every grant,
//! revocation, introspection, and the RFC 9700 negative matrix.

use mcpgate_e2e::oauth::{browser, http, location, param, Pkce, TestClient};
use reqwest::StatusCode;

use super::*;

fn oauth_error(body: &serde_json::Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

e2e! {
    async fn discovery_documents_describe_the_server(backend) {
        let server = TestServer::start(backend).await;
        let base = server.url.clone();
        let get = |path: &str| {
            let url = format!("{base}{path}");
            async move { http().get(url).send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
        };
        let meta = get("/.well-known/oauth-authorization-server").await;
        assert_eq!(meta["issuer"], base.as_str());
        assert_eq!(meta["authorization_endpoint"], format!("{base}/oauth/authorize"));
        assert_eq!(meta["token_endpoint"], format!("{base}/oauth/token"));
        assert_eq!(meta["registration_endpoint"], format!("{base}/oauth/register"));
        assert_eq!(meta["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(meta["client_id_metadata_document_supported"], true);
        assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
        assert!(meta["scopes_supported"].as_array().unwrap().iter().any(|s| s == "memories:read"));
        assert_eq!(get("/.well-known/openid-configuration").await, meta);

        for (path, resource) in [
            ("/.well-known/oauth-protected-resource", base.clone()),
            ("/.well-known/oauth-protected-resource/mcp", format!("{base}/mcp")),
            ("/.well-known/oauth-protected-resource/api", format!("{base}/api")),
        ] {
            let prm = get(path).await;
            assert_eq!(prm["resource"], resource.as_str(), "{path}");
            assert_eq!(prm["authorization_servers"], serde_json::json!([base]));
        }

        // A 401 from the API says where to discover the authorization server.
        let resp = http().get(format!("{base}/api/v1/users/me")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains(&format!("resource_metadata=\"{base}/.well-known/oauth-protected-resource/api\"")), "{challenge}");
        server.stop().await;
    }

    async fn public_client_full_flow(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let client = server.register_client("http://127.0.0.1/callback", "none").await;
        assert!(client.client_secret.is_none());
        let pkce = Pkce::new();
        // A loopback redirect registered without a port matches any port (RFC 8252).
        let client = TestClient { redirect_uri: "http://127.0.0.1:53682/callback".into(), ..client };
        let url = server.authorize_url(&client, &pkce, &[("scope", "memories:read memories:write keys:read")]);
        let b = browser();
        let back = server.authorize_in_browser(&b, &user, &url, true).await;
        assert!(back.starts_with("http://127.0.0.1:53682/callback?"), "{back}");
        assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
        assert_eq!(param(&back, "iss").as_deref(), Some(server.url.as_str()));
        let code = param(&back, "code").unwrap();
        assert!(code.starts_with("mcpg_ac_"));

        let (status, tokens) = server.exchange(&client, &code, &pkce).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 3600);
        assert_eq!(tokens["scope"], "memories:read memories:write keys:read");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert!(access.starts_with("mcpg_at_") && refresh.starts_with("mcpg_rt_"));

        // The token works on the API, as its user, with its scopes.
        let (status, me, _) = server.get_with_bearer("/api/v1/users/me", &access).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["user_id"], user.user_id.as_str());
        assert_eq!(me["credential"]["kind"], "access_token");
        let (status, _, _) = server.get_with_bearer("/api/v1/memory", &access).await;
        assert_eq!(status, StatusCode::OK);

        // The authorization is listed.
        let (status, list, _) = server.get_with_bearer("/api/v1/authorizations", &user.api_key).await;
        assert_eq!(status, StatusCode::OK);
        let entry = &list["authorizations"][0];
        assert_eq!(entry["client_id"], client.client_id.as_str());
        assert_eq!(entry["client_name"], "Test Client");
        assert_eq!(entry["verified"], false);

        // Refresh rotates both tokens.
        let (status, rotated) = server.refresh(&client, &refresh).await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        let access2 = rotated["access_token"].as_str().unwrap().to_owned();
        let refresh2 = rotated["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(access2, access);
        assert_ne!(refresh2, refresh);
        assert_eq!(server.get_with_bearer("/api/v1/users/me", &access2).await.0, StatusCode::OK);

        // A second authorization is remembered: no consent page, straight back with a code.
        let pkce2 = Pkce::new();
        let url = server.authorize_url(&client, &pkce2, &[("scope", "memories:read")]);
        let resp = b.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let back = location(&resp);
        assert!(back.starts_with("http://127.0.0.1:53682/callback?code=mcpg_ac_"), "{back}");

        // Revoking the refresh token revokes the whole family, access tokens included.
        let resp = http()
            .post(format!("{}/oauth/revoke", server.url))
            .form(&[("token", refresh2.as_str()), ("client_id", &client.client_id)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let (status, body, _) = server.get_with_bearer("/api/v1/users/me", &access2).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "token_revoked");
        let (status, body) = server.refresh(&client, &refresh2).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_grant"));
        // Revoking an unknown token still answers 200 (RFC 7009).
        let resp = http()
            .post(format!("{}/oauth/revoke", server.url))
            .form(&[("token", "mcpg_at_nonsense"), ("client_id", client.client_id.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        server.stop().await;
    }

    async fn denied_consent_returns_access_denied(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let client = server.register_client("https://app.example/cb", "none").await;
        let url = server.authorize_url(&client, &Pkce::new(), &[]);
        let back = server.authorize_in_browser(&browser(), &user, &url, false).await;
        assert!(back.starts_with("https://app.example/cb?"), "{back}");
        assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
        assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
        assert_eq!(param(&back, "iss").as_deref(), Some(server.url.as_str()));
        assert!(param(&back, "code").is_none());
        server.stop().await;
    }

    async fn confidential_client_and_introspection(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let client = server.register_client("https://app.example/cb", "client_secret_basic").await;
        let secret = client.client_secret.clone().unwrap();
        assert!(secret.starts_with("mcpg_cs_"));
        let pkce = Pkce::new();
        let url = server.authorize_url(&client, &pkce, &[("resource", &format!("{}/mcp", server.url))]);
        let back = server.authorize_in_browser(&browser(), &user, &url, true).await;
        let code = param(&back, "code").unwrap();

        // The wrong secret is refused with 401 invalid_client.
        let wrong = TestClient { client_secret: Some(format!("{secret}x")), ..client.clone() };
        let (status, body) = server.exchange(&wrong, &code, &pkce).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::UNAUTHORIZED, "invalid_client"));

        let (status, tokens) = server.exchange(&client, &code, &pkce).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap();

        let introspect = |creds: Option<(&str, &str)>, token: String| {
            let mut req = http().post(format!("{}/oauth/introspect", server.url));
            if let Some((id, s)) = creds {
                req = req.basic_auth(id, Some(s));
            }
            async move {
                let resp = req.form(&[("token", token)]).send().await.unwrap();
                (resp.status(), resp.json::<serde_json::Value>().await.unwrap())
            }
        };
        let (status, info) = introspect(Some((&client.client_id, &secret)), access.to_owned()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(info["active"], true);
        assert_eq!(info["sub"], user.user_id.as_str());
        assert_eq!(info["client_id"], client.client_id.as_str());
        assert_eq!(info["aud"], serde_json::json!([format!("{}/mcp", server.url)]));
        assert_eq!(info["iss"], server.url.as_str());
        let (_, info) = introspect(Some((&client.client_id, &secret)), "mcpg_at_unknown".into()).await;
        assert_eq!(info, serde_json::json!({ "active": false }));
        // Never unauthenticated.
        let (status, body) = introspect(None, access.to_owned()).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::UNAUTHORIZED, "invalid_client"));
        assert!(body.get("active").is_none());

        // A token for /mcp only is refused by /api (RFC 8707 audience).
        let (status, body, _) = server.get_with_bearer("/api/v1/users/me", access).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid_audience");
        server.stop().await;
    }

    async fn client_credentials_act_for_the_owner(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let metadata = serde_json::json!({
            "client_name": "Nightly job",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "memories:read memories:write",
        });
        // Anonymous registration cannot own a client_credentials client.
        let (status, body) = server.register_client_raw(metadata.clone()).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_client_metadata"));
        let resp = http()
            .post(format!("{}/oauth/register", server.url))
            .bearer_auth(&user.api_key)
            .json(&metadata)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: serde_json::Value = resp.json().await.unwrap();
        let client_id = body["client_id"].as_str().unwrap().to_owned();
        let secret = body["client_secret"].as_str().unwrap().to_owned();
        mcpgate_e2e::remember_secret(&secret);

        let token = |scope: &'static str, secret: String| {
            let url = format!("{}/oauth/token", server.url);
            let client_id = client_id.clone();
            async move {
                let resp = http()
                    .post(url)
                    .form(&[("grant_type", "client_credentials"), ("client_id", &client_id), ("client_secret", &secret), ("scope", scope)])
                    .send()
                    .await
                    .unwrap();
                (resp.status(), resp.json::<serde_json::Value>().await.unwrap())
            }
        };
        let (status, tokens) = token("memories:read", secret.clone()).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert!(tokens.get("refresh_token").is_none());
        let access = tokens["access_token"].as_str().unwrap();
        mcpgate_e2e::remember_secret(access);
        let (status, me, _) = server.get_with_bearer("/api/v1/users/me", access).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["user_id"], user.user_id.as_str());
        // Scopes are enforced the same way as for keys.
        let (status, body, _) = server.get_with_bearer("/api/v1/keys", access).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
        // Beyond the client's scopes, or with a wrong secret: refused.
        let (status, body) = token("keys:write", secret.clone()).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_scope"));
        let (status, body) = token("memories:read", format!("{secret}x")).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::UNAUTHORIZED, "invalid_client"));

        // A public client may not use the grant at all.
        let public = server.register_client("https://app.example/cb", "none").await;
        let (status, body) = server.token_request(&public, &[("grant_type", "client_credentials")]).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "unauthorized_client"));
        server.stop().await;
    }

    async fn authorizations_can_be_revoked_by_the_user(backend) {
        let server = TestServer::start(backend).await;
        let (user, client, tokens) = server.full_flow(&[]).await;
        let access = tokens["access_token"].as_str().unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let me = server.with_key(&user.api_key);
        // Using the token is the app's "last used" time.
        let before = me.authorization_list().send().await.unwrap().into_inner().authorizations[0].last_used_at;
        server.clock.advance(chrono::Duration::minutes(10));
        let (status, _, _) = server.get_with_bearer("/api/v1/users/me", access).await;
        assert_eq!(status, StatusCode::OK);
        server.state().usage.flush(&server.state().db).await.unwrap();
        let after = me.authorization_list().send().await.unwrap().into_inner().authorizations[0].last_used_at;
        assert_eq!(after - before, chrono::Duration::minutes(10));
        me.authorization_revoke().client_id(&client.client_id).send().await.unwrap();
        let (status, body, _) = server.get_with_bearer("/api/v1/users/me", access).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("token_revoked")));
        let (status, body) = server.refresh(&client, refresh).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_grant"));
        let list = me.authorization_list().send().await.unwrap().into_inner();
        assert!(list.authorizations.is_empty());
        let (status, err) = expect_error(me.authorization_revoke().client_id(&client.client_id).send().await);
        assert_eq!((status, err.error.as_str()), (404, "not_found"));
        // The consent is forgotten: the next authorization asks again.
        let pkce = Pkce::new();
        let url = server.authorize_url(&client, &pkce, &[]);
        let b = browser();
        let resp = b.get(&url).send().await.unwrap();
        let login = location(&resp);
        let return_to = param(&format!("{}{login}", server.url), "return_to").unwrap();
        server.login(&b, &user, &return_to).await;
        let resp = b.get(format!("{}{return_to}", server.url)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "consent page shown again");
        assert!(resp.text().await.unwrap().contains("Authorize"));
        server.stop().await;
    }

    async fn key_only_account_sets_a_password_and_logs_in(backend) {
        let server = TestServer::start(backend).await;
        let registered = server
            .anonymous()
            .user_register()
            .body(types::RegisterRequest { name: Some("Key only".into()), email: None, password: None })
            .send()
            .await
            .unwrap()
            .into_inner();
        mcpgate_e2e::remember_secret(&registered.api_key);
        let me = server.with_key(&registered.api_key);
        let email = format!("late-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery".to_owned();
        mcpgate_e2e::remember_secret(&password);
        let (status, err) = expect_error(me.user_set_password().body(types::SetPasswordRequest {
            password: password.clone(), current_password: None, email: None,
        }).send().await);
        assert_eq!((status, err.field.as_deref()), (400, Some("email")));
        me.user_set_password().body(types::SetPasswordRequest {
            password: password.clone(), current_password: None, email: Some(email.clone()),
        }).send().await.unwrap();
        let user = mcpgate_e2e::oauth::TestUser {
            email: email.clone(), password: password.clone(), api_key: registered.api_key.clone(), user_id: registered.user_id.clone(),
        };
        let b = browser();
        let resp = server.login(&b, &user, "/login").await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let page = b.get(format!("{}/", server.url)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains(&email), "the signed-in home page names the account");
        // Changing it needs the current password, and ends every session.
        let (status, err) = expect_error(me.user_set_password().body(types::SetPasswordRequest {
            password: "another password".into(), current_password: Some("wrong one!".into()), email: None,
        }).send().await);
        assert_eq!((status, err.field.as_deref()), (400, Some("current_password")));
        me.user_set_password().body(types::SetPasswordRequest {
            password: "another password".into(), current_password: Some(password.clone()), email: None,
        }).send().await.unwrap();
        let page = b.get(format!("{}/login", server.url)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("name=\"password\""), "session ended: the login form is back");
        // The wrong password is refused on the login form.
        let resp = server.login(&b, &user, "/login").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.text().await.unwrap().contains("Wrong email or password"));
        server.stop().await;
    }

    async fn swagger_ui_authorizes_with_its_own_verified_client(backend) {
        let server = TestServer::start(backend).await;
        let init = http().get(format!("{}/docs/swagger-initializer.js", server.url)).send().await.unwrap().text().await.unwrap();
        assert!(init.contains("mcpgate-docs") && init.contains("usePkceWithAuthorizationCodeGrant"), "{init}");
        let spec: serde_json::Value = http().get(format!("{}/openapi.json", server.url)).send().await.unwrap().json().await.unwrap();
        let flow = &spec["components"]["securitySchemes"]["OAuth"]["flows"]["authorizationCode"];
        assert_eq!(flow["authorizationUrl"], "/oauth/authorize");
        assert_eq!(flow["tokenUrl"], "/oauth/token");

        let user = server.register_with_password().await;
        let docs = TestClient {
            client_id: "mcpgate-docs".into(),
            client_secret: None,
            redirect_uri: format!("{}/docs/oauth2-redirect.html", server.url),
        };
        let b = browser();
        let resp = server.login(&b, &user, "/login").await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let resp = b.get(server.authorize_url(&docs, &Pkce::new(), &[])).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let html = resp.text().await.unwrap();
        assert!(html.contains("mcpgate API docs"));
        assert!(!html.contains("not verified"), "an operator client carries no warning");

        // A self-registered client does carry the warning.
        let other = server.register_client("https://app.example/cb", "none").await;
        let html = b.get(server.authorize_url(&other, &Pkce::new(), &[])).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("not verified"));
        assert!(html.contains("app.example"));
        server.stop().await;
    }
}
