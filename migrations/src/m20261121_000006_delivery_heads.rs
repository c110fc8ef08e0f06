//! Webhook delivery: the head of each stream (the oldest pending delivery to one endpoint in one
//! conversation, the only one that may be attempted) is flagged, and a partial index holds the
//! flagged rows, so a claim looks at the heads instead of every pending delivery. With a backlog
//! of 40,000 pending deliveries, PostgreSQL spent 230 ms per claim deciding which were heads.
//! `ix_deliveries_due` (status, next_attempt_at) served only the claim and goes: left there,
//! PostgreSQL's planner kept walking every pending row through it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Head,
    Status,
    NextAttemptAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .add_column(boolean(Deliveries::Head).default(false))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // The heads of the deliveries already queued.
        db.execute_unprepared(
            "UPDATE deliveries SET head = TRUE WHERE status = 'pending' AND NOT EXISTS (\
             SELECT 1 FROM deliveries e WHERE e.integration_id = deliveries.integration_id \
             AND e.conversation_id = deliveries.conversation_id AND e.status = 'pending' \
             AND e.seq < deliveries.seq)",
        )
        .await?;
        // Partial indexes are written the same way on SQLite and PostgreSQL.
        db.execute_unprepared(
            "CREATE INDEX ix_deliveries_heads ON deliveries (next_attempt_at) WHERE head",
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_deliveries_due")
                    .table(Deliveries::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_deliveries_due")
                    .table(Deliveries::Table)
                    .col(Deliveries::Status)
                    .col(Deliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_deliveries_heads")
                    .table(Deliveries::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .drop_column(Deliveries::Head)
                    .to_owned(),
            )
            .await
    }
}
