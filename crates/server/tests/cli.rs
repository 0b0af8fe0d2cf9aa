//! The `mcpgate` binary as an operator runs it: help, migrations, a first
//! run with no configuration, and a SIGTERM that loses nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite: a failed unwrap is a failed test, with its message"
)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use mcpgate_client::{types, Client};

const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

/// A command with a clean environment: no inherited MCPGATE_* or DATABASE_URL.
fn mcpgate(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("MCPGATE_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = mcpgate(dir).args(args).output().expect("run mcpgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_names_the_commands_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = run(dir.path(), &["--help"]);
    assert!(ok);
    for word in [
        "serve",
        "migrate",
        "--listen",
        "--data-dir",
        "--config",
        "MCPGATE_CONFIG",
        "--log-format",
    ] {
        assert!(out.contains(word), "--help lacks {word}:\n{out}");
    }
    let (ok, out, _) = run(dir.path(), &["migrate", "--help"]);
    assert!(ok);
    for word in ["up", "down", "status"] {
        assert!(out.contains(word), "{out}");
    }
}

#[test]
fn migrate_up_down_status_on_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(dir.path(), &["migrate", "status"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("pending  m20261122_000001_users_and_api_keys"),
        "{out}"
    );
    let (ok, out, err) = run(dir.path(), &["migrate", "up"]);
    assert!(ok, "{err}");
    assert!(out.contains("all migrations applied"), "{out}");
    let (_, out, _) = run(dir.path(), &["migrate", "status"]);
    assert!(
        out.contains("applied  m20261122_000001_users_and_api_keys"),
        "{out}"
    );
    let (ok, out, err) = run(dir.path(), &["migrate", "down"]);
    assert!(ok, "{err}");
    assert!(out.contains("rolled back 1"), "{out}");
    let (_, out, _) = run(dir.path(), &["migrate", "status"]);
    assert!(out.contains("pending"), "{out}");
    assert!(dir.path().join("data/mcpgate.db").exists());
    // A data dir whose name would break a URL.
    let odd = dir.path().join("my data #1?x");
    let (ok, out, err) = run(
        dir.path(),
        &["--data-dir", odd.to_str().unwrap(), "migrate", "up"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("all migrations applied"), "{out}");
    assert!(odd.join("mcpgate.db").exists());
}

#[test]
fn configuration_errors_are_guided() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "listn = \"127.0.0.1:1\"\n").unwrap();
    let (ok, _, err) = run(dir.path(), &["--config", "bad.toml", "migrate", "status"]);
    assert!(!ok);
    assert!(err.contains("unknown key `listn`"), "{err}");
    let (ok, _, err) = run(dir.path(), &["--config", "missing.toml"]);
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
    let out = mcpgate(dir.path())
        .env("MCPGATE_ENCRYPTION_KEY", "dG9vIHNob3J0")
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("MCPGATE_ENCRYPTION_KEY") && err.contains("32 bytes"),
        "{err}"
    );
    assert!(!err.contains("dG9vIHNob3J0"), "the bad key is not echoed");
}

/// A running binary whose stderr (JSON logs) is captured.
struct Proc {
    child: Child,
    logs: Arc<Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
    url: String,
}

fn spawn(dir: &Path) -> Proc {
    let mut child = mcpgate(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("MCPGATE_LOG", "debug")
        .env("MCPGATE_USAGE_FLUSH_INTERVAL_SECS", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mcpgate");
    let stderr = child.stderr.take().unwrap();
    let logs = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = logs.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("mcpgate listening") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let _ = tx.send(v["listen"].as_str().unwrap().to_owned());
            }
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("server did not start:\n{}", logs.lock().unwrap()));
    Proc {
        child,
        logs,
        reader,
        url: format!("http://{addr}"),
    }
}

impl Proc {
    fn terminate(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        // The pipe closes when the process exits: the reader drains it and ends.
        self.reader.join().unwrap();
        let logs = self.logs.lock().unwrap().clone();
        assert!(exit.success(), "exit {exit:?}\n{logs}");
        logs
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_then_sigterm_loses_no_usage_and_logs_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(dir.path());
    // First run: data dir, database and a private master key file.
    let key_file = dir.path().join("data/master.key");
    assert!(dir.path().join("data/mcpgate.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(server
        .logs
        .lock()
        .unwrap()
        .contains("generated a new master key file"));

    let reg = Client::anonymous(&server.url)
        .unwrap()
        .user_register()
        .body(types::RegisterRequest {
            name: Some("Ops".into()),
            email: Some("ops@example.com".into()),
            password: Some("a strong password".into()),
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    let client = Client::with_api_key(&server.url, reg.api_key.clone()).unwrap();
    for _ in 0..5 {
        client.user_me().send().await.unwrap();
    }
    let logs = server.terminate();
    assert!(logs.contains("SIGTERM received"), "{logs}");
    assert!(logs.contains("flushed key usage"), "{logs}");
    assert!(
        logs.contains(&reg.key_id),
        "access log names the credential id"
    );
    assert!(!logs.contains(&reg.api_key[22..]), "a key reached the logs");
    assert!(
        !logs.contains("a strong password"),
        "a password reached the logs"
    );

    // Second run: same key file, same data, usage kept.
    let server = spawn(dir.path());
    assert!(!server
        .logs
        .lock()
        .unwrap()
        .contains("generated a new master key file"));
    let client = Client::with_api_key(&server.url, reg.api_key.clone()).unwrap();
    let keys = client.key_list().send().await.unwrap().into_inner();
    assert_eq!(
        keys.keys[0].usage_count, 6,
        "5 uses before SIGTERM plus this listing"
    );
    server.terminate();
}

#[test]
fn operators_create_list_and_delete_oauth_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(
        dir.path(),
        &[
            "admin",
            "clients",
            "create",
            "--name",
            "Team dashboard",
            "--redirect-uri",
            "https://dash.example.com/callback",
            "--scope",
            "memories:read",
            "--confidential",
        ],
    );
    assert!(ok, "{err}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("client_id:"))
        .map(str::trim)
        .unwrap()
        .to_owned();
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret:"))
        .map(str::trim)
        .unwrap()
        .to_owned();
    assert!(
        id.starts_with("mcpg_ci_") && secret.starts_with("mcpg_cs_"),
        "{out}"
    );

    let (ok, out, _) = run(dir.path(), &["admin", "clients", "list"]);
    assert!(ok);
    let listed: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ours = listed
        .iter()
        .find(|c| c["client_id"] == id.as_str())
        .unwrap();
    assert_eq!(ours["kind"], "operator");
    assert_eq!(ours["confidential"], true);
    assert_eq!(ours["scopes"], serde_json::json!(["memories:read"]));
    assert!(!out.contains(&secret), "list never shows a secret");

    // client_credentials needs an existing owner and a confidential client.
    let (ok, _, err) = run(
        dir.path(),
        &[
            "admin",
            "clients",
            "create",
            "--name",
            "Job",
            "--owner",
            "nobody@example.com",
        ],
    );
    assert!(!ok);
    assert!(err.contains("--confidential"), "{err}");
    let (ok, _, err) = run(
        dir.path(),
        &[
            "admin",
            "clients",
            "create",
            "--name",
            "Job",
            "--owner",
            "nobody@example.com",
            "--confidential",
        ],
    );
    assert!(!ok);
    assert!(err.contains("nobody@example.com"), "{err}");
    // Unsafe redirect URIs are refused here too.
    let (ok, _, err) = run(
        dir.path(),
        &[
            "admin",
            "clients",
            "create",
            "--name",
            "X",
            "--redirect-uri",
            "javascript:alert(1)",
        ],
    );
    assert!(!ok);
    assert!(err.contains("javascript"), "{err}");

    let (ok, out, _) = run(dir.path(), &["admin", "clients", "delete", &id]);
    assert!(ok && out.contains("deleted"));
    let (ok, _, err) = run(dir.path(), &["admin", "clients", "delete", &id]);
    assert!(!ok);
    assert!(err.contains("no client"), "{err}");
}

/// `run` with `input` on standard input.
fn run_with_stdin(dir: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = mcpgate(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mcpgate");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("run mcpgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The state the binary uses for `dir` (default data dir `dir/data`).
async fn state_of(dir: &Path) -> mcpgate_server::state::AppState {
    use mcpgate_server::config::{Config, Overrides};
    let overrides = Overrides {
        data_dir: Some(dir.join("data")),
        ..Default::default()
    };
    let config = Config::load_from(None, &[], &overrides).unwrap().config;
    mcpgate_server::server::offline_state(config).await.unwrap()
}

async fn can_log_in(state: &mcpgate_server::state::AppState, email: &str, password: &str) -> bool {
    use mcpgate_server::service::sessions::{login, LoginError};
    match login(state, email, password.to_owned().into()).await {
        Ok(_) => true,
        Err(LoginError::InvalidCredentials) => false,
        Err(LoginError::Other(e)) => panic!("login: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_reset_a_forgotten_password() {
    use mcpgate_server::service::{accounts, audit, sessions};
    const EMAIL: &str = "forgot@example.com";
    const OLD: &str = "the old password";
    const NEW: &str = "Brand-new secret 42";
    let dir = tempfile::tempdir().unwrap();
    let reset = |input: &str| {
        run_with_stdin(
            dir.path(),
            &["admin", "users", "reset-password", EMAIL],
            input,
        )
    };

    let state = state_of(dir.path()).await;
    accounts::register(
        &state,
        accounts::RegisterInput {
            client_ip: None,
            name: Some("Forgetful".into()),
            email: Some(EMAIL.into()),
            password: Some(OLD.to_owned().into()),
        },
    )
    .await
    .unwrap();
    let (cookie, _) = sessions::login(&state, EMAIL, OLD.to_owned().into())
        .await
        .unwrap();
    let cookie = secrecy::ExposeSecret::expose_secret(&cookie).to_owned();
    assert!(sessions::current(&state, &cookie).await.unwrap().is_some());
    state.db.close_by_ref().await.unwrap();

    // Refused: too short (the API's rule, named), empty, unknown account.
    let (ok, out, err) = reset("Xy7#q\n");
    assert!(!ok, "{out}");
    assert!(err.contains("at least 8 characters"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(!err.contains("Xy7#q") && !out.contains("Xy7#q"), "{err}");
    let (ok, _, err) = reset(&format!("{}\n", "x".repeat(73)));
    assert!(!ok);
    assert!(err.contains("at most 72 bytes"), "{err}");
    let (ok, _, err) = reset("\n");
    assert!(!ok);
    assert!(err.contains("no password on standard input"), "{err}");
    let (ok, _, err) = reset("");
    assert!(!ok);
    assert!(err.contains("no password on standard input"), "{err}");
    let (ok, _, err) = run_with_stdin(
        dir.path(),
        &["admin", "users", "reset-password", "nobody@example.com"],
        &format!("{NEW}\n"),
    );
    assert!(!ok);
    assert!(
        err.contains("no account has the email nobody@example.com"),
        "{err}"
    );
    assert!(!err.contains(NEW), "{err}");
    let state = state_of(dir.path()).await;
    assert!(can_log_in(&state, EMAIL, OLD).await, "nothing changed");
    assert!(
        sessions::current(&state, &cookie).await.unwrap().is_some(),
        "the session survived the refused resets"
    );
    state.db.close_by_ref().await.unwrap();

    // Reset: the new password works, the old does not, sessions ended.
    let (ok, out, err) = reset(&format!("{NEW}\r\n"));
    assert!(ok, "{err}");
    assert!(
        out.contains("password reset for forgot@example.com"),
        "{out}"
    );
    assert!(out.contains("2 web session(s) ended"), "{out}");
    assert!(!out.contains(NEW) && !err.contains(NEW), "{out}{err}");
    let state = state_of(dir.path()).await;
    assert!(
        sessions::current(&state, &cookie).await.unwrap().is_none(),
        "every web session ended"
    );
    assert!(
        can_log_in(&state, EMAIL, NEW).await,
        "the new password works"
    );
    assert!(
        !can_log_in(&state, EMAIL, OLD).await,
        "the old one does not"
    );

    // Audited: by the operator, with no credential, and no secret.
    let events = audit::list(&state, None, Some(50), None)
        .await
        .unwrap()
        .events;
    let resets: Vec<_> = events
        .iter()
        .filter(|e| e.action == audit::AuditAction::PasswordReset)
        .collect();
    assert_eq!(resets.len(), 1, "one event for the one reset");
    let event = resets[0];
    assert_eq!(event.credential_id, None);
    assert_eq!(event.details["by"], "operator");
    assert_eq!(event.details["sessions_ended"], 2);
    assert!(!event.details.to_string().contains(NEW));
    state.db.close_by_ref().await.unwrap();

    // The operator's audit listing shows it too.
    let (ok, out, _) = run(dir.path(), &["admin", "audit"]);
    assert!(ok);
    assert!(out.contains("user.password_reset"), "{out}");
    assert!(!out.contains(NEW));
}
