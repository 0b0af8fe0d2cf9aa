//! bcrypt, bounded. Each hash or check costs about a quarter of a CPU-second
//! (cost 12), so at most one per core runs at a time; the rest wait their
//! turn briefly and are then refused with 429, so a flood of password
//! attempts waits or is refused instead of starving every other request.
//! (The per-account and per-IP limits in front of each check are the
//! callers': login, password change.)

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::{
    error::{Error, Result},
    state::AppState,
};

/// bcrypt cost for passwords, fixed by the design.
pub const BCRYPT_COST: u32 = 12;
/// How long a password check waits for a free core before it is refused.
const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// The bound on concurrent bcrypt computations: one per core.
pub fn new_gate() -> Semaphore {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Semaphore::new(cores)
}

async fn gated<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let _permit = match tokio::time::timeout(QUEUE_WAIT, state.bcrypt.acquire()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) => return Err(Error::internal("password gate closed")),
        Err(_) => {
            state.metrics.login("busy");
            return Err(Error::RateLimited {
                kind: "password check",
                retry_after_secs: 1,
            });
        }
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::caused_by("password task", e))
}

/// Hash a password (its rules are checked by the caller).
pub async fn hash(state: &AppState, password: SecretString) -> Result<String> {
    gated(state, move || {
        bcrypt::hash(password.expose_secret(), BCRYPT_COST)
    })
    .await?
    .map_err(|e| Error::caused_by("password hashing", e))
}

/// Check a password against a stored hash.
pub async fn verify(state: &AppState, password: SecretString, hash: String) -> Result<bool> {
    gated(state, move || {
        bcrypt::verify(password.expose_secret(), &hash).unwrap_or(false)
    })
    .await
}
