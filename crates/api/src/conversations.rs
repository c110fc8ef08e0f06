//! Conversations (SPEC 4): establish and close (through the engine's service), and read.

use std::collections::BTreeMap;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::{Map, Value};
use switchboard_domain::activity::ConversationReason;
use switchboard_domain::conversation::{self, Conversation};
use switchboard_domain::ids::{ConversationId, TenantId};
use switchboard_domain::time::rfc3339;
use uuid::Uuid;

use crate::auth::EngineAuth;
use crate::body::Body;
use crate::error::{ApiError, Resource};
use crate::hubs::HubOut;
use crate::state::AppState;
use crate::Tags;

/// Collections of string key/values, e.g. `{"profile": {"email": "jane@example.com"}}`.
pub type Properties = BTreeMap<String, BTreeMap<String, String>>;

fn properties(map: &Map<String, Value>) -> Properties {
    serde_json::from_value(Value::Object(map.clone())).unwrap_or_default()
}

/// The conversation of a customer.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EstablishIn {
    /// A Customer integration of the tenant.
    pub integration_id: Uuid,
    /// Any string (1 to 1024 characters) that identifies the customer within the integration.
    #[oai(validator(max_length = 1024))]
    pub binding: String,
    /// Collections of string key/values, merged key by key into an open conversation's. What
    /// would be stored (the merged properties, with their defaults) holds at most 32
    /// collections of at most 64 keys each, names (of collections and keys) of at most 256
    /// characters, values of at most 4,096 characters, and at most 16,384 bytes as JSON in all;
    /// past a cap the establish is refused (400, code 206) and nothing changes.
    #[oai(validator(max_properties = 32))]
    pub properties: Option<Properties>,
}

/// The conversation of a binding.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EstablishOut {
    pub tenant_id: Uuid,
    pub hub_id: Uuid,
    pub integration_id: Uuid,
    pub conversation_id: Uuid,
    /// The customer's opaque id in this conversation.
    pub token_id: String,
    /// RFC 3339, UTC.
    pub opened_date_time: String,
    /// True when this call opened it.
    pub is_new: bool,
    /// `profile.device` defaults to the channel's name, `profile."full name"` to a random
    /// two-word name.
    pub properties: Properties,
}

/// The integration of a conversation, without its configuration.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ConversationIntegration {
    pub integration_id: Uuid,
    pub hub_id: Uuid,
    pub inbound_id: Option<String>,
    pub integration_type_id: String,
    pub channel_id: String,
    pub name: String,
    pub status_id: i32,
    pub created: String,
    pub modified: String,
    /// Its hub.
    pub hub: HubOut,
}

/// A conversation.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ConversationOut {
    pub conversation_id: Uuid,
    /// The Customer integration it was established on.
    pub integration_id: Uuid,
    pub token_id: String,
    /// `open` or `closed`.
    pub status: String,
    /// RFC 3339, UTC.
    pub opened_date_time: String,
    /// RFC 3339, UTC; null while open.
    pub closed_date_time: Option<String>,
    pub properties: Properties,
    pub integration: ConversationIntegration,
}

/// The GET shape of a conversation, with its integration and hub.
pub async fn conversation_out(
    state: &AppState,
    tenant: TenantId,
    c: Conversation,
) -> Result<ConversationOut, ApiError> {
    let integration = state
        .store
        .get_integration(tenant, c.integration_id)
        .await
        .map_err(ApiError::storage(Resource::Conversation))?;
    let hub = state
        .store
        .get_hub(tenant, c.hub_id)
        .await
        .map_err(ApiError::storage(Resource::Conversation))?;
    Ok(ConversationOut {
        conversation_id: c.id.as_uuid(),
        integration_id: c.integration_id.as_uuid(),
        token_id: c.token_id,
        status: c.state.as_str().to_owned(),
        opened_date_time: rfc3339(c.opened),
        closed_date_time: c.closed.map(rfc3339),
        properties: properties(&c.properties),
        integration: ConversationIntegration {
            integration_id: integration.id.as_uuid(),
            hub_id: integration.hub_id.as_uuid(),
            inbound_id: integration.inbound_id,
            integration_type_id: integration.integration_type.as_str().to_owned(),
            channel_id: integration.channel.name().to_owned(),
            name: integration.name,
            status_id: integration.status.id(),
            created: rfc3339(integration.created),
            modified: rfc3339(integration.modified),
            hub: hub.into(),
        },
    })
}

pub struct ConversationsApi;

#[OpenApi(tag = "Tags::Conversations")]
impl ConversationsApi {
    /// Establish a conversation
    ///
    /// The open conversation of the customer `binding` on a Customer integration, with the
    /// given `properties` merged in (`isNew: false`), or a new one (`isNew: true`). A new
    /// conversation sends the integration's `start` messages to the customer, and a
    /// `conversation:opened` event to the hub's System integrations that subscribe to it.
    // SPEC 4
    #[oai(
        path = "/api/v1/conversations/establish",
        method = "post",
        operation_id = "conversations.establish"
    )]
    async fn establish(
        &self,
        auth: EngineAuth,
        state: Data<&AppState>,
        body: Body<EstablishIn>,
    ) -> Result<Json<EstablishOut>, ApiError> {
        let req = conversation::validate_establish(&body.value)?;
        let est = state.engine.establish(auth.0.tid, req).await?;
        let c = est.conversation;
        Ok(Json(EstablishOut {
            tenant_id: c.tenant_id.as_uuid(),
            hub_id: c.hub_id.as_uuid(),
            integration_id: c.integration_id.as_uuid(),
            conversation_id: c.id.as_uuid(),
            token_id: c.token_id,
            opened_date_time: rfc3339(c.opened),
            is_new: est.is_new,
            properties: properties(&c.properties),
        }))
    }

    /// Get a conversation
    // SPEC 4
    #[oai(
        path = "/api/v1/conversations/:conversationId",
        method = "get",
        operation_id = "conversations.get"
    )]
    async fn get(
        &self,
        auth: EngineAuth,
        state: Data<&AppState>,
        #[oai(name = "conversationId")] id: Path<Uuid>,
    ) -> Result<Json<ConversationOut>, ApiError> {
        let c = state
            .store
            .get_conversation(auth.0.tid, ConversationId::from_uuid(id.0))
            .await
            .map_err(ApiError::storage(Resource::Conversation))?;
        Ok(Json(conversation_out(&state, auth.0.tid, c).await?))
    }

    /// Close a conversation
    ///
    /// Closes it and sends `conversation:closed` (reason `api`) to the hub's System
    /// integrations that subscribe to it. Closing a closed conversation changes nothing and
    /// answers it as it is. Establishing the same binding afterwards opens a new conversation.
    // SPEC 4
    #[oai(
        path = "/api/v1/conversations/:conversationId/close",
        method = "post",
        operation_id = "conversations.close"
    )]
    async fn close(
        &self,
        auth: EngineAuth,
        state: Data<&AppState>,
        #[oai(name = "conversationId")] id: Path<Uuid>,
    ) -> Result<Json<ConversationOut>, ApiError> {
        let c = state
            .engine
            .close(
                auth.0.tid,
                ConversationId::from_uuid(id.0),
                ConversationReason::Api,
                None,
            )
            .await?;
        Ok(Json(conversation_out(&state, auth.0.tid, c).await?))
    }
}
