//! Queries on `idempotency_keys`: one indexed read or write per step of a
//! retried request.

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, Query},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
};
use uuid::Uuid;

use crate::entity::idempotency_key::{self, Column, Entity};

/// Insert an in-progress row; a unique violation means the key is taken.
pub async fn insert(db: &impl ConnectionTrait, row: idempotency_key::Model) -> Result<(), DbErr> {
    Entity::insert(idempotency_key::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    key: &str,
) -> Result<Option<idempotency_key::Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::IdempotencyKey.eq(key))
        .one(db)
        .await
}

/// Record the response of an in-progress row.
pub async fn complete(
    db: &impl ConnectionTrait,
    id: Uuid,
    status: i32,
    body: String,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(Entity::update_many()
        .col_expr(Column::ResponseStatus, Expr::value(Some(status)))
        .col_expr(Column::ResponseBody, Expr::value(Some(body)))
        .col_expr(Column::CompletedAt, Expr::value(Some(at)))
        .filter(Column::Id.eq(id))
        .filter(Column::ResponseStatus.is_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// Delete an in-progress row (the request failed without effect).
pub async fn delete_in_progress(db: &impl ConnectionTrait, id: Uuid) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::ResponseStatus.is_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// Delete one row (expired, found before the purge got to it).
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<u64, DbErr> {
    Ok(Entity::delete_by_id(id).exec(db).await?.rows_affected)
}

/// Delete up to `limit` rows created before `cutoff`.
pub async fn delete_created_before(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    let batch = Query::select()
        .column(Column::Id)
        .from(Entity)
        .and_where(Column::CreatedAt.lt(cutoff))
        .limit(limit)
        .to_owned();
    Ok(Entity::delete_many()
        .filter(Column::Id.in_subquery(batch))
        .exec(db)
        .await?
        .rows_affected)
}
