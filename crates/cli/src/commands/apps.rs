//! `mcpg apps`: the OAuth applications the user authorized.

use super::session;
use crate::{
    args::{AppsAction, Cli},
    output::{output, show_authorizations},
    Failure,
};

pub async fn apps(cli: &Cli, action: &AppsAction) -> Result<(), Failure> {
    let session = session(cli)?;
    match action {
        AppsAction::List => {
            let list = session
                .call(|c| async move { c.authorization_list().send().await })
                .await?;
            output(cli, &list, show_authorizations);
        }
        AppsAction::Revoke { client_id } => {
            session
                .call(|c| async move {
                    c.authorization_revoke()
                        .client_id(client_id.as_str())
                        .send()
                        .await
                })
                .await?;
            eprintln!("Revoked {client_id}.");
        }
    }
    Ok(())
}
