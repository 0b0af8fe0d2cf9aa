//! Connections to third-party providers and the states of connection flows.
//!
//! Upstream tokens are stored only as encryption envelopes (AES-256-GCM bound
//! to row and field, see the server's `crypto`). One connection per user and
//! provider. `refresh_claimed_until` is the cross-replica lock of a refresh:
//! a conditional UPDATE sets it, so one replica refreshes and the others
//! wait for its result.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Connections::Table)
                    .col(uuid(Connections::Id).primary_key())
                    .col(uuid(Connections::UserId))
                    .col(string_len(Connections::Provider, 32))
                    .col(string_len(Connections::Status, 32))
                    .col(string_len_null(Connections::ExternalAccountId, 255))
                    .col(string_len(Connections::Scopes, 1000))
                    .col(string_len(Connections::TokenType, 32))
                    .col(text(Connections::AccessTokenEnc))
                    .col(text_null(Connections::RefreshTokenEnc))
                    .col(timestamp_with_time_zone_null(Connections::ExpiresAt))
                    .col(timestamp_with_time_zone(Connections::ConnectedAt))
                    .col(timestamp_with_time_zone(Connections::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Connections::LastRefreshedAt))
                    .col(string_len_null(Connections::LastError, 500))
                    .col(timestamp_with_time_zone_null(
                        Connections::RefreshClaimedUntil,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("connections_user_id_fkey")
                            .from(Connections::Table, Connections::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("connections_user_provider_key")
                    .table(Connections::Table)
                    .col(Connections::UserId)
                    .col(Connections::Provider)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("connections_expires_at_idx")
                    .table(Connections::Table)
                    .col(Connections::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConnectStates::Table)
                    .col(string_len(ConnectStates::Id, 16).primary_key())
                    .col(binary_len(ConnectStates::SecretHash, 32))
                    .col(uuid(ConnectStates::UserId))
                    .col(string_len(ConnectStates::Provider, 32))
                    .col(text_null(ConnectStates::PkceVerifierEnc))
                    .col(string_len_null(ConnectStates::ReturnTo, 2000))
                    .col(timestamp_with_time_zone(ConnectStates::CreatedAt))
                    .col(timestamp_with_time_zone(ConnectStates::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ConnectStates::ConsumedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("connect_states_user_id_fkey")
                            .from(ConnectStates::Table, ConnectStates::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("connect_states_expires_at_idx")
                    .table(ConnectStates::Table)
                    .col(ConnectStates::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConnectStates::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Connections::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    Id,
    UserId,
    Provider,
    Status,
    ExternalAccountId,
    Scopes,
    TokenType,
    AccessTokenEnc,
    RefreshTokenEnc,
    ExpiresAt,
    ConnectedAt,
    UpdatedAt,
    LastRefreshedAt,
    LastError,
    RefreshClaimedUntil,
}

#[derive(DeriveIden)]
enum ConnectStates {
    Table,
    Id,
    SecretHash,
    UserId,
    Provider,
    PkceVerifierEnc,
    ReturnTo,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}
