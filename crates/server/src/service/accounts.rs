//! Accounts: registration, the caller's own profile, and the operator's
//! password reset.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{
    audit,
    auth::{Credential, Principal},
    keys::{self, CreatedKey},
    rate_limit::{self, LimitKind},
    validate,
};
use crate::{
    config::RegistrationPolicy,
    error::{Error, Result},
    scope::Scopes,
    state::AppState,
    store,
};

/// bcrypt cost for passwords, fixed by the design.
pub use super::passwords::BCRYPT_COST;
/// Shortest accepted password, in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// bcrypt reads at most 72 bytes; longer passwords are refused rather than
/// silently truncated.
pub const PASSWORD_MAX_BYTES: usize = 72;

pub struct RegisterInput {
    /// The client's IP, for the registration rate limit.
    pub client_ip: Option<std::net::IpAddr>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub password: Option<SecretString>,
}

pub struct Registered {
    pub user_id: Uuid,
    pub key: CreatedKey,
}

/// Create a user and its first API key (holding every scope), atomically.
pub async fn register(state: &AppState, input: RegisterInput) -> Result<Registered> {
    if state.config.registration == RegistrationPolicy::Closed {
        return Err(Error::RegistrationClosed);
    }
    if let Some(ip) = input.client_ip {
        rate_limit::enforce(
            state,
            LimitKind::Registration,
            &ip.to_string(),
            state.config.rate_limit_registration_per_minute,
        )?;
    }
    let name = validate::optional_text("name", input.name.as_deref(), validate::NAME_MAX_CHARS)?;
    let email = input
        .email
        .as_deref()
        .map(|e| validate::email("email", e))
        .transpose()?;
    let with_password = input.password.is_some();
    let password_hash = match input.password {
        None => None,
        Some(password) => {
            if email.is_none() {
                return Err(Error::validation(
                    "password",
                    "a password needs an email to log in with; send both",
                ));
            }
            Some(hash_password(state, password).await?)
        }
    };
    let now = state.clock.now();
    let user_id = Uuid::now_v7();
    let txn = crate::db::begin_write(&state.db).await?;
    let inserted = store::users::insert(
        &txn,
        store::users::NewUser {
            id: user_id,
            name,
            email,
            password_hash,
            created_at: now,
        },
    )
    .await;
    if let Err(e) = inserted {
        return Err(if store::is_unique_violation(&e) {
            email_taken()
        } else {
            e.into()
        });
    }
    let key = keys::insert_new(&txn, user_id, "default".into(), Scopes::all(), None, now).await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id,
            action: audit::AuditAction::UserRegistered,
            credential_id: None,
            target: Some(&key.info.id),
            details: serde_json::json!({ "first_key": key.info.id, "with_password": with_password }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Registered { user_id, key })
}

fn email_taken() -> Error {
    Error::Conflict {
        code: "email_taken",
        message: "An account with this email already exists.".into(),
    }
}

pub(crate) async fn hash_password(state: &AppState, password: SecretString) -> Result<String> {
    let len = password.expose_secret().len();
    let chars = password.expose_secret().chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(Error::validation(
            "password",
            format!("must be at least {PASSWORD_MIN_CHARS} characters"),
        ));
    }
    if len > PASSWORD_MAX_BYTES {
        return Err(Error::validation(
            "password",
            format!("must be at most {PASSWORD_MAX_BYTES} bytes"),
        ));
    }
    super::passwords::hash(state, password).await
}

/// What a password reset changed.
#[derive(Debug)]
pub struct PasswordReset {
    pub user_id: Uuid,
    /// Web sessions of the account that were ended.
    pub sessions_ended: u64,
}

/// `mcpgate admin users reset-password`: the operator sets a new web-login
/// password for the account with `email` (same rules as the API), every web
/// session of the account ends, and the change is audited, in one
/// transaction. An unknown email is [`Error::NotFound`] and changes nothing.
pub async fn reset_password(
    state: &AppState,
    email: &str,
    password: SecretString,
) -> Result<PasswordReset> {
    let email = email.trim().to_lowercase();
    let user = store::users::find_by_email(&state.db, &email)
        .await?
        .ok_or(Error::NotFound("account"))?;
    let hash = hash_password(state, password).await?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    store::users::set_password(&txn, user.id, None, hash).await?;
    let sessions_ended = store::sessions::delete_for_user(&txn, user.id).await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: user.id,
            action: audit::AuditAction::PasswordReset,
            credential_id: None,
            target: None,
            details: serde_json::json!({
                "by": "operator",
                "first_password": user.password_hash.is_none(),
                "sessions_ended": sessions_ended,
            }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(PasswordReset {
        user_id: user.id,
        sessions_ended,
    })
}

pub struct Me {
    pub user_id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub credential: Credential,
}

/// The caller's account and the credential it used.
pub async fn me(state: &AppState, principal: &Principal) -> Result<Me> {
    let user = store::users::find(&state.db, principal.user_id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    Ok(Me {
        user_id: user.id,
        name: user.name,
        email: user.email,
        created_at: user.created_at,
        credential: principal.credential.clone(),
    })
}
