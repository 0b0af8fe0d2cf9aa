//! SeaORM entities: the rows as the database stores them. The schema itself
//! is owned by `mcpgate-migration`; these mirror it and never create tables.

pub mod api_key;
pub mod audit_event;
pub mod connect_state;
pub mod connection;
pub mod idempotency_key;
pub mod memory;
pub mod memory_tag;
pub mod oauth_access_token;
pub mod oauth_client;
pub mod oauth_code;
pub mod oauth_consent;
pub mod oauth_grant;
pub mod oauth_refresh_token;
pub mod user;
pub mod web_session;
