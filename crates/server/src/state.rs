//! The application state every handler receives as `Data<&AppState>`.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    clock::Clock,
    config::Config,
    master_key::MasterKey,
    service::{rate_limit::RateLimiter, usage::UsageTracker},
};

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub usage: Arc<UsageTracker>,
    pub master_key: Arc<MasterKey>,
    pub limiter: Arc<RateLimiter>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Encryption of upstream tokens (current key, and the previous one
    /// during a rotation).
    pub keyring: Arc<crate::crypto::Keyring>,
    /// The signing keys of identity assertions (`/.well-known/jwks.json`).
    pub identity: Arc<crate::identity::IdentityKeys>,
    /// Connection providers.
    pub catalog: Arc<crate::service::catalog::Catalog>,
    /// The bound on concurrent bcrypt computations (`service::passwords`).
    pub bcrypt: Arc<tokio::sync::Semaphore>,
    /// The bound on concurrent searches per account (`service::search_gate`).
    pub search_gate: Arc<crate::service::search_gate::SearchGate>,
}
