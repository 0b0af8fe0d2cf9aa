//! `mcpg connect`: connections to third-party providers.

use mcpgate_client::types;

use super::session;
use crate::{
    args::{Cli, ConnectAction},
    output::{output, show_connection, show_providers},
    Failure,
};

pub async fn connect(cli: &Cli, action: &ConnectAction) -> Result<(), Failure> {
    let session = session(cli)?;
    match action {
        ConnectAction::List => {
            let list = session
                .call(|c| async move { c.connect_providers().send().await })
                .await?;
            output(cli, &list, show_providers);
        }
        ConnectAction::Start { provider } => {
            let body = types::StartRequest { return_to: None };
            let started = session
                .call(|c| {
                    let body = body.clone();
                    async move {
                        c.connect_start()
                            .provider(provider.as_str())
                            .body(body)
                            .send()
                            .await
                    }
                })
                .await?;
            output(cli, &started, |f| {
                format!(
                    "Open this URL to connect {provider}:\n\n  {}",
                    f.authorization_url
                )
            });
        }
        ConnectAction::Status { provider } => {
            let st = session
                .call(
                    |c| async move { c.connect_status().provider(provider.as_str()).send().await },
                )
                .await?;
            output(cli, &st, |c| show_connection(provider, c));
        }
        ConnectAction::Rm { provider } => {
            session
                .call(
                    |c| async move { c.connect_delete().provider(provider.as_str()).send().await },
                )
                .await?;
            eprintln!("Disconnected {provider}.");
        }
    }
    Ok(())
}
