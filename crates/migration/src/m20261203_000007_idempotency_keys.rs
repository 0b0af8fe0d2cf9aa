//! `idempotency_keys`: the first response to each `Idempotency-Key` a user
//! sent, so a retried write returns it instead of acting twice. The unique
//! (user_id, idempotency_key) index decides a race between two replicas; rows
//! are purged 24 h after creation.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const USER_KEY_INDEX: &str = "idempotency_keys_user_key_key";
const CREATED_INDEX: &str = "idempotency_keys_created_at_idx";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(uuid(IdempotencyKeys::Id).primary_key())
                    .col(uuid(IdempotencyKeys::UserId))
                    .col(string_len(IdempotencyKeys::IdempotencyKey, 255))
                    .col(binary_len(IdempotencyKeys::RequestHash, 32))
                    // Null while the first request is in flight.
                    .col(integer_null(IdempotencyKeys::ResponseStatus))
                    // Encryption envelope of the response body.
                    .col(text_null(IdempotencyKeys::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(IdempotencyKeys::CompletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("idempotency_keys_user_id_fkey")
                            .from(IdempotencyKeys::Table, IdempotencyKeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(USER_KEY_INDEX)
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::UserId)
                    .col(IdempotencyKeys::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CREATED_INDEX)
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Id,
    UserId,
    IdempotencyKey,
    RequestHash,
    ResponseStatus,
    ResponseBody,
    CreatedAt,
    CompletedAt,
}
