//! Queries of the OAuth server: clients, codes, grants (token families),
//! access and refresh tokens, consents. Every lookup of a presented secret is
//! by primary key; every "exactly once" step is a conditional UPDATE whose
//! affected-row count decides who won.

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, Query},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::entity::{
    oauth_access_token as access, oauth_client as client, oauth_code as code,
    oauth_consent as consent, oauth_grant as grant, oauth_refresh_token as refresh,
};

type Now = DateTime<Utc>;

// ------------------------------------------------------------------ clients

pub async fn insert_client(db: &impl ConnectionTrait, row: client::Model) -> Result<(), DbErr> {
    client::Entity::insert(client::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Replace a client row (a refreshed metadata document).
pub async fn replace_client(db: &impl ConnectionTrait, row: client::Model) -> Result<(), DbErr> {
    let id = row.id.clone();
    let mut model = client::ActiveModel::from(row);
    model.id = sea_orm::ActiveValue::Unchanged(id);
    model.created_at = sea_orm::ActiveValue::NotSet;
    model.last_used_at = sea_orm::ActiveValue::NotSet;
    client::Entity::update(model).exec(db).await?;
    Ok(())
}

pub async fn find_client(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<client::Model>, DbErr> {
    client::Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn list_clients(db: &impl ConnectionTrait) -> Result<Vec<client::Model>, DbErr> {
    client::Entity::find()
        .order_by_asc(client::Column::CreatedAt)
        .all(db)
        .await
}

pub async fn delete_client(db: &impl ConnectionTrait, id: &str) -> Result<u64, DbErr> {
    Ok(client::Entity::delete_by_id(id.to_owned())
        .exec(db)
        .await?
        .rows_affected)
}

/// Clients owned by a user, newest first.
pub async fn clients_of_owner(
    db: &impl ConnectionTrait,
    owner: Uuid,
) -> Result<Vec<client::Model>, DbErr> {
    client::Entity::find()
        .filter(client::Column::OwnerUserId.eq(owner))
        .order_by_desc(client::Column::CreatedAt)
        .all(db)
        .await
}

/// Delete a client if `owner` owns it; its codes, grants and tokens cascade.
pub async fn delete_owned_client(
    db: &impl ConnectionTrait,
    owner: Uuid,
    id: &str,
) -> Result<u64, DbErr> {
    Ok(client::Entity::delete_many()
        .filter(client::Column::Id.eq(id))
        .filter(client::Column::OwnerUserId.eq(owner))
        .exec(db)
        .await?
        .rows_affected)
}

/// Delete the clients a key registered (revoking a key revokes its
/// delegations); returns their ids. Codes, grants and tokens cascade.
pub async fn delete_clients_of_key(
    db: &impl ConnectionTrait,
    owner: Uuid,
    key_id: &str,
) -> Result<Vec<String>, DbErr> {
    let ids: Vec<String> = client::Entity::find()
        .filter(client::Column::OwnerUserId.eq(owner))
        .filter(client::Column::OwnerKeyId.eq(key_id))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    if !ids.is_empty() {
        client::Entity::delete_many()
            .filter(client::Column::Id.is_in(ids.clone()))
            .exec(db)
            .await?;
    }
    Ok(ids)
}

pub async fn touch_client(db: &impl ConnectionTrait, id: &str, now: Now) -> Result<(), DbErr> {
    client::Entity::update_many()
        .col_expr(client::Column::LastUsedAt, Expr::value(now))
        .filter(client::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Delete up to `limit` dynamically registered clients created before
/// `cutoff` and never used.
pub async fn delete_unused_clients(
    db: &impl ConnectionTrait,
    cutoff: Now,
    limit: u64,
) -> Result<u64, DbErr> {
    let batch = Query::select()
        .column(client::Column::Id)
        .from(client::Entity)
        .and_where(client::Column::Kind.is_in(["dynamic", "metadata_document"]))
        .and_where(client::Column::LastUsedAt.is_null())
        .and_where(client::Column::CreatedAt.lt(cutoff))
        .limit(limit)
        .to_owned();
    Ok(client::Entity::delete_many()
        .filter(client::Column::Id.in_subquery(batch))
        .exec(db)
        .await?
        .rows_affected)
}

// ------------------------------------------------------------------ codes

pub async fn insert_code(db: &impl ConnectionTrait, row: code::Model) -> Result<(), DbErr> {
    code::Entity::insert(code::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find_code(db: &impl ConnectionTrait, id: &str) -> Result<Option<code::Model>, DbErr> {
    code::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Mark a code used; true for the one caller that did it.
pub async fn consume_code(db: &impl ConnectionTrait, id: &str, now: Now) -> Result<bool, DbErr> {
    let res = code::Entity::update_many()
        .col_expr(code::Column::ConsumedAt, Expr::value(now))
        .filter(code::Column::Id.eq(id))
        .filter(code::Column::ConsumedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn delete_expired_codes(
    db: &impl ConnectionTrait,
    now: Now,
    limit: u64,
) -> Result<u64, DbErr> {
    let batch = Query::select()
        .column(code::Column::Id)
        .from(code::Entity)
        .and_where(code::Column::ExpiresAt.lte(now))
        .limit(limit)
        .to_owned();
    Ok(code::Entity::delete_many()
        .filter(code::Column::Id.in_subquery(batch))
        .exec(db)
        .await?
        .rows_affected)
}

// ------------------------------------------------------------------ grants

pub async fn insert_grant(db: &impl ConnectionTrait, row: grant::Model) -> Result<(), DbErr> {
    grant::Entity::insert(grant::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find_grant(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<grant::Model>, DbErr> {
    grant::Entity::find_by_id(id).one(db).await
}

/// Grants issued from one authorization code.
pub async fn grants_from_code(
    db: &impl ConnectionTrait,
    code_id: &str,
) -> Result<Vec<grant::Model>, DbErr> {
    grant::Entity::find()
        .filter(grant::Column::CodeId.eq(code_id))
        .all(db)
        .await
}

/// The live client-credentials grant of a client, if any.
pub async fn find_client_credentials_grant(
    db: &impl ConnectionTrait,
    client_id: &str,
    user_id: Uuid,
) -> Result<Option<grant::Model>, DbErr> {
    grant::Entity::find()
        .filter(grant::Column::ClientId.eq(client_id))
        .filter(grant::Column::UserId.eq(user_id))
        .filter(grant::Column::GrantType.eq("client_credentials"))
        .filter(grant::Column::RevokedAt.is_null())
        .one(db)
        .await
}

/// Record use of a grant; its expiry follows its newest token (always the
/// latest to expire, since lifetimes are fixed).
pub async fn touch_grant(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: Now,
    expires_at: Now,
) -> Result<(), DbErr> {
    grant::Entity::update_many()
        .col_expr(grant::Column::LastUsedAt, Expr::value(now))
        .col_expr(grant::Column::ExpiresAt, Expr::value(expires_at))
        .filter(grant::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Record that a grant's tokens were used at `at` (never moving backwards).
pub async fn grant_used(db: &impl ConnectionTrait, id: Uuid, at: Now) -> Result<(), DbErr> {
    grant::Entity::update_many()
        .col_expr(grant::Column::LastUsedAt, Expr::value(at))
        .filter(grant::Column::Id.eq(id))
        .filter(grant::Column::LastUsedAt.lt(at))
        .exec(db)
        .await?;
    Ok(())
}

/// Revoke grants and every token issued under them.
pub async fn revoke_grants(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    now: Now,
) -> Result<u64, DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    let revoked = grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, Expr::value(now))
        .filter(grant::Column::Id.is_in(ids.iter().copied()))
        .filter(grant::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    access::Entity::update_many()
        .col_expr(access::Column::RevokedAt, Expr::value(now))
        .filter(access::Column::GrantId.is_in(ids.iter().copied()))
        .filter(access::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    refresh::Entity::update_many()
        .col_expr(refresh::Column::RevokedAt, Expr::value(now))
        .filter(refresh::Column::GrantId.is_in(ids.iter().copied()))
        .filter(refresh::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(revoked)
}

/// A user's live grants, newest first.
pub async fn live_grants_of_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    now: Now,
) -> Result<Vec<grant::Model>, DbErr> {
    grant::Entity::find()
        .filter(grant::Column::UserId.eq(user_id))
        .filter(grant::Column::RevokedAt.is_null())
        .filter(grant::Column::ExpiresAt.gt(now))
        .order_by_desc(grant::Column::LastUsedAt)
        .all(db)
        .await
}

/// Ids of a user's live grants to one client.
pub async fn live_grant_ids(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    client_id: &str,
) -> Result<Vec<Uuid>, DbErr> {
    Ok(grant::Entity::find()
        .filter(grant::Column::UserId.eq(user_id))
        .filter(grant::Column::ClientId.eq(client_id))
        .filter(grant::Column::RevokedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect())
}

/// Delete grants (and, by cascade, their tokens) that expired or were
/// revoked before `cutoff`.
pub async fn delete_dead_grants(
    db: &impl ConnectionTrait,
    now: Now,
    limit: u64,
) -> Result<u64, DbErr> {
    let batch = Query::select()
        .column(grant::Column::Id)
        .from(grant::Entity)
        .cond_where(
            sea_orm::Condition::any()
                .add(grant::Column::ExpiresAt.lte(now))
                .add(grant::Column::RevokedAt.lte(now)),
        )
        .limit(limit)
        .to_owned();
    Ok(grant::Entity::delete_many()
        .filter(grant::Column::Id.in_subquery(batch))
        .exec(db)
        .await?
        .rows_affected)
}

// ------------------------------------------------------------------ tokens

pub async fn insert_access(db: &impl ConnectionTrait, row: access::Model) -> Result<(), DbErr> {
    access::Entity::insert(access::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find_access(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<access::Model>, DbErr> {
    access::Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn revoke_access(db: &impl ConnectionTrait, id: &str, now: Now) -> Result<(), DbErr> {
    access::Entity::update_many()
        .col_expr(access::Column::RevokedAt, Expr::value(now))
        .filter(access::Column::Id.eq(id))
        .filter(access::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Delete up to `limit` access tokens expired before `cutoff`.
pub async fn delete_expired_access(
    db: &impl ConnectionTrait,
    cutoff: Now,
    limit: u64,
) -> Result<u64, DbErr> {
    let batch = Query::select()
        .column(access::Column::Id)
        .from(access::Entity)
        .and_where(access::Column::ExpiresAt.lte(cutoff))
        .limit(limit)
        .to_owned();
    Ok(access::Entity::delete_many()
        .filter(access::Column::Id.in_subquery(batch))
        .exec(db)
        .await?
        .rows_affected)
}

pub async fn insert_refresh(db: &impl ConnectionTrait, row: refresh::Model) -> Result<(), DbErr> {
    refresh::Entity::insert(refresh::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find_refresh(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<refresh::Model>, DbErr> {
    refresh::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Rotate a refresh token: true for the one caller whose update marked it.
pub async fn rotate_refresh(
    db: &impl ConnectionTrait,
    id: &str,
    successor: &str,
    now: Now,
) -> Result<bool, DbErr> {
    let res = refresh::Entity::update_many()
        .col_expr(refresh::Column::RotatedAt, Expr::value(now))
        .col_expr(refresh::Column::ReplacedBy, Expr::value(successor))
        .filter(refresh::Column::Id.eq(id))
        .filter(refresh::Column::RotatedAt.is_null())
        .filter(refresh::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

// ------------------------------------------------------------------ consents

pub async fn find_consent(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    client_id: &str,
) -> Result<Option<consent::Model>, DbErr> {
    consent::Entity::find_by_id((user_id, client_id.to_owned()))
        .one(db)
        .await
}

/// Insert or replace the remembered consent of a user for a client.
pub async fn upsert_consent(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    client_id: &str,
    scopes: &str,
    now: Now,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::OnConflict;
    consent::Entity::insert(consent::ActiveModel {
        user_id: Set(user_id),
        client_id: Set(client_id.to_owned()),
        scopes: Set(scopes.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([consent::Column::UserId, consent::Column::ClientId])
            .update_columns([consent::Column::Scopes, consent::Column::UpdatedAt])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn delete_consent(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    client_id: &str,
) -> Result<u64, DbErr> {
    Ok(
        consent::Entity::delete_by_id((user_id, client_id.to_owned()))
            .exec(db)
            .await?
            .rows_affected,
    )
}
