//! `/account/connections`: each provider with its status in words; connect
//! (to the provider and back here with a banner) and disconnect.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path},
    Request, Response,
};

use crate::{
    service::connect::{self, ProviderView},
    state::AppState,
    web::{
        forms::{self, error_page, Console, ConsoleForm},
        see_other,
        templates::{render, Nav},
    },
};

const NOTICES: &[(&str, &str)] = &[(
    "disconnected",
    "Disconnected. Tools can no longer get tokens for that account.",
)];

struct Row {
    name: String,
    display_name: String,
    available: bool,
    connected: bool,
    status: String,
    /// False when the status needs the person's attention.
    healthy: bool,
    last_error: Option<String>,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    nav: Nav,
    rows: Vec<Row>,
    notice: Option<String>,
    problem: Option<String>,
}

/// A connection's status in words, and whether it is a problem.
fn status_words(v: &ProviderView) -> (String, bool) {
    use connect::ConnectionStatus;
    match (v.available, v.status) {
        (_, Some(ConnectionStatus::Connected)) => ("Connected".into(), true),
        (_, Some(ConnectionStatus::RefreshFailed)) => (
            "Connected, but the last refresh failed; it is retried on the next use".into(),
            false,
        ),
        (_, Some(ConnectionStatus::ReauthorizationRequired)) => (
            "The provider no longer accepts this connection: connect again".into(),
            false,
        ),
        (true, None) => ("Not connected".into(), true),
        (false, None) => ("Not set up by this server's operator".into(), true),
    }
}

async fn show(
    state: &AppState,
    c: &Console,
    notice: Option<String>,
    problem: Option<String>,
    status: StatusCode,
) -> Response {
    let providers = match connect::providers(state, &c.principal()).await {
        Ok(p) => p,
        Err(e) => return error_page(e),
    };
    let rows = providers
        .into_iter()
        .map(|v| {
            let (status, healthy) = status_words(&v);
            Row {
                status,
                healthy,
                last_error: v.last_error.clone(),
                name: v.name,
                display_name: v.display_name,
                available: v.available,
                connected: v.connected,
            }
        })
        .collect();
    let tpl = ConnectionsPage {
        nav: c.nav("connections"),
        rows,
        notice,
        problem,
    };
    c.finish(state, render(&tpl, status))
}

#[handler]
pub async fn page(c: Console, req: &Request, state: Data<&AppState>) -> Response {
    let q = match forms::query(req) {
        Ok(q) => q,
        Err(page) => return page,
    };
    // `connected=<provider>` is added by the callback; only a provider of
    // the catalog becomes a banner.
    let connected = q
        .all("connected")
        .into_iter()
        .next()
        .and_then(|name| state.catalog.all().find(|p| p.name == name))
        .map(|p| format!("{} is connected.", p.display_name));
    let notice = connected.or_else(|| super::notice(req, NOTICES).map(str::to_owned));
    show(&state, &c, notice, None, StatusCode::OK).await
}

#[handler]
pub async fn start(
    ConsoleForm(c, _): ConsoleForm,
    Path(provider): Path<String>,

    state: Data<&AppState>,
) -> Response {
    let back = format!("{}/account/connections", state.config.public_url);
    match connect::start(&state, &c.principal(), &provider, Some(back)).await {
        Ok(started) => see_other(&started.authorization_url),
        Err(e) => match forms::problem(e) {
            Ok(p) => show(&state, &c, None, Some(p.message), p.status).await,
            Err(resp) => resp,
        },
    }
}

#[handler]
pub async fn disconnect(
    ConsoleForm(c, _): ConsoleForm,
    Path(provider): Path<String>,

    state: Data<&AppState>,
) -> Response {
    match connect::delete(&state, &c.principal(), &provider).await {
        Ok(()) => see_other("/account/connections?done=disconnected"),
        Err(e) => match forms::problem(e) {
            Ok(p) => show(&state, &c, None, Some(p.message), p.status).await,
            Err(resp) => resp,
        },
    }
}
