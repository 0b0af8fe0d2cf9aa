//! Owned OAuth clients: a client registered with an API key holds at most
//! that key's scopes and is the user's object (list, get, delete); an app's
//! token can never register one; revoking the registering key, the
//! authorization or the client itself ends every token it minted.

use mcpgate_e2e::oauth::http;
use reqwest::StatusCode;

use super::*;

fn oauth_error(body: &serde_json::Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

/// `POST /oauth/register` for a client-credentials client, sending `bearer`.
async fn register_owned(
    server: &TestServer,
    bearer: &str,
    scope: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut metadata = serde_json::json!({
        "client_name": "Nightly job",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_post",
    });
    if let Some(s) = scope {
        metadata["scope"] = s.into();
    }
    let resp = http()
        .post(format!("{}/oauth/register", server.url))
        .bearer_auth(bearer)
        .json(&metadata)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    if let Some(s) = body["client_secret"].as_str() {
        mcpgate_e2e::remember_secret(s);
    }
    (status, body)
}

/// A client-credentials token request; the status and body.
async fn cc_token(
    server: &TestServer,
    client: &serde_json::Value,
    scope: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "client_credentials".to_owned()),
        (
            "client_id",
            client["client_id"].as_str().unwrap().to_owned(),
        ),
        (
            "client_secret",
            client["client_secret"].as_str().unwrap().to_owned(),
        ),
    ];
    if let Some(s) = scope {
        form.push(("scope", s.to_owned()));
    }
    let resp = http()
        .post(format!("{}/oauth/token", server.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    if let Some(t) = body["access_token"].as_str() {
        mcpgate_e2e::remember_secret(t);
    }
    (status, body)
}

async fn key_with(server: &TestServer, owner_key: &str, scopes: &[&str]) -> String {
    server
        .with_key(owner_key)
        .key_create()
        .body(types::CreateKeyRequest {
            name: "narrow".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_in_days: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner()
        .remembered()
        .api_key
}

use mcpgate_e2e::Remembered;

e2e! {
    async fn offline_access_is_accepted_and_ignored(backend) {
        let server = TestServer::start(backend).await;
        let reg = server.register().await;
        let (status, client) = register_owned(&server, &reg.api_key, Some("memories:read offline_access")).await;
        assert_eq!(status, StatusCode::CREATED, "{client}");
        assert_eq!(client["scope"], "memories:read");
        let (status, token) = cc_token(&server, &client, Some("offline_access")).await;
        assert_eq!(status, StatusCode::OK, "{token}");
        assert_eq!(token["scope"], "memories:read");
        let (status, token) = cc_token(&server, &client, Some("offline_access memories:read")).await;
        assert_eq!((status, token["scope"].as_str()), (StatusCode::OK, Some("memories:read")));
        // Any other unknown scope is still refused.
        let (status, token) = cc_token(&server, &client, Some("memories:read admin")).await;
        assert_eq!((status, token["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));
        server.stop().await;
    }

    async fn an_owned_client_holds_at_most_its_keys_scopes(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register().await;
        let narrow = key_with(&server, &user.api_key, &["keys:write"]).await;

        // Asking for more than the key holds is refused.
        let (status, body) = register_owned(&server, &narrow, Some("memories:read keys:write")).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::BAD_REQUEST, "invalid_scope"), "{body}");
        // Without a scope, the client gets the key's scopes, not all seven.
        let (status, client) = register_owned(&server, &narrow, None).await;
        assert_eq!(status, StatusCode::CREATED, "{client}");
        assert_eq!(client["scope"], "keys:write");
        let (status, tokens) = cc_token(&server, &client, None).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["scope"], "keys:write");
        let access = tokens["access_token"].as_str().unwrap();
        let (status, _, _) = server.get_with_bearer("/api/v1/memory", access).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "no memories:read was delegated");
        // A key made with the token holds the token's scopes at most.
        let made = server.with_key(access).key_create().body(types::CreateKeyRequest {
            name: "same".into(), scopes: vec!["keys:write".into()], expires_in_days: None,
        }).send().await.unwrap().into_inner().remembered();
        assert_eq!(made.scopes, vec!["keys:write".to_owned()]);
        let (status, _) = mcpgate_e2e::expect_error(
            server.with_key(access).key_create().body(types::CreateKeyRequest {
                name: "more".into(), scopes: vec!["memories:read".into()], expires_in_days: None,
            }).send().await,
        );
        assert_eq!(status, 403);
        server.stop().await;
    }

    async fn an_apps_token_never_registers_a_client(backend) {
        let server = TestServer::start(backend).await;
        let (_user, _client, tokens) = server.full_flow(&[("scope", "keys:write")]).await;
        let access = tokens["access_token"].as_str().unwrap();
        let (status, body) = register_owned(&server, access, None).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::FORBIDDEN, "access_denied"), "{body}");
        server.stop().await;
    }

    async fn owned_clients_are_listed_read_and_deleted(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register().await;
        let other = server.register().await;
        let me = server.with_key(&user.api_key);
        let (_, client) = register_owned(&server, &user.api_key, Some("memories:read")).await;
        let client_id = client["client_id"].as_str().unwrap().to_owned();

        let listed = me.client_list().send().await.unwrap().into_inner();
        assert_eq!(listed.clients.len(), 1);
        assert_eq!(listed.clients[0].client_id, client_id);
        assert_eq!(listed.clients[0].scopes, vec!["memories:read".to_owned()]);
        assert_eq!(listed.clients[0].registered_with_key.as_deref(), Some(&user.key_id[..]));
        let got = me.client_get().client_id(&client_id).send().await.unwrap().into_inner();
        assert_eq!(got.client_name, "Nightly job");
        // Another account sees nothing of it.
        let stranger = server.with_key(&other.api_key);
        assert_eq!(mcpgate_e2e::expect_error(stranger.client_get().client_id(&client_id).send().await).0, 404);
        assert_eq!(mcpgate_e2e::expect_error(stranger.client_delete().client_id(&client_id).send().await).0, 404);
        assert!(stranger.client_list().send().await.unwrap().into_inner().clients.is_empty());

        let (_, tokens) = cc_token(&server, &client, None).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(server.get_with_bearer("/api/v1/memory", &access).await.0, StatusCode::OK);
        me.client_delete().client_id(&client_id).send().await.unwrap();
        assert_eq!(server.get_with_bearer("/api/v1/memory", &access).await.0, StatusCode::UNAUTHORIZED);
        let (status, body) = cc_token(&server, &client, None).await;
        assert_eq!((status, oauth_error(&body)), (StatusCode::UNAUTHORIZED, "invalid_client"));
        assert_eq!(mcpgate_e2e::expect_error(me.client_get().client_id(&client_id).send().await).0, 404);
        server.stop().await;
    }

    async fn revoking_the_key_or_the_authorization_ends_the_client(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register().await;
        let me = server.with_key(&user.api_key);
        let delegate = key_with(&server, &user.api_key, &["keys:write", "memories:read"]).await;

        // Revoking the registering key deletes its client.
        let (_, client) = register_owned(&server, &delegate, None).await;
        let (_, tokens) = cc_token(&server, &client, None).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        me.key_revoke().key_id(&delegate[5..21]).send().await.unwrap();
        assert_eq!(server.get_with_bearer("/api/v1/memory", &access).await.0, StatusCode::UNAUTHORIZED);
        let (status, _) = cc_token(&server, &client, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(me.client_list().send().await.unwrap().into_inner().clients.is_empty());
        let events = me.audit_list().send().await.unwrap().into_inner();
        assert!(events.events.iter().any(|e| e.action == types::AuditAction::OauthClientDeleted
            && e.target.as_deref() == client["client_id"].as_str()));

        // Revoking its authorization removes it too: it mints nothing more.
        let (_, client) = register_owned(&server, &user.api_key, Some("memories:read")).await;
        let (_, tokens) = cc_token(&server, &client, None).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        me.authorization_revoke().client_id(client["client_id"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(server.get_with_bearer("/api/v1/memory", &access).await.0, StatusCode::UNAUTHORIZED);
        let (status, _) = cc_token(&server, &client, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        server.stop().await;
    }
}
