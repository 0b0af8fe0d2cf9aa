//! The pages, rendered by askama from `crates/server/templates/` (HTML is
//! escaped by default). Every page works without JavaScript; the one script
//! (`/assets/console.js`, copy buttons) only adds to it.

use askama::Template;
use poem::{http::StatusCode, Response};

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login<'a> {
    pub csrf_token: &'a str,
    pub return_to: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
    /// The application an authorization waiting behind this login belongs to.
    pub app: Option<String>,
    /// Where to create an account, when registration is open.
    pub signup_link: Option<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct Consent<'a> {
    pub csrf_token: &'a str,
    pub client_name: &'a str,
    pub client_uri: Option<&'a str>,
    pub verified: bool,
    pub redirect_host: &'a str,
    pub who: &'a str,
    pub scopes: Vec<(&'static str, &'static str)>,
    pub resources: Vec<&'static str>,
    pub fields: Vec<(&'static str, String)>,
    /// This authorization again, for "Switch account".
    pub switch_return_to: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub detail: Option<&'a str>,
    pub code: Option<&'a str>,
    /// Where "Continue" leads, and its words.
    pub next: Option<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "done.html")]
pub struct Done<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// The console's navigation: who is signed in, which section is open, and
/// the token of the sign-out form.
pub struct Nav {
    pub csrf_token: String,
    pub who: String,
    pub section: &'static str,
}

/// Render a page with `status` and the page headers.
pub fn render(t: &impl Template, status: StatusCode) -> Response {
    let resp = match t.render() {
        Ok(html) => Response::builder()
            .status(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/plain; charset=utf-8")
                .body("An unexpected error occurred.")
        }
    };
    super::page_headers(resp)
}

/// An error page.
pub fn message(status: StatusCode, title: &str, message: &str, code: Option<&str>) -> Response {
    render(
        &Message {
            title,
            message,
            detail: None,
            code,
            next: None,
        },
        status,
    )
}

/// An error page with a second, more technical sentence.
pub fn message_with_detail(
    status: StatusCode,
    title: &str,
    message: &str,
    detail: &str,
    code: Option<&str>,
) -> Response {
    render(
        &Message {
            title,
            message,
            detail: Some(detail),
            code,
            next: None,
        },
        status,
    )
}

/// An error page whose way on is a given link (e.g. back to the console).
pub fn message_with_next(
    status: StatusCode,
    title: &str,
    message: &str,
    code: Option<&str>,
    next: (&str, &str),
) -> Response {
    render(
        &Message {
            title,
            message,
            detail: None,
            code,
            next: Some(next),
        },
        status,
    )
}
