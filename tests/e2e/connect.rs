//! Connections, with a second real mcpgate as the upstream provider (its
//! OAuth server is a complete provider): connect through its login and
//! consent pages, status, token, refresh, revocation, failures, state
//! misuse, tampering, key rotation and replicas.

use mcpgate_e2e::oauth::{browser, location, TestUser};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;

use super::*;

/// An upstream mcpgate, a downstream mcpgate configured with it as the
/// provider `upstream`, and one user on each.
struct Pair {
    upstream: TestServer,
    down: TestServer,
    up_user: TestUser,
    down_key: String,
}

async fn pair(
    backend: Backend,
    customize: impl Fn(&mut mcpgate_server::config::Config) + Clone,
) -> Pair {
    let upstream = TestServer::start(backend).await;
    let (status, client) = upstream
        .register_client_raw(serde_json::json!({
            "client_name": "Downstream gateway",
            // A loopback redirect matches any port: the downstream's port is not known yet.
            "redirect_uris": ["http://127.0.0.1/api/v1/connect/upstream/callback"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "memories:read memories:write",
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let up = upstream.url.clone();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let client_secret = client["client_secret"].as_str().unwrap().to_owned();
    let down = TestServer::start_with(backend, move |c| {
        c.providers.insert(
            "upstream".into(),
            mcpgate_server::config::ProviderConfig {
                display_name: Some("Team mcpgate".into()),
                authorization_url: Some(format!("{up}/oauth/authorize")),
                token_url: Some(format!("{up}/oauth/token")),
                revocation_url: Some(format!("{up}/oauth/revoke")),
                userinfo_url: Some(format!("{up}/api/v1/users/me")),
                account_id_pointer: Some("/user_id".into()),
                scopes: Some(vec!["memories:read".into()]),
                pkce: Some(true),
                client_id: Some(client_id.clone()),
                client_secret: Some(client_secret.clone().into()),
                ..Default::default()
            },
        );
        c.upstream_timeout_ms = 2000;
        c.connect_refresh_interval_secs = 0;
        customize(c);
    })
    .await;
    let up_user = upstream.register_with_password().await;
    let down_key = down.register().await.api_key;
    Pair {
        upstream,
        down,
        up_user,
        down_key,
    }
}

impl Pair {
    /// Start a flow on the downstream and walk the upstream's pages; returns
    /// the callback URL the upstream sent the browser to, and the browser.
    async fn authorize(&self, return_to: Option<&str>) -> (String, reqwest::Client) {
        let started = self
            .down
            .with_key(&self.down_key)
            .connect_start()
            .provider("upstream")
            .body(types::StartRequest {
                return_to: return_to.map(str::to_owned),
            })
            .send()
            .await
            .unwrap()
            .into_inner();
        assert!(started
            .authorization_url
            .starts_with(&format!("{}/oauth/authorize?", self.upstream.url)));
        assert!(started
            .authorization_url
            .contains("code_challenge_method=S256"));
        let b = browser();
        let callback = self
            .upstream
            .authorize_in_browser(&b, &self.up_user, &started.authorization_url, true)
            .await;
        assert!(
            callback.starts_with(&format!(
                "{}/api/v1/connect/upstream/callback?",
                self.down.url
            )),
            "{callback}"
        );
        (callback, b)
    }

    async fn connect(&self) {
        let (callback, b) = self.authorize(None).await;
        let resp = b.get(&callback).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp
            .text()
            .await
            .unwrap()
            .contains("Team mcpgate account is connected"));
    }

    async fn token(&self) -> Result<types::UpstreamToken, (u16, types::Error)> {
        match self
            .down
            .with_key(&self.down_key)
            .connect_token()
            .provider("upstream")
            .send()
            .await
        {
            Ok(t) => {
                let t = t.into_inner();
                mcpgate_e2e::remember_secret(&t.access_token);
                Ok(t)
            }
            Err(e) => Err(expect_error::<types::UpstreamToken>(Err(e))),
        }
    }

    async fn stop(self) {
        self.down.stop().await;
        self.upstream.stop().await;
    }
}

async fn upstream_me(upstream: &TestServer, token: &str) -> StatusCode {
    upstream.get_with_bearer("/api/v1/users/me", token).await.0
}

e2e! {
    async fn connect_status_token_and_disconnect(backend) {
        let p = pair(backend, |_| {}).await;
        let me = p.down.with_key(&p.down_key);
        let providers = me.connect_providers().send().await.unwrap().into_inner().providers;
        let names: Vec<_> = providers.iter().map(|x| (x.name.as_str(), x.available, x.connected)).collect();
        assert_eq!(names, [("github", false, false), ("google", false, false), ("ownerrez", false, false), ("upstream", true, false)]);
        let (status, err) = expect_error(me.connect_start().provider("github").body(types::StartRequest { return_to: None }).send().await);
        assert_eq!((status, err.error.as_str()), (409, "provider_unavailable"));
        let (status, _) = expect_error(me.connect_status().provider("upstream").send().await);
        assert_eq!(status, 404);
        // No body at all means `{}`; a body without a JSON Content-Type is still 415.
        let bare = p.down.raw(&me, reqwest::Method::POST, "/api/v1/connect/upstream/start").send().await.unwrap();
        assert_eq!(bare.status().as_u16(), 200);
        let started: serde_json::Value = bare.json().await.unwrap();
        assert!(started["authorization_url"].as_str().unwrap().starts_with(&p.upstream.url), "{started}");
        let text = p.down.raw(&me, reqwest::Method::POST, "/api/v1/connect/upstream/start").body("{}").header("content-type", "text/plain").send().await.unwrap();
        assert_eq!(text.status().as_u16(), 415);

        p.connect().await;
        let c = me.connect_status().provider("upstream").send().await.unwrap().into_inner();
        assert_eq!(c.status, types::ConnectionStatus::Connected);
        assert_eq!(c.external_account_id.as_deref(), Some(p.up_user.user_id.as_str()));
        assert_eq!(c.scopes, ["memories:read"]);
        // The MCP tool sees it too.
        let mcp = p.down.mcp(&p.down_key).await;
        let listed = mcpgate_e2e::mcp::call(&mcp, "connections_list", serde_json::json!({})).await;
        let up = listed.structured_content.unwrap()["providers"]
            .as_array().unwrap().iter().find(|x| x["name"] == "upstream").cloned().unwrap();
        assert_eq!((up["connected"].as_bool(), up["status"].as_str()), (Some(true), Some("connected")));
        mcp.cancel().await.ok();
        let t = p.token().await.unwrap();
        assert!(t.access_token.starts_with("mcpg_at_"));
        assert_eq!(upstream_me(&p.upstream, &t.access_token).await, StatusCode::OK);

        // Nothing in the database is plaintext.
        let rows = p.down.state().db.query_all_raw(sea_orm::Statement::from_string(
            p.down.state().db.get_database_backend(),
            "SELECT access_token_enc, refresh_token_enc FROM connections",
        )).await.unwrap();
        for row in rows {
            let access: String = row.try_get("", "access_token_enc").unwrap();
            let refresh: Option<String> = row.try_get("", "refresh_token_enc").unwrap();
            assert!(access.starts_with("v1.") && !access.contains(&t.access_token[8..]));
            assert!(refresh.unwrap().starts_with("v1."));
        }

        // Disconnect revokes at the provider, then deletes.
        me.connect_delete().provider("upstream").send().await.unwrap();
        assert_eq!(upstream_me(&p.upstream, &t.access_token).await, StatusCode::UNAUTHORIZED);
        let (status, _) = expect_error(me.connect_delete().provider("upstream").send().await);
        assert_eq!(status, 404);
        let (status, _) = expect_error(me.connect_token().provider("upstream").send().await);
        assert_eq!(status, 404);
        p.stop().await;
    }

    async fn states_are_single_use_expiring_and_personal(backend) {
        let p = pair(backend, |_| {}).await;
        // return_to off the allow-list is refused.
        let (status, err) = expect_error(p.down.with_key(&p.down_key).connect_start().provider("upstream")
            .body(types::StartRequest { return_to: Some("https://evil.example/".into()) }).send().await);
        assert_eq!((status, err.field.as_deref()), (400, Some("return_to")));

        // With return_to: redirected back; replaying the callback fails.
        let back = format!("{}/login", p.down.url);
        let (callback, b) = p.authorize(Some(&back)).await;
        let resp = b.get(&callback).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&resp), format!("{back}?connected=upstream"));
        let resp = b.get(&callback).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.text().await.unwrap().contains("already completed"));

        // Expired state.
        let (callback, b) = p.authorize(None).await;
        p.down.clock.advance(chrono::Duration::minutes(11));
        let resp = b.get(&callback).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.text().await.unwrap().contains("expired"));

        // A browser signed in to the downstream as someone else.
        let (callback, _) = p.authorize(None).await;
        let other = p.down.register_with_password().await;
        let b = browser();
        p.down.login(&b, &other, "/login").await;
        let resp = b.get(&callback).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.text().await.unwrap().contains("another account"));

        // The provider's own error renders clearly; a forged state too.
        let resp = browser().get(format!("{}/api/v1/connect/upstream/callback?error=access_denied&state=x", p.down.url)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let resp = browser().get(format!("{}/api/v1/connect/upstream/callback?code=x&state=mcpg_st_forged", p.down.url)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        p.stop().await;
    }

    async fn tokens_are_refreshed_ahead_of_expiry_and_failures_are_recorded(backend) {
        let p = pair(backend, |_| {}).await;
        p.connect().await;
        let first = p.token().await.unwrap();
        // Not due: the same token.
        assert_eq!(p.token().await.unwrap().access_token, first.access_token);
        // 56 minutes on: within 5 minutes of expiry, refreshed first.
        p.down.clock.advance(chrono::Duration::minutes(56));
        let second = p.token().await.unwrap();
        assert_ne!(second.access_token, first.access_token);
        assert_eq!(upstream_me(&p.upstream, &second.access_token).await, StatusCode::OK);
        let c = p.down.with_key(&p.down_key).connect_status().provider("upstream").send().await.unwrap().into_inner();
        assert!(c.last_refreshed_at.is_some());

        // The background job refreshes what expires within 10 minutes, before anyone asks.
        p.down.clock.advance(chrono::Duration::minutes(52));
        let n = mcpgate_server::service::connect::refresh_due(p.down.state()).await.unwrap();
        assert_eq!(n, 1);
        let third = p.token().await.unwrap();
        assert_ne!(third.access_token, second.access_token);
        assert_eq!(mcpgate_server::service::connect::refresh_due(p.down.state()).await.unwrap(), 0);

        // The user revokes the app at the provider: reauthorization required.
        let apps = p.upstream.with_key(&p.up_user.api_key).authorization_list().send().await.unwrap().into_inner();
        let app = apps.authorizations[0].client_id.clone();
        p.upstream.with_key(&p.up_user.api_key).authorization_revoke().client_id(&app).send().await.unwrap();
        p.down.clock.advance(chrono::Duration::minutes(56));
        let (status, err) = p.token().await.unwrap_err();
        assert_eq!((status, err.error.as_str()), (502, "reauthorization_required"));
        let c = p.down.with_key(&p.down_key).connect_status().provider("upstream").send().await.unwrap().into_inner();
        assert_eq!(c.status, types::ConnectionStatus::ReauthorizationRequired);
        assert!(c.last_error.unwrap().contains("invalid_grant"));
        p.stop().await;
    }

    async fn an_unreachable_provider_leaves_the_connection_unchanged(backend) {
        let p = pair(backend, |_| {}).await;
        p.connect().await;
        let before = p.token().await.unwrap();
        let Pair { upstream, down, up_user: _, down_key } = p;
        upstream.stop().await;
        down.clock.advance(chrono::Duration::minutes(56));
        let (status, err) = expect_error(down.with_key(&down_key).connect_token().provider("upstream").send().await);
        assert_eq!((status, err.error.as_str()), (502, "upstream_refresh_failed"));
        let c = down.with_key(&down_key).connect_status().provider("upstream").send().await.unwrap().into_inner();
        assert_eq!(c.status, types::ConnectionStatus::RefreshFailed);
        assert!(c.last_error.is_some());
        // The stored token is still the one from before.
        let row = down.state().db.query_one_raw(sea_orm::Statement::from_string(
            down.state().db.get_database_backend(), "SELECT id, access_token_enc FROM connections",
        )).await.unwrap().unwrap();
        let enc: String = row.try_get("", "access_token_enc").unwrap();
        let id: uuid::Uuid = row.try_get("", "id").unwrap();
        let key = id.to_string();
        let plain = down.state().keyring.decrypt(&enc, &mcpgate_server::crypto::Binding { table: "connections", row: &key, field: "access_token" }).unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&plain), before.access_token);
        down.stop().await;
    }

    async fn a_slow_provider_times_out_with_502(backend) {
        let p = pair(backend, |_| {}).await;
        p.connect().await;
        let before = p.token().await.unwrap();
        // A provider that accepts connections and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_url = format!("http://{}/oauth/token", silent.local_addr().unwrap());
        let hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                open.push(s);
            }
        });
        let Pair { upstream, down, up_user: _, down_key } = p;
        let down = down.reconfigure(|c| {
            if let Some(up) = c.providers.get_mut("upstream") {
                up.token_url = Some(silent_url.clone());
            }
        }).await;
        down.clock.advance(chrono::Duration::minutes(56));
        let started = std::time::Instant::now();
        let (status, err) = expect_error(down.with_key(&down_key).connect_token().provider("upstream").send().await);
        assert_eq!((status, err.error.as_str()), (502, "upstream_refresh_failed"));
        assert!(err.message.contains("did not answer in time"), "{}", err.message);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let c = down.with_key(&down_key).connect_status().provider("upstream").send().await.unwrap().into_inner();
        assert_eq!(c.status, types::ConnectionStatus::RefreshFailed);
        // Once the provider answers again, the next request refreshes.
        let down = down.reconfigure(|c| {
            if let Some(up) = c.providers.get_mut("upstream") {
                up.token_url = Some(format!("{}/oauth/token", upstream.url));
            }
        }).await;
        let t = down.with_key(&down_key).connect_token().provider("upstream").send().await.unwrap().into_inner();
        mcpgate_e2e::remember_secret(&t.access_token);
        assert_ne!(t.access_token, before.access_token);
        hold.abort();
        down.stop().await;
        upstream.stop().await;
    }

    async fn tampered_ciphertext_is_an_error_not_garbage(backend) {
        let p = pair(backend, |_| {}).await;
        p.connect().await;
        let db = &p.down.state().db;
        let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT access_token_enc FROM connections")).await.unwrap().unwrap();
        let enc: String = row.try_get("", "access_token_enc").unwrap();
        let flipped = format!("{}{}", &enc[..enc.len() - 2], if enc.ends_with("AA") { "BB" } else { "AA" });
        db.execute_unprepared(&format!("UPDATE connections SET access_token_enc = '{flipped}'")).await.unwrap();
        let (status, err) = p.token().await.unwrap_err();
        assert_eq!((status, err.error.as_str()), (500, "internal_error"));
        p.stop().await;
    }

    async fn a_stored_status_the_server_does_not_know_is_an_error_not_a_default(backend) {
        let p = pair(backend, |_| {}).await;
        p.connect().await;
        let db = &p.down.state().db;
        db.execute_unprepared("UPDATE connections SET status = 'paused'").await.unwrap();
        let me = p.down.with_key(&p.down_key);
        let (status, err) = expect_error(me.connect_status().provider("upstream").send().await);
        assert_eq!((status, err.error.as_str()), (500, "internal_error"));
        let (status, err) = expect_error(me.connect_providers().send().await);
        assert_eq!((status, err.error.as_str()), (500, "internal_error"));
        let (status, _) = p.token().await.unwrap_err();
        assert_eq!(status, 500);
        p.stop().await;
    }

    async fn key_rotation_reencrypts_every_connection(backend) {
        let old = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let new = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
        let p = pair(backend, move |c| c.encryption_key = Some(old.to_owned().into())).await;
        p.connect().await;
        let before = p.token().await.unwrap();
        let Pair { upstream, down, up_user: _, down_key } = p;
        // New key current, old one still readable: rotate.
        let mut down = down.reconfigure(|c| {
            c.encryption_key = Some(new.to_owned().into());
            c.encryption_key_previous = Some(old.to_owned().into());
        }).await;
        let report = mcpgate_server::service::connect::rotate_key(down.state()).await.unwrap();
        assert_eq!((report.rows_checked, report.rows_reencrypted), (1, 1));
        let again = mcpgate_server::service::connect::rotate_key(down.state()).await.unwrap();
        assert_eq!(again.rows_reencrypted, 0, "idempotent");
        // Old key gone: still readable.
        down = down.reconfigure(|c| c.encryption_key_previous = None).await;
        let t = down.with_key(&down_key).connect_token().provider("upstream").send().await.unwrap().into_inner();
        assert_eq!(t.access_token, before.access_token);
        down.stop().await;
        upstream.stop().await;
    }

    async fn replicas_refresh_once_at_expiry(backend) {
        let p = pair(backend, |_| {}).await;
        p.connect().await;
        let replica = p.down.replica().await;
        p.down.clock.advance(chrono::Duration::minutes(56));
        let get = |base: String| {
            let key = p.down_key.clone();
            async move {
                let c = mcpgate_client::Client::with_api_key(&base, key).unwrap();
                c.connect_token().provider("upstream").send().await.unwrap().into_inner()
            }
        };
        let (a, b) = tokio::join!(get(p.down.url.clone()), get(replica.url.clone()));
        mcpgate_e2e::remember_secret(&a.access_token);
        assert_eq!(a.access_token, b.access_token, "one refresh, one new token");
        let metrics = p.upstream.state().metrics.render(None);
        let refreshes = metrics
            .lines()
            .find(|l| l.starts_with("mcpgate_oauth_token_requests_total{grant_type=\"refresh_token\",outcome=\"ok\"}"))
            .unwrap_or_default()
            .to_owned();
        assert!(refreshes.ends_with(" 1"), "exactly one upstream refresh: {refreshes:?}");
        replica.stop().await;
        p.stop().await;
    }
}
