//! `/account/keys`: list, create (secret shown once), rotate with a grace
//! period, revoke.

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Path},
    Request, Response,
};

use crate::{
    error::Error,
    scope::Scope,
    service::keys::{self, CreatedKey, KeyInfo},
    state::AppState,
    token,
    web::{
        forms::{self, error_page, when, Console, ConsoleForm, FormState, Problem},
        see_other,
        templates::{render, Nav},
    },
};

const FIELDS: &[&str] = &["name", "scopes", "expires_in_days"];

/// Grace periods offered when rotating, in seconds, with their words.
const GRACE: [(i64, &str); 4] = [
    (0, "none: the old secret stops at once"),
    (300, "5 minutes"),
    (3600, "1 hour"),
    (86_400, "1 day"),
];

const NOTICES: &[(&str, &str)] = &[("revoked", "The key was revoked. It stops working at once.")];

struct Row {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    last_used: String,
    usage: u64,
    expires: String,
    status: &'static str,
    active: bool,
}

/// A secret to show once.
struct Revealed {
    heading: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    nav: Nav,
    rows: Vec<Row>,
    form: FormState,
    name: String,
    checked: Vec<&'static str>,
    expires: String,
    scopes: Vec<(&'static str, &'static str)>,
    grace: Vec<(i64, &'static str)>,
    revealed: Option<Revealed>,
    notice: Option<&'static str>,
    problem: Option<String>,
}

impl KeysPage {
    fn is_checked(&self, scope: &str) -> bool {
        self.checked.contains(&scope)
    }
}

fn row(k: KeyInfo, now: chrono::DateTime<chrono::Utc>) -> Row {
    let status = if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    Row {
        scopes: k.scopes.names().join(" "),
        created: when(k.created_at),
        last_used: k.last_used_at.map(when).unwrap_or_else(|| "never".into()),
        usage: k.usage_count,
        expires: k.expires_at.map(when).unwrap_or_else(|| "never".into()),
        status,
        active: status == "active",
        id: k.id,
        name: k.name,
        prefix: k.prefix,
    }
}

struct Extra {
    form: FormState,
    name: String,
    checked: Vec<&'static str>,
    expires: String,
    revealed: Option<Revealed>,
    notice: Option<&'static str>,
    problem: Option<String>,
}

impl Default for Extra {
    fn default() -> Self {
        Self {
            form: FormState::clean(FIELDS, false),
            name: String::new(),
            checked: Scope::ALL.iter().map(|s| s.as_str()).collect(),
            expires: String::new(),
            revealed: None,
            notice: None,
            problem: None,
        }
    }
}

async fn show(state: &AppState, c: &Console, extra: Extra, status: StatusCode) -> Response {
    let keys = match keys::list(state, &c.principal()).await {
        Ok(k) => k,
        Err(e) => return error_page(e),
    };
    let now = state.clock.now();
    let tpl = KeysPage {
        nav: c.nav("keys"),
        rows: keys.into_iter().map(|k| row(k, now)).collect(),
        form: extra.form,
        name: extra.name,
        checked: extra.checked,
        expires: extra.expires,
        scopes: Scope::ALL
            .iter()
            .map(|s| (s.as_str(), s.description()))
            .collect(),
        grace: GRACE.to_vec(),
        revealed: extra.revealed,
        notice: extra.notice,
        problem: extra.problem,
    };
    c.finish(state, render(&tpl, status))
}

fn revealed(heading: String, k: &CreatedKey) -> Revealed {
    Revealed {
        heading,
        secret: token::reveal(&k.key),
    }
}

#[handler]
pub async fn page(c: Console, req: &Request, state: Data<&AppState>) -> Response {
    let extra = Extra {
        notice: super::notice(req, NOTICES),
        ..Extra::default()
    };
    show(&state, &c, extra, StatusCode::OK).await
}

#[handler]
pub async fn create(ConsoleForm(c, form): ConsoleForm, state: Data<&AppState>) -> Response {
    let name = forms::field(&form, "name");
    let expires = forms::field(&form, "expires_in_days");
    let chosen = form.all("scopes");
    let checked: Vec<&'static str> = Scope::ALL
        .iter()
        .map(|s| s.as_str())
        .filter(|s| chosen.iter().any(|c| c == s))
        .collect();
    let keep = |problem: Problem| Extra {
        form: FormState::with(problem, FIELDS),
        name: name.chars().take(100).collect(),
        checked: checked.clone(),
        expires: expires.chars().take(10).collect(),
        ..Extra::default()
    };
    let expires_in_days = match expires.trim() {
        "" => None,
        v => match v.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => {
                let p = Problem::new(
                    Some("expires_in_days"),
                    "Expiry must be a whole number of days, or empty for none.",
                    StatusCode::BAD_REQUEST,
                );
                let status = p.status;
                return show(&state, &c, keep(p), status).await;
            }
        },
    };
    if chosen.is_empty() {
        let p = Problem::new(
            Some("scopes"),
            "Choose at least one scope.",
            StatusCode::BAD_REQUEST,
        );
        let status = p.status;
        return show(&state, &c, keep(p), status).await;
    }
    let input = keys::CreateInput {
        name: name.clone(),
        scopes: Some(chosen.clone()),
        expires_in_days,
    };
    match keys::create(&state, &c.principal(), input).await {
        Ok(k) => {
            let extra = Extra {
                revealed: Some(revealed(format!("Key “{}” created", k.info.name), &k)),
                ..Extra::default()
            };
            show(&state, &c, extra, StatusCode::CREATED).await
        }
        Err(e) => match forms::problem(e) {
            Ok(p) => {
                let status = p.status;
                show(&state, &c, keep(p), status).await
            }
            Err(resp) => resp,
        },
    }
}

/// A problem with one key's action, shown above the list.
async fn action_failed(state: &AppState, c: &Console, e: Error) -> Response {
    match forms::problem(e) {
        Ok(p) => {
            let status = p.status;
            let extra = Extra {
                problem: Some(p.message),
                ..Extra::default()
            };
            show(state, c, extra, status).await
        }
        Err(resp) => resp,
    }
}

#[handler]
pub async fn rotate(
    ConsoleForm(c, form): ConsoleForm,
    Path(key_id): Path<String>,

    state: Data<&AppState>,
) -> Response {
    let grace = forms::field(&form, "grace_seconds").parse::<i64>().ok();
    match keys::rotate(&state, &c.principal(), &key_id, grace).await {
        Ok(k) => {
            let extra = Extra {
                revealed: Some(revealed(format!("New secret for “{}”", k.info.name), &k)),
                ..Extra::default()
            };
            show(&state, &c, extra, StatusCode::OK).await
        }
        Err(e) => action_failed(&state, &c, e).await,
    }
}

#[handler]
pub async fn revoke(
    ConsoleForm(c, _): ConsoleForm,
    Path(key_id): Path<String>,

    state: Data<&AppState>,
) -> Response {
    match keys::revoke(&state, &c.principal(), &key_id).await {
        Ok(()) => see_other("/account/keys?done=revoked"),
        Err(e) => action_failed(&state, &c, e).await,
    }
}
