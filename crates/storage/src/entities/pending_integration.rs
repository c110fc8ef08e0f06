//! `pending_integrations`: integrations whose provider calls are under way (SPEC 7.5.1); only
//! the providers' handshake requests find them. The configuration only encrypted.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pending_integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The channel's catalogue number.
    pub channel_id: i32,
    /// The configuration as JSON, sealed as an integration's.
    #[sea_orm(column_type = "Blob")]
    pub configuration_enc: Vec<u8>,
    pub created: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
