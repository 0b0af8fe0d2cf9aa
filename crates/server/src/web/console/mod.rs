//! The account console: the pages a person uses to manage their account in
//! a browser. Each page calls the same services as the REST API with the
//! session as the principal (`Session::principal`), never a second
//! implementation. Forms post back with CSRF tokens; a successful change
//! redirects (303) to the page with a notice, a secret shown once renders
//! directly, a problem re-renders the form with the values kept and the
//! message next to the field.

mod apps;
mod connections;
mod home;
mod keys;
mod memories;
mod security;
mod signup;

use poem::Route;

use crate::http::allow::{get, post};

/// Add the console's pages to `route`.
pub fn routes(route: Route) -> Route {
    route
        .at("/account", get(home::account))
        .at("/signup", get(signup::page).post(signup::submit))
        .at("/account/keys", get(keys::page).post(keys::create))
        .at("/account/keys/:key_id/rotate", post(keys::rotate))
        .at("/account/keys/:key_id/revoke", post(keys::revoke))
        .at("/account/connections", get(connections::page))
        .at(
            "/account/connections/:provider/connect",
            post(connections::start),
        )
        .at(
            "/account/connections/:provider/disconnect",
            post(connections::disconnect),
        )
        .at("/account/apps", get(apps::page))
        .at("/account/apps/revoke", post(apps::revoke))
        .at("/account/apps/delete-client", post(apps::delete_client))
        .at(
            "/account/memories",
            get(memories::page).post(memories::create),
        )
        .at(
            "/account/memories/:id",
            get(memories::view).post(memories::update),
        )
        .at("/account/memories/:id/delete", post(memories::delete))
        .at("/account/security", get(security::page))
        .at("/account/security/password", post(security::password))
        .at("/account/security/sessions", post(security::end_sessions))
}

/// The home page, served at `/` (see `http::app` for why it is not a route).
pub fn home() -> impl poem::Endpoint {
    get(home::home)
}

/// The notice a page shows after a redirect: a fixed sentence per code, so
/// a link cannot make the page say anything else.
fn notice(req: &poem::Request, known: &[(&str, &'static str)]) -> Option<&'static str> {
    let q = super::params::Params::parse(req.uri().query().unwrap_or("").as_bytes()).ok()?;
    let done = q.all("done").into_iter().next()?;
    known.iter().find(|(k, _)| *k == done).map(|(_, v)| *v)
}
