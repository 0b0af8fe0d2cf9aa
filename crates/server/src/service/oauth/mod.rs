//! The OAuth 2.1 authorization server: authorization requests and codes,
//! the token endpoint's grants, revocation, introspection, and the
//! authentication of access tokens on the REST API (and MCP).
//!
//! Every token, code and client secret is opaque (`mcpg_at_`, `mcpg_rt_`,
//! `mcpg_ac_`, `mcpg_cs_`), stored as SHA-256 under its public id. A *grant*
//! is one authorization of one client by one user: the token family. Codes
//! are single use (a replay revokes the family), refresh tokens rotate on
//! every use (reuse revokes the family), all decided by conditional UPDATEs so
//! replicas agree.

mod access;
mod authorizations;
mod authorize;
pub mod clients;
pub mod error;
mod introspect;
pub mod resource;
mod token;

use chrono::Duration;

pub use access::authenticate_access_token;
pub use authorizations::{authorizations, revoke_authorization, Authorization};
pub use authorize::{
    authorize, decide, redirect_with, AuthorizeFailure, AuthorizeOutcome, AuthorizeParams,
    AuthorizeRequest, Decision,
};
pub use clients::{Client, GrantType};
pub use error::{OAuthError, OAuthResult};
pub use introspect::{introspect, revoke, Introspection};
pub use resource::Resource;
pub use token::{authenticate_client, token, ClientCredentials, IssuedTokens, TokenRequest};

fn secs(n: u64) -> Duration {
    Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX / 1000))
}

/// A server on a fresh SQLite database, with `edit` applied to the default
/// configuration; the directory lives as long as the state is used.
#[cfg(test)]
async fn test_state(
    edit: impl FnOnce(&mut crate::config::Config),
) -> (tempfile::TempDir, crate::state::AppState) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::config::Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    edit(&mut config);
    config.validate().unwrap();
    let state = crate::server::offline_state(config).await.unwrap();
    (dir, state)
}
