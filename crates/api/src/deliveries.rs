//! Webhook deliveries and notifications (SPEC 5.5), for tenant admins: read from the store; a
//! replayed delivery is queued in the store and wakes the webhook worker through the engine.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use switchboard_domain::ids::{DeliveryId, IntegrationId};
use switchboard_domain::time::{now_millis, rfc3339};
use switchboard_domain::webhook::DeliveryStatus;
use switchboard_storage::{Delivery, Notification};
use uuid::Uuid;

use crate::auth::PortalAuth;
use crate::error::{ApiError, Code};
use crate::paging::page;
use crate::state::AppState;
use crate::Tags;

/// One POST of a delivery.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AttemptOut {
    /// When it started, RFC 3339 UTC.
    pub at: String,
    /// The receiver's HTTP status; null when there was no answer.
    pub status_code: Option<u16>,
    /// Why it failed without an answer (timeout, connection, refused address); null otherwise.
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A delivery: one `webhook-id` to one endpoint (one POST and its retries).
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct DeliveryOut {
    pub delivery_id: Uuid,
    pub integration_id: Uuid,
    pub conversation_id: Uuid,
    /// The `webhook-id` header: the same on every retry and replay.
    pub webhook_id: String,
    /// The `eventId`s of the activities it carries, oldest first.
    pub event_ids: Vec<i64>,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempt_count: i32,
    /// When it is attempted next (RFC 3339 UTC); null unless pending.
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptOut>,
    pub created: String,
    /// Provider deliveries (SPEC 7.4.4): the recipient integration's channel (`Telegram`);
    /// null on webhook deliveries.
    pub channel: Option<String>,
    /// Provider deliveries: the provider's ids of the parts it accepted (Twilio `sid`,
    /// Messenger `message_id`, WhatsApp `messages[].id`, Telegram `message_id`); null on webhook
    /// deliveries.
    pub provider_message_ids: Option<Vec<String>>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        Self {
            delivery_id: d.id.as_uuid(),
            integration_id: d.integration_id.as_uuid(),
            conversation_id: d.conversation_id.as_uuid(),
            provider_message_ids: d.channel.is_some().then(|| d.provider_ids.clone()),
            channel: d.channel,
            webhook_id: d.webhook_id,
            event_ids: d.event_ids,
            status: d.status.as_str().to_owned(),
            attempt_count: d.attempt_count,
            next_attempt_at: d.next_attempt_at.map(rfc3339),
            last_error: d.last_error,
            attempts: d
                .attempts
                .into_iter()
                .map(|a| AttemptOut {
                    at: rfc3339(a.at),
                    status_code: a.status_code,
                    error: a.error,
                    duration_ms: a.duration_ms,
                })
                .collect(),
            created: rfc3339(d.created),
        }
    }
}

/// A page of deliveries.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct DeliveryPage {
    pub page_number: u64,
    pub page_size: u64,
    pub total: u64,
    /// Oldest first.
    pub results: Vec<DeliveryOut>,
}

/// Something a tenant admin should know, such as a delivery that failed for good.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct NotificationOut {
    pub notification_id: Uuid,
    pub integration_id: Uuid,
    pub delivery_id: Option<Uuid>,
    /// `exhausted` (the retry schedule ran out), `gone` (the receiver answered 410 and the
    /// integration was paused), `delivery_failed` (a provider refused a message for good, or
    /// WhatsApp reported it failed), `provider_auth_failed` (a provider refused the
    /// integration's credentials; the integration is not paused), `inbound_dropped` (a
    /// provider's messages arrived while the integration or its hub was paused; at most one an
    /// hour per integration) or `inbound_rejected` (a provider's message could not be stored:
    /// no handler, or a sender that cannot be a conversation's binding).
    pub kind: String,
    pub description: String,
    pub created: String,
}

impl From<Notification> for NotificationOut {
    fn from(n: Notification) -> Self {
        Self {
            notification_id: n.id.as_uuid(),
            integration_id: n.integration_id.as_uuid(),
            delivery_id: n.delivery_id.map(|d| d.as_uuid()),
            kind: n.kind,
            description: n.description,
            created: rfc3339(n.created),
        }
    }
}

/// A page of notifications.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct NotificationPage {
    pub page_number: u64,
    pub page_size: u64,
    pub total: u64,
    /// Oldest first.
    pub results: Vec<NotificationOut>,
}

fn delivery_missing() -> ApiError {
    ApiError::not_found("delivery")
}

pub struct DeliveriesApi;

#[OpenApi(tag = "Tags::Deliveries")]
impl DeliveriesApi {
    /// List webhook deliveries
    ///
    /// The tenant's deliveries, oldest first, with every attempt and the last error.
    // SPEC 5.5
    #[oai(
        path = "/api/v1/deliveries",
        method = "get",
        operation_id = "deliveries.list"
    )]
    async fn list(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        /// Only this integration's deliveries.
        #[oai(name = "integrationId")]
        integration_id: Query<Option<Uuid>>,
        /// `pending`, `succeeded` or `failed`.
        status: Query<Option<String>>,
        /// Page to return, from 0.
        #[oai(name = "pageNumber")]
        page_number: Query<Option<i64>>,
        /// Deliveries per page, 1 to 100 (default 50).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> Result<Json<DeliveryPage>, ApiError> {
        let request = page(page_number.0, page_size.0)?;
        // An empty `integrationId` or `status` is refused like any value that is not one: the
        // document says what a filter is, and an empty one is not.
        let integration = integration_id.0.map(IntegrationId::from_uuid);
        let status = match status.0.as_deref() {
            None => None,
            Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::out_of_range(format!(
                    "Parameter 'status' must be pending, succeeded or failed, not '{s}'."
                ))
            })?),
        };
        let p = state
            .store
            .list_deliveries(auth.0.tid, integration, status, request)
            .await?;
        Ok(Json(DeliveryPage {
            page_number: p.number,
            page_size: p.size,
            total: p.total,
            results: p.results.into_iter().map(DeliveryOut::from).collect(),
        }))
    }

    /// Replay a delivery
    ///
    /// Queues a failed (or succeeded) delivery again, due now, with the same `webhook-id` and
    /// a fresh retry schedule. A pending delivery is 400/206.
    // SPEC 5.5
    #[oai(
        path = "/api/v1/deliveries/:deliveryId/retry",
        method = "post",
        operation_id = "deliveries.retry"
    )]
    async fn retry(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "deliveryId")] id: Path<Uuid>,
    ) -> Result<Json<DeliveryOut>, ApiError> {
        let d = state
            .store
            .requeue_delivery(auth.0.tid, DeliveryId::from_uuid(id.0), now_millis())
            .await
            .map_err(|e| match e {
                switchboard_storage::Error::NotFound => delivery_missing(),
                switchboard_storage::Error::Conflict => ApiError::new(
                    Code::OutOfRange,
                    "The delivery is pending: only a failed or succeeded delivery can be replayed.",
                ),
                other => other.into(),
            })?;
        state.engine.wake_deliveries();
        Ok(Json(d.into()))
    }

    /// List notifications
    ///
    /// What the tenant should know, oldest first: deliveries that failed for good.
    // SPEC 5.5
    #[oai(
        path = "/api/v1/notifications",
        method = "get",
        operation_id = "notifications.list"
    )]
    async fn notifications(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        /// Page to return, from 0.
        #[oai(name = "pageNumber")]
        page_number: Query<Option<i64>>,
        /// Notifications per page, 1 to 100 (default 50).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> Result<Json<NotificationPage>, ApiError> {
        let p = state
            .store
            .list_notifications(auth.0.tid, page(page_number.0, page_size.0)?)
            .await?;
        Ok(Json(NotificationPage {
            page_number: p.number,
            page_size: p.size,
            total: p.total,
            results: p.results.into_iter().map(NotificationOut::from).collect(),
        }))
    }
}
