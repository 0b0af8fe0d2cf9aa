//! `/account/apps`: the applications the person authorized (revoke), and
//! the OAuth clients they own (delete).

use askama::Template;
use poem::{handler, http::StatusCode, web::Data, Request, Response};

use crate::{
    error::Error,
    service::oauth::{self, clients},
    state::AppState,
    web::{
        forms::{self, error_page, when, Console, ConsoleForm},
        pages::redirect_host,
        see_other,
        templates::{render, Nav},
    },
};

const NOTICES: &[(&str, &str)] = &[
    (
        "revoked",
        "Access revoked. The app's tokens stop working at once; it must ask again to come back.",
    ),
    (
        "client_deleted",
        "The client was deleted, with every token it held.",
    ),
];

struct AppRow {
    client_id: String,
    name: String,
    verified: bool,
    hosts: String,
    scopes: Vec<&'static str>,
    resources: String,
    authorized: String,
    last_used: String,
}

struct ClientRow {
    client_id: String,
    name: String,
    scopes: String,
    grant_types: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage {
    nav: Nav,
    apps: Vec<AppRow>,
    clients: Vec<ClientRow>,
    notice: Option<&'static str>,
    problem: Option<String>,
}

async fn show(
    state: &AppState,
    c: &Console,
    notice: Option<&'static str>,
    problem: Option<String>,
    status: StatusCode,
) -> Response {
    let p = c.principal();
    let loaded = async {
        let apps = oauth::authorizations(state, &p).await?;
        let owned = clients::owned(state, &p).await?;
        Ok::<_, Error>((apps, owned))
    };
    let (apps, owned) = match loaded.await {
        Ok(x) => x,
        Err(e) => return error_page(e),
    };
    let mcp = format!("{}/mcp", state.config.public_url);
    let apps = apps
        .into_iter()
        .map(|a| {
            let mut hosts: Vec<String> = a.redirect_uris.iter().map(|u| redirect_host(u)).collect();
            hosts.dedup();
            AppRow {
                hosts: hosts.join(", "),
                scopes: a.scopes.iter().map(|s| s.description()).collect(),
                resources: a
                    .resources
                    .iter()
                    .map(|r| {
                        if *r == mcp {
                            "your memories, over MCP"
                        } else {
                            "the mcpgate API"
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" and "),
                authorized: when(a.authorized_at),
                last_used: when(a.last_used_at),
                client_id: a.client_id,
                name: a.client_name,
                verified: a.verified,
            }
        })
        .collect();
    let clients = owned
        .into_iter()
        .map(|k| ClientRow {
            scopes: k.scopes.names().join(" "),
            grant_types: clients::joined(&k.grant_types, ", "),
            created: when(k.created_at),
            last_used: k.last_used_at.map(when).unwrap_or_else(|| "never".into()),
            client_id: k.id,
            name: k.name,
        })
        .collect();
    let tpl = AppsPage {
        nav: c.nav("apps"),
        apps,
        clients,
        notice,
        problem,
    };
    c.finish(state, render(&tpl, status))
}

#[handler]
pub async fn page(c: Console, req: &Request, state: Data<&AppState>) -> Response {
    show(
        &state,
        &c,
        super::notice(req, NOTICES),
        None,
        StatusCode::OK,
    )
    .await
}

async fn failed(state: &AppState, c: &Console, e: Error) -> Response {
    match forms::problem(e) {
        Ok(p) => show(state, c, None, Some(p.message), p.status).await,
        Err(resp) => resp,
    }
}

#[handler]
pub async fn revoke(ConsoleForm(c, form): ConsoleForm, state: Data<&AppState>) -> Response {
    let client_id = forms::field(&form, "client_id");
    match oauth::revoke_authorization(&state, &c.principal(), &client_id).await {
        Ok(()) => see_other("/account/apps?done=revoked"),
        Err(e) => failed(&state, &c, e).await,
    }
}

#[handler]
pub async fn delete_client(ConsoleForm(c, form): ConsoleForm, state: Data<&AppState>) -> Response {
    let client_id = forms::field(&form, "client_id");
    match clients::delete_owned(&state, &c.principal(), &client_id).await {
        Ok(()) => see_other("/account/apps?done=client_deleted"),
        Err(e) => failed(&state, &c, e).await,
    }
}
