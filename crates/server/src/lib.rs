//! mcpgate-server: accounts, API keys and (in later modules) OAuth, connections
//! and memory behind one OpenAPI-first HTTP gateway.
//!
//! Layers, from the edge in: [`http`] (middleware, request ids, error
//! envelope) -> [`api`] (one `#[OpenApi]` group per file; thin handlers) ->
//! [`service`] (rules, validation, transactions) -> [`store`] (every query)
//! -> [`entity`] (rows). Errors are [`error::Error`] until `api::error` maps
//! them to HTTP.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod crypto;
pub mod db;
pub mod entity;
pub mod error;
pub mod http;
pub mod http_client;
pub mod identity;
#[allow(
    clippy::disallowed_methods,
    reason = "connection timeouts and the accept back-off are wall time by nature"
)]
pub mod listener;
pub mod master_key;
pub mod mcp;
pub mod metrics;
pub mod scope;
pub mod server;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod vocabulary;
pub mod web;

#[cfg(test)]
mod tidy;
