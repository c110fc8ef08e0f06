//! `activities`: one row per copy of an activity (one per recipient).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub hub_id: Uuid,
    pub conversation_id: Uuid,
    pub event_id: i64,
    pub sender_integration_id: Uuid,
    /// `Customer`, `Agent`, `Bot` or `System`.
    pub sender_type: String,
    pub recipient_integration_id: Uuid,
    pub recipient_type: String,
    pub is_echo: bool,
    /// The copy as delivered (SPEC 4 JSON).
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub created: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
