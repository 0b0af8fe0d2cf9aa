//! Command line: `mcpgate [serve]`, `mcpgate migrate up|down|status`,
//! `mcpgate admin …` (operator commands).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use mcpgate_migration::{Migrator, MigratorTrait};

use crate::{
    config::{Config, LogFormat, Overrides},
    db, server, telemetry,
};

/// mcpgate: accounts, API keys and an OAuth 2.1 authorization server for MCP
/// servers and AI tools.
///
/// Configuration is layered: defaults, then the TOML file (--config or
/// MCPGATE_CONFIG), then MCPGATE_* environment variables, then these flags.
#[derive(Debug, Parser)]
#[command(name = "mcpgate", version, about, long_about)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "MCPGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database and the generated master key
    /// [env: MCPGATE_DATA_DIR; default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [env: MCPGATE_LISTEN; default: 127.0.0.1:8080].
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Canonical public URL [env: MCPGATE_PUBLIC_URL; default: http://127.0.0.1:8080].
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// Log format [env: MCPGATE_LOG_FORMAT; default: text].
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default command).
    Serve,
    /// Apply, roll back or list database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Operator commands.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsAction {
    /// Register an OAuth client trusted by the operator (shown as verified on
    /// the consent page). A confidential client's secret is printed once.
    Create {
        /// Display name on the consent page.
        #[arg(long)]
        name: String,
        /// An exact redirect URI (repeat for several).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A scope the client may request (repeat; default: every scope).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// A confidential client with a secret (default: public, PKCE only).
        #[arg(long)]
        confidential: bool,
        /// Allow `client_credentials`, acting for the account with this email
        /// (needs --confidential).
        #[arg(long, value_name = "EMAIL")]
        owner: Option<String>,
    },
    /// List registered clients as JSON lines (never their secrets).
    List,
    /// Delete a client; every token it holds stops working.
    Delete {
        /// The client_id.
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// Set a new web-login password for an account, read as one line from
    /// standard input; every web session of the account ends.
    ResetPassword {
        /// The account's email.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Manage OAuth clients.
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// Manage accounts.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Re-encrypt every stored upstream token under the current master key.
    /// Run it after setting the new key as `encryption_key` and the old one as
    /// `encryption_key_previous` on every replica; then drop the previous key.
    RotateKey,
    /// Remove expired data now (what the server also does every `cleanup_interval_secs`).
    Purge,
    /// Print the audit trail (every account, newest first) as JSON lines.
    Audit {
        /// Only this account's events.
        #[arg(long, value_name = "USER_ID")]
        user: Option<uuid::Uuid>,
        /// How many events.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the most recent migrations.
    Down {
        /// How many migrations to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen,
        data_dir: cli.data_dir.clone(),
        public_url: cli.public_url.clone(),
        log_format: cli.log_format.map(|f| match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }),
    };
    let loaded = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("mcpgate: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&loaded.config.log, loaded.config.log_format);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcpgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None | Some(Command::Serve) => serve(loaded.config).await,
            Some(Command::Migrate { action }) => migrate(loaded.config, action).await,
            Some(Command::Admin { action }) => admin(loaded.config, action).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("mcpgate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let running = server::Server::start(config).await?;
    running.wait(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
    }
}

async fn clients(config: Config, action: ClientsAction) -> anyhow::Result<()> {
    use crate::service::oauth::clients;
    let state = crate::server::offline_state(config).await?;
    let result = async {
        match action {
            ClientsAction::Create {
                name,
                redirect_uris,
                scopes,
                confidential,
                owner,
            } => {
                let reg = clients::create_operator_client(
                    &state,
                    clients::OperatorClient {
                        name,
                        owner_email: owner,
                        redirect_uris,
                        scopes: (!scopes.is_empty()).then(|| scopes.join(" ")),
                        confidential,
                    },
                )
                .await?;
                let c = &reg.client;
                println!("client_id:     {}", c.id);
                if let Some(secret) = &reg.secret {
                    println!("client_secret: {}", clients::reveal(secret));
                    println!("(the secret is shown only now: store it)");
                }
                println!("grant_types:   {}", clients::joined(&c.grant_types, " "));
                println!("scopes:        {}", c.scopes.to_space_separated());
                Ok(())
            }
            ClientsAction::List => {
                for c in clients::list(&state).await? {
                    let line = serde_json::json!({
                        "client_id": c.id,
                        "name": c.name,
                        "kind": c.kind.as_str(),
                        "confidential": c.is_confidential(),
                        "redirect_uris": c.redirect_uris,
                        "grant_types": c.grant_types,
                        "scopes": c.scopes.names(),
                        "owner_user_id": c.owner_user_id,
                        "created_at": c.created_at,
                        "last_used_at": c.last_used_at,
                    });
                    println!("{line}");
                }
                Ok(())
            }
            ClientsAction::Delete { client_id } => {
                if clients::delete(&state, &client_id).await? {
                    println!("deleted {client_id}");
                    Ok(())
                } else {
                    anyhow::bail!("no client {client_id}")
                }
            }
        }
    }
    .await;
    state.db.close_by_ref().await?;
    result
}

async fn users(config: Config, action: UsersAction) -> anyhow::Result<()> {
    match action {
        UsersAction::ResetPassword { email } => {
            use crate::{error::Error, service::accounts};
            let password = read_password_line()?;
            let state = crate::server::offline_state(config).await?;
            let result = accounts::reset_password(&state, &email, password).await;
            state.db.close_by_ref().await?;
            match result {
                Ok(reset) => {
                    println!(
                        "password reset for {email} (user {}); {} web session(s) ended",
                        reset.user_id, reset.sessions_ended
                    );
                    Ok(())
                }
                Err(Error::NotFound(_)) => {
                    anyhow::bail!("no account has the email {email}; nothing was changed")
                }
                Err(Error::Validation { message, .. }) => {
                    anyhow::bail!("the new password was refused: it {message}; nothing was changed")
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// One line from standard input, without its line ending, as a secret.
fn read_password_line() -> anyhow::Result<secrecy::SecretString> {
    use std::io::{BufRead, IsTerminal, Read};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "Type the new password and press Enter. It is shown as you type; \
             to avoid that, pipe it in (see docs/operations.md)."
        );
    }
    // bcrypt reads 72 bytes at most and longer passwords are refused anyway;
    // the cap bounds what is read, and the buffer never grows (a growing
    // buffer would leave copies behind).
    const CAP: u64 = 4096;
    let mut line = String::with_capacity(CAP as usize + 1);
    stdin.lock().take(CAP).read_line(&mut line).map_err(|e| {
        zeroize::Zeroize::zeroize(&mut line);
        anyhow::anyhow!("cannot read the new password from standard input: {e}")
    })?;
    // An exact-size copy (no reallocation leaves a copy behind), then the
    // read buffer is wiped.
    let password = secrecy::SecretString::from(line.trim_end_matches(['\n', '\r']).to_owned());
    zeroize::Zeroize::zeroize(&mut line);
    if secrecy::ExposeSecret::expose_secret(&password).is_empty() {
        anyhow::bail!(
            "no password on standard input: send the new password as one line; nothing was changed"
        );
    }
    Ok(password)
}

async fn admin(config: Config, action: AdminAction) -> anyhow::Result<()> {
    match action {
        AdminAction::Clients { action } => clients(config, action).await,
        AdminAction::Users { action } => users(config, action).await,
        AdminAction::RotateKey => {
            let state = crate::server::offline_state(config).await?;
            let report = crate::service::connect::rotate_key(&state).await;
            state.db.close_by_ref().await?;
            println!("{}", serde_json::to_string(&report?)?);
            Ok(())
        }
        AdminAction::Purge => {
            let state = crate::server::offline_state(config).await?;
            let report = crate::service::cleanup::purge(&state).await?;
            println!("{}", serde_json::to_string(&report)?);
            state.db.close_by_ref().await?;
            Ok(())
        }
        AdminAction::Audit { user, limit } => {
            let state = crate::server::offline_state(config).await?;
            let mut cursor: Option<String> = None;
            let mut left = limit.max(0);
            while left > 0 {
                let page = crate::service::audit::list(
                    &state,
                    user,
                    Some(left.min(crate::service::audit::MAX_LIMIT)),
                    cursor.as_deref(),
                )
                .await?;
                left -= page.events.len() as i64;
                for e in page.events {
                    let line = serde_json::json!({
                        "at": e.at,
                        "user_id": e.user_id,
                        "action": e.action,
                        "credential_id": e.credential_id,
                        "target": e.target,
                        "ip": e.ip,
                        "user_agent": e.user_agent,
                        "request_id": e.request_id,
                        "details": e.details,
                    });
                    println!("{line}");
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            state.db.close_by_ref().await?;
            Ok(())
        }
    }
}

async fn migrate(config: Config, action: MigrateAction) -> anyhow::Result<()> {
    let target = db::describe(&config);
    let conn = db::connect(&config)
        .await
        .map_err(|e| anyhow::anyhow!("database ({target}): {e}"))?;
    match action {
        MigrateAction::Up => {
            Migrator::up(&conn, None).await?;
            println!("all migrations applied ({target})");
        }
        MigrateAction::Down { steps } => {
            Migrator::down(&conn, Some(steps)).await?;
            println!("rolled back {steps} migration(s) ({target})");
        }
        MigrateAction::Status => {
            for m in Migrator::get_migration_with_status(&conn).await? {
                println!("{:8} {}", m.status().to_string().to_lowercase(), m.name());
            }
        }
    }
    conn.close().await?;
    Ok(())
}
