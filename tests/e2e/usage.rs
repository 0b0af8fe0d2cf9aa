//! Key usage: counted in memory, flushed in the background and on shutdown.

use super::*;

e2e! {
    async fn usage_is_counted_and_survives_a_graceful_restart(backend) {
        // A long flush interval: only the shutdown flush can save the counts.
        let server = TestServer::start_with(backend, |c| c.usage_flush_interval_secs = 10).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        for _ in 0..7 {
            client.user_me().send().await.unwrap();
        }
        // The listing includes uses not yet flushed (7 + this request).
        let list = client.key_list().send().await.unwrap().into_inner();
        assert_eq!(list.keys[0].usage_count, 8);
        let last_used = list.keys[0].last_used_at.expect("last_used_at");

        let server = server.restart().await;
        let client = server.with_key(&reg.api_key);
        let list = client.key_list().send().await.unwrap().into_inner();
        assert_eq!(list.keys[0].usage_count, 9, "counts flushed at shutdown, plus this request");
        assert!(list.keys[0].last_used_at.unwrap() >= last_used);
        // Failed authentications are not usage.
        let typo = mcpgate_e2e::typo(&reg.api_key);
        let _ = server.with_key(&typo).user_me().send().await;
        let server = server.restart().await;
        let list = server.with_key(&reg.api_key).key_list().send().await.unwrap().into_inner();
        assert_eq!(list.keys[0].usage_count, 10, "{}", mcpgate_e2e::captured_logs().lines().filter(|l| l.contains("flush") || l.contains("ERROR") || l.contains("WARN")).collect::<Vec<_>>().join("\n"));
        server.stop().await;
    }

    async fn usage_is_flushed_in_the_background(backend) {
        let server = TestServer::start_with(backend, |c| c.usage_flush_interval_secs = 1).await;
        let reg = server.register().await;
        let client = server.with_key(&reg.api_key);
        for _ in 0..3 {
            client.user_me().send().await.unwrap();
        }
        // Read the stored row directly: the background flush must write it
        // while the server keeps running.
        let mut stored = 0;
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let row = mcpgate_server::store::api_keys::find(&server.state().db, &reg.key_id)
                .await
                .unwrap()
                .unwrap();
            stored = row.usage_count;
            if stored == 3 {
                assert!(row.last_used_at.is_some());
                break;
            }
        }
        assert_eq!(stored, 3);
        server.stop().await;
    }
}
