//! Queries on `connections` and `connect_states`. The refresh of a
//! connection is claimed by a conditional UPDATE, so exactly one replica
//! talks to the provider at a time.

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, Query},
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::{
    entity::{
        connect_state::{self as state, Entity as States},
        connection::{self as conn, Column, Entity as Connections},
    },
    service::connect::ConnectionStatus,
};

type Now = DateTime<Utc>;

// ------------------------------------------------------------------ states

pub async fn insert_state(db: &impl ConnectionTrait, row: state::Model) -> Result<(), DbErr> {
    States::insert(state::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find_state(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<state::Model>, DbErr> {
    States::find_by_id(id.to_owned()).one(db).await
}

/// Mark a state used; true for the one caller that did it.
pub async fn consume_state(db: &impl ConnectionTrait, id: &str, now: Now) -> Result<bool, DbErr> {
    let res = States::update_many()
        .col_expr(state::Column::ConsumedAt, Expr::value(now))
        .filter(state::Column::Id.eq(id))
        .filter(state::Column::ConsumedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn delete_expired_states(
    db: &impl ConnectionTrait,
    now: Now,
    limit: u64,
) -> Result<u64, DbErr> {
    let batch = Query::select()
        .column(state::Column::Id)
        .from(States)
        .and_where(state::Column::ExpiresAt.lte(now))
        .limit(limit)
        .to_owned();
    Ok(States::delete_many()
        .filter(state::Column::Id.in_subquery(batch))
        .exec(db)
        .await?
        .rows_affected)
}

// ------------------------------------------------------------------ connections

pub async fn find(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    provider: &str,
) -> Result<Option<conn::Model>, DbErr> {
    Connections::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Provider.eq(provider))
        .one(db)
        .await
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<conn::Model>, DbErr> {
    Connections::find_by_id(id).one(db).await
}

pub async fn list_for_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> Result<Vec<conn::Model>, DbErr> {
    Connections::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_asc(Column::Provider)
        .all(db)
        .await
}

/// Insert a connection, or replace the user's existing one for the provider
/// (same id, so ciphertexts stay bound to it).
pub async fn save(db: &impl ConnectionTrait, row: conn::Model, exists: bool) -> Result<(), DbErr> {
    if exists {
        let id = row.id;
        let mut model = conn::ActiveModel::from(row);
        model.id = sea_orm::ActiveValue::Unchanged(id);
        model.user_id = sea_orm::ActiveValue::NotSet;
        model.provider = sea_orm::ActiveValue::NotSet;
        Connections::update(model).exec(db).await?;
    } else {
        Connections::insert(conn::ActiveModel::from(row))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<u64, DbErr> {
    Ok(Connections::delete_by_id(id).exec(db).await?.rows_affected)
}

/// Claim the refresh of a connection until `until`; true for the one caller
/// that got it (no claim held, or an abandoned one).
pub async fn claim_refresh(
    db: &impl ConnectionTrait,
    id: Uuid,
    read_access_token_enc: &str,
    now: Now,
    until: Now,
) -> Result<bool, DbErr> {
    let res = Connections::update_many()
        .col_expr(Column::RefreshClaimedUntil, Expr::value(until))
        .filter(Column::Id.eq(id))
        // Only while the token is still the one the caller read: a replica
        // that read before another finished refreshing must not refresh again.
        .filter(Column::AccessTokenEnc.eq(read_access_token_enc))
        .filter(
            Condition::any()
                .add(Column::RefreshClaimedUntil.is_null())
                .add(Column::RefreshClaimedUntil.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// New tokens from a refresh; releases the claim.
pub struct Refreshed {
    pub access_token_enc: String,
    /// `None`: the provider sent no new refresh token, keep the old one.
    pub refresh_token_enc: Option<String>,
    pub token_type: String,
    pub expires_at: Option<Now>,
    pub scopes: Option<String>,
}

pub async fn store_refreshed(
    db: &impl ConnectionTrait,
    id: Uuid,
    r: Refreshed,
    now: Now,
) -> Result<(), DbErr> {
    let mut update = Connections::update_many()
        .col_expr(Column::AccessTokenEnc, Expr::value(r.access_token_enc))
        .col_expr(Column::TokenType, Expr::value(r.token_type))
        .col_expr(Column::ExpiresAt, Expr::value(r.expires_at))
        .col_expr(
            Column::Status,
            Expr::value(ConnectionStatus::Connected.as_str()),
        )
        .col_expr(Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(Column::LastRefreshedAt, Expr::value(now))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .col_expr(
            Column::RefreshClaimedUntil,
            Expr::value(Option::<Now>::None),
        );
    if let Some(enc) = r.refresh_token_enc {
        update = update.col_expr(Column::RefreshTokenEnc, Expr::value(enc));
    }
    if let Some(scopes) = r.scopes {
        update = update.col_expr(Column::Scopes, Expr::value(scopes));
    }
    update.filter(Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// A refresh failed: record why, set the status, release the claim. The
/// tokens stay as they were.
pub async fn mark_failed(
    db: &impl ConnectionTrait,
    id: Uuid,
    status: ConnectionStatus,
    error: &str,
    now: Now,
) -> Result<(), DbErr> {
    Connections::update_many()
        .col_expr(Column::Status, Expr::value(status.as_str()))
        .col_expr(
            Column::LastError,
            Expr::value(error.chars().take(500).collect::<String>()),
        )
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .col_expr(
            Column::RefreshClaimedUntil,
            Expr::value(Option::<Now>::None),
        )
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Connections whose access token expires before `before`, that can be
/// refreshed and are not being refreshed.
pub async fn due_for_refresh(
    db: &impl ConnectionTrait,
    before: Now,
    now: Now,
    limit: u64,
) -> Result<Vec<conn::Model>, DbErr> {
    Connections::find()
        .filter(Column::ExpiresAt.lt(before))
        .filter(Column::Status.ne(ConnectionStatus::ReauthorizationRequired.as_str()))
        .filter(Column::RefreshTokenEnc.is_not_null())
        .filter(
            Condition::any()
                .add(Column::RefreshClaimedUntil.is_null())
                .add(Column::RefreshClaimedUntil.lt(now)),
        )
        .order_by_asc(Column::ExpiresAt)
        .limit(limit)
        .all(db)
        .await
}

/// A page of connections after `after` (by id), for key rotation.
pub async fn page_after(
    db: &impl ConnectionTrait,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<conn::Model>, DbErr> {
    let mut q = Connections::find().order_by_asc(Column::Id).limit(limit);
    if let Some(a) = after {
        q = q.filter(Column::Id.gt(a));
    }
    q.all(db).await
}

/// Replace the envelopes of a connection, only if they are still the ones
/// read (a concurrent refresh wins; rotation retries that row later).
pub async fn replace_envelopes(
    db: &impl ConnectionTrait,
    row: &conn::Model,
    access_token_enc: String,
    refresh_token_enc: Option<String>,
) -> Result<bool, DbErr> {
    let mut q = Connections::update_many()
        .col_expr(Column::AccessTokenEnc, Expr::value(access_token_enc))
        .col_expr(Column::RefreshTokenEnc, Expr::value(refresh_token_enc))
        .filter(Column::Id.eq(row.id))
        .filter(Column::AccessTokenEnc.eq(row.access_token_enc.clone()));
    q = match &row.refresh_token_enc {
        Some(r) => q.filter(Column::RefreshTokenEnc.eq(r.clone())),
        None => q.filter(Column::RefreshTokenEnc.is_null()),
    };
    Ok(q.exec(db).await?.rows_affected == 1)
}
