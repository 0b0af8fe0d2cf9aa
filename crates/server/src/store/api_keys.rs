//! Queries on `api_keys`. Every lookup is by primary key (the public id) or
//! by the `(user_id, created_at)` index; nothing scans the table.

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    UpdateMany,
};
use uuid::Uuid;

use crate::entity::api_key::{self, Column, Entity};

pub struct NewKey {
    pub id: String,
    pub user_id: Uuid,
    pub name: String,
    pub scopes: String,
    pub secret_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert(db: &impl ConnectionTrait, new: NewKey) -> Result<(), DbErr> {
    Entity::insert(api_key::ActiveModel {
        id: Set(new.id),
        user_id: Set(new.user_id),
        name: Set(new.name),
        scopes: Set(new.scopes),
        secret_hash: Set(new.secret_hash),
        previous_secret_hash: Set(None),
        previous_expires_at: Set(None),
        created_at: Set(new.created_at),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
        rotated_at: Set(None),
        last_used_at: Set(None),
        usage_count: Set(0),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The one indexed lookup authentication makes.
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<api_key::Model>, DbErr> {
    Entity::find_by_id(id.to_owned()).one(db).await
}

/// A key, only if it belongs to `user_id`.
pub async fn find_owned(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: &str,
) -> Result<Option<api_key::Model>, DbErr> {
    Entity::find_by_id(id.to_owned())
        .filter(Column::UserId.eq(user_id))
        .one(db)
        .await
}

/// How many of a user's keys are not revoked.
pub async fn count_active(db: &impl ConnectionTrait, user_id: Uuid) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null())
        .count(db)
        .await
}

/// Every key of a user, newest first.
pub async fn list_for_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> Result<Vec<api_key::Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .all(db)
        .await
}

/// Mark a key revoked, once. Returns false when it was not the user's or
/// already revoked.
pub async fn revoke(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = forget_previous_secret(Entity::update_many())
        .col_expr(Column::RevokedAt, Expr::value(at))
        .filter(Column::Id.eq(id))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub struct Rotation<'a> {
    pub user_id: Uuid,
    pub id: &'a str,
    /// The hash the key had when the rotation was decided; the update only
    /// applies if it is still current, so two concurrent rotations cannot
    /// both win.
    pub expected_hash: &'a [u8],
    pub new_hash: Vec<u8>,
    /// Keep accepting the old hash until then (None: not at all).
    pub previous_until: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// Replace a key's secret atomically. Returns false when the key changed
/// (rotated or revoked) since it was read.
pub async fn rotate(db: &impl ConnectionTrait, r: Rotation<'_>) -> Result<bool, DbErr> {
    let previous = r.previous_until.map(|_| r.expected_hash.to_vec());
    let result = Entity::update_many()
        .col_expr(Column::SecretHash, Expr::value(r.new_hash))
        .col_expr(Column::PreviousSecretHash, Expr::value(previous))
        .col_expr(Column::PreviousExpiresAt, Expr::value(r.previous_until))
        .col_expr(Column::RotatedAt, Expr::value(r.at))
        .filter(Column::Id.eq(r.id))
        .filter(Column::UserId.eq(r.user_id))
        .filter(Column::SecretHash.eq(r.expected_hash.to_vec()))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Add `count` uses and move `last_used_at` forward, never backward, so
/// replicas flushing out of order cannot make it older. One statement, so
/// concurrent flushes from several replicas add up exactly.
pub async fn add_usage(
    db: &impl ConnectionTrait,
    id: &str,
    count: u64,
    last_used_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let newer = Column::LastUsedAt
        .is_null()
        .or(Column::LastUsedAt.lt(last_used_at));
    Entity::update_many()
        .col_expr(Column::UsageCount, Expr::col(Column::UsageCount).add(count))
        .col_expr(
            Column::LastUsedAt,
            Expr::case(newer, Expr::value(last_used_at))
                .finally(Expr::col(Column::LastUsedAt))
                .into(),
        )
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Forget the previous secret of up to `limit` keys whose rotation grace
/// period ended by `now`; how many were cleared.
pub async fn clear_expired_rotation_secrets(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    let batch = Query::select()
        .column(Column::Id)
        .from(Entity)
        .and_where(Column::PreviousExpiresAt.lte(now))
        .limit(limit)
        .to_owned();
    Ok(forget_previous_secret(Entity::update_many())
        .filter(Column::Id.in_subquery(batch))
        .exec(db)
        .await?
        .rows_affected)
}

/// Clear the secret a rotation keeps for its grace period.
fn forget_previous_secret(update: UpdateMany<Entity>) -> UpdateMany<Entity> {
    update
        .col_expr(
            Column::PreviousSecretHash,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .col_expr(
            Column::PreviousExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}
