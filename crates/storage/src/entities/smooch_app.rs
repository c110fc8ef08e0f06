//! `smooch_apps`: what a hub has as a Smooch app (SPEC 8.4, 8.8): its public `appToken`, the
//! stored `settings` and `metadata` (JSON text, null until set) and the ids of its two compat
//! Direct integrations.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "smooch_apps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub hub_id: Uuid,
    pub tenant_id: Uuid,
    pub app_token: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub settings: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub metadata: Option<String>,
    pub users_integration_id: Option<Uuid>,
    pub business_integration_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
