//! Owned OAuth clients are their owner's objects: index the owner (the
//! console and `GET /api/v1/clients` list a user's own clients, and that read
//! must cost what the user owns), and record the API key that registered
//! each one (revoking that key revokes its delegation: the client goes too).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthClients {
    Table,
    OwnerUserId,
    OwnerKeyId,
}

const OWNER_INDEX: &str = "oauth_clients_owner_user_id_idx";
const KEY_INDEX: &str = "oauth_clients_owner_key_id_idx";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OauthClients::Table)
                    .add_column(
                        ColumnDef::new(OauthClients::OwnerKeyId)
                            .string_len(32)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OWNER_INDEX)
                    .table(OauthClients::Table)
                    .col(OauthClients::OwnerUserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(KEY_INDEX)
                    .table(OauthClients::Table)
                    .col(OauthClients::OwnerKeyId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(KEY_INDEX)
                    .table(OauthClients::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(OWNER_INDEX)
                    .table(OauthClients::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthClients::Table)
                    .drop_column(OauthClients::OwnerKeyId)
                    .to_owned(),
            )
            .await
    }
}
