//! Credentials: how every kind of bad key is refused (401) and how scopes
//! limit a valid one (403).

use super::*;

async fn status_and_code(
    server: &TestServer,
    headers: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let client = server.anonymous();
    let mut req = server.raw(&client, reqwest::Method::GET, "/api/v1/users/me");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = resp.json().await.unwrap();
    let error = body["error"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{body}"));
    (status, error, challenge)
}

e2e! {
    async fn bad_credentials_are_401_with_a_challenge(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let key = reg.api_key.clone();
        // Same id and shape, wrong secret, valid checksum: "unknown".
        let forged = {
            let body = format!("mcpg_{}_{}", reg.key_id, "A".repeat(43));
            let crc = crc(&body);
            format!("{body}{crc}")
        };
        let typo = mcpgate_e2e::typo(&key);
        let other_id = format!("mcpg_{}_{}", "Z".repeat(16), "A".repeat(43));
        let other_id = format!("{other_id}{}", crc(&other_id));
        let bearer = |k: &str| format!("Bearer {k}");
        let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
            (vec![], "missing_credentials"),
            (vec![("authorization", bearer(&typo))], "invalid_api_key"),
            (vec![("authorization", bearer("mcpg_short"))], "invalid_api_key"),
            (vec![("authorization", bearer(&forged))], "invalid_api_key"),
            (vec![("authorization", bearer(&other_id))], "invalid_api_key"),
            (vec![("x-api-key", typo.clone())], "invalid_api_key"),
            (vec![("authorization", format!("Basic {key}"))], "invalid_authorization"),
        ];
        for (headers, code) in cases {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, error, challenge) = status_and_code(&server, &headers).await;
            assert_eq!((status, error.as_str()), (401, code), "{headers:?}");
            assert_eq!(
                challenge.as_deref(),
                Some(format!("Bearer realm=\"mcpgate\", resource_metadata=\"{}/.well-known/oauth-protected-resource/api\"", server.url).as_str())
            );
        }
        // Two different credentials at once are refused, not guessed between.
        let (status, error, _) = status_and_code(
            &server,
            &[("authorization", &bearer(&key)), ("x-api-key", &forged)],
        )
        .await;
        assert_eq!((status, error.as_str()), (400, "validation_failed"));
        // And the real key still works.
        let (status, _, _) = status_and_code(&server, &[("authorization", &bearer(&key))]).await;
        assert_eq!(status, 200);
        server.stop().await;
    }

    async fn a_malformed_key_is_refused_without_touching_the_database(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let typo = mcpgate_e2e::typo(&reg.api_key);
        // Close the pool: any query now fails (503/500). A malformed key must
        // still get its 401, which proves no query was made for it.
        server.state().db.close_by_ref().await.unwrap();
        let (status, body) = expect_error(server.with_key(&typo).user_me().send().await);
        assert_eq!((status, body.error.as_str()), (401, "invalid_api_key"));
        let (status, _) = expect_error(server.with_key(&reg.api_key).user_me().send().await);
        assert!(status >= 500, "a well-formed key needs the database: {status}");
    }

    async fn scopes_limit_every_route_with_403(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let owner = server.with_key(&reg.api_key);
        let create = |scopes: &[&str]| {
            owner.key_create().body(types::CreateKeyRequest {
                name: "limited".into(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                expires_in_days: None,
            })
        };
        let read_only = create(&["keys:read"]).send().await.unwrap().into_inner();
        let memories_only = create(&["memories:read"]).send().await.unwrap().into_inner();
        assert_eq!(read_only.scopes, ["keys:read"]);

        let ro = server.with_key(&read_only.api_key);
        ro.key_list().send().await.expect("keys:read may list");
        let (status, body) = expect_error(
            ro.key_create()
                .body(types::CreateKeyRequest { name: "x".into(), scopes: vec![], expires_in_days: None })
                .send()
                .await,
        );
        assert_eq!((status, body.error.as_str()), (403, "insufficient_scope"));
        assert!(body.message.contains("keys:write"), "{}", body.message);
        let (status, _) = expect_error(ro.key_revoke().key_id(&reg.key_id).send().await);
        assert_eq!(status, 403);
        let (status, _) = expect_error(
            ro.key_rotate().key_id(&reg.key_id).body(types::RotateKeyRequest { grace_seconds: None }).send().await,
        );
        assert_eq!(status, 403);

        let mo = server.with_key(&memories_only.api_key);
        let (status, _) = expect_error(mo.key_list().send().await);
        assert_eq!(status, 403);
        // Any valid credential may read its own account.
        let me = mo.user_me().send().await.unwrap().into_inner();
        assert_eq!(me.credential.scopes, ["memories:read"]);
        server.stop().await;
    }

    async fn a_key_cannot_mint_scopes_it_lacks(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let owner = server.with_key(&reg.api_key);
        let keys_only = owner
            .key_create()
            .body(types::CreateKeyRequest {
                name: "keys".into(),
                scopes: vec!["keys:read".into(), "keys:write".into()],
                expires_in_days: None,
            })
            .send()
            .await
            .unwrap()
            .into_inner();
        let limited = server.with_key(&keys_only.api_key);
        let (status, body) = expect_error(
            limited
                .key_create()
                .body(types::CreateKeyRequest {
                    name: "escalate".into(),
                    scopes: vec!["keys:read".into(), "memories:write".into()],
                    expires_in_days: None,
                })
                .send()
                .await,
        );
        assert_eq!((status, body.error.as_str()), (403, "insufficient_scope"));
        assert!(body.message.contains("memories:write"));
        // Without `scopes`, a new key inherits exactly the creator's.
        let inherited = limited
            .key_create()
            .body(types::CreateKeyRequest { name: "child".into(), scopes: vec![], expires_in_days: None })
            .send()
            .await
            .unwrap()
            .into_inner();
        assert_eq!(inherited.scopes, ["keys:read", "keys:write"]);
        // Unknown scope names are a validation error, not a silent drop.
        let (status, body) = expect_error(
            owner
                .key_create()
                .body(types::CreateKeyRequest {
                    name: "typo".into(),
                    scopes: vec!["memory:read".into()],
                    expires_in_days: None,
                })
                .send()
                .await,
        );
        assert_eq!((status, body.field.as_deref()), (400, Some("scopes")));
        server.stop().await;
    }
}

/// CRC32 checksum in the key format (independent of the server's code).
fn crc(body: &str) -> String {
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut out = vec![b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = B62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).unwrap()
}
