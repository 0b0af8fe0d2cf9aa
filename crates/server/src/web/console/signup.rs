//! `/signup`: create an account (when registration is open), signed in at
//! once, with the first API key shown this one time.

use askama::Template;
use poem::{handler, http::StatusCode, web::Data, Body, Request, Response};
use secrecy::SecretString;

use crate::{
    config::RegistrationPolicy,
    context,
    service::{accounts::RegisterInput, sessions},
    state::AppState,
    token,
    web::{
        forms::{self, error_page, safe_return_to, FormState, Problem},
        see_other,
        templates::{self, render, Nav},
    },
};

const FIELDS: &[&str] = &["name", "email", "password"];

#[derive(Template)]
#[template(path = "signup.html")]
struct Signup {
    csrf_token: String,
    return_to: String,
    name: String,
    email: String,
    form: FormState,
}

#[derive(Template)]
#[template(path = "signup_done.html")]
struct SignedUp {
    nav: Nav,
    api_key: String,
    key_id: String,
    continue_to: String,
}

fn closed() -> Response {
    templates::message_with_next(
        StatusCode::FORBIDDEN,
        "Registration is closed",
        "This server does not accept new accounts. Ask its operator for one.",
        Some("registration_closed"),
        ("/login", "Sign in"),
    )
}

#[handler]
pub async fn page(req: &Request, state: Data<&AppState>) -> Response {
    if state.config.registration != RegistrationPolicy::Open {
        return closed();
    }
    let q = match forms::query(req) {
        Ok(q) => q,
        Err(page) => return page,
    };
    let return_to = safe_return_to(Some(&forms::field(&q, "return_to"))).unwrap_or_default();
    match forms::session(&state, req).await {
        Ok(Some(_)) => {
            return see_other(if return_to.is_empty() {
                "/"
            } else {
                &return_to
            })
        }
        Ok(None) => {}
        Err(e) => return error_page(e),
    }
    let (csrf, is_new) = forms::csrf_cookie(req);
    let tpl = Signup {
        csrf_token: sessions::csrf_token(&state, &csrf, None),
        return_to,
        name: String::new(),
        email: String::new(),
        form: FormState::clean(FIELDS, true),
    };
    forms::with_csrf_cookie(&state, render(&tpl, StatusCode::OK), &csrf, is_new)
}

#[handler]
pub async fn submit(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    if state.config.registration != RegistrationPolicy::Open {
        return closed();
    }
    let form = match forms::verified_form(&state, req, body, forms::FormKind::SignedOut).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let name = forms::field(&form, "name");
    let email = forms::field(&form, "email");
    let password = forms::field(&form, "password");
    let return_to = safe_return_to(Some(&forms::field(&form, "return_to"))).unwrap_or_default();
    let again = |problem: Problem| {
        let (csrf, is_new) = forms::csrf_cookie(req);
        let status = problem.status;
        let tpl = Signup {
            csrf_token: sessions::csrf_token(&state, &csrf, None),
            return_to: return_to.clone(),
            name: name.chars().take(100).collect(),
            email: email.chars().take(254).collect(),
            form: FormState::with(problem, FIELDS),
        };
        forms::with_csrf_cookie(&state, render(&tpl, status), &csrf, is_new)
    };
    // The console asks for the login fields the API leaves optional.
    if email.trim().is_empty() {
        return again(Problem::new(
            Some("email"),
            "Email is required to sign in.",
            StatusCode::BAD_REQUEST,
        ));
    }
    if password.is_empty() {
        return again(Problem::new(
            Some("password"),
            "Password is required.",
            StatusCode::BAD_REQUEST,
        ));
    }
    let client_ip = context::origin()
        .ip
        .as_deref()
        .and_then(|ip| ip.parse().ok());
    let input = RegisterInput {
        client_ip,
        name: (!name.trim().is_empty()).then(|| name.clone()),
        email: Some(email.clone()),
        password: Some(SecretString::from(password)),
    };
    match sessions::sign_up(&state, input).await {
        Ok((registered, cookie, session)) => {
            let c = forms::Console::for_new_session(&state, req, session);
            let tpl = SignedUp {
                nav: c.nav("home"),
                api_key: token::reveal(&registered.key.key),
                key_id: registered.key.info.id.clone(),
                continue_to: if return_to.is_empty() {
                    "/".into()
                } else {
                    return_to.clone()
                },
            };
            let resp = render(&tpl, StatusCode::CREATED);
            c.finish(&state, forms::with_session_cookie(&state, resp, &cookie))
        }
        Err(e) => match forms::problem(e) {
            Ok(p) => again(p),
            Err(resp) => resp,
        },
    }
}
