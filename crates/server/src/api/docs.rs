//! The live spec (`/openapi.json`, `/openapi.yaml`) and Swagger UI (`/docs`).
//!
//! Swagger UI's files are served as vendored by utoipa-swagger-ui, with
//! three changes of ours: the index page gets a viewport tag (readable on a
//! phone), the OAuth dialog ticks only the read scopes at first, and the
//! OAuth popup's landing page (`oauth2-redirect.html`) says what happened
//! when it cannot hand the result back to the docs page, instead of staying
//! blank.

use std::sync::Arc;

use poem::{
    handler,
    http::{header, StatusCode},
    web::Path,
    Endpoint, EndpointExt, IntoResponse, Response, Route,
};

use crate::scope::Scope;

/// The scopes "Authorize" ticks at first: reading only. The others stay
/// offered (they come from the spec's OAuth security scheme), one click away.
pub const PRESELECTED_SCOPES: [Scope; 3] =
    [Scope::MemoriesRead, Scope::ConnectionsRead, Scope::KeysRead];

const VIEWPORT: &str = r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#;

/// Where Swagger UI's OAuth popup lands. Loads Swagger UI's own
/// `oauth2-redirect.js` (which hands the result to the docs page and closes
/// the window, or puts the server's error into the Authorize dialog) and,
/// before it, our script, which explains in the page why the window stayed
/// open when the hand-over is impossible.
const OAUTH2_REDIRECT_HTML: &str = r#"<!doctype html>
<html lang="en-US">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API docs sign-in</title>
</head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em; line-height: 1.5">
<h1 id="title">Signing in to the API docs</h1>
<p id="error" hidden></p>
<p id="message">This window closes by itself once the sign-in is handed back to the API docs. If it stays open, close it, open <a href="./">the API docs</a> and press Authorize again.</p>
<script src="mcpgate-oauth2-redirect.js"></script>
<script src="oauth2-redirect.js"></script>
</body>
</html>
"#;

/// Runs before Swagger UI's `oauth2-redirect.js`.
const OAUTH2_REDIRECT_JS: &str = r#"// mcpgate: make the OAuth popup readable when Swagger UI cannot finish in it.
(function () {
  "use strict";
  // The authorization server form-encodes spaces as "+", which Swagger UI's
  // parser does not decode: rewrite them as "%20" (a literal "+" arrives as
  // "%2B" and is left alone).
  if (location.search.indexOf("+") >= 0) {
    history.replaceState(null, "", location.pathname + location.search.replace(/\+/g, "%20") + location.hash);
  }
  var raw = location.search.substring(1) || location.hash.substring(1);
  var params = new URLSearchParams(raw);
  var handover = null;
  try {
    handover = window.opener && window.opener.swaggerUIRedirectOauth2;
  } catch (e) {
    handover = null; // the opener is at another origin
  }
  var error = params.get("error");
  if (error) {
    var text = "The authorization server answered: " + error;
    var description = params.get("error_description");
    if (description) {
      text += ": " + description;
    }
    var el = document.getElementById("error");
    el.textContent = text;
    el.hidden = false;
    document.getElementById("title").textContent = "Sign-in did not complete";
  }
  if (!handover) {
    document.getElementById("title").textContent = error ? "Sign-in did not complete" : "Sign-in cannot be finished here";
    document.getElementById("message").innerHTML =
      "The API docs page that opened this window is gone (it was closed or reloaded, " +
      "or it was opened at another address than this window's), so the result cannot be " +
      "handed back to it. Close this window, open <a href=\"./\">the API docs</a> at this " +
      "address and press Authorize again.";
  }
})();
"#;

/// Swagger UI: its configuration and our version of the index page.
struct Ui {
    config: Arc<utoipa_swagger_ui::Config<'static>>,
    /// The index page with the viewport tag; `None` if the vendored bundle
    /// has none (then the stock page is served).
    index: Option<Vec<u8>>,
}

fn ui_config() -> utoipa_swagger_ui::Config<'static> {
    // "Authorize" offers the API key, a bearer credential, and OAuth
    // (authorization code + PKCE) against this server, as the public
    // client every server registers for its docs.
    utoipa_swagger_ui::Config::with_oauth_config(
        ["/openapi.json"],
        utoipa_swagger_ui::oauth::Config::new()
            .client_id(crate::service::oauth::clients::DOCS_CLIENT_ID)
            .app_name("mcpgate API docs")
            .use_pkce_with_authorization_code_grant(true)
            .scopes(
                PRESELECTED_SCOPES
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect(),
            ),
    )
    .persist_authorization(true)
    .display_operation_id(true)
    .try_it_out_enabled(true)
}

/// `index` with the viewport tag after its charset (or at the start of its
/// head); unchanged if it already has one or has no head.
fn with_viewport(index: &str) -> String {
    if index.contains(r#"name="viewport""#) {
        return index.to_owned();
    }
    let at = [
        "<meta charset=\"UTF-8\">",
        "<meta charset=\"utf-8\">",
        "<head>",
    ]
    .iter()
    .find_map(|marker| index.find(marker).map(|i| i + marker.len()));
    match at {
        Some(i) => format!("{}\n    {VIEWPORT}{}", &index[..i], &index[i..]),
        None => index.to_owned(),
    }
}

/// Add the routes serving the spec and Swagger UI to `route`. Public,
/// outside the spec itself.
pub fn routes(route: Route) -> Route {
    let yaml = Arc::new(super::spec_yaml());
    let json = Arc::new(super::spec_json());
    let config = Arc::new(ui_config());
    let index = match utoipa_swagger_ui::serve("index.html", config.clone()) {
        Ok(Some(file)) if !file.gzpipped => {
            Some(with_viewport(&String::from_utf8_lossy(&file.bytes)).into_bytes())
        }
        _ => None,
    };
    let ui = Arc::new(Ui { config, index });
    route
        .at("/openapi.yaml", spec_endpoint(yaml, "application/yaml"))
        .at("/openapi.json", spec_endpoint(json, "application/json"))
        .at("/docs", handler_redirect)
        .at("/docs/", swagger_index.data(ui.clone()))
        .at("/docs/*path", swagger_file.data(ui))
}

fn spec_endpoint(body: Arc<String>, content_type: &'static str) -> impl Endpoint {
    poem::endpoint::make_sync(move |_| {
        Response::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(body.as_str().to_owned())
    })
}

#[handler]
fn handler_redirect() -> Response {
    Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(header::LOCATION, "/docs/")
        .finish()
}

#[handler]
fn swagger_index(ui: poem::web::Data<&Arc<Ui>>) -> Response {
    serve("", &ui)
}

#[handler]
fn swagger_file(Path(path): Path<String>, ui: poem::web::Data<&Arc<Ui>>) -> Response {
    serve(&path, &ui)
}

fn serve(path: &str, ui: &Ui) -> Response {
    match (path, &ui.index) {
        ("" | "/" | "index.html", Some(index)) => {
            return Response::builder()
                .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
                .body(index.clone());
        }
        ("oauth2-redirect.html", _) => {
            return Response::builder()
                .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
                .body(OAUTH2_REDIRECT_HTML);
        }
        ("mcpgate-oauth2-redirect.js", _) => {
            return Response::builder()
                .header(header::CONTENT_TYPE, "text/javascript; charset=utf-8")
                .body(OAUTH2_REDIRECT_JS);
        }
        _ => {}
    }
    match utoipa_swagger_ui::serve(path, ui.config.clone()) {
        Ok(Some(file)) => {
            let mut resp = Response::builder()
                .header(header::CONTENT_TYPE, file.content_type)
                .body(file.bytes.to_vec());
            if file.gzpipped {
                resp.headers_mut().insert(
                    header::CONTENT_ENCODING,
                    poem::http::HeaderValue::from_static("gzip"),
                );
            }
            resp
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "swagger ui");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use poem::{Endpoint, Request};

    use super::*;

    async fn get(path: &str) -> (StatusCode, Option<String>, String) {
        let app = routes(Route::new());
        let resp = app
            .get_response(Request::builder().uri_str(path).finish())
            .await;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.into_body().into_string().await.unwrap();
        (status, content_type, body)
    }

    /// The JSON object passed to `ui.initOAuth(...)` in the initializer.
    fn init_oauth(initializer: &str) -> serde_json::Value {
        let start = initializer
            .find("ui.initOAuth(")
            .unwrap_or_else(|| panic!("no initOAuth in\n{initializer}"))
            + "ui.initOAuth(".len();
        let len = initializer[start..].find(");").unwrap();
        serde_json::from_str(&initializer[start..start + len]).unwrap()
    }

    #[tokio::test]
    async fn the_index_has_a_viewport_and_still_loads_swagger_ui() {
        for path in ["/docs/", "/docs/index.html"] {
            let (status, content_type, html) = get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(content_type.unwrap().starts_with("text/html"), "{path}");
            assert_eq!(html.matches(VIEWPORT).count(), 1, "{path}:\n{html}");
            let head = &html[..html.find("</head>").unwrap()];
            assert!(head.contains(VIEWPORT), "the viewport tag is in the head");
            for asset in [
                "./swagger-ui.css",
                "./swagger-ui-bundle.js",
                "./swagger-ui-standalone-preset.js",
                "./swagger-initializer.js",
                "id=\"swagger-ui\"",
            ] {
                assert!(html.contains(asset), "{path} lacks {asset}:\n{html}");
            }
        }
        for asset in [
            "/docs/swagger-ui.css",
            "/docs/swagger-ui-bundle.js",
            "/docs/swagger-ui-standalone-preset.js",
            "/docs/oauth2-redirect.js",
        ] {
            assert_eq!(get(asset).await.0, StatusCode::OK, "{asset}");
        }
        assert_eq!(get("/docs/nothing.js").await.0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_viewport_goes_in_once() {
        let stock = "<html>\n  <head>\n    <meta charset=\"UTF-8\">\n    <title>x</title>\n  </head></html>";
        let once = with_viewport(stock);
        assert_eq!(
            once,
            format!("<html>\n  <head>\n    <meta charset=\"UTF-8\">\n    {VIEWPORT}\n    <title>x</title>\n  </head></html>")
        );
        assert_eq!(with_viewport(&once), once);
        assert_eq!(
            with_viewport("<head><title>x</title>"),
            format!("<head>\n    {VIEWPORT}<title>x</title>")
        );
    }

    #[tokio::test]
    async fn authorize_preselects_only_the_read_scopes() {
        let (status, _, js) = get("/docs/swagger-initializer.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(js.contains("\"/openapi.json\""), "{js}");
        let oauth = init_oauth(&js);
        assert_eq!(
            oauth["scopes"],
            serde_json::json!(["memories:read", "connections:read", "keys:read"]),
            "{js}"
        );
        assert_eq!(
            oauth["clientId"],
            crate::service::oauth::clients::DOCS_CLIENT_ID
        );
        assert_eq!(oauth["usePkceWithAuthorizationCodeGrant"], true);
        // Every scope stays selectable: the spec's OAuth scheme offers all.
        let spec: serde_json::Value = serde_json::from_str(&crate::api::spec_json()).unwrap();
        let offered = spec["components"]["securitySchemes"]["OAuth"]["flows"]["authorizationCode"]
            ["scopes"]
            .as_object()
            .unwrap();
        for scope in Scope::ALL {
            assert!(offered.contains_key(scope.as_str()), "{}", scope.as_str());
        }
    }

    #[tokio::test]
    async fn the_oauth_popup_explains_itself_when_it_cannot_finish() {
        let (status, content_type, html) = get("/docs/oauth2-redirect.html").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.unwrap().starts_with("text/html"));
        assert!(html.contains(VIEWPORT));
        // Readable without any script, and Swagger UI's hand-over still runs,
        // after ours.
        assert!(html.contains("press Authorize again"), "{html}");
        let ours = html.find("src=\"mcpgate-oauth2-redirect.js\"").unwrap();
        let stock = html.find("src=\"oauth2-redirect.js\"").unwrap();
        assert!(ours < stock, "our script runs first");
        let (status, content_type, js) = get("/docs/mcpgate-oauth2-redirect.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.unwrap().starts_with("text/javascript"));
        for needle in [
            "swaggerUIRedirectOauth2",
            "error_description",
            "textContent",
        ] {
            assert!(js.contains(needle), "{needle}");
        }
        // The stock script the page relies on hands over through the same
        // global and closes the window.
        let (_, _, stock_js) = get("/docs/oauth2-redirect.js").await;
        assert!(stock_js.contains("window.opener.swaggerUIRedirectOauth2"));
        assert!(stock_js.contains("window.close()"));
    }
}
