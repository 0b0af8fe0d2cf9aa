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
    let q = Params::parse(req.uri().query().unwrap_or("").as_bytes());
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
    match connect::callback(&state, &provider, params, session_user).await {
        Ok(CallbackOutcome::Redirect(to)) => see_other(&to),
        Ok(CallbackOutcome::Connected { provider }) => templates::render(
            &templates::Done {
                title: "Connected",
                message: &format!("Your {provider} account is connected. You can close this window."),
            },
            StatusCode::OK,
        ),
        Err(CallbackError::InvalidState(why)) => templates::message(
            StatusCode::BAD_REQUEST,
            "Connection not completed",
            &format!("{}{}.", why[..1].to_uppercase(), &why[1..]),
            Some("invalid_state"),
        ),
        Err(CallbackError::Provider { error, description }) => templates::message(
            StatusCode::BAD_REQUEST,
            "The provider did not connect your account",
            &match description {
                Some(d) => format!("The provider answered {error}: {d}"),
                None => format!("The provider answered {error}."),
            },
            Some("provider_error"),
        ),
        Err(CallbackError::Exchange(why)) => templates::message(
            StatusCode::BAD_GATEWAY,
            "Connection not completed",
            &format!("Exchanging the authorization with the provider failed ({why}). Go back and try again."),
            Some("exchange_failed"),
        ),
        Err(CallbackError::Internal(e)) => {
            tracing::error!(error = %e, "connection callback failed");
            templates::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An unexpected error occurred; it has been logged.",
                None,
            )
        }
    }
}
