//! Queries on `web_sessions`: one primary-key read per page view.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::entity::web_session::{self, Column, Entity};

pub async fn insert(db: &impl ConnectionTrait, row: web_session::Model) -> Result<(), DbErr> {
    Entity::insert(web_session::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<web_session::Model>, DbErr> {
    Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn delete(db: &impl ConnectionTrait, id: &str) -> Result<u64, DbErr> {
    Ok(Entity::delete_by_id(id.to_owned())
        .exec(db)
        .await?
        .rows_affected)
}

/// End every session of a user (after a password change).
pub async fn delete_for_user(db: &impl ConnectionTrait, user_id: Uuid) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec(db)
        .await?
        .rows_affected)
}

/// End every session of a user but one (the browser asking).
pub async fn delete_for_user_except(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    keep: &str,
) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Id.ne(keep))
        .exec(db)
        .await?
        .rows_affected)
}

/// Delete up to `limit` expired sessions.
pub async fn delete_expired(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    use sea_orm::sea_query::Query;
    let batch = Query::select()
        .column(Column::Id)
        .from(Entity)
        .and_where(Column::ExpiresAt.lte(now))
        .limit(limit)
        .to_owned();
    Ok(Entity::delete_many()
        .filter(Column::Id.in_subquery(batch))
        .exec(db)
        .await?
        .rows_affected)
}
