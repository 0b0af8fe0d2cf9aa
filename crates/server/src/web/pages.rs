//! Login, logout, and the authorization endpoint with its consent page.

use poem::{
    handler,
    http::{header, StatusCode},
    web::Data,
    Body, Request, Response,
};
use secrecy::SecretString;

use super::{
    cookie,
    params::{read_form, Params},
    see_other, set_cookie,
    templates::{self, render},
    CSRF_COOKIE, SESSION_COOKIE,
};
use crate::{
    error::Error,
    service::{
        oauth::{self, AuthorizeFailure, AuthorizeParams, AuthorizeRequest},
        sessions::{self, LoginError, Session},
    },
    state::AppState,
};

/// A same-origin path to return to after login; anything else (absolute
/// URLs, `//host`, backslashes) is dropped, so login is never an open redirect.
fn safe_return_to(value: Option<&str>) -> Option<String> {
    let v = value?;
    let ok = v.starts_with('/')
        && !v.starts_with("//")
        && !v.contains('\\')
        && v.len() <= 4096
        && !v.chars().any(char::is_control);
    ok.then(|| v.to_owned())
}

/// The CSRF cookie of the request, or a new one to set.
fn csrf_cookie(req: &Request) -> (String, bool) {
    match cookie(req, CSRF_COOKIE).filter(|c| c.len() >= 32) {
        Some(c) => (c.to_owned(), false),
        None => (sessions::new_csrf_cookie(), true),
    }
}

fn with_csrf_cookie(state: &AppState, mut resp: Response, value: &str, is_new: bool) -> Response {
    if is_new {
        if let Ok(v) = set_cookie(state, CSRF_COOKIE, value, 86_400 * 30).parse() {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

async fn session(state: &AppState, req: &Request) -> Result<Option<Session>, Error> {
    match cookie(req, SESSION_COOKIE) {
        Some(c) => sessions::current(state, c).await,
        None => Ok(None),
    }
}

fn who(s: &Session) -> String {
    s.email
        .clone()
        .or_else(|| s.name.clone())
        .unwrap_or_else(|| s.user_id.to_string())
}

fn unavailable(e: Error) -> Response {
    if e.is_unavailable() {
        tracing::error!(error = %e, "database unavailable");
        templates::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            "The server cannot reach its database right now.",
            None,
        )
    } else {
        tracing::error!(error = %e, "page failed");
        templates::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "An unexpected error occurred; it has been logged.",
            None,
        )
    }
}

fn csrf_failed() -> Response {
    templates::message(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form could not be verified (missing or stale security token). Go back, reload the page and try again.",
        Some("csrf_failed"),
    )
}

/// Read a posted form and check its CSRF token; on failure, the page to show.
async fn verified_form(state: &AppState, req: &Request, body: Body) -> Result<Params, Response> {
    let form = read_form(req, body).await.map_err(|e| {
        templates::message(
            StatusCode::BAD_REQUEST,
            "Bad request",
            &e.description,
            Some(e.code),
        )
    })?;
    let token = form.all("csrf_token").into_iter().next();
    if sessions::csrf_valid(state, cookie(req, CSRF_COOKIE), token.as_deref()) {
        Ok(form)
    } else {
        Err(csrf_failed())
    }
}

#[handler]
pub async fn login_page(req: &Request, state: Data<&AppState>) -> Response {
    let query = Params::parse(req.uri().query().unwrap_or("").as_bytes());
    let return_to = safe_return_to(query.all("return_to").first().map(String::as_str));
    let (csrf, is_new) = csrf_cookie(req);
    let token = sessions::csrf_token(&state, &csrf);
    let resp = match session(&state, req).await {
        Err(e) => unavailable(e),
        Ok(Some(s)) => match &return_to {
            Some(to) => see_other(to),
            None => render(
                &templates::SignedIn {
                    csrf_token: &token,
                    who: &who(&s),
                },
                StatusCode::OK,
            ),
        },
        Ok(None) => render(
            &templates::Login {
                csrf_token: &token,
                return_to: return_to.as_deref().unwrap_or(""),
                email: "",
                error: None,
            },
            StatusCode::OK,
        ),
    };
    with_csrf_cookie(&state, resp, &csrf, is_new)
}

#[handler]
pub async fn login_submit(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let form = match verified_form(&state, req, body).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let field = |n: &str| form.all(n).into_iter().next().unwrap_or_default();
    let return_to = safe_return_to(Some(&field("return_to")));
    let email = field("email");
    let password = SecretString::from(field("password"));
    match sessions::login(&state, &email, password).await {
        Ok((cookie_value, _)) => {
            let mut resp = see_other(return_to.as_deref().unwrap_or("/login"));
            let value = set_cookie(
                &state,
                SESSION_COOKIE,
                secrecy::ExposeSecret::expose_secret(&cookie_value),
                state.config.session_ttl_secs as i64,
            );
            if let Ok(v) = value.parse() {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(LoginError::InvalidCredentials) => {
            let csrf = cookie(req, CSRF_COOKIE).unwrap_or_default();
            let token = sessions::csrf_token(&state, csrf);
            render(
                &templates::Login {
                    csrf_token: &token,
                    return_to: return_to.as_deref().unwrap_or(""),
                    email: &email.chars().take(254).collect::<String>(),
                    error: Some("Wrong email or password."),
                },
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(LoginError::Other(Error::RateLimited {
            retry_after_secs, ..
        })) => {
            let mut resp = templates::message(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &format!("Too many sign-in attempts; wait {retry_after_secs} s and try again."),
                Some("rate_limited"),
            );
            if let Ok(v) = retry_after_secs.to_string().parse() {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Err(LoginError::Other(e)) => unavailable(e),
    }
}

#[handler]
pub async fn logout(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    if let Err(page) = verified_form(&state, req, body).await {
        return page;
    }
    match session(&state, req).await {
        Ok(Some(s)) => {
            if let Err(e) = sessions::logout(&state, &s).await {
                return unavailable(e);
            }
        }
        Ok(None) => {}
        Err(e) => return unavailable(e),
    }
    let mut resp = see_other("/login");
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

/// The parameters to carry through the consent form.
fn carried_fields(p: &AuthorizeParams) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let single = [
        ("response_type", &p.response_type),
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("scope", &p.scope),
        ("state", &p.state),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
    ];
    for (name, value) in single {
        if let Some(v) = value {
            out.push((name, v.clone()));
        }
    }
    for r in &p.resource {
        out.push(("resource", r.clone()));
    }
    out
}

fn query_string(fields: &[(&'static str, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

fn failure_response(f: AuthorizeFailure) -> Response {
    match f {
        AuthorizeFailure::Redirect(location) => see_other(&location),
        AuthorizeFailure::Page(e) if e.code == "temporarily_unavailable" => {
            templates::message(StatusCode::SERVICE_UNAVAILABLE, "Try again shortly", &e.description, Some(e.code))
        }
        AuthorizeFailure::Page(e) if e.code == "server_error" => templates::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            &e.description,
            Some(e.code),
        ),
        AuthorizeFailure::Page(e) => templates::message(
            StatusCode::BAD_REQUEST,
            "This authorization request cannot be completed",
            &format!("{} The application that sent you here is misconfigured; you were not redirected back to it.", sentence(&e.description)),
            Some(e.code),
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

fn consent_page(
    state: &AppState,
    req: &AuthorizeRequest,
    params: &AuthorizeParams,
    s: &Session,
    csrf_token: &str,
) -> Response {
    let redirect_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .map(|u| match u.host_str() {
            Some(h) => match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            },
            None => format!("{}:", u.scheme()),
        })
        .unwrap_or_default();
    let page = templates::Consent {
        csrf_token,
        client_name: &req.client.name,
        verified: req.client.kind == oauth::clients::ClientKind::Operator,
        redirect_host: &redirect_host,
        who: &who(s),
        scopes: req
            .scopes
            .iter()
            .map(|sc| (sc.as_str(), sc.description()))
            .collect(),
        resources: oauth::resource::uris(state, &req.resources),
        fields: carried_fields(params),
    };
    render(&page, StatusCode::OK)
}

#[handler]
pub async fn authorize(req: &Request, state: Data<&AppState>) -> Response {
    let raw = Params::parse(req.uri().query().unwrap_or("").as_bytes());
    let params = match authorize_params(&raw) {
        Ok(p) => p,
        Err(e) => return failure_response(AuthorizeFailure::Page(e)),
    };
    let valid = match oauth::validate_authorize(&state, &params).await {
        Ok(v) => v,
        Err(f) => return failure_response(f),
    };
    let s = match session(&state, req).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let back = format!(
                "/oauth/authorize?{}",
                query_string(&carried_fields(&params))
            );
            let login = format!("/login?{}", query_string(&[("return_to", back)]));
            return see_other(&login);
        }
        Err(e) => return unavailable(e),
    };
    match oauth::consent_remembered(&state, s.user_id, &valid).await {
        Ok(true) => match oauth::approve(&state, s.user_id, &valid).await {
            Ok(location) => see_other(&location),
            Err(e) => unavailable(e),
        },
        Ok(false) => {
            let (csrf, is_new) = csrf_cookie(req);
            let token = sessions::csrf_token(&state, &csrf);
            let resp = consent_page(&state, &valid, &params, &s, &token);
            with_csrf_cookie(&state, resp, &csrf, is_new)
        }
        Err(e) => unavailable(e),
    }
}

#[handler]
pub async fn authorize_decision(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let form = match verified_form(&state, req, body).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let params = match authorize_params(&form) {
        Ok(p) => p,
        Err(e) => return failure_response(AuthorizeFailure::Page(e)),
    };
    let valid = match oauth::validate_authorize(&state, &params).await {
        Ok(v) => v,
        Err(f) => return failure_response(f),
    };
    let s = match session(&state, req).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let back = format!(
                "/oauth/authorize?{}",
                query_string(&carried_fields(&params))
            );
            return see_other(&format!("/login?{}", query_string(&[("return_to", back)])));
        }
        Err(e) => return unavailable(e),
    };
    match form.all("decision").first().map(String::as_str) {
        Some("approve") => match oauth::approve(&state, s.user_id, &valid).await {
            Ok(location) => see_other(&location),
            Err(e) => unavailable(e),
        },
        Some("deny") => see_other(&oauth::deny(&state, &valid)),
        _ => templates::message(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Choose Allow or Deny.",
            Some("invalid_request"),
        ),
    }
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
