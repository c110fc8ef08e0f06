//! `client_secrets`: a client's secrets, kept only as a hash and a short preview.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "client_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    #[sea_orm(unique)]
    pub hash: String,
    pub preview: String,
    /// Epoch milliseconds; `None` never expires.
    pub expiration: Option<i64>,
    pub created: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
