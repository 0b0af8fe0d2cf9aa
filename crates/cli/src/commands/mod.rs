//! One module per command group; each takes the parsed command line.

use std::sync::Arc;

use mcpgate_client::{auth::TokenStore, Auth, FileTokenStore, Gateway, OAuthCredential};

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

pub fn gateway(cli: &Cli) -> Result<Gateway, Failure> {
    let server = cli.server();
    let server = server.as_str();
    if let Some(key) = &cli.api_key {
        return Ok(Gateway::new(server, Auth::ApiKey(key.clone().into())));
    }
    match OAuthCredential::from_store(server, store()?)? {
        Some(cred) => Ok(Gateway::new(server, Auth::OAuth(cred))),
        None => Err(fail(
            3,
            format!("not logged in to {server}: run `mcpg login` or set MCPGATE_API_KEY"),
        )),
    }
}
