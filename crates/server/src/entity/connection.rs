//! `connections` (schema in mcpgate-migration `m20261122_000005_connections`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    /// `connected`, `refresh_failed` or `reauthorization_required`.
    pub status: String,
    pub external_account_id: Option<String>,
    pub scopes: String,
    pub token_type: String,
    /// Encryption envelope, never plaintext.
    pub access_token_enc: String,
    /// Encryption envelope, never plaintext.
    pub refresh_token_enc: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    pub connected_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_refreshed_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub refresh_claimed_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
