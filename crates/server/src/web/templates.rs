//! The pages, rendered by askama from `crates/server/templates/` (HTML is
//! escaped by default). Every page works without JavaScript.

use askama::Template;
use poem::{http::StatusCode, Response};

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login<'a> {
    pub csrf_token: &'a str,
    pub return_to: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "signed_in.html")]
pub struct SignedIn<'a> {
    pub csrf_token: &'a str,
    pub who: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct Consent<'a> {
    pub csrf_token: &'a str,
    pub client_name: &'a str,
    pub verified: bool,
    pub redirect_host: &'a str,
    pub who: &'a str,
    pub scopes: Vec<(&'static str, &'static str)>,
    pub resources: Vec<String>,
    pub fields: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub code: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "done.html")]
pub struct Done<'a> {
    pub title: &'a str,
    pub message: &'a str,
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
            code,
        },
        status,
    )
}
