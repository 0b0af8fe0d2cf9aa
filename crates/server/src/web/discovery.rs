//! Discovery: RFC 8414 authorization-server metadata (also served at the
//! OpenID-configuration path, which several clients try first) and RFC 9728
//! protected-resource metadata for the server, `/mcp` and `/api`; the JWK Set
//! of the identity-assertion keys.

use poem::{
    handler,
    http::{header, StatusCode},
    web::Data,
    Response,
};

use crate::{
    scope::Scope,
    service::oauth::{
        clients::{AuthMethod, GrantType},
        Resource,
    },
    state::AppState,
};

fn public_json(value: serde_json::Value) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        // Public documents: browser-based clients may read them from anywhere.
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(serde_json::to_vec(&value).unwrap_or_default())
}

fn scopes() -> Vec<&'static str> {
    Scope::ALL.iter().map(|s| s.as_str()).collect()
}

/// CORS preflight of a discovery document: any origin, GET, any header.
#[handler]
pub fn preflight(req: &poem::Request) -> Response {
    let headers = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, OPTIONS")
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, headers)
        .header(header::ACCESS_CONTROL_MAX_AGE, "86400")
        .finish()
}

#[handler]
pub fn authorization_server(state: Data<&AppState>) -> Response {
    let base = &state.config.public_url;
    public_json(serde_json::json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "scopes_supported": scopes(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::ALL,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AuthMethod::ALL,
        "revocation_endpoint_auth_methods_supported": AuthMethod::ALL,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{base}/docs"),
    }))
}

fn protected_resource(state: &AppState, resource: String) -> Response {
    let base = &state.config.public_url;
    public_json(serde_json::json!({
        "resource": resource,
        "authorization_servers": [base],
        "scopes_supported": scopes(),
        "bearer_methods_supported": ["header"],
        "resource_name": "mcpgate",
        "resource_documentation": format!("{base}/docs"),
    }))
}

#[handler]
pub fn protected_resource_root(state: Data<&AppState>) -> Response {
    protected_resource(&state, state.config.public_url.clone())
}

#[handler]
pub fn protected_resource_mcp(state: Data<&AppState>) -> Response {
    protected_resource(&state, Resource::Mcp.uri(&state))
}

#[handler]
pub fn protected_resource_api(state: Data<&AppState>) -> Response {
    protected_resource(&state, Resource::Api.uri(&state))
}

/// The JWK Set of the keys signing identity assertions (RFC 7517): the
/// previous, current and next period's keys, so a verifier that caches it
/// for the hour it may is never behind a rotation.
#[handler]
pub fn jwks(state: Data<&AppState>) -> Response {
    public_json(state.identity.jwks(state.clock.now()))
}
