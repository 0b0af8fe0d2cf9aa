//! `/account/security`: change the password (limited like login), sign out
//! every other session, and the account's recent security events.

use askama::Template;
use poem::{handler, http::StatusCode, web::Data, Request, Response};
use secrecy::SecretString;

use crate::{
    service::{
        audit::{self, AuditAction},
        sessions,
    },
    state::AppState,
    web::{
        forms::{self, error_page, when, Console, ConsoleForm, FormState, Problem},
        see_other,
        templates::{render, Nav},
    },
};

const FIELDS: &[&str] = &["current_password", "password", "password_confirm"];
const NOTICES: &[(&str, &str)] = &[
    (
        "password_changed",
        "Your password was changed. Every other browser was signed out.",
    ),
    ("sessions_ended", "Every other browser was signed out."),
];
/// Events shown on the page.
const EVENTS: i64 = 20;

struct Event {
    at: String,
    what: String,
    ip: String,
    agent: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    nav: Nav,
    form: FormState,
    events: Vec<Event>,
    notice: Option<&'static str>,
}

/// An audit action in words.
fn words(action: AuditAction) -> &'static str {
    match action {
        AuditAction::UserRegistered => "Account created",
        AuditAction::KeyCreated => "API key created",
        AuditAction::KeyRotated => "API key rotated",
        AuditAction::KeyRevoked => "API key revoked",
        AuditAction::LoginSucceeded => "Signed in",
        AuditAction::LoginFailed => "Failed sign-in attempt",
        AuditAction::Logout => "Signed out",
        AuditAction::SessionsEnded => "Other browsers signed out",
        AuditAction::PasswordChanged => "Password changed",
        AuditAction::PasswordReset => "Password reset by the operator",
        AuditAction::OAuthConsentGranted => "App authorized",
        AuditAction::OAuthFamilyRevoked => "App's tokens revoked (reuse detected)",
        AuditAction::OAuthAuthorizationRevoked => "App's access revoked",
        AuditAction::OAuthClientDeleted => "OAuth client deleted",
        AuditAction::ConnectionCreated => "Account connected",
        AuditAction::ConnectionDeleted => "Account disconnected",
    }
}

async fn show(
    state: &AppState,
    c: &Console,
    form: FormState,
    notice: Option<&'static str>,
) -> Response {
    let trail = match audit::list_own(state, &c.principal(), Some(EVENTS), None).await {
        Ok(p) => p,
        Err(e) => return error_page(e),
    };
    let events = trail
        .events
        .into_iter()
        .map(|e| {
            let target = e.target.map(|t| format!(" ({t})")).unwrap_or_default();
            Event {
                at: when(e.at),
                what: format!("{}{target}", words(e.action)),
                ip: e.ip.unwrap_or_default(),
                agent: e.user_agent.unwrap_or_default(),
            }
        })
        .collect();
    let status = form.status();
    let tpl = SecurityPage {
        nav: c.nav("security"),
        form,
        events,
        notice,
    };
    c.finish(state, render(&tpl, status))
}

#[handler]
pub async fn page(c: Console, req: &Request, state: Data<&AppState>) -> Response {
    let notice = super::notice(req, NOTICES);
    show(&state, &c, FormState::clean(FIELDS, false), notice).await
}

#[handler]
pub async fn password(ConsoleForm(c, form): ConsoleForm, state: Data<&AppState>) -> Response {
    let current = forms::field(&form, "current_password");
    let new = forms::field(&form, "password");
    if new != forms::field(&form, "password_confirm") {
        let p = Problem::new(
            Some("password_confirm"),
            "The two new passwords differ.",
            StatusCode::BAD_REQUEST,
        );
        return show(&state, &c, FormState::with(p, FIELDS), None).await;
    }
    let result = sessions::change_password(
        &state,
        &c.session,
        SecretString::from(current),
        SecretString::from(new),
    )
    .await;
    match result {
        Ok((cookie, _)) => forms::with_session_cookie(
            &state,
            see_other("/account/security?done=password_changed"),
            &cookie,
        ),
        Err(e) => match forms::problem(e) {
            Ok(p) => show(&state, &c, FormState::with(p, FIELDS), None).await,
            Err(resp) => resp,
        },
    }
}

#[handler]
pub async fn end_sessions(ConsoleForm(c, _): ConsoleForm, state: Data<&AppState>) -> Response {
    match sessions::end_other_sessions(&state, &c.session).await {
        Ok(_) => see_other("/account/security?done=sessions_ended"),
        Err(e) => error_page(e),
    }
}
