//! Integrations (SPEC 3): validation of create and update bodies for every channel of the
//! catalogue, derived fields (`integrationTypeId`, `inboundId`), generated keys.

use serde_json::{Map, Value};

use crate::channel::{Channel, IntegrationType};
use crate::error::Violations;
use crate::ids::{HubId, IntegrationId, TenantId};
use crate::time::Millis;

/// `statusId` of an integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntegrationStatus {
    /// 3000
    Active,
    /// 3002
    Paused,
}

impl IntegrationStatus {
    pub const fn id(self) -> i32 {
        match self {
            Self::Active => 3000,
            Self::Paused => 3002,
        }
    }
    pub const fn from_id(id: i64) -> Option<Self> {
        match id {
            3000 => Some(Self::Active),
            3002 => Some(Self::Paused),
            _ => None,
        }
    }
}

/// A stored integration. `configuration` holds camelCase keys, secrets in clear: storage
/// encrypts the whole configuration at rest.
#[derive(Clone, Debug, PartialEq)]
pub struct Integration {
    pub id: IntegrationId,
    pub tenant_id: TenantId,
    pub hub_id: HubId,
    pub name: String,
    pub channel: Channel,
    pub integration_type: IntegrationType,
    pub inbound_id: Option<String>,
    pub status: IntegrationStatus,
    pub configuration: Map<String, Value>,
    pub created: Millis,
    pub modified: Millis,
}

/// A Slack OAuth exchange the API must perform before storing the integration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlackOAuth {
    pub code: String,
    pub nonce: String,
}

/// The writable state of an integration, validated and normalized: what storage writes.
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationDraft {
    pub name: String,
    pub channel: Channel,
    pub integration_type: IntegrationType,
    pub inbound_id: Option<String>,
    pub status: IntegrationStatus,
    /// camelCase keys, defaults filled in, generated keys present.
    pub configuration: Map<String, Value>,
    /// Set when a Slack configuration gave `code` and `nonce`: the API exchanges them and calls
    /// [`apply_slack_oauth`] before storing.
    pub slack_oauth: Option<SlackOAuth>,
}

/// The result of validating an update.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateOutcome {
    pub draft: IntegrationDraft,
    /// Set when a configuration update was ignored (TwilioSMS, Messenger, Slack): the text of the
    /// `Warning` header.
    pub warning: Option<String>,
}

/// Validates a create body (`channelId`*, `name`*, `statusId`, `configuration`*).
pub fn validate_create(body: &Value) -> Result<IntegrationDraft, Violations> {
    let _ = body;
    unimplemented!("issue 2: domain helper")
}

/// Validates an update of `current`: `configuration`, when given, replaces the old one whole;
/// generated keys and read-only fields are accepted and ignored.
pub fn validate_update(body: &Value, current: &Integration) -> Result<UpdateOutcome, Violations> {
    let _ = (body, current);
    unimplemented!("issue 2: domain helper")
}

/// Fills in what Slack answered to an OAuth exchange, and derives `inboundId` (the team id).
pub fn apply_slack_oauth(draft: &mut IntegrationDraft, bot_access_token: &str, team_id: &str) {
    let _ = (draft, bot_access_token, team_id);
    unimplemented!("issue 2: domain helper")
}
