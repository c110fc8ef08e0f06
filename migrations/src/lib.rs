//! The Switchboard schema, as sea-orm-migration steps: one file per change, never edited once
//! merged (a change to an existing table is a new file).
//!
//! Every step is portable across SQLite and PostgreSQL: ids are `uuid` columns, times are BIGINT
//! epoch milliseconds, encrypted values are blobs. Running the migrations is `storage`'s job
//! (`Store::migrate`, which serializes concurrent runs on PostgreSQL); this crate only describes
//! the schema.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_identity;
mod m20261121_000002_hubs;
mod m20261121_000003_integrations;
mod m20261121_000004_engine;
mod m20261121_000005_deliveries;
mod m20261121_000006_delivery_heads;
mod m20261207_000007_channels;
mod m20261207_000008_smooch;

/// All schema changes, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_identity::Migration),
            Box::new(m20261121_000002_hubs::Migration),
            Box::new(m20261121_000003_integrations::Migration),
            Box::new(m20261121_000004_engine::Migration),
            Box::new(m20261121_000005_deliveries::Migration),
            Box::new(m20261121_000006_delivery_heads::Migration),
            Box::new(m20261207_000007_channels::Migration),
            Box::new(m20261207_000008_smooch::Migration),
        ]
    }
}
