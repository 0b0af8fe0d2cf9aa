//! The live spec (`/openapi.json`, `/openapi.yaml`) and Swagger UI (`/docs`).

use std::sync::Arc;

use poem::{
    handler,
    http::{header, StatusCode},
    web::Path,
    Endpoint, EndpointExt, IntoResponse, Response, Route,
};

/// Add the routes serving the spec and Swagger UI to `route`. Public,
/// outside the spec itself.
pub fn routes(route: Route) -> Route {
    let yaml = Arc::new(super::spec_yaml());
    let json = Arc::new(super::spec_json());
    let ui = Arc::new(
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
                    crate::scope::Scope::ALL
                        .iter()
                        .map(|s| s.as_str().to_owned())
                        .collect(),
                ),
        )
        .persist_authorization(true)
        .display_operation_id(true)
        .try_it_out_enabled(true),
    );
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
fn swagger_index(config: poem::web::Data<&Arc<utoipa_swagger_ui::Config<'static>>>) -> Response {
    serve("", config.0.clone())
}

#[handler]
fn swagger_file(
    Path(path): Path<String>,
    config: poem::web::Data<&Arc<utoipa_swagger_ui::Config<'static>>>,
) -> Response {
    serve(&path, config.0.clone())
}

fn serve(path: &str, config: Arc<utoipa_swagger_ui::Config<'static>>) -> Response {
    match utoipa_swagger_ui::serve(path, config) {
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
