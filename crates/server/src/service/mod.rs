//! Services hold the logic: validation, rules, transactions. They take plain
//! inputs and the authenticated principal, return domain values or
//! [`crate::error::Error`], and know nothing about HTTP.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod cleanup;
pub mod connect;
pub mod health;
pub mod idempotency;
pub mod keys;
pub mod memories;
pub mod oauth;
pub mod paging;
pub mod passwords;
pub mod rate_limit;
pub mod search_gate;
pub mod search_query;
pub mod search_rank;
pub mod sessions;
pub mod usage;
pub mod validate;
