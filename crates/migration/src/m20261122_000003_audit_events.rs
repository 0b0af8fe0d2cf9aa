//! The audit trail: one row per security event. `user_id` is the account the
//! event belongs to (what `GET /api/v1/audit` shows its owner); it has no
//! foreign key, so the trail outlives what it describes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(big_pk_auto(AuditEvents::Seq))
                    .col(timestamp_with_time_zone(AuditEvents::At))
                    .col(uuid_null(AuditEvents::UserId))
                    .col(string_len(AuditEvents::Action, 64))
                    .col(string_len_null(AuditEvents::CredentialId, 64))
                    .col(string_len_null(AuditEvents::Target, 128))
                    .col(string_len_null(AuditEvents::Ip, 64))
                    .col(string_len_null(AuditEvents::UserAgent, 256))
                    .col(string_len_null(AuditEvents::RequestId, 64))
                    .col(text(AuditEvents::Details))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_events_user_seq_idx")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::UserId)
                    .col(AuditEvents::Seq)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Seq,
    At,
    UserId,
    Action,
    CredentialId,
    Target,
    Ip,
    UserAgent,
    RequestId,
    Details,
}
