use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// The 16-character public id embedded in the key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: Uuid,
    pub name: String,
    /// Space-separated scope names.
    pub scopes: String,
    /// SHA-256 of the current key (a digest, not the secret).
    pub secret_hash: Vec<u8>,
    /// SHA-256 of the key replaced by the last rotation, while its grace lasts.
    pub previous_secret_hash: Option<Vec<u8>>,
    pub previous_expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub rotated_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub usage_count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
