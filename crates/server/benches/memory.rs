//! Memory store benchmark: `cargo xtask bench memory` (or `cargo bench -p
//! mcpgate-server --bench memory`).
//!
//! Loads generated memories spread over 100 users through the same store
//! functions the API uses, then times the service calls in-process (no HTTP):
//! create, get by id, list (first page), search with a selective query and
//! with a common term. Reports p50/p99 at 10k rows and at the full size, on
//! SQLite and, when `MCPGATE_BENCH_POSTGRES_URL` (or
//! `MCPGATE_TEST_POSTGRES_URL`) names an admin URL, on Postgres.
//!
//! Then, at the full size, the adversarial part (issue #13 §2): one more user
//! with 2,000 memories of their own runs the most expensive accepted queries
//! (16 one-letter prefixes, 1,000 characters of long words, the most common
//! word, 16 common stems) and the refused ones (32 one-letter prefixes), and
//! another user's listing is timed while 12 such searches run in parallel,
//! from one key and from 12 keys.
//!
//! Environment: `MCPGATE_BENCH_ROWS` (default 100000).

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: builds its rows at the time it runs, and stops on the first failure"
)]

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Instant,
};

use mcpgate_server::{
    config::Config,
    db,
    scope::Scopes,
    server,
    service::{
        auth::{Credential, CredentialKind, Principal},
        memories::{self, CreateInput, ListInput, SearchInput},
    },
    state::AppState,
    store,
};
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use uuid::Uuid;

const USERS: usize = 100;

/// Words every memory draws from (so any of them is a "common term").
const COMMON: &[&str] = &[
    "project", "meeting", "deploy", "notes", "customer", "release", "review", "design", "update",
    "server", "client", "team", "issue", "budget", "schedule", "report",
];

const FILLER: &[&str] = &[
    "the", "a", "of", "to", "and", "in", "for", "with", "on", "at", "from", "by", "about", "after",
    "before", "during", "while", "because", "since", "until", "we", "they", "it",
];

/// xorshift, deterministic per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[(self.next() % words.len() as u64) as usize]
    }
}

/// A memory of 40-80 words with one rare token (`zq<n>`), which makes the
/// selective query.
fn generate(rng: &mut Rng, n: usize) -> (String, String, String) {
    let rare = format!("zq{n}x");
    let words = 40 + (rng.next() % 41) as usize;
    let mut content = Vec::with_capacity(words + 1);
    for i in 0..words {
        content.push(
            if i % 3 == 0 {
                rng.pick(COMMON)
            } else {
                rng.pick(FILLER)
            }
            .to_owned(),
        );
    }
    let at = (rng.next() % words as u64) as usize;
    content.insert(at, rare.clone());
    let title = format!("{} {} {}", rng.pick(COMMON), rng.pick(COMMON), n);
    (title, content.join(" "), rare)
}

fn principal(user_id: Uuid) -> Principal {
    principal_with_key(user_id, "bench")
}

fn principal_with_key(user_id: Uuid, key: &str) -> Principal {
    Principal {
        user_id,
        credential: Credential {
            kind: CredentialKind::ApiKey,
            id: key.into(),
            scopes: Scopes::all(),
        },
    }
}

/// Memories of the adversarial user.
const HEAVY_ROWS: usize = 2000;
/// Parallel adversarial searches while another user lists.
const ADVERSARIES: usize = 12;

/// The adversarial queries: (label, query, accepted).
fn adversarial_queries() -> Vec<(&'static str, String, bool)> {
    let letters = |n: usize| {
        ('a'..='z')
            .chain('0'..='9')
            .take(n)
            .map(|c| format!("{c}*"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // 16 words of 61-62 characters: 1,000 characters in all.
    let long: String = (0..16)
        .map(|i| {
            let w = COMMON[i].repeat(20);
            w[..61 + usize::from(i < 9)].to_owned()
        })
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(long.chars().count(), 1000);
    let stems = COMMON
        .iter()
        .map(|w| format!("{}*", &w[..w.len().min(4)]))
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        ("32 one-letter prefixes (refused, 400)", letters(32), false),
        ("16 one-letter prefixes", letters(16), true),
        ("1,000 characters, 16 long words", long, true),
        ("the most common word (`the`)", "the".into(), true),
        ("16 common 4-letter prefixes", stems, true),
        (
            "200 words (refused, 400)",
            (0..200)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" "),
            false,
        ),
    ]
}

/// One search of the adversarial user: `Ok(total)`, or the error's code.
async fn try_search(
    state: &AppState,
    principal: &Principal,
    query: String,
) -> Result<u64, &'static str> {
    use mcpgate_server::error::Error;
    memories::search(
        state,
        principal,
        SearchInput {
            query,
            memory_types: vec![],
            tags: vec![],
            limit: None,
        },
    )
    .await
    .map(|r| r.total_results)
    .map_err(|e| match e {
        Error::Validation { .. } => "validation_failed",
        Error::RateLimited { .. } => "rate_limited",
        Error::SearchTimeout { .. } => "search_timeout",
        other => panic!("search failed: {other}"),
    })
}

/// One search with default options; returns the total number of matches.
async fn search(state: &AppState, principal: &Principal, query: String) -> u64 {
    memories::search(
        state,
        principal,
        SearchInput {
            query,
            memory_types: vec![],
            tags: vec![],
            limit: None,
        },
    )
    .await
    .expect("search")
    .total_results
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

struct Bench {
    state: AppState,
    users: Vec<Uuid>,
    /// Per user: ids and rare tokens of some of their memories.
    samples: Vec<Vec<(Uuid, String)>>,
    loaded: usize,
    rng: Rng,
}

impl Bench {
    async fn load_to(&mut self, rows: usize) {
        let started = Instant::now();
        let batch = 500;
        while self.loaded < rows {
            let txn = db::begin_write(&self.state.db).await.expect("begin");
            for _ in 0..batch.min(rows - self.loaded) {
                let n = self.loaded;
                let u = n % USERS;
                let (title, content, rare) = generate(&mut self.rng, n);
                let now = chrono::Utc::now();
                let tags = vec![self.rng.pick(COMMON).to_owned()];
                let m = store::memories::insert(
                    &txn,
                    store::memories::NewMemory {
                        id: Uuid::now_v7(),
                        user_id: self.users[u],
                        size_bytes: (title.len() + content.len() + 2) as i64,
                        title,
                        content,
                        memory_type: "context".into(),
                        tags,
                        metadata: "{}".into(),
                        at: now,
                    },
                )
                .await
                .expect("insert");
                if self.samples[u].len() < 50 {
                    self.samples[u].push((m.id, rare));
                }
                self.loaded += 1;
            }
            txn.commit().await.expect("commit");
        }
        if self.state.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            self.state
                .db
                .execute_unprepared("ANALYZE")
                .await
                .expect("analyze");
        }
        eprintln!(
            "  loaded {} rows in {:.1}s",
            self.loaded,
            started.elapsed().as_secs_f64()
        );
    }

    async fn time<F, Fut>(
        &mut self,
        label: &str,
        iterations: usize,
        mut op: F,
    ) -> (String, f64, f64)
    where
        F: FnMut(AppState, Principal, (Uuid, String), usize) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let u = (self.rng.next() % USERS as u64) as usize;
            let sample =
                self.samples[u][(self.rng.next() % self.samples[u].len() as u64) as usize].clone();
            let p = principal(self.users[u]);
            let started = Instant::now();
            op(self.state.clone(), p, sample, i).await;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let p50 = percentile(&mut samples, 0.50);
        let p99 = percentile(&mut samples, 0.99);
        (label.to_owned(), p50, p99)
    }

    /// Load the adversarial user's memories.
    async fn load_heavy(&mut self) -> Uuid {
        let heavy = Uuid::now_v7();
        store::users::insert(
            &self.state.db,
            store::users::NewUser {
                id: heavy,
                name: None,
                email: None,
                password_hash: None,
                created_at: chrono::Utc::now(),
            },
        )
        .await
        .expect("user");
        let txn = db::begin_write(&self.state.db).await.expect("begin");
        for _ in 0..HEAVY_ROWS {
            let n = self.loaded;
            let (title, content, _) = generate(&mut self.rng, n);
            store::memories::insert(
                &txn,
                store::memories::NewMemory {
                    id: Uuid::now_v7(),
                    user_id: heavy,
                    size_bytes: (title.len() + content.len() + 2) as i64,
                    title,
                    content,
                    memory_type: "context".into(),
                    tags: vec![],
                    metadata: "{}".into(),
                    at: chrono::Utc::now(),
                },
            )
            .await
            .expect("insert");
            self.loaded += 1;
        }
        txn.commit().await.expect("commit");
        if self.state.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            self.state
                .db
                .execute_unprepared("ANALYZE")
                .await
                .expect("analyze");
        }
        heavy
    }

    /// The adversarial queries one at a time, then another user's listing
    /// while 12 of them run in parallel.
    async fn adversarial(&mut self) -> Vec<(String, f64, f64)> {
        let heavy = self.load_heavy().await;
        let mut out = Vec::new();
        let p = principal(heavy);
        for (label, query, accepted) in adversarial_queries() {
            let mut samples = Vec::new();
            for _ in 0..30 {
                let started = Instant::now();
                let result = try_search(&self.state, &p, query.clone()).await;
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
                match (accepted, result) {
                    (true, Ok(_)) | (false, Err("validation_failed")) => {}
                    (_, other) => panic!("{label}: unexpected {other:?}"),
                }
            }
            out.push((
                format!("adversarial search: {label}"),
                percentile(&mut samples, 0.5),
                percentile(&mut samples, 0.99),
            ));
        }
        let bystander = principal(self.users[0]);
        // 12 searches from one key, from 12 keys of the same account, and
        // from 12 accounts with 2,000 memories each.
        let mut accounts = vec![heavy];
        for _ in 1..ADVERSARIES {
            accounts.push(self.load_heavy().await);
        }
        for (keys, users, label) in [
            (1, 1, "1 key"),
            (ADVERSARIES, 1, "12 keys of one account"),
            (ADVERSARIES, ADVERSARIES, "12 accounts"),
        ] {
            let stop = Arc::new(AtomicBool::new(false));
            let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
            let mut tasks = Vec::new();
            let queries: Vec<String> = adversarial_queries()
                .into_iter()
                .filter(|(_, _, accepted)| *accepted)
                .map(|(_, q, _)| q)
                .collect();
            for t in 0..ADVERSARIES {
                let state = self.state.clone();
                let p = principal_with_key(accounts[t % users], &format!("adversary-{}", t % keys));
                let stop = stop.clone();
                let counts = counts.clone();
                let queries = queries.clone();
                tasks.push(tokio::spawn(async move {
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        let slot = match try_search(&state, &p, queries[i % queries.len()].clone())
                            .await
                        {
                            Ok(_) => 0,
                            Err("rate_limited") => 1,
                            Err(_) => 2,
                        };
                        counts[slot].fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                }));
            }
            // Let the searches start, then time the bystander.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let mut samples = Vec::new();
            let window = Instant::now();
            while samples.len() < 500 || window.elapsed().as_secs_f64() < 5.0 {
                let started = Instant::now();
                memories::list(
                    &self.state,
                    &bystander,
                    ListInput {
                        memory_type: None,
                        tags: vec![],
                        created_after: None,
                        created_before: None,
                        limit: None,
                        cursor: None,
                    },
                )
                .await
                .expect("bystander list");
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            stop.store(true, Ordering::Relaxed);
            for t in tasks {
                t.await.expect("adversary");
            }
            let [ok, limited, timed_out] = &*counts;
            eprintln!(
                "  {ADVERSARIES} adversarial searches from {label}: {} answered, {} refused (429), {} over budget (503) in {:.1} s",
                ok.load(Ordering::Relaxed),
                limited.load(Ordering::Relaxed),
                timed_out.load(Ordering::Relaxed),
                window.elapsed().as_secs_f64()
            );
            out.push((
                format!(
                    "another user's list while {ADVERSARIES} adversarial searches run ({label})"
                ),
                percentile(&mut samples, 0.5),
                percentile(&mut samples, 0.99),
            ));
        }
        out
    }

    async fn measure(&mut self, with_writes: bool) -> Vec<(String, f64, f64)> {
        let mut out = Vec::new();
        out.push(
            self.time("get by id", 2000, |s, p, (id, _), _| async move {
                memories::get(&s, &p, id).await.expect("get");
            })
            .await,
        );
        out.push(
            self.time("list (first page of 20)", 1000, |s, p, _, _| async move {
                memories::list(
                    &s,
                    &p,
                    ListInput {
                        memory_type: None,
                        tags: vec![],
                        created_after: None,
                        created_before: None,
                        limit: None,
                        cursor: None,
                    },
                )
                .await
                .expect("list");
            })
            .await,
        );
        out.push(
            self.time(
                "search, selective (1 match)",
                1000,
                |s, p, (_, query), _| async move {
                    assert_eq!(search(&s, &p, query).await, 1);
                },
            )
            .await,
        );
        out.push(
            self.time("search, common term", 300, |s, p, _, i| {
                let query = COMMON[i % COMMON.len()].to_owned();
                async move {
                    assert!(search(&s, &p, query).await > 0);
                }
            })
            .await,
        );
        if with_writes {
            out.push(
                self.time("create", 1000, |s, p, _, i| async move {
                    memories::create(
                        &s,
                        &p,
                        CreateInput {
                            title: format!("bench create {i}"),
                            content: "deploy notes for the release review with the customer".into(),
                            memory_type: None,
                            tags: Some(vec!["bench".into()]),
                            metadata: None,
                        },
                    )
                    .await
                    .expect("create");
                })
                .await,
            );
        }
        out
    }
}

async fn run(name: &str, database_url: Option<String>, rows: usize) {
    eprintln!("== {name}");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: dir.path().join("data"),
        database_url: database_url.map(SecretString::from),
        database_max_connections: 8,
        ..Config::default()
    };
    let state = server::offline_state(config).await.expect("database");
    let mut users = Vec::new();
    for _ in 0..USERS {
        let id = Uuid::now_v7();
        store::users::insert(
            &state.db,
            store::users::NewUser {
                id,
                name: None,
                email: None,
                password_hash: None,
                created_at: chrono::Utc::now(),
            },
        )
        .await
        .expect("user");
        users.push(id);
    }
    let mut bench = Bench {
        state,
        users,
        samples: vec![Vec::new(); USERS],
        loaded: 0,
        rng: Rng(0x9E37_79B9_7F4A_7C15),
    };
    let mut table = Vec::new();
    let first = rows.min(10_000);
    bench.load_to(first).await;
    for (label, p50, p99) in bench.measure(false).await {
        table.push((first, label, p50, p99));
    }
    if rows > first {
        bench.load_to(rows).await;
        for (label, p50, p99) in bench.measure(true).await {
            table.push((rows, label, p50, p99));
        }
    }
    for (label, p50, p99) in bench.adversarial().await {
        table.push((bench.loaded, label, p50, p99));
    }
    println!("\n{name}\n\n| rows | operation | p50 (ms) | p99 (ms) |\n|---:|---|---:|---:|");
    for (rows, label, p50, p99) in table {
        println!("| {rows} | {label} | {p50:.3} | {p99:.3} |");
    }
}

fn main() {
    let rows: usize = std::env::var("MCPGATE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        run("SQLite", None, rows).await;
        let admin = std::env::var("MCPGATE_BENCH_POSTGRES_URL")
            .or_else(|_| std::env::var("MCPGATE_TEST_POSTGRES_URL"))
            .ok();
        if let Some(admin) = admin {
            let name = format!("mcpgate_bench_{}", Uuid::new_v4().simple());
            let conn = Database::connect(&admin).await.expect("postgres admin");
            conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create db");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(admin.clone());
            run("Postgres", Some(format!("{base}/{name}")), rows).await;
            conn.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .expect("drop db");
        } else {
            eprintln!("(Postgres skipped: set MCPGATE_BENCH_POSTGRES_URL)");
        }
    });
}
