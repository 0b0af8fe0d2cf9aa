//! A database outage: requests get 503, the server keeps running and recovers
//! by itself, and nothing written before the outage is lost. The outage is a
//! TCP proxy between mcpgate and Postgres that drops every connection and
//! refuses new ones, so the Postgres server other tests use is untouched.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use secrecy::{ExposeSecret, SecretString};
use tokio::{net::TcpListener, task::AbortHandle};

use super::*;

/// A proxy to `upstream` that can cut and restore the connection.
struct Proxy {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Start inside a runtime (binds synchronously).
    fn start(upstream: String) -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (d, c) = (down.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            down,
            conns,
            accept,
        }
    }

    /// Drop every connection and refuse new ones.
    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// `host:port` of a postgres URL and the URL with that authority replaced.
fn reroute(url: &str, to: SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    (hostport, format!("{scheme}://{userinfo}{to}/{path}"))
}

/// A Postgres server whose database connection runs through a [`Proxy`].
async fn behind_proxy() -> (TestServer, Arc<Mutex<Option<Proxy>>>) {
    let proxy: Arc<Mutex<Option<Proxy>>> = Arc::default();
    let slot = proxy.clone();
    let server = TestServer::start_with(Backend::Postgres, move |c| {
        let url = c.database_url.as_ref().unwrap().expose_secret().to_owned();
        let (upstream, _) = reroute(&url, "127.0.0.1:1".parse().unwrap());
        let p = Proxy::start(upstream);
        let (_, proxied) = reroute(&url, p.addr);
        *slot.lock().unwrap() = Some(p);
        c.database_url = Some(SecretString::from(proxied));
    })
    .await;
    (server, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_gives_503_then_recovers_without_loss() {
    if !mcpgate_e2e::backend_available(
        Backend::Postgres,
        "postgres_outage_gives_503_then_recovers_without_loss",
    ) {
        return;
    }
    let (server, proxy) = behind_proxy().await;
    let reg = server.register().await;
    let client = server.with_key(&reg.api_key);
    let before = client
        .memory_create()
        .body(crate::memory::memory("before the outage", "must survive"))
        .send()
        .await
        .unwrap()
        .into_inner();

    proxy.lock().unwrap().as_ref().unwrap().cut();
    let (status, body) = expect_error(server.anonymous().health_ready().send().await);
    assert_eq!((status, body.error.as_str()), (503, "database_unavailable"));
    let (status, body) = expect_error(client.memory_get().id(&before.id).send().await);
    assert_eq!(
        (status, body.error.as_str()),
        (503, "database_unavailable"),
        "{body:?}"
    );
    server
        .anonymous()
        .health_live()
        .send()
        .await
        .expect("the process keeps serving");

    proxy.lock().unwrap().as_ref().unwrap().restore();
    let mut ready = false;
    for _ in 0..40 {
        if server.anonymous().health_ready().send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(ready, "readiness recovers by itself");
    let got = client
        .memory_get()
        .id(&before.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.content, "must survive");
    client
        .memory_create()
        .body(crate::memory::memory(
            "after the outage",
            "writes work again",
        ))
        .send()
        .await
        .expect("writes work again");
    server.stop().await;
}

/// The same outage seen from every face: a console page, the authorization
/// page, the token endpoint (RFC 6749 body) and the `/mcp` gate all answer
/// 503 with the outage's code, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_a_503_on_every_face() {
    if !mcpgate_e2e::backend_available(
        Backend::Postgres,
        "a_database_outage_is_a_503_on_every_face",
    ) {
        return;
    }
    let (server, proxy) = behind_proxy().await;
    let user = server.register_with_password().await;
    let browser = mcpgate_e2e::oauth::browser();
    let signed_in = server.login(&browser, &user, "/").await;
    assert_eq!(signed_in.status(), 303, "signed in before the outage");

    proxy.lock().unwrap().as_ref().unwrap().cut();

    let page = browser
        .get(format!("{}/account/keys", server.url))
        .send()
        .await
        .unwrap();
    let status = page.status();
    let html = page.text().await.unwrap();
    assert_eq!(status, 503, "console page: {html}");
    assert!(html.contains("database_unavailable"), "{html}");

    let authorize = browser
        .get(format!(
            "{}/oauth/authorize?response_type=code&client_id=some-client&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_challenge=abc&code_challenge_method=S256",
            server.url
        ))
        .send()
        .await
        .unwrap();
    let status = authorize.status();
    let html = authorize.text().await.unwrap();
    assert_eq!(status, 503, "authorization page: {html}");
    assert!(html.contains("temporarily_unavailable"), "{html}");

    let token = mcpgate_e2e::oauth::http()
        .post(format!("{}/oauth/token", server.url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "some-client"),
            ("code", "mcpg_ac_not_a_code"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 503);
    let body: serde_json::Value = token.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    let mcp = mcpgate_e2e::oauth::http()
        .post(format!("{}/mcp", server.url))
        .bearer_auth(&user.api_key)
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 503);
    let body: serde_json::Value = mcp.json().await.unwrap();
    assert_eq!(body["error"], "database_unavailable", "{body}");

    proxy.lock().unwrap().as_ref().unwrap().restore();
    server.stop().await;
}
