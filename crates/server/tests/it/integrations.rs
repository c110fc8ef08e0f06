//! Integrations (SPEC 3) through a real server: every channel of the catalogue (create, required
//! and unknown keys, case-insensitive keys, derived fields), signing key pairs, updates by both
//! routes, lists, delete, validation details, the Slack OAuth exchange against a stand-in for
//! Slack, and credentials at rest.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// The catalogue, written out by hand so the server's own catalogue is under test.

/// What `inboundId` must be for a channel.
enum Inbound {
    Null,
    Is(&'static str),
    /// Email: its generated `incomingAddress`.
    GeneratedAddress,
}

/// One channel of the SPEC 3 table.
struct Case {
    channel: &'static str,
    number: u64,
    integration_type: &'static str,
    /// A valid configuration.
    config: Value,
    /// The required keys, as documented.
    required: &'static [&'static str],
    /// The answered configuration without the generated keys: every documented key, defaults
    /// filled in, null when unset.
    answered: Value,
    /// Keys the server generates into the configuration.
    generated: &'static [&'static str],
    inbound: Inbound,
}

const SIGNING_KEYS: &[&str] = &["publicSigningKey", "privateSigningKey"];

fn catalogue() -> Vec<Case> {
    vec![
        Case {
            channel: "Direct",
            number: 1,
            integration_type: "Bot",
            config: json!({ "integrationType": "Bot", "webhookUrl": "https://example.com/direct" }),
            required: &["integrationType"],
            answered: json!({ "integrationType": "Bot", "echo": false, "webhookUrl": "https://example.com/direct", "start": null }),
            generated: SIGNING_KEYS,
            inbound: Inbound::Null,
        },
        Case {
            channel: "System",
            number: 3,
            integration_type: "System",
            config: json!({ "webhookUrl": "https://example.com/system", "events": ["message:customer", "conversation:opened"] }),
            required: &["webhookUrl", "events"],
            answered: json!({ "webhookUrl": "https://example.com/system", "events": ["message:customer", "conversation:opened"], "format": "switchboard" }),
            generated: SIGNING_KEYS,
            inbound: Inbound::Null,
        },
        Case {
            channel: "Messenger",
            number: 101,
            integration_type: "Customer",
            config: json!({ "pageAccessToken": "EAAF-page-token", "pageId": "1013889883" }),
            required: &["pageAccessToken"],
            answered: json!({ "pageAccessToken": "EAAF-page-token", "appId": null, "appSecret": null, "pageId": "1013889883", "pageName": null }),
            generated: &["webhookSecret"],
            inbound: Inbound::Is("1013889883"),
        },
        Case {
            channel: "TwilioSMS",
            number: 102,
            integration_type: "Customer",
            config: json!({ "accountSid": "AC1fc1c1722444b0", "authToken": "cb8c-auth", "numberSid": "PN66aa" }),
            required: &["accountSid", "authToken", "numberSid"],
            answered: json!({ "accountSid": "AC1fc1c1722444b0", "authToken": "cb8c-auth", "numberSid": "PN66aa", "phoneNumber": null, "capabilities": null }),
            generated: &[],
            inbound: Inbound::Is("AC1fc1c1722444b0"),
        },
        Case {
            channel: "Line",
            number: 103,
            integration_type: "Customer",
            config: json!({ "channelAccessToken": "line-access", "channelSecret": "line-secret" }),
            required: &["channelAccessToken", "channelSecret"],
            answered: json!({ "channelAccessToken": "line-access", "channelSecret": "line-secret" }),
            generated: &[],
            inbound: Inbound::Null,
        },
        Case {
            channel: "Telegram",
            number: 104,
            integration_type: "Customer",
            config: json!({ "token": "123456789:AAE-telegram" }),
            required: &["token"],
            answered: json!({ "token": "123456789:AAE-telegram", "username": null }),
            generated: &["webhookSecret"],
            inbound: Inbound::Is("123456789"),
        },
        Case {
            channel: "Kik",
            number: 105,
            integration_type: "Customer",
            config: json!({ "username": "switchboard_bot", "apiKey": "kik-key" }),
            required: &["username", "apiKey"],
            answered: json!({ "username": "switchboard_bot", "apiKey": "kik-key" }),
            generated: &[],
            inbound: Inbound::Null,
        },
        Case {
            channel: "WebChat",
            number: 106,
            integration_type: "Customer",
            config: json!({ "allowedOrigins": ["localhost", "hubster.io"] }),
            required: &["allowedOrigins"],
            answered: json!({ "allowedOrigins": ["localhost", "hubster.io"], "start": null, "echo": true, "sessionTTL": null, "title": null }),
            generated: &[],
            inbound: Inbound::Null,
        },
        Case {
            channel: "Viber",
            number: 107,
            integration_type: "Customer",
            config: json!({ "token": "viber-token" }),
            required: &["token"],
            answered: json!({ "token": "viber-token" }),
            generated: &[],
            inbound: Inbound::Null,
        },
        Case {
            channel: "WeChat",
            number: 108,
            integration_type: "Customer",
            config: json!({ "appId": "wx4242", "appSecret": "wechat-secret" }),
            required: &["appId", "appSecret"],
            answered: json!({ "appId": "wx4242", "appSecret": "wechat-secret", "encodingAesKey": null }),
            generated: &["webhookSecret"],
            inbound: Inbound::Is("wx4242"),
        },
        Case {
            channel: "Twitter",
            number: 109,
            integration_type: "Customer",
            config: json!({ "consumerKey": "ck", "consumerSecret": "cs", "accessTokenKey": "atk", "accessTokenSecret": "ats" }),
            required: &[
                "consumerKey",
                "consumerSecret",
                "accessTokenKey",
                "accessTokenSecret",
            ],
            answered: json!({ "consumerKey": "ck", "consumerSecret": "cs", "accessTokenKey": "atk", "accessTokenSecret": "ats", "envName": null }),
            generated: &[],
            inbound: Inbound::Null,
        },
        Case {
            channel: "Mailgun",
            number: 110,
            integration_type: "Customer",
            config: json!({ "apiKey": "mg-key", "domain": "mg.example.com", "incomingAddress": "support@mg.example.com" }),
            required: &["apiKey", "domain", "incomingAddress"],
            answered: json!({ "apiKey": "mg-key", "domain": "mg.example.com", "incomingAddress": "support@mg.example.com" }),
            generated: &[],
            inbound: Inbound::Is("support@mg.example.com"),
        },
        Case {
            channel: "MessageBird",
            number: 111,
            integration_type: "Customer",
            config: json!({ "accessKey": "mb-key", "originator": "Switchboard" }),
            required: &["accessKey", "originator"],
            answered: json!({ "accessKey": "mb-key", "originator": "Switchboard", "signingKey": null }),
            generated: &["webhookSecret"],
            inbound: Inbound::Is("Switchboard"),
        },
        Case {
            channel: "Email",
            number: 112,
            integration_type: "Customer",
            config: json!({ "fromAddress": "help@example.com" }),
            required: &[],
            answered: json!({ "fromAddress": "help@example.com" }),
            generated: &["incomingAddress"],
            inbound: Inbound::GeneratedAddress,
        },
        Case {
            channel: "WhatsApp",
            number: 113,
            integration_type: "Customer",
            config: json!({ "accessToken": "EAAG-system-user", "phoneNumberId": "106540352242922", "businessAccountId": "102290129340398" }),
            required: &["accessToken", "phoneNumberId"],
            answered: json!({ "accessToken": "EAAG-system-user", "phoneNumberId": "106540352242922", "businessAccountId": "102290129340398",
                              "appSecret": null, "templateName": null, "templateLanguage": "en_US", "displayPhoneNumber": null, "verifiedName": null }),
            generated: &["webhookSecret"],
            inbound: Inbound::Is("106540352242922"),
        },
        Case {
            channel: "Apn",
            number: 201,
            integration_type: "Customer",
            config: json!({ "certificate": "TUlJQ2lqQ0NBWEtnQXdJQkFnSQ==" }),
            required: &["certificate"],
            answered: json!({ "certificate": "TUlJQ2lqQ0NBWEtnQXdJQkFnSQ==", "password": null, "autoUpdateBadge": false, "production": false }),
            generated: &[],
            inbound: Inbound::Null,
        },
        Case {
            channel: "Fcm",
            number: 202,
            integration_type: "Customer",
            config: json!({ "serverKey": "fcm-key", "senderId": "4242" }),
            required: &["serverKey", "senderId"],
            answered: json!({ "serverKey": "fcm-key", "senderId": "4242" }),
            generated: &[],
            inbound: Inbound::Null,
        },
        Case {
            channel: "Slack",
            number: 1001,
            integration_type: "Agent",
            config: json!({ "botAccessToken": "xoxb-1930", "teamId": "T5P19488N" }),
            required: &["botAccessToken", "teamId"],
            answered: json!({ "botAccessToken": "xoxb-1930", "teamId": "T5P19488N", "defaultPublicChannel": null, "appAccessToken": null, "botName": null }),
            generated: &[],
            inbound: Inbound::Is("T5P19488N"),
        },
    ]
}

fn case(channel: &str) -> Case {
    catalogue()
        .into_iter()
        .find(|c| c.channel == channel)
        .expect("a channel of the catalogue")
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn create_path(hub: &str) -> String {
    format!("/api/v1/integrations/hubs/{hub}")
}

fn one_path(id: &str) -> String {
    format!("/api/v1/integrations/{id}")
}

fn new_body(channel: Value, name: &str, configuration: Value) -> Value {
    json!({ "channelId": channel, "name": name, "configuration": configuration })
}

fn id_of(integration: &Value) -> String {
    integration["integrationId"]
        .as_str()
        .unwrap_or_else(|| panic!("integrationId in {integration}"))
        .to_owned()
}

/// Every description of an error body.
fn descriptions(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors in {body}"))
        .iter()
        .map(|e| e["description"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The descriptions 301 answers for missing `configuration.<key>`s.
fn required_descriptions(keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|k| format!("Property 'configuration.{k}' is required. (code: PRT000301)"))
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// 32 bytes from 64 upper-case hex characters (asserting that form).
fn hex32(s: &str) -> [u8; 32] {
    assert_eq!(s.len(), 64, "64 hex characters: {s}");
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "upper-case hex: {s}"
    );
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex");
    }
    out
}

/// Asserts that a configuration holds a valid Ed25519 pair (64 upper-case hex characters each;
/// a signature by the private seed verifies with the public key); answers (public, private).
fn assert_key_pair(config: &Value) -> (String, String) {
    let public = config["publicSigningKey"]
        .as_str()
        .unwrap_or_else(|| panic!("publicSigningKey in {config}"))
        .to_owned();
    let private = config["privateSigningKey"]
        .as_str()
        .unwrap_or_else(|| panic!("privateSigningKey in {config}"))
        .to_owned();
    let signing = SigningKey::from_bytes(&hex32(&private));
    let verifying = VerifyingKey::from_bytes(&hex32(&public)).expect("a valid Ed25519 public key");
    let message = b"switchboard: a message signed with the integration's key";
    let signature = signing.sign(message);
    verifying
        .verify(message, &signature)
        .expect("the public key verifies the private seed's signature");
    assert!(
        verifying.verify(b"another message", &signature).is_err(),
        "a signature is bound to its message"
    );
    (public, private)
}

/// Checks the generated keys of `case` in `config` and answers the configuration without them.
fn split_generated(case: &Case, config: &Value) -> Value {
    let mut rest: Map<String, Value> = config
        .as_object()
        .unwrap_or_else(|| panic!("configuration object: {config}"))
        .clone();
    for key in case.generated {
        let value = rest
            .remove(*key)
            .unwrap_or_else(|| panic!("{}: generated {key} in {config}", case.channel));
        let text = value
            .as_str()
            .unwrap_or_else(|| panic!("{}: {key} is a string in {config}", case.channel));
        match *key {
            "publicSigningKey" | "privateSigningKey" => {
                hex32(text);
            }
            // Meta's verify token and Telegram's secret_token: 32 letters and digits.
            "webhookSecret" if ["Messenger", "WhatsApp", "Telegram"].contains(&case.channel) => {
                assert_eq!(text.len(), 32, "{}: webhookSecret {text}", case.channel);
                assert!(
                    text.bytes().all(|b| b.is_ascii_alphanumeric()),
                    "{}: webhookSecret {text}",
                    case.channel
                );
            }
            "webhookSecret" => {
                assert_eq!(text.len(), 64, "{}: webhookSecret {text}", case.channel);
                assert!(
                    text.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{}: webhookSecret {text}",
                    case.channel
                );
            }
            "incomingAddress" => {
                let (local, domain) = text
                    .split_once('@')
                    .unwrap_or_else(|| panic!("an address: {text}"));
                assert!(
                    !local.is_empty() && domain.contains('.'),
                    "an address: {text}"
                );
            }
            other => panic!("unexpected generated key {other}"),
        }
    }
    if case.generated.contains(&"publicSigningKey") {
        assert_key_pair(config);
    }
    Value::Object(rest)
}

/// An RFC 3339 UTC time, like `2026-11-21T03:14:42.123Z`.
fn assert_time(t: &Value) {
    let s = t.as_str().unwrap_or_else(|| panic!("a time string: {t}"));
    assert!(
        s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T',
        "RFC 3339 UTC: {s}"
    );
}

/// Asserts the whole answer of a create of `case` named `name` in `hub`.
fn assert_created(case: &Case, got: &Value, hub: &str, name: &str) {
    let keys: BTreeSet<&str> = got
        .as_object()
        .unwrap_or_else(|| panic!("object: {got}"))
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = [
        "integrationId",
        "hubId",
        "inboundId",
        "integrationTypeId",
        "channelId",
        "name",
        "statusId",
        "configuration",
        "created",
        "modified",
    ]
    .into();
    assert_eq!(keys, want, "{}: top-level keys of {got}", case.channel);
    uuid::Uuid::parse_str(got["integrationId"].as_str().unwrap_or(""))
        .unwrap_or_else(|_| panic!("integrationId is a UUID in {got}"));
    assert_eq!(got["hubId"], hub, "{}", case.channel);
    assert_eq!(
        got["channelId"], case.channel,
        "channelId is answered as the name"
    );
    assert_eq!(got["name"], name);
    assert_eq!(got["statusId"], 3000, "{}: default status", case.channel);
    assert_eq!(
        got["integrationTypeId"], case.integration_type,
        "{}: derived integrationTypeId",
        case.channel
    );
    let config = &got["configuration"];
    assert_eq!(
        split_generated(case, config),
        case.answered,
        "{}: answered configuration",
        case.channel
    );
    let inbound = match case.inbound {
        Inbound::Null => Value::Null,
        Inbound::Is(id) => json!(id),
        Inbound::GeneratedAddress => config["incomingAddress"].clone(),
    };
    assert_eq!(got["inboundId"], inbound, "{}: inboundId", case.channel);
    assert_time(&got["created"]);
    assert_eq!(
        got["created"], got["modified"],
        "a new integration was modified when created"
    );
}

/// Every key of an object upper-cased (`ECHO`, `ACCOUNTSID`).
fn upper_keys(config: &Value) -> Value {
    Value::Object(
        config
            .as_object()
            .expect("object")
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
            .collect(),
    )
}

/// Every key of an object with its first letter upper-cased (`AccountSid`, `Echo`).
fn pascal_keys(config: &Value) -> Value {
    Value::Object(
        config
            .as_object()
            .expect("object")
            .iter()
            .map(|(k, v)| {
                let mut chars = k.chars();
                let first = chars.next().map(|c| c.to_ascii_uppercase()).into_iter();
                (first.chain(chars).collect(), v.clone())
            })
            .collect(),
    )
}

fn with_key(config: &Value, key: &str, value: Value) -> Value {
    let mut config = config.clone();
    config
        .as_object_mut()
        .expect("object")
        .insert(key.to_owned(), value);
    config
}

fn without_key(config: &Value, key: &str) -> Value {
    let mut config = config.clone();
    config.as_object_mut().expect("object").remove(key);
    config
}

fn warning(headers: &HeaderMap) -> Option<String> {
    headers
        .get("warning")
        .map(|v| v.to_str().expect("a text header").to_owned())
}

// ---------------------------------------------------------------------------------------------
// Every channel of the catalogue.

#[tokio::test]
async fn every_channel_creates_with_every_documented_key_and_derived_fields_by_name_number_or_digits(
) {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Catalogue").await;
    for case in catalogue() {
        for (how, channel_id) in [
            ("name", json!(case.channel)),
            ("number", json!(case.number)),
            ("digits", json!(case.number.to_string())),
        ] {
            let name = format!("{} by {how}", case.channel);
            let (status, got) = s
                .post(
                    &create_path(&hub),
                    &s.a.portal,
                    new_body(channel_id.clone(), &name, case.config.clone()),
                )
                .await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{} given as {channel_id}: {got}",
                case.channel
            );
            assert_created(&case, &got, &hub, &name);
            let (status, read) = s.get(&one_path(&id_of(&got)), &s.a.portal).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                read, got,
                "{}: GET answers what the create answered",
                case.channel
            );
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn every_missing_required_key_is_reported_at_once_as_400_301() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Required").await;
    for case in catalogue() {
        // All missing at once: one error per key.
        let (status, body) = s
            .post(
                &create_path(&hub),
                &s.a.portal,
                new_body(json!(case.channel), "Empty", json!({})),
            )
            .await;
        if case.channel == "Email" {
            // Email has no required key.
            assert_eq!(status, StatusCode::OK, "{body}");
            continue;
        }
        // An empty Slack configuration asks for the OAuth form.
        let required: &[&str] = if case.channel == "Slack" {
            &["code", "nonce"]
        } else {
            case.required
        };
        assert_error(status, &body, 400, "PRT", &vec![301; required.len()]);
        assert_eq!(
            sorted(descriptions(&body)),
            sorted(required_descriptions(required)),
            "{}",
            case.channel
        );

        // Each one missing alone.
        for key in case.required {
            let config = without_key(&case.config, key);
            let (status, body) = s
                .post(
                    &create_path(&hub),
                    &s.a.portal,
                    new_body(json!(case.channel), "Partial", config),
                )
                .await;
            assert_error(status, &body, 400, "PRT", &[301]);
            assert_eq!(
                descriptions(&body),
                required_descriptions(&[key]),
                "{}",
                case.channel
            );
        }
    }
    // Slack's token form, once chosen, needs both of its required keys.
    let (status, body) = s
        .post(
            &create_path(&hub),
            &s.a.portal,
            new_body(json!("Slack"), "Half", json!({ "botName": "Switchboard" })),
        )
        .await;
    assert_error(status, &body, 400, "PRT", &[301, 301]);
    assert_eq!(
        sorted(descriptions(&body)),
        sorted(required_descriptions(&["botAccessToken", "teamId"]))
    );
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_configuration_key_is_400_303_on_every_channel() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Unknown keys").await;
    for case in catalogue() {
        let config = with_key(&case.config, "faxNumber", json!("+1 555 0100"));
        let (status, body) = s
            .post(
                &create_path(&hub),
                &s.a.portal,
                new_body(json!(case.channel), "Fax", config),
            )
            .await;
        assert_error(status, &body, 400, "PRT", &[303]);
        assert_eq!(
            descriptions(&body),
            ["Property 'configuration.faxNumber' is not supported. (code: PRT000303)"],
            "{}",
            case.channel
        );
    }
    let (status, body) = s.get("/api/v1/integrations", &s.a.portal).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 0, "nothing was created: {body}");
    s.stop().await;
}

#[tokio::test]
async fn configuration_keys_are_accepted_in_any_case_and_answered_in_camel_case_on_every_channel() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Case").await;
    for case in catalogue() {
        for (how, config) in [
            ("upper", upper_keys(&case.config)),
            ("pascal", pascal_keys(&case.config)),
        ] {
            let name = format!("{} {how}", case.channel);
            let (status, got) = s
                .post(
                    &create_path(&hub),
                    &s.a.portal,
                    new_body(json!(case.channel), &name, config.clone()),
                )
                .await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{} with {config}: {got}",
                case.channel
            );
            assert_created(&case, &got, &hub, &name);
        }
    }
    // The two examples of the brief, one by one.
    let direct = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(
                json!("Direct"),
                "Echo",
                json!({ "IntegrationType": "agent", "ECHO": true }),
            ),
        )
        .await;
    assert_eq!(direct["configuration"]["echo"], true);
    assert_eq!(direct["configuration"]["integrationType"], "Agent");
    assert_eq!(direct["integrationTypeId"], "Agent");
    assert!(
        direct["configuration"].get("ECHO").is_none()
            && direct["configuration"].get("IntegrationType").is_none(),
        "{direct}"
    );
    let twilio = s.integration(&s.a.portal, &hub, new_body(json!("TwilioSMS"), "Sid", json!({ "AccountSid": "AC77", "AuthToken": "t", "NumberSid": "PN1", "PhoneNumber": "+15550100" }))).await;
    assert_eq!(
        twilio["configuration"],
        json!({ "accountSid": "AC77", "authToken": "t", "numberSid": "PN1", "phoneNumber": "+15550100", "capabilities": null })
    );
    assert_eq!(twilio["inboundId"], "AC77");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Channel, name, status.

#[tokio::test]
async fn twilio_sms_is_accepted_as_102_or_the_string_102_and_answered_as_its_name() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Numbers").await;
    let config = case("TwilioSMS").config;
    for (i, channel) in [json!(102), json!("102"), json!("twiliosms")]
        .into_iter()
        .enumerate()
    {
        let got = s
            .integration(
                &s.a.portal,
                &hub,
                new_body(channel, &format!("sms {i}"), config.clone()),
            )
            .await;
        assert_eq!(got["channelId"], "TwilioSMS");
        assert_eq!(got["integrationTypeId"], "Customer");
    }
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_channel_is_400_206() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Unknown channel").await;
    for channel in [json!("Fax"), json!(2), json!("9999"), json!(1002)] {
        let (status, body) = s
            .post(
                &create_path(&hub),
                &s.a.portal,
                new_body(channel.clone(), "Fax", json!({ "token": "x" })),
            )
            .await;
        assert_error(status, &body, 400, "PRT", &[206]);
        assert!(descriptions(&body)[0].contains("channelId"), "{body}");
    }
    let (status, body) = s
        .post(
            &create_path(&hub),
            &s.a.portal,
            new_body(json!(true), "Bool", json!({})),
        )
        .await;
    assert_error(status, &body, 400, "PRT", &[302]);
    s.stop().await;
}

#[tokio::test]
async fn a_duplicate_name_in_a_hub_is_409_106_but_the_same_name_in_another_hub_is_fine() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "First").await;
    let other = s.hub(&s.a.portal, "Second").await;
    let body = new_body(json!("Telegram"), "Bot desk", case("Telegram").config);
    s.integration(&s.a.portal, &hub, body.clone()).await;
    let (status, err) = s.post(&create_path(&hub), &s.a.portal, body.clone()).await;
    assert_error(status, &err, 409, "PRT", &[106]);
    let (status, err) = s
        .post(
            &create_path(&hub),
            &s.a.portal,
            new_body(json!("Viber"), "Bot desk", case("Viber").config),
        )
        .await;
    assert_error(status, &err, 409, "PRT", &[106]);
    let elsewhere = s.integration(&s.a.portal, &other, body.clone()).await;
    assert_eq!(elsewhere["hubId"], other);
    // Another tenant's hub with that name is another hub too.
    let b_hub = s.hub(&s.b.portal, "First").await;
    s.integration(&s.b.portal, &b_hub, body).await;

    // Renaming onto a taken name is a conflict as well.
    let second = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Viber"), "Viber desk", case("Viber").config),
        )
        .await;
    let (status, err) = s
        .put(
            &one_path(&id_of(&second)),
            &s.a.portal,
            json!({ "name": "Bot desk" }),
        )
        .await;
    assert_error(status, &err, 409, "PRT", &[106]);
    s.stop().await;
}

#[tokio::test]
async fn status_id_defaults_to_3000_accepts_3002_and_refuses_anything_else_with_206() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Status").await;
    let config = case("Kik").config;
    let active = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Kik"), "Active", config.clone()),
        )
        .await;
    assert_eq!(active["statusId"], 3000);
    let mut paused = new_body(json!("Kik"), "Paused", config.clone());
    paused["statusId"] = json!(3002);
    let paused = s.integration(&s.a.portal, &hub, paused).await;
    assert_eq!(paused["statusId"], 3002);
    for bad in [3001, 2000, 0] {
        let mut body = new_body(json!("Kik"), "Bad", config.clone());
        body["statusId"] = json!(bad);
        let (status, err) = s.post(&create_path(&hub), &s.a.portal, body).await;
        assert_error(status, &err, 400, "PRT", &[206]);
        assert!(descriptions(&err)[0].contains("statusId"), "{err}");
    }
    // On update too, and an update without statusId keeps it.
    let (status, err) = s
        .put(
            &one_path(&id_of(&active)),
            &s.a.portal,
            json!({ "statusId": 3001 }),
        )
        .await;
    assert_error(status, &err, 400, "PRT", &[206]);
    let (status, got) = s
        .put(
            &one_path(&id_of(&active)),
            &s.a.portal,
            json!({ "statusId": 3002 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["statusId"], 3002);
    let (status, got) = s
        .put(
            &one_path(&id_of(&active)),
            &s.a.portal,
            json!({ "name": "Renamed" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["statusId"], 3002);
    assert_eq!(got["name"], "Renamed");
    s.stop().await;
}

#[tokio::test]
async fn every_problem_of_a_create_body_is_reported_at_once() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "All at once").await;
    let body = json!({ "channelId": "TwilioSMS", "statusId": 42, "configuration": { "authToken": "x", "fax": "1" } });
    let (status, err) = s.post(&create_path(&hub), &s.a.portal, body).await;
    assert_error(status, &err, 400, "PRT", &[301, 206, 301, 301, 303]);
    let d = descriptions(&err);
    assert_eq!(d[0], "Property 'name' is required. (code: PRT000301)");
    assert!(d[1].contains("'statusId'"), "{err}");
    assert_eq!(d[2..4], required_descriptions(&["accountSid", "numberSid"]));
    assert_eq!(
        d[4],
        "Property 'configuration.fax' is not supported. (code: PRT000303)"
    );

    let (status, err) = s
        .post(
            &create_path(&hub),
            &s.a.portal,
            json!({ "channelId": "Viber", "name": "No config" }),
        )
        .await;
    assert_error(status, &err, 400, "PRT", &[301]);
    assert_eq!(
        descriptions(&err),
        ["Property 'configuration' is required. (code: PRT000301)"]
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Signing keys.

#[tokio::test]
async fn direct_and_system_integrations_each_get_their_own_valid_ed25519_key_pair() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Keys").await;
    let mut seen = BTreeSet::new();
    for (channel, name) in [
        ("Direct", "Agent desk"),
        ("Direct", "Bot"),
        ("System", "CRM"),
    ] {
        let got = s
            .integration(
                &s.a.portal,
                &hub,
                new_body(json!(channel), name, case(channel).config),
            )
            .await;
        let (public, private) = assert_key_pair(&got["configuration"]);
        assert!(
            seen.insert(public) && seen.insert(private),
            "every pair is new"
        );
    }
    // No other channel has keys.
    let line = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Line"), "Line", case("Line").config),
        )
        .await;
    assert!(
        line["configuration"].get("publicSigningKey").is_none(),
        "{line}"
    );
    s.stop().await;
}

#[tokio::test]
async fn regenerate_keys_on_update_makes_a_new_valid_pair_and_an_update_without_it_keeps_the_pair()
{
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Regenerate").await;
    for channel in ["Direct", "System"] {
        let c = case(channel);
        let created = s
            .integration(
                &s.a.portal,
                &hub,
                new_body(json!(channel), channel, c.config.clone()),
            )
            .await;
        let id = id_of(&created);
        let original = assert_key_pair(&created["configuration"]);

        // Without regenerateKeys (by both routes), the pair stays.
        let (status, kept) = s
            .put(
                &one_path(&id),
                &s.a.portal,
                json!({ "configuration": c.config }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{kept}");
        assert_eq!(
            assert_key_pair(&kept["configuration"]),
            original,
            "{channel}: PUT without regenerateKeys keeps the pair"
        );
        let (status, kept) = s
            .post(
                &create_path(&id),
                &s.a.portal,
                json!({ "configuration": with_key(&c.config, "regenerateKeys", json!(false)) }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{kept}");
        assert_eq!(
            assert_key_pair(&kept["configuration"]),
            original,
            "{channel}: regenerateKeys false keeps the pair"
        );
        assert!(
            kept["configuration"].get("regenerateKeys").is_none(),
            "a command, not stored: {kept}"
        );

        // With it, a new pair, also valid, and what GET answers from then on.
        let (status, renewed) = s
            .put(
                &one_path(&id),
                &s.a.portal,
                json!({ "configuration": with_key(&c.config, "regenerateKeys", json!(true)) }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{renewed}");
        let new_pair = assert_key_pair(&renewed["configuration"]);
        assert_ne!(new_pair.0, original.0, "{channel}: a new public key");
        assert_ne!(new_pair.1, original.1, "{channel}: a new private key");
        assert!(
            renewed["configuration"].get("regenerateKeys").is_none(),
            "a command, not stored: {renewed}"
        );
        let (_, read) = s.get(&one_path(&id), &s.a.portal).await;
        assert_eq!(assert_key_pair(&read["configuration"]), new_pair);

        // Through the POST route as well, with the key given in another case.
        let (status, again) = s
            .post(
                &create_path(&id),
                &s.a.portal,
                json!({ "configuration": with_key(&c.config, "RegenerateKeys", json!(true)) }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{again}");
        let third = assert_key_pair(&again["configuration"]);
        assert_ne!(third.0, new_pair.0);

        // Keys a client sends are ignored, never taken.
        let forged = "A".repeat(64);
        let config = with_key(
            &with_key(&c.config, "publicSigningKey", json!(forged)),
            "privateSigningKey",
            json!(forged),
        );
        let (status, ignored) = s
            .put(
                &one_path(&id),
                &s.a.portal,
                json!({ "configuration": config }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{ignored}");
        assert_eq!(assert_key_pair(&ignored["configuration"]), third);
    }
    s.stop().await;
}

#[tokio::test]
async fn regenerate_keys_is_accepted_and_ignored_on_create_and_on_other_channels() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Ignored").await;
    for c in catalogue() {
        let config = with_key(&c.config, "regenerateKeys", json!(true));
        let got = s
            .integration(
                &s.a.portal,
                &hub,
                new_body(json!(c.channel), c.channel, config.clone()),
            )
            .await;
        assert_created(&c, &got, &hub, c.channel);
        if ["TwilioSMS", "Messenger", "Slack"].contains(&c.channel) {
            continue;
        }
        let (status, headers, updated) = s
            .call_full(
                Method::PUT,
                &one_path(&id_of(&got)),
                Some(&s.a.portal),
                Some(&json!({ "configuration": config })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{}: {updated}", c.channel);
        assert_eq!(warning(&headers), None, "{}", c.channel);
        if c.generated.contains(&"publicSigningKey") {
            assert_ne!(
                updated["configuration"]["publicSigningKey"],
                got["configuration"]["publicSigningKey"]
            );
        } else {
            assert_eq!(
                updated["configuration"], got["configuration"],
                "{}: nothing to regenerate",
                c.channel
            );
        }
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Updates.

#[tokio::test]
async fn an_update_replaces_the_configuration_whole_and_needs_the_required_keys_again() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Replace").await;
    let start = json!([{ "type": "text", "text": "Welcome!" }]);
    let created = s
        .integration(&s.a.portal, &hub, new_body(json!("Direct"), "Desk", json!({ "integrationType": "Bot", "echo": true, "webhookUrl": "https://example.com/bot", "start": start })))
        .await;
    let id = id_of(&created);
    assert_eq!(created["configuration"]["start"], start);
    let keys = assert_key_pair(&created["configuration"]);

    let (status, updated) = s
        .put(
            &one_path(&id),
            &s.a.portal,
            json!({ "configuration": { "integrationType": "Agent" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let mut want = created.clone();
    want["configuration"] = json!({ "integrationType": "Agent", "echo": false, "webhookUrl": null, "start": null, "publicSigningKey": keys.0, "privateSigningKey": keys.1 });
    want["integrationTypeId"] = json!("Agent");
    want["modified"] = updated["modified"].clone();
    assert_eq!(
        updated, want,
        "the configuration was replaced whole; the rest kept"
    );
    assert_time(&updated["modified"]);
    assert!(updated["modified"].as_str() >= created["modified"].as_str());

    // Required keys again, else 301 and nothing changes.
    let (status, err) = s
        .put(
            &one_path(&id),
            &s.a.portal,
            json!({ "name": "Changed", "configuration": { "echo": true } }),
        )
        .await;
    assert_error(status, &err, 400, "PRT", &[301]);
    assert_eq!(
        descriptions(&err),
        required_descriptions(&["integrationType"])
    );
    let (_, read) = s.get(&one_path(&id), &s.a.portal).await;
    assert_eq!(read, updated);

    // The derived fields follow the new configuration.
    let telegram = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Telegram"), "Telegram", case("Telegram").config),
        )
        .await;
    let (status, moved) = s
        .post(
            &create_path(&id_of(&telegram)),
            &s.a.portal,
            json!({ "configuration": { "TOKEN": "987:other" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["inboundId"], "987");
    assert_eq!(moved["configuration"]["token"], "987:other");
    assert_eq!(moved["configuration"]["username"], Value::Null);
    assert_eq!(
        moved["configuration"]["webhookSecret"], telegram["configuration"]["webhookSecret"],
        "the generated secret is kept"
    );

    // Email keeps its generated address when its optional key goes away.
    let email = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Email"), "Mail", case("Email").config),
        )
        .await;
    let (status, plain) = s
        .put(
            &one_path(&id_of(&email)),
            &s.a.portal,
            json!({ "configuration": {} }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert_eq!(
        plain["configuration"],
        json!({ "fromAddress": null, "incomingAddress": email["configuration"]["incomingAddress"] })
    );
    assert_eq!(plain["inboundId"], email["inboundId"]);
    s.stop().await;
}

#[tokio::test]
async fn a_get_body_put_back_unchanged_is_accepted_on_every_channel_by_both_routes() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Round trip").await;
    for c in catalogue() {
        let created = s
            .integration(
                &s.a.portal,
                &hub,
                new_body(json!(c.channel), c.channel, c.config.clone()),
            )
            .await;
        let id = id_of(&created);
        let (_, read) = s.get(&one_path(&id), &s.a.portal).await;
        let ignored = ["TwilioSMS", "Messenger", "Slack"].contains(&c.channel);
        for (method, path) in [
            (Method::PUT, one_path(&id)),
            (Method::POST, create_path(&id)),
        ] {
            let (status, headers, out) = s
                .call_full(method.clone(), &path, Some(&s.a.portal), Some(&read))
                .await;
            assert_eq!(status, StatusCode::OK, "{} {method}: {out}", c.channel);
            let mut want = read.clone();
            want["modified"] = out["modified"].clone();
            assert_eq!(
                out, want,
                "{} {method}: same integration, generated keys kept",
                c.channel
            );
            assert_eq!(
                warning(&headers).is_some(),
                ignored,
                "{} {method}: Warning header",
                c.channel
            );
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn the_channel_of_an_integration_cannot_change_on_update() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Channel change").await;
    let line = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Line"), "Line", case("Line").config),
        )
        .await;
    let id = id_of(&line);
    for other in [json!("Viber"), json!(107), json!("Fax")] {
        let (status, err) = s
            .put(
                &one_path(&id),
                &s.a.portal,
                json!({ "channelId": other, "name": "Moved" }),
            )
            .await;
        assert_error(status, &err, 400, "PRT", &[206]);
        assert!(descriptions(&err)[0].contains("channelId"), "{err}");
        let (status, err) = s
            .post(
                &create_path(&id),
                &s.a.portal,
                json!({ "channelId": other }),
            )
            .await;
        assert_error(status, &err, 400, "PRT", &[206]);
    }
    // With a configuration of the other channel, every problem at once, the channel first.
    let (status, err) = s
        .put(
            &one_path(&id),
            &s.a.portal,
            json!({ "channelId": "Viber", "configuration": { "token": "t" } }),
        )
        .await;
    assert_error(status, &err, 400, "PRT", &[206, 301, 301, 303]);
    assert_eq!(
        descriptions(&err)[1..3],
        required_descriptions(&["channelAccessToken", "channelSecret"])
    );
    assert_eq!(
        descriptions(&err)[3],
        "Property 'configuration.token' is not supported. (code: PRT000303)"
    );
    // The same channel, by name or number, is fine.
    for same in [json!("Line"), json!(103), json!("103")] {
        let (status, out) = s
            .put(&one_path(&id), &s.a.portal, json!({ "channelId": same }))
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(out["channelId"], "Line");
    }
    let (_, read) = s.get(&one_path(&id), &s.a.portal).await;
    assert_eq!(read["configuration"], line["configuration"]);
    s.stop().await;
}

#[tokio::test]
async fn twilio_messenger_and_slack_ignore_configuration_updates_with_a_warning_but_apply_the_name()
{
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Re-authenticating").await;
    for channel in ["TwilioSMS", "Messenger", "Slack"] {
        let c = case(channel);
        let created = s
            .integration(
                &s.a.portal,
                &hub,
                new_body(json!(channel), channel, c.config.clone()),
            )
            .await;
        let id = id_of(&created);
        let changed = Value::Object(
            c.config
                .as_object()
                .expect("object")
                .keys()
                .map(|k| (k.clone(), json!("changed")))
                .collect(),
        );
        // A valid new configuration, an invalid one: both ignored.
        for (i, (method, path, config)) in [
            (Method::PUT, one_path(&id), changed.clone()),
            (Method::POST, create_path(&id), json!({})),
            (Method::PUT, one_path(&id), json!({ "fax": 1 })),
        ]
        .into_iter()
        .enumerate()
        {
            let name = format!("{channel} renamed {i}");
            let (status, headers, out) = s
                .call_full(
                    method.clone(),
                    &path,
                    Some(&s.a.portal),
                    Some(&json!({ "name": name, "configuration": config })),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{channel} {method}: {out}");
            let text =
                warning(&headers).unwrap_or_else(|| panic!("{channel} {method}: a Warning header"));
            assert!(text.starts_with("299 "), "{text}");
            assert!(text.contains(channel), "{text}");
            assert_eq!(out["name"], name.as_str(), "the name change is applied");
            assert_eq!(
                out["configuration"], created["configuration"],
                "{channel}: configuration unchanged"
            );
            assert_eq!(out["inboundId"], created["inboundId"]);
        }
        // No configuration, no warning.
        let (status, headers, out) = s
            .call_full(
                Method::PUT,
                &one_path(&id),
                Some(&s.a.portal),
                Some(&json!({ "statusId": 3002 })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(warning(&headers), None);
        let (_, read) = s.get(&one_path(&id), &s.a.portal).await;
        assert_eq!(read["configuration"], created["configuration"]);
        assert_eq!(read["statusId"], 3002);
    }
    s.stop().await;
}

#[tokio::test]
async fn the_update_routes_answer_404_for_ids_that_are_not_the_tenants() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Mine").await;
    let mine = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Viber"), "Viber", case("Viber").config),
        )
        .await;
    let random = uuid::Uuid::new_v4().to_string();
    let update = json!({ "name": "Hijacked" });
    // POST on an id that is neither a hub nor an integration: 404/105.
    let (status, err) = s
        .post(&create_path(&random), &s.a.portal, update.clone())
        .await;
    assert_error(status, &err, 404, "PRT", &[105]);
    // Another tenant's integration and hub answer as if they did not exist.
    let (status, err) = s
        .post(&create_path(&id_of(&mine)), &s.b.portal, update.clone())
        .await;
    assert_error(status, &err, 404, "PRT", &[105]);
    let (status, err) = s
        .post(
            &create_path(&hub),
            &s.b.portal,
            new_body(json!("Viber"), "Sneaky", case("Viber").config),
        )
        .await;
    assert_error(status, &err, 404, "PRT", &[105]);
    // PUT names an integration: 6000.
    let (status, err) = s.put(&one_path(&random), &s.a.portal, update.clone()).await;
    assert_error(status, &err, 404, "PRT", &[6000]);
    let (status, err) = s
        .put(&one_path(&id_of(&mine)), &s.b.portal, update.clone())
        .await;
    assert_error(status, &err, 404, "PRT", &[6000]);
    let (status, err) = s.put(&one_path(&hub), &s.a.portal, update).await;
    assert_error(status, &err, 404, "PRT", &[6000]);
    let (status, err) = s
        .put("/api/v1/integrations/not-a-uuid", &s.a.portal, json!({}))
        .await;
    assert_error(status, &err, 400, "PRT", &[203]);
    let (_, read) = s.get(&one_path(&id_of(&mine)), &s.a.portal).await;
    assert_eq!(read, mine, "unchanged");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Lists and delete.

#[tokio::test]
async fn listing_by_channel_type_answers_that_channel_only_by_name_or_number_oldest_first() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "By channel").await;
    let other = s.hub(&s.a.portal, "Other").await;
    let twilio = case("TwilioSMS").config;
    let first = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("TwilioSMS"), "SMS 1", twilio.clone()),
        )
        .await;
    let telegram = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Telegram"), "Telegram", case("Telegram").config),
        )
        .await;
    let second = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!(102), "SMS 2", twilio.clone()),
        )
        .await;
    s.integration(
        &s.a.portal,
        &other,
        new_body(json!("TwilioSMS"), "SMS elsewhere", twilio),
    )
    .await;

    for channel_type in ["TwilioSMS", "102", "twiliosms"] {
        let (status, list) = s
            .get(
                &format!("/api/v1/integrations/hubs/{hub}/{channel_type}"),
                &s.a.portal,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list, json!([first, second]), "by {channel_type}");
    }
    let (_, list) = s
        .get(&format!("/api/v1/integrations/hubs/{hub}/104"), &s.a.portal)
        .await;
    assert_eq!(list, json!([telegram]));
    let (status, list) = s
        .get(
            &format!("/api/v1/integrations/hubs/{hub}/Viber"),
            &s.a.portal,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]));

    for bad in ["Fax", "9999", "2"] {
        let (status, err) = s
            .get(
                &format!("/api/v1/integrations/hubs/{hub}/{bad}"),
                &s.a.portal,
            )
            .await;
        assert_error(status, &err, 400, "PRT", &[206]);
    }
    // Another tenant's hub is no hub at all.
    let (status, err) = s
        .get(
            &format!("/api/v1/integrations/hubs/{hub}/TwilioSMS"),
            &s.b.portal,
        )
        .await;
    assert_error(status, &err, 404, "PRT", &[105]);
    let (status, err) = s
        .get(
            &format!(
                "/api/v1/integrations/hubs/{}/TwilioSMS",
                uuid::Uuid::new_v4()
            ),
            &s.b.portal,
        )
        .await;
    assert_error(status, &err, 404, "PRT", &[105]);
    let (status, err) = s
        .get(
            "/api/v1/integrations/hubs/not-a-uuid/TwilioSMS",
            &s.a.portal,
        )
        .await;
    assert_error(status, &err, 400, "PRT", &[203]);
    s.stop().await;
}

#[tokio::test]
async fn the_integration_list_is_paginated_oldest_first_with_or_without_a_hub_and_per_tenant() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Paged").await;
    let other = s.hub(&s.a.portal, "Paged too").await;
    let b_hub = s.hub(&s.b.portal, "B's").await;
    let mut all = Vec::new();
    for (i, h) in [&hub, &other, &hub, &other, &hub].into_iter().enumerate() {
        all.push(
            s.integration(
                &s.a.portal,
                h,
                new_body(json!("Viber"), &format!("Viber {i}"), case("Viber").config),
            )
            .await,
        );
    }
    let b_one = s
        .integration(
            &s.b.portal,
            &b_hub,
            new_body(json!("Viber"), "B's viber", case("Viber").config),
        )
        .await;

    let (status, page) = s.get("/api/v1/integrations", &s.a.portal).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page,
        json!({ "pageNumber": 0, "pageSize": 50, "total": 5, "results": all })
    );
    let (_, page) = s.get("/api/v1/integrations?pageSize=2", &s.a.portal).await;
    assert_eq!(
        page,
        json!({ "pageNumber": 0, "pageSize": 2, "total": 5, "results": all[0..2] })
    );
    let (_, page) = s
        .get("/api/v1/integrations?pageSize=2&pageNumber=2", &s.a.portal)
        .await;
    assert_eq!(
        page,
        json!({ "pageNumber": 2, "pageSize": 2, "total": 5, "results": all[4..] })
    );
    let (_, page) = s
        .get("/api/v1/integrations?pageSize=2&pageNumber=3", &s.a.portal)
        .await;
    assert_eq!(
        page,
        json!({ "pageNumber": 3, "pageSize": 2, "total": 5, "results": [] })
    );

    let of_hub: Vec<Value> = all
        .iter()
        .filter(|i| i["hubId"] == hub.as_str())
        .cloned()
        .collect();
    let (_, page) = s
        .get(&format!("/api/v1/integrations?hubId={hub}"), &s.a.portal)
        .await;
    assert_eq!(
        page,
        json!({ "pageNumber": 0, "pageSize": 50, "total": 3, "results": of_hub })
    );
    let (_, page) = s
        .get(
            &format!("/api/v1/integrations?hubId={hub}&pageSize=1&pageNumber=1"),
            &s.a.portal,
        )
        .await;
    assert_eq!(
        page,
        json!({ "pageNumber": 1, "pageSize": 1, "total": 3, "results": [of_hub[1]] })
    );

    // Tenants see their own only; another tenant's hub matches nothing.
    let (_, page) = s.get("/api/v1/integrations", &s.b.portal).await;
    assert_eq!(
        page,
        json!({ "pageNumber": 0, "pageSize": 50, "total": 1, "results": [b_one] })
    );
    let (_, page) = s
        .get(&format!("/api/v1/integrations?hubId={hub}"), &s.b.portal)
        .await;
    assert_eq!(
        page,
        json!({ "pageNumber": 0, "pageSize": 50, "total": 0, "results": [] })
    );
    let (_, page) = s
        .get(&format!("/api/v1/integrations?hubId={b_hub}"), &s.a.portal)
        .await;
    assert_eq!(
        page,
        json!({ "pageNumber": 0, "pageSize": 50, "total": 0, "results": [] })
    );

    // A page far past the end is empty, not the first page again nor an internal error.
    for number in [1_000_000_000_000_i64, i64::MAX] {
        let (status, page) = s
            .get(
                &format!("/api/v1/integrations?pageSize=100&pageNumber={number}"),
                &s.a.portal,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(
            page,
            json!({ "pageNumber": number, "pageSize": 100, "total": 5, "results": [] })
        );
    }

    let (status, err) = s
        .get("/api/v1/integrations?hubId=not-a-uuid", &s.a.portal)
        .await;
    assert_error(status, &err, 400, "PRT", &[203]);
    for query in ["pageSize=0", "pageSize=101", "pageNumber=-1"] {
        let (status, err) = s
            .get(&format!("/api/v1/integrations?{query}"), &s.a.portal)
            .await;
        assert_error(status, &err, 400, "PRT", &[206]);
    }
    s.stop().await;
}

#[tokio::test]
async fn a_deleted_integration_answers_404_6000() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Delete").await;
    let gone = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Fcm"), "Push", case("Fcm").config),
        )
        .await;
    let kept = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Fcm"), "Push 2", case("Fcm").config),
        )
        .await;
    let id = id_of(&gone);

    // Another tenant cannot delete it, nor see it.
    let (status, err) = s.delete(&one_path(&id), &s.b.portal).await;
    assert_error(status, &err, 404, "PRT", &[6000]);
    let (status, err) = s.get(&one_path(&id), &s.b.portal).await;
    assert_error(status, &err, 404, "PRT", &[6000]);

    let (status, body) = s.delete(&one_path(&id), &s.a.portal).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::Null, "a delete answers an empty body");
    let (status, err) = s.get(&one_path(&id), &s.a.portal).await;
    assert_error(status, &err, 404, "PRT", &[6000]);
    let (status, err) = s
        .put(&one_path(&id), &s.a.portal, json!({ "name": "Back" }))
        .await;
    assert_error(status, &err, 404, "PRT", &[6000]);
    let (status, err) = s.delete(&one_path(&id), &s.a.portal).await;
    assert_error(status, &err, 404, "PRT", &[6000]);
    let (status, err) = s
        .post(&create_path(&id), &s.a.portal, json!({ "name": "Back" }))
        .await;
    assert_error(status, &err, 404, "PRT", &[105]);
    let (_, page) = s
        .get(&format!("/api/v1/integrations?hubId={hub}"), &s.a.portal)
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["results"], json!([kept]));
    // Its name is free again.
    s.integration(
        &s.a.portal,
        &hub,
        new_body(json!("Fcm"), "Push", case("Fcm").config),
    )
    .await;
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Validation details.

async fn refused(s: &TestServer, hub: &str, channel: &str, config: Value) -> (StatusCode, Value) {
    s.post(
        &create_path(hub),
        &s.a.portal,
        new_body(json!(channel), "Refused", config),
    )
    .await
}

#[tokio::test]
async fn system_events_must_be_one_or_more_known_filters() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Events").await;
    let (status, err) = refused(
        &s,
        &hub,
        "System",
        json!({ "webhookUrl": "https://example.com/h", "events": [] }),
    )
    .await;
    assert_error(status, &err, 400, "PRT", &[306]);
    assert_eq!(
        descriptions(&err),
        ["Property 'configuration.events' must contain one or more elements. (code: PRT000306)"]
    );
    let (status, err) = refused(&s, &hub, "System", json!({ "webhookUrl": "https://example.com/h", "events": ["message:customer", "message:everyone"] })).await;
    assert_error(status, &err, 400, "PRT", &[206]);
    assert!(descriptions(&err)[0].contains("message:everyone"), "{err}");
    // Every filter of SPEC 5.4 is accepted.
    let filters = json!([
        "message",
        "message:customer",
        "message:agent",
        "message:bot",
        "event",
        "event:customer",
        "event:agent",
        "event:bot",
        "conversation:opened",
        "conversation:closed"
    ]);
    let got = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(
                json!("System"),
                "All events",
                json!({ "webhookUrl": "https://example.com/h", "events": filters }),
            ),
        )
        .await;
    assert_eq!(got["configuration"]["events"], filters);
    s.stop().await;
}

#[tokio::test]
async fn webhook_urls_must_be_http_or_https() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Webhooks").await;
    for bad in ["ftp://example.com/hook", "example.com/hook", "not a url"] {
        let (status, err) = refused(
            &s,
            &hub,
            "Direct",
            json!({ "integrationType": "Agent", "webhookUrl": bad }),
        )
        .await;
        assert_error(status, &err, 400, "PRT", &[201]);
        assert!(
            descriptions(&err)[0].contains("configuration.webhookUrl"),
            "{err}"
        );
        let (status, err) = refused(
            &s,
            &hub,
            "System",
            json!({ "webhookUrl": bad, "events": ["message"] }),
        )
        .await;
        assert_error(status, &err, 400, "PRT", &[201]);
    }
    for (i, ok) in [
        "http://localhost:5100/v1/api?customer=1",
        "https://example.com/hook",
    ]
    .into_iter()
    .enumerate()
    {
        let got = s
            .integration(
                &s.a.portal,
                &hub,
                new_body(
                    json!("Direct"),
                    &format!("ok {i}"),
                    json!({ "integrationType": "Agent", "webhookUrl": ok }),
                ),
            )
            .await;
        assert_eq!(got["configuration"]["webhookUrl"], ok);
    }
    s.stop().await;
}

#[tokio::test]
async fn web_chat_allowed_origins_must_not_be_empty() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "WebChat").await;
    let (status, err) = refused(&s, &hub, "WebChat", json!({ "allowedOrigins": [] })).await;
    assert_error(status, &err, 400, "PRT", &[306]);
    assert_eq!(descriptions(&err), ["Property 'configuration.allowedOrigins' must contain one or more elements. (code: PRT000306)"]);
    // SPEC 7.18.1: host names only; a scheme, a port or a path is 400/201, on create and on
    // update (the port of a request's Origin is ignored when matching).
    for bad in [
        "localhost:3000",
        "https://hubster.io",
        "hubster.io/chat",
        "bad host",
    ] {
        let (status, err) = refused(&s, &hub, "WebChat", json!({ "allowedOrigins": [bad] })).await;
        assert_error(status, &err, 400, "PRT", &[201]);
    }
    let made = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(
                json!("WebChat"),
                "Chat",
                json!({ "allowedOrigins": ["localhost", "*.hubster.io"] }),
            ),
        )
        .await;
    let (status, err) = s
        .put(
            &one_path(&id_of(&made)),
            &s.a.portal,
            json!({ "name": "Chat", "configuration": { "allowedOrigins": ["hubster.io:443"] } }),
        )
        .await;
    assert_error(status, &err, 400, "PRT", &[201]);
    s.stop().await;
}

#[tokio::test]
async fn mailgun_incoming_address_must_be_on_its_domain() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Mailgun").await;
    let (status, err) = refused(&s, &hub, "Mailgun", json!({ "apiKey": "k", "domain": "mg.example.com", "incomingAddress": "support@example.com" })).await;
    assert_error(status, &err, 400, "PRT", &[201]);
    assert!(
        descriptions(&err)[0].contains("configuration.incomingAddress"),
        "{err}"
    );
    s.stop().await;
}

#[tokio::test]
async fn apn_certificate_must_be_base64() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Apn").await;
    let (status, err) = refused(&s, &hub, "Apn", json!({ "certificate": "not base64!" })).await;
    assert_error(status, &err, 400, "PRT", &[201]);
    assert!(
        descriptions(&err)[0].contains("configuration.certificate"),
        "{err}"
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Slack OAuth, against a stand-in for Slack's Web API.

type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// Slack's `oauth.v2.access`: `good-code` grants a bot token only, `full-code` also a user
/// token and an incoming webhook, `busy` is rate limited, anything else is refused.
#[poem::handler]
fn fake_oauth_access(
    poem::web::Form(form): poem::web::Form<HashMap<String, String>>,
    seen: poem::web::Data<&Seen>,
) -> poem::Response {
    use poem::IntoResponse;
    let code = form.get("code").cloned().unwrap_or_default();
    seen.0.lock().expect("lock").push(form);
    let team = json!({ "id": "T0GRANTED", "name": "Acme" });
    let answer = match code.as_str() {
        "good-code" => {
            json!({ "ok": true, "access_token": "xoxb-granted-42", "token_type": "bot", "scope": "chat:write", "bot_user_id": "U0BOT", "app_id": "A0APP", "team": team })
        }
        "full-code" => json!({
            "ok": true, "access_token": "xoxb-granted-43", "token_type": "bot", "scope": "chat:write,incoming-webhook",
            "bot_user_id": "U0BOT", "app_id": "A0APP", "team": team,
            "authed_user": { "id": "U0ADMIN", "scope": "chat:write", "access_token": "xoxp-user-7", "token_type": "user" },
            "incoming_webhook": { "channel": "#general", "channel_id": "C0GEN", "url": "https://hooks.slack.com/services/T/B/x" }
        }),
        "busy" => {
            return poem::web::Json(json!({ "ok": false, "error": "ratelimited" }))
                .with_status(poem::http::StatusCode::TOO_MANY_REQUESTS)
                .into_response()
        }
        _ => json!({ "ok": false, "error": "invalid_code" }),
    };
    poem::web::Json(answer).into_response()
}

/// A stand-in for Slack's Web API on 127.0.0.1:0: its base URL and the forms it received.
async fn fake_slack() -> (String, Seen) {
    use poem::EndpointExt;
    let seen: Seen = Arc::default();
    let app = poem::Route::new()
        .at("/oauth.v2.access", poem::post(fake_oauth_access))
        .data(seen.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).expect("acceptor");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn slack_oauth_code_is_exchanged_for_a_bot_token_and_team() {
    let (slack, seen) = fake_slack().await;
    let s = TestServer::start_with(Backend::Sqlite, |a| a.slack_api_url = slack.clone()).await;
    let hub = s.hub(&s.a.portal, "Slack").await;
    let got = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(
                json!("Slack"),
                "Slack",
                json!({ "Code": "good-code", "nonce": "n-1" }),
            ),
        )
        .await;
    assert_eq!(got["inboundId"], "T0GRANTED");
    assert_eq!(got["integrationTypeId"], "Agent");
    assert_eq!(got["channelId"], "Slack");
    assert_eq!(
        got["configuration"],
        json!({ "botAccessToken": "xoxb-granted-42", "teamId": "T0GRANTED", "defaultPublicChannel": null, "appAccessToken": null, "botName": null })
    );
    let forms = seen.lock().expect("lock").clone();
    assert_eq!(forms.len(), 1, "one exchange: {forms:?}");
    assert_eq!(forms[0].get("code").map(String::as_str), Some("good-code"));
    assert_eq!(forms[0].get("nonce").map(String::as_str), Some("n-1"));
    let (_, read) = s.get(&one_path(&id_of(&got)), &s.a.portal).await;
    assert_eq!(read, got, "stored as answered; code and nonce are not kept");

    // What else Slack grants is kept: a Slack configuration cannot be updated afterwards.
    let full = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(
                json!(1001),
                "Slack full",
                json!({ "code": "full-code", "nonce": "n-2" }),
            ),
        )
        .await;
    assert_eq!(
        full["configuration"],
        json!({ "botAccessToken": "xoxb-granted-43", "teamId": "T0GRANTED", "defaultPublicChannel": "general", "appAccessToken": "xoxp-user-7", "botName": null })
    );
    assert_eq!(full["inboundId"], "T0GRANTED");
    s.stop().await;
}

#[tokio::test]
async fn slack_refusing_the_oauth_code_is_400_206_with_slacks_reason() {
    let (slack, _) = fake_slack().await;
    let s = TestServer::start_with(Backend::Sqlite, |a| a.slack_api_url = slack.clone()).await;
    let hub = s.hub(&s.a.portal, "Slack").await;
    let (status, err) = s
        .post(
            &create_path(&hub),
            &s.a.portal,
            new_body(
                json!("Slack"),
                "Slack",
                json!({ "code": "stale", "nonce": "n" }),
            ),
        )
        .await;
    assert_error(status, &err, 400, "PRT", &[206]);
    assert!(descriptions(&err)[0].contains("invalid_code"), "{err}");
    // Slack rate limiting the exchange is Slack being unavailable, not a bad code.
    let (status, err) = s
        .post(
            &create_path(&hub),
            &s.a.portal,
            new_body(
                json!("Slack"),
                "Slack",
                json!({ "code": "busy", "nonce": "n" }),
            ),
        )
        .await;
    assert_error(status, &err, 503, "PRT", &[100]);
    let (_, page) = s.get("/api/v1/integrations", &s.a.portal).await;
    assert_eq!(page["total"], 0, "nothing stored");
    s.stop().await;
}

#[tokio::test]
async fn slack_unreachable_for_the_oauth_exchange_is_503_100() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let s = TestServer::start_with(Backend::Sqlite, |a| {
        a.slack_api_url = format!("http://{closed}")
    })
    .await;
    let hub = s.hub(&s.a.portal, "Slack").await;
    let (status, err) = s
        .post(
            &create_path(&hub),
            &s.a.portal,
            new_body(
                json!("Slack"),
                "Slack",
                json!({ "code": "good-code", "nonce": "n" }),
            ),
        )
        .await;
    assert_error(status, &err, 503, "PRT", &[100]);
    assert!(
        !descriptions(&err)[0].contains(&closed.to_string()),
        "no internals leak: {err}"
    );
    // The token form needs no exchange.
    let c = case("Slack");
    let got = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Slack"), "Slack tokens", c.config.clone()),
        )
        .await;
    assert_created(&c, &got, &hub, "Slack tokens");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Credentials at rest.

/// The bytes of a SQLite database and its `-wal` and `-shm` files.
fn sqlite_bytes(database_url: &str) -> Vec<u8> {
    let path = database_url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .expect("a path")
        .to_owned();
    let mut bytes = std::fs::read(&path).expect("the database file");
    for suffix in ["-wal", "-shm", "-journal"] {
        if let Ok(more) = std::fs::read(format!("{path}{suffix}")) {
            bytes.extend(more);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What the database holds as bytes: the SQLite files, or on PostgreSQL every row of the tables
/// that hold integrations and keys, in their text form (bytea as hex).
async fn stored_bytes(s: &TestServer, backend: Backend) -> Vec<u8> {
    match backend {
        Backend::Sqlite => sqlite_bytes(&s.database_url),
        Backend::Postgres => {
            use sea_orm::{ConnectionTrait, DbBackend, Statement};
            let conn = sea_orm::Database::connect(&s.database_url)
                .await
                .expect("connect");
            let mut bytes = Vec::new();
            for table in ["integrations", "hubs", "server_keys"] {
                let sql = format!("SELECT t::text AS row FROM {table} t");
                let rows = conn
                    .query_all(Statement::from_string(DbBackend::Postgres, sql))
                    .await
                    .expect("dump");
                for row in rows {
                    bytes.extend(
                        row.try_get::<String>("", "row")
                            .expect("row text")
                            .into_bytes(),
                    );
                    bytes.push(b'\n');
                }
            }
            conn.close().await.expect("close");
            bytes
        }
    }
}

/// Lower-case hex of `bytes`, as PostgreSQL shows a bytea.
fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn channel_secrets_and_private_signing_keys_are_not_readable_in_the_database() {
    for backend in
        backends("channel_secrets_and_private_signing_keys_are_not_readable_in_the_database")
    {
        let s = TestServer::start_on(backend).await;
        let hub = s.hub(&s.a.portal, "At rest").await;
        let token = "AUTHTOKEN-CLEAR-1234";
        s.integration(&s.a.portal, &hub, new_body(json!("TwilioSMS"), "Twilio-at-rest-name-7731", json!({ "accountSid": "AC-at-rest", "authToken": token, "numberSid": "PN-at-rest" }))).await;
        let direct = s
            .integration(
                &s.a.portal,
                &hub,
                new_body(
                    json!("Direct"),
                    "Direct-at-rest-name-7732",
                    json!({ "integrationType": "Agent" }),
                ),
            )
            .await;
        let (_, private) = assert_key_pair(&direct["configuration"]);
        // Updates write the configuration again.
        let (status, renewed) = s
            .put(
                &one_path(&id_of(&direct)),
                &s.a.portal,
                json!({ "configuration": { "integrationType": "Agent", "regenerateKeys": true } }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{renewed}");
        let (_, renewed_private) = assert_key_pair(&renewed["configuration"]);

        let bytes = stored_bytes(&s, backend).await;
        for name in ["Twilio-at-rest-name-7731", "Direct-at-rest-name-7732"] {
            assert!(
                contains(&bytes, name.as_bytes()),
                "{backend:?}: the search finds {name}, stored in clear"
            );
        }
        for secret in [token, &private, &renewed_private] {
            for form in [
                secret.to_owned(),
                secret.to_ascii_lowercase(),
                lower_hex(secret.as_bytes()),
            ] {
                assert!(
                    !contains(&bytes, form.as_bytes()),
                    "{backend:?}: a secret is readable in the database: {form}"
                );
            }
        }
        for key in [&private, &renewed_private] {
            assert!(
                !contains(&bytes, &hex32(key)),
                "{backend:?}: a private signing seed is readable in the database"
            );
        }
        s.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Every backend.

#[tokio::test]
async fn integrations_create_sign_and_list_per_tenant_on_every_backend() {
    for backend in backends("integrations_create_sign_and_list_per_tenant_on_every_backend") {
        let s = TestServer::start_on(backend).await;
        let hub = s.hub(&s.a.portal, "Backend").await;
        let b_hub = s.hub(&s.b.portal, "Backend").await;
        let mut created = Vec::new();
        for c in [
            case("Direct"),
            case("System"),
            case("TwilioSMS"),
            case("Email"),
        ] {
            let got = s
                .integration(
                    &s.a.portal,
                    &hub,
                    new_body(json!(c.number), c.channel, c.config.clone()),
                )
                .await;
            assert_created(&c, &got, &hub, c.channel);
            let (_, read) = s.get(&one_path(&id_of(&got)), &s.a.portal).await;
            assert_eq!(read, got, "{backend:?}: read back after decryption");
            created.push(got);
        }
        let direct = &created[0];
        let original = assert_key_pair(&direct["configuration"]);
        let (status, renewed) = s
            .put(
                &one_path(&id_of(direct)),
                &s.a.portal,
                json!({ "configuration": { "integrationType": "Bot", "regenerateKeys": true } }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {renewed}");
        assert_ne!(assert_key_pair(&renewed["configuration"]).0, original.0);
        assert_eq!(renewed["integrationTypeId"], "Bot");
        created[0] = renewed;
        let (status, err) = s
            .post(
                &create_path(&hub),
                &s.a.portal,
                new_body(json!("Viber"), "Direct", case("Viber").config),
            )
            .await;
        assert_error(status, &err, 409, "PRT", &[106]);

        let b_one = s
            .integration(
                &s.b.portal,
                &b_hub,
                new_body(json!("Viber"), "Viber", case("Viber").config),
            )
            .await;
        let (_, page) = s
            .get(&format!("/api/v1/integrations?hubId={hub}"), &s.a.portal)
            .await;
        assert_eq!(
            page,
            json!({ "pageNumber": 0, "pageSize": 50, "total": 4, "results": created }),
            "{backend:?}"
        );
        let (_, page) = s
            .get(&format!("/api/v1/integrations?hubId={hub}"), &s.b.portal)
            .await;
        assert_eq!(
            page,
            json!({ "pageNumber": 0, "pageSize": 50, "total": 0, "results": [] }),
            "{backend:?}"
        );
        let (_, page) = s.get("/api/v1/integrations", &s.b.portal).await;
        assert_eq!(
            page,
            json!({ "pageNumber": 0, "pageSize": 50, "total": 1, "results": [b_one] }),
            "{backend:?}"
        );
        let (status, err) = s.get(&one_path(&id_of(&created[1])), &s.b.portal).await;
        assert_error(status, &err, 404, "PRT", &[6000]);
        let (status, list) = s
            .get(&format!("/api/v1/integrations/hubs/{hub}/102"), &s.a.portal)
            .await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {list}");
        assert_eq!(list, json!([created[2]]), "{backend:?}");
        let (status, err) = s
            .get(
                &format!("/api/v1/integrations/hubs/{hub}/TwilioSMS"),
                &s.b.portal,
            )
            .await;
        assert_error(status, &err, 404, "PRT", &[105]);

        // Renaming onto a taken name conflicts; a page past the end is empty.
        let (status, err) = s
            .put(
                &one_path(&id_of(&created[1])),
                &s.a.portal,
                json!({ "name": "Direct" }),
            )
            .await;
        assert_error(status, &err, 409, "PRT", &[106]);
        for number in [1_000_000_000_000_i64, i64::MAX] {
            let (status, page) = s
                .get(
                    &format!("/api/v1/integrations?pageSize=100&pageNumber={number}"),
                    &s.a.portal,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{backend:?}: {page}");
            assert_eq!(
                page,
                json!({ "pageNumber": number, "pageSize": 100, "total": 4, "results": [] }),
                "{backend:?}"
            );
        }
        s.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Names, bodies, tokens.

#[tokio::test]
async fn an_integration_name_must_be_a_non_blank_string_of_at_most_200_characters() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Names").await;
    let config = case("Viber").config;
    for bad in [json!(""), json!("   "), json!("x".repeat(201))] {
        let mut body = new_body(json!("Viber"), "", config.clone());
        body["name"] = bad.clone();
        let (status, err) = s.post(&create_path(&hub), &s.a.portal, body).await;
        assert_error(status, &err, 400, "PRT", &[206]);
        assert!(descriptions(&err)[0].contains("'name'"), "{err}");
    }
    let mut body = new_body(json!("Viber"), "", config.clone());
    body["name"] = json!(42);
    let (status, err) = s.post(&create_path(&hub), &s.a.portal, body).await;
    assert_error(status, &err, 400, "PRT", &[302]);
    let longest = "é".repeat(200);
    let got = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Viber"), &longest, config.clone()),
        )
        .await;
    assert_eq!(got["name"], longest.as_str(), "200 characters, not bytes");
    let (status, err) = s
        .put(&one_path(&id_of(&got)), &s.a.portal, json!({ "name": " " }))
        .await;
    assert_error(status, &err, 400, "PRT", &[206]);
    s.stop().await;
}

#[tokio::test]
async fn integration_bodies_must_be_json_objects() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Bodies").await;
    let (status, err) = s
        .post(
            &create_path(&hub),
            &s.a.portal,
            json!(["not", "an", "object"]),
        )
        .await;
    assert_error(status, &err, 400, "PRT", &[300]);
    let resp = s
        .http
        .post(s.url(&create_path(&hub)))
        .bearer_auth(&s.a.portal)
        .header("content-type", "application/json")
        .body("{ \"channelId\": ")
        .send()
        .await
        .expect("send");
    let (status, err) = read(resp).await;
    assert_error(status, &err, 400, "PRT", &[300]);
    let viber = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Viber"), "Viber", case("Viber").config),
        )
        .await;
    let resp = s
        .http
        .put(s.url(&one_path(&id_of(&viber))))
        .bearer_auth(&s.a.portal)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .expect("send");
    let (status, err) = read(resp).await;
    assert_error(status, &err, 415, "PRT", &[300]);
    let (status, err) = s
        .put(
            &one_path(&id_of(&viber)),
            &s.a.portal,
            json!({ "configuration": "token" }),
        )
        .await;
    assert_error(status, &err, 400, "PRT", &[302]);
    s.stop().await;
}

#[tokio::test]
async fn integration_routes_need_a_portal_token() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Tokens").await;
    let viber = s
        .integration(
            &s.a.portal,
            &hub,
            new_body(json!("Viber"), "Viber", case("Viber").config),
        )
        .await;
    let id = id_of(&viber);
    let create = new_body(json!("Viber"), "Other", case("Viber").config);
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, create_path(&hub), Some(create.clone())),
        (Method::POST, create_path(&id), Some(json!({ "name": "x" }))),
        (Method::PUT, one_path(&id), Some(json!({ "name": "x" }))),
        (Method::GET, one_path(&id), None),
        (
            Method::GET,
            format!("/api/v1/integrations/hubs/{hub}/Viber"),
            None,
        ),
        (Method::GET, "/api/v1/integrations".to_owned(), None),
        (Method::DELETE, one_path(&id), None),
    ];
    for (method, path, body) in &routes {
        let (status, err) = s.call(method.clone(), path, None, body.as_ref()).await;
        assert_error(status, &err, 401, "PRT", &[102]);
        let (status, err) = s
            .call(method.clone(), path, Some("not-a-jwt"), body.as_ref())
            .await;
        assert_error(status, &err, 401, "PRT", &[102]);
        let (status, err) = s
            .call(method.clone(), path, Some(&s.a.engine), body.as_ref())
            .await;
        assert_error(status, &err, 403, "PRT", &[101]);
    }
    let (_, read) = s.get(&one_path(&id), &s.a.portal).await;
    assert_eq!(read, viber, "nothing changed");
    s.stop().await;
}
