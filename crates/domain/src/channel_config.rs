//! The configuration catalogue of SPEC 3: which keys each channel's `configuration` takes, which
//! are required, which the server generates, and the checks of their values.
//!
//! It stays out of the integration itself (name, status, update rules, derived fields): that is
//! [`crate::integration`], which calls [`validate`] and fills in the generated keys.

use std::collections::BTreeMap;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::{Map, Value};

use crate::channel::{Channel, IntegrationType};
use crate::error::{Violation, Violations};
use crate::integration::SlackOAuth;
use crate::json;
use crate::limits;
use crate::smooch::webhook as smooch;

/// What a configuration value must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// A non-blank string of at most [`limits::MAX_CONFIG_TEXT_LEN`] characters (so are the
    /// other string kinds but URLs and base64).
    Text,
    /// A boolean.
    Boolean,
    /// `Customer`, `Agent` or `Bot` (any case in, canonical out).
    IntegrationType,
    /// An absolute http or https URL of at most [`limits::MAX_URL_LEN`] characters.
    WebhookUrl,
    /// An array of message objects, each with a string `type` (may be empty), at most
    /// [`limits::MAX_START_BYTES`] bytes as JSON.
    Start,
    /// A non-empty array of System event filters (SPEC 5.4), duplicates removed.
    Events,
    /// A non-empty array of host names, each optionally `*.`-prefixed; no scheme, port or path.
    AllowedOrigins,
    /// WebChat `sessionTTL`: an integer of seconds, 300..86400.
    SessionTtl,
    /// WebChat `title`: a string of 1..100 characters.
    Title,
    /// An email address.
    EmailAddress,
    /// An email address on the configuration's `domain` (Mailgun).
    MailgunAddress,
    /// Base64 (standard alphabet, padding optional, whitespace ignored), at most
    /// [`limits::MAX_CERTIFICATE_LEN`] characters.
    Base64,
    /// A string of ASCII digits (Meta's ids).
    Digits,
    /// TwilioSMS `capabilities`: an object of booleans `sms`, `mms`, `voice`.
    Capabilities,
    /// System `format`: `switchboard` (the default) or `smooch` (SPEC 8.7).
    Format,
    /// System `triggers` (format `smooch`): a non-empty array of distinct Smooch webhook
    /// triggers.
    Triggers,
}

/// One configuration key a client may give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// The camelCase name, as stored and answered.
    pub name: &'static str,
    pub kind: ValueKind,
    pub required: bool,
    /// Filled into the stored configuration when the key is not given.
    pub default: Option<bool>,
}

const fn req(name: &'static str, kind: ValueKind) -> KeySpec {
    KeySpec {
        name,
        kind,
        required: true,
        default: None,
    }
}

const fn opt(name: &'static str, kind: ValueKind) -> KeySpec {
    KeySpec {
        name,
        kind,
        required: false,
        default: None,
    }
}

const fn flag(name: &'static str, default: bool) -> KeySpec {
    KeySpec {
        name,
        kind: ValueKind::Boolean,
        required: false,
        default: Some(default),
    }
}

use ValueKind::{
    AllowedOrigins, Base64, Boolean, Capabilities, Digits, EmailAddress, Events, MailgunAddress,
    Start, Text, WebhookUrl,
};

const DIRECT: &[KeySpec] = &[
    req("integrationType", ValueKind::IntegrationType),
    flag("echo", false),
    opt("webhookUrl", WebhookUrl),
    opt("start", Start),
];
/// System: `events` is required with format `switchboard`, derived from `triggers` (and
/// read-only) with format `smooch`; `triggers`, `includeClient` and `includeFullAppUser` are
/// taken with format `smooch` only (see `check_system`).
const SYSTEM: &[KeySpec] = &[
    req("webhookUrl", WebhookUrl),
    opt("events", Events),
    opt(smooch::FORMAT, ValueKind::Format),
    opt(smooch::TRIGGERS, ValueKind::Triggers),
    opt(smooch::INCLUDE_CLIENT, Boolean),
    opt(smooch::INCLUDE_FULL_APP_USER, Boolean),
];
const MESSENGER: &[KeySpec] = &[
    req("pageAccessToken", Text),
    opt("appId", Text),
    opt("appSecret", Text),
    opt("pageId", Text),
    opt("pageName", Text),
];
const TWILIO_SMS: &[KeySpec] = &[
    req("accountSid", Text),
    req("authToken", Text),
    req("numberSid", Text),
    opt("phoneNumber", Text),
    opt("capabilities", Capabilities),
];
const TELEGRAM: &[KeySpec] = &[req("token", Text), opt("username", Text)];
const LINE: &[KeySpec] = &[req("channelAccessToken", Text), req("channelSecret", Text)];
const TOKEN_ONLY: &[KeySpec] = &[req("token", Text)];
const KIK: &[KeySpec] = &[req("username", Text), req("apiKey", Text)];
const WEB_CHAT: &[KeySpec] = &[
    req("allowedOrigins", AllowedOrigins),
    opt("start", Start),
    flag("echo", true),
    opt("sessionTTL", ValueKind::SessionTtl),
    opt("title", ValueKind::Title),
];
const WE_CHAT: &[KeySpec] = &[
    req("appId", Text),
    req("appSecret", Text),
    opt("encodingAesKey", Text),
];
const TWITTER: &[KeySpec] = &[
    req("consumerKey", Text),
    req("consumerSecret", Text),
    req("accessTokenKey", Text),
    req("accessTokenSecret", Text),
    // SPEC 7.6 / 8.11: the Account Activity environment label.
    opt("envName", Text),
];
const MAILGUN: &[KeySpec] = &[
    req("apiKey", Text),
    req("domain", Text),
    req("incomingAddress", MailgunAddress),
];
const WHATSAPP: &[KeySpec] = &[
    req("accessToken", Text),
    req("phoneNumberId", Digits),
    opt("businessAccountId", Digits),
    opt("appSecret", Text),
    opt("templateName", Text),
    opt("templateLanguage", Text),
    opt("displayPhoneNumber", Text),
    opt("verifiedName", Text),
];
// `signingKey`: SPEC 7.6 / 8.11 (verifies `MessageBird-Signature-JWT` when set).
const MESSAGE_BIRD: &[KeySpec] = &[
    req("accessKey", Text),
    req("originator", Text),
    opt("signingKey", Text),
];
const EMAIL: &[KeySpec] = &[opt("fromAddress", EmailAddress)];
const APN: &[KeySpec] = &[
    req("certificate", Base64),
    opt("password", Text),
    flag("autoUpdateBadge", false),
    flag("production", false),
];
const FCM: &[KeySpec] = &[req("serverKey", Text), req("senderId", Text)];
/// Slack's token form: what is stored, after an OAuth exchange too.
const SLACK_TOKEN: &[KeySpec] = &[
    req("botAccessToken", Text),
    req("teamId", Text),
    opt("defaultPublicChannel", Text),
    opt("appAccessToken", Text),
    opt("botName", Text),
];
/// Slack's OAuth form: exchanged by the API, never stored.
const SLACK_OAUTH: &[KeySpec] = &[req("code", Text), req("nonce", Text)];

/// The keys a client gives and the server stores for `channel` (for Slack, the token form; the
/// OAuth form's `code` and `nonce` are never stored). Generated keys are not listed here: see
/// [`generated_keys`].
pub const fn keys(channel: Channel) -> &'static [KeySpec] {
    match channel {
        Channel::Direct => DIRECT,
        Channel::System => SYSTEM,
        Channel::Messenger => MESSENGER,
        Channel::TwilioSms => TWILIO_SMS,
        Channel::Line => LINE,
        Channel::Telegram => TELEGRAM,
        Channel::Viber => TOKEN_ONLY,
        Channel::Kik => KIK,
        Channel::WebChat => WEB_CHAT,
        Channel::WeChat => WE_CHAT,
        Channel::Twitter => TWITTER,
        Channel::Mailgun => MAILGUN,
        Channel::MessageBird => MESSAGE_BIRD,
        Channel::Email => EMAIL,
        Channel::WhatsApp => WHATSAPP,
        Channel::Apn => APN,
        Channel::Fcm => FCM,
        Channel::Slack => SLACK_TOKEN,
    }
}

/// Slack's OAuth form keys (`code`, `nonce`).
pub const fn slack_oauth_keys() -> &'static [KeySpec] {
    SLACK_OAUTH
}

/// `publicSigningKey`: generated for Direct and System.
pub const PUBLIC_SIGNING_KEY: &str = "publicSigningKey";
/// `privateSigningKey`: generated for Direct and System.
pub const PRIVATE_SIGNING_KEY: &str = "privateSigningKey";
/// `webhookSecret`: generated for WeChat and MessageBird.
pub const WEBHOOK_SECRET: &str = "webhookSecret";
/// `incomingAddress`: generated for Email (given by the client for Mailgun).
pub const INCOMING_ADDRESS: &str = "incomingAddress";
/// `regenerateKeys`: a command on update, never stored.
pub const REGENERATE_KEYS: &str = "regenerateKeys";

/// The keys the server generates into `channel`'s configuration. A client may send them back
/// (a GET body PUT again) but never chooses them.
pub const fn generated_keys(channel: Channel) -> &'static [&'static str] {
    match channel {
        Channel::Direct | Channel::System => &[PUBLIC_SIGNING_KEY, PRIVATE_SIGNING_KEY],
        Channel::WeChat
        | Channel::MessageBird
        | Channel::Messenger
        | Channel::WhatsApp
        | Channel::Telegram => &[WEBHOOK_SECRET],
        Channel::Email => &[INCOMING_ADDRESS],
        _ => &[],
    }
}

/// Every key of `channel`'s stored configuration, in catalogue order: what the API renders
/// (`null` for the absent ones).
pub fn stored_keys(channel: Channel) -> impl Iterator<Item = &'static str> {
    let smooch_secret: &[&str] = if channel == Channel::System {
        &[WEBHOOK_SECRET]
    } else {
        &[]
    };
    keys(channel)
        .iter()
        .map(|k| k.name)
        .chain(generated_keys(channel).iter().copied())
        .chain(smooch_secret.iter().copied())
}

/// The keys of a stored `configuration` of `channel` that the API renders (`null` for the
/// absent ones): [`stored_keys`], but a System integration of format `switchboard` leaves out
/// the keys of format `smooch` (`triggers`, `includeClient`, `includeFullAppUser`,
/// `webhookSecret`).
pub fn shown_keys<'a>(
    channel: Channel,
    configuration: &'a Map<String, Value>,
) -> impl Iterator<Item = &'static str> + 'a {
    let smooch_format = smooch::is_smooch(configuration);
    stored_keys(channel).filter(move |k| {
        channel != Channel::System
            || smooch_format
            || !(smooch::SMOOCH_ONLY_KEYS.contains(k) || *k == WEBHOOK_SECRET)
    })
}

/// The read-only keys of `channel` (SPEC 7.6, RO): learned from the provider while provisioning
/// in `live` mode (a client's values are ignored then), taken as given in `offline` mode.
pub const fn read_only_keys(channel: Channel) -> &'static [&'static str] {
    match channel {
        Channel::TwilioSms => &["phoneNumber", "capabilities"],
        Channel::Messenger => &["pageId", "pageName"],
        Channel::WhatsApp => &["displayPhoneNumber", "verifiedName"],
        Channel::Telegram => &["username"],
        _ => &[],
    }
}

/// Keys accepted and ignored on every channel's input: generated elsewhere, never chosen by a
/// client. (`incomingAddress` is only ignored for Email, where it is generated.)
const IGNORED_EVERYWHERE: &[&str] = &[PUBLIC_SIGNING_KEY, PRIVATE_SIGNING_KEY, WEBHOOK_SECRET];

/// The System event filters of SPEC 5.4.
pub const EVENT_FILTERS: &[&str] = &[
    "message",
    "message:customer",
    "message:agent",
    "message:bot",
    "event",
    "event:customer",
    "event:agent",
    "event:bot",
    "conversation:opened",
    "conversation:closed",
];

/// A configuration that passed [`validate`]: camelCase keys, defaults filled in, generated keys
/// not yet present.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CheckedConfig {
    pub configuration: Map<String, Value>,
    /// `regenerateKeys: true` was given.
    pub regenerate_keys: bool,
    /// Slack's OAuth form was given: the API exchanges it before storing.
    pub slack_oauth: Option<SlackOAuth>,
}

/// Validates `value` as `channel`'s configuration, recording every violation in `v` (properties
/// `configuration` and `configuration.<key>`). `None` when anything was violated.
///
/// Keys match case-insensitively (when one key comes twice in different cases, the one read last
/// wins); `null` counts as absent. Slack takes the token form as soon as any of its keys
/// (`botAccessToken`, `teamId`, `defaultPublicChannel`, `appAccessToken`, `botName`) is given, and
/// then refuses `code` and `nonce` (Unsupported); otherwise it takes the OAuth form, where `code`
/// and `nonce` are required.
pub(crate) fn validate(
    channel: Channel,
    value: &Value,
    v: &mut Violations,
) -> Option<CheckedConfig> {
    let before = v.0.len();
    let Some(obj) = value.as_object() else {
        v.push(Violation::wrong_type("configuration", "an object"));
        return None;
    };

    // Canonical name -> (name as given, value), and the unknown names as given.
    let mut given: BTreeMap<&'static str, (&str, &Value)> = BTreeMap::new();
    let mut unknown: Vec<&str> = Vec::new();
    let mut regenerate_keys = false;
    let recognized = keys(channel).iter().chain(if channel == Channel::Slack {
        SLACK_OAUTH
    } else {
        &[]
    });
    for (key, val) in obj {
        if val.is_null() {
            continue;
        }
        if key.eq_ignore_ascii_case(REGENERATE_KEYS) {
            match val {
                Value::Bool(b) => regenerate_keys = *b,
                _ => v.push(Violation::wrong_type(
                    &json::path("configuration", key),
                    "a boolean",
                )),
            }
        } else if let Some(spec) = recognized
            .clone()
            .find(|s| s.name.eq_ignore_ascii_case(key))
        {
            given.insert(spec.name, (key.as_str(), val));
        } else if IGNORED_EVERYWHERE
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key))
            || (channel == Channel::Email && key.eq_ignore_ascii_case(INCOMING_ADDRESS))
        {
            // Generated by the server: accepted and ignored.
        } else {
            unknown.push(key.as_str());
        }
    }

    let oauth_form =
        channel == Channel::Slack && !SLACK_TOKEN.iter().any(|s| given.contains_key(s.name));
    let active: &[KeySpec] = if oauth_form {
        SLACK_OAUTH
    } else {
        keys(channel)
    };
    if channel == Channel::Slack && !oauth_form {
        // The token form was chosen: the OAuth keys are not supported beside it.
        unknown.extend(
            SLACK_OAUTH
                .iter()
                .filter_map(|s| given.get(s.name).map(|(as_given, _)| *as_given)),
        );
    }

    let smooch_format = channel == Channel::System
        && given
            .get(smooch::FORMAT)
            .is_some_and(|(_, f)| f.as_str() == Some(smooch::FORMAT_SMOOCH));
    let mut configuration = Map::new();
    for spec in active {
        let property = json::path("configuration", spec.name);
        if smooch_format && spec.name == "events" {
            // Derived from `triggers`, read-only: a value sent back is ignored.
            continue;
        }
        match given.get(spec.name) {
            None if spec.required => v.push(Violation::required(&property)),
            None => {
                if let Some(d) = spec.default {
                    configuration.insert(spec.name.to_owned(), Value::Bool(d));
                }
            }
            Some((_, val)) => {
                if let Some(checked) = check_value(spec.kind, &property, val, v) {
                    configuration.insert(spec.name.to_owned(), checked);
                }
            }
        }
    }

    if channel == Channel::Mailgun {
        check_mailgun_domain(&configuration, v);
    }
    if channel == Channel::System {
        check_system(&mut configuration, &given, v);
    }

    unknown.sort_unstable();
    for key in unknown {
        v.push(Violation::unsupported(&json::path("configuration", key)));
    }

    if v.0.len() > before {
        return None;
    }
    let slack_oauth = if oauth_form {
        let code = configuration.remove("code");
        let nonce = configuration.remove("nonce");
        match (code, nonce) {
            (Some(Value::String(code)), Some(Value::String(nonce))) => {
                Some(SlackOAuth { code, nonce })
            }
            _ => None,
        }
    } else {
        None
    };
    Some(CheckedConfig {
        configuration,
        regenerate_keys,
        slack_oauth,
    })
}

/// Checks one value; its normalized form, or `None` with the violations recorded.
fn check_value(kind: ValueKind, property: &str, val: &Value, v: &mut Violations) -> Option<Value> {
    match kind {
        Boolean => match val {
            Value::Bool(_) => Some(val.clone()),
            _ => {
                v.push(Violation::wrong_type(property, "a boolean"));
                None
            }
        },
        Start => check_start(property, val, v)
            .filter(|start| limits::check_json_bytes(property, start, limits::MAX_START_BYTES, v)),
        Events => check_events(property, val, v),
        ValueKind::Format => match val.as_str() {
            Some(f) if smooch::FORMATS.contains(&f) => Some(val.clone()),
            Some(f) => {
                v.push(Violation::out_of_range(
                    property,
                    &format!("must be 'switchboard' or 'smooch', not '{f}'"),
                ));
                None
            }
            None => {
                v.push(Violation::wrong_type(property, "a string"));
                None
            }
        },
        ValueKind::Triggers => match smooch::parse_triggers(val, property) {
            Ok(triggers) => Some(Value::Array(
                triggers
                    .into_iter()
                    .map(|t| Value::from(t.as_str()))
                    .collect(),
            )),
            Err(e) => {
                v.0.extend(e.0);
                None
            }
        },
        Capabilities => check_capabilities(property, val, v),
        AllowedOrigins => check_origins(property, val, v),
        ValueKind::SessionTtl => match val.as_i64() {
            Some(t) if (300..=86_400).contains(&t) => Some(val.clone()),
            Some(_) => {
                v.push(Violation::out_of_range(
                    property,
                    "must be 300 to 86400 seconds",
                ));
                None
            }
            None => {
                v.push(Violation::wrong_type(property, "an integer (seconds)"));
                None
            }
        },
        ValueKind::Title => {
            let s = non_blank(property, val, v)?;
            if s.chars().count() > 100 {
                v.push(Violation::out_of_range(
                    property,
                    "must be 1 to 100 characters",
                ));
                return None;
            }
            Some(val.clone())
        }
        Text
        | ValueKind::IntegrationType
        | WebhookUrl
        | EmailAddress
        | MailgunAddress
        | Base64
        | Digits => {
            let s = non_blank(property, val, v)?;
            let max = match kind {
                WebhookUrl => limits::MAX_URL_LEN,
                Base64 => limits::MAX_CERTIFICATE_LEN,
                _ => limits::MAX_CONFIG_TEXT_LEN,
            };
            if !limits::check_len(property, s, max, v) {
                return None;
            }
            check_string(kind, property, s, v).map(Value::String)
        }
    }
}

/// TwilioSMS `capabilities`: `{ sms, mms, voice }`, each a boolean when given (others
/// Unsupported).
fn check_capabilities(property: &str, val: &Value, v: &mut Violations) -> Option<Value> {
    let Some(obj) = val.as_object() else {
        v.push(Violation::wrong_type(property, "an object"));
        return None;
    };
    let before = v.0.len();
    let mut out = Map::new();
    for (key, value) in obj {
        let path = format!("{property}.{key}");
        if !["sms", "mms", "voice"].contains(&key.as_str()) {
            v.push(Violation::new(
                crate::error::ViolationKind::Unsupported,
                &path,
                format!("Property '{path}' is not a capability (sms, mms or voice)."),
            ));
        } else if let Value::Bool(b) = value {
            out.insert(key.clone(), Value::Bool(*b));
        } else {
            v.push(Violation::wrong_type(&path, "a boolean"));
        }
    }
    (v.0.len() == before).then_some(Value::Object(out))
}

/// A string that is not blank, else WrongType or OutOfRange.
fn non_blank<'a>(property: &str, val: &'a Value, v: &mut Violations) -> Option<&'a str> {
    match val {
        Value::String(s) if s.trim().is_empty() => {
            v.push(Violation::out_of_range(property, "must not be empty"));
            None
        }
        Value::String(s) => Some(s),
        _ => {
            v.push(Violation::wrong_type(property, "a string"));
            None
        }
    }
}

fn check_string(kind: ValueKind, property: &str, s: &str, v: &mut Violations) -> Option<String> {
    let ok = match kind {
        ValueKind::IntegrationType => {
            return match IntegrationType::parse(s) {
                Some(t) if t != IntegrationType::System => Some(t.as_str().to_owned()),
                _ => {
                    v.push(Violation::out_of_range(
                        property,
                        &format!("must be Customer, Agent or Bot, not '{s}'"),
                    ));
                    None
                }
            };
        }
        WebhookUrl => is_http_url(s) || fail(v, property, "must be an absolute http or https URL"),
        EmailAddress | MailgunAddress => {
            email_domain(s).is_some() || fail(v, property, "must be an email address")
        }
        Base64 => is_base64(s) || fail(v, property, "must be base64"),
        Digits => {
            s.bytes().all(|b| b.is_ascii_digit()) || fail(v, property, "must be a string of digits")
        }
        _ => true,
    };
    ok.then(|| s.to_owned())
}

/// Records an InvalidFormat violation and answers `false`.
fn fail(v: &mut Violations, property: &str, why: &str) -> bool {
    v.push(Violation::invalid_format(property, why));
    false
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// The domain of a simple email address: one `@`, a non-empty local part, a dotted domain, no
/// whitespace.
pub fn email_domain(s: &str) -> Option<&str> {
    let (local, domain) = s.split_once('@')?;
    let well_formed = !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty());
    well_formed.then_some(domain)
}

const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn is_base64(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    !compact.is_empty() && BASE64_LENIENT.decode(compact).is_ok()
}

/// `start`: an array of objects with a string `type`.
fn check_start(property: &str, val: &Value, v: &mut Violations) -> Option<Value> {
    let Some(items) = val.as_array() else {
        v.push(Violation::wrong_type(property, "an array of messages"));
        return None;
    };
    let before = v.0.len();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{property}[{i}]");
        match item.as_object() {
            None => v.push(Violation::wrong_type(&at, "a message object")),
            Some(obj) => {
                if let Some(t) = json::string(obj, &at, "type", true, v) {
                    if t.trim().is_empty() {
                        v.push(Violation::out_of_range(
                            &json::path(&at, "type"),
                            "must not be empty",
                        ));
                    }
                }
            }
        }
    }
    (v.0.len() == before).then(|| val.clone())
}

/// `events`: a non-empty array of known filters, duplicates removed keeping order.
fn check_events(property: &str, val: &Value, v: &mut Violations) -> Option<Value> {
    let items = non_empty_array(property, val, v)?;
    let before = v.0.len();
    let mut filters: Vec<Value> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{property}[{i}]");
        match item {
            Value::String(s) if EVENT_FILTERS.contains(&s.as_str()) => {
                if !filters.contains(item) {
                    filters.push(item.clone());
                }
            }
            Value::String(s) => v.push(Violation::out_of_range(
                &at,
                &format!(
                    "is not a supported event filter: '{s}' (expected one of {})",
                    EVENT_FILTERS.join(", ")
                ),
            )),
            _ => v.push(Violation::wrong_type(&at, "a string")),
        }
    }
    (v.0.len() == before).then_some(Value::Array(filters))
}

/// `allowedOrigins`: a non-empty array of host names.
fn check_origins(property: &str, val: &Value, v: &mut Violations) -> Option<Value> {
    let items = non_empty_array(property, val, v)?;
    let before = v.0.len();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{property}[{i}]");
        match item {
            Value::String(s) if is_origin_host(s) => {}
            Value::String(s) if s.contains('/') || s.contains(':') => {
                fail(
                    v,
                    &at,
                    &format!("must be a host name without scheme, port or path, not '{s}'"),
                );
            }
            Value::String(s) => {
                fail(
                    v,
                    &at,
                    &format!("must be a host name, optionally with '*.', without scheme, port or path, not '{s}'"),
                );
            }
            _ => v.push(Violation::wrong_type(&at, "a string")),
        }
    }
    (v.0.len() == before).then(|| val.clone())
}

fn non_empty_array<'a>(
    property: &str,
    val: &'a Value,
    v: &mut Violations,
) -> Option<&'a Vec<Value>> {
    match val.as_array() {
        None => {
            v.push(Violation::wrong_type(property, "an array"));
            None
        }
        Some(items) if items.is_empty() => {
            v.push(Violation::empty(property));
            None
        }
        Some(items) => Some(items),
    }
}

/// A host name (letters, digits, hyphens, dots), optionally with a `*.` wildcard prefix; no
/// scheme, port or path (SPEC 7.18.1: the port of an `Origin` is ignored when matching).
pub fn is_origin_host(s: &str) -> bool {
    let host = s.strip_prefix("*.").unwrap_or(s);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A System configuration by its `format` (SPEC 8.7): `switchboard` (filled in when absent)
/// requires `events` and refuses the smooch keys; `smooch` requires `triggers`, fills in
/// `includeClient` and `includeFullAppUser` (false) and derives `events` from the triggers.
fn check_system(
    configuration: &mut Map<String, Value>,
    given: &BTreeMap<&'static str, (&str, &Value)>,
    v: &mut Violations,
) {
    let format = configuration
        .get(smooch::FORMAT)
        .and_then(Value::as_str)
        .unwrap_or(smooch::FORMAT_SWITCHBOARD)
        .to_owned();
    if given.contains_key(smooch::FORMAT) && !configuration.contains_key(smooch::FORMAT) {
        // An invalid format, already reported: nothing more to check against it.
        return;
    }
    let smooch_format = format == smooch::FORMAT_SMOOCH;
    if !configuration.contains_key(smooch::FORMAT) && !given.contains_key(smooch::FORMAT) {
        configuration.insert(smooch::FORMAT.to_owned(), Value::from(format));
    }
    if smooch_format {
        match configuration.get(smooch::TRIGGERS) {
            Some(triggers) => {
                let triggers = smooch::stored_triggers(Some(triggers));
                let events = smooch::derived_events(&triggers);
                configuration.insert("events".to_owned(), Value::from(events));
            }
            None if !given.contains_key(smooch::TRIGGERS) => {
                v.push(Violation::required("configuration.triggers"));
            }
            None => {}
        }
        for key in [smooch::INCLUDE_CLIENT, smooch::INCLUDE_FULL_APP_USER] {
            if !given.contains_key(key) {
                configuration.insert(key.to_owned(), Value::Bool(false));
            }
        }
    } else {
        if !given.contains_key("events") {
            v.push(Violation::required("configuration.events"));
        }
        for key in smooch::SMOOCH_ONLY_KEYS {
            if let Some((as_given, _)) = given.get(key) {
                let path = json::path("configuration", as_given);
                v.push(Violation::new(
                    crate::error::ViolationKind::Unsupported,
                    &path,
                    format!("Property '{path}' is only taken with format 'smooch'."),
                ));
            }
        }
    }
}

/// Mailgun's `incomingAddress` must be on its `domain` (compared case-insensitively).
fn check_mailgun_domain(configuration: &Map<String, Value>, v: &mut Violations) {
    let domain = configuration.get("domain").and_then(Value::as_str);
    let address = configuration.get(INCOMING_ADDRESS).and_then(Value::as_str);
    if let (Some(domain), Some(address)) = (domain, address) {
        let on_domain =
            email_domain(address).is_some_and(|d| d.eq_ignore_ascii_case(domain.trim()));
        if !on_domain {
            fail(
                v,
                "configuration.incomingAddress",
                &format!("must be an address on the domain '{domain}'"),
            );
        }
    }
}

/// `inboundId` of SPEC 3: the channel's own id of the account, read from a configuration.
pub fn inbound_id(channel: Channel, configuration: &Map<String, Value>) -> Option<String> {
    let get = |key: &str| {
        configuration
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match channel {
        Channel::TwilioSms => get("accountSid"),
        Channel::Messenger => get("pageId"),
        Channel::WhatsApp => get("phoneNumberId"),
        Channel::Telegram => {
            let token = get("token")?;
            let (bot_id, _) = token.split_once(':')?;
            (!bot_id.is_empty() && bot_id.bytes().all(|b| b.is_ascii_digit()))
                .then(|| bot_id.to_owned())
        }
        Channel::Slack => get("teamId"),
        Channel::WeChat => get("appId"),
        Channel::Mailgun | Channel::Email => get(INCOMING_ADDRESS),
        Channel::MessageBird => get("originator"),
        _ => None,
    }
}

/// `integrationTypeId` of SPEC 3: the channel's fixed type, or Direct's `integrationType` key.
pub fn integration_type(
    channel: Channel,
    configuration: &Map<String, Value>,
) -> Option<IntegrationType> {
    channel.fixed_type().or_else(|| {
        configuration
            .get("integrationType")
            .and_then(Value::as_str)
            .and_then(IntegrationType::parse)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_hosts_take_wildcards_but_no_scheme_port_or_path() {
        for ok in [
            "localhost",
            "hubster.io",
            "*.hubster.io",
            "a-b.example.com",
            "127.0.0.1",
        ] {
            assert!(is_origin_host(ok), "{ok}");
        }
        for bad in [
            "",
            "https://hubster.io",
            "hubster.io/chat",
            "*.",
            "*",
            "hub ster.io",
            "-hub.io",
            "hub-.io",
            "hubster..io",
            "hubster.io.",
            "localhost:",
            "localhost:0",
            "localhost:70000",
            "localhost:8080",
            "a-b.example.com:443",
            "a.*.io",
            "user@host",
        ] {
            assert!(!is_origin_host(bad), "{bad}");
        }
    }

    #[test]
    fn email_addresses_need_one_at_a_local_part_and_a_dotted_domain() {
        assert_eq!(
            email_domain("support@mg.example.com"),
            Some("mg.example.com")
        );
        for bad in [
            "",
            "support",
            "@example.com",
            "a@b",
            "a@@b.com",
            "a@b@c.com",
            "a b@c.com",
            "a@.com",
            "a@b.",
        ] {
            assert_eq!(email_domain(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64_takes_standard_alphabet_with_or_without_padding() {
        assert!(is_base64("TUlJQw=="));
        assert!(is_base64("TUlJQw"));
        assert!(is_base64("TUlJ\nQw=="));
        assert!(!is_base64("TUlJQw$$"));
        assert!(!is_base64("TUl-Qw_="));
        assert!(!is_base64("   "));
    }

    #[test]
    fn stored_keys_list_the_catalogue_then_the_generated_keys() {
        let direct: Vec<_> = stored_keys(Channel::Direct).collect();
        assert_eq!(
            direct,
            [
                "integrationType",
                "echo",
                "webhookUrl",
                "start",
                "publicSigningKey",
                "privateSigningKey"
            ]
        );
        let slack: Vec<_> = stored_keys(Channel::Slack).collect();
        assert_eq!(
            slack,
            [
                "botAccessToken",
                "teamId",
                "defaultPublicChannel",
                "appAccessToken",
                "botName"
            ]
        );
    }
}
