//! The browser and OAuth-protocol side of the server: web login and consent
//! pages, the OAuth endpoints and the discovery documents.
//!
//! These are not REST operations: their bodies are forms and their errors
//! follow RFC 6749 (`{"error", "error_description"}`), so they live outside
//! the OpenAPI spec, beside it. Handlers stay thin: parse, call one service
//! function, render.

// A page that cannot go on *is* the error value here (`Result<_, Response>`):
// boxing every such response would buy nothing on a path that renders HTML.
#![allow(clippy::result_large_err)]

mod connect;
mod console;
mod discovery;
mod forms;
mod oauth;
mod pages;
mod params;
mod templates;

use poem::{
    http::{header, HeaderValue, StatusCode},
    Response, Route,
};

use crate::{
    http::allow::{get, post, Methods},
    state::AppState,
};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "mcpgate_session";
/// Name of the CSRF cookie.
pub const CSRF_COOKIE: &str = "mcpgate_csrf";

/// Add the pages, OAuth endpoints and discovery documents to `route`.
pub fn routes(route: Route) -> Route {
    console::routes(route)
        .at("/login", get(pages::login_page).post(pages::login_submit))
        .at("/logout", post(pages::logout))
        .at(
            "/oauth/authorize",
            get(pages::authorize).post(pages::authorize_decision),
        )
        .at("/oauth/token", post(oauth::token))
        .at("/oauth/revoke", post(oauth::revoke))
        .at("/oauth/introspect", post(oauth::introspect))
        .at("/oauth/register", post(oauth::register))
        .at("/api/v1/connect/:provider/callback", get(connect::callback))
        .at("/assets/mcpgate.css", get(stylesheet))
        .at("/assets/console.js", get(script))
        .at("/favicon.svg", get(favicon))
        .at("/favicon.ico", get(favicon))
}

/// The page a browser sees for an error the framework produced (an unknown
/// path, a wrong method, a form from a foreign or hidden origin).
pub fn plain_error_page(status: StatusCode, code: &str) -> Response {
    let (title, message) = match status {
        StatusCode::NOT_FOUND => (
            "Page not found",
            "There is nothing at this address. Check the link, or start again from the home page.",
        ),
        StatusCode::FORBIDDEN => (
            "Request refused",
            "This form was sent from another site, or from a page that hid where it came from, so it was not accepted. Open the page from this server and try again.",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Not available here",
            "This address does not accept that kind of request. Start again from the home page.",
        ),
        s if s.is_server_error() => (
            "Something went wrong",
            "An unexpected error occurred; it has been logged. Try again shortly.",
        ),
        _ => (
            "Request not understood",
            "The request could not be processed. Start again from the home page.",
        ),
    };
    templates::message(status, title, message, Some(code))
}

/// The page a browser sees for a request target the server refuses to read
/// (a NUL character in the path or the query): 400 with the sentence.
pub fn bad_input_page(message: &str) -> Response {
    templates::message(
        StatusCode::BAD_REQUEST,
        "Request not understood",
        &format!("This address cannot be read: {message}. Check the link, or start again from the home page."),
        Some("validation_failed"),
    )
}

#[poem::handler]
fn script() -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(include_str!("../../templates/console.js"))
}

#[poem::handler]
fn favicon() -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "image/svg+xml")
        .header(header::CACHE_CONTROL, "public, max-age=86400")
        .body(include_str!("../../templates/favicon.svg"))
}

pub use console::home;

/// The discovery documents, to nest at `/.well-known`. Public and readable
/// from any origin (browser-based MCP clients fetch them first), so they sit
/// outside the CORS policy of the rest and answer their own preflight.
pub fn well_known() -> Route {
    fn doc(h: impl poem::Endpoint + 'static) -> Methods {
        get(h).options(discovery::preflight)
    }
    Route::new()
        .at(
            "/oauth-authorization-server",
            doc(discovery::authorization_server),
        )
        .at(
            "/openid-configuration",
            doc(discovery::authorization_server),
        )
        .at(
            "/oauth-protected-resource",
            doc(discovery::protected_resource_root),
        )
        .at(
            "/oauth-protected-resource/mcp",
            doc(discovery::protected_resource_mcp),
        )
        .at(
            "/oauth-protected-resource/api",
            doc(discovery::protected_resource_api),
        )
        .at("/jwks.json", doc(discovery::jwks))
}

#[poem::handler]
fn stylesheet() -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(include_str!("../../templates/mcpgate.css"))
}

/// The value of cookie `name` in a request.
pub fn cookie<'a>(req: &'a poem::Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure on https.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

/// Headers every page carries: a strict CSP, no framing, no caching, and a
/// referrer only toward this server itself.
///
/// `Referrer-Policy: same-origin` (not `no-referrer`): under `no-referrer`
/// Chromium sends `Origin: null` on every form post, which the origin check
/// must refuse. `same-origin` keeps full URLs (which can carry OAuth `state`)
/// from ever reaching another site while letting the browser name our own
/// origin on our own forms. See docs/console.md.
pub fn page_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// A 303 redirect.
pub fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .finish()
}
