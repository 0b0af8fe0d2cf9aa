//! Signing in and authorizing an application in a real browser: the login
//! page and its error, the consent page's two answers, a remembered
//! consent, signing out, and the HTML 404 a browser is shown.

use reqwest::{header, StatusCode};

use super::*;

/// The state [`TestServer::authorize_url`] sends.
const STATE: &str = "st-123";

browser_e2e! {
    async fn a_wrong_password_is_shown_then_sign_in_lands_home(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        b.goto(&format!("{}/login", server.url)).await;
        b.assert_console_clean("the login page").await;

        b.fill("#email", &user.email).await;
        b.fill("#password", "not-the-password").await;
        b.click(SIGN_IN).await;
        let alert = b.text("[role=alert]").await;
        assert!(!alert.trim().is_empty(), "the error says what went wrong");
        assert_eq!(b.current_url().await.path(), "/login");
        b.assert_console_clean("the login page with its error").await;

        sign_in(&b, &user).await;
        b.wait_for(SIGN_OUT).await;
        assert_eq!(b.current_url().await.as_str(), format!("{}/", server.url));
        b.assert_console_clean("the home page").await;
        server.stop().await;
    }

    async fn authorize_then_approve_gives_a_working_token(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let mut callback = Callback::start().await;
        let client = client_for(&server, &callback).await;
        let pkce = Pkce::new();
        let url = server.authorize_url(&client, &pkce, &[("scope", "memories:read keys:read")]);

        // Not signed in: the authorization waits behind the login page.
        b.goto(&url).await;
        b.wait_for("#password").await;
        assert_eq!(b.current_url().await.path(), "/login");
        b.assert_console_clean("the login page").await;
        sign_in(&b, &user).await;

        b.wait_for("button[value=approve]").await;
        assert_eq!(b.current_url().await.path(), "/oauth/authorize");
        b.assert_console_clean("the consent page").await;
        b.click("button[value=approve]").await;

        let back = callback.next().await;
        assert_eq!(query_param(&back, "state").as_deref(), Some(STATE));
        assert_eq!(query_param(&back, "iss").as_deref(), Some(server.url.as_str()));
        let code = query_param(&back, "code").expect("a code in the callback");
        remember_secret(&code);
        b.wait_for_url("the callback", |u| u.path() == "/callback").await;

        let (status, tokens) = server.exchange(&client, &code, &pkce).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let access = tokens["access_token"].as_str().expect("access token");
        let (status, me, _) = server.get_with_bearer("/api/v1/users/me", access).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["user_id"], user.user_id.as_str());
        server.stop().await;
    }

    async fn deny_sends_access_denied_back(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let mut callback = Callback::start().await;
        let client = client_for(&server, &callback).await;
        signed_in(&b, &server, &user).await;

        b.goto(&server.authorize_url(&client, &Pkce::new(), &[])).await;
        b.assert_console_clean("the consent page").await;
        b.click("button[value=deny]").await;

        let back = callback.next().await;
        assert_eq!(query_param(&back, "error").as_deref(), Some("access_denied"));
        assert_eq!(query_param(&back, "state").as_deref(), Some(STATE));
        assert_eq!(query_param(&back, "code"), None);
        server.stop().await;
    }

    async fn a_remembered_consent_goes_straight_back(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let mut callback = Callback::start().await;
        let client = client_for(&server, &callback).await;
        signed_in(&b, &server, &user).await;
        let scope = [("scope", "memories:read")];

        b.goto(&server.authorize_url(&client, &Pkce::new(), &scope)).await;
        b.click("button[value=approve]").await;
        let first = callback.next().await;
        assert!(query_param(&first, "code").is_some(), "{first}");

        // The same client and scopes again: no consent page, a code at once.
        let pkce = Pkce::new();
        b.goto(&server.authorize_url(&client, &pkce, &scope)).await;
        let url = b.current_url().await;
        assert_eq!(url.path(), "/callback", "no consent page on the way");
        let second = callback.next().await;
        assert_eq!(second, url);
        let code = query_param(&second, "code").expect("a code in the callback");
        remember_secret(&code);
        let (status, tokens) = server.exchange(&client, &code, &pkce).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        server.stop().await;
    }

    async fn signing_out_ends_the_session(backend, b) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let callback = Callback::start().await;
        let client = client_for(&server, &callback).await;
        signed_in(&b, &server, &user).await;

        b.click(SIGN_OUT).await;
        b.wait_for("#password").await;
        b.assert_console_clean("the page after signing out").await;

        b.goto(&server.authorize_url(&client, &Pkce::new(), &[])).await;
        b.wait_for("#password").await;
        assert_eq!(b.current_url().await.path(), "/login");
        server.stop().await;
    }

    async fn an_unknown_page_is_an_html_404(backend, b) {
        let server = TestServer::start(backend).await;
        let url = format!("{}/no/such/page", server.url);
        b.goto(&url).await;
        assert!(!b.text("h1").await.trim().is_empty(), "the page has a heading");
        b.wait_for(r#"a[href="/"]"#).await;

        // The browser's status, seen through reqwest asking as a browser does.
        let resp = http().get(&url).header(header::ACCEPT, "text/html,application/xhtml+xml").send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let content_type = resp.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        // An API client still gets the JSON error.
        let resp = http().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
        server.stop().await;
    }
}
