//! `integrations`: a hub's integrations; the configuration only encrypted.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub hub_id: Uuid,
    pub name: String,
    /// The channel's catalogue number.
    pub channel_id: i32,
    /// `Customer`, `Agent`, `Bot` or `System`.
    pub integration_type: String,
    pub inbound_id: Option<String>,
    pub status_id: i32,
    /// The configuration as JSON, sealed (see `crypto`).
    #[sea_orm(column_type = "Blob")]
    pub configuration_enc: Vec<u8>,
    pub created: i64,
    pub modified: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
