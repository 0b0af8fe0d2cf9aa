//! Browser tests: headless Chromium through the pages a person uses, one
//! submodule per area (see `mcpgate_e2e::browser` for the harness). Each
//! test runs on SQLite and on Postgres, and is skipped without a browser
//! (a failure under `CI=true`).

mod auth;
mod console;
mod swagger;

pub use mcpgate_e2e::{
    browser::{query_param, Browser, Callback},
    browser_e2e,
    oauth::{http, Pkce, TestClient, TestUser},
    remember_secret,
};

use super::*;

/// The login form's submit button.
pub const SIGN_IN: &str = r#"form[action="/login"] button[type=submit]"#;
/// The sign-out button of a signed-in page.
pub const SIGN_OUT: &str = r#"form[action="/logout"] button"#;

/// Fill the login form the browser shows with `user`'s credentials and
/// submit it.
pub async fn sign_in(b: &Browser, user: &TestUser) {
    b.fill("#email", &user.email).await;
    b.fill("#password", &user.password).await;
    b.click(SIGN_IN).await;
}

/// Sign `user` in from the login page; the browser ends on `/`.
pub async fn signed_in(b: &Browser, server: &TestServer, user: &TestUser) {
    b.goto(&format!("{}/login", server.url)).await;
    sign_in(b, user).await;
    b.wait_for(SIGN_OUT).await;
}

/// A public client of `server` redirecting to `callback`.
pub async fn client_for(server: &TestServer, callback: &Callback) -> TestClient {
    server
        .register_client(callback.redirect_uri(), "none")
        .await
}
