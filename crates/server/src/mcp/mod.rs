//! `/mcp`: the memory tools over MCP Streamable HTTP, served by the official
//! SDK (`rmcp`) in stateless mode with JSON responses, so any replica answers
//! any request.
//!
//! A gate runs before any MCP processing: the `Origin` check (DNS-rebinding
//! protection), then the credential — an API key (Bearer or `X-API-Key`) or
//! an OAuth access token whose audience is `<public url>/mcp` — then the
//! per-credential rate limit, and a JSON parse of the body so a malformed
//! message is a 400 that never reaches a tool. There is no fallback
//! credential of any kind. CORS preflight is answered by the CORS middleware
//! outside, before the gate.

mod tools;

use std::sync::Arc;

use poem::{
    endpoint::TowerCompatExt,
    http::{header, HeaderValue, Method, StatusCode},
    Body, Endpoint, EndpointExt, IntoResponse, Request, Response,
};
use rmcp::transport::streamable_http_server::{
    session::never::NeverSessionManager, StreamableHttpServerConfig, StreamableHttpService,
};

pub use tools::required_scope;

use crate::{
    api::{auth::authenticate_request, error::ErrorBody},
    error::{CredentialProblem, Error},
    scope::Scope,
    service::oauth::Resource,
    state::AppState,
};

/// The scopes the MCP tools use, as advertised in challenges.
const MCP_SCOPES: &str = "memories:read memories:write connections:read";

/// The `/mcp` endpoint for `state`.
pub fn endpoint(state: &AppState) -> impl Endpoint<Output = Response> {
    let tools = tools::MemoryTools::new(state.clone());
    let host = url::Url::parse(&state.config.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".into());
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(state.config.max_body_bytes)
        .with_allowed_hosts([host, "localhost".into(), "127.0.0.1".into(), "::1".into()]);
    let service = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    service.compat().map_to_response().around(gate)
}

/// The challenge of a 401 or 403 from `/mcp` (RFC 6750, RFC 9728).
fn challenge(state: &AppState, error: Option<&str>) -> String {
    let mut c = format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"{MCP_SCOPES}\"",
        state.config.public_url
    );
    if let Some(e) = error {
        c.push_str(&format!(", error=\"{e}\""));
    }
    c
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::to_vec(&ErrorBody::new(code, message)).unwrap_or_default();
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body)
}

fn unauthorized(state: &AppState, e: &Error) -> Response {
    let (code, message, invalid) = match e {
        Error::MissingCredentials => (
            "missing_credentials",
            "Send an API key (`Authorization: Bearer <key>` or `X-API-Key`) or an OAuth access token for this server's /mcp resource; discover the authorization server from the resource_metadata URL in WWW-Authenticate.",
            false,
        ),
        Error::InvalidAccessToken(CredentialProblem::WrongAudience) => (
            "invalid_audience",
            "The access token was issued for another resource: request one with resource=<public url>/mcp.",
            true,
        ),
        Error::InvalidAccessToken(CredentialProblem::Expired) => ("token_expired", "The access token has expired: refresh it.", true),
        Error::InvalidAccessToken(CredentialProblem::Revoked) => ("token_revoked", "The access token has been revoked.", true),
        Error::InvalidAccessToken(_) => ("invalid_token", "The access token is not valid.", true),
        Error::InvalidCredentials(CredentialProblem::Revoked) => ("api_key_revoked", "The API key has been revoked.", true),
        Error::InvalidCredentials(CredentialProblem::Expired) => ("api_key_expired", "The API key has expired.", true),
        _ => ("invalid_api_key", "The credential is not valid.", true),
    };
    let mut resp = json_error(StatusCode::UNAUTHORIZED, code, message);
    if let Ok(v) = HeaderValue::from_str(&challenge(state, invalid.then_some("invalid_token"))) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// True when `origin` may call `/mcp` from a browser: this server's own
/// origin or a configured CORS origin.
fn origin_allowed(state: &AppState, origin: &str) -> bool {
    let own = url::Url::parse(&state.config.public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    origin == own
        || state
            .config
            .cors_allowed_origins
            .iter()
            .any(|o| o == origin)
}

async fn gate<E: Endpoint<Output = Response>>(
    next: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    let Some(state) = req.data::<AppState>().cloned() else {
        return Ok(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "application state missing",
        ));
    };
    let mut resp = gated(&state, next, &mut req).await;
    resp.set_data(poem_openapi::OperationId("mcp"));
    Ok(resp)
}

async fn gated<E: Endpoint<Output = Response>>(
    state: &AppState,
    next: Arc<E>,
    req: &mut Request,
) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(state, origin) {
            return json_error(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                "Requests from this Origin are not accepted (DNS-rebinding protection); add it to cors_allowed_origins to allow it.",
            );
        }
    }
    let principal = match authenticate_request(state, req, Resource::Mcp).await {
        Ok(p) => p,
        Err(
            e @ (Error::MissingCredentials
            | Error::InvalidCredentials(_)
            | Error::InvalidAccessToken(_)),
        ) => return unauthorized(state, &e),
        Err(e) => return crate::api::error::ApiError::from(e).into_response(),
    };
    if ![Scope::MemoriesRead, Scope::MemoriesWrite]
        .iter()
        .any(|s| principal.credential.scopes.contains(*s))
    {
        let mut resp = json_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "This credential holds none of the scopes the MCP tools need (memories:read, memories:write, connections:read).",
        );
        if let Ok(v) = HeaderValue::from_str(&challenge(state, Some("insufficient_scope"))) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return resp;
    }
    // A message that is not JSON never reaches the SDK: 400 with a JSON-RPC
    // parse error, as MCP clients expect.
    if req.method() == Method::POST {
        let body = req.take_body();
        let bytes = match body.into_bytes_limit(state.config.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => {
                return json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "The message exceeds max_body_bytes.",
                )
            }
        };
        let message = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(m) => m,
            Err(_) => {
                let body = serde_json::json!({
                    "jsonrpc": "2.0",
                    "id": null,
                    "error": { "code": -32700, "message": "Parse error: the body is not valid JSON" },
                });
                return Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .content_type("application/json")
                    .body(body.to_string());
            }
        };
        // Text is text: a NUL character in any string (a tool argument
        // above all) never reaches a tool, as in a REST body.
        if let Some(field) = crate::api::body::nul_path(&message) {
            let code = if field.starts_with("params") {
                -32602
            } else {
                -32600
            };
            let body = serde_json::json!({
                "jsonrpc": "2.0",
                "id": message.get("id").cloned().unwrap_or(serde_json::Value::Null),
                "error": {
                    "code": code,
                    "message": format!("{field} must not contain a NUL character"),
                    "data": { "field": field },
                },
            });
            return Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .content_type("application/json")
                .body(body.to_string());
        }
        req.set_body(Body::from(bytes));
    }
    req.extensions_mut().insert(principal);
    match next.call(std::mem::take(req)).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}
