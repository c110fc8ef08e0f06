//! Integrations (SPEC 3): a hub's channels, agents, bots and back-office subscribers, read and
//! written through the store; pausing or deleting one asks the engine to close its websockets.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::{Map, Value};
use switchboard_delivery::provider::provisioning;
use switchboard_domain::channel::adapter::{self, ProvisionError};
use switchboard_domain::channel::Channel;
use switchboard_domain::channel_config;
use switchboard_domain::ids::{HubId, IntegrationId, TenantId};
use switchboard_domain::integration::{self, Integration, IntegrationDraft};
use switchboard_domain::time::rfc3339;
use uuid::Uuid;

use crate::auth::PortalAuth;
use crate::body::Body;
use crate::error::{ApiError, Code, Resource};
use crate::paging::page;
use crate::slack;
use crate::state::AppState;
use crate::Tags;

/// A new integration, or the new state of one.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct IntegrationIn {
    /// The channel, by name (`TwilioSMS`) or number (`102`): Direct 1, System 3, Messenger 101,
    /// TwilioSMS 102, Line 103, Telegram 104, Kik 105, WebChat 106, Viber 107, WeChat 108,
    /// Twitter 109, Mailgun 110, MessageBird 111, Email 112, WhatsApp 113, Apn 201, Fcm 202,
    /// Slack 1001.
    /// Cannot change on update.
    pub channel_id: String,
    /// 1 to 200 characters, unique within the hub.
    #[oai(validator(max_length = 200))]
    pub name: String,
    /// 3000 Active (default) or 3002 Paused.
    pub status_id: Option<i32>,
    /// The channel's configuration (keys are case-insensitive; unknown keys are refused):
    /// Direct `integrationType`* (Customer, Agent, Bot), `echo`, `webhookUrl`, `start`;
    /// System `webhookUrl`*, `events`*; Messenger `pageAccessToken`*, `appId`, `appSecret`
    /// (required unless the server sets SWITCHBOARD_MESSENGER_APP_SECRET), `pageId`, `pageName`;
    /// TwilioSMS `accountSid`*, `authToken`*, `numberSid`*, `phoneNumber`, `capabilities`;
    /// WhatsApp `accessToken`*, `phoneNumberId`* (digits), `businessAccountId` (digits),
    /// `appSecret` (as Messenger's), `templateName`, `templateLanguage` (default `en_US`),
    /// `displayPhoneNumber`, `verifiedName`;
    /// Line `channelAccessToken`*, `channelSecret`*; Telegram `token`*, `username`; Kik `username`*,
    /// `apiKey`*; WebChat `allowedOrigins`*, `start`, `echo`; Viber `token`*; WeChat `appId`*,
    /// `appSecret`*, `encodingAesKey`; Twitter `consumerKey`*, `consumerSecret`*,
    /// `accessTokenKey`*, `accessTokenSecret`*, `envName`; Mailgun `apiKey`*, `domain`*,
    /// `incomingAddress`*; MessageBird `accessKey`*, `originator`*, `signingKey`; Email
    /// `fromAddress`;
    /// Apn `certificate`*, `password`, `autoUpdateBadge`, `production`; Fcm `serverKey`*,
    /// `senderId`*; Slack either `code`* and `nonce`* or `botAccessToken`*, `teamId`*,
    /// `defaultPublicChannel`, `appAccessToken`, `botName`. On update, the configuration, when
    /// given, replaces the old one whole; `"regenerateKeys": true` makes a new signing key pair
    /// for Direct and System integrations. A string value is at most 4,096 characters, except
    /// `webhookUrl` (8,192) and Apn's `certificate` (65,536); `start` is at most 64 KiB as JSON.
    /// Read-only keys (TwilioSMS `phoneNumber`, `capabilities`; Messenger `pageId`, `pageName`;
    /// WhatsApp `displayPhoneNumber`, `verifiedName`; Telegram `username`) are learned from the
    /// provider when the integration is created (a value sent is ignored then; a Messenger
    /// `pageId` that is not the token's page is 400/206), and taken as given while providers are
    /// offline. `webhookSecret` is generated for Messenger, WhatsApp, Telegram, WeChat and
    /// MessageBird. A provider that refuses the credentials answers 400/206, one that cannot be
    /// reached 503/100; nothing is stored then.
    pub configuration: Value,
}

/// The new state of an integration: properties left out keep their values, except that a given
/// `configuration` replaces the old one whole. Read-only fields (`integrationId`, `hubId`,
/// `integrationTypeId`, `inboundId`, `created`, `modified`) and generated keys are accepted and
/// ignored, so the body of a GET can be sent back.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct IntegrationUpdate {
    /// The same channel, by name or number; another value is refused (400, code 206).
    pub channel_id: Option<String>,
    /// 1 to 200 characters, unique within the hub.
    #[oai(validator(max_length = 200))]
    pub name: Option<String>,
    /// 3000 Active or 3002 Paused.
    pub status_id: Option<i32>,
    /// The whole new configuration (see `IntegrationIn`); `"regenerateKeys": true` makes a new
    /// signing key pair for Direct and System integrations. Ignored, with a `Warning` header, for
    /// TwilioSMS, Messenger and Slack.
    pub configuration: Option<Value>,
}

/// An integration.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct IntegrationOut {
    pub integration_id: Uuid,
    pub hub_id: Uuid,
    /// The channel's own id of the account (Twilio account SID, Telegram bot id, Slack team id,
    /// …), or null.
    pub inbound_id: Option<String>,
    /// Customer, Agent, Bot or System: derived from the channel (and, for Direct, from
    /// `integrationType`).
    pub integration_type_id: String,
    /// The channel's name.
    pub channel_id: String,
    pub name: String,
    /// 3000 Active, 3002 Paused.
    pub status_id: i32,
    /// Every key of the channel's configuration (null when not set), generated ones included:
    /// `publicSigningKey` and `privateSigningKey` (Direct, System: Ed25519, 64 upper-case hex
    /// characters each), `webhookSecret` (WeChat, MessageBird), `incomingAddress` (Email).
    pub configuration: Value,
    /// RFC 3339, UTC.
    pub created: String,
    /// RFC 3339, UTC.
    pub modified: String,
}

impl From<Integration> for IntegrationOut {
    fn from(i: Integration) -> Self {
        Self {
            integration_id: i.id.as_uuid(),
            hub_id: i.hub_id.as_uuid(),
            inbound_id: i.inbound_id,
            integration_type_id: i.integration_type.as_str().to_owned(),
            channel_id: i.channel.name().to_owned(),
            name: i.name,
            status_id: i.status.id(),
            configuration: render_configuration(i.channel, i.configuration),
            created: rfc3339(i.created),
            modified: rfc3339(i.modified),
        }
    }
}

/// The documented shape of a channel's configuration: every key present, null when unset.
fn render_configuration(channel: Channel, mut stored: Map<String, Value>) -> Value {
    let mut out = Map::new();
    for key in switchboard_domain::channel_config::shown_keys(channel, &stored).collect::<Vec<_>>()
    {
        out.insert(key.to_owned(), stored.remove(key).unwrap_or(Value::Null));
    }
    Value::Object(out)
}

/// A page of integrations.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct IntegrationPage {
    pub page_number: u64,
    pub page_size: u64,
    /// How many integrations match in all.
    pub total: u64,
    /// Oldest first.
    pub results: Vec<IntegrationOut>,
}

/// An integration, with a `Warning` when a configuration update was ignored.
#[derive(ApiResponse)]
pub enum IntegrationResponse {
    /// The integration as stored.
    #[oai(status = 200)]
    Ok(
        Json<IntegrationOut>,
        /// Set when the configuration given was ignored (TwilioSMS, Messenger and Slack
        /// re-authenticate with their provider: delete and recreate them instead).
        #[oai(header = "Warning")]
        Option<String>,
    ),
}

pub struct IntegrationsApi;

async fn create(
    state: &AppState,
    tenant: TenantId,
    hub: HubId,
    body: &Value,
) -> Result<IntegrationResponse, ApiError> {
    let draft = integration::validate_create(body)?;
    let created = create_draft(state, tenant, hub, IntegrationId::new(), draft).await?;
    Ok(IntegrationResponse::Ok(Json(created.into()), None))
}

/// Creates the integration `id` from a validated draft: the app secret check, Slack's exchange,
/// provisioning (SPEC 7.5.1), then the store. The portal and the Smooch API (SPEC 8.6) both
/// create through here.
pub(crate) async fn create_draft(
    state: &AppState,
    tenant: TenantId,
    hub: HubId,
    id: IntegrationId,
    mut draft: IntegrationDraft,
) -> Result<Integration, ApiError> {
    require_app_secret(state, &draft)?;
    exchange_slack(state, &mut draft).await?;
    let providers = &state.providers;
    // SPEC 7.5.1: verify and learn (2), stored pending (3), register (4), then stored for good
    // (5); a failure forgets the pending row.
    provisioning::verify(providers, draft.channel, &mut draft.configuration)
        .await
        .map_err(provision_error)?;
    draft.inbound_id = channel_config::inbound_id(draft.channel, &draft.configuration);
    let registers = providers.config().live && adapter::adapter(draft.channel).is_some();
    if registers {
        state
            .store
            .add_pending_integration(tenant, id, draft.channel, &draft.configuration)
            .await
            .map_err(ApiError::storage(Resource::Integration))?;
        if let Err(e) =
            provisioning::register(providers, draft.channel, &draft.configuration, id).await
        {
            forget_pending(state, id).await;
            return Err(provision_error(e));
        }
    }
    let created = state
        .store
        .create_integration_as(tenant, hub, id, &draft)
        .await
        // The hub was deleted meanwhile (105), or the name is taken in it (106).
        .map_err(|e| match e {
            switchboard_storage::Error::NotFound => ApiError::not_found("hub"),
            e => ApiError::storage(Resource::Integration)(e),
        });
    match created {
        Ok(c) => Ok(c),
        Err(e) => {
            if registers {
                forget_pending(state, id).await;
            }
            Err(e)
        }
    }
}

/// Forgets a pending integration whose provisioning failed (the sweeper would, later).
async fn forget_pending(state: &AppState, id: IntegrationId) {
    if let Err(e) = state.store.remove_pending_integration(id).await {
        tracing::warn!(integration = %id, error = %e, "forgetting a pending integration failed");
    }
}

/// A provider's answer while provisioning (SPEC 7.5.1): unreachable 503/100, refused 400/206.
fn provision_error(e: ProvisionError) -> ApiError {
    match e {
        ProvisionError::Unreachable(why) => ApiError::with_status(
            poem::http::StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal as u32,
            why,
        ),
        ProvisionError::Refused(why) => ApiError::new(Code::OutOfRange, why),
    }
}

/// Messenger and WhatsApp need an app secret to verify their webhooks: the configuration's
/// `appSecret`, else the server's `SWITCHBOARD_MESSENGER_APP_SECRET` (SPEC 7.6).
fn require_app_secret(state: &AppState, draft: &IntegrationDraft) -> Result<(), ApiError> {
    let needs = matches!(draft.channel, Channel::Messenger | Channel::WhatsApp);
    let has = draft
        .configuration
        .get("appSecret")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
        || state.providers.config().messenger_app_secret.is_some();
    if needs && !has {
        return Err(ApiError::new(
            Code::Required,
            "Property 'configuration.appSecret' is required (this server has no SWITCHBOARD_MESSENGER_APP_SECRET).",
        ));
    }
    Ok(())
}

async fn update(
    state: &AppState,
    tenant: TenantId,
    current: Integration,
    body: &Value,
) -> Result<IntegrationResponse, ApiError> {
    let outcome = integration::validate_update(body, &current)?;
    let (updated, warning) = apply_update(state, tenant, current, outcome).await?;
    Ok(IntegrationResponse::Ok(Json(updated.into()), warning))
}

/// Stores a validated update of `current`: Slack's exchange, provisioning again where the
/// configuration changed (SPEC 7.5.2), the store, and the engine told of a pause. Answers the
/// stored integration and the outcome's warning. The portal and the Smooch API (SPEC 8.6) both
/// update through here.
pub(crate) async fn apply_update(
    state: &AppState,
    tenant: TenantId,
    current: Integration,
    mut outcome: integration::UpdateOutcome,
) -> Result<(Integration, Option<String>), ApiError> {
    exchange_slack(state, &mut outcome.draft).await?;
    // SPEC 7.5.2: a new configuration of a provider channel that does not ignore updates is
    // verified and registered again before it is stored; a failure keeps the old one.
    let channel = current.channel;
    if !channel.ignores_config_updates()
        && adapter::adapter(channel).is_some()
        && outcome.draft.configuration != current.configuration
    {
        require_app_secret(state, &outcome.draft)?;
        let providers = &state.providers;
        provisioning::verify(providers, channel, &mut outcome.draft.configuration)
            .await
            .map_err(provision_error)?;
        outcome.draft.inbound_id =
            channel_config::inbound_id(channel, &outcome.draft.configuration);
        provisioning::register(providers, channel, &outcome.draft.configuration, current.id)
            .await
            .map_err(provision_error)?;
    }
    let updated = state
        .store
        .update_integration(tenant, current.id, &outcome.draft)
        .await
        .map_err(ApiError::storage(Resource::Integration))?;
    if updated.status == switchboard_domain::integration::IntegrationStatus::Paused {
        state
            .engine
            .revoke(&[updated.id], "integration paused")
            .await;
    }
    Ok((updated, outcome.warning))
}

async fn exchange_slack(state: &AppState, draft: &mut IntegrationDraft) -> Result<(), ApiError> {
    if let Some(oauth) = draft.slack_oauth.clone() {
        let granted = slack::exchange(state, &oauth).await?;
        integration::apply_slack_oauth(draft, &granted);
    }
    Ok(())
}

#[OpenApi(tag = "Tags::Integrations")]
impl IntegrationsApi {
    /// Create an integration (or update one)
    ///
    /// With the id of a hub, creates an integration in it. With the id of an integration,
    /// updates that integration (as `PUT /api/v1/integrations/{integrationId}` does). Another id
    /// answers 404 (code 105).
    // SPEC 3
    #[oai(
        path = "/api/v1/integrations/hubs/:id",
        method = "post",
        operation_id = "integrations.create"
    )]
    async fn create_integration(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        /// A hub id (create) or an integration id (update).
        id: Path<Uuid>,
        body: Body<IntegrationIn>,
    ) -> Result<IntegrationResponse, ApiError> {
        let tenant = auth.0.tid;
        if let Some(hub) = state.store.find_hub(tenant, HubId::from_uuid(id.0)).await? {
            return create(&state, tenant, hub.id, &body.value).await;
        }
        if let Some(current) = state
            .store
            .find_integration(tenant, IntegrationId::from_uuid(id.0))
            .await?
        {
            return update(&state, tenant, current, &body.value).await;
        }
        Err(ApiError::not_found("hub or integration"))
    }

    /// Update an integration
    ///
    /// `configuration`, when given, replaces the old one whole. Generated keys and read-only
    /// fields are accepted and ignored, so a GET followed by a PUT of the same body works.
    // SPEC 3
    #[oai(
        path = "/api/v1/integrations/:integrationId",
        method = "put",
        operation_id = "integrations.update"
    )]
    async fn update_integration(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "integrationId")] integration_id: Path<Uuid>,
        body: Body<IntegrationUpdate>,
    ) -> Result<IntegrationResponse, ApiError> {
        let tenant = auth.0.tid;
        let current = state
            .store
            .get_integration(tenant, IntegrationId::from_uuid(integration_id.0))
            .await
            .map_err(ApiError::storage(Resource::Integration))?;
        update(&state, tenant, current, &body.value).await
    }

    /// Get an integration
    // SPEC 3
    #[oai(
        path = "/api/v1/integrations/:integrationId",
        method = "get",
        operation_id = "integrations.get"
    )]
    async fn get_integration(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "integrationId")] integration_id: Path<Uuid>,
    ) -> Result<Json<IntegrationOut>, ApiError> {
        let i = state
            .store
            .get_integration(auth.0.tid, IntegrationId::from_uuid(integration_id.0))
            .await
            .map_err(ApiError::storage(Resource::Integration))?;
        Ok(Json(i.into()))
    }

    /// List a hub's integrations of one channel
    ///
    /// All of them, oldest first, as an array.
    // SPEC 3
    #[oai(
        path = "/api/v1/integrations/hubs/:hubId/:channelType",
        method = "get",
        operation_id = "integrations.listByChannel"
    )]
    async fn list_by_channel(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "hubId")] hub_id: Path<Uuid>,
        /// The channel, by name or number.
        #[oai(name = "channelType")]
        channel_type: Path<String>,
    ) -> Result<Json<Vec<IntegrationOut>>, ApiError> {
        let channel = Channel::parse(&channel_type.0).ok_or_else(|| {
            ApiError::out_of_range(format!(
                "Channel type '{}' is not supported.",
                channel_type.0
            ))
        })?;
        let hub = state
            .store
            .get_hub(auth.0.tid, HubId::from_uuid(hub_id.0))
            .await
            .map_err(ApiError::storage(Resource::Hub))?;
        let list = state
            .store
            .list_hub_integrations(auth.0.tid, hub.id, Some(channel))
            .await?;
        Ok(Json(list.into_iter().map(IntegrationOut::from).collect()))
    }

    /// List integrations
    ///
    /// The tenant's integrations, optionally of one hub, oldest first.
    // SPEC 3
    #[oai(
        path = "/api/v1/integrations",
        method = "get",
        operation_id = "integrations.list"
    )]
    async fn list_integrations(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        /// Only this hub's integrations.
        #[oai(name = "hubId")]
        hub_id: Query<Option<Uuid>>,
        /// Page to return, from 0.
        #[oai(name = "pageNumber")]
        page_number: Query<Option<i64>>,
        /// Integrations per page, 1 to 100 (default 50).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> Result<Json<IntegrationPage>, ApiError> {
        let req = page(page_number.0, page_size.0)?;
        let p = state
            .store
            .list_integrations(auth.0.tid, hub_id.0.map(HubId::from_uuid), req)
            .await?;
        Ok(Json(IntegrationPage {
            page_number: p.number,
            page_size: p.size,
            total: p.total,
            results: p.results.into_iter().map(IntegrationOut::from).collect(),
        }))
    }

    /// Delete an integration
    // SPEC 3
    #[oai(
        path = "/api/v1/integrations/:integrationId",
        method = "delete",
        operation_id = "integrations.delete"
    )]
    async fn delete_integration(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "integrationId")] integration_id: Path<Uuid>,
    ) -> Result<(), ApiError> {
        delete(
            &state,
            auth.0.tid,
            IntegrationId::from_uuid(integration_id.0),
        )
        .await
    }
}

/// Deletes an integration: the store, the engine's websockets, then the provider's registration
/// (best effort). The portal and the Smooch API (SPEC 8.6) both delete through here.
pub(crate) async fn delete(
    state: &AppState,
    tenant: TenantId,
    id: IntegrationId,
) -> Result<(), ApiError> {
    let deleted = state
        .store
        .find_integration(tenant, id)
        .await
        .ok()
        .flatten();
    state
        .store
        .delete_integration(tenant, id)
        .await
        .map_err(ApiError::storage(Resource::Integration))?;
    state.engine.revoke(&[id], "integration deleted").await;
    // After the commit: the provider forgets Switchboard's URL, best effort (SPEC 7.5.2).
    if let Some(deleted) = deleted {
        let providers = state.providers.clone();
        tokio::spawn(async move {
            provisioning::deregister(&providers, deleted.channel, &deleted.configuration).await;
        });
    }
    Ok(())
}
