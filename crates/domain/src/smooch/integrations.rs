//! SPEC 8.6: Smooch integration types ↔ the channel catalogue.
//!
//! The table of 8.6 as data ([`TYPES`]): each Smooch `type`, its channel, the body fields that
//! become configuration keys (renamed where Smooch's names differ), the fields accepted and
//! ignored, and the public fields answered. Around it: the `types` query filter, create and
//! update bodies turned into SPEC 3 drafts (validated by [`crate::integration`], violations
//! named as the client named the fields), and an integration rendered in Smooch's shape.

use serde_json::{Map, Value};

use crate::channel::Channel;
use crate::channel_config::{self, INCOMING_ADDRESS, WEBHOOK_SECRET};
use crate::error::{Violation, Violations};
use crate::ids::IntegrationId;
use crate::integration::{self, Integration, IntegrationDraft, IntegrationStatus, UpdateOutcome};

/// The JSON type a Smooch field takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Boolean,
}

/// One body field of a type: its Smooch name and the configuration key it becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub smooch: &'static str,
    pub config: &'static str,
    pub kind: FieldKind,
}

/// Where a public field's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A configuration key, as stored (strings and booleans alike).
    Key(&'static str),
    /// A configuration key, `false` when absent (Apn's flags).
    FlagOrFalse(&'static str),
    /// The local part of an email address held by a configuration key (`frontendEmail`'s
    /// `shortId`).
    LocalPart(&'static str),
}

/// One public field of a type: its Smooch name and where its value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Public {
    pub smooch: &'static str,
    pub source: Source,
}

/// One row of 8.6's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmoochType {
    /// Smooch's `type`.
    pub name: &'static str,
    pub channel: Channel,
    /// The body fields that become configuration keys.
    pub fields: &'static [Field],
    /// Smooch fields accepted and dropped (answered in a `Warning`).
    pub ignored: &'static [&'static str],
    /// The fields answered besides `_id`, `type`, `displayName`, `status`.
    pub public: &'static [Public],
}

const fn s(name: &'static str) -> Field {
    Field {
        smooch: name,
        config: name,
        kind: FieldKind::String,
    }
}

const fn renamed(smooch: &'static str, config: &'static str) -> Field {
    Field {
        smooch,
        config,
        kind: FieldKind::String,
    }
}

const fn b(name: &'static str) -> Field {
    Field {
        smooch: name,
        config: name,
        kind: FieldKind::Boolean,
    }
}

const fn p(name: &'static str) -> Public {
    Public {
        smooch: name,
        source: Source::Key(name),
    }
}

/// The top-level fields every type takes besides its own.
pub const COMMON_FIELDS: &[&str] = &["type", "displayName"];

/// 8.6's table, in its order.
pub const TYPES: &[SmoochType] = &[
    SmoochType {
        name: "messenger",
        channel: Channel::Messenger,
        fields: &[s("pageAccessToken"), s("appId"), s("appSecret")],
        ignored: &[],
        public: &[p("appId"), p("pageId")],
    },
    SmoochType {
        name: "twilio",
        channel: Channel::TwilioSms,
        fields: &[
            s("accountSid"),
            s("authToken"),
            renamed("phoneNumberSid", "numberSid"),
        ],
        ignored: &[],
        public: &[
            p("accountSid"),
            Public {
                smooch: "phoneNumberSid",
                source: Source::Key("numberSid"),
            },
            p("phoneNumber"),
        ],
    },
    SmoochType {
        name: "telegram",
        channel: Channel::Telegram,
        fields: &[s("token")],
        ignored: &[],
        public: &[p("username")],
    },
    SmoochType {
        name: "line",
        channel: Channel::Line,
        fields: &[s("channelAccessToken"), s("channelSecret")],
        ignored: &["channelId", "qrCodeUrl", "serviceCode", "switcherSecret"],
        public: &[p("botName")],
    },
    SmoochType {
        name: "viber",
        channel: Channel::Viber,
        fields: &[s("token")],
        ignored: &[],
        public: &[p("uri")],
    },
    SmoochType {
        name: "wechat",
        channel: Channel::WeChat,
        fields: &[s("appId"), s("appSecret"), s("encodingAesKey")],
        ignored: &["accessTokenUrl"],
        public: &[p("appId"), p(WEBHOOK_SECRET)],
    },
    SmoochType {
        name: "twitter",
        channel: Channel::Twitter,
        fields: &[
            s("consumerKey"),
            s("consumerSecret"),
            s("accessTokenKey"),
            s("accessTokenSecret"),
            s("envName"),
        ],
        ignored: &["tier"],
        public: &[
            p("consumerKey"),
            p("accessTokenKey"),
            p("userId"),
            p("username"),
        ],
    },
    SmoochType {
        name: "mailgun",
        channel: Channel::Mailgun,
        fields: &[s("apiKey"), s("domain"), s(INCOMING_ADDRESS)],
        ignored: &["fromAddress", "hideUnsubscribeLink"],
        public: &[p("domain"), p(INCOMING_ADDRESS)],
    },
    SmoochType {
        name: "messagebird",
        channel: Channel::MessageBird,
        fields: &[s("accessKey"), s("originator"), s("signingKey")],
        ignored: &[],
        public: &[p("originator"), p(WEBHOOK_SECRET)],
    },
    SmoochType {
        name: "frontendEmail",
        channel: Channel::Email,
        fields: &[s("fromAddress")],
        ignored: &[],
        public: &[
            p("fromAddress"),
            Public {
                smooch: "smoochAddress",
                source: Source::Key(INCOMING_ADDRESS),
            },
            Public {
                smooch: "shortId",
                source: Source::LocalPart(INCOMING_ADDRESS),
            },
        ],
    },
    SmoochType {
        name: "apn",
        channel: Channel::Apn,
        fields: &[
            s("certificate"),
            s("password"),
            b("autoUpdateBadge"),
            b("production"),
        ],
        ignored: &[],
        public: &[
            Public {
                smooch: "autoUpdateBadge",
                source: Source::FlagOrFalse("autoUpdateBadge"),
            },
            Public {
                smooch: "production",
                source: Source::FlagOrFalse("production"),
            },
        ],
    },
    SmoochType {
        name: "fcm",
        channel: Channel::Fcm,
        fields: &[s("serverKey"), s("senderId")],
        ignored: &[],
        public: &[p("senderId")],
    },
];

/// Smooch types out of scope (SPEC 8.10): a `types` filter naming them matches nothing; creating
/// one is 400.
pub const UNSUPPORTED_TYPES: &[&str] = &[
    "web",
    "ios",
    "android",
    "whatsapp",
    "apple",
    "instagram",
    "api",
    "slack",
];

/// The row of a Smooch type name (exact, as Smooch spells it).
pub fn by_name(name: &str) -> Option<&'static SmoochType> {
    TYPES.iter().find(|t| t.name == name)
}

/// The row of a channel; `None` for channels the compatibility API does not show (Direct,
/// System, WebChat, Kik, WhatsApp, Slack).
pub fn for_channel(channel: Channel) -> Option<&'static SmoochType> {
    TYPES.iter().find(|t| t.channel == channel)
}

impl SmoochType {
    /// The body fields a create or update of this type takes (`type`, `displayName`, then the
    /// type's own), for the API's field check.
    pub fn allowed_fields(&self) -> Vec<&'static str> {
        COMMON_FIELDS
            .iter()
            .copied()
            .chain(self.fields.iter().map(|f| f.smooch))
            .collect()
    }

    /// The Smooch name of a configuration key (the key itself when it is not renamed).
    fn smooch_name<'a>(&self, config: &'a str) -> &'a str {
        self.fields
            .iter()
            .find(|f| f.config == config)
            .map_or(config, |f| f.smooch)
    }
}

/// Every table name and the list of names a `types` value may hold, for messages.
fn known_names() -> String {
    TYPES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// A `types` query value (already percent-decoded): one name or a comma list. Table names give
/// their channels; 8.10's unsupported types give nothing (so a filter of only those matches no
/// integration); any other name (an empty one too) is an OutOfRange violation of `types`.
pub fn parse_types(value: &str) -> Result<Vec<Channel>, Violation> {
    let mut channels = Vec::new();
    for name in value.split(',').map(str::trim) {
        if let Some(t) = by_name(name) {
            if !channels.contains(&t.channel) {
                channels.push(t.channel);
            }
        } else if !UNSUPPORTED_TYPES.contains(&name) {
            return Err(Violation::out_of_range(
                "types",
                &format!(
                    "names an unknown integration type '{name}' (expected one or a comma list of {})",
                    known_names()
                ),
            ));
        }
    }
    Ok(channels)
}

/// Reads `type` from a create body: its row, or the violation (Required, WrongType, or
/// OutOfRange for an unsupported or unknown type).
pub fn read_type(body: &Map<String, Value>) -> Result<&'static SmoochType, Violation> {
    match body.get("type") {
        None | Some(Value::Null) => Err(Violation::required("type")),
        Some(Value::String(name)) => by_name(name).ok_or_else(|| {
            let why = if UNSUPPORTED_TYPES.contains(&name.as_str()) {
                format!("'{name}' is not supported by Switchboard")
            } else {
                format!("is not a known integration type: '{name}'")
            };
            Violation::out_of_range(
                "type",
                &format!("{why} (expected one of {})", known_names()),
            )
        }),
        Some(_) => Err(Violation::wrong_type("type", "a string")),
    }
}

/// The default `displayName` (SPEC 8.6): `"<type> <integrationId>"`.
pub fn default_name(ty: &SmoochType, id: IntegrationId) -> String {
    format!("{} {id}", ty.name)
}

/// The type's fields of `body` as configuration keys, their JSON types checked (WrongType under
/// the Smooch name); `null` counts as absent. Fields that are not the type's are Unsupported
/// (the API's field check normally removed them first); `type` and `displayName` are skipped.
fn configuration_of(
    ty: &SmoochType,
    body: &Map<String, Value>,
    v: &mut Violations,
) -> Map<String, Value> {
    let mut configuration = Map::new();
    for (key, value) in body {
        if COMMON_FIELDS.contains(&key.as_str()) || ty.ignored.contains(&key.as_str()) {
            continue;
        }
        let Some(field) = ty.fields.iter().find(|f| f.smooch == key) else {
            v.push(Violation::unsupported(key));
            continue;
        };
        let ok = match (field.kind, value) {
            (_, Value::Null) => continue,
            (FieldKind::String, Value::String(_)) | (FieldKind::Boolean, Value::Bool(_)) => true,
            (FieldKind::String, _) => {
                v.push(Violation::wrong_type(key, "a string"));
                false
            }
            (FieldKind::Boolean, _) => {
                v.push(Violation::wrong_type(key, "a boolean"));
                false
            }
        };
        if ok {
            configuration.insert(field.config.to_owned(), value.clone());
        }
    }
    configuration
}

/// `displayName`: a string when given (its length is [`integration`]'s `name` rule).
fn display_name(body: &Map<String, Value>, v: &mut Violations) -> Option<Value> {
    match body.get("displayName") {
        None | Some(Value::Null) => None,
        Some(name @ Value::String(_)) => Some(name.clone()),
        Some(_) => {
            v.push(Violation::wrong_type("displayName", "a string"));
            None
        }
    }
}

/// Renames the properties of SPEC 3's violations to the names the client used: `name` →
/// `displayName`, `configuration.<key>` → the Smooch field (`numberSid` → `phoneNumberSid`).
fn smooch_violations(ty: &SmoochType, violations: Violations) -> Violations {
    Violations(
        violations
            .0
            .into_iter()
            .map(|mut violation| {
                let renamed = if violation.property == "name" {
                    Some("displayName".to_owned())
                } else if let Some(key) = violation.property.strip_prefix("configuration.") {
                    // A nested path (`capabilities.sms`) keeps its tail.
                    let (head, tail) = key.split_once('.').map_or((key, ""), |(h, t)| (h, t));
                    let head = ty.smooch_name(head);
                    Some(if tail.is_empty() {
                        head.to_owned()
                    } else {
                        format!("{head}.{tail}")
                    })
                } else if violation.property == "configuration" {
                    Some(String::new())
                } else {
                    None
                };
                if let Some(new) = renamed {
                    let old = format!("'{}'", violation.property);
                    violation.message = if new.is_empty() {
                        violation.message.replace(&format!("Property {old} "), "")
                    } else {
                        violation.message.replace(&old, &format!("'{new}'"))
                    };
                    violation.property = new;
                }
                violation
            })
            .collect(),
    )
}

/// A create body of 8.6 (`{ type*, displayName, …type fields }`, ignored fields already dropped
/// or left in) as SPEC 3's draft of the integration `id`: fields renamed into the configuration,
/// validated and completed (generated keys) by [`integration::validate_create`]. `displayName`
/// absent: [`default_name`]. Violations name the Smooch fields.
pub fn draft_for_create(
    body: &Map<String, Value>,
    id: IntegrationId,
) -> Result<(&'static SmoochType, IntegrationDraft), Violations> {
    let ty = read_type(body).map_err(|v| Violations(vec![v]))?;
    let mut v = Violations::default();
    let configuration = configuration_of(ty, body, &mut v);
    let name = display_name(body, &mut v);
    if !v.is_empty() {
        return Err(v);
    }
    let request = serde_json::json!({
        "channelId": ty.channel.name(),
        "name": name.unwrap_or_else(|| Value::String(default_name(ty, id))),
        "configuration": configuration,
    });
    integration::validate_create(&request)
        .map(|draft| (ty, draft))
        .map_err(|violations| smooch_violations(ty, violations))
}

/// An update body of 8.6 (`{ type, displayName, …fields }`) applied to `current`: `type`, when
/// given, must be the current one (OutOfRange); given fields merge into the configuration, which
/// [`integration::validate_update`] checks and writes whole (TwilioSMS and Messenger ignore it,
/// with its warning). A body without fields leaves the configuration alone. `None` when `current`
/// is not of a table channel (the API answers 404 before).
pub fn update_outcome(
    body: &Map<String, Value>,
    current: &Integration,
) -> Option<Result<UpdateOutcome, Violations>> {
    let ty = for_channel(current.channel)?;
    let mut v = Violations::default();
    match body.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) if name == ty.name => {}
        Some(Value::String(name)) => v.push(Violation::out_of_range(
            "type",
            &format!(
                "cannot change: this integration's type is '{}', not '{name}'",
                ty.name
            ),
        )),
        Some(_) => v.push(Violation::wrong_type("type", "a string")),
    }
    let given = configuration_of(ty, body, &mut v);
    let name = display_name(body, &mut v);
    if !v.is_empty() {
        return Some(Err(v));
    }
    let mut request = Map::new();
    if let Some(name) = name {
        request.insert("name".to_owned(), name);
    }
    if !given.is_empty() {
        // The stored configuration's client keys (generated ones are kept by the update
        // itself), overwritten by the given fields.
        let mut configuration: Map<String, Value> = current
            .configuration
            .iter()
            .filter(|(key, _)| {
                channel_config::keys(current.channel)
                    .iter()
                    .any(|k| k.name == key.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        configuration.extend(given);
        request.insert("configuration".to_owned(), Value::Object(configuration));
    }
    Some(
        integration::validate_update(&Value::Object(request), current)
            .map_err(|violations| smooch_violations(ty, violations)),
    )
}

/// The `status` of 8.6: `active` (3000) or `inactive` (3002).
pub const fn status(status: IntegrationStatus) -> &'static str {
    match status {
        IntegrationStatus::Active => "active",
        IntegrationStatus::Paused => "inactive",
    }
}

/// An integration in Smooch's shape: `{ _id, type, displayName, status, …public fields }`,
/// public fields under their Smooch names once known (absent while unset), never a secret.
/// `None` for a channel outside the table (its id is 404 on the compatibility API).
pub fn render(integration: &Integration) -> Option<Value> {
    let ty = for_channel(integration.channel)?;
    let mut out = Map::new();
    out.insert("_id".to_owned(), Value::String(integration.id.to_string()));
    out.insert("type".to_owned(), Value::String(ty.name.to_owned()));
    out.insert(
        "displayName".to_owned(),
        Value::String(integration.name.clone()),
    );
    out.insert(
        "status".to_owned(),
        Value::String(status(integration.status).to_owned()),
    );
    let config = &integration.configuration;
    for public in ty.public {
        let value = match public.source {
            Source::Key(key) => config.get(key).filter(|v| !v.is_null()).cloned(),
            Source::FlagOrFalse(key) => Some(
                config
                    .get(key)
                    .filter(|v| v.is_boolean())
                    .cloned()
                    .unwrap_or(Value::Bool(false)),
            ),
            Source::LocalPart(key) => config
                .get(key)
                .and_then(Value::as_str)
                .and_then(|address| address.split_once('@'))
                .map(|(local, _)| Value::String(local.to_owned())),
        };
        if let Some(value) = value {
            out.insert(public.smooch.to_owned(), value);
        }
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests;
