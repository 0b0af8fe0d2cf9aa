//! The account console in a real browser: sign-up with its first key, each
//! page's main action (keys, connections to a second mcpgate, apps,
//! memories, security), the problems shown next to their fields, and a
//! phone-width layout.

use reqwest::StatusCode;

use super::*;

/// The value of the input matching `css`.
async fn value(b: &Browser, css: &str) -> String {
    b.wait_for(css)
        .await
        .prop("value")
        .await
        .unwrap_or_else(|e| panic!("read the value of `{css}`: {e}"))
        .unwrap_or_default()
}

/// Status of `GET /api/v1/users/me` with `key`.
async fn me_status(server: &TestServer, key: &str) -> StatusCode {
    server.get_with_bearer("/api/v1/users/me", key).await.0
}

/// The id of the element that has the keyboard focus.
async fn focused_id(b: &Browser) -> String {
    b.client()
        .execute(
            "return document.activeElement && document.activeElement.id",
            vec![],
        )
        .await
        .expect("read the focused element")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Fail if the page scrolls sideways at the current window width.
async fn fits_width(b: &Browser, page: &str) {
    let overflow = b
        .client()
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await
        .expect("measure the page")
        .as_i64()
        .unwrap_or_default();
    assert!(overflow <= 0, "{page} scrolls sideways by {overflow} px");
}

/// A form refused on purpose answers with its status, which Chromium logs
/// as a failed load: take those entries from the log, and fail on any other.
async fn refused_with(b: &Browser, status: u16) {
    let expected = format!("the server responded with a status of {status}");
    let other: Vec<_> = b
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !(e.source == "network" && e.message.contains(&expected)))
        .collect();
    assert!(other.is_empty(), "unexpected console errors: {other:#?}");
}

/// Wait until the element matching `css` contains `needle` (the page after
/// a form post has loaded).
async fn wait_for_text(b: &Browser, css: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + mcpgate_e2e::browser::WAIT;
    loop {
        if b.exists(css).await {
            if let Ok(text) = b.wait_for(css).await.text().await {
                if text.contains(needle) {
                    return text;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{css}` never said “{needle}” on {}",
            b.current_url().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

browser_e2e! {
    async fn sign_up_shows_the_first_key_once_and_signs_in(backend, b) {
        let server = TestServer::start(backend).await;
        b.goto(&format!("{}/", server.url)).await;
        b.click(r#"a[href="/signup"]"#).await;
        b.wait_for("#email").await;
        assert_eq!(focused_id(&b).await, "name", "the first field has the focus");
        let email = format!("new-{}@example.com", uuid::Uuid::new_v4().simple());
        b.fill("#name", "Ada").await;
        b.fill("#email", &email).await;
        b.fill("#password", "short").await;
        b.click(r#"form[action="/signup"] button[type=submit]"#).await;
        // The problem is next to its field, the values are kept, the focus is on it.
        let problem = b.text("#password-error").await;
        assert!(problem.contains("at least 8"), "{problem}");
        refused_with(&b, 400).await;
        assert_eq!(value(&b, "#email").await, email);
        assert_eq!(value(&b, "#name").await, "Ada");
        assert_eq!(focused_id(&b).await, "password");
        let stored = mcpgate_server::store::users::find_by_email(&server.state().db, &email)
            .await
            .expect("read users");
        assert!(stored.is_none(), "nothing was half-created");

        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        remember_secret(&password);
        b.fill("#password", &password).await;
        b.click(r#"form[action="/signup"] button[type=submit]"#).await;
        let key = value(&b, "#new-key").await;
        remember_secret(&key);
        assert!(key.starts_with("mcpg_"), "the key is shown");
        assert_eq!(me_status(&server, &key).await, StatusCode::OK, "the key works");
        assert!(b.exists("button[data-copy=new-key]:not([hidden])").await, "a copy button");

        // Signed in: the overview counts the key.
        b.click("main a[href='/']").await;
        let keys = b.text(r#"a.card[href="/account/keys"] strong"#).await;
        assert_eq!(keys, "1");
        // The same email cannot sign up twice.
        b.click(SIGN_OUT).await;
        b.wait_for_url("the login page", |u| u.path() == "/login").await;
        b.goto(&format!("{}/signup", server.url)).await;
        b.fill("#email", &email).await;
        b.fill("#password", &password).await;
        b.click(r#"form[action="/signup"] button[type=submit]"#).await;
        wait_for_text(&b, "[role=alert]", "already exists").await;
        refused_with(&b, 409).await;
        server.stop().await;
    }

    async fn keys_are_created_rotated_and_revoked(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        signed_in(&b, &server, &user).await;
        b.goto(&format!("{}/account/keys", server.url)).await;

        // A bad expiry is refused next to the field, nothing created.
        b.fill("#key-name", "ci").await;
        b.fill("#key-expiry", "99999").await;
        b.click(r#"form[action="/account/keys"] button[type=submit]"#).await;
        let problem = b.text("#expiry-error").await;
        assert!(problem.contains("3650"), "{problem}");
        refused_with(&b, 400).await;
        assert_eq!(value(&b, "#key-name").await, "ci");
        let listed = server.with_key(&user.api_key).key_list().send().await.unwrap().into_inner();
        assert_eq!(listed.keys.len(), 1, "nothing was created");

        // A read-only key: untick the write scopes.
        for scope in ["memories:write", "connections:write", "connections:token", "keys:write"] {
            b.click(&format!(r#"input[name=scopes][value="{scope}"]"#)).await;
        }
        b.fill("#key-expiry", "30").await;
        b.click(r#"form[action="/account/keys"] button[type=submit]"#).await;
        let key = value(&b, "#new-key").await;
        remember_secret(&key);
        assert_eq!(me_status(&server, &key).await, StatusCode::OK);
        let (status, _) = mcpgate_e2e::expect_error(
            server.with_key(&key).key_create().body(types::CreateKeyRequest {
                name: "more".into(), scopes: vec![], expires_in_days: None,
            }).send().await,
        );
        assert_eq!(status, 403, "the key holds only the read scopes");
        let key_id = key[5..21].to_owned();
        let row = format!(r#"tr[data-key-id="{key_id}"]"#);
        assert!(b.text(&row).await.contains("keys:read"));

        // Rotate with no grace: the new secret works, the old one stops.
        b.click(&format!("{row} details:nth-of-type(1) summary")).await;
        b.click(&format!(r#"{row} form[action$="/rotate"] button"#)).await;
        wait_for_text(&b, "[role=status] h2", "New secret").await;
        let rotated = value(&b, "#new-key").await;
        remember_secret(&rotated);
        assert_ne!(rotated, key);
        assert_eq!(me_status(&server, &rotated).await, StatusCode::OK);
        assert_eq!(me_status(&server, &key).await, StatusCode::UNAUTHORIZED);

        // Revoke, after confirming.
        b.click(&format!("{row} details:nth-of-type(2) summary")).await;
        b.click(&format!(r#"{row} form[action$="/revoke"] button"#)).await;
        wait_for_text(&b, "[role=status]", "revoked").await;
        assert!(b.text(&row).await.contains("revoked"));
        assert_eq!(me_status(&server, &rotated).await, StatusCode::UNAUTHORIZED);

        // Readable on a phone.
        b.client().set_window_size(390, 844).await.expect("resize");
        b.goto(&format!("{}/account/keys", server.url)).await;
        fits_width(&b, "the keys page at 390 px").await;
        server.stop().await;
    }

    async fn memories_are_created_found_edited_and_deleted(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        signed_in(&b, &server, &user).await;
        b.goto(&format!("{}/account/memories", server.url)).await;

        // An empty title is refused; the content typed is kept.
        b.fill("#memory-content", "Run migrations before upgrading <script>x</script>").await;
        b.click(r#"form[method=post][action="/account/memories"] button[type=submit]"#).await;
        assert!(b.text("#title-error").await.contains("Title"));
        refused_with(&b, 400).await;
        assert_eq!(focused_id(&b).await, "memory-title");
        assert!(value(&b, "#memory-content").await.contains("Run migrations"));
        b.fill("#memory-title", "Deploy runbook").await;
        b.fill("#memory-tags", "ops, release").await;
        b.click(r#"form[method=post][action="/account/memories"] button[type=submit]"#).await;
        wait_for_text(&b, "h1", "Deploy runbook").await;
        assert!(b.text("pre.content").await.contains("<script>x</script>"), "shown as text");

        // Search finds it, with the match marked and the rest escaped.
        b.goto(&format!("{}/account/memories", server.url)).await;
        b.fill("#q", "migrations").await;
        b.click(r#"form[role=search] button"#).await;
        assert_eq!(b.text("#memories .snippet mark").await, "migrations");
        assert!(!b.exists("#memories .snippet script").await);
        // A tag filter that matches nothing lists nothing.
        b.goto(&format!("{}/account/memories?tag=nothing", server.url)).await;
        assert!(!b.exists("#memories").await);
        b.goto(&format!("{}/account/memories?tag=ops", server.url)).await;
        b.click("#memories a").await;

        // Edit.
        b.fill("#memory-title", "Deploy runbook v2").await;
        b.click(r#"form[action^="/account/memories/"] button[type=submit]"#).await;
        wait_for_text(&b, "h1", "Deploy runbook v2").await;
        let id = b.current_url().await.path().rsplit('/').next().unwrap().to_owned();
        let got = server.with_key(&user.api_key).memory_get().id(id.parse::<uuid::Uuid>().unwrap())
            .send().await.unwrap().into_inner();
        assert_eq!(got.title, "Deploy runbook v2");
        assert_eq!(got.tags, vec!["ops".to_owned(), "release".to_owned()]);

        // Delete, after confirming.
        b.click("details summary").await;
        b.click(r#"form[action$="/delete"] button"#).await;
        wait_for_text(&b, "[role=status]", "deleted").await;
        let page = server.with_key(&user.api_key).memory_list().send().await.unwrap().into_inner();
        assert_eq!(page.total, 0);
        server.stop().await;
    }

    async fn an_authorized_app_is_listed_and_revoked(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let mut callback = Callback::start().await;
        let client = client_for(&server, &callback).await;
        signed_in(&b, &server, &user).await;
        let pkce = Pkce::new();
        b.goto(&server.authorize_url(&client, &pkce, &[("scope", "memories:read")])).await;
        // The consent page says where revocation lives.
        assert!(b.exists(r#"a[href="/account/apps"]"#).await);
        b.click("button[value=approve]").await;
        let code = query_param(&callback.next().await, "code").expect("code");
        remember_secret(&code);
        let (_, tokens) = server.exchange(&client, &code, &pkce).await;
        let access = tokens["access_token"].as_str().expect("access token").to_owned();
        remember_secret(&access);
        assert_eq!(me_status(&server, &access).await, StatusCode::OK);

        b.goto(&format!("{}/account/apps", server.url)).await;
        let row = format!(r#"#apps tr[data-client-id="{}"]"#, client.client_id);
        let text = b.text(&row).await;
        assert!(text.contains("read and search your memories"), "{text}");
        assert!(text.contains("127.0.0.1"), "the redirect host: {text}");
        b.click(&format!("{row} summary")).await;
        b.click(&format!("{row} form button")).await;
        wait_for_text(&b, "[role=status]", "revoked").await;
        assert_eq!(me_status(&server, &access).await, StatusCode::UNAUTHORIZED);
        server.stop().await;
    }

    async fn the_password_is_changed_and_other_sessions_end(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        // Another browser, signed in elsewhere.
        let other = mcpgate_e2e::oauth::browser();
        server.login(&other, &user, "/").await;
        let home = other.get(format!("{}/", server.url)).send().await.unwrap().text().await.unwrap();
        assert!(home.contains(&user.email), "the other browser is signed in");

        signed_in(&b, &server, &user).await;
        b.goto(&format!("{}/account/security", server.url)).await;
        assert!(b.text("#events").await.contains("Signed in"), "recent events");
        b.click(r#"form[action="/account/security/sessions"] button"#).await;
        wait_for_text(&b, "[role=status]", "signed out").await;
        let home = other.get(format!("{}/", server.url)).send().await.unwrap().text().await.unwrap();
        assert!(!home.contains(&user.email), "the other browser was signed out");

        // A wrong current password is refused next to its field.
        let new = format!("pw-{}", uuid::Uuid::new_v4().simple());
        remember_secret(&new);
        b.fill("#current-password", "not the password").await;
        b.fill("#new-password", &new).await;
        b.fill("#confirm-password", &new).await;
        b.click(r#"form[action="/account/security/password"] button"#).await;
        assert!(b.text("#current-error").await.contains("does not match"));
        refused_with(&b, 400).await;
        assert_eq!(focused_id(&b).await, "current-password");

        b.fill("#current-password", &user.password).await;
        b.fill("#new-password", &new).await;
        b.fill("#confirm-password", &new).await;
        b.click(r#"form[action="/account/security/password"] button"#).await;
        wait_for_text(&b, "[role=status]", "password was changed").await;
        // Still signed in here; the old password no longer signs in, the new one does.
        b.goto(&format!("{}/account/keys", server.url)).await;
        b.wait_for("#key-name").await;
        let fresh = mcpgate_e2e::oauth::browser();
        let resp = server.login(&fresh, &user, "/").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let changed = TestUser { password: new.clone(), ..user.clone() };
        let resp = server.login(&fresh, &changed, "/").await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        server.stop().await;
    }

    async fn a_connection_is_made_through_another_mcpgate_and_removed(backend, b) {
        // The provider is a second mcpgate on another loopback address, so
        // the two servers' cookies stay apart in the one browser.
        let upstream = TestServer::start_on(backend, "127.0.0.2", |_| {}).await;
        let (status, registered) = upstream
            .register_client_raw(serde_json::json!({
                "client_name": "Downstream gateway",
                "redirect_uris": ["http://127.0.0.1/api/v1/connect/upstream/callback"],
                "token_endpoint_auth_method": "client_secret_post",
                "scope": "memories:read",
            }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{registered}");
        let up = upstream.url.clone();
        let client_id = registered["client_id"].as_str().unwrap().to_owned();
        let client_secret = registered["client_secret"].as_str().unwrap().to_owned();
        remember_secret(&client_secret);
        let server = TestServer::start_with(backend, move |c| {
            c.providers.insert(
                "upstream".into(),
                mcpgate_server::config::ProviderConfig {
                    display_name: Some("Team mcpgate".into()),
                    authorization_url: Some(format!("{up}/oauth/authorize")),
                    token_url: Some(format!("{up}/oauth/token")),
                    revocation_url: Some(format!("{up}/oauth/revoke")),
                    userinfo_url: Some(format!("{up}/api/v1/users/me")),
                    account_id_pointer: Some("/user_id".into()),
                    scopes: Some(vec!["memories:read".into()]),
                    pkce: Some(true),
                    client_id: Some(client_id.clone()),
                    client_secret: Some(client_secret.clone().into()),
                    ..Default::default()
                },
            );
        })
        .await;
        let up_user = upstream.register_with_password().await;
        let user = server.register_with_password().await;
        signed_in(&b, &server, &user).await;
        b.goto(&format!("{}/account/connections", server.url)).await;
        let row = r#"tr[data-provider="upstream"]"#;
        assert!(b.text(row).await.contains("Not connected"));
        b.click(&format!(r#"{row} form[action$="/connect"] button"#)).await;

        // On the provider: its login, then its consent page.
        b.wait_for("#password").await;
        assert_eq!(b.current_url().await.host_str(), Some("127.0.0.2"));
        sign_in(&b, &up_user).await;
        b.click("button[value=approve]").await;

        // Back on the console with a banner.
        wait_for_text(&b, "[role=status]", "Team mcpgate is connected").await;
        assert_eq!(b.current_url().await.path(), "/account/connections");
        assert!(b.text(row).await.contains("Connected"));
        let token = server.with_key(&user.api_key).connect_token().provider("upstream")
            .send().await.unwrap().into_inner();
        remember_secret(&token.access_token);
        assert_eq!(me_status(&upstream, &token.access_token).await, StatusCode::OK);

        b.click(&format!("{row} summary")).await;
        b.click(&format!(r#"{row} form[action$="/disconnect"] button"#)).await;
        wait_for_text(&b, "[role=status]", "Disconnected").await;
        assert!(b.text(row).await.contains("Not connected"));
        assert_eq!(
            me_status(&upstream, &token.access_token).await,
            StatusCode::UNAUTHORIZED,
            "disconnecting revoked the token at the provider"
        );
        server.stop().await;
        upstream.stop().await;
    }
}
