//! Channel adapters (SPEC 7): provider deliveries share the webhook outbox and add what they
//! record (the recipient's channel, how many parts the provider accepted, the provider's ids of
//! those parts); integrations being provisioned wait in `pending_integrations`, where only the
//! providers' handshake requests find them, until their provider calls succeed (SPEC 7.5.1).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Channel,
    PartsAccepted,
    ProviderIds,
}

#[derive(DeriveIden)]
enum PendingIntegrations {
    Table,
    Id,
    TenantId,
    ChannelId,
    ConfigurationEnc,
    Created,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            ColumnDef::new(Deliveries::Channel)
                .string()
                .null()
                .to_owned(),
            integer(Deliveries::PartsAccepted).default(0).to_owned(),
            text_null(Deliveries::ProviderIds).to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Deliveries::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(PendingIntegrations::Table)
                    .col(uuid(PendingIntegrations::Id).primary_key())
                    .col(uuid(PendingIntegrations::TenantId))
                    .col(integer(PendingIntegrations::ChannelId))
                    .col(blob(PendingIntegrations::ConfigurationEnc))
                    .col(big_integer(PendingIntegrations::Created))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PendingIntegrations::Table).to_owned())
            .await?;
        for column in [
            Deliveries::Channel,
            Deliveries::PartsAccepted,
            Deliveries::ProviderIds,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Deliveries::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
