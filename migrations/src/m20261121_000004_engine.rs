//! The engine (SPEC 4): conversations, the hub's `eventId` clock, activity copies (one row per
//! recipient), idempotency keys of the inbound route, and the signatures of integration-signed
//! requests already accepted (refused when replayed inside their clock window).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::m20261121_000002_hubs::Hubs;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Conversations {
    Table,
    Id,
    TenantId,
    HubId,
    IntegrationId,
    Binding,
    /// The binding while open, NULL once closed: unique per integration, so a binding has at
    /// most one open conversation (NULLs never collide, on either backend).
    OpenBinding,
    TokenId,
    Mode,
    Status,
    Properties,
    Opened,
    Closed,
    CloseReason,
    LastActivity,
}

#[derive(DeriveIden)]
enum HubClocks {
    Table,
    HubId,
    LastEventId,
}

#[derive(DeriveIden)]
pub(crate) enum Activities {
    Table,
    Id,
    TenantId,
    HubId,
    ConversationId,
    EventId,
    SenderIntegrationId,
    SenderType,
    RecipientIntegrationId,
    RecipientType,
    IsEcho,
    Body,
    Created,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    TenantId,
    Key,
    RequestHash,
    Response,
    Created,
}

#[derive(DeriveIden)]
enum UsedSignatures {
    Table,
    Signature,
    Expires,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(uuid(Conversations::Id).primary_key())
                    .col(uuid(Conversations::TenantId))
                    .col(uuid(Conversations::HubId))
                    .col(uuid(Conversations::IntegrationId))
                    .col(string(Conversations::Binding))
                    .col(string_null(Conversations::OpenBinding))
                    .col(string(Conversations::TokenId))
                    .col(string(Conversations::Mode))
                    .col(string(Conversations::Status))
                    .col(text(Conversations::Properties))
                    .col(big_integer(Conversations::Opened))
                    .col(big_integer_null(Conversations::Closed))
                    .col(string_null(Conversations::CloseReason))
                    .col(big_integer(Conversations::LastActivity))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversations_hub")
                            .from(Conversations::Table, Conversations::HubId)
                            .to(Hubs::Table, Hubs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversations_integration")
                            .from(Conversations::Table, Conversations::IntegrationId)
                            .to(Alias::new("integrations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "ux_conversations_open_binding",
                vec![Conversations::IntegrationId, Conversations::OpenBinding],
                true,
            ),
            (
                "ix_conversations_sweep",
                vec![
                    Conversations::HubId,
                    Conversations::Status,
                    Conversations::LastActivity,
                ],
                false,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Conversations::Table);
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(HubClocks::Table)
                    .col(uuid(HubClocks::HubId).primary_key())
                    .col(big_integer(HubClocks::LastEventId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_hub_clocks_hub")
                            .from(HubClocks::Table, HubClocks::HubId)
                            .to(Hubs::Table, Hubs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Activities::Table)
                    .col(uuid(Activities::Id).primary_key())
                    .col(uuid(Activities::TenantId))
                    .col(uuid(Activities::HubId))
                    .col(uuid(Activities::ConversationId))
                    .col(big_integer(Activities::EventId))
                    .col(uuid(Activities::SenderIntegrationId))
                    .col(string(Activities::SenderType))
                    .col(uuid(Activities::RecipientIntegrationId))
                    .col(string(Activities::RecipientType))
                    .col(boolean(Activities::IsEcho))
                    .col(text(Activities::Body))
                    .col(big_integer(Activities::Created))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_activities_conversation")
                            .from(Activities::Table, Activities::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, first) in [
            ("ix_activities_conversation", Activities::ConversationId),
            (
                "ix_activities_recipient",
                Activities::RecipientIntegrationId,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Activities::Table)
                        .col(first)
                        .col(Activities::EventId)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(uuid(IdempotencyKeys::TenantId))
                    .col(string(IdempotencyKeys::Key))
                    .col(string(IdempotencyKeys::RequestHash))
                    .col(text(IdempotencyKeys::Response))
                    .col(big_integer(IdempotencyKeys::Created))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::TenantId)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_idempotency_keys_created")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::Created)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UsedSignatures::Table)
                    .col(string(UsedSignatures::Signature).primary_key())
                    .col(big_integer(UsedSignatures::Expires))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_used_signatures_expires")
                    .table(UsedSignatures::Table)
                    .col(UsedSignatures::Expires)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UsedSignatures::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            Activities::Table.into_iden(),
            HubClocks::Table.into_iden(),
            Conversations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
