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

/// The account with this (lower-cased) email.
pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<user::Model>, sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await
}

/// Set the password hash (and the email, when given).
pub async fn set_password(
    db: &impl ConnectionTrait,
    id: Uuid,
    email: Option<String>,
    password_hash: String,
) -> Result<(), sea_orm::DbErr> {
    let mut model = user::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id),
        password_hash: Set(Some(password_hash)),
        ..Default::default()
    };
    if let Some(email) = email {
        model.email = Set(Some(email));
    }
    user::Entity::update(model).exec(db).await?;
    Ok(())
}
