//! No secret reaches a log.

use super::*;

e2e! {
    async fn keys_and_passwords_never_reach_the_logs(backend) {
        let server = TestServer::start(backend).await;
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        mcpgate_e2e::remember_secret(&password);
        let reg = server
            .anonymous()
            .user_register()
            .body(types::RegisterRequest {
                name: None,
                email: Some(format!("{}@example.com", uuid::Uuid::new_v4().simple())),
                password: Some(password.clone()),
            })
            .send()
            .await
            .unwrap()
            .into_inner();
        let owner = server.with_key(&reg.api_key);
        let created = owner.key_create().body(types::CreateKeyRequest {
            name: "logged?".into(), scopes: vec![], expires_in_days: None,
        }).send().await.unwrap().into_inner();
        let rotated = owner.key_rotate().key_id(&created.key_id)
            .body(types::RotateKeyRequest { grace_seconds: Some(5) }).send().await.unwrap().into_inner();
        // Failures log too: a typo'd key, a revoked key.
        let typo = mcpgate_e2e::typo(&rotated.api_key);
        let _ = server.with_key(&typo).user_me().send().await;
        owner.key_revoke().key_id(&created.key_id).send().await.unwrap();
        let _ = server.with_key(&rotated.api_key).user_me().send().await;
        let request_count_before = mcpgate_e2e::captured_logs().matches("request_id=").count();
        server.stop().await;

        let logs = mcpgate_e2e::captured_logs();
        assert!(request_count_before > 5, "the access log was captured");
        assert!(logs.contains(&reg.key_id), "ids are logged, as they should be");
        for secret in [&reg.api_key, &created.api_key, &rotated.api_key, &typo, &password] {
            // The secret part alone (after the public id) must not appear either.
            let tail = &secret[secret.len().min(22)..];
            assert!(!logs.contains(tail), "a secret reached the logs");
        }
    }
}
