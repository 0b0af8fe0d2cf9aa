//! The README's shell walkthrough, run as written: every ```sh block marked
//! `<!-- tested: … -->` goes, in order, to one `sh -eu` session against a
//! real server, and each curl must answer the status of the `# -> NNN` line
//! after it. What the test changes, and nothing else:
//!
//! | README                      | here                                          |
//! |-----------------------------|-----------------------------------------------|
//! | `http://127.0.0.1:8080`     | the test server's URL                         |
//! | `CODE=mcpg_ac_…` (pasted)   | the code the browser step obtained            |
//! | the browser step            | the login and consent forms, through HTTP     |
//!
//! The browser step signs in with the email and password the README
//! registers, on the authorization URL the README prints.

use mcpgate_e2e::{
    oauth::{browser, param, TestUser},
    remember_secret,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::*;

/// The base URL the README's commands use.
const README_URL: &str = "http://127.0.0.1:8080";
/// The account the README registers (and signs in with in the browser).
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";
/// Printed by the session where the README's user goes to the browser.
const BROWSER_STEP: &str = "readme-browser-step";

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md exists")
}

/// The ```sh blocks of `text`, each with whether it is marked tested.
fn sh_blocks(text: &str) -> Vec<(bool, String)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    let mut marked = false;
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t.starts_with("<!-- tested") {
            marked = true;
            continue;
        }
        if t == "```sh" {
            let mut block = String::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                block.push_str(l);
                block.push('\n');
            }
            blocks.push((marked, block));
            marked = false;
        } else if t.starts_with("```") {
            // Another language's block: skip it whole.
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
            }
            marked = false;
        } else {
            // A marker holds across blank lines only.
            marked = marked && t.is_empty();
        }
    }
    blocks
}

/// The statuses the `# -> NNN` lines of `script` promise, in order.
fn promised_statuses(script: &str) -> Vec<u16> {
    script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# -> "))
        .map(|rest| {
            rest.get(..3)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("`# -> {rest}` does not start with a status"))
        })
        .collect()
}

/// Remember every mcpgate credential in `output` for the log scan.
fn remember_credentials(output: &str) {
    for word in output.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("mcpg_") {
            remember_secret(word);
        }
    }
}

e2e! {
    async fn the_readme_walkthrough_runs_as_written(backend) {
        let text = readme();
        let blocks = sh_blocks(&text);
        for (marked, block) in &blocks {
            assert!(
                *marked || !block.contains("curl "),
                "a ```sh block of README.md calls curl but is not marked \
                 `<!-- tested: tests/e2e/readme.rs runs this block -->`:\n{block}"
            );
        }
        let tested: Vec<&str> = blocks.iter().filter(|(m, _)| *m).map(|(_, b)| b.as_str()).collect();
        assert!(tested.len() >= 3, "the README's tour blocks are marked tested");
        assert!(
            text.contains(&format!(r#""email": "{EMAIL}", "password": "{PASSWORD}""#)),
            "the README registers {EMAIL} with the password the browser step uses"
        );

        let server = TestServer::start(backend).await;
        remember_secret(PASSWORD);
        let script = tested.join("\n").replace(README_URL, &server.url);
        let promised = promised_statuses(&script);
        // The one line a reader fills in: the code from the browser's address bar.
        let lines: Vec<&str> = script.lines().collect();
        let code_lines: Vec<usize> =
            (0..lines.len()).filter(|&i| lines[i].trim_start().starts_with("CODE=")).collect();
        assert_eq!(code_lines.len(), 1, "one `CODE=` line, where the reader pastes the code");
        let (before, after) = (lines[..code_lines[0]].join("\n"), lines[code_lines[0] + 1..].join("\n"));

        let mut sh = tokio::process::Command::new("sh")
            .arg("-eu")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sh runs");
        let mut stdin = sh.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(sh.stdout.take().expect("stdout"));
        let mut stderr = sh.stderr.take().expect("stderr");
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            stderr.read_to_string(&mut s).await.map(|_| s)
        });
        // Every curl also reports its status on stderr.
        let prelude = "curl() { command curl -w '%{stderr}readme-status %{http_code}\\n' \"$@\"; }\n";
        stdin
            .write_all(format!("{prelude}{before}\necho {BROWSER_STEP}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();

        let mut shown = String::new();
        let seen = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            loop {
                let mut line = String::new();
                if stdout.read_line(&mut line).await.unwrap() == 0 {
                    return false;
                }
                if line.trim() == BROWSER_STEP {
                    return true;
                }
                shown.push_str(&line);
            }
        })
        .await
        .expect("the walkthrough reaches the browser step within a minute");
        assert!(seen, "the session ended before the browser step: {shown}\n{:?}", stderr.await);
        // Answers carry no final newline: the URL is the last one printed.
        let start = shown
            .rfind(&format!("{}/oauth/authorize?", server.url))
            .unwrap_or_else(|| panic!("the README prints the authorization URL: {shown}"));
        let authorize = shown[start..].split_whitespace().next().unwrap_or_default().to_owned();

        let user = TestUser {
            email: EMAIL.into(),
            password: PASSWORD.into(),
            api_key: String::new(),
            user_id: String::new(),
        };
        let back = server.authorize_in_browser(&browser(), &user, &authorize, true).await;
        assert!(back.starts_with("http://127.0.0.1/callback?"), "{back}");
        let code = param(&back, "code").expect("code in the redirect");
        remember_secret(&code);

        stdin.write_all(format!("CODE='{code}'\n{after}\n").as_bytes()).await.unwrap();
        drop(stdin);
        let finished = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            let mut rest = String::new();
            stdout.read_to_string(&mut rest).await.unwrap();
            (rest, sh.wait().await.unwrap())
        })
        .await
        .expect("the walkthrough finishes within a minute");
        let (rest, status) = finished;
        shown.push_str(&rest);
        let errors = stderr.await.unwrap().unwrap();
        remember_credentials(&shown);
        assert!(status.success(), "the walkthrough failed ({status}):\n{shown}\n{errors}");

        let answered: Vec<u16> = errors
            .lines()
            .filter_map(|l| l.strip_prefix("readme-status "))
            .map(|s| s.trim().parse().expect("status"))
            .collect();
        assert_eq!(
            answered, promised,
            "each curl answers the status its `# -> ` line says:\n{shown}\n{errors}"
        );
        assert!(rest.contains("\"tools\""), "the OAuth token lists the MCP tools: {rest}");
        server.stop().await;
    }
}

#[test]
fn blocks_are_found_and_marked() {
    let text = "<!-- tested: x -->\n```sh\na\n```\n\n```rust\n```sh\n```\n```sh\nb\n```\n";
    assert_eq!(
        sh_blocks(text),
        [(true, "a\n".to_owned()), (false, "b\n".to_owned())]
    );
    assert_eq!(
        promised_statuses("x\n# -> 201 made\n  # -> 204\n"),
        [201, 204]
    );
}
