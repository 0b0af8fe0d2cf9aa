//! Index the owner of OAuth clients: the account console lists a user's own
//! clients, and that read must cost what the user owns, not the whole table.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthClients {
    Table,
    OwnerUserId,
}

const INDEX: &str = "oauth_clients_owner_user_id_idx";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(OauthClients::Table)
                    .col(OauthClients::OwnerUserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(OauthClients::Table)
                    .to_owned(),
            )
            .await
    }
}
