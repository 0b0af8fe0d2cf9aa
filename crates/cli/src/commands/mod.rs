//! One module per command group; each takes the parsed command line.

use std::sync::Arc;

use mcpgate_client::{
    auth::TokenStore, Auth, ClientError, FileTokenStore, OAuthCredential, Session,
};

use crate::{args::Cli, fail, Failure};

pub mod apps;
pub mod auth;
pub mod clients;
pub mod connect;
pub mod keys;
pub mod memory;

pub fn store() -> Result<Arc<dyn TokenStore>, Failure> {
    let path = FileTokenStore::default_path().ok_or_else(|| {
        fail(
            1,
            "cannot find a config directory (set HOME or XDG_CONFIG_HOME)",
        )
    })?;
    Ok(Arc::new(FileTokenStore::new(path)))
}

/// A session with the server: `--api-key`, else the stored login.
pub fn session(cli: &Cli) -> Result<Session, Failure> {
    let server = cli.server();
    let server = server.as_str();
    let auth = match &cli.api_key {
        Some(key) => Auth::ApiKey(key.clone().into()),
        None => match OAuthCredential::from_store(server, store()?)? {
            Some(cred) => Auth::OAuth(cred),
            None => return Err(not_logged_in(server)),
        },
    };
    Ok(Session::new(server, auth).map_err(ClientError::from)?)
}

fn not_logged_in(server: &str) -> Failure {
    fail(
        3,
        format!("not logged in to {server}: run `mcpg login` or set MCPGATE_API_KEY"),
    )
}
