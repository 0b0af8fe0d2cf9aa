//! Log in with OAuth (PKCE, in the browser) and search memories:
//! `cargo run -p mcpgate-client --example login_and_search -- "release checklist"`

use std::{sync::Arc, time::Duration};

use mcpgate_client::{
    login::{self, LoginOptions},
    types, Auth, ClientError, FileTokenStore, OAuthCredential, Session,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ClientError> {
    let url = std::env::var("MCPGATE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let query = std::env::args().nth(1).unwrap_or_else(|| "notes".into());
    // A file of its own: sharing `mcpg`'s would replace its login with
    // this read-only one.
    let path = FileTokenStore::default_path()
        .ok_or_else(|| ClientError::Store("no config dir".into()))?
        .with_file_name("example-credentials.json");
    let store = Arc::new(FileTokenStore::new(path));
    // Reuse a stored login, or log in now.
    let credential = match OAuthCredential::from_store(&url, store.clone())? {
        Some(c) => c,
        None => {
            login::pkce(
                &url,
                LoginOptions {
                    client_id: None,
                    client_name: "mcpgate example".into(),
                    scopes: vec!["memories:read".into()],
                    resources: vec![],
                    port: None,
                    timeout: Duration::from_secs(300),
                    store,
                    open: Box::new(|u| println!("Open to log in: {u}")),
                    http: None,
                },
            )
            .await?
        }
    };
    let session = Session::new(&url, Auth::OAuth(credential))?;
    let body = types::SearchRequest {
        query,
        limit: Some(10),
        memory_types: vec![],
        tags: vec![],
    };
    let found = session
        .call(|c| {
            let body = body.clone();
            async move { c.memory_search().body(body).send().await }
        })
        .await?;
    for r in found.results {
        println!("{:.2}  {}  {}", r.score, r.memory.id, r.memory.title);
    }
    Ok(())
}
