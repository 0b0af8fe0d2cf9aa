//! The provider's redirect at the end of a connection flow:
//! `GET /api/v1/connect/{provider}/callback`. A browser page: it redirects
//! to the flow's `return_to` or shows the result.

use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path},
    Request, Response,
};
use secrecy::SecretString;

use super::{cookie, params::Params, see_other, templates, SESSION_COOKIE};
use crate::{
    service::{
        connect::{self, CallbackError, CallbackOutcome, CallbackParams},
        sessions,
    },
    state::AppState,
};

#[handler]
pub async fn callback(
    req: &Request,
    Path(provider): Path<String>,
    state: Data<&AppState>,
) -> Response {
    let q = match Params::parse(req.uri().query().unwrap_or("").as_bytes()) {
        Ok(q) => q,
        Err(e) => return super::forms::bad_request_page(&e),
    };
    let first = |n: &str| q.all(n).into_iter().next().filter(|v| !v.is_empty());
    let params = CallbackParams {
        code: first("code").map(SecretString::from),
        state: first("state"),
        error: first("error"),
        error_description: first("error_description"),
    };
    let session_user = match cookie(req, SESSION_COOKIE) {
        Some(c) => sessions::current(&state, c)
            .await
            .ok()
            .flatten()
            .map(|s| s.user_id),
        None => None,
    };
    const BACK: (&str, &str) = ("/account/connections", "Back to your connections");
    match connect::callback(&state, &provider, params, session_user).await {
        Ok(CallbackOutcome::Redirect(to)) => see_other(&to),
        Ok(CallbackOutcome::Connected { provider }) => templates::render(
            &templates::Done {
                title: "Connected",
                message: &format!("Your {provider} account is connected. You can close this window."),
            },
            StatusCode::OK,
        ),
        Err(CallbackError::UnknownProvider) => templates::message_with_next(
            StatusCode::NOT_FOUND,
            "Unknown service",
            "This server has no service of that name to connect, so the link that brought you here does not work. Start the connection again from your connections page.",
            Some("unknown_provider"),
            BACK,
        ),
        Err(CallbackError::InvalidState(why)) => templates::message_with_next(
            StatusCode::BAD_REQUEST,
            "Connection not completed",
            &format!(
                "{}{}. Nothing was connected; start the connection again from your connections page.",
                why[..1].to_uppercase(),
                &why[1..]
            ),
            Some("invalid_state"),
            BACK,
        ),
        Err(CallbackError::Provider { error, description }) => {
            let said = match description {
                Some(d) => format!("It said: {error}: {d}."),
                None => format!("It said: {error}."),
            };
            let sentence = if error == "access_denied" {
                "You (or the service) declined the connection, so nothing was connected."
            } else {
                "The service did not connect your account, so nothing was connected."
            };
            templates::message_with_next(
                StatusCode::BAD_REQUEST,
                "The service did not connect your account",
                &format!("{sentence} {said} You can try again from your connections page."),
                Some("provider_error"),
                BACK,
            )
        }
        Err(CallbackError::Exchange(why)) => templates::message_with_next(
            StatusCode::BAD_GATEWAY,
            "Connection not completed",
            &format!("The service could not be reached to finish the connection ({why}). Go back and try again in a moment."),
            Some("exchange_failed"),
            BACK,
        ),
        Err(CallbackError::Internal(e)) => super::forms::error_page(e),
    }
}
