use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memory_tags")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub memory_seq: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tag: String,
    pub user_id: Uuid,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
