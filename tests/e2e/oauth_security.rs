//! The RFC 9700 negative matrix, replicas on one database, concurrent
//! refreshes, client metadata documents and clean-up of unused clients.

use mcpgate_e2e::oauth::{browser, hidden_fields, http, location, param, Pkce, TestClient};
use reqwest::StatusCode;

use super::*;

fn oauth_error(body: &serde_json::Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

/// Log `user` in on `b` (so authorize requests reach validation past login).
async fn logged_in(server: &TestServer) -> (reqwest::Client, mcpgate_e2e::oauth::TestUser) {
    let user = server.register_with_password().await;
    let b = browser();
    let resp = server.login(&b, &user, "/login").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    (b, user)
}

/// A public client's refresh at the server or replica at `base`.
async fn refresh_at(base: &str, refresh: &str, client_id: &str) -> (StatusCode, serde_json::Value) {
    let resp = http()
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    for field in ["access_token", "refresh_token"] {
        if let Some(t) = body[field].as_str() {
            mcpgate_e2e::remember_secret(t);
        }
    }
    (status, body)
}

/// Fetch an authorization URL and classify the answer: a redirect to the
/// client (with its query) or a page (status).
async fn authorize_answer(b: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let resp = b.get(url).send().await.unwrap();
    let status = resp.status();
    if status == StatusCode::SEE_OTHER {
        (status, location(&resp))
    } else {
        (status, resp.text().await.unwrap())
    }
}

e2e! {
    async fn authorization_requests_are_checked(backend) {
        let server = TestServer::start(backend).await;
        let (b, _user) = logged_in(&server).await;
        let client = server.register_client("https://app.example/cb", "none").await;
        let pkce = Pkce::new();
        let base = server.authorize_url(&client, &pkce, &[]);

        // Missing PKCE, plain PKCE: error back to the (trusted) redirect URI.
        let no_pkce = base.replace(&format!("code_challenge={}", pkce.challenge), "x=1").replace("code_challenge_method=S256", "y=2");
        let (status, to) = authorize_answer(&b, &no_pkce).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(to.starts_with("https://app.example/cb?"), "{to}");
        assert_eq!(param(&to, "error").as_deref(), Some("invalid_request"));
        assert_eq!(param(&to, "state").as_deref(), Some("st-123"));
        let plain = base.replace("code_challenge_method=S256", "code_challenge_method=plain");
        let (_, to) = authorize_answer(&b, &plain).await;
        assert_eq!(param(&to, "error").as_deref(), Some("invalid_request"));
        assert!(param(&to, "error_description").unwrap().contains("S256"));

        // Unknown scope, unknown resource, wrong response type.
        let (_, to) = authorize_answer(&b, &format!("{base}&scope=admin")).await;
        assert_eq!(param(&to, "error").as_deref(), Some("invalid_scope"));
        let (_, to) = authorize_answer(&b, &format!("{base}&resource=https%3A%2F%2Fevil.example%2Fmcp")).await;
        assert_eq!(param(&to, "error").as_deref(), Some("invalid_target"));
        let (_, to) = authorize_answer(&b, &base.replace("response_type=code", "response_type=token")).await;
        assert_eq!(param(&to, "error").as_deref(), Some("unsupported_response_type"));

        // Redirect-URI mismatch and unknown clients: a page, never a redirect.
        for url in [
            base.replace("https%3A%2F%2Fapp.example%2Fcb", "https%3A%2F%2Fevil.example%2Fcb"),
            base.replace("https%3A%2F%2Fapp.example%2Fcb", "https%3A%2F%2Fapp.example%2Fcb%2Fextra"),
            base.replace(&client.client_id, "mcpg_ci_doesnotexist"),
        ] {
            let resp = b.get(&url).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{url}");
            assert!(resp.headers().get("location").is_none());
            let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
            assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
            let html = resp.text().await.unwrap();
            assert!(html.contains("not redirected"), "{html}");
            assert!(!html.contains("evil.example/cb\""));
        }
        // A repeated parameter is refused (RFC 6749 §3.1).
        let resp = b.get(format!("{base}&client_id=again")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        server.stop().await;
    }

    async fn forms_need_their_csrf_token(backend) {
        let server = TestServer::start(backend).await;
        let (b, _user) = logged_in(&server).await;
        let client = server.register_client("https://app.example/cb", "none").await;
        let pkce = Pkce::new();
        let resp = b.get(server.authorize_url(&client, &pkce, &[])).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "consent page");
        let html = resp.text().await.unwrap();
        let fields = hidden_fields(&html);
        assert!(fields.iter().any(|(k, _)| k == "csrf_token"));

        // Without the token, or with a forged one: 403 and no code.
        for token in [None, Some("forged")] {
            let mut form: Vec<(String, String)> = fields.iter().filter(|(k, _)| k != "csrf_token").cloned().collect();
            if let Some(t) = token {
                form.push(("csrf_token".into(), t.into()));
            }
            form.push(("decision".into(), "approve".into()));
            let resp = b.post(format!("{}/oauth/authorize", server.url)).form(&form).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN);
            assert!(resp.headers().get("location").is_none());
        }
        // A cross-site page has the form but not the cookie: refused too.
        let mut form = fields.clone();
        form.push(("decision".into(), "approve".into()));
        let resp = browser().post(format!("{}/oauth/authorize", server.url)).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        // The login form likewise.
        let resp = browser()
            .post(format!("{}/login", server.url))
            .form(&[("email", "a@example.com"), ("password", "whatever1")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        // Cookies are HttpOnly and SameSite=Lax.
        let resp = browser().get(format!("{}/login", server.url)).send().await.unwrap();
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        server.stop().await;
    }

    async fn cookies_are_secure_behind_an_https_public_url(backend) {
        let server = TestServer::start_with(backend, |c| c.public_url = "https://gate.example".into()).await;
        let resp = browser().get(format!("{}/login", server.url)).send().await.unwrap();
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("; Secure"), "{cookie}");
        let meta: serde_json::Value = http()
            .get(format!("{}/.well-known/oauth-authorization-server", server.url))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(meta["issuer"], "https://gate.example");
        server.stop().await;
    }

    async fn same_origin_form_posts_pass_and_foreign_ones_do_not(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        // Browsers mark same-origin form posts with Origin too.
        let b = browser();
        let html = b.get(format!("{}/login", server.url)).send().await.unwrap().text().await.unwrap();
        let mut form = hidden_fields(&html);
        form.push(("email".into(), user.email.clone()));
        form.push(("password".into(), user.password.clone()));
        let resp = b.post(format!("{}/login", server.url)).header("origin", &server.url).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let resp = b.post(format!("{}/login", server.url)).header("origin", "https://evil.example").form(&form).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "forbidden_origin");
        // Discovery documents are readable from any origin, preflight included.
        let resp = http()
            .get(format!("{}/.well-known/oauth-protected-resource/mcp", server.url))
            .header("origin", "https://inspector.example")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
        let resp = http()
            .request(reqwest::Method::OPTIONS, format!("{}/.well-known/oauth-authorization-server", server.url))
            .header("origin", "https://inspector.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "mcp-protocol-version")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        assert_eq!(resp.headers()["access-control-allow-headers"], "mcp-protocol-version");
        server.stop().await;
    }

    async fn foreign_and_opaque_origins_change_nothing(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let b = browser();
        let html = b.get(format!("{}/login", server.url)).send().await.unwrap().text().await.unwrap();
        let mut form = hidden_fields(&html);
        form.push(("email".into(), user.email.clone()));
        form.push(("password".into(), user.password.clone()));
        // A valid form with the right password, from another site, or from
        // the opaque origin `null` (a sandboxed frame, a page that hid where
        // it came from), which is never ours.
        for origin in ["https://evil.example", "null"] {
            let resp = b.post(format!("{}/login", server.url)).header("origin", origin).form(&form).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin}");
            let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap().to_owned()).collect();
            assert!(cookies.iter().all(|c| !c.starts_with("mcpgate_session=")), "{origin}: {cookies:?}");
        }
        // Nothing happened: no session (the login page still shows its form)
        // and no login in the user's audit trail.
        let resp = b.get(format!("{}/login", server.url)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let owner = server.with_key(&user.api_key);
        let events = owner.audit_list().send().await.unwrap().into_inner();
        assert!(events.events.iter().all(|e| !e.action.to_string().starts_with("login.")), "{:?}", events.events);
        // The same form from our own origin signs in.
        let resp = b.post(format!("{}/login", server.url)).header("origin", &server.url).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        server.stop().await;
    }

    async fn token_and_login_endpoints_are_rate_limited(backend) {
        let server = TestServer::start_with(backend, |c| {
            c.rate_limit_token_per_minute = 2;
            c.rate_limit_login_per_minute = 2;
        }).await;
        let client = server.register_client("https://app.example/cb", "none").await;
        let mut last = None;
        for _ in 0..3 {
            let resp = http()
                .post(format!("{}/oauth/token", server.url))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", "mcpg_rt_x"), ("client_id", client.client_id.as_str())])
                .send()
                .await
                .unwrap();
            last = Some(resp);
        }
        let resp = last.unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(oauth_error(&body), "slow_down");

        // Wrong passwords: two tries, then 429 even for the right one.
        let mut user = server.register_with_password().await;
        let right = user.password.clone();
        user.password = "wrong password".into();
        for _ in 0..2 {
            let resp = server.login(&browser(), &user, "/login").await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        }
        user.password = right;
        let resp = server.login(&browser(), &user, "/login").await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(resp.headers().contains_key("retry-after"));
        // The lockout is per (IP, email): the owner, elsewhere, still gets in.
        let elsewhere = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap();
        let resp = server.login(&elsewhere, &user, "/").await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "the owner is not locked out");
        // The failures are in the account's audit trail.
        let events = server.with_key(&user.api_key).audit_list().send().await.unwrap().into_inner();
        assert_eq!(events.events.iter().filter(|e| e.action == types::AuditAction::LoginFailed).count(), 2);
        server.stop().await;
    }

    async fn login_never_redirects_off_site(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        for target in ["https://evil.example/", "//evil.example/x", "/\\evil.example"] {
            let b = browser();
            let resp = server.login(&b, &user, target).await;
            assert_eq!(resp.status(), StatusCode::SEE_OTHER);
            assert_eq!(location(&resp), "/", "{target}");
        }
        server.stop().await;
    }

    async fn token_endpoint_negative_matrix(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let client = server.register_client("https://app.example/cb", "none").await;
        let b = browser();
        let code_for = |pkce: &Pkce, extra: &'static [(&'static str, &'static str)]| {
            let url = server.authorize_url(&client, pkce, extra);
            let b = b.clone();
            let user = user.clone();
            let server = &server;
            async move { param(&server.authorize_in_browser(&b, &user, &url, true).await, "code").unwrap() }
        };

        // Wrong verifier.
        let pkce = Pkce::new();
        let code = code_for(&pkce, &[]).await;
        let (status, body) = server.exchange(&client, &code, &Pkce::new()).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_grant"));
        // Missing verifier.
        let (status, body) = server.token_request(&client, &[("grant_type", "authorization_code"), ("code", &code)]).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));
        // Redirect URI differing from the authorization request.
        let other = TestClient { redirect_uri: "https://app.example/other".into(), ..client.clone() };
        let (status, body) = server.exchange(&other, &code, &pkce).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_grant"));
        // Another client cannot redeem it.
        let thief = server.register_client("https://app.example/cb", "none").await;
        let (status, body) = server.exchange(&thief, &code, &pkce).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_grant"));

        // Code replay: the second use fails and revokes what the first issued.
        let (status, tokens) = server.exchange(&client, &code, &pkce).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(server.get_with_bearer("/api/v1/memory", &access).await.0, StatusCode::OK);
        let (status, body) = server.exchange(&client, &code, &pkce).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_grant"));
        let (status, body, _) = server.get_with_bearer("/api/v1/memory", &access).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("token_revoked")));
        let (status, _) = server.refresh(&client, tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Expired code (10 minutes).
        let pkce = Pkce::new();
        let code = code_for(&pkce, &[]).await;
        server.clock.advance(chrono::Duration::minutes(11));
        let (status, body) = server.exchange(&client, &code, &pkce).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_grant"));

        // Expired access token (1 hour); the refresh token still works.
        let pkce = Pkce::new();
        let code = code_for(&pkce, &[("scope", "memories:read")]).await;
        let (_, tokens) = server.exchange(&client, &code, &pkce).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        // Insufficient scope: a memories:read token cannot write.
        let resp = http()
            .post(format!("{}/api/v1/memory", server.url))
            .bearer_auth(&access)
            .json(&serde_json::json!({ "title": "t", "content": "c" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        server.clock.advance(chrono::Duration::minutes(61));
        let (status, body, headers) = server.get_with_bearer("/api/v1/memory", &access).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("token_expired")));
        assert!(headers["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
        let (status, rotated) = server.refresh(&client, &refresh).await;
        assert_eq!(status, StatusCode::OK, "{rotated}");

        // Refresh reuse after the grace period revokes the family.
        server.clock.advance(chrono::Duration::seconds(3));
        let (status, body) = server.refresh(&client, &refresh).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_grant"));
        let new_access = rotated["access_token"].as_str().unwrap();
        assert_eq!(server.get_with_bearer("/api/v1/memory", new_access).await.0, StatusCode::UNAUTHORIZED);
        let (status, _) = server.refresh(&client, rotated["refresh_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Unsupported grant, missing grant type.
        let (status, body) = server.token_request(&client, &[("grant_type", "password")]).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "unsupported_grant_type"));
        let (status, body) = server.token_request(&client, &[]).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));

        // The audit trail recorded the family revocations.
        let events = server.with_key(&user.api_key).audit_list().send().await.unwrap().into_inner();
        let revoked: Vec<_> = events.events.iter().filter(|e| e.action == types::AuditAction::OauthTokenFamilyRevoked).collect();
        assert_eq!(revoked.len(), 2, "code replay and refresh reuse");
        server.stop().await;
    }

    async fn refresh_retry_within_grace_gets_the_same_pair(backend) {
        let server = TestServer::start(backend).await;
        let (_user, client, tokens) = server.full_flow(&[]).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let (s1, first) = server.refresh(&client, &refresh).await;
        let (s2, retry) = server.refresh(&client, &refresh).await;
        assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
        assert_eq!(first["access_token"], retry["access_token"]);
        assert_eq!(first["refresh_token"], retry["refresh_token"]);
        // The new pair is live and rotates normally.
        let (status, _) = server.refresh(&client, first["refresh_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        // Now the original is two generations old: reuse, family revoked.
        let (status, _) = server.refresh(&client, &refresh).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        server.stop().await;
    }

    async fn replicas_share_codes_and_rotate_exactly_once(backend) {
        let server = TestServer::start_with(backend, |c| c.refresh_reuse_grace_secs = 0).await;
        let replica = server.replica().await;
        // Authorize on one, redeem on the other.
        let user = server.register_with_password().await;
        let client = server.register_client("https://app.example/cb", "none").await;
        let pkce = Pkce::new();
        let url = server.authorize_url(&client, &pkce, &[]);
        let code = param(&server.authorize_in_browser(&browser(), &user, &url, true).await, "code").unwrap();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_id", client.client_id.as_str()),
        ];
        let resp = http().post(format!("{}/oauth/token", replica.url)).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let tokens: serde_json::Value = resp.json().await.unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        mcpgate_e2e::remember_secret(&refresh);
        mcpgate_e2e::remember_secret(tokens["access_token"].as_str().unwrap());

        // Two concurrent refreshes of one token, one on each replica: exactly one wins.
        let (a, b) = tokio::join!(
            refresh_at(&server.url, &refresh, &client.client_id),
            refresh_at(&replica.url, &refresh, &client.client_id)
        );
        let ok = [&a, &b].iter().filter(|(s, _)| *s == StatusCode::OK).count();
        assert_eq!(ok, 1, "exactly one refresh succeeds: {a:?} {b:?}");
        let loser = if a.0 == StatusCode::OK { &b } else { &a };
        assert_eq!(oauth_error(&loser.1), "invalid_grant");
        replica.stop().await;
        server.stop().await;
    }

    async fn concurrent_retries_within_grace_share_one_rotation(backend) {
        let server = TestServer::start(backend).await;
        let replica = server.replica().await;
        let (_user, client, tokens) = server.full_flow(&[]).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let (a, b) = tokio::join!(
            refresh_at(&server.url, &refresh, &client.client_id),
            refresh_at(&replica.url, &refresh, &client.client_id)
        );
        assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK), "{a:?} {b:?}");
        assert_eq!(a.1["refresh_token"], b.1["refresh_token"], "one rotation, one new pair");
        assert_eq!(a.1["access_token"], b.1["access_token"]);
        replica.stop().await;
        server.stop().await;
    }

    async fn registration_rules(backend) {
        let server = TestServer::start(backend).await;
        for (uri, why) in [
            ("javascript:alert(1)", "javascript"),
            ("data:text/html,x", "data"),
            ("http://evil.example/cb", "loopback"),
            ("https://app.example/cb#x", "fragment"),
        ] {
            let (status, body) = server.register_client_raw(serde_json::json!({ "redirect_uris": [uri], "token_endpoint_auth_method": "none" })).await;
            assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_redirect_uri"), "{uri}");
            assert!(body["error_description"].as_str().unwrap().contains(why), "{body}");
        }
        let (status, body) = server.register_client_raw(serde_json::json!({ "redirect_uris": [] })).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_redirect_uri"));
        let (status, body) = server.register_client_raw(serde_json::json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt" })).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_client_metadata"));
        let (status, body) = server.register_client_raw(serde_json::json!({ "redirect_uris": ["https://a.example/cb"], "scope": "memories:read root" })).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_client_metadata"));
        // Native-app schemes are fine; unknown metadata is ignored (RFC 7591).
        let (status, body) = server.register_client_raw(serde_json::json!({
            "redirect_uris": ["cursor://anysphere.cursor-retrieval/oauth/callback", "http://localhost:3334/cb"],
            "token_endpoint_auth_method": "none",
            "logo_uri": "https://a.example/logo.png",
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));
        assert!(body.get("client_secret").is_none());
        server.stop().await;

        // Closed registration.
        let closed = TestServer::start_with(backend, |c| c.oauth_client_registration = mcpgate_server::config::RegistrationPolicy::Closed).await;
        let (status, body) = closed.register_client_raw(serde_json::json!({ "redirect_uris": ["https://a.example/cb"] })).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::FORBIDDEN, "access_denied"));
        closed.stop().await;
    }

    async fn unused_clients_are_collected(backend) {
        let server = TestServer::start(backend).await;
        let unused = server.register_client("https://app.example/cb", "none").await;
        let (_user, used, _) = server.full_flow(&[]).await;
        server.clock.advance(chrono::Duration::days(2));
        let report = mcpgate_server::service::cleanup::purge(server.state()).await.unwrap();
        assert_eq!(report.unused_clients, 1);
        let b = browser();
        let (status, _) = authorize_answer(&b, &server.authorize_url(&unused, &Pkce::new(), &[])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "the unused client is gone");
        let (status, _) = authorize_answer(&b, &server.authorize_url(&used, &Pkce::new(), &[])).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "the used client stays");
        server.stop().await;
    }

    async fn client_metadata_documents(backend) {
        let doc_server = MetadataServer::start().await;
        let client_id = format!("{}/client.json", doc_server.url);
        doc_server.set(serde_json::json!({
            "client_id": client_id,
            "client_name": "Metadata App",
            "redirect_uris": ["http://127.0.0.1:7777/cb"],
            "token_endpoint_auth_method": "none",
        }));
        let server = TestServer::start_with(backend, |c| {
            c.client_metadata_allow_http = true;
            c.client_metadata_allow_private_addresses = true;
        }).await;
        let user = server.register_with_password().await;
        let client = TestClient { client_id: client_id.clone(), client_secret: None, redirect_uri: "http://127.0.0.1:7777/cb".into() };
        let pkce = Pkce::new();
        let b = browser();
        let (status, login) = authorize_answer(&b, &server.authorize_url(&client, &pkce, &[])).await;
        if status != StatusCode::SEE_OTHER {
            let logs = mcpgate_e2e::captured_logs();
            let failures: Vec<&str> = logs.lines().filter(|l| l.contains("oauth endpoint failed")).collect();
            panic!("{status}: {failures:?}");
        }
        let return_to = param(&format!("{}{login}", server.url), "return_to").unwrap();
        server.login(&b, &user, &return_to).await;
        let html = b.get(format!("{}{return_to}", server.url)).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("Metadata App"), "consent names the client from its document");
        let back = server.decide(&b, &html, true).await;
        let code = param(&back, "code").unwrap();
        let (status, tokens) = server.exchange(&client, &code, &pkce).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(doc_server.hits(), 1, "the document was cached");

        // Its redirect URIs are enforced.
        let evil = TestClient { redirect_uri: "http://127.0.0.1:7777/other".into(), ..client.clone() };
        let (status, _) = authorize_answer(&b, &server.authorize_url(&evil, &pkce, &[])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        server.stop().await;

        // By default loopback and http documents are refused.
        let strict = TestServer::start(backend).await;
        let (status, page) = authorize_answer(&browser(), &strict.authorize_url(&client, &pkce, &[])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("invalid_client"), "{page}");
        let https_loopback = TestClient { client_id: "https://127.0.0.1:1/client.json".into(), ..client.clone() };
        let (status, page) = authorize_answer(&browser(), &strict.authorize_url(&https_loopback, &pkce, &[])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("private or loopback"), "{page}");
        strict.stop().await;

        // A document whose client_id does not match its URL is refused.
        let liar = TestServer::start_with(backend, |c| {
            c.client_metadata_allow_http = true;
            c.client_metadata_allow_private_addresses = true;
        }).await;
        doc_server.set(serde_json::json!({ "client_id": "https://other.example/client.json", "redirect_uris": ["http://127.0.0.1:7777/cb"] }));
        let (status, page) = authorize_answer(&browser(), &liar.authorize_url(&client, &pkce, &[])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("does not equal"), "{page}");
        liar.stop().await;
    }
}

/// A real HTTP server on loopback serving one client metadata document.
struct MetadataServer {
    url: String,
    doc: std::sync::Arc<std::sync::Mutex<serde_json::Value>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl MetadataServer {
    async fn start() -> Self {
        use poem::{get, handler, web::Data, EndpointExt, Route};
        type Doc = std::sync::Arc<std::sync::Mutex<serde_json::Value>>;
        type Hits = std::sync::Arc<std::sync::atomic::AtomicUsize>;
        #[handler]
        fn serve(doc: Data<&Doc>, hits: Data<&Hits>) -> poem::Response {
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = doc.lock().unwrap().to_string();
            poem::Response::builder()
                .content_type("application/json")
                .header("cache-control", "max-age=600")
                .body(body)
        }
        let doc: Doc = Default::default();
        let hits: Hits = Default::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = poem::listener::TcpAcceptor::from_std(listener).unwrap();
        let app = Route::new()
            .at("/client.json", get(serve))
            .data(doc.clone())
            .data(hits.clone());
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self {
            url: format!("http://{addr}"),
            doc,
            hits,
            task,
        }
    }

    fn set(&self, value: serde_json::Value) {
        *self.doc.lock().unwrap() = value;
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
