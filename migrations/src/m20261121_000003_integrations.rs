//! Integrations (SPEC 3): a hub's channels. Names are unique per hub. The configuration holds
//! channel secrets, so it is stored only encrypted (`configuration_enc`, AES-256-GCM by
//! `storage`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261121_000001_identity::Tenants;
use crate::m20261121_000002_hubs::Hubs;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Integrations {
    Table,
    Id,
    TenantId,
    HubId,
    Name,
    ChannelId,
    IntegrationType,
    InboundId,
    StatusId,
    ConfigurationEnc,
    Created,
    Modified,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Integrations::Table)
                    .col(uuid(Integrations::Id).primary_key())
                    .col(uuid(Integrations::TenantId))
                    .col(uuid(Integrations::HubId))
                    .col(string(Integrations::Name))
                    .col(integer(Integrations::ChannelId))
                    .col(string(Integrations::IntegrationType))
                    .col(string_null(Integrations::InboundId))
                    .col(integer(Integrations::StatusId))
                    .col(blob(Integrations::ConfigurationEnc))
                    .col(big_integer(Integrations::Created))
                    .col(big_integer(Integrations::Modified))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integrations_tenant")
                            .from(Integrations::Table, Integrations::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    // Storage deletes a hub's integrations itself (with their dependents, in one
                    // transaction); the cascade only covers an integration created concurrently.
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integrations_hub")
                            .from(Integrations::Table, Integrations::HubId)
                            .to(Hubs::Table, Hubs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_integrations_hub_name")
                    .table(Integrations::Table)
                    .col(Integrations::HubId)
                    .col(Integrations::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_integrations_tenant_created")
                    .table(Integrations::Table)
                    .col(Integrations::TenantId)
                    .col(Integrations::Created)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_integrations_hub_created")
                    .table(Integrations::Table)
                    .col(Integrations::HubId)
                    .col(Integrations::Created)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Integrations::Table).to_owned())
            .await
    }
}
