//! List memories with an API key:
//! `MCPGATE_URL=http://127.0.0.1:8080 MCPGATE_API_KEY=mcpg_… cargo run -p mcpgate-client --example list_memories`

use mcpgate_client::{Auth, ClientError, Session};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ClientError> {
    let url = std::env::var("MCPGATE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("MCPGATE_API_KEY")
        .map_err(|_| ClientError::Login("set MCPGATE_API_KEY".into()))?;
    let session = Session::new(&url, Auth::ApiKey(key.into()))?;
    let page = session
        .call(|c| async move { c.memory_list().limit(20).send().await })
        .await?;
    for m in page.memories {
        println!("{}  {}", m.id, m.title);
    }
    Ok(())
}
