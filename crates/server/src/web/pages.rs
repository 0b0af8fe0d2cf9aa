//! Login, logout, and the authorization endpoint with its consent page.

use poem::{
    handler,
    http::{header, StatusCode},
    web::Data,
    Body, Request, Response,
};
use secrecy::SecretString;

use super::{
    forms::{
        self, csrf_cookie, error_page, safe_return_to, session, to_login, verified_form,
        with_csrf_cookie, with_session_cookie, FormKind,
    },
    params::Params,
    see_other, set_cookie,
    templates::{self, render},
    SESSION_COOKIE,
};
use crate::{
    config::RegistrationPolicy,
    error::OAuthCode,
    service::{
        oauth::{
            self, AuthorizeFailure, AuthorizeOutcome, AuthorizeParams, AuthorizeRequest, Decision,
        },
        sessions::{self, LoginError, Session},
    },
    state::AppState,
};

/// "Sign in to continue to <app>": the name of the client an authorization
/// waiting behind the login belongs to, when this server knows it.
async fn continuing_to(state: &AppState, return_to: Option<&str>) -> Option<String> {
    let query = return_to?.strip_prefix("/oauth/authorize?")?;
    let client_id = Params::parse(query.as_bytes())
        .ok()?
        .one("client_id")
        .ok()??;
    oauth::clients::known_name(state, &client_id)
        .await
        .ok()
        .flatten()
}

fn registration_open(state: &AppState) -> bool {
    state.config.registration == RegistrationPolicy::Open
}

async fn login_form(
    state: &AppState,
    token: &str,
    return_to: Option<&str>,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let signup_link = match return_to {
        Some(r) => format!(
            "/signup?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", r)
                .finish()
        ),
        None => "/signup".into(),
    };
    render(
        &templates::Login {
            csrf_token: token,
            return_to: return_to.unwrap_or(""),
            email,
            error,
            app: continuing_to(state, return_to).await,
            signup_link: registration_open(state).then_some(signup_link),
        },
        status,
    )
}

#[handler]
pub async fn login_page(req: &Request, state: Data<&AppState>) -> Response {
    let query = match forms::query(req) {
        Ok(q) => q,
        Err(page) => return page,
    };
    let return_to = safe_return_to(query.all("return_to").first().map(String::as_str));
    // Rendered signed out: the token of the CSRF cookie alone.
    let (csrf, is_new) = csrf_cookie(req);
    let token = sessions::csrf_token(&state, &csrf, None);
    let resp = match session(&state, req).await {
        Err(e) => error_page(e),
        Ok(Some(_)) => see_other(return_to.as_deref().unwrap_or("/")),
        Ok(None) => {
            login_form(
                &state,
                &token,
                return_to.as_deref(),
                "",
                None,
                StatusCode::OK,
            )
            .await
        }
    };
    with_csrf_cookie(&state, resp, &csrf, is_new)
}

#[handler]
pub async fn login_submit(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let form = match verified_form(&state, req, body, FormKind::SignedOut).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let field = |n: &str| forms::field(&form, n);
    let return_to = safe_return_to(Some(&field("return_to")));
    let email = field("email");
    let password = SecretString::from(field("password"));
    match sessions::login(&state, &email, password).await {
        Ok((cookie_value, _)) => with_session_cookie(
            &state,
            see_other(return_to.as_deref().unwrap_or("/")),
            &cookie_value,
        ),
        Err(LoginError::InvalidCredentials) => {
            let csrf = super::cookie(req, super::CSRF_COOKIE).unwrap_or_default();
            let token = sessions::csrf_token(&state, csrf, None);
            login_form(
                &state,
                &token,
                return_to.as_deref(),
                &email.chars().take(254).collect::<String>(),
                Some("Wrong email or password."),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(LoginError::Other(e)) => error_page(e),
    }
}

/// Sign out; `return_to` (same-origin) leads back through the login page,
/// which is how the consent page's "Switch account" works. The form is on
/// signed-in pages, so its token is bound to the session it ends.
#[handler]
pub async fn logout(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let form = match verified_form(&state, req, body, FormKind::SignedIn).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    match session(&state, req).await {
        Ok(Some(s)) => {
            if let Err(e) = sessions::logout(&state, &s).await {
                return error_page(e);
            }
        }
        Ok(None) => {}
        Err(e) => return error_page(e),
    }
    let mut resp = match safe_return_to(Some(&forms::field(&form, "return_to"))) {
        Some(back) => to_login(&back),
        None => see_other("/login"),
    };
    if let Ok(v) = set_cookie(&state, SESSION_COOKIE, "", 0).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Read the authorization parameters; a repeated parameter is refused.
fn authorize_params(p: &Params) -> Result<AuthorizeParams, oauth::OAuthError> {
    Ok(AuthorizeParams {
        response_type: p.one("response_type")?,
        client_id: p.one("client_id")?,
        redirect_uri: p.one("redirect_uri")?,
        scope: p.one("scope")?,
        state: p.one("state")?,
        code_challenge: p.one("code_challenge")?,
        code_challenge_method: p.one("code_challenge_method")?,
        resource: p.all("resource"),
    })
}

/// A failed authorization request that cannot go back to the client: a
/// page, with the status its OAuth code calls for.
fn failure_response(f: AuthorizeFailure) -> Response {
    let e = match f {
        AuthorizeFailure::Redirect(location) => return see_other(&location),
        AuthorizeFailure::Page(e) => e,
    };
    match e.code {
        OAuthCode::TemporarilyUnavailable => templates::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            "The server cannot reach its database right now. Wait a moment, then go back to the application and start again.",
            Some(e.wire_code()),
        ),
        OAuthCode::ServerError => templates::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "An unexpected error occurred; it has been logged. Go back to the application and try again.",
            Some(e.wire_code()),
        ),
        _ => templates::message_with_detail(
            StatusCode::BAD_REQUEST,
            "This sign-in link does not work",
            "The application that sent you here asked for something this server cannot grant, so you were not redirected back to it. Tell the application's developer, or try connecting it again from the start.",
            &sentence(&e.description),
            Some(e.wire_code()),
        ),
    }
}

fn sentence(s: &str) -> String {
    let mut out: String = s.chars().take(300).collect();
    if let Some(first) = out.get(0..1) {
        out.replace_range(0..1, &first.to_uppercase());
    }
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// `host[:port]` of a URI, or `scheme:` for private-use schemes.
pub(super) fn redirect_host(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .map(|u| match u.host_str() {
            Some(h) => match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            },
            None => format!("{}:", u.scheme()),
        })
        .unwrap_or_default()
}

fn consent_page(
    req: &AuthorizeRequest,
    params: &AuthorizeParams,
    s: &Session,
    csrf_token: &str,
) -> Response {
    let fields = params.fields();
    let page = templates::Consent {
        csrf_token,
        client_name: &req.client.name,
        client_uri: req
            .client
            .client_uri
            .as_deref()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        verified: req.client.kind == oauth::clients::ClientKind::Operator,
        redirect_host: &redirect_host(&req.redirect_uri),
        who: &s.display_name(),
        scopes: req
            .scopes
            .iter()
            .map(|sc| (sc.as_str(), sc.description()))
            .collect(),
        resources: req.resources.iter().map(|r| r.description()).collect(),
        switch_return_to: params.return_to(),
        fields,
    };
    render(&page, StatusCode::OK)
}

/// The page or redirect an authorization outcome calls for.
fn authorize_response(
    state: &AppState,
    req: &Request,
    params: &AuthorizeParams,
    outcome: AuthorizeOutcome,
) -> Response {
    match outcome {
        AuthorizeOutcome::ShowConsent { request, session } => {
            let (csrf, is_new) = csrf_cookie(req);
            let token = sessions::csrf_token(state, &csrf, Some(&session.id));
            let resp = consent_page(&request, params, &session, &token);
            with_csrf_cookie(state, resp, &csrf, is_new)
        }
        AuthorizeOutcome::Redirect(location) => see_other(&location),
        AuthorizeOutcome::Login(return_to) => to_login(&return_to),
        AuthorizeOutcome::Refused(e) => failure_response(AuthorizeFailure::Page(e)),
        AuthorizeOutcome::NoDecision => templates::message(
            StatusCode::BAD_REQUEST,
            "Choose Allow or Deny",
            "The form was sent without a decision. Go back and press Allow or Deny.",
            Some("invalid_request"),
        ),
        AuthorizeOutcome::Error(e) => error_page(e),
    }
}

#[handler]
pub async fn authorize(req: &Request, state: Data<&AppState>) -> Response {
    let raw = match Params::parse(req.uri().query().unwrap_or("").as_bytes()) {
        Ok(raw) => raw,
        Err(e) => return failure_response(AuthorizeFailure::Page(e)),
    };
    let params = match authorize_params(&raw) {
        Ok(p) => p,
        Err(e) => return failure_response(AuthorizeFailure::Page(e)),
    };
    let outcome = oauth::authorize(&state, &params, super::cookie(req, SESSION_COOKIE)).await;
    authorize_response(&state, req, &params, outcome)
}

#[handler]
pub async fn authorize_decision(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let form = match verified_form(&state, req, body, FormKind::SignedIn).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let params = match authorize_params(&form) {
        Ok(p) => p,
        Err(e) => return failure_response(AuthorizeFailure::Page(e)),
    };
    let decision = match form.all("decision").first().map(String::as_str) {
        Some("approve") => Some(Decision::Approve),
        Some("deny") => Some(Decision::Deny),
        _ => None,
    };
    let outcome = oauth::decide(
        &state,
        &params,
        super::cookie(req, SESSION_COOKIE),
        decision,
    )
    .await;
    authorize_response(&state, req, &params, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_is_same_origin_only() {
        assert_eq!(
            safe_return_to(Some("/oauth/authorize?x=1")).as_deref(),
            Some("/oauth/authorize?x=1")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(safe_return_to(Some(bad)), None, "{bad}");
        }
    }
}
