//! Web login: email and password (bcrypt), sessions in the database, and the
//! CSRF tokens of every form.
//!
//! The session cookie holds a `mcpg_ws_` secret; the database holds its
//! SHA-256 under the public id, so a page view costs one primary-key read.
//! CSRF tokens follow the signed double-submit pattern: a random
//! `mcpgate_csrf` cookie, and in each form an HMAC under a key derived from
//! the master key. A cross-site page can neither read the cookie nor compute
//! the HMAC. A form rendered signed in carries the HMAC of the cookie *and*
//! the session id, so a cookie and token pair minted in one browser (an
//! attacker's, or one whose cookie an attacker planted) is worth nothing
//! beside another session; signed-out forms (login, sign-up) carry the HMAC
//! of the cookie alone, under a different key, so neither kind passes for
//! the other.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{
    audit,
    auth::Principal,
    rate_limit::{self, LimitKind},
    validate,
};
use crate::{
    context,
    entity::web_session,
    error::{Error, Result},
    scope::Scope,
    state::AppState,
    store,
    token::{self, Kind},
};

/// A valid bcrypt hash (cost 12) of a random string, verified against when
/// the email is unknown so both paths cost the same.
const DUMMY_HASH: &str = "$2b$12$C6UzMDM.H6dfI/f/IKxGhuPz1JXbZ0ZmzkF6O0W9FrZrRuAmeC5Zy";

/// One IP may try this many times the per-account limit across accounts.
const LOGIN_SPRAY_FACTOR: u32 = 5;
/// Attempts on one account from anywhere, as a multiple of the limit, before
/// each further attempt is slowed.
const LOGIN_EMAIL_FACTOR: u32 = 3;
/// How much a login on a much-tried account is slowed.
const LOGIN_EMAIL_SLOWDOWN: std::time::Duration = std::time::Duration::from_secs(1);

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user_id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// Why a login failed. The page says the same for an unknown email and a
/// wrong password.
#[derive(Debug)]
pub enum LoginError {
    InvalidCredentials,
    Other(Error),
}

impl From<Error> for LoginError {
    fn from(e: Error) -> Self {
        LoginError::Other(e)
    }
}

impl From<sea_orm::DbErr> for LoginError {
    fn from(e: sea_orm::DbErr) -> Self {
        LoginError::Other(e.into())
    }
}

async fn verify_password(state: &AppState, password: SecretString, hash: String) -> Result<bool> {
    super::passwords::verify(state, password, hash).await
}

/// Check an email and password; on success open a session and return the
/// cookie value.
pub async fn login(
    state: &AppState,
    email: &str,
    password: SecretString,
) -> std::result::Result<(SecretString, Session), LoginError> {
    let email = email.trim().to_lowercase();
    let origin = context::origin();
    let per_minute = state.config.rate_limit_login_per_minute;
    if email.is_empty() || email.len() > 254 || password.expose_secret().len() > 1024 {
        return Err(LoginError::InvalidCredentials);
    }
    // Lockout is per (client IP, email): a guesser is stopped on the account
    // it guesses at, but cannot lock the owner out from elsewhere. One IP
    // spraying many accounts has a wider limit of its own.
    if let Some(ip) = &origin.ip {
        rate_limit::enforce(
            state,
            LimitKind::Login,
            &format!("{ip} {email}"),
            per_minute,
        )?;
        rate_limit::enforce(
            state,
            LimitKind::Login,
            &format!("spray {ip}"),
            per_minute.saturating_mul(LOGIN_SPRAY_FACTOR),
        )?;
    }
    // Per account, from anywhere: a gentler slowdown that never refuses, so
    // a distributed guesser is slowed and the owner still gets in.
    if per_minute > 0
        && state
            .limiter
            .check(
                &format!("login-email:{email}"),
                per_minute.saturating_mul(LOGIN_EMAIL_FACTOR),
                state.clock.now(),
            )
            .is_err()
    {
        #[allow(
            clippy::disallowed_methods,
            reason = "the slowdown is the point: guessing one address costs wall time"
        )]
        tokio::time::sleep(LOGIN_EMAIL_SLOWDOWN).await;
    }
    let user = store::users::find_by_email(&state.db, &email).await?;
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_owned());
    let ok = verify_password(state, password, hash).await?
        && user.as_ref().is_some_and(|u| u.password_hash.is_some());
    let now = state.clock.now();
    let Some(user) = user.filter(|_| ok) else {
        if let Some(u) = store::users::find_by_email(&state.db, &email).await? {
            audit::record(
                &state.db,
                now,
                audit::Event {
                    user_id: u.id,
                    action: audit::AuditAction::LoginFailed,
                    credential_id: None,
                    target: None,
                    details: serde_json::json!({}),
                },
            )
            .await?;
        }
        state.metrics.login("failed");
        return Err(LoginError::InvalidCredentials);
    };
    let opened = open(state, &user, serde_json::json!({})).await?;
    state.metrics.login("ok");
    Ok(opened)
}

/// Open a session for `user` (after a checked password, a sign-up, or a
/// password change from the console) and record the sign-in.
pub(crate) async fn open(
    state: &AppState,
    user: &crate::entity::user::Model,
    details: serde_json::Value,
) -> Result<(SecretString, Session)> {
    let origin = context::origin();
    let now = state.clock.now();
    let new = token::generate(Kind::WebSession);
    let txn = crate::db::begin_write(&state.db).await?;
    store::sessions::insert(
        &txn,
        web_session::Model {
            id: new.id.clone(),
            secret_hash: new.hash.to_vec(),
            user_id: user.id,
            created_at: now,
            expires_at: now + chrono::Duration::seconds(state.config.session_ttl_secs as i64),
            ip: origin.ip.clone(),
            user_agent: origin.user_agent.clone(),
        },
    )
    .await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: user.id,
            action: audit::AuditAction::LoginSucceeded,
            credential_id: Some(&new.id),
            target: None,
            details,
        },
    )
    .await?;
    txn.commit().await?;
    Ok((
        new.key,
        Session {
            id: new.id,
            user_id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
        },
    ))
}

impl Session {
    /// The session as a credential: the person at the console acts on their
    /// own account with every scope, through the same services as the API.
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.user_id,
            credential: super::auth::Credential {
                kind: super::auth::CredentialKind::WebSession,
                id: self.id.clone(),
                scopes: crate::scope::Scopes::all(),
            },
        }
    }

    /// How the console names the person: email, else name, else the id.
    pub fn display_name(&self) -> String {
        self.email
            .clone()
            .or_else(|| self.name.clone())
            .unwrap_or_else(|| self.user_id.to_string())
    }
}

/// Sign up from the console: register the account (same rules and limits as
/// `POST /api/v1/users/register`) and open a session for it.
pub async fn sign_up(
    state: &AppState,
    input: super::accounts::RegisterInput,
) -> Result<(super::accounts::Registered, SecretString, Session)> {
    let registered = super::accounts::register(state, input).await?;
    let user = store::users::find(&state.db, registered.user_id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    let (cookie, session) = open(state, &user, serde_json::json!({ "sign_up": true })).await?;
    Ok((registered, cookie, session))
}

/// Change the password from the console (limited like a login by
/// [`set_password`]), the current password required; every session ends and
/// the person's own browser gets a fresh one.
pub async fn change_password(
    state: &AppState,
    session: &Session,
    current: SecretString,
    new: SecretString,
) -> Result<(SecretString, Session)> {
    if current.expose_secret().is_empty() {
        return Err(Error::validation("current_password", "is required"));
    }
    set_password(state, &session.principal(), None, Some(current), new).await?;
    let user = store::users::find(&state.db, session.user_id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    open(
        state,
        &user,
        serde_json::json!({ "after_password_change": true }),
    )
    .await
}

/// End every other session of the signed-in person; returns how many.
pub async fn end_other_sessions(state: &AppState, session: &Session) -> Result<u64> {
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let ended = store::sessions::delete_for_user_except(&txn, session.user_id, &session.id).await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: session.user_id,
            action: audit::AuditAction::SessionsEnded,
            credential_id: Some(&session.id),
            target: None,
            details: serde_json::json!({ "sessions_ended": ended }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(ended)
}

/// The session a cookie value names, if it is live.
pub async fn current(state: &AppState, cookie: &str) -> Result<Option<Session>> {
    let Ok(id) = token::parse(Kind::WebSession, cookie) else {
        return Ok(None);
    };
    let Some(row) = store::sessions::find(&state.db, id).await? else {
        return Ok(None);
    };
    if !token::hashes_match(&token::hash_secret(cookie), &row.secret_hash)
        || row.expires_at <= state.clock.now()
    {
        return Ok(None);
    }
    let Some(user) = store::users::find(&state.db, row.user_id).await? else {
        return Ok(None);
    };
    Ok(Some(Session {
        id: row.id,
        user_id: user.id,
        email: user.email,
        name: user.name,
    }))
}

/// End a session.
pub async fn logout(state: &AppState, session: &Session) -> Result<()> {
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    store::sessions::delete(&txn, &session.id).await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: session.user_id,
            action: audit::AuditAction::Logout,
            credential_id: Some(&session.id),
            target: None,
            details: serde_json::json!({}),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// A fresh value for the CSRF cookie.
pub fn new_csrf_cookie() -> String {
    token::random_base62(32)
}

/// The form token that goes with a CSRF cookie value: bound to the session
/// `session_id` on a page rendered signed in, to the cookie alone on one
/// rendered signed out.
pub fn csrf_token(state: &AppState, cookie: &str, session_id: Option<&str>) -> String {
    use hmac::Mac;
    let label = match session_id {
        None => "mcpgate csrf v1",
        Some(_) => "mcpgate csrf session v1",
    };
    let key = state.master_key.derive(label);
    let mut mac = crate::crypto::hmac_sha256(key.as_slice());
    match session_id {
        None => mac.update(cookie.as_bytes()),
        Some(id) => {
            // Length-prefixed, so no (cookie, id) pair spells another.
            mac.update(&(cookie.len() as u64).to_be_bytes());
            mac.update(cookie.as_bytes());
            mac.update(id.as_bytes());
        }
    }
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// True when a form's token matches the request's CSRF cookie and, for a
/// form rendered signed in, the session `session_id`.
pub fn csrf_valid(
    state: &AppState,
    cookie: Option<&str>,
    session_id: Option<&str>,
    form_token: Option<&str>,
) -> bool {
    match (cookie, form_token) {
        (Some(c), Some(t)) if c.len() >= 32 => {
            token::hashes_match(csrf_token(state, c, session_id).as_bytes(), t.as_bytes())
        }
        _ => false,
    }
}

/// `PUT /api/v1/users/me/password`: set or change the web-login password.
/// Changing one needs the current password; every web session ends.
pub async fn set_password(
    state: &AppState,
    principal: &Principal,
    email: Option<String>,
    current: Option<SecretString>,
    new: SecretString,
) -> Result<DateTime<Utc>> {
    principal.require(Scope::KeysWrite)?;
    // A password check costs a quarter CPU-second: limited like a login,
    // per client IP and per account, whichever face it comes through.
    if let Some(ip) = &context::origin().ip {
        rate_limit::enforce(
            state,
            LimitKind::Login,
            ip,
            state.config.rate_limit_login_per_minute,
        )?;
    }
    rate_limit::enforce(
        state,
        LimitKind::Login,
        &format!("user:{}", principal.user_id),
        state.config.rate_limit_login_per_minute,
    )?;
    let user = store::users::find(&state.db, principal.user_id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    let new_email = match (&user.email, email) {
        (Some(_), Some(_)) => {
            return Err(Error::validation(
                "email",
                "this account already has an email; send only the password",
            ))
        }
        (None, None) => {
            return Err(Error::validation(
                "email",
                "this account has no email yet: send one to log in with",
            ))
        }
        (None, Some(e)) => Some(validate::email("email", &e)?),
        (Some(_), None) => None,
    };
    if let Some(hash) = user.password_hash.clone() {
        let current = current.ok_or_else(|| {
            Error::validation(
                "current_password",
                "this account has a password: send the current one to change it",
            )
        })?;
        if !verify_password(state, current, hash).await? {
            return Err(Error::validation(
                "current_password",
                "does not match the current password",
            ));
        }
    }
    let hash = super::accounts::hash_password(state, new).await?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    if let Err(e) = store::users::set_password(&txn, user.id, new_email, hash).await {
        return Err(if store::is_unique_violation(&e) {
            Error::Conflict {
                code: "email_taken",
                message: "An account with this email already exists.".into(),
            }
        } else {
            e.into()
        });
    }
    let ended = store::sessions::delete_for_user(&txn, user.id).await?;
    audit::record(&txn, now, audit::Event {
        user_id: user.id,
        action: audit::AuditAction::PasswordChanged,
        credential_id: Some(&principal.credential.id),
        target: None,
        details: serde_json::json!({ "first_password": user.password_hash.is_none(), "sessions_ended": ended }),
    })
    .await?;
    txn.commit().await?;
    Ok(now)
}
