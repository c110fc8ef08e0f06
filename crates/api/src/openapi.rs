//! The OpenAPI document as served and committed: poem-openapi's document of the routes, completed
//! with what its derive cannot say, so that a request the document allows is never refused for
//! its shape and one it forbids is refused:
//!
//! - the server's rules as schema keywords: integer enums (`statusId`), ranges (`pageSize`,
//!   `closeDormantConversation`), patterns (names that are not blank, no NUL character in any
//!   string), `nullable` where `null` counts as absent, required query parameters, and the shape
//!   of an integration's `configuration` per channel, of a message and of an event;
//! - `links` from the operation that creates an id to the operations that use it (hub →
//!   integration → conversation → activity → deliveries), for clients and stateful testing;
//! - the methods of each path, for the `Allow` header of a 405 ([`allowed_methods`]).
//!
//! The rules come from the domain's constants and catalogues, so each is still written once.

use std::sync::OnceLock;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchboard_domain::activity::{INBOUND_EVENT_TYPES, MESSAGE_TYPES};
use switchboard_domain::channel::Channel;
use switchboard_domain::channel_config::{self, KeySpec, ValueKind};
use switchboard_domain::{conversation, hub, integration, limits, paging};

/// A JSON value whose objects keep their order, so that the document reads as poem writes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Node {
    Object(IndexMap<String, Node>),
    Array(Vec<Node>),
    Scalar(Value),
}

impl From<Value> for Node {
    fn from(v: Value) -> Self {
        match v {
            Value::Object(map) => {
                Node::Object(map.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
            Value::Array(items) => Node::Array(items.into_iter().map(Node::from).collect()),
            scalar => Node::Scalar(scalar),
        }
    }
}

impl Node {
    fn object(&mut self) -> &mut IndexMap<String, Node> {
        match self {
            Node::Object(map) => map,
            other => panic!("the OpenAPI document has {other:?} where an object was expected"),
        }
    }

    /// The node at `path`; the document is the code's, so a missing step is a bug of this file.
    fn at(&mut self, path: &[&str]) -> &mut Node {
        path.iter().fold(self, |node, step| {
            node.object()
                .get_mut(*step)
                .unwrap_or_else(|| panic!("the OpenAPI document has no {path:?}"))
        })
    }

    /// Sets each key of `keywords` (an object) on this object; a `null` removes the key.
    fn merge(&mut self, keywords: Value) {
        let Value::Object(keywords) = keywords else {
            panic!("keywords must be an object")
        };
        let map = self.object();
        for (k, v) in keywords {
            if v.is_null() {
                map.shift_remove(&k);
            } else {
                map.insert(k, v.into());
            }
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Object(map) => map.get(key),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(Value::String(s)) => Some(s),
            _ => None,
        }
    }
}

/// Rust's white space (`char::is_whitespace`, the Unicode `White_Space` property, what
/// `str::trim` removes), spelled out for a character class so that every regex engine reads it
/// alike.
const WS: &str = r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// No NUL character: PostgreSQL cannot store one in text, so both backends refuse it (400/201).
const NO_NUL: &str = r"^[^\u0000]*$";

/// Not blank ([`WS`] only) and no NUL character.
fn not_blank() -> String {
    format!(r"^[^\u0000]*[^\u0000{WS}][^\u0000]*$")
}

/// Not blank; NUL characters allowed (configuration values are not stored as text columns).
fn text() -> String {
    format!(r"[^{WS}]")
}

/// The document served at `/openapi.json` and committed as `openapi/openapi.json`.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> String {
    let mut doc: Node = serde_json::from_str(&crate::openapi_service().spec())
        .expect("poem-openapi writes its document as JSON");
    state_body_rules(&mut doc);
    state_parameter_rules(&mut doc);
    add_links(&mut doc);
    add_channel_routes(&mut doc);
    add_smooch_routes(&mut doc);
    serde_json::to_string_pretty(&doc).expect("a JSON value serializes")
}

/// The public routes the providers call (SPEC 7.3), documented as the webhooks they are: no
/// bearer token, the provider's signature or secret instead. They are served by plain poem
/// routes (`api::channels`): raw bodies, verified before they are parsed.
fn add_channel_routes(doc: &mut Node) {
    let error = |what: &str| {
        json!({ "description": what, "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/ErrorBody" } } } })
    };
    let id = json!({ "name": "integrationId", "in": "path", "required": true,
        "description": "The integration the provider's webhook URL names.",
        "schema": { "type": "string", "format": "uuid" } });
    let refusals = |ok: Value| {
        json!({
            "200": ok,
            "400": error("Not a UUID (203), or a body the provider's format cannot read after a valid signature (300)."),
            "401": error("The signature or secret is missing or wrong (102); nothing is stored."),
            "404": error("No integration of this channel has this id (6000)."),
            "413": error("The body is larger than 1 MiB (304)."),
            "429": error("Past the integration's limit of provider calls (429), with Retry-After."),
        })
    };
    let empty_ok = json!({ "description": "Stored and routed (also a duplicate, an ignored part, a paused integration, a hub without handler: the provider must not retry)." });
    let meta_handshake = |channel: &str| {
        json!({
            "tags": ["Channels"],
            "summary": format!("{channel}: the subscription handshake"),
            "description": "Meta's verification request: `hub.mode=subscribe` and `hub.verify_token` equal to the integration's `webhookSecret` are answered with `hub.challenge` as text/plain. It also finds an integration still being provisioned.",
            "operationId": format!("channels.{}.handshake", channel.to_lowercase()),
            "security": [],
            "parameters": [
                id,
                { "name": "hub.mode", "in": "query", "schema": { "type": "string" } },
                { "name": "hub.verify_token", "in": "query", "schema": { "type": "string" } },
                { "name": "hub.challenge", "in": "query", "schema": { "type": "string" } },
            ],
            "responses": {
                "200": { "description": "The challenge.", "content": { "text/plain": { "schema": { "type": "string" } } } },
                "400": error("Not a UUID (203)."),
                "403": error("The verify token or the mode is wrong (101)."),
                "404": error("No integration of this channel has this id (6000)."),
                "429": error("Past the integration's limit of provider calls (429)."),
            },
        })
    };
    let post = |channel: &str, header: &str, how: &str, content: Value, ok: Value| {
        json!({
            "tags": ["Channels"],
            "summary": format!("{channel}: the provider's webhook"),
            "description": format!("Called by {channel}, never by API clients: {how} Each message becomes activities through the same path as `POST /inbound/customer/v1/direct/activity`, deduplicated by the provider's message id for 24 hours; the answer comes after the commit."),
            "operationId": format!("channels.{}.webhook", channel.to_lowercase()),
            "security": [],
            "parameters": [
                id,
                { "name": header, "in": "header", "schema": { "type": "string" } },
            ],
            "requestBody": { "content": content },
            "responses": refusals(ok),
        })
    };
    let json_body = json!({ "application/json": { "schema": { "type": "object" } } });
    let mut add = |path: String, item: Value| {
        doc.at(&["paths"]).object().insert(path, item.into());
    };
    add(
        "/channels/twilio/{integrationId}".to_owned(),
        json!({ "post": post(
            "Twilio",
            "X-Twilio-Signature",
            "`X-Twilio-Signature` is base64(HMAC-SHA1(authToken, SWITCHBOARD_PUBLIC_URL + path + query + the POST parameters sorted by name, each name then value)), and `AccountSid` must be the integration's.",
            json!({ "application/x-www-form-urlencoded": { "schema": { "type": "object", "additionalProperties": { "type": "string" } } } }),
            json!({ "description": "An empty TwiML document (no reply).", "content": { "text/xml": { "schema": { "type": "string" } } } }),
        ) }),
    );
    for channel in ["Messenger", "WhatsApp"] {
        add(
            format!("/channels/{}/{{integrationId}}", channel.to_lowercase()),
            json!({
                "get": meta_handshake(channel),
                "post": post(
                    channel,
                    "X-Hub-Signature-256",
                    "`X-Hub-Signature-256` is `sha256=` + lowercase hex(HMAC-SHA256(app secret, raw body)), the app secret being the configuration's `appSecret` or SWITCHBOARD_MESSENGER_APP_SECRET.",
                    json_body.clone(),
                    if channel == "Messenger" {
                        json!({ "description": "`EVENT_RECEIVED`.", "content": { "text/plain": { "schema": { "type": "string" } } } })
                    } else {
                        empty_ok.clone()
                    },
                ),
            }),
        );
    }
    add(
        "/channels/telegram/{integrationId}".to_owned(),
        json!({ "post": post(
            "Telegram",
            "X-Telegram-Bot-Api-Secret-Token",
            "`X-Telegram-Bot-Api-Secret-Token` equals the integration's `webhookSecret` (set by `setWebhook`).",
            json_body,
            empty_ok,
        ) }),
    );
    add(
        "/channels/media/{integrationId}/{ref}".to_owned(),
        json!({ "get": {
            "tags": ["Channels"],
            "summary": "A provider's media file",
            "description": "A link in a stored activity (Telegram, WhatsApp): fetches the provider's file with the integration's credentials and streams it back with the provider's Content-Type, `Content-Disposition: inline`, `Cache-Control: private, max-age=3600` and `X-Content-Type-Options: nosniff`. Links do not expire; they stop working when the integration is deleted or the provider drops the file.",
            "operationId": "channels.media",
            "security": [],
            "parameters": [
                id,
                { "name": "ref", "in": "path", "required": true, "description": "base64url of the provider's reference.", "schema": { "type": "string" } },
                { "name": "sig", "in": "query", "required": true, "description": "base64url(HMAC-SHA256) of `{integrationId}/{ref}` with the server's media key.", "schema": { "type": "string" } },
            ],
            "responses": {
                "200": { "description": "The file.", "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } } },
                "404": error("A wrong signature, an unknown integration, or a file the provider no longer has (105)."),
                "429": error("Past the integration's limit of provider calls (429)."),
                "502": error("The file is larger than 25 MiB (100, \"media too large\")."),
                "503": error("The provider is unreachable (100)."),
            },
        } }),
    );
    if let Some(Node::Array(tags)) = doc.object().get_mut("tags") {
        tags.push(json!({ "name": "Channels", "description": "The webhooks the providers call (SPEC 7.3): no token, the provider's signature or secret." }).into());
    }
}

/// The Smooch-compatible routes (SPEC 8), described by `api::smooch::openapi`.
fn add_smooch_routes(doc: &mut Node) {
    use crate::smooch::openapi as smooch;
    for (path, method, operation) in smooch::operations() {
        let paths = doc.at(&["paths"]).object();
        let item = paths
            .entry(path)
            .or_insert_with(|| Node::Object(IndexMap::new()));
        item.object().insert(method.to_owned(), operation.into());
    }
    doc.at(&["components", "schemas"])
        .object()
        .insert("SmoochError".to_owned(), smooch::error_schema().into());
    doc.at(&["components", "securitySchemes"])
        .object()
        .insert("smoochJwt".to_owned(), smooch::security_scheme().into());
    if let Some(Node::Array(tags)) = doc.object().get_mut("tags") {
        tags.push(json!({ "name": "smooch", "description": smooch::TAG }).into());
    }
}

fn schema<'a>(doc: &'a mut Node, name: &str) -> &'a mut Node {
    doc.at(&["components", "schemas", name])
}

fn property<'a>(doc: &'a mut Node, schema_name: &str, property: &str) -> &'a mut Node {
    doc.at(&["components", "schemas", schema_name, "properties", property])
}

/// The request bodies read property by property by the domain (`switchboard_domain::json`):
/// `null` counts as absent, and no string may hold a NUL character.
const JSON_BODIES: &[&str] = &[
    "HubIn",
    "HubPatch",
    "IntegrationIn",
    "IntegrationUpdate",
    "SecretIn",
    "EstablishIn",
    "InboundIn",
    "SenderIn",
];

/// The names of the properties `schema` requires.
fn required_of(schema: &Node) -> Vec<String> {
    match schema.get("required") {
        Some(Node::Array(items)) => items
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn state_body_rules(doc: &mut Node) {
    // poem writes an absent `Option` as `null` in answers, and the domain reads `null` as absent
    // in requests: every optional property of poem's schemas may be null.
    for s in doc.at(&["components", "schemas"]).object().values_mut() {
        let required = required_of(s);
        if let Some(Node::Object(props)) = s.object().get_mut("properties") {
            for (key, p) in props.iter_mut() {
                if !required.contains(key) {
                    p.merge(json!({ "nullable": true }));
                }
            }
        }
    }
    for name in JSON_BODIES {
        let s = schema(doc, name);
        if let Some(Node::Object(props)) = s.object().get_mut("properties") {
            for p in props.values_mut() {
                let is_plain_string = p.get("type").and_then(Node::as_str) == Some("string")
                    && p.get("format").is_none()
                    && p.get("enum").is_none();
                if is_plain_string {
                    p.merge(json!({ "pattern": NO_NUL }));
                }
            }
        }
    }

    // The token request (api::token): an empty field counts as absent.
    property(doc, "TokenIn", "grant_type").merge(json!({ "enum": ["client_credentials"] }));
    property(doc, "TokenIn", "client_id").merge(json!({ "minLength": 1 }));
    property(doc, "TokenIn", "client_secret").merge(json!({ "minLength": 1 }));

    // Hubs (switchboard_domain::hub).
    for name in ["HubIn", "HubPatch"] {
        property(doc, name, "name").merge(json!({
            "minLength": 1, "maxLength": hub::MAX_NAME_LEN, "pattern": not_blank(),
        }));
        property(doc, name, "closeDormantConversation")
            .merge(json!({ "minimum": 0, "maximum": hub::MAX_DORMANT_DAYS }));
        property(doc, name, "statusId").merge(json!({
            "enum": [hub::HubStatus::Active.id(), hub::HubStatus::Paused.id(), null],
        }));
    }

    // Integrations (switchboard_domain::integration, channel_config).
    for name in ["IntegrationIn", "IntegrationUpdate"] {
        property(doc, name, "name").merge(json!({
            "minLength": 1, "maxLength": integration::MAX_NAME_LEN, "pattern": not_blank(),
        }));
        property(doc, name, "statusId").merge(json!({
            "enum": [
                integration::IntegrationStatus::Active.id(),
                integration::IntegrationStatus::Paused.id(),
                null,
            ],
        }));
        property(doc, name, "channelId").merge(channel_id_schema());
    }

    // Each channel's configuration, from the catalogue: a create names its channel, so the body
    // is one of the channels' shapes; an update may leave `channelId` out.
    let mut branches: Vec<Value> = Vec::new();
    let mut update_branches: Vec<Value> = Vec::new();
    for c in Channel::ALL {
        let name = format!("{}Configuration", c.name());
        let reference = format!("#/components/schemas/{name}");
        doc.at(&["components", "schemas"])
            .object()
            .insert(name, configuration_schema(c).into());
        let channel_id = json!({ "enum": [c.name(), c.number().to_string(), c.number()] });
        branches.push(json!({
            "title": c.name(),
            "properties": { "channelId": channel_id, "configuration": { "$ref": reference } },
        }));
        let mut update_channel_id = channel_id.clone();
        update_channel_id["enum"]
            .as_array_mut()
            .expect("an enum")
            .push(Value::Null);
        // TwilioSMS, Messenger and Slack ignore an update's configuration, whatever it holds.
        let update_configuration = if c.ignores_config_updates() {
            json!({ "description": "Ignored (the answer carries a `Warning`)." })
        } else {
            json!({ "nullable": true, "allOf": [{ "$ref": reference }] })
        };
        update_branches.push(json!({
            "title": c.name(),
            "properties": { "channelId": update_channel_id, "configuration": update_configuration },
        }));
    }
    property(doc, "IntegrationIn", "configuration").merge(json!({ "type": "object" }));
    schema(doc, "IntegrationIn").merge(json!({ "oneOf": branches }));
    schema(doc, "IntegrationUpdate").merge(json!({ "anyOf": update_branches }));

    // Secrets (api::clients).
    property(doc, "SecretIn", "name").merge(json!({
        "minLength": 1, "maxLength": switchboard_domain::limits::MAX_NAME_LEN, "pattern": not_blank(),
    }));
    property(doc, "SmoochKeyIn", "name").merge(json!({
        "minLength": 1, "maxLength": switchboard_domain::limits::MAX_NAME_LEN, "pattern": not_blank(),
    }));
    property(doc, "SecretIn", "expiration")
        .merge(json!({ "format": "date-time", "pattern": null }));

    // Conversations (switchboard_domain::conversation).
    property(doc, "EstablishIn", "binding").merge(json!({
        "minLength": 1, "maxLength": conversation::MAX_BINDING_LEN,
    }));
    // OpenAPI 3.0 has no `propertyNames`: the description says that names hold no NUL either.
    property(doc, "EstablishIn", "properties").merge(json!({
        "description": format!(
            "Collections of string key/values, merged key by key into an open conversation's. \
            No name or value may hold a NUL character; a null collection or value counts as \
            absent. What would be stored (the merged properties, with their defaults) holds at \
            most {} collections of at most {} keys each, names (of collections and keys) of at \
            most {} characters, values of at most {} characters, and at most {} bytes as JSON in \
            all; past a cap the establish is refused (400, code 206) and nothing changes.",
            limits::MAX_PROPERTY_COLLECTIONS,
            limits::MAX_PROPERTY_KEYS,
            limits::MAX_PROPERTY_NAME_LEN,
            limits::MAX_PROPERTY_VALUE_LEN,
            limits::MAX_PROPERTIES_BYTES,
        ),
        "maxProperties": limits::MAX_PROPERTY_COLLECTIONS,
        "additionalProperties": {
            "type": "object",
            "nullable": true,
            "maxProperties": limits::MAX_PROPERTY_KEYS,
            "additionalProperties": {
                "type": "string",
                "nullable": true,
                "pattern": NO_NUL,
                "maxLength": limits::MAX_PROPERTY_VALUE_LEN,
            },
        },
    }));

    // Activities (switchboard_domain::activity): exactly one of `message` and `event`, as `type`
    // says.
    activity_schemas(doc);
    property(doc, "InboundIn", "type")
        .merge(json!({ "enum": ["message", "event"], "pattern": null }));
    property(doc, "InboundIn", "message")
        .merge(json!({ "allOf": [{ "$ref": "#/components/schemas/Message" }] }));
    property(doc, "InboundIn", "event")
        .merge(json!({ "allOf": [{ "$ref": "#/components/schemas/Event" }] }));
    let absent = json!({ "nullable": true, "enum": [null] });
    schema(doc, "InboundIn").merge(json!({
        "oneOf": [
            {
                "required": ["message"],
                "properties": {
                    "type": { "enum": ["message"] },
                    "message": { "type": "object" },
                    "event": absent,
                },
            },
            {
                "required": ["event"],
                "properties": {
                    "type": { "enum": ["event"] },
                    "event": { "type": "object" },
                    "message": absent,
                },
            },
        ],
    }));
}

/// An absolute http or https URL. Lower-case letters and digits in the host, the last label
/// starting with a letter (else the URL parser reads an IPv4 address), keep every URL of the
/// pattern one that the server's parser takes; the server takes any absolute http(s) URL.
const HTTP_URL: &str =
    r"^https?://([a-z0-9]+\.)*[a-z][a-z0-9]*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]*)*$";

/// `Message`, `Item`, `Action` and `Event` (switchboard_domain::activity::inbound): `null`
/// counts as absent, properties not named are kept as given.
fn activity_schemas(doc: &mut Node) {
    let string = json!({
        "type": "string", "nullable": true, "pattern": NO_NUL, "maxLength": limits::MAX_TITLE_LEN,
    });
    let url = json!({ "type": "string", "pattern": HTTP_URL, "maxLength": limits::MAX_URL_LEN });
    let title = json!({ "type": "string", "pattern": NO_NUL, "maxLength": limits::MAX_TITLE_LEN });
    let payload =
        json!({ "type": "string", "pattern": NO_NUL, "maxLength": limits::MAX_PAYLOAD_LEN });
    let r = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let list_of = |name: &str| json!({ "type": "array", "minItems": 1, "items": r(name) });
    let nullable_list_of = |name: &str| {
        let mut l = list_of(name);
        l["nullable"] = json!(true);
        l
    };
    let kind = |types: &[&str]| json!({ "type": "string", "enum": types });
    let media: Vec<&str> = MESSAGE_TYPES
        .iter()
        .copied()
        .filter(|t| ["image", "video", "audio", "attachment", "youtube", "vimeo"].contains(t))
        .collect();
    let both = json!({ "required": ["latitude", "longitude"] });
    let neither = json!({ "not": { "anyOf": [
        { "required": ["latitude"] }, { "required": ["longitude"] },
    ] } });
    let schemas = json!({
        "Message": {
            "description": "A message, by `type`; properties not named here are kept as given.",
            "oneOf": [
                {
                    "type": "object",
                    "title": "text",
                    "required": ["type"],
                    "properties": {
                        "type": kind(&["text"]),
                        "text": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": limits::MAX_TEXT_LEN,
                            "pattern": NO_NUL,
                        },
                        "items": list_of("Item"),
                        "actions": list_of("Action"),
                    },
                    "anyOf": [
                        { "required": ["text"] },
                        { "required": ["items"] },
                        { "required": ["actions"] },
                    ],
                },
                {
                    "type": "object",
                    "title": "media",
                    "required": ["type", "url"],
                    "properties": {
                        "type": kind(&media),
                        "url": url,
                        "title": string,
                        "caption": string,
                    },
                },
                {
                    "type": "object",
                    "title": "location",
                    "required": ["type"],
                    "properties": {
                        "type": kind(&["location"]),
                        "address": title,
                        "latitude": { "type": "number", "minimum": -90, "maximum": 90 },
                        "longitude": { "type": "number", "minimum": -180, "maximum": 180 },
                    },
                    "anyOf": [both, { "allOf": [{ "required": ["address"] }, neither] }],
                },
                {
                    "type": "object",
                    "title": "contact",
                    "required": ["type"],
                    "properties": { "type": kind(&["contact"]) },
                },
                {
                    "type": "object",
                    "title": "card",
                    "required": ["type"],
                    "properties": {
                        "type": kind(&["card"]),
                        "title": string,
                        "actions": nullable_list_of("Action"),
                    },
                },
                {
                    "type": "object",
                    "title": "carousel or list",
                    "required": ["type", "items"],
                    "properties": {
                        "type": kind(&["carousel", "list"]),
                        "items": list_of("Item"),
                    },
                },
            ],
        },
        "Item": {
            "type": "object",
            "description": "An item of a text, carousel or list message.",
            "properties": {
                "title": string,
                "subtitle": string,
                "actions": nullable_list_of("Action"),
            },
        },
        "Action": {
            "description": "A button, by `type`.",
            "oneOf": [
                {
                    "type": "object",
                    "required": ["type", "title", "payload"],
                    "properties": {
                        "type": kind(&["postback", "reply"]),
                        "title": title,
                        "payload": payload,
                    },
                },
                {
                    "type": "object",
                    "required": ["type", "title", "url"],
                    "properties": {
                        "type": kind(&["link"]),
                        "title": title,
                        "url": url,
                    },
                },
            ],
        },
        "Event": {
            "description": "An event, by `type`.",
            "oneOf": [
                {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": kind(&INBOUND_EVENT_TYPES
                            .iter()
                            .copied()
                            .filter(|t| *t != "payload")
                            .collect::<Vec<_>>()),
                    },
                },
                {
                    "type": "object",
                    "required": ["type", "payloadType", "payload"],
                    "properties": {
                        "type": kind(&["payload"]),
                        "payloadType": payload,
                        "payload": { "anyOf": [
                            { "type": "object" },
                            { "type": "array" },
                            { "type": "string" },
                            { "type": "number" },
                            { "type": "boolean" },
                        ] },
                    },
                },
            ],
        },
    });
    let components = doc.at(&["components", "schemas"]).object();
    if let Value::Object(schemas) = schemas {
        for (name, s) in schemas {
            components.insert(name, s.into());
        }
    }
}

/// The schema of `channel`'s configuration (channel_config): its keys (any case in; `null` is
/// absent), the keys the server generates (accepted and ignored) and `regenerateKeys`; no other.
fn configuration_schema(channel: Channel) -> Value {
    let mut properties = serde_json::Map::new();
    let mut required: Vec<&str> = Vec::new();
    for key in channel_config::keys(channel) {
        let mut s = value_schema(key);
        if key.required {
            required.push(key.name);
        } else {
            s["nullable"] = json!(true);
        }
        properties.insert(key.name.to_owned(), s);
    }
    let mut ignored = vec![
        channel_config::PUBLIC_SIGNING_KEY,
        channel_config::PRIVATE_SIGNING_KEY,
        channel_config::WEBHOOK_SECRET,
    ];
    if channel == Channel::Email {
        ignored.push(channel_config::INCOMING_ADDRESS);
    }
    for key in ignored {
        properties.insert(
            key.to_owned(),
            json!({ "description": "Generated by the server: accepted and ignored." }),
        );
    }
    properties.insert(
        channel_config::REGENERATE_KEYS.to_owned(),
        json!({
            "type": "boolean",
            "nullable": true,
            "description": "On update: true makes a new signing key pair (Direct, System).",
        }),
    );
    let mut description = format!(
        "The configuration of a {} integration. Keys match in any case.",
        channel.name()
    );
    if channel == Channel::Slack {
        description.push_str(
            " Instead of these keys, the OAuth form `{\"code\": …, \"nonce\": …}` has the \
             server exchange the code with Slack for them.",
        );
    }
    if channel == Channel::Mailgun {
        description.push_str(" `incomingAddress` must be an address on `domain`.");
    }
    let mut out = json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        out["required"] = json!(required);
    }
    if channel == Channel::System {
        // By `format` (SPEC 8.7): `switchboard` (or none) needs `events` and takes none of the
        // smooch keys; `smooch` needs `triggers` (its `events` are derived, a value sent is
        // ignored). `null` counts as absent.
        use switchboard_domain::smooch::webhook as smooch;
        let mut plain = serde_json::Map::new();
        plain.insert(
            smooch::FORMAT.to_owned(),
            json!({ "not": { "enum": [smooch::FORMAT_SMOOCH] } }),
        );
        // `events` is checked only with format `switchboard`: with `smooch` it is derived,
        // and a value sent back is ignored whatever it is.
        let mut events = out["properties"]["events"].take();
        if let Some(map) = events.as_object_mut() {
            map.remove("nullable");
        }
        out["properties"]["events"] = json!({
            "description": "Format `switchboard`: the event filters (SPEC 5.4), required. Format `smooch`: derived from `triggers`, read-only (a value sent is ignored).",
        });
        plain.insert("events".to_owned(), events);
        for key in smooch::SMOOCH_ONLY_KEYS {
            plain.insert((*key).to_owned(), json!({ "enum": [null] }));
        }
        out["anyOf"] = json!([
            { "required": ["events"], "properties": plain },
            {
                "required": [smooch::FORMAT, smooch::TRIGGERS],
                "properties": {
                    smooch::FORMAT: { "enum": [smooch::FORMAT_SMOOCH] },
                    smooch::TRIGGERS: { "type": "array" },
                },
            },
        ]);
    }
    out
}

/// The schema of one configuration value (`channel_config::check_value`).
fn value_schema(key: &KeySpec) -> Value {
    let email = format!(r"^[^@{WS}]+@[^@.{WS}]+(\.[^@.{WS}]+)+$");
    match key.kind {
        ValueKind::Text => json!({
            "type": "string",
            "pattern": text(),
            "maxLength": limits::MAX_CONFIG_TEXT_LEN,
        }),
        ValueKind::Boolean => json!({ "type": "boolean" }),
        ValueKind::IntegrationType => json!({
            "type": "string",
            "enum": ["Customer", "Agent", "Bot"],
            "description": "Any case.",
        }),
        ValueKind::WebhookUrl => json!({
            "type": "string",
            "pattern": HTTP_URL,
            "maxLength": limits::MAX_URL_LEN,
            "description": "An absolute http or https URL.",
        }),
        ValueKind::Start => json!({
            "type": "array",
            "description": "Messages sent to a new conversation.",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": { "type": { "type": "string", "pattern": not_blank() } },
            },
        }),
        ValueKind::Events => json!({
            "type": "array",
            "minItems": 1,
            "items": { "type": "string", "enum": channel_config::EVENT_FILTERS },
        }),
        ValueKind::Format => json!({
            "type": "string",
            "enum": switchboard_domain::smooch::webhook::FORMATS,
            "description": "System: `switchboard` (default, SPEC 5.5's body) or `smooch` (a Smooch webhook, SPEC 8.7: `triggers` required, `events` derived from them and read-only, `webhookSecret` generated).",
        }),
        ValueKind::Triggers => json!({
            "type": "array",
            "minItems": 1,
            "uniqueItems": true,
            "description": "Format `smooch` only: Smooch webhook triggers.",
            "items": {
                "type": "string",
                "enum": switchboard_domain::smooch::webhook::FIRED_TRIGGERS
                    .iter()
                    .chain(switchboard_domain::smooch::webhook::SILENT_TRIGGERS)
                    .collect::<Vec<_>>(),
            },
        }),
        ValueKind::AllowedOrigins => json!({
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "string",
                "description": "A host name, optionally with `*.`; no scheme, port or path (the port of an `Origin` is ignored).",
                "pattern": r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",
                "maxLength": 253,
            },
        }),
        ValueKind::SessionTtl => json!({
            "type": "integer",
            "minimum": 300,
            "maximum": 86400,
            "description": "Lifetime of a WebChat session token, seconds (default 3600).",
        }),
        ValueKind::Title => json!({
            "type": "string",
            "pattern": not_blank(),
            "maxLength": 100,
            "description": "The widget's title (default the integration's name).",
        }),
        ValueKind::EmailAddress | ValueKind::MailgunAddress => {
            json!({ "type": "string", "pattern": email, "maxLength": limits::MAX_CONFIG_TEXT_LEN })
        }
        // Standard alphabet, padding optional, unused bits zero (whitespace is ignored too).
        ValueKind::Base64 => json!({
            "type": "string",
            "minLength": 2,
            "maxLength": limits::MAX_CERTIFICATE_LEN,
            "pattern": r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw](==)?|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=?)?$",
        }),
        ValueKind::Digits => json!({
            "type": "string",
            "pattern": "^[0-9]+$",
            "maxLength": limits::MAX_CONFIG_TEXT_LEN,
        }),
        ValueKind::Capabilities => json!({
            "type": "object",
            "description": "Read-only: learned from Twilio (an input only while providers are offline).",
            "properties": {
                "sms": { "type": "boolean" },
                "mms": { "type": "boolean" },
                "voice": { "type": "boolean" },
            },
            "additionalProperties": false,
        }),
    }
}

/// `channelId`: a channel's name or its number, as a string or a JSON number. Names match in
/// any case (the enum lists them as answered).
fn channel_id_schema() -> Value {
    let mut names: Vec<Value> = Vec::new();
    let mut numbers: Vec<Value> = Vec::new();
    for c in Channel::ALL {
        names.push(json!(c.name()));
        names.push(json!(c.number().to_string()));
        numbers.push(json!(c.number()));
    }
    json!({
        "type": null,
        "pattern": null,
        "oneOf": [
            { "type": "string", "enum": names },
            { "type": "integer", "enum": numbers },
        ],
    })
}

/// The query and path parameters' rules.
fn state_parameter_rules(doc: &mut Node) {
    let Some(Node::Object(paths)) = doc.object().get_mut("paths") else {
        panic!("the OpenAPI document has no paths")
    };
    for ops in paths.values_mut() {
        for op in ops.object().values_mut() {
            let op_id = op
                .get("operationId")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_owned();
            let Some(Node::Array(params)) = op.object().get_mut("parameters") else {
                continue;
            };
            for p in params {
                let name = p
                    .get("name")
                    .and_then(Node::as_str)
                    .unwrap_or("")
                    .to_owned();
                if let Some((required, keywords)) = parameter_rule(&op_id, &name) {
                    if required {
                        p.merge(json!({ "required": true }));
                    }
                    p.at(&["schema"]).merge(keywords);
                }
            }
        }
    }
}

/// Whether the parameter `name` of `operation` is required, and its schema's keywords.
fn parameter_rule(operation: &str, name: &str) -> Option<(bool, Value)> {
    let rule = match (operation, name) {
        (_, "pageNumber") => json!({ "minimum": 0, "maximum": i64::MAX }),
        (_, "pageSize") => json!({ "minimum": 1, "maximum": paging::MAX_PAGE_SIZE }),
        ("activities.list", "type") => {
            return Some((true, json!({ "enum": ["Customer", "Agent", "Bot"] })))
        }
        ("integrations.listByChannel", "channelType") => {
            let mut names: Vec<Value> = Vec::new();
            for c in Channel::ALL {
                names.push(json!(c.name()));
                names.push(json!(c.number().to_string()));
            }
            json!({ "enum": names })
        }
        ("deliveries.list", "status") => json!({ "enum": ["pending", "succeeded", "failed"] }),
        ("activities.send", "Idempotency-Key") => json!({
            "minLength": 1,
            "maxLength": crate::activities::MAX_IDEMPOTENCY_KEY,
            "pattern": "^[!-~]([ -~]*[!-~])?$",
        }),
        _ => return None,
    };
    Some((false, rule))
}

/// A link's name, its target operation and the target's parameters.
type Link = (&'static str, &'static str, Value);

/// `links`: where an id answered by one operation is used by the next.
fn add_links(doc: &mut Node) {
    let links: &[(&str, &str, &[Link])] = &[
        (
            "/api/v1/hubs",
            "post",
            &[
                (
                    "GetHub",
                    "hubs.get",
                    json!({ "hubId": "$response.body#/hubId" }),
                ),
                (
                    "UpdateHub",
                    "hubs.update",
                    json!({ "hubId": "$response.body#/hubId" }),
                ),
                (
                    "DeleteHub",
                    "hubs.delete",
                    json!({ "hubId": "$response.body#/hubId" }),
                ),
                (
                    "CreateIntegration",
                    "integrations.create",
                    json!({ "id": "$response.body#/hubId" }),
                ),
                (
                    "ListIntegrations",
                    "integrations.list",
                    json!({ "hubId": "$response.body#/hubId" }),
                ),
                (
                    "ListIntegrationsByChannel",
                    "integrations.listByChannel",
                    json!({ "hubId": "$response.body#/hubId" }),
                ),
            ],
        ),
        (
            "/api/v1/integrations/hubs/{id}",
            "post",
            &[
                (
                    "GetIntegration",
                    "integrations.get",
                    json!({ "integrationId": "$response.body#/integrationId" }),
                ),
                (
                    "UpdateIntegration",
                    "integrations.update",
                    json!({ "integrationId": "$response.body#/integrationId" }),
                ),
                (
                    "DeleteIntegration",
                    "integrations.delete",
                    json!({ "integrationId": "$response.body#/integrationId" }),
                ),
                (
                    "ListDeliveries",
                    "deliveries.list",
                    json!({ "integrationId": "$response.body#/integrationId" }),
                ),
            ],
        ),
        (
            "/api/v1/conversations/establish",
            "post",
            &[
                (
                    "GetConversation",
                    "conversations.get",
                    json!({ "conversationId": "$response.body#/conversationId" }),
                ),
                (
                    "CloseConversation",
                    "conversations.close",
                    json!({ "conversationId": "$response.body#/conversationId" }),
                ),
                (
                    "SendActivity",
                    "activities.send",
                    json!({ "conversationId": "$response.body#/conversationId" }),
                ),
                (
                    "ListActivities",
                    "activities.list",
                    json!({ "conversationId": "$response.body#/conversationId" }),
                ),
            ],
        ),
        (
            "/inbound/customer/v1/direct/activity/{conversationId}",
            "post",
            &[
                (
                    "ListActivities",
                    "activities.list",
                    json!({ "conversationId": "$response.body#/conversationId" }),
                ),
                (
                    "ListDeliveries",
                    "deliveries.list",
                    json!({ "integrationId": "$response.body#/integrationId" }),
                ),
            ],
        ),
        (
            "/api/v1/deliveries",
            "get",
            &[(
                "RetryDelivery",
                "deliveries.retry",
                json!({ "deliveryId": "$response.body#/results/0/deliveryId" }),
            )],
        ),
        (
            "/api/v1/tenants/clients/{clientId}/tokens",
            "post",
            &[(
                "RevokeSecret",
                "clients.revokeSecret",
                json!({ "clientId": "$request.path.clientId", "tokenId": "$response.body#/id" }),
            )],
        ),
    ];
    for (path, method, targets) in links {
        let mut map = serde_json::Map::new();
        for (name, operation, parameters) in targets.iter() {
            map.insert(
                (*name).to_owned(),
                json!({ "operationId": operation, "parameters": parameters }),
            );
        }
        doc.at(&["paths", path, method, "responses", "200"])
            .merge(json!({ "links": map }));
    }
    // The integration that an establish needs comes from the integration created before.
    doc.at(&[
        "paths",
        "/api/v1/integrations/hubs/{id}",
        "post",
        "responses",
        "200",
        "links",
    ])
    .merge(json!({
        "EstablishConversation": {
            "operationId": "conversations.establish",
            "requestBody": { "integrationId": "$response.body#/integrationId" },
        },
    }));
}

/// The methods that `path` answers, for the `Allow` header of a 405 (RFC 9110 §15.5.6): those
/// the document declares for the path's template, with `HEAD` wherever `GET` is (the router
/// answers it); `None` for a path no route has.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    static TABLE: OnceLock<Vec<(Vec<Option<String>>, String)>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let doc: Value = serde_json::from_str(document()).expect("the document is JSON");
        let mut table: Vec<(Vec<Option<String>>, String)> = Vec::new();
        let mut add = |template: &str, methods: Vec<String>| {
            let segments = template
                .split('/')
                .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                .collect();
            let mut allow: Vec<String> = Vec::new();
            for m in methods {
                let m = m.to_ascii_uppercase();
                if m == "GET" {
                    allow.push(m);
                    allow.push("HEAD".to_owned());
                } else {
                    allow.push(m);
                }
            }
            table.push((segments, allow.join(", ")));
        };
        if let Some(paths) = doc["paths"].as_object() {
            for (template, ops) in paths {
                let methods = ops
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                add(template, methods);
            }
        }
        // The routes outside the document.
        add("/openapi.json", vec!["get".to_owned()]);
        add("/engine-chat-hub", vec!["get".to_owned()]);
        // WebChat's public routes (api::webchat).
        add(
            "/webchat/v1/{integrationId}/sessions",
            vec!["post".to_owned(), "options".to_owned()],
        );
        add("/webchat/v1/{integrationId}/ws", vec!["get".to_owned()]);
        add("/webchat/v1/widget.js", vec!["get".to_owned()]);
        add("/webchat/v1/demo", vec!["get".to_owned()]);
        // Literal segments win over parameters, as in the router.
        table.sort_by_key(|(segments, _)| std::cmp::Reverse(segments.iter().flatten().count()));
        table
    });
    let segments: Vec<&str> = path.split('/').collect();
    table
        .iter()
        .find(|(template, _)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| match t {
                    Some(literal) => literal == s,
                    None => !s.is_empty(),
                })
        })
        .map(|(_, allow)| allow.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_methods_of_the_matching_template() {
        assert_eq!(
            allowed_methods("/api/v1/hubs/0190c7a6-7f00-7000-8000-000000000000"),
            Some("DELETE, GET, HEAD, PUT")
        );
        assert_eq!(allowed_methods("/api/v1/hubs"), Some("GET, HEAD, POST"));
        assert_eq!(allowed_methods("/api/v1/integrations/hubs/x"), Some("POST"));
        assert_eq!(allowed_methods("/engine-chat-hub"), Some("GET, HEAD"));
        assert_eq!(allowed_methods("/nowhere"), None);
    }
}
