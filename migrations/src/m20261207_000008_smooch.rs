//! The Smooch-compatible API (SPEC 8): its keys (account and app keys, HS256 secrets sealed
//! with the credentials key), what an app adds to a hub (the public `appToken`, stored
//! `settings` and `metadata`, the ids of the two compat Direct integrations), and app users
//! (a customer of a hub with its Smooch fields). Hubs that exist already get their app row, and
//! so their `appToken`, here.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SmoochKeys {
    Table,
    KeyId,
    TenantId,
    HubId,
    Name,
    SecretEnc,
    Created,
}

#[derive(DeriveIden)]
enum SmoochApps {
    Table,
    HubId,
    TenantId,
    AppToken,
    Settings,
    Metadata,
    UsersIntegrationId,
    BusinessIntegrationId,
}

#[derive(DeriveIden)]
enum SmoochAppUsers {
    Table,
    Id,
    TenantId,
    HubId,
    IntegrationId,
    Binding,
    UserId,
    GivenName,
    Surname,
    Email,
    SignedUpAt,
    Properties,
    Created,
    Modified,
}

/// 25 characters of `[a-z0-9]`, as Smooch's app tokens.
fn app_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..25)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SmoochKeys::Table)
                    .col(string(SmoochKeys::KeyId).primary_key())
                    .col(uuid(SmoochKeys::TenantId))
                    .col(uuid_null(SmoochKeys::HubId))
                    .col(string(SmoochKeys::Name))
                    .col(blob(SmoochKeys::SecretEnc))
                    .col(big_integer(SmoochKeys::Created))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("smooch_keys_by_tenant")
                    .table(SmoochKeys::Table)
                    .col(SmoochKeys::TenantId)
                    .col(SmoochKeys::HubId)
                    .col(SmoochKeys::Created)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SmoochApps::Table)
                    .col(uuid(SmoochApps::HubId).primary_key())
                    .col(uuid(SmoochApps::TenantId))
                    .col(string(SmoochApps::AppToken).unique_key())
                    .col(text_null(SmoochApps::Settings))
                    .col(text_null(SmoochApps::Metadata))
                    .col(uuid_null(SmoochApps::UsersIntegrationId))
                    .col(uuid_null(SmoochApps::BusinessIntegrationId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SmoochAppUsers::Table)
                    .col(uuid(SmoochAppUsers::Id).primary_key())
                    .col(uuid(SmoochAppUsers::TenantId))
                    .col(uuid(SmoochAppUsers::HubId))
                    .col(uuid(SmoochAppUsers::IntegrationId))
                    .col(string(SmoochAppUsers::Binding))
                    .col(string_null(SmoochAppUsers::UserId))
                    .col(string_null(SmoochAppUsers::GivenName))
                    .col(string_null(SmoochAppUsers::Surname))
                    .col(string_null(SmoochAppUsers::Email))
                    .col(big_integer(SmoochAppUsers::SignedUpAt))
                    .col(text(SmoochAppUsers::Properties))
                    .col(big_integer(SmoochAppUsers::Created))
                    .col(big_integer(SmoochAppUsers::Modified))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("smooch_app_users_by_binding")
                    .table(SmoochAppUsers::Table)
                    .col(SmoochAppUsers::IntegrationId)
                    .col(SmoochAppUsers::Binding)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("smooch_app_users_by_user_id")
                    .table(SmoochAppUsers::Table)
                    .col(SmoochAppUsers::HubId)
                    .col(SmoochAppUsers::UserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Every hub that exists already is an app: give it its row and token.
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let hubs = db
            .query_all(Statement::from_string(
                backend,
                "SELECT id, tenant_id FROM hubs",
            ))
            .await?;
        for row in hubs {
            let id: uuid::Uuid = row.try_get("", "id")?;
            let tenant: uuid::Uuid = row.try_get("", "tenant_id")?;
            let insert = Query::insert()
                .into_table(SmoochApps::Table)
                .columns([
                    SmoochApps::HubId,
                    SmoochApps::TenantId,
                    SmoochApps::AppToken,
                ])
                .values_panic([id.into(), tenant.into(), app_token().into()])
                .to_owned();
            manager.exec_stmt(insert).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SmoochAppUsers::Table.into_iden(),
            SmoochApps::Table.into_iden(),
            SmoochKeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
