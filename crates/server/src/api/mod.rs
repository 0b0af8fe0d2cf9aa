//! The REST API: one group per file, combined in [`api_service`].
//!
//! Handlers are thin: typed inputs and the authenticated principal in, one
//! service call, a response variant out. They never touch the database.

pub mod audit;
pub mod auth;
mod authorizations;
pub mod body;
mod clients;
mod connect;
pub mod docs;
pub mod error;
mod health;
mod idempotency;
mod keys;
pub(crate) mod memory;
mod users;

use poem_openapi::{OpenApiService, Tags};

/// Every tag; each operation has exactly one.
#[derive(Tags)]
pub enum ApiTags {
    /// Liveness and readiness probes.
    Health,
    /// Registration and the caller's own account.
    Users,
    /// API keys of the caller's account.
    Keys,
    /// The caller's memories and their search.
    Memory,
    /// The caller's security events.
    Audit,
    /// OAuth applications the caller has authorized.
    Authorizations,
    /// The caller's connections to third-party providers.
    Connect,
    /// OAuth clients the caller owns (`client_credentials`).
    Clients,
}

/// All API groups.
pub type Api = (
    health::HealthApi,
    users::UsersApi,
    keys::KeysApi,
    memory::MemoryApi,
    audit::AuditApi,
    authorizations::AuthorizationsApi,
    clients::ClientsApi,
    connect::ConnectApi,
);

/// The OpenAPI service. Built without a database, so the spec can be written
/// by `cargo xtask gen` and checked by tests.
pub fn api_service() -> OpenApiService<Api, ()> {
    OpenApiService::new(
        (
            health::HealthApi,
            users::UsersApi,
            keys::KeysApi,
            memory::MemoryApi,
            audit::AuditApi,
            authorizations::AuthorizationsApi,
            clients::ClientsApi,
            connect::ConnectApi,
        ),
        "mcpgate",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Accounts, API keys, OAuth and memory for MCP servers and AI tools. \
         Errors share one body: `{error, message, request_id}` (plus `field` for validation errors).",
    )
}

/// The spec as YAML, exactly as committed in `openapi.yaml`.
pub fn spec_yaml() -> String {
    api_service().spec_yaml()
}

/// The spec as JSON.
pub fn spec_json() -> String {
    api_service().spec()
}
