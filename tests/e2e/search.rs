//! Ranked search: one fixture of a few hundred memories, the same expected
//! top results on SQLite (FTS5, bm25) and Postgres (tsvector, ts_rank_cd).

use chrono::Duration;

use super::*;
use crate::memory::memory;

/// Deterministic filler text from a vocabulary that no query below uses.
fn filler(i: u64) -> (String, String) {
    const WORDS: &[&str] = &[
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra",
        "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "apple", "banana",
        "cherry", "grape", "lemon", "mango", "melon", "olive", "peach", "pear",
    ];
    let mut x = i
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        WORDS[((x >> 33) % WORDS.len() as u64) as usize]
    };
    let title = (0..3).map(|_| next()).collect::<Vec<_>>().join(" ");
    let content = (0..40).map(|_| next()).collect::<Vec<_>>().join(" ");
    (title, content)
}

/// The fixture: 240 fillers and the needles the queries look for.
/// Returns the ids of the needles by name.
async fn load(
    server: &TestServer,
    client: &mcpgate_client::Client,
) -> std::collections::HashMap<&'static str, String> {
    let needles: &[(&str, &str, &str, &[&str])] = &[
        (
            "k8s_title",
            "Kubernetes upgrade runbook",
            "Drain nodes before the kubernetes upgrade. Kubernetes needs care.",
            &["ops"],
        ),
        (
            "k8s_body",
            "Cluster notes",
            "We run kubernetes on three nodes.",
            &["ops", "infra"],
        ),
        (
            "k8s_once",
            "Weekly summary",
            "Someone mentioned kubernetes once in passing, among many other topics like lunch.",
            &[],
        ),
        (
            "budget_phrase",
            "SLO policy",
            "When the error budget is spent, freeze deploys.",
            &["sre"],
        ),
        (
            "budget_apart",
            "Finance",
            "The error in the budget spreadsheet was fixed.",
            &[],
        ),
        (
            "observ_title",
            "Observability stack",
            "Traces, logs and metrics.",
            &[],
        ),
        (
            "observ_body",
            "Dashboards",
            "An observable system exports metrics.",
            &[],
        ),
        (
            "zebra_old",
            "Zebra crossing checklist",
            "Look both ways at the zebra crossing.",
            &[],
        ),
        (
            "zebra_new",
            "Zebra crossing checklist",
            "Look both ways at the zebra crossing.",
            &[],
        ),
    ];
    let mut ids = std::collections::HashMap::new();
    for i in 0..240 {
        let (title, content) = filler(i);
        client
            .memory_create()
            .body(memory(&title, &content))
            .send()
            .await
            .unwrap();
    }
    for (name, title, content, tags) in needles {
        server.clock.advance(Duration::seconds(1));
        let mut r = memory(title, content);
        r.tags = tags.iter().map(|t| t.to_string()).collect();
        if *name == "k8s_body" {
            r.memory_type = Some(types::MemoryType::Project);
        }
        let m = client
            .memory_create()
            .body(r)
            .send()
            .await
            .unwrap()
            .into_inner();
        ids.insert(*name, m.id);
    }
    ids
}

e2e! {
    async fn ranking_is_the_same_on_both_backends(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        let ids = load(&server, &client).await;
        let top = |query: &'static str, n: usize| {
            let c = &client;
            async move {
                let found = c.memory_search().body(types::SearchRequest {
                    query: query.into(), memory_types: vec![], tags: vec![], limit: Some(10),
                }).send().await.unwrap().into_inner();
                (found.results.iter().take(n).map(|r| r.memory.id.clone()).collect::<Vec<_>>(), found)
            }
        };
        let expect = |names: &[&str]| names.iter().map(|n| ids[n].clone()).collect::<Vec<_>>();

        // Title matches outrank body matches; more occurrences outrank one.
        let (got, found) = top("kubernetes", 3).await;
        assert_eq!(got, expect(&["k8s_title", "k8s_body", "k8s_once"]), "kubernetes");
        assert_eq!(found.total_results, 3);
        assert!(found.results[0].score > found.results[1].score);
        // Scores read 0-100: the best is 100, the rest in rank order, one decimal.
        let scores: Vec<f64> = found.results.iter().map(|r| r.score).collect();
        assert_eq!(scores[0], 100.0, "{scores:?}");
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(scores.iter().all(|s| (0.0..=100.0).contains(s) && (s * 10.0).fract() == 0.0), "{scores:?}");
        assert!(found.results[0].snippet.contains("<mark>"), "{}", found.results[0].snippet);
        // Stemming: "upgrades" finds "upgrade".
        let (got, _) = top("upgrades", 1).await;
        assert_eq!(got, expect(&["k8s_title"]));
        // A phrase must appear as a phrase.
        let (got, found) = top("\"error budget\"", 5).await;
        assert_eq!(got, expect(&["budget_phrase"]));
        assert_eq!(found.total_results, 1);
        // Words: all must match, anywhere.
        let (got, _) = top("error budget", 5).await;
        assert_eq!(got.len(), 2);
        // Prefixes.
        let (got, _) = top("observab*", 5).await;
        assert_eq!(got, expect(&["observ_title", "observ_body"]));
        // Equal relevance: the newer memory first.
        let (got, _) = top("zebra crossing", 2).await;
        assert_eq!(got, expect(&["zebra_new", "zebra_old"]));
        // Filters.
        let found = client.memory_search().body(types::SearchRequest {
            query: "kubernetes".into(), memory_types: vec![types::MemoryType::Project], tags: vec![], limit: None,
        }).send().await.unwrap().into_inner();
        assert_eq!(found.results.iter().map(|r| r.memory.id.clone()).collect::<Vec<_>>(), expect(&["k8s_body"]));
        let found = client.memory_search().body(types::SearchRequest {
            query: "kubernetes".into(), memory_types: vec![], tags: vec!["OPS".into(), "infra".into()], limit: None,
        }).send().await.unwrap().into_inner();
        assert_eq!(found.results.len(), 1);
        let found = client.memory_search().body(types::SearchRequest {
            query: "alpha".into(), memory_types: vec![], tags: vec![], limit: Some(5),
        }).send().await.unwrap().into_inner();
        assert_eq!(found.results.len(), 5);
        assert!(found.total_results > 5, "total counts every match: {}", found.total_results);
        // Updates and deletes are reflected in the index.
        let mut change = types::UpdateMemoryRequest {
            title: Some("Cluster notes".into()), content: Some("Nothing about containers here.".into()),
            memory_type: None, tags: vec![], metadata: Default::default(),
        };
        client.memory_update().id(&ids["k8s_body"]).body(change.clone()).send().await.unwrap();
        let (got, _) = top("kubernetes", 3).await;
        assert_eq!(got, expect(&["k8s_title", "k8s_once"]));
        change.content = Some("kubernetes again".into());
        client.memory_delete().id(&ids["k8s_title"]).send().await.unwrap();
        let (got, _) = top("kubernetes", 3).await;
        assert_eq!(got, expect(&["k8s_once"]));
        server.stop().await;
    }

    async fn hostile_queries_are_text_never_errors(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        client.memory_create().body(memory("Quote \"test\"", "It's a DROP TABLE memories; -- joke about NEAR and OR")).send().await.unwrap();
        let long = "z".repeat(1000);
        let hostile = [
            "\"unbalanced quote",
            "\"\"\"",
            "a AND OR NOT b",
            "NEAR(a b, 3)",
            "title:secret",
            "'; DROP TABLE memories; --",
            "drop table",
            "^start -exclude +must",
            "(((((",
            "col*umn *star",
            "emoji 🚀 rocket",
            "&|!<->:*",
            long.as_str(),
        ];
        for q in hostile {
            let resp = client.memory_search().body(types::SearchRequest {
                query: q.into(), memory_types: vec![], tags: vec![], limit: None,
            }).send().await;
            match resp {
                Ok(found) => {
                    let found = found.into_inner();
                    assert!(found.results.len() as u64 <= found.total_results);
                }
                Err(e) => {
                    let (status, body) = expect_error(Err::<mcpgate_client::ResponseValue<()>, _>(e));
                    assert_eq!((status, body.field.as_deref()), (400, Some("query")), "{q}: {body:?}");
                    assert!(q.chars().all(|c| !c.is_alphanumeric()), "{q} has words but was refused");
                }
            }
        }
        let found = client.memory_search().body(types::SearchRequest {
            query: "drop table".into(), memory_types: vec![], tags: vec![], limit: None,
        }).send().await.unwrap().into_inner();
        assert_eq!(found.total_results, 1, "SQL in the query is just words");
        for q in ["", "   ", "***", "\"\""] {
            let (status, body) = expect_error(client.memory_search().body(types::SearchRequest {
                query: q.into(), memory_types: vec![], tags: vec![], limit: None,
            }).send().await);
            assert_eq!((status, body.field.as_deref()), (400, Some("query")), "{q:?}");
        }
        let (status, body) = expect_error(client.memory_search().body(types::SearchRequest {
            query: "z".repeat(1001), memory_types: vec![], tags: vec![], limit: None,
        }).send().await);
        assert_eq!((status, body.field.as_deref()), (400, Some("query")));
        for limit in [0, 101] {
            let (status, body) = expect_error(client.memory_search().body(types::SearchRequest {
                query: "drop".into(), memory_types: vec![], tags: vec![], limit: Some(limit),
            }).send().await);
            assert_eq!((status, body.field.as_deref()), (400, Some("limit")), "{limit}");
        }
        // The store is intact.
        assert_eq!(client.memory_stats().send().await.unwrap().into_inner().total_memories, 1);
        server.stop().await;
    }
}
