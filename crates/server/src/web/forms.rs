//! What every page shares: the session cookie, the CSRF cookie and token,
//! verified form posts, the console's signed-in context, and turning a
//! domain error into a page.
//!
//! CSRF tokens come in two kinds (`service::sessions::csrf_token`): a form
//! rendered signed out (login, sign-up) carries a token of the CSRF cookie
//! alone; a form rendered signed in (every console form, consent, logout)
//! carries a token of the CSRF cookie *and* the session, so a cookie and
//! token pair taken from one browser is refused with another's session.

use poem::{
    http::{header, StatusCode},
    Body, Request, Response,
};
use secrecy::{ExposeSecret, SecretString};

use super::{
    cookie,
    params::{read_form, Params},
    see_other, set_cookie, templates, CSRF_COOKIE, SESSION_COOKIE,
};
use crate::{
    api,
    error::{Error, ErrorKind, PublicError},
    service::{
        auth::Principal,
        oauth::OAuthError,
        sessions::{self, Session},
    },
    state::AppState,
    token::{self, Kind},
};

/// A same-origin path to return to after login; anything else (absolute
/// URLs, `//host`, backslashes) is dropped, so login is never an open redirect.
pub fn safe_return_to(value: Option<&str>) -> Option<String> {
    let v = value?;
    let ok = v.starts_with('/')
        && !v.starts_with("//")
        && !v.contains('\\')
        && v.len() <= 4096
        && !v.chars().any(char::is_control);
    ok.then(|| v.to_owned())
}

/// The CSRF cookie of the request, or a new one to set.
pub fn csrf_cookie(req: &Request) -> (String, bool) {
    match cookie(req, CSRF_COOKIE).filter(|c| c.len() >= 32) {
        Some(c) => (c.to_owned(), false),
        None => (sessions::new_csrf_cookie(), true),
    }
}

pub fn with_csrf_cookie(
    state: &AppState,
    mut resp: Response,
    value: &str,
    is_new: bool,
) -> Response {
    if is_new {
        if let Ok(v) = set_cookie(state, CSRF_COOKIE, value, 86_400 * 30).parse() {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Set the session cookie on a response.
pub fn with_session_cookie(state: &AppState, mut resp: Response, value: &SecretString) -> Response {
    let v = set_cookie(
        state,
        SESSION_COOKIE,
        value.expose_secret(),
        state.config.session_ttl_secs as i64,
    );
    if let Ok(v) = v.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The id the request's session cookie names, when it is well-formed (live
/// or not: no query). A signed-in form's token is bound to it.
pub fn session_cookie_id(req: &Request) -> Option<&str> {
    cookie(req, SESSION_COOKIE).and_then(|c| token::parse(Kind::WebSession, c).ok())
}

/// The live session of the request, if any.
pub async fn session(state: &AppState, req: &Request) -> Result<Option<Session>, Error> {
    match cookie(req, SESSION_COOKIE) {
        Some(c) => sessions::current(state, c).await,
        None => Ok(None),
    }
}

/// The login page, coming back to `back` afterwards.
pub fn to_login(back: &str) -> Response {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("return_to", back);
    see_other(&format!("/login?{}", s.finish()))
}

/// The page for an error no form can show next to a field: the domain
/// error's public rendering (code and sentence) as HTML, with the status its
/// kind has on every face (a database outage is a 503, anything unexpected
/// a 500) and `Retry-After` when it helps.
pub fn error_page(e: Error) -> Response {
    page(e.into_public())
}

fn page(p: PublicError) -> Response {
    let status = api::error::status(p.kind);
    let title = match p.kind {
        ErrorKind::Unavailable => "Try again shortly",
        ErrorKind::NotFound => "Not found",
        ErrorKind::RateLimited => "Too many attempts",
        ErrorKind::Forbidden => "Not allowed",
        ErrorKind::Internal | ErrorKind::Upstream => "Something went wrong",
        _ => "That did not work",
    };
    let mut resp = templates::message(status, title, &p.message, Some(p.code));
    if let Some(secs) = p.retry_after {
        if let Ok(v) = secs.to_string().parse() {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

pub fn csrf_failed() -> Response {
    templates::message(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form could not be verified (missing or stale security token). Go back, reload the page and try again.",
        Some("csrf_failed"),
    )
}

/// The page for a form or query that cannot be read (wrong content type,
/// too large, a NUL character in a field): 400, saying which.
pub fn bad_request_page(e: &OAuthError) -> Response {
    templates::message(
        StatusCode::BAD_REQUEST,
        "Bad request",
        &e.description,
        Some(e.wire_code()),
    )
}

/// The query parameters of a page request; unreadable, the page to show.
pub fn query(req: &Request) -> Result<Params, Response> {
    Params::parse(req.uri().query().unwrap_or("").as_bytes()).map_err(|e| bad_request_page(&e))
}

/// Which CSRF token a form carries: the kind of page it is rendered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    /// Rendered signed out (login, sign-up): the token of the CSRF cookie.
    SignedOut,
    /// Rendered signed in (console, consent, logout): the token of the CSRF
    /// cookie and the session the session cookie names. With no session
    /// cookie there is no session to act on, and the cookie's token is asked
    /// for, so a post without cookies is still refused.
    SignedIn,
}

/// Read a posted form and check its CSRF token; on failure, the page to show.
pub async fn verified_form(
    state: &AppState,
    req: &Request,
    body: Body,
    kind: FormKind,
) -> Result<Params, Response> {
    let form = read_form(req, body)
        .await
        .map_err(|e| bad_request_page(&e))?;
    let token = form.all("csrf_token").into_iter().next();
    let bound_to = match kind {
        FormKind::SignedOut => None,
        FormKind::SignedIn => session_cookie_id(req),
    };
    if sessions::csrf_valid(state, cookie(req, CSRF_COOKIE), bound_to, token.as_deref()) {
        Ok(form)
    } else {
        Err(csrf_failed())
    }
}

/// A form's problem to show on the form itself: which field (if one) and a
/// sentence; the status the re-rendered form answers with.
pub struct Problem {
    pub field: Option<String>,
    pub message: String,
    pub status: StatusCode,
}

impl Problem {
    /// The message for `field`, if the problem is about it.
    pub fn on(&self, field: &str) -> Option<&str> {
        (self.field.as_deref() == Some(field)
            || self
                .field
                .as_deref()
                .is_some_and(|f| f.starts_with(field) && f[field.len()..].starts_with('[')))
        .then_some(self.message.as_str())
    }

    /// The message when it is about no field in `shown`.
    pub fn general(&self, shown: &[&str]) -> Option<&str> {
        (!shown.iter().any(|f| self.on(f).is_some())).then_some(self.message.as_str())
    }

    pub fn new(field: Option<&str>, message: impl Into<String>, status: StatusCode) -> Self {
        Self {
            field: field.map(str::to_owned),
            message: message.into(),
            status,
        }
    }
}

/// Words for the fields the forms show.
fn label(field: &str) -> &str {
    let base = field.split('[').next().unwrap_or(field);
    match base {
        "name" => "Name",
        "email" => "Email",
        "password" => "Password",
        "current_password" => "Current password",
        "scopes" => "Scopes",
        "expires_in_days" => "Expiry",
        "grace_seconds" => "Grace period",
        "title" => "Title",
        "content" => "Content",
        "memory_type" | "memory_types" => "Type",
        "tags" => "Tags",
        "query" => "Search",
        "cursor" => "Page",
        other => other,
    }
}

/// A domain error as a problem on the form, or (outage, internal error) as
/// a page of its own.
pub fn problem(e: Error) -> Result<Problem, Response> {
    if let Error::Validation { field, message } = &e {
        return Ok(Problem {
            message: format!("{} {message}.", label(field)),
            field: Some(field.clone()),
            status: StatusCode::BAD_REQUEST,
        });
    }
    let p = e.into_public();
    let status = api::error::status(p.kind);
    if status.is_server_error() {
        return Err(page(p));
    }
    Ok(Problem {
        field: p.field,
        message: p.message,
        status,
    })
}

/// The signed-in person at the console, with the CSRF token for their forms.
pub struct Console {
    pub session: Session,
    pub csrf_token: String,
    csrf: String,
    csrf_new: bool,
}

impl Console {
    pub fn principal(&self) -> Principal {
        self.session.principal()
    }

    /// Finish a response: the CSRF cookie when it is new.
    pub fn finish(&self, state: &AppState, resp: Response) -> Response {
        with_csrf_cookie(state, resp, &self.csrf, self.csrf_new)
    }

    pub fn nav(&self, section: &'static str) -> templates::Nav {
        templates::Nav {
            csrf_token: self.csrf_token.clone(),
            who: self.session.display_name(),
            section,
        }
    }
}

impl Console {
    /// The console context of `session`: its forms' token is bound to the
    /// request's CSRF cookie (or a new one) and to `session`.
    fn of(state: &AppState, req: &Request, session: Session) -> Self {
        let (csrf, csrf_new) = csrf_cookie(req);
        Console {
            csrf_token: sessions::csrf_token(state, &csrf, Some(&session.id)),
            session,
            csrf,
            csrf_new,
        }
    }

    /// The console context for a session just opened (sign-up): the page
    /// rendered now is read with the new session cookie, so its forms are
    /// bound to the new session, not to the request's.
    pub fn for_new_session(state: &AppState, req: &Request, session: Session) -> Self {
        Self::of(state, req, session)
    }
}

/// The state of one form on a page: its problem, if any, and its fields in
/// order (the first gets the focus unless another has the problem).
pub struct FormState {
    pub problem: Option<Problem>,
    fields: &'static [&'static str],
    focus_first: bool,
}

impl FormState {
    pub fn clean(fields: &'static [&'static str], focus_first: bool) -> Self {
        Self {
            problem: None,
            fields,
            focus_first,
        }
    }

    pub fn with(problem: Problem, fields: &'static [&'static str]) -> Self {
        Self {
            problem: Some(problem),
            fields,
            focus_first: true,
        }
    }

    /// The message next to `field`.
    pub fn err(&self, field: &str) -> Option<&str> {
        self.problem.as_ref().and_then(|p| p.on(field))
    }

    /// A problem about none of the form's fields (shown above it).
    pub fn general(&self) -> Option<&str> {
        self.problem.as_ref().and_then(|p| p.general(self.fields))
    }

    /// Whether `field` takes the focus: the field with the problem, else the
    /// first field.
    pub fn focus(&self, field: &str) -> bool {
        match self.problem.as_ref() {
            Some(p) if self.fields.iter().any(|f| p.on(f).is_some()) => p.on(field).is_some(),
            Some(_) => self.fields.first() == Some(&field),
            None => self.focus_first && self.fields.first() == Some(&field),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.problem
            .as_ref()
            .map(|p| p.status)
            .unwrap_or(StatusCode::OK)
    }
}

/// Format a time for people: `2026-12-02 19:30 UTC`.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The console context of a page view; signed out, the login page (coming
/// back here afterwards).
pub async fn console(state: &AppState, req: &Request) -> Result<Console, Response> {
    let s = match session(state, req).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let back = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into());
            return Err(to_login(&back));
        }
        Err(e) => return Err(error_page(e)),
    };
    Ok(Console::of(state, req, s))
}

/// A verified console form post: the CSRF token (bound to the session the
/// cookie names) first, then the session.
pub async fn console_form(
    state: &AppState,
    req: &Request,
    body: Body,
) -> Result<(Console, Params), Response> {
    let form = verified_form(state, req, body, FormKind::SignedIn).await?;
    let s = match session(state, req).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            // Back to the section's page (a form's own path may take only POST).
            let section: String = req
                .uri()
                .path()
                .split('/')
                .take(3)
                .collect::<Vec<_>>()
                .join("/");
            return Err(to_login(if section.is_empty() { "/" } else { &section }));
        }
        Err(e) => return Err(error_page(e)),
    };
    Ok((Console::of(state, req, s), form))
}

fn state_of(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))
}

/// A console page's handler takes `Console`: signed out, the request never
/// reaches it (the login page answers, coming back afterwards).
impl<'a> poem::FromRequest<'a> for Console {
    async fn from_request(req: &'a Request, _body: &mut poem::RequestBody) -> poem::Result<Self> {
        console(state_of(req)?, req)
            .await
            .map_err(poem::Error::from_response)
    }
}

/// A console form post: the CSRF token checked, then the session.
pub struct ConsoleForm(pub Console, pub Params);

impl<'a> poem::FromRequest<'a> for ConsoleForm {
    async fn from_request(req: &'a Request, body: &mut poem::RequestBody) -> poem::Result<Self> {
        let body = body.take()?;
        console_form(state_of(req)?, req, body)
            .await
            .map(|(c, form)| ConsoleForm(c, form))
            .map_err(poem::Error::from_response)
    }
}

/// The first value of a form or query field, or "".
pub fn field(p: &Params, name: &str) -> String {
    p.all(name).into_iter().next().unwrap_or_default()
}
