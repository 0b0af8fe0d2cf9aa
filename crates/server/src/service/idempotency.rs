//! Writes that are safe to retry: the `Idempotency-Key` of a create.
//!
//! The first request with a key claims it by inserting an in-progress row
//! (the unique (user, key) index decides a race between replicas), runs the
//! effect, then stores the response. A later request from the same user with
//! the same key and the same request (a keyed HMAC of method, path and body; after
//! `rotate-key` an older key's fingerprint no longer matches, so a retry across
//! a rotation is refused as reused rather than replayed) gets
//! that response back, byte for byte, with no second effect, for 24 h:
//!
//! - same key, different request: 409 `idempotency_key_reused`;
//! - same key while the first is in flight: 409 `idempotency_key_in_progress`
//!   (with `Retry-After: 1`);
//! - the first failed with an error that changed nothing (a 4xx): the claim
//!   is deleted, so the client may fix the request and retry with the key;
//! - the first failed part-way (a 5xx, e.g. the database went away): its
//!   outcome is unknown, so the key stays claimed; after [`IN_FLIGHT_SECS`]
//!   a retry gets 409 `idempotency_key_outcome_unknown` instead of acting a
//!   second time.
//!
//! Stored bodies are encrypted with the keyring (bound to table, row and
//! field): some of them carry a secret shown once (a new or rotated API key),
//! which a replay returns again to the same user and nobody else.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::auth::Principal;
use crate::{
    crypto::Binding,
    entity::idempotency_key,
    error::{Error, Result},
    scope::Scope,
    state::AppState,
    store,
};

/// The header (and the field named by its validation errors).
pub const FIELD: &str = "Idempotency-Key";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// How long a key and its response are kept.
pub const TTL_HOURS: i64 = 24;
/// How long a claim without a response counts as "in flight".
pub const IN_FLIGHT_SECS: i64 = 60;
/// The conflict code of a key whose first request is still running; the edge
/// adds `Retry-After: 1`.
pub const IN_PROGRESS: &str = "idempotency_key_in_progress";
pub const REUSED: &str = "idempotency_key_reused";
pub const OUTCOME_UNKNOWN: &str = "idempotency_key_outcome_unknown";

const TABLE: &str = "idempotency_keys";
const BODY_FIELD: &str = "response_body";

/// What identifies a request for replay: its method, path and body.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
}

impl Request<'_> {
    /// Keyed, because a body may hold a secret (a password change).
    fn fingerprint(&self, keyring: &crate::crypto::Keyring) -> Vec<u8> {
        keyring.fingerprint(&[self.method.as_bytes(), self.path.as_bytes(), self.body])
    }
}

/// A key is 1-255 printable ASCII characters (space included).
pub fn validate_key(key: &str) -> Result<&str> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::validation(
            FIELD,
            format!("must be 1-{MAX_KEY_LEN} characters"),
        ));
    }
    if !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::validation(
            FIELD,
            "must contain only printable ASCII characters",
        ));
    }
    Ok(key)
}

/// Run `effect` at most once per (user, key): a response of `status` and the
/// JSON body `effect` renders, or the stored body of the first request with
/// this key. Without a key, `effect` simply runs. `scope` is checked before
/// anything is replayed, so a weaker credential of the same user cannot read
/// a stored response.
pub async fn run<F>(
    state: &AppState,
    principal: &Principal,
    scope: Scope,
    key: Option<&str>,
    request: Request<'_>,
    status: u16,
    effect: F,
) -> Result<Vec<u8>>
where
    F: std::future::Future<Output = Result<Vec<u8>>>,
{
    let Some(key) = key else {
        return effect.await;
    };
    let key = validate_key(key)?;
    principal.require(scope)?;
    let claim = match begin(
        state,
        principal.user_id,
        key,
        request.fingerprint(&state.keyring),
        false,
    )
    .await?
    {
        Begin::Replay(body) => return Ok(body),
        Begin::Claimed(claim) => claim,
    };
    match effect.await {
        Ok(body) => {
            if let Err(e) = complete(state, &claim, status, &body).await {
                // The effect happened: answer it. The key stays claimed, so a
                // retry is refused instead of acting twice.
                tracing::error!(request_id = %crate::context::request_id(), error = %e, "storing the idempotent response failed");
            }
            Ok(body)
        }
        Err(e) => {
            if changed_nothing(&e) {
                if let Err(d) = store::idempotency::delete_in_progress(&state.db, claim.id).await {
                    tracing::warn!(error = %d, "releasing an idempotency key failed");
                }
            }
            Err(e)
        }
    }
}

/// An in-progress row this request inserted.
struct Claim {
    id: Uuid,
}

enum Begin {
    Replay(Vec<u8>),
    Claimed(Claim),
}

async fn begin(
    state: &AppState,
    user_id: Uuid,
    key: &str,
    hash: Vec<u8>,
    retried: bool,
) -> Result<Begin> {
    let now = state.clock.now();
    let id = Uuid::now_v7();
    let inserted = store::idempotency::insert(
        &state.db,
        idempotency_key::Model {
            id,
            user_id,
            idempotency_key: key.to_owned(),
            request_hash: hash.clone(),
            response_status: None,
            response_body: None,
            created_at: now,
            completed_at: None,
        },
    )
    .await;
    match inserted {
        Ok(()) => return Ok(Begin::Claimed(Claim { id })),
        Err(e) if store::is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(row) = store::idempotency::find(&state.db, user_id, key).await? else {
        // Released (or purged) between the insert and the read.
        return Err(in_progress());
    };
    if row.created_at <= cutoff(now) && !retried {
        // Expired but not purged yet: the key is free again.
        store::idempotency::delete(&state.db, row.id).await?;
        return Box::pin(begin(state, user_id, key, hash, true)).await;
    }
    existing(state, row, &hash, now)
}

fn existing(
    state: &AppState,
    row: idempotency_key::Model,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Begin> {
    if row.request_hash != hash {
        return Err(Error::Conflict {
            code: REUSED,
            message: format!(
                "This {FIELD} was already used with a different request (method, path or body); \
                 use a new key for a new request."
            ),
        });
    }
    let Some(envelope) = row.response_body else {
        if row.created_at <= now - Duration::seconds(IN_FLIGHT_SECS) {
            return Err(Error::Conflict {
                code: OUTCOME_UNKNOWN,
                message: format!(
                    "The first request with this {FIELD} failed part-way and may or may not have \
                     taken effect; check, then retry with a new key."
                ),
            });
        }
        return Err(in_progress());
    };
    let row_id = row.id.to_string();
    let body = state
        .keyring
        .decrypt(
            &envelope,
            &Binding {
                table: TABLE,
                row: &row_id,
                field: BODY_FIELD,
            },
        )
        .map_err(|e| Error::caused_by(format!("stored idempotent response {row_id}"), e))?;
    Ok(Begin::Replay(body.expose_secret().as_bytes().to_vec()))
}

fn in_progress() -> Error {
    Error::Conflict {
        code: IN_PROGRESS,
        message: format!(
            "A request with this {FIELD} is still being processed; retry in a second."
        ),
    }
}

async fn complete(state: &AppState, claim: &Claim, status: u16, body: &[u8]) -> Result<()> {
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| Error::internal("idempotent response is not UTF-8"))?;
    let row_id = claim.id.to_string();
    let envelope = state.keyring.encrypt(
        &SecretString::from(text),
        &Binding {
            table: TABLE,
            row: &row_id,
            field: BODY_FIELD,
        },
    );
    store::idempotency::complete(
        &state.db,
        claim.id,
        i32::from(status),
        envelope,
        state.clock.now(),
    )
    .await?;
    Ok(())
}

/// True for the errors a request fails with before changing anything (the
/// 4xx family): the key is released so the client may retry with it.
fn changed_nothing(e: &Error) -> bool {
    matches!(
        e,
        Error::Validation { .. }
            | Error::MissingCredentials
            | Error::InvalidCredentials(_)
            | Error::InvalidAccessToken(_)
            | Error::InsufficientScope { .. }
            | Error::NotFound(_)
            | Error::Conflict { .. }
            | Error::PreconditionFailed(_)
            | Error::RateLimited { .. }
            | Error::RegistrationClosed
            | Error::PayloadTooLarge { .. }
    )
}

/// Keys created before this are purged (clean-up).
pub(crate) fn cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::hours(TTL_HOURS)
}
