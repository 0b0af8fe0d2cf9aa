//! `mcpg` against a real server: login by PKCE with the test driving the
//! login and consent forms, the credentials file, refresh after expiry, a
//! revoked token, a memory round trip through stdin, `--json`, exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite: a failed unwrap is a failed test, with its message"
)]

use std::process::Stdio;

use mcpgate_e2e::{oauth::browser, Backend, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_mcpg");

/// `mcpg` with a private config dir and the server URL.
fn mcpg(server: &TestServer, config: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("XDG_CONFIG_HOME", config)
        .env("MCPGATE_URL", &server.url)
        .env("BROWSER", "true");
    cmd
}

async fn run(
    server: &TestServer,
    config: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let mut cmd = mcpg(server, config);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refresh_revocation_and_memory_round_trip() {
    let server = TestServer::start(Backend::Sqlite).await;
    let user = server.register_with_password().await;
    let config = tempfile::tempdir().unwrap();

    // Login: the CLI prints the URL; the test is the browser.
    let mut child = mcpg(&server, config.path())
        .args(["login", "--timeout", "30"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the CLI prints the URL");
        if let Some(u) = line.trim().strip_prefix("http") {
            break format!("http{u}");
        }
    };
    let back = server
        .authorize_in_browser(&browser(), &user, &url, true)
        .await;
    reqwest::get(&back).await.unwrap();
    let mut rest = String::new();
    while let Some(l) = lines.next_line().await.unwrap() {
        rest.push_str(&l);
    }
    assert!(child.wait().await.unwrap().success(), "{rest}");
    assert!(
        rest.contains(&format!("Logged in to {} as {}", server.url, user.email)),
        "{rest}"
    );

    let file = config.path().join("mcpgate").join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let entry = &stored[&server.url];
    mcpgate_e2e::remember_secret(entry["access_token"].as_str().unwrap());
    mcpgate_e2e::remember_secret(entry["refresh_token"].as_str().unwrap());

    let (code, out, err) = run(&server, config.path(), &["whoami", "--json"], None).await;
    assert_eq!(code, 0, "{err}");
    let me: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(me["user_id"], user.user_id.as_str());
    assert_eq!(me["credential"]["kind"], "access_token");
    // Without --server or MCPGATE_URL, later commands talk to the server
    // logged in to (not the default 127.0.0.1:8080), and whoami says which.
    let out = mcpg(&server, config.path())
        .env_remove("MCPGATE_URL")
        .arg("whoami")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("server:     {}", server.url)),
        "{text}"
    );

    // A memory through stdin, back as JSON, found by search, in a table.
    let (code, id, err) = run(
        &server,
        config.path(),
        &[
            "memory",
            "add",
            "--title",
            "Release checklist",
            "--tag",
            "ops",
        ],
        Some("Tag the release after the changelog is merged.\n"),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_owned();
    let (_, out, _) = run(
        &server,
        config.path(),
        &["memory", "get", &id, "--json"],
        None,
    )
    .await;
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        m["content"],
        "Tag the release after the changelog is merged.\n"
    );
    assert_eq!(m["tags"], serde_json::json!(["ops"]));
    let (_, out, _) = run(
        &server,
        config.path(),
        &["memory", "search", "changelog", "--json"],
        None,
    )
    .await;
    let found: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(found["results"][0]["memory"]["id"], id.as_str());
    assert_eq!(found["results"][0]["score"], 100.0, "the best match");
    let (_, out, _) = run(
        &server,
        config.path(),
        &["memory", "search", "changelog"],
        None,
    )
    .await;
    assert_eq!(
        out,
        format!(
            "ID{}  SCORE  TITLE\n{id}  100.0  Release checklist\n",
            " ".repeat(id.len() - 2)
        ),
    );
    let (_, out, _) = run(&server, config.path(), &["memory", "list"], None).await;
    assert!(
        out.starts_with("ID") && out.contains("Release checklist"),
        "{out}"
    );

    // The server's clock passes the access token's expiry: refreshed on the 401.
    server.clock.advance(chrono::Duration::hours(2));
    let (code, _, err) = run(&server, config.path(), &["whoami"], None).await;
    assert_eq!(code, 0, "{err}");
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_ne!(stored[&server.url]["access_token"], entry["access_token"]);
    mcpgate_e2e::remember_secret(stored[&server.url]["access_token"].as_str().unwrap());
    mcpgate_e2e::remember_secret(stored[&server.url]["refresh_token"].as_str().unwrap());

    // Revoked at the server: exit 3 and a clear instruction.
    let (_, out, _) = run(&server, config.path(), &["apps", "list", "--json"], None).await;
    let apps: serde_json::Value = serde_json::from_str(&out).unwrap();
    let client_id = apps["authorizations"][0]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, _, _) = run(
        &server,
        config.path(),
        &["apps", "revoke", &client_id],
        None,
    )
    .await;
    assert_eq!(code, 0);
    let (code, _, err) = run(&server, config.path(), &["whoami"], None).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("run `mcpg login`"), "{err}");

    let (code, _, _) = run(&server, config.path(), &["logout"], None).await;
    assert_eq!(code, 0);
    let (code, _, err) = run(&server, config.path(), &["whoami"], None).await;
    assert_eq!(code, 3);
    assert!(err.contains("not logged in"), "{err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_from_the_environment_and_exit_codes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let registered = server.register().await;
    let config = tempfile::tempdir().unwrap();
    let with_key = |args: &[&str]| {
        let mut all = vec!["--api-key", registered.api_key.as_str()];
        all.extend_from_slice(args);
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let args = with_key(&["keys", "create", "ci", "--scope", "memories:read", "--json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run(&server, config.path(), &args, None).await;
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ro_key = created["api_key"].as_str().unwrap().to_owned();
    mcpgate_e2e::remember_secret(&ro_key);

    let mut cmd = mcpg(&server, config.path());
    cmd.env("MCPGATE_API_KEY", &ro_key)
        .args(["memory", "add", "--title", "t", "c"]);
    let out = cmd.output().await.unwrap();
    assert_eq!(out.status.code(), Some(4), "forbidden: a refused request");
    assert!(String::from_utf8_lossy(&out.stderr).contains("memories:write"));

    let args = with_key(&["memory", "get", "00000000-0000-0000-0000-000000000000"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, _) = run(&server, config.path(), &args, None).await;
    assert_eq!(code, 4, "not found");
    // A conflict (409: the provider has no credentials) is a refusal too.
    let args = with_key(&["connect", "start", "github"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = run(&server, config.path(), &args, None).await;
    assert_eq!(code, 4, "a 409 is a refusal: {err}");
    assert!(err.contains("provider_unavailable"), "{err}");
    let (code, _, err) = run(
        &server,
        config.path(),
        &["--api-key", "mcpg_nonsense", "whoami"],
        None,
    )
    .await;
    assert_eq!(code, 3, "{err}");
    let (code, _, _) = run(&server, config.path(), &["memory", "frobnicate"], None).await;
    assert_eq!(code, 2, "usage");
    let (code, out, _) = run(&server, config.path(), &["completions", "bash"], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("mcpg"));
    let mut down = mcpg(&server, config.path());
    down.env("MCPGATE_URL", "http://127.0.0.1:9").args([
        "--api-key",
        &registered.api_key,
        "whoami",
    ]);
    assert_eq!(
        down.output().await.unwrap().status.code(),
        Some(5),
        "network"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_clients_are_listed_and_deleted() {
    let server = TestServer::start(Backend::Sqlite).await;
    let registered = server.register().await;
    let config = tempfile::tempdir().unwrap();
    let resp = mcpgate_e2e::oauth::http()
        .post(format!("{}/oauth/register", server.url))
        .bearer_auth(&registered.api_key)
        .json(&serde_json::json!({
            "client_name": "Nightly job",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "memories:read",
        }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    mcpgate_e2e::remember_secret(body["client_secret"].as_str().unwrap());
    let client_id = body["client_id"].as_str().unwrap().to_owned();
    let key = registered.api_key.as_str();

    let (code, out, err) = run(
        &server,
        config.path(),
        &["--api-key", key, "clients", "list"],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&client_id) && out.contains("Nightly job"),
        "{out}"
    );
    let (code, out, _) = run(
        &server,
        config.path(),
        &["--api-key", key, "clients", "get", &client_id, "--json"],
        None,
    )
    .await;
    assert_eq!(code, 0);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["scopes"], serde_json::json!(["memories:read"]));
    let (code, _, err) = run(
        &server,
        config.path(),
        &["--api-key", key, "clients", "rm", &client_id],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = run(
        &server,
        config.path(),
        &["--api-key", key, "clients", "get", &client_id],
        None,
    )
    .await;
    assert_eq!(code, 4, "gone");
    server.stop().await;
}
