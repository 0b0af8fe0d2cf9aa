//! The audit trail: who did what, from where, in the same transaction as the change.

use super::*;

e2e! {
    async fn key_lifecycle_is_audited_for_its_owner_only(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let other = server.register().await;
        let owner = server.with_key(&reg.api_key);
        let key = owner.key_create().body(types::CreateKeyRequest {
            name: "ci".into(), scopes: vec!["memories:read".into()], expires_in_days: None,
        }).send().await.unwrap().into_inner();
        owner.key_rotate().key_id(&key.key_id).body(types::RotateKeyRequest { grace_seconds: Some(30) }).send().await.unwrap();
        owner.key_revoke().key_id(&key.key_id).send().await.unwrap();
        // Refused changes leave no event.
        let _ = owner.key_create().body(types::CreateKeyRequest { name: " ".into(), scopes: vec![], expires_in_days: None }).send().await;
        let _ = owner.key_revoke().key_id(&other.key_id).send().await;

        let page = owner.audit_list().send().await.unwrap().into_inner();
        let actions: Vec<_> = page.events.iter().map(|e| e.action.to_string()).collect();
        assert_eq!(actions, ["key.revoked", "key.rotated", "key.created", "user.registered"]);
        for e in &page.events[..3] {
            assert_eq!(e.credential_id.as_deref(), Some(reg.key_id.as_str()), "the acting credential");
            assert_eq!(e.target.as_deref(), Some(key.key_id.as_str()));
            assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
            assert!(e.user_agent.as_deref().unwrap_or_default().starts_with("mcpgate-client/"));
            assert!(e.request_id.as_deref().unwrap_or_default().starts_with("req_"));
        }
        assert_eq!(page.events[1].details["grace_seconds"], 30);
        assert_eq!(page.events[2].details["scopes"], serde_json::json!(["memories:read"]));
        assert_eq!(page.events[3].target.as_deref(), Some(reg.key_id.as_str()));
        let raw = serde_json::to_string(&page).unwrap();
        assert!(!raw.contains(&key.api_key[22..]) && !raw.contains(&reg.api_key[22..]), "no secret in the trail");

        // Paging.
        let first = owner.audit_list().limit(3).send().await.unwrap().into_inner();
        assert_eq!(first.events.len(), 3);
        let rest = owner.audit_list().limit(3).cursor(first.next_cursor.clone().unwrap()).send().await.unwrap().into_inner();
        assert_eq!(rest.events.iter().map(|e| e.action).collect::<Vec<_>>(), [types::AuditAction::UserRegistered]);
        assert!(rest.next_cursor.is_none());
        let (status, body) = expect_error(owner.audit_list().cursor("zzz").send().await);
        assert_eq!((status, body.field.as_deref()), (400, Some("cursor")));

        // Another account sees only its own events; a key without keys:read sees none.
        let theirs = server.with_key(&other.api_key).audit_list().send().await.unwrap().into_inner();
        assert_eq!(theirs.events.iter().map(|e| e.action).collect::<Vec<_>>(), [types::AuditAction::UserRegistered]);
        let reader = owner.key_create().body(types::CreateKeyRequest {
            name: "reader".into(), scopes: vec!["memories:read".into()], expires_in_days: None,
        }).send().await.unwrap().into_inner();
        let (status, _) = expect_error(server.with_key(&reader.api_key).audit_list().send().await);
        assert_eq!(status, 403);
        server.stop().await;
    }
}
