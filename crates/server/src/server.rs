//! Running a server: connect, migrate, serve, and shut down gracefully.
//!
//! On SIGTERM or SIGINT the listener stops accepting, in-flight requests get
//! `shutdown_timeout_secs` to finish, the usage counters are flushed and the
//! pool is closed. Tests start servers in-process with [`Server::start`] and
//! stop them with [`RunningServer::shutdown`], which takes the same path.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::listener::{Acceptor, Listener, TcpListener};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::{
    clock::{Clock, SystemClock},
    config::Config,
    db,
    master_key::{KeySource, MasterKey},
    service::usage::UsageTracker,
    state::AppState,
};

/// A start-up failure, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database ({target}): {source}")]
    Database {
        target: String,
        source: sea_orm::DbErr,
    },
    #[error("{0}")]
    MasterKey(#[from] crate::master_key::MasterKeyError),
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Server;

/// A wrapper around the whole application, for embedding mcpgate in a larger
/// poem service: extra middleware outside every route (the end-to-end suite
/// checks every response against `openapi.yaml` this way).
pub type Around = Arc<
    dyn Fn(
            poem::endpoint::BoxEndpoint<'static, poem::Response>,
        ) -> poem::endpoint::BoxEndpoint<'static, poem::Response>
        + Send
        + Sync,
>;

/// A server running in the background.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Connect, migrate, load the master key and start serving with the
    /// system clock.
    pub async fn start(config: Config) -> Result<RunningServer, StartError> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`Server::start`] with a given clock.
    pub async fn start_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<RunningServer, StartError> {
        Self::start_wrapped(config, clock, None).await
    }

    /// Like [`Server::start_with_clock`], serving the application wrapped
    /// by `around`.
    pub async fn start_wrapped(
        config: Config,
        clock: Arc<dyn Clock>,
        around: Option<Around>,
    ) -> Result<RunningServer, StartError> {
        let state = prepare(config, clock).await?;
        crate::service::oauth::clients::ensure_docs_client(&state)
            .await
            .map_err(|e| StartError::Database {
                target: db::describe(&state.config),
                source: match e {
                    crate::error::Error::Database(d) => d,
                    other => sea_orm::DbErr::Custom(other.to_string()),
                },
            })?;
        let target = db::describe(&state.config);
        let addr = state.config.listen;
        let acceptor = TcpListener::bind(addr)
            .into_acceptor()
            .await
            .map_err(|source| StartError::Listen { addr, source })?;
        let acceptor = crate::listener::Guarded::new(
            acceptor,
            crate::listener::Limits::from_config(&state.config),
            Default::default(),
        );
        let local = acceptor
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
            .unwrap_or(addr);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run(acceptor, state.clone(), rx, around));
        tracing::info!(
            listen = %local,
            public_url = %state.config.public_url,
            database = %target,
            "mcpgate listening: open {}/ in a browser",
            state.config.public_url
        );
        Ok(RunningServer {
            addr: local,
            state,
            shutdown: Some(tx),
            task,
        })
    }
}

/// Everything a server needs before it listens: the database (connected and
/// migrated) and the master key, assembled into the application state.
async fn prepare(mut config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
    // Loading validated already; a config built in code is checked (and its
    // derived fields filled) here.
    config
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
    let target = db::describe(&config);
    let database = |source| StartError::Database {
        target: target.clone(),
        source,
    };
    let conn = db::connect(&config).await.map_err(database)?;
    db::migrate(&conn).await.map_err(database)?;
    let (master_key, source) = MasterKey::load(&config)?;
    match source {
        KeySource::GeneratedFile(path) => tracing::warn!(
            path = %path.display(),
            "generated a new master key file (mode 0600); back it up, or set \
             MCPGATE_ENCRYPTION_KEY or MCPGATE_ENCRYPTION_KEY_FILE in production"
        ),
        KeySource::ExistingFile(path) => {
            tracing::info!(path = %path.display(), "using the master key file")
        }
        KeySource::Configured => tracing::info!("using the configured master key"),
    }
    let previous = config
        .encryption_key_previous
        .as_ref()
        .map(|k| {
            MasterKey::from_base64(
                secrecy::ExposeSecret::expose_secret(k),
                "encryption_key_previous",
            )
        })
        .transpose()?;
    let keyring = crate::crypto::Keyring::new(&master_key, previous.as_slice());
    let identity = crate::identity::IdentityKeys::new(
        &master_key,
        previous.as_slice(),
        config.identity_key_rotation_days,
    );
    let catalog = crate::service::catalog::Catalog::build(&config.providers)
        .map_err(|e| StartError::Config(e.to_string()))?;
    let search_slots = crate::service::search_gate::global_slots(config.database_max_connections);
    Ok(AppState {
        keyring: Arc::new(keyring),
        identity: Arc::new(identity),
        catalog: Arc::new(catalog),
        db: conn,
        config: Arc::new(config),
        clock,
        usage: Arc::new(UsageTracker::default()),
        master_key: Arc::new(master_key),
        limiter: Arc::default(),
        metrics: Arc::default(),
        bcrypt: Arc::new(crate::service::passwords::new_gate()),
        search_gate: Arc::new(crate::service::search_gate::SearchGate::new(search_slots)),
    })
}

/// The application state without a listener, for operator commands and
/// benchmarks: connects, applies pending migrations, uses the system clock.
pub async fn offline_state(config: Config) -> Result<AppState, StartError> {
    prepare(config, Arc::new(SystemClock)).await
}

async fn run(
    acceptor: impl Acceptor + 'static,
    state: AppState,
    stop: oneshot::Receiver<()>,
    around: Option<Around>,
) -> std::io::Result<()> {
    let (stop_flusher, flusher_stopped) = tokio::sync::watch::channel(false);
    let flusher = tokio::spawn(flush_loop(state.clone(), flusher_stopped.clone()));
    let cleaner = tokio::spawn(cleanup_loop(state.clone(), flusher_stopped.clone()));
    let refresher = tokio::spawn(refresh_loop(state.clone(), flusher_stopped));
    let timeout = state.config.shutdown_timeout();
    let mut server = poem::Server::new_with_acceptor(acceptor);
    if state.config.idle_timeout_secs > 0 {
        server = server.idle_timeout(Duration::from_secs(state.config.idle_timeout_secs));
    }
    let app = poem::EndpointExt::boxed(crate::http::app(state.clone()));
    let app = match around {
        Some(around) => around(app),
        None => app,
    };
    let result = server
        .run_with_graceful_shutdown(
            app,
            async {
                let _ = stop.await;
            },
            Some(timeout),
        )
        .await;
    // Let a flush in progress finish; never abort one halfway.
    let _ = stop_flusher.send(true);
    let _ = flusher.await;
    let _ = cleaner.await;
    let _ = refresher.await;
    match state.usage.flush(&state.db).await {
        Ok(n) => {
            state.metrics.usage_flush("ok");
            tracing::info!(keys = n, "flushed key usage")
        }
        Err(e) => {
            state.metrics.usage_flush("error");
            tracing::error!(error = %e, "could not flush key usage at shutdown")
        }
    }
    if let Err(e) = state.db.close_by_ref().await {
        tracing::warn!(error = %e, "closing the database pool");
    }
    tracing::info!("mcpgate stopped");
    result
}

async fn flush_loop(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(state.config.usage_flush_interval());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        match state.usage.flush(&state.db).await {
            Ok(_) => state.metrics.usage_flush("ok"),
            Err(e) => {
                state.metrics.usage_flush("error");
                tracing::warn!(error = %e, "key usage flush failed; will retry");
            }
        }
    }
}

/// Run `job` every `secs` seconds (never when 0) until `stop` changes; a run
/// in progress is never cut short.
async fn every<F, Fut>(secs: u64, mut stop: tokio::sync::watch::Receiver<bool>, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if secs == 0 {
        return;
    }
    let period = std::time::Duration::from_secs(secs);
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        job().await;
    }
}

async fn cleanup_loop(state: AppState, stop: tokio::sync::watch::Receiver<bool>) {
    every(state.config.cleanup_interval_secs, stop, || async {
        match crate::service::cleanup::purge(&state).await {
            Ok(report) => tracing::info!(
                expired_rotation_secrets = report.expired_rotation_secrets,
                expired_sessions = report.expired_sessions,
                expired_codes = report.expired_codes,
                expired_access_tokens = report.expired_access_tokens,
                dead_grants = report.dead_grants,
                unused_clients = report.unused_clients,
                expired_connect_states = report.expired_connect_states,
                expired_idempotency_keys = report.expired_idempotency_keys,
                "purged expired data"
            ),
            Err(e) => tracing::warn!(error = %e, "purge failed; will retry"),
        }
    })
    .await
}

/// Refresh connections ahead of expiry, every `connect_refresh_interval_secs`.
async fn refresh_loop(state: AppState, stop: tokio::sync::watch::Receiver<bool>) {
    every(state.config.connect_refresh_interval_secs, stop, || async {
        match crate::service::connect::refresh_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(connections = n, "refreshed connections ahead of expiry"),
            Err(e) => tracing::warn!(error = %e, "background refresh failed; will retry"),
        }
    })
    .await
}

impl RunningServer {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop gracefully: finish in-flight requests, flush usage, close the pool.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.map_err(std::io::Error::other)?
    }

    /// Wait until the server stops (after a signal, for the binary).
    pub async fn wait(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::select! {
            r = &mut self.task => return r.map_err(std::io::Error::other)?,
            _ = signal => {}
        }
        self.shutdown().await
    }
}
