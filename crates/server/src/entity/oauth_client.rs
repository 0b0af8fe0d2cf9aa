//! `oauth_clients` (schema in mcpgate-migration `m20261122_000004_oauth`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_clients")]
pub struct Model {
    /// The client_id: `mcpg_ci_…` for registered clients, the https URL of
    /// its metadata document for a CIMD client.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// SHA-256 of the client secret; `None` for public clients.
    pub secret_hash: Option<Vec<u8>>,
    pub name: String,
    /// `dynamic`, `operator` or `metadata_document`.
    pub kind: String,
    /// JSON array of exact redirect URIs.
    pub redirect_uris: String,
    /// Space-separated scopes the client may request.
    pub scopes: String,
    /// Space-separated grant types.
    pub grant_types: String,
    pub token_endpoint_auth_method: String,
    /// The account `client_credentials` tokens act for.
    pub owner_user_id: Option<Uuid>,
    /// The API key that registered an owned client: revoking it deletes the
    /// client (it was that key's delegation).
    pub owner_key_id: Option<String>,
    pub client_uri: Option<String>,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    /// When a cached metadata document must be fetched again.
    pub metadata_expires_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
