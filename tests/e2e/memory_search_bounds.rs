//! Search whose cost one tenant cannot inflate: a bounded number of words,
//! short prefixes never expanded, a time budget, a bound on concurrent
//! searches per account, and results that depend only on the caller's
//! own memories.

use super::*;
use crate::memory::memory;

fn search(query: &str) -> types::SearchRequest {
    types::SearchRequest {
        query: query.into(),
        memory_types: vec![],
        tags: vec![],
        limit: None,
    }
}

/// `n` memories of about `words` words each, every one holding `common`.
async fn load(client: &mcpgate_client::Client, n: usize, words: usize, common: &str) {
    const VOCAB: &[&str] = &[
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima",
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let content = (0..words)
            .map(|j| {
                if j % 7 == 0 {
                    common
                } else {
                    VOCAB[(i * 31 + j * 7) % VOCAB.len()]
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        let client = client.clone();
        let title = format!("Note {i} {common}");
        tasks.spawn(async move {
            client
                .memory_create()
                .body(memory(&title, &content))
                .send()
                .await
                .expect("create");
        });
        if tasks.len() >= 4 {
            tasks.join_next().await.expect("task").expect("create task");
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("create task");
    }
}

e2e! {
    async fn too_many_words_are_refused_naming_the_query(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        client.memory_create().body(memory("w1 w2", "w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16")).send().await.unwrap();
        let words = |n: usize| (1..=n).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let found = client.memory_search().body(search(&words(16))).send().await.expect("16 words").into_inner();
        assert_eq!(found.total_results, 1);
        let one_letter_prefixes: String = ('a'..='z').chain('0'..='5').map(|c| format!("{c}* ")).collect();
        let phrase_words = format!("\"{}\" w10", words(16));
        for q in [words(17), one_letter_prefixes, phrase_words] {
            let (status, body) = expect_error(client.memory_search().body(search(&q)).send().await);
            assert_eq!((status, body.error.as_str(), body.field.as_deref()), (400, "validation_failed", Some("query")), "{q}");
            assert!(body.message.contains("at most 16"), "the message says the limit: {}", body.message);
        }
        // Repeating a word does not count twice.
        let repeated = "w1 ".repeat(40);
        client.memory_search().body(search(&repeated)).send().await.expect("one distinct word");
        server.stop().await;
    }

    async fn a_short_prefix_is_the_exact_word(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        let exact = client.memory_create().body(memory("Short words", "ab cd")).send().await.unwrap().into_inner();
        let longer = client.memory_create().body(memory("Longer words", "abc abcdef cde")).send().await.unwrap().into_inner();
        let ids = |found: types::SearchResponse| found.results.into_iter().map(|r| r.memory.id).collect::<Vec<_>>();
        // `ab*` is the word `ab`: it does not find abc or abcdef.
        let found = client.memory_search().body(search("ab*")).send().await.unwrap().into_inner();
        assert_eq!(ids(found), std::slice::from_ref(&exact.id));
        // A one-letter prefix finds only the one-letter word, here none.
        let found = client.memory_search().body(search("a*")).send().await.unwrap().into_inner();
        assert_eq!(found.total_results, 0);
        // Three letters or more expand as before.
        let found = client.memory_search().body(search("abc*")).send().await.unwrap().into_inner();
        assert_eq!(ids(found), [longer.id]);
        let found = client.memory_search().body(search("cd*")).send().await.unwrap().into_inner();
        assert_eq!(ids(found), [exact.id]);
        server.stop().await;
    }

    async fn a_search_past_its_budget_answers_search_timeout(backend) {
        let server = TestServer::start_with(backend, |c| c.search_timeout_ms = 1).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        load(&client, 40, 6000, "common").await;
        let refused = client.memory_search().body(search("common")).send().await;
        let Err(mcpgate_client::SendError::ErrorResponse(rv)) = refused else { panic!("expected 503, got {refused:?}") };
        assert_eq!(rv.status().as_u16(), 503);
        assert_eq!(rv.headers()["retry-after"], "1");
        let body = rv.into_inner();
        assert_eq!(body.error, "search_timeout");
        assert!(body.message.contains("1 ms"), "{}", body.message);
        // The connection was given back in a usable state: other reads work.
        let page = client.memory_list().send().await.expect("listing after a timeout").into_inner();
        assert_eq!(page.total, 40);
        let server = server.reconfigure(|c| c.search_timeout_ms = 30_000).await;
        let client = server.with_key(&reg.api_key);
        let found = client.memory_search().body(search("common")).send().await.expect("within a large budget").into_inner();
        assert_eq!(found.total_results, 40);
        server.stop().await;
    }

    async fn concurrent_searches_past_the_bound_are_refused_with_retry_after(backend) {
        let server = TestServer::start_with(backend, |c| {
            c.search_concurrency_per_user = 1;
            c.search_queue_ms = 0;
        }).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        load(&client, 60, 3000, "common").await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let client = client.clone();
            tasks.spawn(async move { client.memory_search().body(search("common")).send().await });
        }
        let (mut ok, mut refused) = (0, 0);
        while let Some(done) = tasks.join_next().await {
            match done.expect("task") {
                Ok(found) => {
                    assert_eq!(found.into_inner().total_results, 60);
                    ok += 1;
                }
                Err(mcpgate_client::SendError::ErrorResponse(rv)) => {
                    assert_eq!(rv.status().as_u16(), 429);
                    assert_eq!(rv.headers()["retry-after"], "1");
                    assert_eq!(rv.into_inner().error, "rate_limited");
                    refused += 1;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(ok >= 1 && refused >= 1, "one at a time: {ok} answered, {refused} refused");
        // The bound is per account and forgets finished searches.
        assert!(server.state().search_gate.is_empty());
        client.memory_search().body(search("common")).send().await.expect("a search after the others");
        let other = server.register().await;
        server.with_key(&other.api_key).memory_search().body(search("common")).send().await.expect("another credential");
        server.stop().await;
    }

    async fn another_users_rows_do_not_change_the_callers_results(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        for (t, c) in [
            ("Kubernetes upgrade", "Drain nodes before the kubernetes upgrade."),
            ("Cluster notes", "We run kubernetes on three nodes; upgrades monthly."),
            ("Lunch", "Someone mentioned kubernetes once, among many other topics."),
            ("Unrelated", "Nothing to see here."),
        ] {
            client.memory_create().body(memory(t, c)).send().await.unwrap();
        }
        let queries = ["kubernetes", "kubernetes upgrade", "\"kubernetes upgrade\"", "nod*", "nodes"];
        let snapshot = |client: mcpgate_client::Client| async move {
            let mut out = Vec::new();
            for q in queries {
                let found = client.memory_search().body(search(q)).send().await.unwrap().into_inner();
                out.push((found.total_results, found.results.into_iter().map(|r| (r.memory.id, r.score, r.snippet)).collect::<Vec<_>>()));
            }
            out
        };
        let before = snapshot(client.clone()).await;
        assert_eq!(before[0].0, 3);
        // Another account fills the same words in many memories.
        let other = server.register().await;
        let other_client = server.with_key(&other.api_key);
        load(&other_client, 120, 60, "kubernetes").await;
        for i in 0..20 {
            other_client.memory_create().body(memory(&format!("Kubernetes upgrade {i}"), "kubernetes upgrade nodes nodes")).send().await.unwrap();
        }
        let after = snapshot(client.clone()).await;
        assert_eq!(after, before, "same results, scores and snippets");
        // And the other account sees only its own.
        let found = other_client.memory_search().body(search("kubernetes")).send().await.unwrap().into_inner();
        assert_eq!(found.total_results, 140);
        server.stop().await;
    }
}
