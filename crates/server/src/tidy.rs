//! Rules about the source itself, checked by reading it (the model is
//! rust-analyzer's `tidy.rs`): the layering the architecture promises, and
//! conventions that review alone would have to remember.
//!
//! An exception is a path (relative to `src/`, a directory ending in `/`)
//! with the reason it must stay; an exception that no longer matches
//! anything fails the test, so the lists only shrink.

use std::path::{Path, PathBuf};

/// Edges (REST handlers, pages, MCP tools) reach the database only through
/// services.
const EDGE_DIRS: &[&str] = &["api/", "web/", "mcp/"];
const EDGE_FORBIDDEN: &[&str] = &["sea_orm", "state.db", "entity::"];
const EDGE_EXCEPTIONS: &[(&str, &str)] = &[];

/// Services know nothing about HTTP.
const SERVICE_DIR: &str = "service/";
const SERVICE_FORBIDDEN: &[&str] = &["poem::", "poem_openapi", "use poem"];
const SERVICE_EXCEPTIONS: &[(&str, &str)] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/` but this one (which names what it looks
/// for), as (path relative to `src/`, text).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tidy.rs") {
                out.push(path);
            }
        }
    }
    let root = src();
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (rel, text)
        })
        .collect()
}

/// The lines of `text` that are code (comments are allowed to name things).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

/// True when `line` holds `word` starting at a word boundary (so
/// `state.db` is not found in `other_state.db`).
fn holds(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(i, _)| {
        !line[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// A path pattern: a file, a directory ending in `/`, or `""` for all.
fn matches(path: &str, pattern: &str) -> bool {
    if pattern.is_empty() || pattern.ends_with('/') {
        path.starts_with(pattern)
    } else {
        path == pattern
    }
}

/// Fail on any line of a file under `dirs` holding one of `forbidden`,
/// outside `exceptions`; and on an exception nothing needs any more.
fn check(
    rule: &str,
    dirs: &[&str],
    forbidden: &[&str],
    exceptions: &[(&str, &str)],
    files: &[(String, String)],
) {
    let mut problems = Vec::new();
    let mut used = vec![false; exceptions.len()];
    for (path, text) in files {
        if !dirs.iter().any(|d| matches(path, d)) {
            continue;
        }
        for (n, line) in code_lines(text) {
            let Some(word) = forbidden.iter().find(|w| holds(line, w)) else {
                continue;
            };
            match exceptions.iter().position(|(p, _)| matches(path, p)) {
                Some(i) => used[i] = true,
                None => problems.push(format!("src/{path}:{n}: `{word}`: {}", line.trim())),
            }
        }
    }
    for ((pattern, reason), used) in exceptions.iter().zip(used) {
        if !used {
            problems.push(format!(
                "the exception for {pattern} ({reason}) is no longer needed: remove it"
            ));
        }
    }
    assert!(problems.is_empty(), "{rule}:\n{}", problems.join("\n"));
}

#[test]
fn edges_never_see_the_database() {
    check(
        "api/, web/ and mcp/ reach the database only through service/ (see docs/ARCHITECTURE.md)",
        EDGE_DIRS,
        EDGE_FORBIDDEN,
        EDGE_EXCEPTIONS,
        &sources(),
    );
}

#[test]
fn services_know_nothing_about_http() {
    check(
        "service/ does not import poem: return domain values and errors, the edge maps them",
        &[SERVICE_DIR],
        SERVICE_FORBIDDEN,
        SERVICE_EXCEPTIONS,
        &sources(),
    );
}

/// The rules see the code they are about (a moved tree would pass vacuously).
#[test]
fn the_rules_read_the_sources() {
    let files = sources();
    for dir in EDGE_DIRS.iter().chain([&SERVICE_DIR]) {
        assert!(
            files.iter().any(|(p, _)| p.starts_with(dir)),
            "no sources under src/{dir}"
        );
    }
}
