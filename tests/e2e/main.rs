//! The end-to-end suite: one binary, one module per area. Every test runs on
//! SQLite and on Postgres (see `mcpgate_e2e::e2e!`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite: a failed unwrap is a failed test, with its message"
)]

mod audit;
mod auth;
mod browser;
mod clients;
mod connect;
mod csrf;
mod docs;
mod errors;
mod idempotency;
mod identity;
mod keys;
mod limits;
mod logs;
mod mcp;
mod memory;
mod memory_search_bounds;
mod metrics;
mod oauth;
mod oauth_security;
mod outage;
mod proxy;
mod readme;
mod registration;
mod rest_scopes;
mod sdk;
mod search;
mod slow_clients;
mod spec_requests;
mod text_input;
mod usage;

pub use mcpgate_client::{types, ClientInfo};
pub use mcpgate_e2e::{e2e, expect_error, Backend, TestServer};
