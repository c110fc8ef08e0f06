//! Identity (SPEC 2): tenants, their API clients, the clients' secrets (stored only as hashes),
//! and the server's own keys (stored encrypted).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Tenants {
    Table,
    Id,
    Name,
    Created,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    Id,
    TenantId,
    Name,
    Scope,
    Enabled,
    Created,
}

#[derive(DeriveIden)]
enum ClientSecrets {
    Table,
    Id,
    ClientId,
    TenantId,
    Name,
    Hash,
    Preview,
    Expiration,
    Created,
}

#[derive(DeriveIden)]
enum ServerKeys {
    Table,
    Id,
    KeyEnc,
    Created,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(uuid(Tenants::Id).primary_key())
                    .col(string_uniq(Tenants::Name))
                    .col(big_integer(Tenants::Created))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .col(uuid(Clients::Id).primary_key())
                    .col(uuid(Clients::TenantId))
                    .col(string(Clients::Name))
                    .col(string(Clients::Scope))
                    .col(boolean(Clients::Enabled))
                    .col(big_integer(Clients::Created))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_clients_tenant")
                            .from(Clients::Table, Clients::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_clients_tenant")
                    .table(Clients::Table)
                    .col(Clients::TenantId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClientSecrets::Table)
                    .col(uuid(ClientSecrets::Id).primary_key())
                    .col(uuid(ClientSecrets::ClientId))
                    .col(uuid(ClientSecrets::TenantId))
                    .col(string(ClientSecrets::Name))
                    .col(string_uniq(ClientSecrets::Hash))
                    .col(string(ClientSecrets::Preview))
                    .col(big_integer_null(ClientSecrets::Expiration))
                    .col(big_integer(ClientSecrets::Created))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_client_secrets_client")
                            .from(ClientSecrets::Table, ClientSecrets::ClientId)
                            .to(Clients::Table, Clients::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_client_secrets_tenant")
                            .from(ClientSecrets::Table, ClientSecrets::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_client_secrets_client")
                    .table(ClientSecrets::Table)
                    .col(ClientSecrets::ClientId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServerKeys::Table)
                    .col(string(ServerKeys::Id).primary_key())
                    .col(blob(ServerKeys::KeyEnc))
                    .col(big_integer(ServerKeys::Created))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ServerKeys::Table.into_iden(),
            ClientSecrets::Table.into_iden(),
            Clients::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
