//! A real browser for the end-to-end suite: headless Chromium driven over
//! WebDriver by fantoccini, through a chromedriver on loopback.
//!
//! Every test gets its own chromedriver (on a free port, killed when the
//! test ends), its own session and its own profile directory, so tests run
//! in parallel without sharing cookies or windows. Without Chromium or
//! chromedriver ([`Browser::start`] looks at `/usr/bin/chromium` and
//! `/usr/bin/chromedriver`, or at `CHROMIUM` and `CHROMEDRIVER`) a browser
//! test is [skipped](crate::skip), which fails under `CI=true`.
//!
//! Tests are declared with [`browser_e2e!`](crate::browser_e2e), which runs
//! each one on both backends like `e2e!` and hands the body a [`Browser`];
//! [`Browser::run`] saves a screenshot and the page source of a failing test
//! under `target/browser-failures/` and fails a test whose pages logged
//! errors to the browser console.

use std::{
    any::Any,
    collections::HashSet,
    future::Future,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use fantoccini::{
    elements::Element,
    wd::{Capabilities, WebDriverCompatibleCommand, WindowHandle},
    Client, ClientBuilder, Locator,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};

/// How long a wait for an element, a URL or a window may take.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a whole browser test body may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(50);

/// Declare browser tests that run once per backend, like `e2e!`:
/// `browser_e2e! { async fn name(backend, browser) { ... } }` expands to
/// `name::sqlite` and `name::postgres`, each starting its own [`Browser`]
/// (or skipping when none is installed) and running the body through
/// [`Browser::run`]. The body is an `async move` block: it owns `backend`
/// (a [`Backend`](crate::Backend)) and `browser`.
#[macro_export]
macro_rules! browser_e2e {
    ($($(#[$meta:meta])* async fn $name:ident($backend:ident, $browser:ident) $body:block)*) => {
        $crate::e2e! {
            $(
                $(#[$meta])*
                async fn $name($backend) {
                    let test = format!(
                        "{}::{}",
                        $crate::test_path(module_path!()),
                        $backend.name()
                    );
                    if let Some(browser) = $crate::browser::Browser::start(&test).await {
                        browser.run(move |$browser| async move $body).await;
                    }
                }
            )*
        }
    };
}

/// One entry of the browser's console log.
#[derive(Debug, Clone)]
pub struct ConsoleEntry {
    /// `SEVERE`, `WARNING`, `INFO` or `DEBUG`.
    pub level: String,
    /// Where it came from: `console-api`, `javascript`, `network`, `security`…
    pub source: String,
    pub message: String,
}

/// The chromedriver process and the profile directory of one test, kept
/// until the last [`Browser`] handle is dropped.
struct Driver {
    _process: tokio::process::Child,
    _profile: tempfile::TempDir,
}

/// A WebDriver session in headless Chromium. Cheap to clone: clones share
/// the session. Helpers panic with a sentence naming what was expected, so
/// a test reads as a list of steps.
#[derive(Clone)]
pub struct Browser {
    client: Client,
    test: Arc<str>,
    /// Pages (URLs of `Document` responses) that came with an error status.
    error_pages: Arc<Mutex<HashSet<String>>>,
    _driver: Arc<Driver>,
}

impl Browser {
    /// Start chromedriver and open a session for `test` (the name failure
    /// artifacts are saved under). Returns `None`, after [`crate::skip`],
    /// when Chromium or chromedriver is not installed.
    pub async fn start(test: &str) -> Option<Browser> {
        let chromium = program("CHROMIUM", "/usr/bin/chromium");
        let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        if !chromium.is_file() || !chromedriver.is_file() {
            crate::skip(
                &format!("{test} (browser)"),
                "install chromium and chromium-driver to run it",
            );
            return None;
        }
        let profile = tempfile::tempdir().expect("browser profile directory");
        let (process, webdriver_url) = spawn_chromedriver(&chromedriver).await;
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities(&chromium, profile.path()))
            .connect(&webdriver_url)
            .await
            .unwrap_or_else(|e| panic!("open a WebDriver session at {webdriver_url}: {e}"));
        Some(Browser {
            client,
            test: test.into(),
            error_pages: Arc::default(),
            _driver: Arc::new(Driver {
                _process: process,
                _profile: profile,
            }),
        })
    }

    /// Run `body` with this browser. If it panics (or takes longer than two
    /// minutes), save a screenshot and the page source under
    /// `target/browser-failures/<test>.{png,html}` and fail with its panic;
    /// if it passes but the pages logged errors to the console, fail with
    /// them. The session is closed either way.
    pub async fn run<F, Fut>(self, body: F)
    where
        F: FnOnce(Browser) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // What an earlier failing run left describes that run, not this one.
        let (png, html) = self.failure_paths();
        let _ = std::fs::remove_file(&png);
        let _ = std::fs::remove_file(&html);
        let outcome = tokio::spawn(tokio::time::timeout(TEST_TIMEOUT, body(self.clone()))).await;
        let mut failure: Option<Failure> = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(_)) => Some(Failure::Message(format!(
                "{} did not finish within {} s",
                self.test,
                TEST_TIMEOUT.as_secs()
            ))),
            Err(e) if e.is_panic() => Some(Failure::Panic(e.into_panic())),
            Err(e) => Some(Failure::Message(format!("{}: {e}", self.test))),
        };
        if failure.is_none() {
            let errors = self.console_errors().await;
            if !errors.is_empty() {
                failure = Some(Failure::Message(format!(
                    "the browser console logged errors: {errors:#?}"
                )));
            }
        }
        if failure.is_some() {
            self.save_failure().await;
        }
        let _ = tokio::time::timeout(WAIT, self.client.clone().close()).await;
        match failure {
            None => {}
            Some(Failure::Panic(payload)) => std::panic::resume_unwind(payload),
            Some(Failure::Message(message)) => panic!("{message}"),
        }
    }

    /// The fantoccini client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Navigate to `url` and wait for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element matching `css`, waiting for it up to [`WAIT`].
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "no element `{css}` appeared within {} s on {}: {e}",
                WAIT.as_secs(),
                self.current_url().await
            ),
        }
    }

    /// Whether an element matching `css` is on the page now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        self.client
            .find_all(Locator::Css(css))
            .await
            .is_ok_and(|found| !found.is_empty())
    }

    /// Replace the value of the input matching `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.wait_for(css).await;
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear `{css}`: {e}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    /// Click the element matching `css` (waiting for it first).
    pub async fn click(&self, css: &str) {
        self.wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// The visible text of the element matching `css` (waiting for it first).
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("read the text of `{css}`: {e}"))
    }

    /// The URL of the current page.
    pub async fn current_url(&self) -> url::Url {
        self.client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("read the current URL: {e}"))
    }

    /// Wait up to [`WAIT`] until the current URL satisfies `ready`;
    /// `expected` says what was awaited, for the failure message.
    pub async fn wait_for_url(
        &self,
        expected: &str,
        ready: impl Fn(&url::Url) -> bool,
    ) -> url::Url {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let url = self.current_url().await;
            if ready(&url) {
                return url;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "the browser did not reach {expected} within {} s; it is on {url}",
                    WAIT.as_secs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The current page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.client
            .source()
            .await
            .unwrap_or_else(|e| panic!("read the page source: {e}"))
    }

    /// A PNG screenshot of the current window.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("take a screenshot: {e}"))
    }

    /// Every console entry logged since the last call (chromedriver hands
    /// each entry out once), across every page and window of the session.
    pub async fn console_log(&self) -> Vec<ConsoleEntry> {
        self.read_log("browser")
            .await
            .iter()
            .map(|e| ConsoleEntry {
                level: e["level"].as_str().unwrap_or_default().to_owned(),
                source: e["source"].as_str().unwrap_or_default().to_owned(),
                message: e["message"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// The console entries at level `SEVERE` (script errors, CSP violations,
    /// failed loads of scripts, styles and images) since the last read of
    /// the log. Not counted: the entry Chromium logs when a page itself
    /// comes with an error status (a login page answering 401, a 404 page),
    /// which is the server's answer and checked by the test; the
    /// performance log tells which URLs were pages.
    pub async fn console_errors(&self) -> Vec<ConsoleEntry> {
        let errors: Vec<ConsoleEntry> = self
            .console_log()
            .await
            .into_iter()
            .filter(|e| e.level == "SEVERE")
            .collect();
        // Read the network events after the console: every page the console
        // names has had its response by then (and is looked for once more
        // after a moment, in case the two logs raced).
        let mut retried = false;
        loop {
            self.note_pages().await;
            let left: Vec<ConsoleEntry> = {
                let pages = self.error_pages.lock().unwrap_or_else(|e| e.into_inner());
                errors
                    .iter()
                    .filter(|e| !page_status(e).is_some_and(|url| pages.contains(url)))
                    .cloned()
                    .collect()
            };
            let unsure = left.iter().any(|e| page_status(e).is_some());
            if retried || !unsure {
                return left;
            }
            retried = true;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Remember, from the performance log, every page (a `Document`
    /// response) that came with an error status.
    async fn note_pages(&self) {
        let events = self.read_log("performance").await;
        let mut pages = self.error_pages.lock().unwrap_or_else(|e| e.into_inner());
        for event in events {
            let Some(message) = event["message"].as_str() else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<serde_json::Value>(message) else {
                continue;
            };
            let m = &message["message"];
            let params = &m["params"];
            if m["method"] == "Network.responseReceived"
                && params["type"] == "Document"
                && params["response"]["status"]
                    .as_u64()
                    .is_some_and(|s| s >= 400)
            {
                if let Some(url) = params["response"]["url"].as_str() {
                    pages.insert(url.to_owned());
                }
            }
        }
    }

    /// The entries of chromedriver's log `kind` since the last read.
    async fn read_log(&self, kind: &'static str) -> Vec<serde_json::Value> {
        match self.client.issue_cmd(ReadLog(kind)).await {
            Ok(serde_json::Value::Array(entries)) => entries,
            Ok(other) => panic!("the {kind} log is not a list: {other}"),
            Err(e) => panic!("read the {kind} log: {e}"),
        }
    }

    /// Fail if any page since the last read of the log logged an error;
    /// `page` names where the test is, for the message.
    pub async fn assert_console_clean(&self, page: &str) {
        let errors = self.console_errors().await;
        assert!(
            errors.is_empty(),
            "the browser console logged errors on {page}: {errors:#?}"
        );
    }

    /// The handle of the current window.
    pub async fn window(&self) -> WindowHandle {
        self.client
            .window()
            .await
            .unwrap_or_else(|e| panic!("read the current window: {e}"))
    }

    /// The handles of every open window and tab.
    pub async fn windows(&self) -> Vec<WindowHandle> {
        self.client
            .windows()
            .await
            .unwrap_or_else(|e| panic!("list the windows: {e}"))
    }

    /// Open a new tab and switch to it; returns its handle.
    pub async fn open_tab(&self) -> WindowHandle {
        let handle = self
            .client
            .new_window(true)
            .await
            .unwrap_or_else(|e| panic!("open a tab: {e}"))
            .handle;
        self.switch_to(&handle).await;
        handle
    }

    /// Make `window` the one commands act on.
    pub async fn switch_to(&self, window: &WindowHandle) {
        self.client
            .switch_to_window(window.clone())
            .await
            .unwrap_or_else(|e| panic!("switch to window {window:?}: {e}"));
    }

    /// Wait up to [`WAIT`] for a window not in `known` (a popup the page
    /// opened), switch to it and return its handle.
    pub async fn wait_for_new_window(&self, known: &[WindowHandle]) -> WindowHandle {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(new) = self
                .windows()
                .await
                .into_iter()
                .find(|w| !known.contains(w))
            {
                self.switch_to(&new).await;
                return new;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no new window opened within {} s",
                WAIT.as_secs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Close the current window; switch to another with [`Browser::switch_to`].
    pub async fn close_window(&self) {
        self.client
            .close_window()
            .await
            .unwrap_or_else(|e| panic!("close the window: {e}"));
    }

    /// `target/browser-failures/<test>.png` and `.html`, with the `::` of
    /// the test's name as dots.
    fn failure_paths(&self) -> (PathBuf, PathBuf) {
        let dir = target_dir().join("browser-failures");
        let stem = self.test.replace("::", ".");
        (
            dir.join(format!("{stem}.png")),
            dir.join(format!("{stem}.html")),
        )
    }

    /// Save the screenshot and source of the current page under
    /// `target/browser-failures/`, best effort.
    async fn save_failure(&self) {
        let (png, html) = self.failure_paths();
        if let Some(dir) = png.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("could not create {}: {e}", dir.display());
                return;
            }
        }
        match tokio::time::timeout(WAIT, self.client.screenshot()).await {
            Ok(Ok(bytes)) => match std::fs::write(&png, bytes) {
                Ok(()) => eprintln!("screenshot of the failing page: {}", png.display()),
                Err(e) => eprintln!("could not write {}: {e}", png.display()),
            },
            Ok(Err(e)) => eprintln!("no screenshot of the failing page: {e}"),
            Err(_) => eprintln!("no screenshot of the failing page: the browser did not answer"),
        }
        let url = match tokio::time::timeout(WAIT, self.client.current_url()).await {
            Ok(Ok(url)) => url.to_string(),
            _ => "an unknown URL".into(),
        };
        match tokio::time::timeout(WAIT, self.client.source()).await {
            Ok(Ok(source)) => {
                let saved = format!("<!-- {url} -->\n{source}");
                match std::fs::write(&html, saved) {
                    Ok(()) => eprintln!("source of the failing page ({url}): {}", html.display()),
                    Err(e) => eprintln!("could not write {}: {e}", html.display()),
                }
            }
            Ok(Err(e)) => eprintln!("no source of the failing page: {e}"),
            Err(_) => eprintln!("no source of the failing page: the browser did not answer"),
        }
    }
}

enum Failure {
    Panic(Box<dyn Any + Send>),
    Message(String),
}

/// The URL of a page whose status the console `entry` reports, if that is
/// what it is: `<url> - Failed to load resource: the server responded with a
/// status of 404 (Not Found)`.
fn page_status(entry: &ConsoleEntry) -> Option<&str> {
    if entry.source != "network" {
        return None;
    }
    entry
        .message
        .split_once(" - Failed to load resource: the server responded with a status of ")
        .map(|(url, _)| url)
}

/// `POST /session/{id}/se/log {"type": <kind>}`: one of chromedriver's logs
/// (`browser`, the console; `performance`, DevTools events), which
/// fantoccini does not wrap. Each entry is handed out once.
#[derive(Debug)]
struct ReadLog(&'static str);

impl WebDriverCompatibleCommand for ReadLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({ "type": self.0 }).to_string();
        (http::Method::POST, Some(body))
    }
}

/// The path in environment variable `var`, else `default`.
fn program(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The session's capabilities: headless Chromium with its own profile, no
/// insecure certificates, the console log kept for [`Browser::console_log`]
/// and the network events for [`Browser::console_errors`].
fn capabilities(chromium: &Path, profile: &Path) -> Capabilities {
    let caps = serde_json::json!({
        "browserName": "chrome",
        "acceptInsecureCerts": false,
        "pageLoadStrategy": "normal",
        "timeouts": { "pageLoad": 30_000, "script": 10_000, "implicit": 0 },
        "goog:loggingPrefs": { "browser": "ALL", "performance": "ALL" },
        "goog:chromeOptions": {
            "binary": chromium,
            "perfLoggingPrefs": { "enableNetwork": true, "enablePage": false },
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    match caps {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("capabilities are a JSON object"),
    }
}

/// Start chromedriver on a free loopback port and wait until it is ready;
/// returns the process and its URL. Another process may take the port
/// between our probe and chromedriver's bind: then try another.
async fn spawn_chromedriver(chromedriver: &Path) -> (tokio::process::Child, String) {
    let http = mcpgate_client::http_client_builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    for _attempt in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut process = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let url = format!("http://127.0.0.1:{port}/");
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_exited)) = process.try_wait() {
                break;
            }
            let ready = match http.get(format!("{url}status")).send().await {
                Ok(resp) => resp
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|s| s["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return (process, url);
            }
            tokio::time::sleep(POLL).await;
        }
    }
    panic!(
        "{} did not answer on a loopback port within {} s, three times",
        chromedriver.display(),
        WAIT.as_secs()
    );
}

/// The workspace's target directory: `CARGO_TARGET_DIR` (relative to the
/// workspace when relative), else `<workspace>/target`.
fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

// ---------------------------------------------------------------- callback

/// A loopback HTTP listener standing in for an OAuth client's redirect URI
/// (`http://127.0.0.1:<port>/callback`): answers `200 ok` and records the
/// URL of every request to `/callback`, in order. Other paths (the
/// browser's `/favicon.ico`) get an empty 204 and are not recorded.
pub struct Callback {
    redirect_uri: String,
    received: mpsc::UnboundedReceiver<url::Url>,
    task: tokio::task::JoinHandle<()>,
}

impl Callback {
    /// Listen on a free loopback port.
    pub async fn start() -> Callback {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the callback listener");
        let port = listener.local_addr().expect("callback address").port();
        let origin = format!("http://127.0.0.1:{port}");
        let (tx, received) = mpsc::unbounded_channel();
        let task = tokio::spawn({
            let origin = origin.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(answer(stream, origin.clone(), tx.clone()));
                }
            }
        });
        Callback {
            redirect_uri: format!("{origin}/callback"),
            received,
            task,
        }
    }

    /// `http://127.0.0.1:<port>/callback`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The next request to `/callback`, waiting up to [`WAIT`] for it.
    pub async fn next(&mut self) -> url::Url {
        match tokio::time::timeout(WAIT, self.received.recv()).await {
            Ok(Some(url)) => url,
            _ => panic!(
                "{} received no request within {} s",
                self.redirect_uri,
                WAIT.as_secs()
            ),
        }
    }

    /// A request to `/callback` already received and not yet taken.
    pub fn try_next(&mut self) -> Option<url::Url> {
        self.received.try_recv().ok()
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Read one request head from `stream`, record it if it is for
/// `/callback`, answer and close.
async fn answer(
    mut stream: tokio::net::TcpStream,
    origin: String,
    tx: mpsc::UnboundedSender<url::Url>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("/");
    let url = url::Url::parse(&format!("{origin}{target}")).ok();
    let response: &[u8] = match url {
        Some(url) if url.path() == "/callback" => {
            let _ = tx.send(url);
            // An HTML page naming an empty icon, so the browser asks for no
            // `/favicon.ico` that could race the listener's end.
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: 55\r\nconnection: close\r\n\r\n<!doctype html><link rel=\"icon\" href=\"data:,\"><p>ok</p>"
        }
        // No content rather than a 404, which the console would log.
        _ => b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n",
    };
    let _ = stream.write_all(response).await;
    let _ = stream.shutdown().await;
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
