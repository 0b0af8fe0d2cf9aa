//! Harness for the end-to-end suite: real servers on random loopback ports,
//! backed by a real SQLite file or a real Postgres database of their own,
//! driven through `mcpgate-client`.
//!
//! Postgres runs when `MCPGATE_TEST_POSTGRES_URL` is set (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`): every server gets a fresh
//! database, dropped afterwards. The browser tests ([`browser`]) run when
//! Chromium and chromedriver are installed.
//!
//! # Skips
//!
//! A test that cannot run here (no Postgres configured, no browser
//! installed) passes after calling [`skip`], which writes one line
//! `skipped <test> ...: <what to do to run it>` straight to the process's
//! standard error. Straight, not through `eprintln!`: libtest captures the
//! print macros of passing tests and would swallow the notice, so the line
//! shows in every `cargo test` run and `.ci/run` can refuse any log with a
//! line starting `skipped `. Under `CI=true` (or `CI=1`) a skip is a
//! failure instead: the test panics with a sentence saying what to set or
//! install.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "the test harness: a failed unwrap is a failed test, with its message"
)]

use std::{
    io::Write,
    sync::{Arc, Mutex, Once, OnceLock},
};

use mcpgate_client::{types, Client, ClientInfo};
use mcpgate_server::{
    clock::ManualClock,
    config::Config,
    server::{RunningServer, Server},
};
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`: the last segment of the test's name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A test's path as libtest names it: `module_path!()` without the crate,
/// such as `keys::create_and_list` for `e2e::keys::create_and_list`.
pub fn test_path(module_path: &str) -> &str {
    module_path
        .split_once("::")
        .map_or(module_path, |(_, rest)| rest)
}

/// The admin URL of the test Postgres server, if configured.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("MCPGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Whether `CI` is set to `true` or `1`: skipping is then a failure.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Record that `what` (a test and the half of it that cannot run, such as
/// `"keys::list on postgres"`) was skipped; `how_to_enable` says what to set
/// or install to run it. Writes `skipped <what>: <how_to_enable>` on a line
/// of its own directly to fd 2, past libtest's capture; panics instead under
/// `CI=true`. See the module documentation.
pub fn skip(what: &str, how_to_enable: &str) {
    if in_ci() {
        panic!("CI is set, so {what} must not be skipped: {how_to_enable}");
    }
    // One write of the whole line, starting on a fresh line, so it is never
    // glued to libtest's `test name ... ` or to another test's notice.
    let line = format!("\nskipped {what}: {how_to_enable}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Whether the suite can run on `backend`; when Postgres is not configured
/// the test is [`skip`]ped (a failure under `CI=true`).
pub fn backend_available(backend: Backend, test: &str) -> bool {
    if backend == Backend::Sqlite || postgres_admin_url().is_some() {
        return true;
    }
    skip(
        &format!("{test} on postgres"),
        "set MCPGATE_TEST_POSTGRES_URL (for example postgres://postgres@127.0.0.1:5432/postgres) to run it",
    );
    false
}

/// Declare end-to-end tests that run once per backend:
/// `e2e! { async fn name(backend) { ... } }` expands to `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! e2e {
    ($($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block)*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($backend: $crate::Backend) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run($crate::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::backend_available(
                        $crate::Backend::Postgres,
                        $crate::test_path(module_path!()),
                    ) {
                        run($crate::Backend::Postgres).await
                    }
                }
            }
        )*
    };
}

pub mod browser;
pub mod mcp;
pub mod oauth;
pub mod proxy;
pub mod spec;

// ---------------------------------------------------------------- logs

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

static LOGS: OnceLock<Capture> = OnceLock::new();
static INIT_LOGS: Once = Once::new();

/// Capture every log line of every server in this test process, at TRACE.
fn init_logs() {
    INIT_LOGS.call_once(|| {
        let capture = LOGS.get_or_init(Capture::default).clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(capture)
            .try_init();
    });
}

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remember a secret the suite handled (a key, a password): every server
/// stop scans all captured logs for every secret remembered so far, so a
/// leak anywhere in the run fails the suite.
pub fn remember_secret(secret: &str) {
    // For keys, the part after the public id is what must never leak.
    let tail = if secret.starts_with("mcpg_") && secret.len() > 22 {
        &secret[22..]
    } else {
        secret
    };
    if tail.len() >= 8 {
        SECRETS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tail.to_owned());
    }
}

/// Fail if any remembered secret appears in the captured logs.
pub fn assert_no_secret_in_logs() {
    let logs = captured_logs();
    let secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for secret in secrets {
        assert!(
            !logs.contains(&secret),
            "a secret handled by the suite reached the logs"
        );
    }
}

/// Everything logged so far by any server in this process.
pub fn captured_logs() -> String {
    LOGS.get()
        .map(|c| {
            String::from_utf8_lossy(&c.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- postgres

/// A Postgres database created for one server, dropped with it.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> Self {
        let name = format!("mcpgate_e2e_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url)
            .await
            .expect("connect to the test Postgres");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        Self {
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    fn url(&self) -> String {
        // Same server and credentials as the admin URL, our database name.
        let (base, query) = match self.admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (self.admin_url.as_str(), String::new()),
        };
        let authority_start = base.find("://").map_or(0, |i| i + 3);
        let base = match base[authority_start..].find('/') {
            Some(i) => &base[..authority_start + i],
            None => base,
        };
        format!("{base}/{}{query}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any async context we can rely on: use a thread
        // with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = Database::connect(&admin_url).await.ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
    }
}

// ---------------------------------------------------------------- servers

/// A running mcpgate with its own data dir, database and manual clock.
pub struct TestServer {
    running: Option<RunningServer>,
    pub url: String,
    pub clock: Arc<ManualClock>,
    pub backend: Backend,
    config: Config,
    /// Every response of this server (and its replicas) against the spec.
    pub spec: spec::SpecCheck,
    _dir: tempfile::TempDir,
    /// Kept until the server is dropped: dropping it drops the database.
    _pg: Option<PgDatabase>,
}

impl TestServer {
    /// Start with the default test configuration.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Start after `customize` adjusts the configuration.
    pub async fn start_with(backend: Backend, customize: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(backend, "127.0.0.1", customize).await
    }

    /// Like [`TestServer::start_with`] on another loopback address (e.g.
    /// `127.0.0.2`): browsers keep cookies per host, not per port, so two
    /// servers one browser visits must not share a host.
    pub async fn start_on(
        backend: Backend,
        host: &str,
        customize: impl FnOnce(&mut Config),
    ) -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                PgDatabase::create(&postgres_admin_url().expect("MCPGATE_TEST_POSTGRES_URL")).await,
            ),
        };
        let clock = Arc::new(ManualClock::starting_now());
        // A free port known in advance, so the public URL (the OAuth issuer
        // and base of every resource) is the server's real address. Another
        // test may grab the port first: then pick again.
        let mut base = Config {
            data_dir: dir.path().join("data"),
            database_url: pg.as_ref().map(|p| SecretString::from(p.url())),
            database_max_connections: 5,
            shutdown_timeout_secs: 5,
            ..Config::default()
        };
        customize(&mut base);
        let own_public_url = base.public_url == Config::default().public_url;
        let spec = spec::SpecCheck::default();
        let mut attempt = 0;
        let (config, running) = loop {
            attempt += 1;
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut config = base.clone();
            config.listen = format!("{host}:{port}").parse().expect("addr");
            if own_public_url {
                config.public_url = format!("http://{host}:{port}");
            }
            config.validate().expect("valid test config");
            match Server::start_wrapped(config.clone(), clock.clone(), Some(spec.around())).await {
                Ok(running) => break (config, running),
                Err(mcpgate_server::server::StartError::Listen { .. }) if attempt < 5 => continue,
                Err(e) => panic!("server starts: {e}"),
            }
        };
        Self {
            url: running.url(),
            running: Some(running),
            clock,
            backend,
            config,
            spec,
            _dir: dir,
            _pg: pg,
        }
    }

    /// A second server on the same database, data dir (so the same master
    /// key) and public URL, on its own port: a replica behind a load balancer.
    pub async fn replica(&self) -> Replica {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().expect("addr");
        let running = Server::start_wrapped(config, self.clock.clone(), Some(self.spec.around()))
            .await
            .expect("replica starts");
        Replica {
            url: running.url(),
            running: Some(running),
        }
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stop, change the configuration, and start again on the same database,
    /// data dir, port and clock.
    pub async fn reconfigure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self.restart().await
    }

    /// Stop gracefully and start again on the same database, data dir and clock.
    pub async fn restart(mut self) -> Self {
        let running = self.running.take().expect("running");
        running.shutdown().await.expect("graceful shutdown");
        let running = Server::start_wrapped(
            self.config.clone(),
            self.clock.clone(),
            Some(self.spec.around()),
        )
        .await
        .expect("server restarts");
        self.url = running.url();
        self.running = Some(running);
        self
    }

    /// Stop gracefully, then check that no secret seen so far was logged
    /// and that every response matched the spec.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("graceful shutdown");
        }
        assert_no_secret_in_logs();
        self.spec.assert_clean();
    }

    /// The server's state (database, config) for assertions on storage.
    pub fn state(&self) -> &mcpgate_server::state::AppState {
        &self.running.as_ref().expect("running").state
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Client {
        Client::anonymous(&self.url).expect("client")
    }

    /// A client sending `key`.
    pub fn with_key(&self, key: &str) -> Client {
        remember_secret(key);
        Client::with_api_key(&self.url, key.to_owned()).expect("client")
    }

    /// Register a user with a unique email; returns the registration.
    pub async fn register(&self) -> types::Registered {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        self.anonymous()
            .user_register()
            .body(types::RegisterRequest {
                name: Some("Test User".into()),
                email: Some(email),
                password: None,
            })
            .send()
            .await
            .expect("registration succeeds")
            .into_inner()
            .remembered()
    }

    /// Send a raw request through the client's HTTP stack (for bodies the
    /// typed client cannot express: malformed JSON, wrong content types).
    pub fn raw(
        &self,
        client: &Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        client
            .client()
            .request(method, format!("{}{path}", client.baseurl()))
    }
}

/// A replica started by [`TestServer::replica`].
pub struct Replica {
    pub url: String,
    running: Option<RunningServer>,
}

impl Replica {
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("graceful shutdown");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A test that panicked leaves its server running; stop accepting so
        // the port and the database are released.
        if let Some(running) = self.running.take() {
            drop(running);
        }
        // A test that never stops its server is checked here; one that
        // already failed is not failed twice.
        if !std::thread::panicking() {
            self.spec.assert_clean();
        }
    }
}

/// The status and body of an error response from the typed client.
pub fn expect_error<T: std::fmt::Debug>(
    result: Result<mcpgate_client::ResponseValue<T>, mcpgate_client::SendError>,
) -> (u16, types::Error) {
    match result {
        Err(mcpgate_client::SendError::ErrorResponse(rv)) => {
            (rv.status().as_u16(), rv.into_inner())
        }
        other => panic!("expected an error response, got {other:?}"),
    }
}

/// `key` with one character of its secret changed: same shape, wrong checksum.
pub fn typo(key: &str) -> String {
    let mut typo = key.to_owned();
    let replacement = if &key[30..31] == "a" { "b" } else { "a" };
    typo.replace_range(30..31, replacement);
    typo
}

/// Responses that carry a secret remember it for the log scan.
pub trait Remembered {
    fn remembered(self) -> Self;
}

impl Remembered for types::Registered {
    fn remembered(self) -> Self {
        remember_secret(&self.api_key);
        self
    }
}

impl Remembered for types::ApiKeyCreated {
    fn remembered(self) -> Self {
        remember_secret(&self.api_key);
        self
    }
}
