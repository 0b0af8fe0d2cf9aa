//! Prometheus metrics: off by default, bounded labels when on.

use super::*;

e2e! {
    async fn metrics_are_off_by_default_and_count_by_operation_when_on(backend) {
        let server = TestServer::start(backend).await;
        let client = server.anonymous();
        let resp = server.raw(&client, reqwest::Method::GET, "/metrics").send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404);
        server.stop().await;

        let server = TestServer::start_with(backend, |c| c.metrics_enabled = true).await;
        let reg = server.register().await;
        let me = server.with_key(&reg.api_key);
        me.user_me().send().await.unwrap();
        me.user_me().send().await.unwrap();
        let _ = server.with_key(&mcpgate_e2e::typo(&reg.api_key)).user_me().send().await;
        let _ = me.key_revoke().key_id("0000000000000000").send().await;
        let client = server.anonymous();
        let text = server.raw(&client, reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
        for line in [
            "mcpgate_http_requests_total{operation=\"user_register\",method=\"POST\",status=\"201\"} 1",
            "mcpgate_http_requests_total{operation=\"user_me\",method=\"GET\",status=\"200\"} 2",
            "mcpgate_http_requests_total{operation=\"user_me\",method=\"GET\",status=\"401\"} 1",
            "mcpgate_http_requests_total{operation=\"key_revoke\",method=\"DELETE\",status=\"404\"} 1",
            "mcpgate_http_request_duration_seconds_count{operation=\"user_me\"} 3",
            "mcpgate_auth_attempts_total{kind=\"api_key\",outcome=\"ok\"} 3",
            "mcpgate_auth_attempts_total{kind=\"api_key\",outcome=\"malformed\"} 1",
            "# TYPE mcpgate_db_pool_connections gauge",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        assert!(!text.contains("0000000000000000"), "paths never become labels");
        server.stop().await;
    }
}
