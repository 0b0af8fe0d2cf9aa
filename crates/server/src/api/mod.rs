//! The REST API: one group per file, combined in [`api_service`].
//!
//! Handlers are thin: typed inputs and the authenticated principal in, one
//! service call, a response variant out. They never touch the database.

pub mod audit;
pub mod auth;
mod authorizations;
pub mod body;
mod clients;
pub(crate) mod connect;
pub mod constraints;
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

// poem-openapi's own `spec_yaml` unwraps the same way: a spec that does not
// round-trip through a YAML value is a defect of the code, which
// `constraints::tests::every_constraint_applies` catches before it ships.

/// The spec with the services' rules written in ([`constraints`]).
#[allow(clippy::expect_used)]
fn annotated(keywords: constraints::Keywords) -> serde_yaml::Value {
    let mut spec: serde_yaml::Value =
        serde_yaml::from_str(&api_service().spec_yaml()).expect("poem-openapi writes YAML");
    constraints::annotate(&mut spec, keywords);
    spec
}

/// The spec as YAML, exactly as committed in `openapi.yaml`.
#[allow(clippy::expect_used)]
pub fn spec_yaml() -> String {
    serde_yaml::to_string(&annotated(constraints::Keywords::All)).expect("YAML serializes")
}

/// The spec as JSON.
#[allow(clippy::expect_used)]
pub fn spec_json() -> String {
    serde_json::to_string_pretty(&annotated(constraints::Keywords::All))
        .expect("a YAML value of the spec is JSON")
}

/// The spec the Rust client is generated from: `openapi.yaml` without the
/// value rules ([`constraints::Keywords::Shape`]).
#[allow(clippy::expect_used)]
pub fn client_spec_yaml() -> String {
    serde_yaml::to_string(&annotated(constraints::Keywords::Shape)).expect("YAML serializes")
}

#[cfg(test)]
mod tests {
    /// One rule for absent values (docs/http-status-codes.md): an absent
    /// value is omitted, never `null`. Every schema object of the API says
    /// so with `skip_serializing_if_is_none`, so a new one cannot forget.
    #[test]
    fn every_api_object_omits_absent_values() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        let mut objects = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let t = line.trim();
                if t.starts_with("#[derive(")
                    && t.split(['(', ',', ')']).any(|w| w.trim() == "Object")
                {
                    objects += 1;
                    let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or_default();
                    assert!(
                        next.starts_with("#[oai(") && next.contains("skip_serializing_if_is_none"),
                        "{}:{}: an Object without #[oai(skip_serializing_if_is_none)]",
                        path.display(),
                        i + 1
                    );
                }
            }
        }
        assert!(objects > 20, "found only {objects} objects");
    }
}
