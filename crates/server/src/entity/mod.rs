//! SeaORM entities: the rows as the database stores them. The schema itself
//! is owned by `mcpgate-migration`; these mirror it and never create tables.

pub mod api_key;
pub mod audit_event;
pub mod memory;
pub mod memory_tag;
pub mod user;
