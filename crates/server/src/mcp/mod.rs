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

pub use tools::{required_scope, tool_scopes};

use crate::{
    api::{auth::authenticate_request, error::ErrorBody},
    error::Error,
    service::oauth::Resource,
    state::AppState,
};

/// The scopes the MCP tools use, as advertised in challenges.
fn mcp_scopes() -> String {
    tool_scopes()
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `/mcp` endpoint for `state`.
pub fn endpoint(state: &AppState) -> impl Endpoint<Output = Response> {
    let tools = tools::MemoryTools::new(state.clone());
    // The Host check (DNS-rebinding protection) is the gate's, with an
    // answer that names the header and the setting; the SDK's is off.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(state.config.max_body_bytes)
        .disable_allowed_hosts();
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
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"{}\"",
        state.config.public_url,
        mcp_scopes()
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

/// A 401 from `/mcp`: the error's public rendering, with the challenge
/// that names this resource's metadata (`error="invalid_token"` unless no
/// credential was sent at all, RFC 6750 §3.1).
fn unauthorized(state: &AppState, e: &Error) -> Response {
    let public = e.public();
    let missing = matches!(e, Error::MissingCredentials);
    let message = if missing {
        format!(
            "{} For this server's /mcp resource, discover the authorization server from the resource_metadata URL in WWW-Authenticate.",
            public.message
        )
    } else {
        public.message
    };
    let mut resp = json_error(StatusCode::UNAUTHORIZED, public.code, &message);
    if let Ok(v) = HeaderValue::from_str(&challenge(state, (!missing).then_some("invalid_token"))) {
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

/// The host part of `authority` (`name`, `name:port`, `[v6]:port`),
/// lowercase, and its port.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let a = authority.parse::<poem::http::uri::Authority>().ok()?;
    let host = a.host().trim_matches(['[', ']']).to_ascii_lowercase();
    Some((host, a.port_u16()))
}

/// True when `/mcp` answers to `Host`: the public URL's host, the address
/// the connection came in on (the listen address, also when it is
/// 0.0.0.0), loopback names, and `allowed_hosts` (`name` any port,
/// `name:port` that port).
fn host_allowed(state: &AppState, req: &Request, host: &str) -> bool {
    let Some((name, port)) = split_authority(host) else {
        return false;
    };
    let public = url::Url::parse(&state.config.public_url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
        });
    let local = req
        .local_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_string());
    public.as_deref() == Some(name.as_str())
        || local.as_deref() == Some(name.as_str())
        || state.config.listen.ip().to_string() == name
        || matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1")
        || state.config.allowed_hosts.iter().any(|allowed| {
            split_authority(allowed).is_some_and(|(n, p)| n == name && (p.is_none() || p == port))
        })
}

/// 400 with a JSON-RPC error object (`id` when the message had one).
fn jsonrpc_error(
    id: serde_json::Value,
    code: i64,
    message: String,
    data: Option<serde_json::Value>,
) -> Response {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(d) = data {
        error["data"] = d;
    }
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": error });
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .content_type("application/json")
        .body(body.to_string())
}

/// What is wrong with a parsed message that is not one JSON-RPC 2.0 message.
fn not_jsonrpc(message: &serde_json::Value) -> Option<&'static str> {
    let Some(obj) = message.as_object() else {
        return Some(if message.is_array() {
            "Invalid Request: JSON-RPC batches are not supported (MCP removed batching in 2025-06-18); send one message per request"
        } else {
            "Invalid Request: a message must be a JSON-RPC 2.0 object"
        });
    };
    if obj.get("jsonrpc").and_then(|v| v.as_str()) != Some("2.0") {
        return Some("Invalid Request: \"jsonrpc\" must be \"2.0\"");
    }
    match obj.get("method") {
        Some(m) if !m.is_string() => Some("Invalid Request: \"method\" must be a string"),
        Some(_) => None,
        None if obj.contains_key("result") || obj.contains_key("error") => None,
        None => Some(
            "Invalid Request: a message needs a \"method\" (a request or notification) or a \"result\" or \"error\" (a response)",
        ),
    }
}

async fn gated<E: Endpoint<Output = Response>>(
    state: &AppState,
    next: Arc<E>,
    req: &mut Request,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("").to_owned())
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if host_allowed(state, req, &host) => {}
        Some(host) => {
            let name = split_authority(&host).map_or(host.clone(), |(n, _)| n);
            return json_error(
                StatusCode::FORBIDDEN,
                "forbidden_host",
                &format!(
                    "The Host header {host:?} is not a name this server answers /mcp for (DNS-rebinding protection). Behind a reverse proxy, forward the public host (nginx: proxy_set_header Host $host) or add {name:?} to allowed_hosts."
                ),
            );
        }
        None => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The request has no Host header.",
            )
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(state, origin) {
            return json_error(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                &format!("The Origin header {origin:?} is not accepted (DNS-rebinding protection); add it to cors_allowed_origins to allow it."),
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
    if !tool_scopes()
        .iter()
        .any(|s| principal.credential.scopes.contains(*s))
    {
        let mut resp = json_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            &format!(
                "This credential holds none of the scopes the MCP tools need ({}).",
                mcp_scopes().replace(' ', ", ")
            ),
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
                return jsonrpc_error(
                    serde_json::Value::Null,
                    -32700,
                    "Parse error: the body is not valid JSON".into(),
                    None,
                )
            }
        };
        if let Some(problem) = not_jsonrpc(&message) {
            let id = message
                .get("id")
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            return jsonrpc_error(id, -32600, problem.into(), None);
        }
        // Text is text: a NUL character in any string (a tool argument
        // above all) never reaches a tool, as in a REST body.
        if let Some(field) = crate::api::body::nul_path(&message) {
            let code = if field.starts_with("params") {
                -32602
            } else {
                -32600
            };
            return jsonrpc_error(
                message
                    .get("id")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
                code,
                format!("{field} must not contain a NUL character"),
                Some(serde_json::json!({ "field": field })),
            );
        }
        req.set_body(Body::from(bytes));
    }
    req.extensions_mut().insert(principal);
    let resp = match next.call(std::mem::take(req)).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    keep_the_reason(resp).await
}

/// The SDK answers transport errors (a wrong `Accept`, an unknown
/// `MCP-Protocol-Version`, a wrong `Content-Type`) in plain text; give them
/// the standard JSON body, keeping the SDK's sentence as the message, so the
/// reason is never lost to a generic one.
async fn keep_the_reason(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    if !status.is_client_error() || is_json {
        return resp;
    }
    let headers = resp.headers().clone();
    let text = resp
        .into_body()
        .into_bytes_limit(4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, message) = match status {
        StatusCode::NOT_ACCEPTABLE => (
            "not_acceptable",
            format!("{text}. Send Accept: application/json, text/event-stream."),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", text),
        StatusCode::BAD_REQUEST if text.contains("MCP-Protocol-Version") => {
            let known = rmcp::model::ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            (
                "unsupported_protocol_version",
                format!("{text}. Supported versions: {known}."),
            )
        }
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", format!("{text}.")),
        _ if text.is_empty() => (
            "bad_request",
            "The request could not be processed.".to_owned(),
        ),
        _ => ("bad_request", text),
    };
    let mut out = json_error(status, code, &message);
    for (name, value) in &headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
