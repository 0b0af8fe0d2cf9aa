//! The HTTP application: routes plus the middleware every request passes.
//!
//! Order, outermost first: `observe` (request id, access log line,
//! `X-Request-Id` header), then `envelope` (any error that is not already one
//! of our JSON bodies — unknown route, wrong method, a framework parse error —
//! becomes one), CORS, the per-IP limit, `refuse_nul` (a NUL character in the
//! path or a REST query), then the routes.

pub mod allow;
pub mod forwarded;

use std::{sync::Arc, time::Instant};

use poem::{
    http::{header, HeaderValue, StatusCode},
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route,
};
use poem_openapi::payload::Json;

use crate::{
    api::{
        self,
        error::{ApiError, ErrorBody},
    },
    context::{self, RequestContext},
    state::AppState,
};

/// Header carrying the request id on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Build the whole application around `state`.
pub fn app(state: AppState) -> impl Endpoint<Output = Response> {
    let cors = cors(&state.config.public_url, &state.config.cors_allowed_origins);
    let mut routes = crate::web::routes(api::docs::routes(Route::new()));
    if state.config.metrics_enabled {
        routes = routes.at("/metrics", metrics);
    }
    let routes = routes
        .nest("/mcp", crate::mcp::endpoint(&state))
        .nest(
            "/",
            HomeOr {
                home: crate::web::home(),
                rest: poem::IntoEndpoint::into_endpoint(api::api_service()),
            },
        )
        .around(envelope)
        .around(refuse_nul)
        .around(limit_ip)
        .with(cors)
        .around(envelope);
    Route::new()
        .nest(
            "/.well-known",
            crate::web::well_known().around(envelope).around(limit_ip),
        )
        .nest("/", routes)
        .around(observe)
        .data(state)
}

/// `/` is the home page; everything else under the root nest is the API.
/// (A route at `/` beside a nest at `/` never matches: the nest's catch-all
/// takes the empty rest.)
struct HomeOr<H, R> {
    home: H,
    rest: R,
}

impl<H: Endpoint, R: Endpoint> Endpoint for HomeOr<H, R> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if req.uri().path() == "/" {
            self.home.call(req).await.map(IntoResponse::into_response)
        } else {
            self.rest.call(req).await.map(IntoResponse::into_response)
        }
    }
}

/// CORS for this server's own origin (its pages and Swagger UI post
/// same-origin, which browsers still mark with `Origin`) and the configured
/// origins (none by default). A request from any other origin is refused
/// with 403; preflight requests are answered here, before any route or
/// authentication runs.
fn cors(public_url: &str, origins: &[String]) -> poem::middleware::Cors {
    let cors = poem::middleware::Cors::new()
        .allow_methods(["GET", "POST", "PATCH", "PUT", "DELETE"])
        .allow_headers([
            "authorization",
            "content-type",
            "x-api-key",
            "if-match",
            "x-request-id",
            "idempotency-key",
            "mcp-protocol-version",
            "mcp-session-id",
            "last-event-id",
        ])
        .expose_headers([
            "etag",
            "x-request-id",
            "retry-after",
            "www-authenticate",
            "mcp-session-id",
            "mcp-protocol-version",
        ])
        .max_age(600);
    let own = url::Url::parse(public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let mut allowed: Vec<String> = origins.to_vec();
    allowed.push(own);
    cors.allow_origins_fn(move |origin| allowed.iter().any(|o| o == origin))
}

/// The client's IP: the TCP peer, or the client a trusted proxy names
/// (`trusted_proxies`, see [`forwarded`]); resolved once per request by
/// `observe`.
pub fn client_ip(req: &Request) -> Option<std::net::IpAddr> {
    match req.extensions().get::<forwarded::ClientIp>() {
        Some(ip) => ip.0,
        None => req.remote_addr().as_socket_addr().map(|a| a.ip()),
    }
}

/// The per-IP limit on every request.
async fn limit_ip<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    if let (Some(state), Some(ip)) = (req.data::<AppState>(), client_ip(&req)) {
        let per_minute = state.config.rate_limit_ip_per_minute;
        if let Err(e) = crate::service::rate_limit::enforce(
            state,
            crate::service::rate_limit::LimitKind::ClientIp,
            &ip.to_string(),
            per_minute,
        ) {
            return Ok(ApiError::from(e).into_response());
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// Text is text: a NUL character in the decoded path (sent as `%00`; a raw
/// one never gets this far) answers 400 `validation_failed` naming `path`,
/// and one in the query of a REST operation (`/api/…`) 400 naming the
/// parameter, before any route parses either (Postgres cannot hold a NUL in
/// `text`). Form fields and the pages' queries are checked by
/// `web::params`, JSON bodies by `api::body`.
async fn refuse_nul<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    if let Some(field) = nul_in_target(req.uri()) {
        let message = format!("{field} must not contain a NUL character");
        return Ok(if wants_html(&req) {
            crate::web::bad_input_page(&message)
        } else {
            ApiError::bad_request("validation_failed", message, Some(field)).into_response()
        });
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// The part of the request target holding a NUL character: `path`, or the
/// name of a query parameter of the REST API (shown escaped, shortened).
fn nul_in_target(uri: &poem::http::Uri) -> Option<String> {
    // Decoding happens once, so `%00` is exactly how a decoded path gets a
    // NUL (`%2500` decodes to the text `%00`).
    if uri.path().contains("%00") {
        return Some("path".into());
    }
    if !uri.path().starts_with("/api/") {
        return None;
    }
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| {
            k.chars()
                .take(60)
                .collect::<String>()
                .escape_debug()
                .to_string()
        })
}

async fn observe<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let request_id: Arc<str> = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| context::accept_incoming(v))
        .map(str::to_owned)
        .unwrap_or_else(context::new_request_id)
        .into();
    let state = req.data::<AppState>().cloned();
    let ip = forwarded::resolve(
        req.remote_addr().as_socket_addr().map(|a| a.ip()),
        req.headers(),
        state
            .as_ref()
            .map_or(&[][..], |s| &s.config.trusted_proxy_nets),
    );
    req.extensions_mut().insert(forwarded::ClientIp(ip));
    let ctx = Arc::new(RequestContext::default());
    req.extensions_mut().insert(ctx.clone());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let origin = Arc::new(context::Origin {
        ip: ip.map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    });
    let mut resp = context::scope_request(request_id.clone(), origin, async move {
        next.get_response(req).await
    })
    .await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let headers = resp.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // API responses can carry secrets (a new key is shown once): never cache them.
    if path.starts_with("/api/") && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // RFC 9728 §5.1: a 401 from the API names where to discover how to get a token.
    if let (Some(state), true) = (state.as_ref(), resp.status() == StatusCode::UNAUTHORIZED) {
        if path.starts_with("/api/") {
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.starts_with("Bearer"))
                .map(str::to_owned);
            if let Some(challenge) = challenge {
                let with_metadata = format!(
                    "{challenge}, resource_metadata=\"{}/.well-known/oauth-protected-resource/api\"",
                    state.config.public_url
                );
                if let Ok(v) = HeaderValue::from_str(&with_metadata) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
        }
    }
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    let latency_ms = (elapsed.as_secs_f64() * 100_000.0).round() / 100.0;
    let operation = resp
        .data::<poem_openapi::OperationId>()
        .map(|op| op.0)
        .unwrap_or("other");
    if let Some(state) = state.as_ref() {
        state
            .metrics
            .request(operation, method.as_str(), status, elapsed);
    }
    let caller = ctx.caller();
    tracing::info!(
        target: "mcpgate::access",
        request_id = %request_id,
        method = %method,
        path = %path,
        operation,
        status,
        latency_ms,
        user_id = caller.map(|c| c.user_id.to_string()).unwrap_or_default(),
        credential_id = caller.map(|c| c.credential_id.as_str()).unwrap_or_default(),
        "request"
    );
    Ok(resp)
}

async fn envelope<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    let html = wants_html(&req);
    let origin = req.headers().get(header::ORIGIN).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(200)
            .collect::<String>()
    });
    let origin = origin.as_deref();
    let path = req.uri().path().to_owned();
    let mut resp = match next.call(req).await {
        Ok(resp) => wrap_plain_error(resp.into_response(), html, origin),
        Err(err) => {
            let operation = err.data::<poem_openapi::OperationId>().copied();
            let mut resp = wrap_plain_error(error_response(err), html, origin);
            if let Some(op) = operation {
                resp.set_data(op);
            }
            resp
        }
    };
    // A REST operation's 405 comes from poem-openapi's router, which does
    // not say what is allowed; the spec does.
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && !resp.headers().contains_key(header::ALLOW)
    {
        if let Some(v) = allow::for_api_path(&path).and_then(|a| HeaderValue::from_str(&a).ok()) {
            resp.headers_mut().insert(header::ALLOW, v);
        }
    }
    Ok(resp)
}

/// `/metrics`, when enabled.
#[poem::handler]
fn metrics(state: poem::web::Data<&AppState>) -> Response {
    let pool = crate::db::pool_stats(&state.db);
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(state.metrics.render(pool))
}

/// Query parameters are the one input the framework parses before a handler
/// (bodies go through `JsonBody`, which answers with our errors itself): name
/// the parameter at fault. Anything else keeps its own response.
fn error_response(err: poem::Error) -> Response {
    match err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        Some(e) => {
            ApiError::bad_request("validation_failed", e.to_string(), Some(e.name.to_string()))
                .into_response()
        }
        None => err.into_response(),
    }
}

/// A browser navigating (it lists `text/html` in `Accept`; API clients,
/// fetch calls and curl do not) is shown pages, not JSON.
fn wants_html(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Responses with an error status that are not JSON (framework defaults such
/// as 404 for an unknown route or 405) get the standard JSON body, or for a
/// browser (`html`) an error page with a way home.
fn wrap_plain_error(resp: Response, html: bool, origin: Option<&str>) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    // Our JSON bodies and our HTML pages (login, consent, errors that must
    // not redirect) are already what the caller should see.
    let ours = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if ours {
        return resp;
    }
    let refused_origin;
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "No such route."),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This route does not accept that method.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large."),
        // The one plain 403: the CORS policy refusing a foreign Origin.
        StatusCode::FORBIDDEN => {
            refused_origin = format!(
                "The Origin header {:?} is not accepted (CORS); the operator can add it to cors_allowed_origins.",
                origin.unwrap_or_default()
            );
            ("forbidden_origin", refused_origin.as_str())
        }
        StatusCode::UNAUTHORIZED => ("missing_credentials", "Authentication is required."),
        s if s.is_server_error() => ("internal_error", "An unexpected error occurred."),
        _ => ("bad_request", "The request could not be processed."),
    };
    let mut out = if html {
        crate::web::plain_error_page(status, code)
    } else {
        Json(ErrorBody::new(code, message)).into_response()
    };
    out.set_status(status);
    for (name, value) in resp.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
