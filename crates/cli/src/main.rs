//! `mcpg`: the mcpgate command-line client, on top of `mcpgate-client`.
//!
//! Exit codes: 0 success, 1 other failure, 2 usage, 3 authentication (run
//! `mcpg login`, or check the key), 4 the request was refused (not found,
//! invalid, forbidden, rate limited), 5 the server or network failed.

mod args;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use mcpgate_client::ClientError;

use args::{Cli, Command};
use commands::{apps, auth, clients, connect, keys, memory};

/// A failure with its exit code.
pub struct Failure {
    pub code: u8,
    pub message: String,
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
            ClientError::Credential(_) => 3,
            ClientError::Login(_) | ClientError::Store(_) | ClientError::Build(_) => 1,
        };
        let message = match (&e, e.request_id()) {
            _ if e.needs_login() => format!("{e}: run `mcpg login`"),
            // What to quote to the operator, who finds it in the logs.
            (ClientError::Server { .. }, Some(id)) => format!("{e} (request {id})"),
            _ => e.to_string(),
        };
        Failure { code, message }
    }
}

pub fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "mcpg", &mut std::io::stdout());
            Ok(())
        }
        Command::Login { timeout, port } => {
            let (timeout, port) = (*timeout, *port);
            auth::login(cli, timeout, port).await
        }
        Command::Logout => auth::logout(&cli).await,
        Command::Whoami => auth::whoami(&cli).await,
        Command::Keys { action } => keys::keys(&cli, action).await,
        Command::Memory { action } => memory::memory(&cli, action).await,
        Command::Connect { action } => connect::connect(&cli, action).await,
        Command::Apps { action } => apps::apps(&cli, action).await,
        Command::Clients { action } => clients::clients(&cli, action).await,
    }
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
