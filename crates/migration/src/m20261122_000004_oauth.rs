//! The OAuth 2.1 authorization server and the web login.
//!
//! Every secret (session cookie, code, token, client secret) is stored as its
//! SHA-256 under the 16-character public id embedded in it, so each lookup is
//! one primary-key read. A grant is one authorization of one client by one
//! user (a token family): tokens point at it, and revoking it revokes them all.
//! Everything cascades from users and clients, so deleting either leaves no
//! orphan.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk_user(
    name: &str,
    table: impl IntoIden + Copy,
    col: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn fk_client(
    name: &str,
    table: impl IntoIden + Copy,
    col: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, col)
        .to(OauthClients::Table, OauthClients::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn fk_grant(
    name: &str,
    table: impl IntoIden + Copy,
    col: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, col)
        .to(OauthGrants::Table, OauthGrants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebSessions::Table)
                    .col(string_len(WebSessions::Id, 16).primary_key())
                    .col(binary_len(WebSessions::SecretHash, 32))
                    .col(uuid(WebSessions::UserId))
                    .col(timestamp_with_time_zone(WebSessions::CreatedAt))
                    .col(timestamp_with_time_zone(WebSessions::ExpiresAt))
                    .col(string_len_null(WebSessions::Ip, 64))
                    .col(string_len_null(WebSessions::UserAgent, 256))
                    .foreign_key(&mut fk_user(
                        "web_sessions_user_id_fkey",
                        WebSessions::Table,
                        WebSessions::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "web_sessions_user_id_idx",
            WebSessions::Table,
            [WebSessions::UserId],
        )
        .await?;
        index(
            manager,
            "web_sessions_expires_at_idx",
            WebSessions::Table,
            [WebSessions::ExpiresAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OauthClients::Table)
                    .col(string_len(OauthClients::Id, 512).primary_key())
                    .col(binary_len_null(OauthClients::SecretHash, 32))
                    .col(string_len(OauthClients::Name, 200))
                    .col(string_len(OauthClients::Kind, 32))
                    .col(text(OauthClients::RedirectUris))
                    .col(string_len(OauthClients::Scopes, 500))
                    .col(string_len(OauthClients::GrantTypes, 200))
                    .col(string_len(OauthClients::TokenEndpointAuthMethod, 32))
                    .col(uuid_null(OauthClients::OwnerUserId))
                    .col(string_len_null(OauthClients::ClientUri, 512))
                    .col(timestamp_with_time_zone(OauthClients::CreatedAt))
                    .col(timestamp_with_time_zone_null(OauthClients::LastUsedAt))
                    .col(timestamp_with_time_zone_null(
                        OauthClients::MetadataExpiresAt,
                    ))
                    .foreign_key(&mut fk_user(
                        "oauth_clients_owner_user_id_fkey",
                        OauthClients::Table,
                        OauthClients::OwnerUserId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "oauth_clients_created_at_idx",
            OauthClients::Table,
            [OauthClients::CreatedAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OauthCodes::Table)
                    .col(string_len(OauthCodes::Id, 16).primary_key())
                    .col(binary_len(OauthCodes::SecretHash, 32))
                    .col(string_len(OauthCodes::ClientId, 512))
                    .col(uuid(OauthCodes::UserId))
                    .col(text(OauthCodes::RedirectUri))
                    .col(string_len(OauthCodes::Scopes, 500))
                    .col(string_len(OauthCodes::Resources, 1100))
                    .col(string_len(OauthCodes::CodeChallenge, 128))
                    .col(timestamp_with_time_zone(OauthCodes::CreatedAt))
                    .col(timestamp_with_time_zone(OauthCodes::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OauthCodes::ConsumedAt))
                    .foreign_key(&mut fk_user(
                        "oauth_codes_user_id_fkey",
                        OauthCodes::Table,
                        OauthCodes::UserId,
                    ))
                    .foreign_key(&mut fk_client(
                        "oauth_codes_client_id_fkey",
                        OauthCodes::Table,
                        OauthCodes::ClientId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "oauth_codes_expires_at_idx",
            OauthCodes::Table,
            [OauthCodes::ExpiresAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OauthGrants::Table)
                    .col(uuid(OauthGrants::Id).primary_key())
                    .col(uuid(OauthGrants::UserId))
                    .col(string_len(OauthGrants::ClientId, 512))
                    .col(string_len(OauthGrants::GrantType, 32))
                    .col(string_len(OauthGrants::Scopes, 500))
                    .col(string_len(OauthGrants::Resources, 1100))
                    .col(string_len_null(OauthGrants::CodeId, 16))
                    .col(timestamp_with_time_zone(OauthGrants::CreatedAt))
                    .col(timestamp_with_time_zone(OauthGrants::LastUsedAt))
                    .col(timestamp_with_time_zone(OauthGrants::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OauthGrants::RevokedAt))
                    .foreign_key(&mut fk_user(
                        "oauth_grants_user_id_fkey",
                        OauthGrants::Table,
                        OauthGrants::UserId,
                    ))
                    .foreign_key(&mut fk_client(
                        "oauth_grants_client_id_fkey",
                        OauthGrants::Table,
                        OauthGrants::ClientId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "oauth_grants_user_client_idx",
            OauthGrants::Table,
            [OauthGrants::UserId, OauthGrants::ClientId],
        )
        .await?;
        index(
            manager,
            "oauth_grants_client_id_idx",
            OauthGrants::Table,
            [OauthGrants::ClientId],
        )
        .await?;
        index(
            manager,
            "oauth_grants_code_id_idx",
            OauthGrants::Table,
            [OauthGrants::CodeId],
        )
        .await?;
        index(
            manager,
            "oauth_grants_expires_at_idx",
            OauthGrants::Table,
            [OauthGrants::ExpiresAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OauthAccessTokens::Table)
                    .col(string_len(OauthAccessTokens::Id, 16).primary_key())
                    .col(binary_len(OauthAccessTokens::SecretHash, 32))
                    .col(uuid(OauthAccessTokens::GrantId))
                    .col(uuid(OauthAccessTokens::UserId))
                    .col(string_len(OauthAccessTokens::ClientId, 512))
                    .col(string_len(OauthAccessTokens::Scopes, 500))
                    .col(string_len(OauthAccessTokens::Resources, 1100))
                    .col(timestamp_with_time_zone(OauthAccessTokens::CreatedAt))
                    .col(timestamp_with_time_zone(OauthAccessTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OauthAccessTokens::RevokedAt))
                    .foreign_key(&mut fk_grant(
                        "oauth_access_tokens_grant_id_fkey",
                        OauthAccessTokens::Table,
                        OauthAccessTokens::GrantId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "oauth_access_tokens_grant_id_idx",
            OauthAccessTokens::Table,
            [OauthAccessTokens::GrantId],
        )
        .await?;
        index(
            manager,
            "oauth_access_tokens_expires_at_idx",
            OauthAccessTokens::Table,
            [OauthAccessTokens::ExpiresAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OauthRefreshTokens::Table)
                    .col(string_len(OauthRefreshTokens::Id, 16).primary_key())
                    .col(binary_len(OauthRefreshTokens::SecretHash, 32))
                    .col(uuid(OauthRefreshTokens::GrantId))
                    .col(string_len(OauthRefreshTokens::AccessTokenId, 16))
                    .col(string_len(OauthRefreshTokens::Scopes, 500))
                    .col(timestamp_with_time_zone(OauthRefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(OauthRefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OauthRefreshTokens::RotatedAt))
                    .col(string_len_null(OauthRefreshTokens::ReplacedBy, 16))
                    .col(timestamp_with_time_zone_null(OauthRefreshTokens::RevokedAt))
                    .foreign_key(&mut fk_grant(
                        "oauth_refresh_tokens_grant_id_fkey",
                        OauthRefreshTokens::Table,
                        OauthRefreshTokens::GrantId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "oauth_refresh_tokens_grant_id_idx",
            OauthRefreshTokens::Table,
            [OauthRefreshTokens::GrantId],
        )
        .await?;
        index(
            manager,
            "oauth_refresh_tokens_expires_at_idx",
            OauthRefreshTokens::Table,
            [OauthRefreshTokens::ExpiresAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OauthConsents::Table)
                    .col(uuid(OauthConsents::UserId))
                    .col(string_len(OauthConsents::ClientId, 512))
                    .col(string_len(OauthConsents::Scopes, 500))
                    .col(timestamp_with_time_zone(OauthConsents::CreatedAt))
                    .col(timestamp_with_time_zone(OauthConsents::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(OauthConsents::UserId)
                            .col(OauthConsents::ClientId),
                    )
                    .foreign_key(&mut fk_user(
                        "oauth_consents_user_id_fkey",
                        OauthConsents::Table,
                        OauthConsents::UserId,
                    ))
                    .foreign_key(&mut fk_client(
                        "oauth_consents_client_id_fkey",
                        OauthConsents::Table,
                        OauthConsents::ClientId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "oauth_consents_client_id_idx",
            OauthConsents::Table,
            [OauthConsents::ClientId],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OauthConsents::Table.into_iden(),
            OauthRefreshTokens::Table.into_iden(),
            OauthAccessTokens::Table.into_iden(),
            OauthGrants::Table.into_iden(),
            OauthCodes::Table.into_iden(),
            OauthClients::Table.into_iden(),
            WebSessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn index<T, C, const N: usize>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: [C; N],
) -> Result<(), DbErr>
where
    T: IntoIden + Copy + 'static,
    C: IntoIden + Copy + 'static,
{
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col);
    }
    manager.create_index(stmt.to_owned()).await
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebSessions {
    Table,
    Id,
    SecretHash,
    UserId,
    CreatedAt,
    ExpiresAt,
    Ip,
    UserAgent,
}

#[derive(DeriveIden, Clone, Copy)]
enum OauthClients {
    Table,
    Id,
    SecretHash,
    Name,
    Kind,
    RedirectUris,
    Scopes,
    GrantTypes,
    TokenEndpointAuthMethod,
    OwnerUserId,
    ClientUri,
    CreatedAt,
    LastUsedAt,
    MetadataExpiresAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum OauthCodes {
    Table,
    Id,
    SecretHash,
    ClientId,
    UserId,
    RedirectUri,
    Scopes,
    Resources,
    CodeChallenge,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum OauthGrants {
    Table,
    Id,
    UserId,
    ClientId,
    GrantType,
    Scopes,
    Resources,
    CodeId,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum OauthAccessTokens {
    Table,
    Id,
    SecretHash,
    GrantId,
    UserId,
    ClientId,
    Scopes,
    Resources,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum OauthRefreshTokens {
    Table,
    Id,
    SecretHash,
    GrantId,
    AccessTokenId,
    Scopes,
    CreatedAt,
    ExpiresAt,
    RotatedAt,
    ReplacedBy,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum OauthConsents {
    Table,
    UserId,
    ClientId,
    Scopes,
    CreatedAt,
    UpdatedAt,
}
