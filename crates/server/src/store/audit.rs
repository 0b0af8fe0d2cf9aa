//! Queries on `audit_events`.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::audit_event::{self, Column, Entity};

pub struct NewEvent {
    pub at: chrono::DateTime<chrono::Utc>,
    pub user_id: Option<Uuid>,
    pub action: String,
    pub credential_id: Option<String>,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
}

pub async fn insert(db: &impl ConnectionTrait, e: NewEvent) -> Result<(), DbErr> {
    Entity::insert(audit_event::ActiveModel {
        seq: NotSet,
        at: Set(e.at),
        user_id: Set(e.user_id),
        action: Set(e.action),
        credential_id: Set(e.credential_id),
        target: Set(e.target),
        ip: Set(e.ip),
        user_agent: Set(e.user_agent),
        request_id: Set(e.request_id),
        details: Set(e.details),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Events newest first, of one user or (None) of everyone, before `before_seq`.
pub async fn list(
    db: &impl ConnectionTrait,
    user_id: Option<Uuid>,
    before_seq: Option<i64>,
    limit: u64,
) -> Result<Vec<audit_event::Model>, DbErr> {
    let mut q = Entity::find();
    if let Some(user) = user_id {
        q = q.filter(Column::UserId.eq(user));
    }
    if let Some(seq) = before_seq {
        q = q.filter(Column::Seq.lt(seq));
    }
    q.order_by_desc(Column::Seq).limit(limit).all(db).await
}
