//! Per-request context: the request id and the request's origin (task-locals
//! the `http` layer sets, so any layer can put them in an error body, a log
//! line or an audit event without knowing about HTTP) and the authenticated
//! principal for the access log.

use std::sync::{Arc, OnceLock};

use uuid::Uuid;

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
    static ORIGIN: Arc<Origin>;
}

/// Where a request came from, for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Run `fut` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: Arc<str>, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// Run `fut` with a request id and the request's origin.
pub async fn scope_request<F: std::future::Future>(
    id: Arc<str>,
    origin: Arc<Origin>,
    fut: F,
) -> F::Output {
    ORIGIN.scope(origin, REQUEST_ID.scope(id, fut)).await
}

/// The origin of the request being served (empty outside a request).
pub fn origin() -> Origin {
    ORIGIN.try_with(|o| (**o).clone()).unwrap_or_default()
}

/// The id of the request being served ("" outside a request).
pub fn request_id() -> String {
    REQUEST_ID.try_with(|id| id.to_string()).unwrap_or_default()
}

/// Who a request turned out to be, filled in by authentication.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub credential_id: String,
}

/// Stored in the request's extensions by the observe middleware.
#[derive(Debug, Default)]
pub struct RequestContext {
    caller: OnceLock<Caller>,
}

impl RequestContext {
    pub fn set_caller(&self, caller: Caller) {
        let _ = self.caller.set(caller);
    }

    pub fn caller(&self) -> Option<&Caller> {
        self.caller.get()
    }
}

/// A request id we generate: `req_` + 20 base62 characters.
pub fn new_request_id() -> String {
    format!("req_{}", crate::token::random_base62(20))
}

/// Accept an incoming `X-Request-Id` from a proxy only if it is short and
/// plain, so it cannot forge log lines.
pub fn accept_incoming(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}
