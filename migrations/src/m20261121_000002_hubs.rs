//! Hubs (SPEC 3): a tenant's unit of routing. Names are unique per tenant; lists page by
//! (tenant, created).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261121_000001_identity::Tenants;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Hubs {
    Table,
    Id,
    TenantId,
    Name,
    Description,
    CloseDormantConversation,
    StatusId,
    Created,
    Modified,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Hubs::Table)
                    .col(uuid(Hubs::Id).primary_key())
                    .col(uuid(Hubs::TenantId))
                    .col(string(Hubs::Name))
                    .col(text(Hubs::Description))
                    .col(big_integer(Hubs::CloseDormantConversation))
                    .col(integer(Hubs::StatusId))
                    .col(big_integer(Hubs::Created))
                    .col(big_integer(Hubs::Modified))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_hubs_tenant")
                            .from(Hubs::Table, Hubs::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_hubs_tenant_name")
                    .table(Hubs::Table)
                    .col(Hubs::TenantId)
                    .col(Hubs::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_hubs_tenant_created")
                    .table(Hubs::Table)
                    .col(Hubs::TenantId)
                    .col(Hubs::Created)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Hubs::Table).to_owned())
            .await
    }
}
