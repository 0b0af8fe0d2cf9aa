//! Queries on `users`.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use uuid::Uuid;

use crate::entity::user;

pub struct NewUser {
    pub id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(db: &impl ConnectionTrait, new: NewUser) -> Result<(), sea_orm::DbErr> {
    user::Entity::insert(user::ActiveModel {
        id: Set(new.id),
        name: Set(new.name),
        email: Set(new.email),
        password_hash: Set(new.password_hash),
        created_at: Set(new.created_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<user::Model>, sea_orm::DbErr> {
    user::Entity::find_by_id(id).one(db).await
}
