//! `idempotency_keys` (schema in mcpgate-migration `m20261203_000007_idempotency_keys`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub idempotency_key: String,
    /// SHA-256 of method, path and body of the first request.
    pub request_hash: Vec<u8>,
    /// The first response's status; `None` while it is in flight.
    pub response_status: Option<i32>,
    /// Encryption envelope of the first response's body.
    pub response_body: Option<String>,
    pub created_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
