//! The memory store: CRUD, limits, isolation, scopes, paging, concurrency, search.

use chrono::Duration;
use mcpgate_server::clock::Clock;

use super::*;

pub fn memory(title: &str, content: &str) -> types::CreateMemoryRequest {
    types::CreateMemoryRequest {
        title: title.into(),
        content: content.into(),
        memory_type: None,
        tags: vec![],
        metadata: Default::default(),
    }
}

fn patch() -> types::UpdateMemoryRequest {
    types::UpdateMemoryRequest {
        title: None,
        content: None,
        memory_type: None,
        tags: vec![],
        metadata: Default::default(),
    }
}

fn search(query: &str) -> types::SearchRequest {
    types::SearchRequest {
        query: query.into(),
        memory_types: vec![],
        tags: vec![],
        limit: None,
    }
}

/// A user with a full-access client.
async fn user(server: &TestServer) -> (types::Registered, mcpgate_client::Client) {
    let reg = server.register().await;
    let client = server.with_key(&reg.api_key);
    (reg, client)
}

e2e! {
    async fn create_get_update_delete_round_trip(backend) {
        let server = TestServer::start(backend).await;
        let (_, client) = user(&server).await;
        let mut req = memory("  Deploy notes ", "Run the migrations first.\nThen restart.");
        req.tags = vec!["Ops".into(), " ops ".into(), "deploy".into()];
        req.metadata.insert("source".into(), serde_json::json!({"tool": "cli", "n": 1}));
        let created = client.memory_create().body(req).send().await.unwrap();
        assert_eq!(created.status().as_u16(), 201);
        assert_eq!(created.headers()["etag"], "\"1\"");
        let m = created.into_inner();
        assert_eq!(m.title, "Deploy notes");
        assert_eq!(m.content, "Run the migrations first.\nThen restart.");
        assert_eq!(m.memory_type, types::MemoryType::Context);
        assert_eq!(m.tags, ["ops", "deploy"]);
        assert_eq!(m.metadata["source"]["tool"], "cli");
        assert_eq!(m.version, 1);
        assert_eq!(m.created_at, m.updated_at);

        let got = client.memory_get().id(&m.id).send().await.unwrap().into_inner();
        assert_eq!(got, m);

        server.clock.advance(Duration::seconds(5));
        let mut change = patch();
        change.content = Some("Run the migrations, then restart.".into());
        change.memory_type = Some(types::MemoryType::Workflow);
        let updated = client.memory_update().id(&m.id).body(change).send().await.unwrap();
        assert_eq!(updated.headers()["etag"], "\"2\"");
        let updated = updated.into_inner();
        assert_eq!(updated.version, 2);
        assert_eq!(updated.title, "Deploy notes", "fields not sent are kept");
        assert_eq!(updated.tags, ["ops", "deploy"]);
        assert_eq!(updated.memory_type, types::MemoryType::Workflow);
        assert_eq!(updated.created_at, m.created_at);
        assert_eq!(updated.updated_at - m.updated_at, Duration::seconds(5));

        let deleted = client.memory_delete().id(&m.id).send().await.unwrap();
        assert_eq!(deleted.status().as_u16(), 204);
        let (status, body) = expect_error(client.memory_get().id(&m.id).send().await);
        assert_eq!((status, body.error.as_str()), (404, "not_found"));
        let (status, _) = expect_error(client.memory_delete().id(&m.id).send().await);
        assert_eq!(status, 404);
        let (status, _) = expect_error(client.memory_get().id("not-a-uuid").send().await);
        assert_eq!(status, 404);
        server.stop().await;
    }

    async fn every_limit_at_and_past_its_edge(backend) {
        let server = TestServer::start(backend).await;
        let (_, client) = user(&server).await;
        let ok = |r: types::CreateMemoryRequest| {
            let c = &client;
            async move { c.memory_create().body(r).send().await }
        };
        let at = |title: String, content: String| memory(&title, &content);
        // Titles: 200 characters (multi-byte) pass, 201 fail.
        ok(at("é".repeat(200), "x".into())).await.expect("200-char title");
        let cases: Vec<(types::CreateMemoryRequest, &str)> = vec![
            (at("é".repeat(201), "x".into()), "title"),
            (at("   ".into(), "x".into()), "title"),
            (at("t".into(), "   ".into()), "content"),
            (at("t".into(), "c".repeat(50_001)), "content"),
            ({ let mut r = at("t".into(), "c".into()); r.tags = (0..21).map(|i| format!("t{i}")).collect(); r }, "tags"),
            ({ let mut r = at("t".into(), "c".into()); r.tags = vec!["ok".into(), "x".repeat(51)]; r }, "tags[1]"),
            ({ let mut r = at("t".into(), "c".into()); r.tags = vec!["  ".into()]; r }, "tags[0]"),
            ({ let mut r = at("t".into(), "c".into()); r.metadata.insert("big".into(), "m".repeat(16 * 1024).into()); r }, "metadata"),
        ];
        for (req, field) in cases {
            let (status, body) = expect_error(ok(req).await);
            assert_eq!((status, body.field.as_deref()), (400, Some(field)), "{body:?}");
        }
        ok(at("t".into(), "c".repeat(50_000))).await.expect("50,000-char content");
        let mut r = at("t".into(), "c".into());
        r.tags = (0..20).map(|i| format!("{i:0>50}")).collect();
        ok(r).await.expect("20 tags of 50 characters");
        let mut r = at("t".into(), "c".into());
        // 16 KiB of JSON exactly: {"k":"<16377 chars>"}
        r.metadata.insert("k".into(), "m".repeat(16 * 1024 - 8).into());
        ok(r).await.expect("16 KiB metadata");
        // Duplicates after normalization are stored once.
        let mut r = at("t".into(), "c".into());
        r.tags = (0..10).flat_map(|i| [format!("T{i}"), format!("t{i} ")]).collect();
        assert_eq!(ok(r).await.unwrap().into_inner().tags.len(), 10);
        // The limit counts the entries sent, as the spec's maxItems does.
        let mut r = at("t".into(), "c".into());
        r.tags = (0..21).map(|i| format!("t{}", i % 2)).collect();
        let (status, body) = expect_error(ok(r).await);
        assert_eq!((status, body.field.as_deref()), (400, Some("tags")));

        // Raw bodies: wrong types and enum values are named too.
        let raw = |body: &'static str| {
            let c = &client;
            let s = &server;
            async move {
                let resp = s.raw(c, reqwest::Method::POST, "/api/v1/memory")
                    .header("content-type", "application/json").body(body).send().await.unwrap();
                (resp.status().as_u16(), resp.json::<serde_json::Value>().await.unwrap())
            }
        };
        for (body, field) in [
            (r#"{"title":"t","content":"c","memory_type":"diary"}"#, "memory_type"),
            (r#"{"title":"t","content":"c","metadata":[1]}"#, "metadata"),
            (r#"{"title":"t","content":"c","tags":"a,b"}"#, "tags"),
            (r#"{"content":"c"}"#, "title"),
        ] {
            let (status, value) = raw(body).await;
            assert_eq!((status, value["field"].as_str()), (400, Some(field)), "{body}: {value}");
        }
        server.stop().await;
    }

    async fn users_never_see_each_others_memories(backend) {
        let server = TestServer::start(backend).await;
        let (_, alice) = user(&server).await;
        let (_, bob) = user(&server).await;
        let mut req = memory("Alice's secret plan", "The password hint is tangerine.");
        req.tags = vec!["private".into()];
        let m = alice.memory_create().body(req).send().await.unwrap().into_inner();

        let (status, body) = expect_error(bob.memory_get().id(&m.id).send().await);
        assert_eq!((status, body.error.as_str()), (404, "not_found"));
        let (status, _) = expect_error(bob.memory_update().id(&m.id).body(patch()).send().await);
        assert_eq!(status, 404);
        let (status, _) = expect_error(bob.memory_update().id(&m.id).if_match("\"1\"").body(patch()).send().await);
        assert_eq!(status, 404, "not 412: the version of someone else's memory is not revealed");
        let (status, _) = expect_error(bob.memory_delete().id(&m.id).send().await);
        assert_eq!(status, 404);
        let list = bob.memory_list().send().await.unwrap().into_inner();
        assert_eq!((list.total, list.memories.len()), (0, 0));
        let found = bob.memory_search().body(search("tangerine")).send().await.unwrap().into_inner();
        assert_eq!(found.total_results, 0);
        let stats = bob.memory_stats().send().await.unwrap().into_inner();
        assert_eq!(stats.total_memories, 0);
        assert!(stats.top_tags.is_empty());

        // Alice still has it, unchanged.
        let got = alice.memory_get().id(&m.id).send().await.unwrap().into_inner();
        assert_eq!(got.version, 1);
        let found = alice.memory_search().body(search("tangerine")).send().await.unwrap().into_inner();
        assert_eq!(found.total_results, 1);
        server.stop().await;
    }

    async fn a_read_only_key_cannot_write(backend) {
        let server = TestServer::start(backend).await;
        let (_, owner) = user(&server).await;
        let m = owner.memory_create().body(memory("t", "c")).send().await.unwrap().into_inner();
        let ro = owner.key_create().body(types::CreateKeyRequest {
            name: "reader".into(), scopes: vec!["memories:read".into()], expires_in_days: None,
        }).send().await.unwrap().into_inner();
        let reader = server.with_key(&ro.api_key);
        reader.memory_get().id(&m.id).send().await.expect("read");
        reader.memory_list().send().await.expect("list");
        reader.memory_search().body(search("c")).send().await.expect("search");
        reader.memory_stats().send().await.expect("stats");
        for result in [
            expect_error(reader.memory_create().body(memory("x", "y")).send().await),
            expect_error(reader.memory_update().id(&m.id).body(patch()).send().await),
        ] {
            assert_eq!((result.0, result.1.error.as_str()), (403, "insufficient_scope"));
        }
        let (status, _) = expect_error(reader.memory_delete().id(&m.id).send().await);
        assert_eq!(status, 403);
        // And a key without memories:read cannot read.
        let keys_only = owner.key_create().body(types::CreateKeyRequest {
            name: "keys".into(), scopes: vec!["keys:read".into()], expires_in_days: None,
        }).send().await.unwrap().into_inner();
        let (status, _) = expect_error(server.with_key(&keys_only.api_key).memory_list().send().await);
        assert_eq!(status, 403);
        assert_eq!(owner.memory_get().id(&m.id).send().await.unwrap().into_inner().version, 1);
        server.stop().await;
    }

    async fn listing_filters_and_pages_stably(backend) {
        let server = TestServer::start(backend).await;
        let (_, client) = user(&server).await;
        let start = server.clock.now();
        let mut ids = Vec::new();
        for i in 0..25 {
            server.clock.advance(Duration::seconds(1));
            let mut r = memory(&format!("m{i}"), "content");
            r.memory_type = Some(if i % 2 == 0 { types::MemoryType::Project } else { types::MemoryType::Knowledge });
            r.tags = if i % 3 == 0 { vec!["a".into(), "b".into()] } else { vec!["a".into()] };
            ids.push(client.memory_create().body(r).send().await.unwrap().into_inner().id);
        }
        ids.reverse(); // newest first
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = client.memory_list().limit(10);
            if let Some(c) = &cursor {
                q = q.cursor(c.clone());
            }
            let page = q.send().await.unwrap().into_inner();
            // A write between pages does not shift what later pages return.
            if seen.is_empty() {
                assert_eq!(page.total, 25);
                client.memory_create().body(memory("late", "arrival")).send().await.unwrap();
            }
            seen.extend(page.memories.into_iter().map(|m| m.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids);

        let projects = client.memory_list().memory_type(types::MemoryType::Project).limit(100).send().await.unwrap().into_inner();
        assert_eq!(projects.total, 13);
        assert!(projects.memories.iter().all(|m| m.memory_type == types::MemoryType::Project));
        let both = client.memory_list().tags("a,B").limit(100).send().await.unwrap().into_inner();
        assert_eq!(both.total, 9, "every tag must match (i % 3 == 0)");
        let window = client
            .memory_list()
            .created_after(start + Duration::seconds(5))
            .created_before(start + Duration::seconds(11))
            .send()
            .await
            .unwrap()
            .into_inner();
        assert_eq!(window.total, 5, "seconds 6..=10");

        for (req, field) in [
            (client.memory_list().limit(0), "limit"),
            (client.memory_list().limit(101), "limit"),
            (client.memory_list().cursor("bogus"), "cursor"),
        ] {
            let (status, body) = expect_error(req.send().await);
            assert_eq!((status, body.field.as_deref()), (400, Some(field)));
        }
        server.stop().await;
    }

    async fn stale_versions_are_refused_and_one_concurrent_patch_wins(backend) {
        let server = TestServer::start(backend).await;
        let (_, client) = user(&server).await;
        let m = client.memory_create().body(memory("v", "one")).send().await.unwrap().into_inner();
        let mut change = patch();
        change.content = Some("two".into());
        let v2 = client.memory_update().id(&m.id).if_match("\"1\"").body(change).send().await.unwrap().into_inner();
        assert_eq!(v2.version, 2);
        let mut stale = patch();
        stale.content = Some("lost update".into());
        let (status, body) = expect_error(client.memory_update().id(&m.id).if_match("\"1\"").body(stale).send().await);
        assert_eq!((status, body.error.as_str()), (412, "version_mismatch"));
        let (status, body) = expect_error(client.memory_update().id(&m.id).if_match("two").body(patch()).send().await);
        assert_eq!((status, body.field.as_deref()), (400, Some("If-Match")));
        assert_eq!(client.memory_get().id(&m.id).send().await.unwrap().into_inner().content, "two");

        let mut tasks = Vec::new();
        for i in 0..6 {
            let c = client.clone();
            let id = m.id.clone();
            tasks.push(tokio::spawn(async move {
                let mut change = patch();
                change.content = Some(format!("writer {i}"));
                c.memory_update().id(&id).if_match("\"2\"").body(change).send().await.map(|r| r.into_inner().content)
            }));
        }
        let mut won = Vec::new();
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(content) => won.push(content),
                Err(mcpgate_client::SendError::ErrorResponse(rv)) if rv.status().as_u16() == 412 => refused += 1,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!((won.len(), refused), (1, 5), "exactly one writer wins");
        let now = client.memory_get().id(&m.id).send().await.unwrap().into_inner();
        assert_eq!((now.version, now.content.as_str()), (3, won[0].as_str()));
        server.stop().await;
    }

    async fn stats_count_only_ones_own(backend) {
        let server = TestServer::start(backend).await;
        let (_, client) = user(&server).await;
        let (_, other) = user(&server).await;
        other.memory_create().body(memory("other", "x")).send().await.unwrap();
        let empty = client.memory_stats().send().await.unwrap().into_inner();
        assert_eq!((empty.total_memories, empty.total_bytes), (0, 0));
        assert!(empty.oldest_at.is_none() && empty.newest_at.is_none());
        let first = server.clock.now();
        for (i, tags) in [vec!["rust"], vec!["rust", "db"], vec!["db"], vec!["rust"]].into_iter().enumerate() {
            let mut r = memory(&format!("t{i}"), "1234567890");
            r.tags = tags.into_iter().map(Into::into).collect();
            if i == 3 {
                r.memory_type = Some(types::MemoryType::Personal);
            }
            client.memory_create().body(r).send().await.unwrap();
            server.clock.advance(Duration::seconds(10));
        }
        let s = client.memory_stats().send().await.unwrap().into_inner();
        assert_eq!(s.total_memories, 4);
        assert_eq!(s.by_type.get("context"), Some(&3));
        assert_eq!(s.by_type.get("personal"), Some(&1));
        let tags: Vec<_> = s.top_tags.iter().map(|t| (t.tag.as_str(), t.count)).collect();
        assert_eq!(tags, [("rust", 3), ("db", 2)]);
        assert_eq!(s.total_bytes, 4 * (2 + 10 + 2), "title + content + metadata `{{}}`");
        assert_eq!(s.oldest_at, Some(first));
        assert_eq!(s.newest_at, Some(first + Duration::seconds(30)));
        server.stop().await;
    }
}
