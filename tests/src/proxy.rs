//! A reverse proxy on loopback, in front of a test server, behaving as
//! nginx's `proxy_pass http://mcpgate:<port>` does by default: the upstream
//! gets `Host: mcpgate:<port>` (the proxied name, not the client's) and,
//! as `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for` adds,
//! the client's address appended to `X-Forwarded-For`.

use poem::{
    http::{header, HeaderName, HeaderValue},
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
    Body, EndpointExt, Request, Response,
};

/// What the proxy sends upstream as `Host`.
#[derive(Clone)]
pub enum ForwardHost {
    /// The name in `proxy_pass` (nginx's default): `mcpgate:<port>`.
    Upstream(String),
    /// The client's own `Host` (`proxy_set_header Host $host`).
    Client,
}

#[derive(Clone)]
struct Upstream {
    base: String,
    host: ForwardHost,
    http: reqwest::Client,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listen on `ip` (a loopback address) and forward to `upstream_base`.
    pub async fn start(ip: &str, upstream_base: &str, host: ForwardHost) -> Proxy {
        let acceptor = TcpListener::bind(format!("{ip}:0"))
            .into_acceptor()
            .await
            .expect("proxy binds");
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .expect("tcp address");
        let upstream = Upstream {
            base: upstream_base.trim_end_matches('/').to_owned(),
            host,
            http: mcpgate_client::http_client_builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
        };
        let app = forward.data(upstream);
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Proxy {
            url: format!("http://{addr}"),
            task,
        }
    }
}

#[poem::handler]
async fn forward(req: &Request, body: Body, upstream: Data<&Upstream>) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut out = upstream
        .http
        .request(req.method().clone(), format!("{}{path}", upstream.base));
    for (name, value) in req.headers() {
        if name == header::HOST || name == header::CONNECTION || name.as_str() == "x-forwarded-for"
        {
            continue;
        }
        out = out.header(name, value);
    }
    let host = match &upstream.host {
        ForwardHost::Upstream(h) => h.clone(),
        ForwardHost::Client => req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    };
    out = out.header(header::HOST, host);
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let forwarded_for = match req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(earlier) => format!("{earlier}, {peer}"),
        None => peer,
    };
    out = out.header("x-forwarded-for", forwarded_for);
    let bytes = body.into_bytes().await.unwrap_or_default();
    let resp = match out.body(bytes).send().await {
        Ok(r) => r,
        Err(e) => {
            return Response::builder()
                .status(poem::http::StatusCode::BAD_GATEWAY)
                .body(format!("proxy: {e}"))
        }
    };
    let mut builder = Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        if name == header::CONNECTION || name == header::TRANSFER_ENCODING {
            continue;
        }
        builder = builder.header(
            HeaderName::from_bytes(name.as_str().as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("header value"),
        );
    }
    builder.body(resp.bytes().await.unwrap_or_default())
}
