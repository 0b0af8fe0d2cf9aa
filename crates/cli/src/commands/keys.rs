//! `mcpg keys`: API keys.

use mcpgate_client::types;

use super::session;
use crate::{
    args::{Cli, KeysAction},
    output::{output, show_keys, show_new_key},
    Failure,
};

pub async fn keys(cli: &Cli, action: &KeysAction) -> Result<(), Failure> {
    let session = session(cli)?;
    match action {
        KeysAction::List => {
            let list = session
                .call(|c| async move { c.key_list().send().await })
                .await?;
            output(cli, &list, show_keys);
        }
        KeysAction::Create {
            name,
            scopes,
            expires_in_days,
        } => {
            let body = types::CreateKeyRequest {
                name: name.clone(),
                scopes: scopes.clone(),
                expires_in_days: *expires_in_days,
            };
            let key = session
                .call(|c| {
                    let body = body.clone();
                    async move { c.key_create().body(body).send().await }
                })
                .await?;
            output(cli, &key, |k| show_new_key(&k.api_key));
        }
        KeysAction::Revoke { key_id } => {
            session
                .call(|c| async move { c.key_revoke().key_id(key_id.as_str()).send().await })
                .await?;
            eprintln!("Revoked {key_id}.");
        }
        KeysAction::Rotate { key_id, grace } => {
            let body = types::RotateKeyRequest {
                grace_seconds: *grace,
            };
            let key = session
                .call(|c| {
                    let body = body.clone();
                    async move {
                        c.key_rotate()
                            .key_id(key_id.as_str())
                            .body(body)
                            .send()
                            .await
                    }
                })
                .await?;
            output(cli, &key, |k| show_new_key(&k.api_key));
        }
    }
    Ok(())
}
