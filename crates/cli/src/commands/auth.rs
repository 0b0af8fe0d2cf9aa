//! `mcpg login`, `logout` and `whoami`.

use std::time::Duration;

use mcpgate_client::{login, OAuthCredential};

use super::{session, store};
use crate::{
    args::{remembered_server_path, Cli},
    output::{output, show_me},
    Failure,
};

/// `mcpg login`.
pub async fn login(cli: Cli, timeout: u64, port: Option<u16>) -> Result<(), Failure> {
    let server = cli.server();
    let store = store()?;
    login::pkce(
        &server,
        login::LoginOptions {
            client_id: None,
            client_name: "mcpg (command line)".into(),
            scopes: vec![],
            resources: vec![],
            port,
            timeout: Duration::from_secs(timeout),
            store,
            open: Box::new(open_browser),
            http: None,
        },
    )
    .await?;
    let session = session(&Cli {
        api_key: None,
        server: Some(server.clone()),
        ..cli
    })?;
    // Later commands without --server talk to this one.
    if let Some(path) = remembered_server_path() {
        if let Err(e) = std::fs::write(&path, format!("{server}\n")) {
            eprintln!(
                "mcpg: could not remember the server in {}: {e}",
                path.display()
            );
        }
    }
    let me = session
        .call(|c| async move { c.user_me().send().await })
        .await?;
    eprintln!(
        "Logged in to {server} as {}.",
        me.email.clone().unwrap_or(me.user_id.clone())
    );
    Ok(())
}

/// `mcpg logout`.
pub async fn logout(cli: &Cli) -> Result<(), Failure> {
    let server = cli.server();
    let store = store()?;
    match OAuthCredential::from_store(&server, store.clone())? {
        Some(cred) => {
            // Revoke at the server first; forget locally either way.
            if let Err(e) = cred.revoke().await {
                eprintln!("mcpg: could not revoke at the server ({e}); forgetting it locally");
                store.remove(&server)?;
            }
            eprintln!("Logged out of {server}.");
        }
        None => eprintln!("Not logged in to {server}."),
    }
    Ok(())
}

/// `mcpg whoami`.
pub async fn whoami(cli: &Cli) -> Result<(), Failure> {
    let server = cli.server();
    let me = session(cli)?
        .call(|c| async move { c.user_me().send().await })
        .await?;
    output(cli, &me, |me| show_me(&server, me));
    Ok(())
}

fn open_browser(url: &str) {
    eprintln!("Open this URL to log in:\n\n  {url}\n");
    let browser = std::env::var("BROWSER").ok().filter(|b| !b.is_empty());
    let program = browser.unwrap_or_else(|| {
        if cfg!(target_os = "macos") {
            "open".into()
        } else {
            "xdg-open".into()
        }
    });
    let _ = std::process::Command::new(program)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
