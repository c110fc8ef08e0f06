//! `deliveries`: the webhook outbox, one row per `webhook-id`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub hub_id: Uuid,
    pub integration_id: Uuid,
    pub conversation_id: Uuid,
    pub webhook_id: String,
    /// `direct`, `system` or `provider`.
    pub kind: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub seq: i64,
    pub attempt_count: i32,
    pub round_attempts: i32,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created: i64,
    pub modified: i64,
    /// The head of its stream: the oldest pending delivery to its endpoint in its conversation
    /// (a claim looks at heads only; see `Store::claim_deliveries`).
    pub head: bool,
    /// Provider deliveries: the recipient integration's channel (`Telegram`); `None` on webhooks.
    pub channel: Option<String>,
    /// Provider deliveries: the parts the provider accepted (a retry resumes after them).
    pub parts_accepted: i32,
    /// Provider deliveries: the provider's ids of the accepted parts, as a JSON array.
    #[sea_orm(column_type = "Text", nullable)]
    pub provider_ids: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
