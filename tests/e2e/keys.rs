//! API keys: create, list, revoke, rotate, expire; isolation between users.

use chrono::Duration;

use super::*;

fn new_key(name: &str) -> types::CreateKeyRequest {
    types::CreateKeyRequest {
        name: name.into(),
        scopes: vec![],
        expires_in_days: None,
    }
}

e2e! {
    async fn create_list_and_revoke(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let owner = server.with_key(&reg.api_key);
        server.clock.advance(Duration::seconds(1));
        let created = owner.key_create().body(types::CreateKeyRequest {
            name: "  ci deploy  ".into(),
            scopes: vec!["keys:read".into()],
            expires_in_days: Some(30),
        }).send().await.unwrap();
        assert_eq!(created.status().as_u16(), 201);
        let created = created.into_inner();
        assert_eq!(created.name, "ci deploy");
        assert_eq!(created.prefix, format!("mcpg_{}", created.key_id));
        let expires = created.expires_at.expect("expiry set");
        assert_eq!((expires - created.created_at).num_days(), 30);

        let list = owner.key_list().send().await.unwrap().into_inner();
        let ids: Vec<_> = list.keys.iter().map(|k| k.key_id.as_str()).collect();
        assert_eq!(ids, [created.key_id.as_str(), reg.key_id.as_str()], "newest first");
        let raw = serde_json::to_string(&list).unwrap();
        assert!(!raw.contains(&created.api_key[22..]), "a listing never contains a secret");
        assert!(!raw.contains(&reg.api_key[22..]));

        let new_client = server.with_key(&created.api_key);
        new_client.key_list().send().await.expect("new key works");

        let revoked = owner.key_revoke().key_id(&created.key_id).send().await.unwrap();
        assert_eq!(revoked.status().as_u16(), 204);
        // Effective on the very next request.
        let (status, body) = expect_error(new_client.key_list().send().await);
        assert_eq!((status, body.error.as_str()), (401, "api_key_revoked"));
        // Revoking twice is a conflict; the listing shows when it happened.
        let (status, body) = expect_error(owner.key_revoke().key_id(&created.key_id).send().await);
        assert_eq!((status, body.error.as_str()), (409, "key_revoked"));
        let list = owner.key_list().send().await.unwrap().into_inner();
        assert!(list.keys.iter().find(|k| k.key_id == created.key_id).unwrap().revoked_at.is_some());
        // A key may revoke itself.
        owner.key_revoke().key_id(&reg.key_id).send().await.unwrap();
        let (status, _) = expect_error(owner.user_me().send().await);
        assert_eq!(status, 401);
        server.stop().await;
    }

    async fn keys_of_other_users_are_not_found(backend) {
        let server = TestServer::start(backend).await;
        let alice = server.register().await;
        let bob = server.register().await;
        let bob_client = server.with_key(&bob.api_key);
        let (status, body) = expect_error(bob_client.key_revoke().key_id(&alice.key_id).send().await);
        assert_eq!((status, body.error.as_str()), (404, "not_found"));
        let (status, _) = expect_error(
            bob_client.key_rotate().key_id(&alice.key_id)
                .body(types::RotateKeyRequest { grace_seconds: None }).send().await,
        );
        assert_eq!(status, 404);
        // Exactly like a key that does not exist.
        let (status, body2) = expect_error(bob_client.key_revoke().key_id("0000000000000000").send().await);
        assert_eq!((status, body2.message.as_str()), (404, body.message.as_str()));
        for odd in ["not-a-key-id", "0000000000000000000000000000"] {
            let (status, _) = expect_error(bob_client.key_revoke().key_id(odd).send().await);
            assert_eq!(status, 404, "{odd}");
        }
        let bob_keys = bob_client.key_list().send().await.unwrap().into_inner();
        assert_eq!(bob_keys.keys.len(), 1);
        assert_eq!(bob_keys.keys[0].key_id, bob.key_id);
        // Alice's key is untouched.
        server.with_key(&alice.api_key).user_me().send().await.expect("alice still valid");
        server.stop().await;
    }

    async fn expired_keys_are_refused(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let owner = server.with_key(&reg.api_key);
        let short = owner.key_create().body(types::CreateKeyRequest {
            name: "short".into(), scopes: vec![], expires_in_days: Some(1),
        }).send().await.unwrap().into_inner();
        let client = server.with_key(&short.api_key);
        client.user_me().send().await.expect("valid before expiry");
        server.clock.advance(Duration::days(1) - Duration::seconds(1));
        client.user_me().send().await.expect("valid until the last second");
        server.clock.advance(Duration::seconds(1));
        let (status, body) = expect_error(client.user_me().send().await);
        assert_eq!((status, body.error.as_str()), (401, "api_key_expired"));
        // Expired keys cannot be rotated back to life.
        let (status, body) = expect_error(
            owner.key_rotate().key_id(&short.key_id).body(types::RotateKeyRequest { grace_seconds: Some(60) }).send().await,
        );
        assert_eq!((status, body.error.as_str()), (409, "key_expired"));
        for days in [0, 3651, -1] {
            let (status, body) = expect_error(owner.key_create().body(types::CreateKeyRequest {
                name: "x".into(), scopes: vec![], expires_in_days: Some(days),
            }).send().await);
            assert_eq!((status, body.field.as_deref()), (400, Some("expires_in_days")));
        }
        server.stop().await;
    }

    async fn rotation_keeps_the_id_and_honours_the_grace_period(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let owner = server.with_key(&reg.api_key);
        let key = owner.key_create().body(new_key("rotating")).send().await.unwrap().into_inner();

        let rotated = owner.key_rotate().key_id(&key.key_id)
            .body(types::RotateKeyRequest { grace_seconds: Some(60) })
            .send().await.unwrap().into_inner();
        assert_eq!(rotated.key_id, key.key_id);
        assert_ne!(rotated.api_key, key.api_key);
        assert_eq!(rotated.scopes, key.scopes);
        let old = server.with_key(&key.api_key);
        let new = server.with_key(&rotated.api_key);
        old.user_me().send().await.expect("old secret valid during grace");
        new.user_me().send().await.expect("new secret valid");
        server.clock.advance(Duration::seconds(60));
        let (status, body) = expect_error(old.user_me().send().await);
        assert_eq!((status, body.error.as_str()), (401, "invalid_api_key"));
        new.user_me().send().await.expect("new secret still valid");

        // Default grace is 0: the old secret stops at once.
        let again = owner.key_rotate().key_id(&key.key_id)
            .body(types::RotateKeyRequest { grace_seconds: None })
            .send().await.unwrap().into_inner();
        let (status, _) = expect_error(new.user_me().send().await);
        assert_eq!(status, 401);
        server.with_key(&again.api_key).user_me().send().await.expect("newest works");

        let (status, body) = expect_error(owner.key_rotate().key_id(&key.key_id)
            .body(types::RotateKeyRequest { grace_seconds: Some(604_801) }).send().await);
        assert_eq!((status, body.field.as_deref()), (400, Some("grace_seconds")));

        // Revoking ends the grace period too.
        let graced = owner.key_rotate().key_id(&key.key_id)
            .body(types::RotateKeyRequest { grace_seconds: Some(3600) })
            .send().await.unwrap().into_inner();
        owner.key_revoke().key_id(&key.key_id).send().await.unwrap();
        for k in [&again.api_key, &graced.api_key] {
            let (status, _) = expect_error(server.with_key(k).user_me().send().await);
            assert_eq!(status, 401);
        }
        server.stop().await;
    }
}

e2e! {
    async fn purge_clears_only_expired_rotation_secrets(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let owner = server.with_key(&reg.api_key);
        let short = owner.key_create().body(new_key("short grace")).send().await.unwrap().into_inner();
        let long = owner.key_create().body(new_key("long grace")).send().await.unwrap().into_inner();
        for (key, grace) in [(&short, 60), (&long, 3600)] {
            owner.key_rotate().key_id(&key.key_id)
                .body(types::RotateKeyRequest { grace_seconds: Some(grace) }).send().await.unwrap();
        }
        server.clock.advance(Duration::seconds(61));
        let report = mcpgate_server::service::cleanup::purge(server.state()).await.unwrap();
        assert_eq!(report.expired_rotation_secrets, 1);
        let row = |id: String| {
            let db = server.state().db.clone();
            async move { mcpgate_server::store::api_keys::find(&db, &id).await.unwrap().unwrap() }
        };
        let s = row(short.key_id.clone()).await;
        assert!(s.previous_secret_hash.is_none() && s.previous_expires_at.is_none());
        let l = row(long.key_id.clone()).await;
        assert!(l.previous_secret_hash.is_some(), "grace still running");
        // The old secret of the long-grace key still works; purging again finds nothing.
        server.with_key(&long.api_key).user_me().send().await.expect("within grace");
        let again = mcpgate_server::service::cleanup::purge(server.state()).await.unwrap();
        assert_eq!(again.expired_rotation_secrets, 0);
        server.stop().await;
    }
}
