//! `mcpg`: the mcpgate command-line client, on top of `mcpgate-client`.
//!
//! Exit codes: 0 success, 1 other failure, 2 usage, 3 authentication (run
//! `mcpg login`, or check the key), 4 the request was refused (not found,
//! invalid, forbidden, rate limited), 5 the server or network failed.

use std::{io::Read, process::ExitCode, sync::Arc, time::Duration};

use clap::{CommandFactory, Parser, Subcommand};
use mcpgate_client::{
    auth::TokenStore, login, types, Auth, ClientError, FileTokenStore, Gateway, OAuthCredential,
};
use serde_json::Value;

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

/// Print `value` as JSON, or as the table/lines `human` renders.
fn output(cli: &Cli, value: &impl serde::Serialize, human: impl FnOnce(&Value) -> String) {
    let v = serde_json::to_value(value).unwrap_or(Value::Null);
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let text = human(&v);
        if !text.is_empty() {
            println!("{text}");
        }
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
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
            output(&cli, &me, |v| {
                format!(
                    "server:     {server}\nuser:       {}\nemail:      {}\ncredential: {} {}\nscopes:     {}",
                    s(&v["user_id"]),
                    s(&v["email"]),
                    s(&v["credential"]["kind"]),
                    s(&v["credential"]["id"]),
                    s(&v["credential"]["scopes"]).replace(',', " ")
                )
            });
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
            output(cli, &list, |v| {
                let rows = v["keys"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|k| {
                        vec![
                            s(&k["key_id"]),
                            s(&k["name"]),
                            s(&k["scopes"]),
                            s(&k["last_used_at"]),
                            s(&k["revoked_at"]),
                        ]
                    })
                    .collect();
                table(&["id", "name", "scopes", "last used", "revoked"], rows)
            });
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
            output(cli, &key, |v| {
                format!(
                    "{}\n(store it now: it is shown only once)",
                    s(&v["api_key"])
                )
            });
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
            output(cli, &key, |v| {
                format!(
                    "{}\n(store it now: it is shown only once)",
                    s(&v["api_key"])
                )
            });
        }
    }
    Ok(())
}

fn memory_rows(list: &Value) -> Vec<Vec<String>> {
    list.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            vec![
                s(&m["id"]),
                s(&m["memory_type"]),
                s(&m["title"]),
                s(&m["tags"]),
            ]
        })
        .collect()
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
            output(cli, &m, |v| s(&v["id"]));
        }
        MemoryAction::Get { id } => {
            let m = gw
                .call(|c| async move { c.memory_get().id(id.as_str()).send().await })
                .await?;
            output(cli, &m, |v| {
                format!(
                    "# {} ({}, v{})\n{}",
                    s(&v["title"]),
                    s(&v["memory_type"]),
                    s(&v["version"]),
                    s(&v["content"])
                )
            });
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
            output(cli, &page, |v| {
                table(
                    &["id", "type", "title", "tags"],
                    memory_rows(&v["memories"]),
                )
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
            output(cli, &found, |v| {
                let rows = v["results"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|r| {
                        vec![
                            s(&r["memory"]["id"]),
                            format!("{:.2}", r["score"].as_f64().unwrap_or_default()),
                            s(&r["memory"]["title"]),
                        ]
                    })
                    .collect();
                table(&["id", "score", "title"], rows)
            });
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
            output(cli, &m, |v| {
                format!("{} is now version {}", s(&v["id"]), s(&v["version"]))
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
            output(cli, &st, |v| {
                format!(
                    "memories: {}\nbytes:    {}\nby type:  {}",
                    s(&v["total_memories"]),
                    s(&v["total_bytes"]),
                    v["by_type"]
                )
            });
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
            output(cli, &list, |v| {
                let rows = v["providers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|p| {
                        vec![
                            s(&p["name"]),
                            s(&p["display_name"]),
                            s(&p["available"]),
                            s(&p["status"]),
                        ]
                    })
                    .collect();
                table(&["provider", "name", "available", "status"], rows)
            });
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
            output(cli, &started, |v| {
                format!(
                    "Open this URL to connect {provider}:\n\n  {}",
                    s(&v["authorization_url"])
                )
            });
        }
        ConnectAction::Status { provider } => {
            let st = gw
                .call(
                    |c| async move { c.connect_status().provider(provider.as_str()).send().await },
                )
                .await?;
            output(cli, &st, |v| {
                format!(
                    "{}: {} (account {}, expires {})",
                    provider,
                    s(&v["status"]),
                    s(&v["external_account_id"]),
                    s(&v["expires_at"])
                )
            });
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
            output(cli, &list, |v| {
                let rows = v["authorizations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|a| {
                        vec![
                            s(&a["client_id"]),
                            s(&a["client_name"]),
                            s(&a["scopes"]),
                            s(&a["last_used_at"]),
                        ]
                    })
                    .collect();
                table(&["client id", "name", "scopes", "last used"], rows)
            });
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
            output(cli, &list, |v| {
                let rows = v["clients"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| {
                        vec![
                            s(&c["client_id"]),
                            s(&c["client_name"]),
                            s(&c["scopes"]),
                            s(&c["registered_with_key"]),
                            s(&c["last_used_at"]),
                        ]
                    })
                    .collect();
                table(&["client id", "name", "scopes", "key", "last used"], rows)
            });
        }
        ClientsAction::Get { client_id } => {
            let one = gw
                .call(|c| async move { c.client_get().client_id(client_id.as_str()).send().await })
                .await?;
            output(cli, &one, |v| {
                table(
                    &["client id", "name", "scopes", "grants", "created"],
                    vec![vec![
                        s(&v["client_id"]),
                        s(&v["client_name"]),
                        s(&v["scopes"]),
                        s(&v["grant_types"]),
                        s(&v["created_at"]),
                    ]],
                )
            });
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
