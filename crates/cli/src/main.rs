//! `mcpg`: the mcpgate command-line client, on top of `mcpgate-client`.
//!
//! Exit codes: 0 success, 1 other failure, 2 usage, 3 authentication (run
//! `mcpg login`, or check the key), 4 the request was refused (not found,
//! invalid, forbidden, rate limited), 5 the server or network failed.

use std::{io::Read, process::ExitCode, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser, Subcommand};
use mcpgate_client::{
    auth::TokenStore, login, types, Auth, ClientError, FileTokenStore, Gateway, OAuthCredential,
};

#[derive(Parser)]
#[command(name = "mcpg", version, about = "The mcpgate command-line client")]
struct Cli {
    /// The mcpgate server [default: the server of the last `mcpg login`,
    /// else http://127.0.0.1:8080].
    #[arg(long, global = true, env = "MCPGATE_URL")]
    server: Option<String>,
    /// An API key (otherwise the credential from `mcpg login`).
    #[arg(long, global = true, env = "MCPGATE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in with OAuth in the browser (PKCE); the credential is stored in
    /// ~/.config/mcpgate/credentials.json (mode 0600).
    Login {
        /// Seconds to wait for the browser.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// A fixed loopback port for the redirect.
        #[arg(long)]
        port: Option<u16>,
    },
    /// Revoke the stored credential at the server and forget it.
    Logout,
    /// Show the account and credential in use.
    Whoami,
    /// API keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Memories.
    Memory {
        #[command(subcommand)]
        action: MemoryAction,
    },
    /// Connections to third-party providers.
    Connect {
        #[command(subcommand)]
        action: ConnectAction,
    },
    /// OAuth applications you authorized.
    Apps {
        #[command(subcommand)]
        action: AppsAction,
    },
    /// OAuth clients you own (registered with one of your API keys).
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum KeysAction {
    List,
    Create {
        name: String,
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    Revoke {
        key_id: String,
    },
    Rotate {
        key_id: String,
        /// Seconds the old secret keeps working.
        #[arg(long)]
        grace: Option<i64>,
    },
}

#[derive(Subcommand)]
enum MemoryAction {
    /// Add a memory; content from the argument, --file, or standard input.
    Add {
        #[arg(long)]
        title: String,
        #[arg(long = "type")]
        memory_type: Option<types::MemoryType>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long, conflicts_with = "content")]
        file: Option<std::path::PathBuf>,
        content: Option<String>,
    },
    Get {
        id: String,
    },
    List {
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long = "type")]
        memory_type: Option<types::MemoryType>,
        #[arg(long)]
        limit: Option<i64>,
    },
    Search {
        query: String,
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Change fields of a memory.
    Edit {
        id: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        content: Option<String>,
        #[arg(long, conflicts_with = "content")]
        file: Option<std::path::PathBuf>,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    Rm {
        id: String,
    },
    Stats,
}

#[derive(Subcommand)]
enum ConnectAction {
    List,
    /// Start connecting a provider: prints the URL to open.
    Start {
        provider: String,
    },
    Status {
        provider: String,
    },
    Rm {
        provider: String,
    },
}

#[derive(Subcommand)]
enum AppsAction {
    List,
    Revoke { client_id: String },
}

#[derive(Subcommand)]
enum ClientsAction {
    List,
    /// Show one client.
    Get {
        client_id: String,
    },
    /// Delete a client; every token it holds stops working.
    Rm {
        client_id: String,
    },
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Unauthorized { .. } => 3,
            ClientError::Forbidden { .. }
            | ClientError::NotFound { .. }
            | ClientError::Validation { .. }
            | ClientError::RateLimited { .. }
            | ClientError::Refused { .. } => 4,
            ClientError::Network(_) | ClientError::Server { .. } => 5,
            ClientError::Login(_) | ClientError::Store(_) => 1,
        };
        let message = if e.needs_login() {
            format!("{e}: run `mcpg login`")
        } else {
            e.to_string()
        };
        Failure { code, message }
    }
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

fn store() -> Result<Arc<dyn TokenStore>, Failure> {
    let path = FileTokenStore::default_path().ok_or_else(|| {
        fail(
            1,
            "cannot find a config directory (set HOME or XDG_CONFIG_HOME)",
        )
    })?;
    Ok(Arc::new(FileTokenStore::new(path)))
}

/// The server when neither `--server` nor `MCPGATE_URL` names one.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Where `mcpg login` remembers the server it logged in to, beside the
/// credentials file.
fn remembered_server_path() -> Option<std::path::PathBuf> {
    FileTokenStore::default_path().map(|p| p.with_file_name("server"))
}

fn remembered_server() -> Option<String> {
    let text = std::fs::read_to_string(remembered_server_path()?).ok()?;
    let server = text.trim();
    (!server.is_empty()).then(|| server.to_owned())
}

impl Cli {
    /// The server to talk to: `--server`, `MCPGATE_URL`, the last login's,
    /// or the default.
    fn server(&self) -> String {
        self.server
            .clone()
            .or_else(remembered_server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
            .trim_end_matches('/')
            .to_owned()
    }
}

fn gateway(cli: &Cli) -> Result<Gateway, Failure> {
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

/// Print `value` as JSON (the API's, unchanged), or as the table/lines
/// `human` renders from it.
fn output<T: serde::Serialize>(cli: &Cli, value: &T, human: impl FnOnce(&T) -> String) {
    if cli.json {
        let v = serde_json::to_value(value).unwrap_or_default();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let text = human(value);
        if !text.is_empty() {
            println!("{text}");
        }
    }
}

/// A time as the API writes it (RFC 3339 in UTC, `Z`).
fn when(t: &DateTime<Utc>) -> String {
    format!("{t:?}")
}

/// An absent value as `-`.
fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

/// A list as comma-separated names.
fn commas<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// `mcpg whoami`.
fn show_me(server: &str, me: &types::Me) -> String {
    format!(
        "server:     {server}\nuser:       {}\nemail:      {}\ncredential: {} {}\nscopes:     {}",
        me.user_id,
        or_dash(me.email.clone()),
        me.credential.kind,
        me.credential.id,
        me.credential.scopes.join(" ")
    )
}

/// `mcpg keys list`.
fn show_keys(list: &types::ApiKeyList) -> String {
    let rows = list
        .keys
        .iter()
        .map(|k| {
            vec![
                k.key_id.clone(),
                k.name.clone(),
                commas(&k.scopes),
                or_dash(k.last_used_at.as_ref().map(when)),
                or_dash(k.revoked_at.as_ref().map(when)),
            ]
        })
        .collect();
    table(&["id", "name", "scopes", "last used", "revoked"], rows)
}

/// A new key, shown once.
fn show_new_key(api_key: &str) -> String {
    format!("{api_key}\n(store it now: it is shown only once)")
}

fn memory_rows(memories: &[types::Memory]) -> Vec<Vec<String>> {
    memories
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.memory_type.to_string(),
                m.title.clone(),
                commas(&m.tags),
            ]
        })
        .collect()
}

/// `mcpg memory get`.
fn show_memory(m: &types::Memory) -> String {
    format!(
        "# {} ({}, v{})\n{}",
        m.title, m.memory_type, m.version, m.content
    )
}

/// `mcpg memory search`: the score as the API gives it (0-100, one decimal).
fn show_search(found: &types::SearchResponse) -> String {
    let rows = found
        .results
        .iter()
        .map(|r| {
            vec![
                r.memory.id.clone(),
                format!("{:.1}", r.score),
                r.memory.title.clone(),
            ]
        })
        .collect();
    table(&["id", "score", "title"], rows)
}

/// `mcpg memory stats`.
fn show_stats(st: &types::MemoryStats) -> String {
    let by_type: std::collections::BTreeMap<_, _> = st.by_type.iter().collect();
    format!(
        "memories: {}\nbytes:    {}\nby type:  {}",
        st.total_memories,
        st.total_bytes,
        serde_json::to_string(&by_type).unwrap_or_default()
    )
}

/// `mcpg connect list`.
fn show_providers(list: &types::ProviderList) -> String {
    let rows = list
        .providers
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.display_name.clone(),
                p.available.to_string(),
                or_dash(p.status.map(|s| s.to_string())),
            ]
        })
        .collect();
    table(&["provider", "name", "available", "status"], rows)
}

/// `mcpg connect status`.
fn show_connection(provider: &str, c: &types::ConnectionInfo) -> String {
    format!(
        "{provider}: {} (account {}, expires {})",
        c.status,
        or_dash(c.external_account_id.clone()),
        or_dash(c.expires_at.as_ref().map(when))
    )
}

/// `mcpg apps list`.
fn show_authorizations(list: &types::AuthorizationList) -> String {
    let rows = list
        .authorizations
        .iter()
        .map(|a| {
            vec![
                a.client_id.clone(),
                a.client_name.clone(),
                commas(&a.scopes),
                when(&a.last_used_at),
            ]
        })
        .collect();
    table(&["client id", "name", "scopes", "last used"], rows)
}

/// `mcpg clients list`.
fn show_clients(list: &types::OwnedClientList) -> String {
    let rows = list
        .clients
        .iter()
        .map(|c| {
            vec![
                c.client_id.clone(),
                c.client_name.clone(),
                commas(&c.scopes),
                or_dash(c.registered_with_key.clone()),
                or_dash(c.last_used_at.as_ref().map(when)),
            ]
        })
        .collect();
    table(&["client id", "name", "scopes", "key", "last used"], rows)
}

/// `mcpg clients get`.
fn show_client(c: &types::OwnedClient) -> String {
    table(
        &["client id", "name", "scopes", "grants", "created"],
        vec![vec![
            c.client_id.clone(),
            c.client_name.clone(),
            commas(&c.scopes),
            commas(&c.grant_types),
            when(&c.created_at),
        ]],
    )
}

/// Aligned columns.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_uppercase()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

fn read_content(arg: Option<String>, file: Option<std::path::PathBuf>) -> Result<String, Failure> {
    match (arg, file) {
        (Some(c), _) => Ok(c),
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map_err(|e| fail(1, format!("reading {}: {e}", f.display()))),
        (None, None) => {
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .map_err(|e| fail(1, format!("reading standard input: {e}")))?;
            Ok(buf)
        }
    }
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

async fn run(cli: Cli) -> Result<(), Failure> {
    let server = cli.server();
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "mcpg", &mut std::io::stdout());
            Ok(())
        }
        Command::Login { timeout, port } => {
            let store = store()?;
            login::pkce(
                &server,
                login::LoginOptions {
                    client_id: None,
                    client_name: "mcpg (command line)".into(),
                    scopes: vec![],
                    resources: vec![],
                    port: *port,
                    timeout: Duration::from_secs(*timeout),
                    store,
                    open: Box::new(open_browser),
                },
            )
            .await?;
            let gw = gateway(&Cli {
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
            let me = gw.call(|c| async move { c.user_me().send().await }).await?;
            eprintln!(
                "Logged in to {server} as {}.",
                me.email.clone().unwrap_or(me.user_id.clone())
            );
            Ok(())
        }
        Command::Logout => {
            let store = store()?;
            match OAuthCredential::from_store(&server, store.clone())? {
                Some(cred) => {
                    // Revoke at the server first; forget locally either way.
                    if let Err(e) = cred.revoke().await {
                        eprintln!(
                            "mcpg: could not revoke at the server ({e}); forgetting it locally"
                        );
                        store.remove(&server)?;
                    }
                    eprintln!("Logged out of {server}.");
                }
                None => eprintln!("Not logged in to {server}."),
            }
            Ok(())
        }
        Command::Whoami => {
            let me = gateway(&cli)?
                .call(|c| async move { c.user_me().send().await })
                .await?;
            output(&cli, &me, |me| show_me(&server, me));
            Ok(())
        }
        Command::Keys { action } => keys(&cli, action).await,
        Command::Memory { action } => memory(&cli, action).await,
        Command::Connect { action } => connect(&cli, action).await,
        Command::Apps { action } => apps(&cli, action).await,
        Command::Clients { action } => clients(&cli, action).await,
    }
}

async fn keys(cli: &Cli, action: &KeysAction) -> Result<(), Failure> {
    let gw = gateway(cli)?;
    match action {
        KeysAction::List => {
            let list = gw
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
            let key = gw
                .call(|c| {
                    let body = body.clone();
                    async move { c.key_create().body(body).send().await }
                })
                .await?;
            output(cli, &key, |k| show_new_key(&k.api_key));
        }
        KeysAction::Revoke { key_id } => {
            gw.call(|c| async move { c.key_revoke().key_id(key_id.as_str()).send().await })
                .await?;
            eprintln!("Revoked {key_id}.");
        }
        KeysAction::Rotate { key_id, grace } => {
            let body = types::RotateKeyRequest {
                grace_seconds: *grace,
            };
            let key = gw
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

async fn memory(cli: &Cli, action: &MemoryAction) -> Result<(), Failure> {
    let gw = gateway(cli)?;
    match action {
        MemoryAction::Add {
            title,
            memory_type,
            tags,
            file,
            content,
        } => {
            let content = read_content(content.clone(), file.clone())?;
            let body = types::CreateMemoryRequest {
                title: title.clone(),
                content,
                memory_type: *memory_type,
                tags: tags.clone(),
                metadata: Default::default(),
            };
            let m = gw
                .call(|c| {
                    let body = body.clone();
                    async move { c.memory_create().body(body).send().await }
                })
                .await?;
            output(cli, &m, |m| m.id.clone());
        }
        MemoryAction::Get { id } => {
            let m = gw
                .call(|c| async move { c.memory_get().id(id.as_str()).send().await })
                .await?;
            output(cli, &m, show_memory);
        }
        MemoryAction::List {
            tags,
            memory_type,
            limit,
        } => {
            let tags = (!tags.is_empty()).then(|| tags.join(","));
            let page = gw
                .call(|c| {
                    let tags = tags.clone();
                    async move {
                        let mut b = c.memory_list();
                        if let Some(t) = tags {
                            b = b.tags(t);
                        }
                        if let Some(t) = memory_type {
                            b = b.memory_type(*t);
                        }
                        if let Some(l) = limit {
                            b = b.limit(*l);
                        }
                        b.send().await
                    }
                })
                .await?;
            output(cli, &page, |p| {
                table(&["id", "type", "title", "tags"], memory_rows(&p.memories))
            });
        }
        MemoryAction::Search { query, limit } => {
            let body = types::SearchRequest {
                query: query.clone(),
                limit: *limit,
                memory_types: vec![],
                tags: vec![],
            };
            let found = gw
                .call(|c| {
                    let body = body.clone();
                    async move { c.memory_search().body(body).send().await }
                })
                .await?;
            output(cli, &found, show_search);
        }
        MemoryAction::Edit {
            id,
            title,
            content,
            file,
            tags,
        } => {
            let content = match (content, file) {
                (None, None) => None,
                (c, f) => Some(read_content(c.clone(), f.clone())?),
            };
            let body = types::UpdateMemoryRequest {
                title: title.clone(),
                content,
                memory_type: None,
                tags: tags.clone(),
                metadata: Default::default(),
            };
            let m = gw
                .call(|c| {
                    let body = body.clone();
                    async move { c.memory_update().id(id.as_str()).body(body).send().await }
                })
                .await?;
            output(cli, &m, |m| {
                format!("{} is now version {}", m.id, m.version)
            });
        }
        MemoryAction::Rm { id } => {
            gw.call(|c| async move { c.memory_delete().id(id.as_str()).send().await })
                .await?;
            eprintln!("Deleted {id}.");
        }
        MemoryAction::Stats => {
            let st = gw
                .call(|c| async move { c.memory_stats().send().await })
                .await?;
            output(cli, &st, show_stats);
        }
    }
    Ok(())
}

async fn connect(cli: &Cli, action: &ConnectAction) -> Result<(), Failure> {
    let gw = gateway(cli)?;
    match action {
        ConnectAction::List => {
            let list = gw
                .call(|c| async move { c.connect_providers().send().await })
                .await?;
            output(cli, &list, show_providers);
        }
        ConnectAction::Start { provider } => {
            let body = types::StartRequest { return_to: None };
            let started = gw
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
            let st = gw
                .call(
                    |c| async move { c.connect_status().provider(provider.as_str()).send().await },
                )
                .await?;
            output(cli, &st, |c| show_connection(provider, c));
        }
        ConnectAction::Rm { provider } => {
            gw.call(|c| async move { c.connect_delete().provider(provider.as_str()).send().await })
                .await?;
            eprintln!("Disconnected {provider}.");
        }
    }
    Ok(())
}

async fn apps(cli: &Cli, action: &AppsAction) -> Result<(), Failure> {
    let gw = gateway(cli)?;
    match action {
        AppsAction::List => {
            let list = gw
                .call(|c| async move { c.authorization_list().send().await })
                .await?;
            output(cli, &list, show_authorizations);
        }
        AppsAction::Revoke { client_id } => {
            gw.call(|c| async move {
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

async fn clients(cli: &Cli, action: &ClientsAction) -> Result<(), Failure> {
    let gw = gateway(cli)?;
    match action {
        ClientsAction::List => {
            let list = gw
                .call(|c| async move { c.client_list().send().await })
                .await?;
            output(cli, &list, show_clients);
        }
        ClientsAction::Get { client_id } => {
            let one = gw
                .call(|c| async move { c.client_get().client_id(client_id.as_str()).send().await })
                .await?;
            output(cli, &one, show_client);
        }
        ClientsAction::Rm { client_id } => {
            gw.call(
                |c| async move { c.client_delete().client_id(client_id.as_str()).send().await },
            )
            .await?;
            eprintln!("Deleted {client_id}.");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcpg: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("mcpg: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A response type from the JSON the server sends.
    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn check(rendered: String, expected: &str) {
        assert_eq!(rendered, expected);
    }

    const AT: &str = "2026-11-22T10:00:00.123456Z";

    #[test]
    fn times_print_as_the_api_writes_them() {
        for raw in [
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:00.123Z",
            AT,
            "2026-11-22T10:00:00.000000001Z",
        ] {
            let t: DateTime<Utc> = from(json!(raw));
            assert_eq!(when(&t), raw);
            assert_eq!(serde_json::to_value(t).unwrap(), json!(raw));
        }
    }

    #[test]
    fn account_and_keys() {
        let me = json!({
            "user_id": "u1", "created_at": AT,
            "credential": {"kind": "api_key", "id": "k1", "scopes": ["memories:read", "keys:read"]},
        });
        check(
            show_me("http://127.0.0.1:8080", &from(me)),
            "server:     http://127.0.0.1:8080\nuser:       u1\nemail:      -\n\
             credential: api_key k1\nscopes:     memories:read keys:read",
        );
        let keys = json!({"keys": [
            {"key_id": "k1", "name": "laptop", "prefix": "mcpg_k1", "scopes": ["memories:read", "keys:read"],
             "created_at": AT, "last_used_at": AT, "usage_count": 3},
            {"key_id": "k2", "name": "ci", "prefix": "mcpg_k2", "scopes": [],
             "created_at": AT, "revoked_at": "2026-11-23T08:00:00Z", "usage_count": 0},
        ]});
        check(
            show_keys(&from(keys)),
            "ID  NAME    SCOPES                   LAST USED                    REVOKED\n\
             k1  laptop  memories:read,keys:read  2026-11-22T10:00:00.123456Z  -\n\
             k2  ci                               -                            2026-11-23T08:00:00Z",
        );
        check(
            show_new_key("mcpg_x"),
            "mcpg_x\n(store it now: it is shown only once)",
        );
    }

    fn memory(id: &str, title: &str) -> serde_json::Value {
        json!({
            "id": id, "title": title, "content": "body\n", "memory_type": "project",
            "tags": ["ops", "release"], "metadata": {}, "version": 2,
            "created_at": AT, "updated_at": AT,
        })
    }

    #[test]
    fn memories() {
        let m = memory("m1", "Release checklist");
        check(
            show_memory(&from(m.clone())),
            "# Release checklist (project, v2)\nbody\n",
        );
        let page: types::MemoryPage = from(json!({"memories": [m], "total": 1}));
        check(
            table(
                &["id", "type", "title", "tags"],
                memory_rows(&page.memories),
            ),
            "ID  TYPE     TITLE              TAGS\nm1  project  Release checklist  ops,release",
        );
        let found = json!({"results": [
            {"memory": memory("m1", "Best"), "score": 100.0, "snippet": ""},
            {"memory": memory("m2", "Next"), "score": 71.1, "snippet": ""},
            {"memory": memory("m3", "Far"), "score": 0.0, "snippet": ""},
        ], "total_results": 3, "took_ms": 1.5});
        check(
            show_search(&from(found)),
            "ID  SCORE  TITLE\nm1  100.0  Best\nm2  71.1   Next\nm3  0.0    Far",
        );
        let stats = json!({
            "total_memories": 3, "total_bytes": 120, "by_type": {"project": 1, "context": 2},
            "top_tags": [], "oldest_at": AT, "newest_at": AT,
        });
        check(
            show_stats(&from(stats)),
            "memories: 3\nbytes:    120\nby type:  {\"context\":2,\"project\":1}",
        );
    }

    #[test]
    fn connections_apps_and_clients() {
        let providers = json!({"providers": [
            {"name": "github", "display_name": "GitHub", "available": true, "connected": true,
             "status": "refresh_failed"},
            {"name": "google", "display_name": "Google", "available": false, "connected": false},
        ]});
        check(
            show_providers(&from(providers)),
            "PROVIDER  NAME    AVAILABLE  STATUS\ngithub    GitHub  true       refresh_failed\n\
             google    Google  false      -",
        );
        let c = json!({
            "provider": "github", "connected": true, "status": "connected", "scopes": [],
            "connected_at": AT,
        });
        check(
            show_connection("github", &from(c)),
            "github: connected (account -, expires -)",
        );
        let apps = json!({"authorizations": [
            {"client_id": "c1", "client_name": "Claude", "scopes": ["memories:read"], "resources": [],
             "authorized_at": AT, "last_used_at": AT, "verified": true},
        ]});
        check(
            show_authorizations(&from(apps)),
            "CLIENT ID  NAME    SCOPES         LAST USED\nc1         Claude  memories:read  2026-11-22T10:00:00.123456Z",
        );
        let client = json!({
            "client_id": "mcpg_ci_1", "client_name": "bot", "scopes": ["memories:read"],
            "grant_types": ["client_credentials"], "redirect_uris": [],
            "token_endpoint_auth_method": "client_secret_post", "registered_with_key": "k1",
            "created_at": AT,
        });
        check(
            show_client(&from(client.clone())),
            "CLIENT ID  NAME  SCOPES         GRANTS              CREATED\n\
             mcpg_ci_1  bot   memories:read  client_credentials  2026-11-22T10:00:00.123456Z",
        );
        check(
            show_clients(&from(json!({"clients": [client]}))),
            "CLIENT ID  NAME  SCOPES         KEY  LAST USED\nmcpg_ci_1  bot   memories:read  k1   -",
        );
    }
}
