//! `mcpg clients`: the OAuth clients the user owns.

use super::session;
use crate::{
    args::{Cli, ClientsAction},
    output::{output, show_client, show_clients},
    Failure,
};

pub async fn clients(cli: &Cli, action: &ClientsAction) -> Result<(), Failure> {
    let session = session(cli)?;
    match action {
        ClientsAction::List => {
            let list = session
                .call(|c| async move { c.client_list().send().await })
                .await?;
            output(cli, &list, show_clients);
        }
        ClientsAction::Get { client_id } => {
            let one = session
                .call(|c| async move { c.client_get().client_id(client_id.as_str()).send().await })
                .await?;
            output(cli, &one, show_client);
        }
        ClientsAction::Rm { client_id } => {
            session
                .call(
                    |c| async move { c.client_delete().client_id(client_id.as_str()).send().await },
                )
                .await?;
            eprintln!("Deleted {client_id}.");
        }
    }
    Ok(())
}
