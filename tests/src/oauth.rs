//! Driving the OAuth server the way a browser and an MCP client do: real
//! HTTP, a cookie jar, the login and consent forms parsed from the pages,
//! redirects inspected rather than followed.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use reqwest::{redirect::Policy, StatusCode};
use sha2::{Digest, Sha256};

use crate::{remember_secret, TestServer};

/// A browser: cookie jar, no automatic redirects.
pub fn browser() -> reqwest::Client {
    mcpgate_client::http_client_builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("browser client")
}

/// A back-channel HTTP client (token endpoint and friends).
pub fn http() -> reqwest::Client {
    mcpgate_client::http_client_builder()
        .redirect(Policy::none())
        .build()
        .expect("http client")
}

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = mcpgate_server::token::random_base62(64);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// Undo askama's HTML escaping of attribute values.
fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// Every `<input type="hidden" name=… value=…>` of a page, in order.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in html.split("<input type=\"hidden\" ").skip(1) {
        let attr = |name: &str| {
            let start = part.find(&format!("{name}=\""))? + name.len() + 2;
            let end = part[start..].find('"')? + start;
            Some(unescape(&part[start..end]))
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

/// The `Location` of a redirect.
pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: String,
}

/// A user with a password.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub password: String,
    pub api_key: String,
    pub user_id: String,
}

impl TestServer {
    /// Register a user with an email and password.
    pub async fn register_with_password(&self) -> TestUser {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = format!("pw-{}", mcpgate_server::token::random_base62(20));
        remember_secret(&password);
        let r = self
            .anonymous()
            .user_register()
            .body(mcpgate_client::types::RegisterRequest {
                name: Some("OAuth User".into()),
                email: Some(email.clone()),
                password: Some(password.clone()),
            })
            .send()
            .await
            .expect("registration")
            .into_inner();
        remember_secret(&r.api_key);
        TestUser {
            email,
            password,
            api_key: r.api_key,
            user_id: r.user_id,
        }
    }

    /// `POST /oauth/register` with `metadata`; returns status and body.
    pub async fn register_client_raw(
        &self,
        metadata: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let resp = http()
            .post(format!("{}/oauth/register", self.url))
            .json(&metadata)
            .send()
            .await
            .expect("register request");
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.expect("json body");
        if let Some(s) = body["client_secret"].as_str() {
            remember_secret(s);
        }
        (status, body)
    }

    /// Register a client whose redirect URI is `redirect_uri`.
    pub async fn register_client(&self, redirect_uri: &str, auth_method: &str) -> TestClient {
        let (status, body) = self
            .register_client_raw(serde_json::json!({
                "client_name": "Test Client",
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": auth_method,
            }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        TestClient {
            client_id: body["client_id"].as_str().expect("client_id").to_owned(),
            client_secret: body["client_secret"].as_str().map(str::to_owned),
            redirect_uri: redirect_uri.to_owned(),
        }
    }

    /// The authorization URL for `client` with `extra` parameters.
    pub fn authorize_url(
        &self,
        client: &TestClient,
        pkce: &Pkce,
        extra: &[(&str, &str)],
    ) -> String {
        let mut url = url::Url::parse(&format!("{}/oauth/authorize", self.url)).expect("url");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", &client.client_id);
            q.append_pair("redirect_uri", &client.redirect_uri);
            q.append_pair("code_challenge", &pkce.challenge);
            q.append_pair("code_challenge_method", "S256");
            q.append_pair("state", "st-123");
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }

    /// Sign `user` in through the login form of `browser`.
    pub async fn login(
        &self,
        browser: &reqwest::Client,
        user: &TestUser,
        return_to: &str,
    ) -> reqwest::Response {
        let page = browser
            .get(format!("{}/login", self.url))
            .query(&[("return_to", return_to)])
            .send()
            .await
            .expect("login page");
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("html");
        let mut form = hidden_fields(&html);
        form.push(("email".into(), user.email.clone()));
        form.push(("password".into(), user.password.clone()));
        browser
            .post(format!("{}/login", self.url))
            .form(&form)
            .send()
            .await
            .expect("login post")
    }

    /// Walk the whole browser side: authorize, log in, consent (`approve`
    /// or deny). Returns the final redirect to the client.
    pub async fn authorize_in_browser(
        &self,
        browser: &reqwest::Client,
        user: &TestUser,
        url: &str,
        approve: bool,
    ) -> String {
        let resp = browser.get(url).send().await.expect("authorize");
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "authorize redirects");
        let mut next = location(&resp);
        if next.starts_with("/login") {
            let return_to = param(&format!("{}{next}", self.url), "return_to").expect("return_to");
            let resp = self.login(browser, user, &return_to).await;
            assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login redirects back");
            next = location(&resp);
            assert_eq!(next, return_to);
        }
        let target = if next.starts_with('/') {
            format!("{}{next}", self.url)
        } else {
            next
        };
        if !target.starts_with(&self.url) {
            return target; // consent was remembered: straight back to the client
        }
        let resp = browser.get(&target).send().await.expect("consent page");
        if resp.status() == StatusCode::SEE_OTHER {
            return location(&resp);
        }
        assert_eq!(resp.status(), StatusCode::OK, "consent page");
        let html = resp.text().await.expect("html");
        self.decide(browser, &html, approve).await
    }

    /// Submit the consent form found in `html`.
    pub async fn decide(&self, browser: &reqwest::Client, html: &str, approve: bool) -> String {
        let mut form = hidden_fields(html);
        form.push((
            "decision".into(),
            if approve { "approve" } else { "deny" }.into(),
        ));
        let resp = browser
            .post(format!("{}/oauth/authorize", self.url))
            .form(&form)
            .send()
            .await
            .expect("consent post");
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "consent redirects");
        location(&resp)
    }

    /// `POST /oauth/token` with `form`, client auth as the client registered.
    pub async fn token_request(
        &self,
        client: &TestClient,
        form: &[(&str, &str)],
    ) -> (StatusCode, serde_json::Value) {
        let mut form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut req = http().post(format!("{}/oauth/token", self.url));
        match &client.client_secret {
            Some(secret) => req = req.basic_auth(&client.client_id, Some(secret)),
            None => form.push(("client_id".into(), client.client_id.clone())),
        }
        let resp = req.form(&form).send().await.expect("token request");
        let status = resp.status();
        let cache = resp
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(
            cache.as_deref(),
            Some("no-store"),
            "token responses are never cached"
        );
        for field in ["access_token", "refresh_token"] {
            if let Some(t) = body[field].as_str() {
                remember_secret(t);
            }
        }
        (status, body)
    }

    /// Exchange a code.
    pub async fn exchange(
        &self,
        client: &TestClient,
        code: &str,
        pkce: &Pkce,
    ) -> (StatusCode, serde_json::Value) {
        self.token_request(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &client.redirect_uri),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await
    }

    /// Refresh.
    pub async fn refresh(
        &self,
        client: &TestClient,
        refresh_token: &str,
    ) -> (StatusCode, serde_json::Value) {
        self.token_request(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// The whole flow for a fresh user and public client; returns the user,
    /// the client and the token response.
    pub async fn full_flow(
        &self,
        extra: &[(&str, &str)],
    ) -> (TestUser, TestClient, serde_json::Value) {
        let user = self.register_with_password().await;
        let client = self
            .register_client("http://127.0.0.1:9/callback", "none")
            .await;
        let pkce = Pkce::new();
        let url = self.authorize_url(&client, &pkce, extra);
        let back = self
            .authorize_in_browser(&browser(), &user, &url, true)
            .await;
        let code = param(&back, "code").expect("code in redirect");
        remember_secret(&code);
        let (status, body) = self.exchange(&client, &code, &pkce).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (user, client, body)
    }

    /// `GET path` with a bearer credential; returns status and JSON body.
    pub async fn get_with_bearer(
        &self,
        path: &str,
        bearer: &str,
    ) -> (StatusCode, serde_json::Value, reqwest::header::HeaderMap) {
        let resp = http()
            .get(format!("{}{path}", self.url))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        (status, resp.json().await.unwrap_or_default(), headers)
    }
}
