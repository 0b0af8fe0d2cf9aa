//! CSRF tokens are bound to the session: a (CSRF cookie, form token) pair
//! minted in one browser is refused beside another browser's session, so an
//! attacker who can plant their own pair (a sibling subdomain, a network
//! that rewrites plain-HTTP responses) still cannot act for the victim.
//! Signed-out forms (login, sign-up) carry a token of the cookie alone; the
//! tokens rendered after a sign-in, a sign-up or a password change belong to
//! the new session.

use mcpgate_e2e::oauth::{hidden_fields, http, location, Pkce, TestUser};
use reqwest::StatusCode;

use super::*;

/// A browser whose cookies the test holds by hand, so it can mix them.
#[derive(Clone, Default)]
struct Jar {
    cookies: Vec<(String, String)>,
}

impl Jar {
    fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(k, _)| k != name);
        if !value.is_empty() {
            self.cookies.push((name.to_owned(), value.to_owned()));
        }
    }

    /// This jar with `name` taken from `other`.
    fn with(&self, name: &str, other: &Jar) -> Jar {
        let mut out = self.clone();
        out.set(name, other.get(name).expect("cookie to take"));
        out
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let header = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if header.is_empty() {
            req
        } else {
            req.header("cookie", header)
        };
        let resp = req.send().await.unwrap();
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.set(k, "");
            } else {
                self.set(k, value);
            }
        }
        resp
    }

    async fn page(&mut self, server: &TestServer, path: &str) -> (StatusCode, String) {
        let resp = self.send(http().get(format!("{}{path}", server.url))).await;
        (resp.status(), resp.text().await.unwrap())
    }

    async fn post(
        &mut self,
        server: &TestServer,
        path: &str,
        form: &[(String, String)],
    ) -> reqwest::Response {
        self.send(http().post(format!("{}{path}", server.url)).form(form))
            .await
    }
}

const SESSION: &str = "mcpgate_session";
const CSRF: &str = "mcpgate_csrf";

fn token(html: &str) -> String {
    hidden_fields(html)
        .into_iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v)
        .expect("a csrf_token field")
}

fn form(token: &str, fields: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = vec![("csrf_token".to_owned(), token.to_owned())];
    out.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    out
}

/// Sign `user` in through the login form; the jar then holds both cookies.
async fn signed_in(server: &TestServer, user: &TestUser) -> Jar {
    let mut jar = Jar::default();
    let (_, html) = jar.page(server, "/login").await;
    let login = form(
        &token(&html),
        &[("email", &user.email), ("password", &user.password)],
    );
    let resp = jar.post(server, "/login", &login).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(jar.get(SESSION).is_some() && jar.get(CSRF).is_some());
    jar
}

async fn key_names(server: &TestServer, user: &TestUser) -> Vec<String> {
    let keys = server
        .with_key(&user.api_key)
        .key_list()
        .send()
        .await
        .unwrap()
        .into_inner();
    keys.keys.into_iter().map(|k| k.name).collect()
}

e2e! {
    async fn a_csrf_pair_from_another_browser_is_refused(backend) {
        let server = TestServer::start(backend).await;
        let attacker_user = server.register_with_password().await;
        let victim_user = server.register_with_password().await;
        let mut attacker = signed_in(&server, &attacker_user).await;
        let mut victim = signed_in(&server, &victim_user).await;
        let (_, html) = attacker.page(&server, "/account/keys").await;
        let attackers_token = token(&html);
        let mut signed_out = Jar::default().with(CSRF, &attacker);
        let (_, html) = signed_out.page(&server, "/login").await;
        let attackers_login_token = token(&html);

        // The victim's session with the attacker's pair (or with the
        // attacker's signed-out token): 403, and no key.
        let create = |t: &str| form(t, &[("name", "planted"), ("scopes", "keys:write")]);
        for t in [&attackers_token, &attackers_login_token] {
            let mut forged = victim.with(CSRF, &attacker);
            let resp = forged.post(&server, "/account/keys", &create(t)).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN);
            assert!(resp.text().await.unwrap().contains("csrf_failed"));
        }
        // The attacker's token with the victim's own cookies: 403 too.
        let resp = victim.clone().post(&server, "/account/keys", &create(&attackers_token)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(key_names(&server, &victim_user).await.len(), 1, "no key was created");
        assert_ne!(attackers_login_token, attackers_token, "signed-out and signed-in tokens differ");

        // Consent: the attacker's consent form (fields and token) for a
        // client of their choosing, posted with the victim's session.
        let client = server.register_client("https://app.example/cb", "none").await;
        let pkce = Pkce::new();
        let authorize = server.authorize_url(&client, &pkce, &[]);
        let (status, consent) = attacker.send(http().get(&authorize)).await.status_and_text().await;
        assert_eq!(status, StatusCode::OK, "consent page");
        let mut fields = hidden_fields(&consent);
        fields.push(("decision".into(), "approve".into()));
        let mut forged = victim.with(CSRF, &attacker);
        let resp = forged.post(&server, "/oauth/authorize", &fields).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(resp.headers().get("location").is_none(), "no code");
        let apps = server.with_key(&victim_user.api_key).authorization_list().send().await.unwrap().into_inner();
        assert!(apps.authorizations.is_empty(), "nothing was authorized: {:?}", apps.authorizations);

        // The victim's own pair works: their key form, their consent.
        let (_, html) = victim.page(&server, "/account/keys").await;
        let resp = victim.post(&server, "/account/keys", &create(&token(&html))).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(key_names(&server, &victim_user).await.len(), 2);
        let (status, consent) = victim.send(http().get(&authorize)).await.status_and_text().await;
        assert_eq!(status, StatusCode::OK);
        let mut fields = hidden_fields(&consent);
        fields.push(("decision".into(), "approve".into()));
        let resp = victim.post(&server, "/oauth/authorize", &fields).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert!(location(&resp).starts_with("https://app.example/cb?code="), "{}", location(&resp));

        // Logout from a signed-in page: the attacker's pair cannot sign the
        // victim out; the victim's own page can.
        let mut forged = victim.with(CSRF, &attacker);
        let resp = forged.post(&server, "/logout", &form(&attackers_token, &[])).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let (_, html) = victim.page(&server, "/account/security").await;
        let resp = victim.post(&server, "/logout", &form(&token(&html), &[])).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&resp), "/login");
        assert!(victim.get(SESSION).is_none());
        let (status, _) = victim.page(&server, "/account/security").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
        server.stop().await;
    }

    async fn tokens_follow_the_session_across_sign_in_sign_up_and_password_change(backend) {
        let server = TestServer::start(backend).await;
        // Sign-up: the page shown at once (with its key) is read with the new
        // session, and its forms work with it.
        let mut jar = Jar::default();
        let (_, html) = jar.page(&server, "/signup").await;
        let email = format!("csrf-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "first-password-1";
        mcpgate_e2e::remember_secret(password);
        let signup = form(&token(&html), &[("name", "New"), ("email", &email), ("password", password)]);
        let resp = jar.post(&server, "/signup", &signup).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let html = resp.text().await.unwrap();
        for line in html.lines().filter(|l| l.contains("mcpg_")) {
            if let Some(start) = line.find("mcpg_") {
                let key: String = line[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                mcpgate_e2e::remember_secret(&key);
            }
        }
        let after_signup = token(&html);
        let resp = jar.post(&server, "/account/keys", &form(&after_signup, &[("name", "from the sign-up page"), ("scopes", "keys:read")])).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "the sign-up page's token is the new session's");

        // Password change: the old session ends; the page rendered before it
        // is stale, the page rendered after it works.
        let (_, html) = jar.page(&server, "/account/security").await;
        let before = token(&html);
        let new_password = "second-password-2";
        mcpgate_e2e::remember_secret(new_password);
        let change = form(&before, &[("current_password", password), ("password", new_password), ("password_confirm", new_password)]);
        let resp = jar.post(&server, "/account/security/password", &change).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let resp = jar.post(&server, "/account/security/sessions", &form(&before, &[])).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "a token of the ended session");
        let (status, html) = jar.page(&server, "/account/security?done=password_changed").await;
        assert_eq!(status, StatusCode::OK);
        let resp = jar.post(&server, "/account/security/sessions", &form(&token(&html), &[])).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "a token of the new session");

        // Signing in again (same CSRF cookie) moves the tokens to the new
        // session too; the login form itself is signed out.
        let (_, html) = jar.page(&server, "/account/security").await;
        let resp = jar.post(&server, "/logout", &form(&token(&html), &[])).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let (_, html) = jar.page(&server, "/login").await;
        let login = form(&token(&html), &[("email", &email), ("password", new_password)]);
        assert_eq!(jar.post(&server, "/login", &login).await.status(), StatusCode::SEE_OTHER);
        let resp = jar.post(&server, "/account/security/sessions", &form(&token(&html), &[])).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "the login form's token is not a session's");
        let (_, html) = jar.page(&server, "/account/security").await;
        let resp = jar.post(&server, "/account/security/sessions", &form(&token(&html), &[])).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        server.stop().await;
    }
}

trait StatusAndText {
    async fn status_and_text(self) -> (StatusCode, String);
}

impl StatusAndText for reqwest::Response {
    async fn status_and_text(self) -> (StatusCode, String) {
        (self.status(), self.text().await.unwrap())
    }
}
