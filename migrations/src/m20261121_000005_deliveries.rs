//! Webhook delivery (SPEC 5.5): the outbox. A delivery is one `webhook-id` to one endpoint (a
//! Direct integration with `webhookUrl`, or a System integration) for one conversation: one
//! activity copy, or for System several (`delivery_activities`). It is written in the same
//! transaction as its activity; the worker claims it with a lease, records every attempt, and
//! a failed one leaves a notification for the tenant.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    TenantId,
    HubId,
    IntegrationId,
    ConversationId,
    WebhookId,
    Kind,
    Status,
    /// The `eventId` of its first activity: the order of deliveries to one endpoint within
    /// one conversation.
    Seq,
    AttemptCount,
    /// Attempts since the delivery was (re)queued: its place in the retry schedule.
    RoundAttempts,
    NextAttemptAt,
    /// Claimed by a worker until then (NULL: not claimed).
    LeaseUntil,
    LastError,
    Created,
    Modified,
}

#[derive(DeriveIden)]
enum DeliveryActivities {
    Table,
    DeliveryId,
    ActivityId,
    EventId,
}

#[derive(DeriveIden)]
enum DeliveryAttempts {
    Table,
    Id,
    DeliveryId,
    At,
    StatusCode,
    Error,
    DurationMs,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    TenantId,
    IntegrationId,
    DeliveryId,
    Kind,
    Description,
    Created,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(uuid(Deliveries::Id).primary_key())
                    .col(uuid(Deliveries::TenantId))
                    .col(uuid(Deliveries::HubId))
                    .col(uuid(Deliveries::IntegrationId))
                    .col(uuid(Deliveries::ConversationId))
                    .col(string(Deliveries::WebhookId))
                    .col(string(Deliveries::Kind))
                    .col(string(Deliveries::Status))
                    .col(big_integer(Deliveries::Seq))
                    .col(integer(Deliveries::AttemptCount))
                    .col(integer(Deliveries::RoundAttempts))
                    .col(big_integer(Deliveries::NextAttemptAt))
                    .col(big_integer_null(Deliveries::LeaseUntil))
                    .col(text_null(Deliveries::LastError))
                    .col(big_integer(Deliveries::Created))
                    .col(big_integer(Deliveries::Modified))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deliveries_conversation")
                            .from(Deliveries::Table, Deliveries::ConversationId)
                            .to(Alias::new("conversations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deliveries_integration")
                            .from(Deliveries::Table, Deliveries::IntegrationId)
                            .to(Alias::new("integrations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ix_deliveries_due",
                vec![Deliveries::Status, Deliveries::NextAttemptAt],
            ),
            (
                "ix_deliveries_stream",
                vec![
                    Deliveries::IntegrationId,
                    Deliveries::ConversationId,
                    Deliveries::Status,
                    Deliveries::Seq,
                ],
            ),
            (
                "ix_deliveries_tenant_created",
                vec![Deliveries::TenantId, Deliveries::Created],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Deliveries::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ux_deliveries_webhook_id")
                    .table(Deliveries::Table)
                    .col(Deliveries::WebhookId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeliveryActivities::Table)
                    .col(uuid(DeliveryActivities::DeliveryId))
                    .col(uuid(DeliveryActivities::ActivityId))
                    .col(big_integer(DeliveryActivities::EventId))
                    .primary_key(
                        Index::create()
                            .col(DeliveryActivities::DeliveryId)
                            .col(DeliveryActivities::ActivityId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_delivery_activities_delivery")
                            .from(DeliveryActivities::Table, DeliveryActivities::DeliveryId)
                            .to(Deliveries::Table, Deliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_delivery_activities_activity")
                            .from(DeliveryActivities::Table, DeliveryActivities::ActivityId)
                            .to(Alias::new("activities"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeliveryAttempts::Table)
                    .col(uuid(DeliveryAttempts::Id).primary_key())
                    .col(uuid(DeliveryAttempts::DeliveryId))
                    .col(big_integer(DeliveryAttempts::At))
                    .col(integer_null(DeliveryAttempts::StatusCode))
                    .col(text_null(DeliveryAttempts::Error))
                    .col(big_integer(DeliveryAttempts::DurationMs))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_delivery_attempts_delivery")
                            .from(DeliveryAttempts::Table, DeliveryAttempts::DeliveryId)
                            .to(Deliveries::Table, Deliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_delivery_attempts_delivery")
                    .table(DeliveryAttempts::Table)
                    .col(DeliveryAttempts::DeliveryId)
                    .col(DeliveryAttempts::At)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(uuid(Notifications::Id).primary_key())
                    .col(uuid(Notifications::TenantId))
                    .col(uuid(Notifications::IntegrationId))
                    .col(uuid_null(Notifications::DeliveryId))
                    .col(string(Notifications::Kind))
                    .col(text(Notifications::Description))
                    .col(big_integer(Notifications::Created))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_notifications_tenant_created")
                    .table(Notifications::Table)
                    .col(Notifications::TenantId)
                    .col(Notifications::Created)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Notifications::Table.into_iden(),
            DeliveryAttempts::Table.into_iden(),
            DeliveryActivities::Table.into_iden(),
            Deliveries::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
