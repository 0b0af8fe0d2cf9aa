use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub at: DateTimeUtc,
    /// The account the event belongs to.
    pub user_id: Option<Uuid>,
    /// e.g. `key.created`.
    pub action: String,
    /// The credential that acted (public id, never a secret).
    pub credential_id: Option<String>,
    /// What was acted on, e.g. a key id.
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// JSON object with event-specific details (never secrets).
    pub details: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
