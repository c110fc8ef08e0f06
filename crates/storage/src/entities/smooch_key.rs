//! `smooch_keys`: account keys (`act_…`, `hub_id` null) and app keys (`app_…`) of the
//! Smooch-compatible API (SPEC 8.3). The HS256 secret is only stored sealed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "smooch_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_id: String,
    pub tenant_id: Uuid,
    pub hub_id: Option<Uuid>,
    pub name: String,
    #[sea_orm(column_type = "Blob")]
    pub secret_enc: Vec<u8>,
    pub created: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
