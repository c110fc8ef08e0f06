//! `smooch_app_users`: a customer (integration and binding) of a hub with its Smooch fields
//! (SPEC 8.8).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "smooch_app_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub hub_id: Uuid,
    pub integration_id: Uuid,
    pub binding: String,
    pub user_id: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    pub signed_up_at: i64,
    /// A JSON object.
    #[sea_orm(column_type = "Text")]
    pub properties: String,
    pub created: i64,
    pub modified: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
