//! The SDK's auth layer against a real server: PKCE login through a
//! loopback listener (the test plays the browser), the stored credential,
//! refresh on 401, and the errors a caller acts on.

use std::{sync::Arc, time::Duration};

use mcpgate_client::{
    auth::TokenStore,
    login::{self, LoginOptions},
    Auth, ClientError, FileTokenStore, Session,
};
use mcpgate_e2e::oauth::browser;
use secrecy::ExposeSecret;

use super::*;

/// Options whose `open` hands the URL to the test.
fn options(
    store: Arc<dyn TokenStore>,
    timeout: Duration,
) -> (LoginOptions, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = LoginOptions {
        client_id: None,
        client_name: "mcpg test".into(),
        scopes: vec![],
        resources: vec![],
        port: None,
        timeout,
        store,
        open: Box::new(move |url: &str| {
            let _ = tx.send(url.to_owned());
        }),
        // The caller's client carries the login and every later refresh.
        http: Some(mcpgate_client::http_client_builder().build().unwrap()),
    };
    (opts, rx)
}

e2e! {
    async fn pkce_login_refresh_and_revocation(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mcpgate").join("credentials.json");
        let store: Arc<dyn TokenStore> = Arc::new(FileTokenStore::new(&file));
        let (opts, mut urls) = options(store.clone(), Duration::from_secs(30));
        let url = server.url.clone();
        let login = tokio::spawn(async move { login::pkce(&url, opts).await });
        let auth_url = urls.recv().await.unwrap();
        assert!(auth_url.starts_with(&format!("{}/oauth/authorize?", server.url)));
        let back = server.authorize_in_browser(&browser(), &user, &auth_url, true).await;
        assert!(back.starts_with("http://127.0.0.1:"), "{back}");
        let page = reqwest::get(&back).await.unwrap().text().await.unwrap();
        assert!(page.contains("Signed in"));
        let cred = login.await.unwrap().unwrap();

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let stored = store.load(&server.url).unwrap().unwrap();
        mcpgate_e2e::remember_secret(stored.access_token.expose_secret());
        mcpgate_e2e::remember_secret(stored.refresh_token.as_ref().unwrap().expose_secret());

        let gw = Session::new(&server.url, Auth::OAuth(cred)).unwrap();
        let me = gw.call(|c| async move { c.user_me().send().await }).await.unwrap();
        assert_eq!(me.user_id, user.user_id);
        assert_eq!(me.credential.kind, "access_token");

        // The server's clock passes the token's expiry: the 401 triggers one
        // refresh and the call succeeds; the new set is stored.
        server.clock.advance(chrono::Duration::hours(2));
        let me = gw.call(|c| async move { c.user_me().send().await }).await.unwrap();
        assert_eq!(me.user_id, user.user_id);
        let refreshed = store.load(&server.url).unwrap().unwrap();
        assert_ne!(refreshed.access_token.expose_secret(), stored.access_token.expose_secret());
        mcpgate_e2e::remember_secret(refreshed.access_token.expose_secret());
        mcpgate_e2e::remember_secret(refreshed.refresh_token.as_ref().unwrap().expose_secret());

        // A credential stored earlier is found again.
        let again = mcpgate_client::OAuthCredential::from_store(&server.url, store.clone()).unwrap().unwrap();
        let gw2_cred = again.clone();
        let gw2 = Session::new(&server.url, Auth::OAuth(again)).unwrap();
        gw2.call(|c| async move { c.memory_list().send().await }).await.unwrap();

        // Logging out revokes the grant at the server and forgets it.
        gw2_cred.revoke().await.unwrap();
        let err = gw.call(|c| async move { c.user_me().send().await }).await.unwrap_err();
        assert!(err.needs_login(), "{err}");
        assert!(err.to_string().contains("log in again"));
        assert!(store.load(&server.url).unwrap().is_none());

        // The other errors a caller acts on.
        let key = Session::new(&server.url, Auth::ApiKey(user.api_key.clone().into())).unwrap();
        let err = key.call(|c| async move { c.memory_get().id("00000000-0000-0000-0000-000000000000").send().await }).await.unwrap_err();
        assert!(matches!(err, ClientError::NotFound { .. }), "{err:?}");
        let err = key.call(|c| async move {
            c.memory_create().body(types::CreateMemoryRequest { title: "".into(), content: "x".into(), memory_type: None, tags: vec![], metadata: Default::default() }).send().await
        }).await.unwrap_err();
        assert!(matches!(&err, ClientError::Validation { field: Some(f), .. } if f == "title"), "{err:?}");
        server.stop().await;
    }

    async fn denied_or_abandoned_logins_end_clearly(backend) {
        let server = TestServer::start(backend).await;
        let user = server.register_with_password().await;
        let store: Arc<dyn TokenStore> = Arc::new(mcpgate_client::MemoryTokenStore::default());
        let (opts, mut urls) = options(store.clone(), Duration::from_secs(30));
        let url = server.url.clone();
        let login = tokio::spawn(async move { login::pkce(&url, opts).await });
        let auth_url = urls.recv().await.unwrap();
        let back = server.authorize_in_browser(&browser(), &user, &auth_url, false).await;
        reqwest::get(&back).await.unwrap();
        let err = login.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("denied"), "{err}");
        assert!(store.load(&server.url).unwrap().is_none());

        // Nobody comes back: a timeout, not a hang.
        let (opts, _urls) = options(store, Duration::from_secs(1));
        let err = login::pkce(&server.url, opts).await.unwrap_err();
        assert!(err.to_string().contains("no answer from the browser"), "{err}");
        server.stop().await;
    }
}
