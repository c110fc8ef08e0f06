//! `conversations`: a customer's conversation on a Customer integration.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub hub_id: Uuid,
    pub integration_id: Uuid,
    pub binding: String,
    /// `binding` while open, NULL once closed (unique per integration).
    pub open_binding: Option<String>,
    pub token_id: String,
    /// `bot` or `agent`.
    pub mode: String,
    /// `open` or `closed`.
    pub status: String,
    /// JSON object of collections.
    #[sea_orm(column_type = "Text")]
    pub properties: String,
    pub opened: i64,
    pub closed: Option<i64>,
    pub close_reason: Option<String>,
    pub last_activity: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
