//! The command line: clap definitions, and which server a command talks to.

use clap::{Parser, Subcommand};
use mcpgate_client::{types, FileTokenStore};

#[derive(Parser)]
#[command(name = "mcpg", version, about = "The mcpgate command-line client")]
pub struct Cli {
    /// The mcpgate server [default: the server of the last `mcpg login`,
    /// else http://127.0.0.1:8080].
    #[arg(long, global = true, env = "MCPGATE_URL")]
    pub server: Option<String>,
    /// An API key (otherwise the credential from `mcpg login`).
    #[arg(long, global = true, env = "MCPGATE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
pub enum KeysAction {
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
pub enum MemoryAction {
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
pub enum ConnectAction {
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
pub enum AppsAction {
    List,
    Revoke { client_id: String },
}

#[derive(Subcommand)]
pub enum ClientsAction {
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

/// The server when neither `--server` nor `MCPGATE_URL` names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Where `mcpg login` remembers the server it logged in to, beside the
/// credentials file.
pub fn remembered_server_path() -> Option<std::path::PathBuf> {
    FileTokenStore::default_path().map(|p| p.with_file_name("server"))
}

pub fn remembered_server() -> Option<String> {
    let text = std::fs::read_to_string(remembered_server_path()?).ok()?;
    let server = text.trim();
    (!server.is_empty()).then(|| server.to_owned())
}

impl Cli {
    /// The server to talk to: `--server`, `MCPGATE_URL`, the last login's,
    /// or the default.
    pub fn server(&self) -> String {
        self.server
            .clone()
            .or_else(remembered_server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
            .trim_end_matches('/')
            .to_owned()
    }
}
