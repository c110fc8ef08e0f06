//! Integrations (SPEC 3): validation of create and update bodies for every channel of the
//! catalogue, derived fields (`integrationTypeId`, `inboundId`), generated keys.

use rand::RngCore;
use serde_json::{Map, Value};

use crate::channel::{Channel, IntegrationType};
use crate::channel_config::{
    self, INCOMING_ADDRESS, PRIVATE_SIGNING_KEY, PUBLIC_SIGNING_KEY, WEBHOOK_SECRET,
};
use crate::error::{Violation, Violations};
use crate::ids::{HubId, IntegrationId, TenantId};
use crate::json;
use crate::keys;
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

pub use crate::limits::MAX_NAME_LEN;

/// The domain of the `incomingAddress` generated for Email integrations: mail sent to
/// `<32 lower-case hex chars>@inbound.switchboard.local` enters that integration.
pub const EMAIL_INBOUND_DOMAIN: &str = "inbound.switchboard.local";

/// The `Warning` header value (warn-code 299, agent `-`, quoted text) answered when an update's
/// configuration is ignored because `channel` re-authenticates with its provider.
pub fn ignored_update_warning(channel: Channel) -> String {
    format!("299 - \"{}\"", ignored_update_text(channel))
}

/// The text of [`ignored_update_warning`], for APIs that render their own `Warning` header
/// (the Smooch compatibility API, SPEC 8.6).
pub fn ignored_update_text(channel: Channel) -> String {
    format!(
        "Configuration updates are ignored for {}; delete and recreate the integration to change it.",
        channel.name()
    )
}

/// Validates a create body (`channelId`*, `name`*, `statusId`, `configuration`*).
///
/// `channelId` is a name (any case), a number or digits; unknown top-level keys are ignored so a
/// GET body can be sent back. Generated keys are created here: the signing key pair (Direct,
/// System), `webhookSecret` (WeChat, MessageBird; 32 random bytes as 64 lower-case hex
/// characters; a smooch-format System: 20 bytes, 40 characters) and Email's `incomingAddress` (on [`EMAIL_INBOUND_DOMAIN`]); the values a client
/// sends for them are ignored. A Slack OAuth form sets [`IntegrationDraft::slack_oauth`].
pub fn validate_create(body: &Value) -> Result<IntegrationDraft, Violations> {
    let obj = json::object(body, "").map_err(Violations::from)?;
    let mut v = Violations::default();
    let channel = read_channel(obj, true, &mut v);
    let name = read_name(obj, true, &mut v);
    let status = read_status(obj, &mut v);
    let checked = match json::field(obj, "configuration") {
        None => {
            v.push(Violation::required("configuration"));
            None
        }
        Some(config) => match channel {
            Some(channel) => channel_config::validate(channel, config, &mut v),
            None => {
                if !config.is_object() {
                    v.push(Violation::wrong_type("configuration", "an object"));
                }
                None
            }
        },
    };
    let (Some(channel), Some(name), Some(checked), true) = (channel, name, checked, v.is_empty())
    else {
        return Err(v);
    };
    let mut configuration = checked.configuration;
    fill_generated_keys(channel, &mut configuration, None, false);
    Ok(IntegrationDraft {
        name,
        channel,
        integration_type: derived_type(channel, &configuration),
        inbound_id: channel_config::inbound_id(channel, &configuration),
        status: status.unwrap_or(IntegrationStatus::Active),
        configuration,
        slack_oauth: checked.slack_oauth,
    })
}

/// Validates an update of `current`: `configuration`, when given, replaces the old one whole;
/// generated keys and read-only fields are accepted and ignored.
///
/// `name` and `statusId` keep their current values when absent; `channelId` may be given but must
/// name the current channel. Generated keys are kept from `current`, except the signing key pair
/// when the configuration says `regenerateKeys: true`. For TwilioSMS, Messenger and Slack a given
/// configuration is neither validated nor applied, and [`UpdateOutcome::warning`] says so.
pub fn validate_update(body: &Value, current: &Integration) -> Result<UpdateOutcome, Violations> {
    let obj = json::object(body, "").map_err(Violations::from)?;
    let mut v = Violations::default();
    if let Some(given) = read_channel(obj, false, &mut v) {
        if given != current.channel {
            v.push(Violation::out_of_range(
                "channelId",
                &format!(
                    "cannot change: this integration's channel is {}",
                    current.channel
                ),
            ));
        }
    }
    let name = read_name(obj, false, &mut v);
    let status = read_status(obj, &mut v);

    let mut warning = None;
    let mut slack_oauth = None;
    let mut configuration = current.configuration.clone();
    let mut integration_type = current.integration_type;
    let mut inbound_id = current.inbound_id.clone();
    match json::field(obj, "configuration") {
        None => {}
        Some(_) if current.channel.ignores_config_updates() => {
            warning = Some(ignored_update_warning(current.channel));
        }
        Some(config) => {
            if let Some(checked) = channel_config::validate(current.channel, config, &mut v) {
                configuration = checked.configuration;
                fill_generated_keys(
                    current.channel,
                    &mut configuration,
                    Some(&current.configuration),
                    checked.regenerate_keys,
                );
                integration_type = derived_type(current.channel, &configuration);
                inbound_id = channel_config::inbound_id(current.channel, &configuration);
                slack_oauth = checked.slack_oauth;
            }
        }
    }

    let draft = IntegrationDraft {
        name: name.unwrap_or_else(|| current.name.clone()),
        channel: current.channel,
        integration_type,
        inbound_id,
        status: status.unwrap_or(current.status),
        configuration,
        slack_oauth,
    };
    v.into_result(UpdateOutcome { draft, warning })
}

/// What Slack granted in an OAuth exchange (`oauth.v2.access`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlackGrant {
    /// `access_token`: the bot token (`xoxb-…`).
    pub bot_access_token: String,
    /// `team.id`.
    pub team_id: String,
    /// `authed_user.access_token`: the user token (`xoxp-…`), when user scopes were granted.
    pub app_access_token: Option<String>,
    /// `incoming_webhook.channel` without its `#`, when the app may post to a channel.
    pub default_public_channel: Option<String>,
}

/// Fills in what Slack granted, and derives `inboundId` (the team id). Everything Slack grants
/// is kept: a Slack configuration cannot be updated later (SPEC 3), so what is not filled in
/// here would stay empty for good.
pub fn apply_slack_oauth(draft: &mut IntegrationDraft, grant: &SlackGrant) {
    let granted = [
        ("botAccessToken", Some(&grant.bot_access_token)),
        ("teamId", Some(&grant.team_id)),
        ("appAccessToken", grant.app_access_token.as_ref()),
        (
            "defaultPublicChannel",
            grant.default_public_channel.as_ref(),
        ),
    ];
    for (key, value) in granted {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            draft
                .configuration
                .insert(key.to_owned(), Value::String(value.clone()));
        }
    }
    draft.inbound_id = Some(grant.team_id.clone());
    draft.slack_oauth = None;
}

/// `channelId`: a name (any case), a number, or digits. WrongType for another JSON type, OutOfRange
/// for a value that names no channel.
fn read_channel(obj: &Map<String, Value>, required: bool, v: &mut Violations) -> Option<Channel> {
    let value = json::field(obj, "channelId");
    let channel = match value {
        None => {
            if required {
                v.push(Violation::required("channelId"));
            }
            return None;
        }
        Some(Value::String(s)) => Channel::parse(s),
        Some(Value::Number(n)) => n.as_i64().and_then(Channel::from_number),
        Some(_) => {
            v.push(Violation::wrong_type(
                "channelId",
                "a channel name or number",
            ));
            return None;
        }
    };
    if channel.is_none() {
        let shown = match value {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        v.push(Violation::out_of_range(
            "channelId",
            &format!("is not a supported channel: '{shown}'"),
        ));
    }
    channel
}

/// `name`: 1..=200 characters, not blank.
fn read_name(obj: &Map<String, Value>, required: bool, v: &mut Violations) -> Option<String> {
    let name = json::string(obj, "", "name", required, v)?;
    let len = name.chars().count();
    if len == 0 || len > MAX_NAME_LEN || name.trim().is_empty() {
        v.push(Violation::out_of_range(
            "name",
            &format!("must be 1 to {MAX_NAME_LEN} characters long and not blank"),
        ));
        return None;
    }
    Some(name)
}

/// `statusId`: 3000 or 3002.
fn read_status(obj: &Map<String, Value>, v: &mut Violations) -> Option<IntegrationStatus> {
    let id = json::integer(obj, "", "statusId", false, v)?;
    let status = IntegrationStatus::from_id(id);
    if status.is_none() {
        v.push(Violation::out_of_range(
            "statusId",
            "must be 3000 (Active) or 3002 (Paused)",
        ));
    }
    status
}

/// The derived `integrationTypeId`; a validated Direct configuration always has its key.
fn derived_type(channel: Channel, configuration: &Map<String, Value>) -> IntegrationType {
    channel_config::integration_type(channel, configuration).unwrap_or(IntegrationType::Customer)
}

/// Puts the channel's generated keys into `configuration`: kept from `previous` where it has them
/// (an update), else new. `regenerate` replaces the signing key pair.
fn fill_generated_keys(
    channel: Channel,
    configuration: &mut Map<String, Value>,
    previous: Option<&Map<String, Value>>,
    regenerate: bool,
) {
    let kept = |key: &str| {
        previous
            .and_then(|p| p.get(key))
            .filter(|x| x.as_str().is_some_and(|s| !s.is_empty()))
            .cloned()
    };
    if channel.has_signing_keys() {
        let pair = match (kept(PUBLIC_SIGNING_KEY), kept(PRIVATE_SIGNING_KEY)) {
            (Some(public), Some(private)) if !regenerate => (public, private),
            _ => {
                let pair = keys::generate();
                (Value::String(pair.public), Value::String(pair.private))
            }
        };
        configuration.insert(PUBLIC_SIGNING_KEY.to_owned(), pair.0);
        configuration.insert(PRIVATE_SIGNING_KEY.to_owned(), pair.1);
    }
    // A Smooch webhook's `secret` (SPEC 8.7): 20 random bytes as 40 lower-case hex characters,
    // never changed.
    if channel == Channel::System && crate::smooch::webhook::is_smooch(configuration) {
        let secret = kept(WEBHOOK_SECRET).unwrap_or_else(|| Value::String(random_hex(20)));
        configuration.insert(WEBHOOK_SECRET.to_owned(), secret);
    }
    if matches!(channel, Channel::WeChat | Channel::MessageBird) {
        let secret = kept(WEBHOOK_SECRET).unwrap_or_else(|| Value::String(random_hex(32)));
        configuration.insert(WEBHOOK_SECRET.to_owned(), secret);
    }
    // The verify token of Meta's handshake, 32 letters and digits; Telegram's `secret_token`
    // (SPEC 7.6).
    if matches!(
        channel,
        Channel::Messenger | Channel::WhatsApp | Channel::Telegram
    ) {
        let secret = kept(WEBHOOK_SECRET).unwrap_or_else(|| Value::String(random_alphanumeric(32)));
        configuration.insert(WEBHOOK_SECRET.to_owned(), secret);
    }
    if channel == Channel::WhatsApp && !configuration.contains_key("templateLanguage") {
        configuration.insert(
            "templateLanguage".to_owned(),
            Value::String(WHATSAPP_TEMPLATE_LANGUAGE.to_owned()),
        );
    }
    if channel == Channel::Email {
        let address = kept(INCOMING_ADDRESS)
            .unwrap_or_else(|| Value::String(format!("{}@{EMAIL_INBOUND_DOMAIN}", random_hex(16))));
        configuration.insert(INCOMING_ADDRESS.to_owned(), address);
    }
}

/// WhatsApp's `templateLanguage` when not given (SPEC 7.6).
pub const WHATSAPP_TEMPLATE_LANGUAGE: &str = "en_US";

/// `n` random letters and digits.
fn random_alphanumeric(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// `n` random bytes as lower-case hex.
fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    keys::hex_upper(&bytes).to_ascii_lowercase()
}

#[cfg(test)]
mod tests;
