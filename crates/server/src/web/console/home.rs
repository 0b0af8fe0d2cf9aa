//! `/`: what this server is (signed out) or the account's overview.

use askama::Template;
use poem::{handler, http::StatusCode, web::Data, Request, Response};

use crate::{
    config::RegistrationPolicy,
    service::{connect, keys, memories, oauth},
    state::AppState,
    web::{
        forms::{self, error_page},
        see_other,
        templates::{render, Nav},
    },
};

#[derive(Template)]
#[template(path = "home.html")]
struct SignedOut {
    registration_open: bool,
    public_url: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    nav: Nav,
    keys: usize,
    connections: usize,
    apps: usize,
    memories: i64,
}

#[handler]
pub async fn home(req: &Request, state: Data<&AppState>) -> Response {
    match forms::session(&state, req).await {
        Err(e) => return error_page(e),
        Ok(None) => {
            return render(
                &SignedOut {
                    registration_open: state.config.registration == RegistrationPolicy::Open,
                    public_url: state.config.public_url.clone(),
                },
                StatusCode::OK,
            )
        }
        Ok(Some(_)) => {}
    }
    let c = match forms::console(&state, req).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let p = c.principal();
    let counts = async {
        let keys = keys::list(&state, &p)
            .await?
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .count();
        let connections = connect::providers(&state, &p)
            .await?
            .iter()
            .filter(|v| v.connected)
            .count();
        let apps = oauth::authorizations(&state, &p).await?.len();
        let memories = memories::stats(&state, &p).await?.total_memories;
        Ok::<_, crate::error::Error>((keys, connections, apps, memories))
    };
    match counts.await {
        Ok((keys, connections, apps, memories)) => c.finish(
            &state,
            render(
                &Overview {
                    nav: c.nav("home"),
                    keys,
                    connections,
                    apps,
                    memories,
                },
                StatusCode::OK,
            ),
        ),
        Err(e) => error_page(e),
    }
}

/// `/account` is the overview.
#[handler]
pub fn account() -> Response {
    see_other("/")
}
