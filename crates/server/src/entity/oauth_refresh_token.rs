//! `oauth_refresh_tokens` (schema in mcpgate-migration `m20261122_000004_oauth`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub secret_hash: Vec<u8>,
    pub grant_id: Uuid,
    /// The access token issued in the same response.
    pub access_token_id: String,
    pub scopes: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Set once, by the conditional update that rotates this token.
    pub rotated_at: Option<DateTimeUtc>,
    pub replaced_by: Option<String>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
