use super::*;
use crate::channel_config::{generated_keys, keys as catalogue, stored_keys};
use crate::ids::{HubId, IntegrationId, TenantId};
use crate::ViolationKind;
use proptest::prelude::*;
use serde_json::json;

/// A valid configuration of each channel, and its required keys, written out by hand so the
/// catalogue itself is under test.
fn valid(channel: Channel) -> (Value, &'static [&'static str]) {
    match channel {
        Channel::Direct => (json!({ "integrationType": "Agent" }), &["integrationType"]),
        Channel::System => (
            json!({ "webhookUrl": "https://example.com/hook", "events": ["message:customer"] }),
            &["webhookUrl", "events"],
        ),
        Channel::Messenger => (
            json!({ "pageAccessToken": "EAAF", "pageId": "1013889883" }),
            &["pageAccessToken"],
        ),
        Channel::TwilioSms => (
            json!({ "accountSid": "AC1fc1", "authToken": "cb8c", "numberSid": "PN66" }),
            &["accountSid", "authToken", "numberSid"],
        ),
        Channel::Line => (
            json!({ "channelAccessToken": "cat", "channelSecret": "cs" }),
            &["channelAccessToken", "channelSecret"],
        ),
        Channel::Telegram => (json!({ "token": "123456:ABC-DEF" }), &["token"]),
        Channel::Kik => (
            json!({ "username": "bot", "apiKey": "k" }),
            &["username", "apiKey"],
        ),
        Channel::WebChat => (
            json!({ "allowedOrigins": ["localhost", "hubster.io"] }),
            &["allowedOrigins"],
        ),
        Channel::Viber => (json!({ "token": "viber-token" }), &["token"]),
        Channel::WeChat => (
            json!({ "appId": "wx42", "appSecret": "s" }),
            &["appId", "appSecret"],
        ),
        Channel::Twitter => (
            json!({ "consumerKey": "a", "consumerSecret": "b", "accessTokenKey": "c", "accessTokenSecret": "d" }),
            &[
                "consumerKey",
                "consumerSecret",
                "accessTokenKey",
                "accessTokenSecret",
            ],
        ),
        Channel::Mailgun => (
            json!({ "apiKey": "k", "domain": "mg.example.com", "incomingAddress": "support@mg.example.com" }),
            &["apiKey", "domain", "incomingAddress"],
        ),
        Channel::MessageBird => (
            json!({ "accessKey": "k", "originator": "Switchboard" }),
            &["accessKey", "originator"],
        ),
        Channel::Email => (json!({ "fromAddress": "help@example.com" }), &[]),
        Channel::WhatsApp => (
            json!({ "accessToken": "EAAG", "phoneNumberId": "106540352242922" }),
            &["accessToken", "phoneNumberId"],
        ),
        Channel::Apn => (json!({ "certificate": "TUlJQw==" }), &["certificate"]),
        Channel::Fcm => (
            json!({ "serverKey": "k", "senderId": "42" }),
            &["serverKey", "senderId"],
        ),
        Channel::Slack => (
            json!({ "botAccessToken": "xoxb-1", "teamId": "T5P19488N" }),
            &["botAccessToken", "teamId"],
        ),
    }
}

fn body(channel: Channel, configuration: Value) -> Value {
    json!({ "channelId": channel.name(), "name": "Test", "configuration": configuration })
}

fn create_config(channel: Channel, configuration: Value) -> Result<IntegrationDraft, Violations> {
    validate_create(&body(channel, configuration))
}

/// (kind, property) of every violation, in order.
fn pairs(err: &Violations) -> Vec<(ViolationKind, &str)> {
    err.0
        .iter()
        .map(|v| (v.kind, v.property.as_str()))
        .collect()
}

fn stored(draft: IntegrationDraft) -> Integration {
    Integration {
        id: IntegrationId::new(),
        tenant_id: TenantId::new(),
        hub_id: HubId::new(),
        name: draft.name,
        channel: draft.channel,
        integration_type: draft.integration_type,
        inbound_id: draft.inbound_id,
        status: draft.status,
        configuration: draft.configuration,
        created: 1,
        modified: 1,
    }
}

fn create_stored(channel: Channel, configuration: Value) -> Integration {
    stored(create_config(channel, configuration).unwrap())
}

/// What a GET answers: every documented key present, `null` when absent.
fn get_body(i: &Integration) -> Value {
    let mut configuration = Map::new();
    for key in stored_keys(i.channel) {
        configuration.insert(
            key.to_owned(),
            i.configuration.get(key).cloned().unwrap_or(Value::Null),
        );
    }
    json!({
        "integrationId": i.id.to_string(), "hubId": i.hub_id.to_string(), "inboundId": i.inbound_id,
        "integrationTypeId": i.integration_type.as_str(), "channelId": i.channel.name(), "name": i.name,
        "statusId": i.status.id(), "configuration": configuration,
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
    })
}

fn without_generated(
    channel: Channel,
    mut configuration: Map<String, Value>,
) -> Map<String, Value> {
    for key in generated_keys(channel) {
        configuration.remove(*key);
    }
    configuration
}

fn flip_case(key: &str, pattern: u64) -> String {
    key.chars()
        .enumerate()
        .map(|(i, c)| {
            if pattern >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn recase(configuration: &Value, pattern: u64) -> Value {
    let obj = configuration.as_object().unwrap();
    Value::Object(
        obj.iter()
            .map(|(k, v)| (flip_case(k, pattern), v.clone()))
            .collect(),
    )
}

// ---- every channel of the catalogue ----

#[test]
fn hand_written_required_keys_match_the_catalogue() {
    for channel in Channel::ALL {
        let (_, required) = valid(channel);
        let mut catalogued: Vec<_> = catalogue(channel)
            .iter()
            .filter(|k| k.required)
            .map(|k| k.name)
            .collect();
        if channel == Channel::System {
            // Required by the default format, `switchboard` (SPEC 8.7).
            catalogued.push("events");
        }
        assert_eq!(catalogued, required, "{channel}");
    }
}

#[test]
fn every_channel_accepts_a_valid_configuration() {
    for channel in Channel::ALL {
        let (config, _) = valid(channel);
        let draft =
            create_config(channel, config.clone()).unwrap_or_else(|e| panic!("{channel}: {e}"));
        assert_eq!(draft.channel, channel);
        assert_eq!(draft.name, "Test");
        assert_eq!(draft.status, IntegrationStatus::Active);
        assert_eq!(draft.slack_oauth, None);
        for (key, value) in config.as_object().unwrap() {
            assert_eq!(draft.configuration.get(key), Some(value), "{channel}.{key}");
        }
        for key in generated_keys(channel) {
            assert!(
                draft
                    .configuration
                    .get(*key)
                    .and_then(Value::as_str)
                    .is_some(),
                "{channel}.{key}"
            );
        }
        let expected_type = channel.fixed_type().unwrap_or(IntegrationType::Agent);
        assert_eq!(draft.integration_type, expected_type, "{channel}");
    }
}

#[test]
fn every_missing_required_key_is_reported_as_301_on_its_property() {
    for channel in Channel::ALL {
        let (config, required) = valid(channel);
        for key in required {
            let mut partial = config.clone();
            partial.as_object_mut().unwrap().remove(*key);
            let err = create_config(channel, partial).unwrap_err();
            let property = format!("configuration.{key}");
            assert_eq!(
                pairs(&err),
                [(ViolationKind::Required, property.as_str())],
                "{channel}"
            );
            assert_eq!(
                err.0[0].message,
                format!("Property '{property}' is required.")
            );
        }
    }
}

#[test]
fn every_missing_required_key_is_reported_at_once() {
    for channel in Channel::ALL {
        let (_, required) = valid(channel);
        let result = create_config(channel, json!({}));
        if channel == Channel::Slack {
            // An empty Slack configuration asks for the OAuth form.
            let err = result.unwrap_err();
            assert_eq!(
                pairs(&err),
                [
                    (ViolationKind::Required, "configuration.code"),
                    (ViolationKind::Required, "configuration.nonce")
                ]
            );
        } else if required.is_empty() {
            assert!(result.is_ok(), "{channel}");
        } else {
            let err = result.unwrap_err();
            let expected: Vec<_> = required
                .iter()
                .map(|k| format!("configuration.{k}"))
                .collect();
            let got: Vec<_> = err.0.iter().map(|v| v.property.clone()).collect();
            assert_eq!(got, expected, "{channel}");
            assert!(err.0.iter().all(|v| v.kind == ViolationKind::Required));
        }
    }
}

#[test]
fn unknown_configuration_key_is_303_on_every_channel() {
    for channel in Channel::ALL {
        let (mut config, _) = valid(channel);
        config
            .as_object_mut()
            .unwrap()
            .insert("foo".into(), json!("bar"));
        let err = create_config(channel, config).unwrap_err();
        assert_eq!(
            pairs(&err),
            [(ViolationKind::Unsupported, "configuration.foo")],
            "{channel}"
        );
        assert_eq!(
            err.0[0].message,
            "Property 'configuration.foo' is not supported."
        );
    }
}

#[test]
fn configuration_keys_match_case_insensitively_and_are_stored_in_camel_case() {
    for channel in Channel::ALL {
        let (config, _) = valid(channel);
        let plain = create_config(channel, config.clone()).unwrap();
        for pattern in [0, u64::MAX, 0b1010_1010] {
            let shouted = create_config(channel, recase(&config, pattern)).unwrap();
            assert_eq!(
                without_generated(channel, shouted.configuration),
                without_generated(channel, plain.configuration.clone()),
                "{channel}"
            );
            if channel != Channel::Email {
                assert_eq!(shouted.inbound_id, plain.inbound_id, "{channel}");
            }
        }
    }
}

#[test]
fn wrong_json_type_of_a_string_key_is_302() {
    for channel in Channel::ALL {
        let (config, _) = valid(channel);
        for (key, value) in config.as_object().unwrap() {
            if value.is_string() {
                let mut bad = config.clone();
                bad[key] = json!(42);
                let err = create_config(channel, bad).unwrap_err();
                let property = format!("configuration.{key}");
                assert_eq!(
                    pairs(&err),
                    [(ViolationKind::WrongType, property.as_str())],
                    "{channel}"
                );
            }
        }
    }
}

#[test]
fn empty_string_values_are_206() {
    let err = create_config(
        Channel::TwilioSms,
        json!({ "accountSid": "", "authToken": "  ", "numberSid": "PN" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::OutOfRange, "configuration.accountSid"),
            (ViolationKind::OutOfRange, "configuration.authToken")
        ]
    );
    assert_eq!(
        err.0[0].message,
        "Property 'configuration.accountSid' must not be empty."
    );
}

#[test]
fn null_configuration_values_count_as_absent() {
    let err = create_config(
        Channel::Kik,
        json!({ "username": null, "apiKey": "k", "foo": null }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::Required, "configuration.username")]
    );
    let draft = create_config(
        Channel::Direct,
        json!({ "integrationType": "Bot", "webhookUrl": null }),
    )
    .unwrap();
    assert!(!draft.configuration.contains_key("webhookUrl"));
}

#[test]
fn a_key_given_in_two_cases_is_stored_once() {
    let draft = create_config(Channel::Viber, json!({ "token": "1:a", "TOKEN": "1:a" })).unwrap();
    assert_eq!(draft.configuration.len(), 1);
    assert_eq!(draft.configuration["token"], "1:a");
}

// ---- value checks ----

#[test]
fn direct_integration_type_is_case_insensitive_stored_canonical_and_derives_the_type() {
    for (given, expected) in [
        ("agent", IntegrationType::Agent),
        ("BOT", IntegrationType::Bot),
        ("Customer", IntegrationType::Customer),
    ] {
        let draft = create_config(Channel::Direct, json!({ "integrationType": given })).unwrap();
        assert_eq!(draft.integration_type, expected);
        assert_eq!(draft.configuration["integrationType"], expected.as_str());
    }
    for bad in ["System", "Robot"] {
        let err = create_config(Channel::Direct, json!({ "integrationType": bad })).unwrap_err();
        assert_eq!(
            pairs(&err),
            [(ViolationKind::OutOfRange, "configuration.integrationType")]
        );
    }
}

#[test]
fn booleans_must_be_json_booleans() {
    let err = create_config(
        Channel::Direct,
        json!({ "integrationType": "Agent", "echo": "true" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::WrongType, "configuration.echo")]
    );
    let err = create_config(
        Channel::Apn,
        json!({ "certificate": "TUlJQw==", "autoUpdateBadge": 1, "production": "no" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::WrongType, "configuration.autoUpdateBadge"),
            (ViolationKind::WrongType, "configuration.production")
        ]
    );
}

#[test]
fn defaults_are_filled_into_the_stored_configuration() {
    let direct = create_config(Channel::Direct, json!({ "integrationType": "Agent" })).unwrap();
    assert_eq!(direct.configuration["echo"], false);
    assert!(!direct.configuration.contains_key("webhookUrl"));
    let web_chat =
        create_config(Channel::WebChat, json!({ "allowedOrigins": ["localhost"] })).unwrap();
    assert_eq!(web_chat.configuration["echo"], true);
    let apn = create_config(Channel::Apn, json!({ "certificate": "TUlJQw==" })).unwrap();
    assert_eq!(apn.configuration["autoUpdateBadge"], false);
    assert_eq!(apn.configuration["production"], false);
    let given = create_config(
        Channel::Apn,
        json!({ "certificate": "TUlJQw==", "production": true }),
    )
    .unwrap();
    assert_eq!(given.configuration["production"], true);
}

#[test]
fn webhook_url_must_be_absolute_http_or_https() {
    for ok in [
        "http://localhost:5100/v1/api?customer=1",
        "https://example.com",
    ] {
        assert!(create_config(
            Channel::Direct,
            json!({ "integrationType": "Agent", "webhookUrl": ok })
        )
        .is_ok());
    }
    for bad in [
        "ftp://example.com",
        "example.com/hook",
        "/hook",
        "https//x",
        "mailto:a@b.c",
    ] {
        let err = create_config(
            Channel::Direct,
            json!({ "integrationType": "Agent", "webhookUrl": bad }),
        )
        .unwrap_err();
        assert_eq!(
            pairs(&err),
            [(ViolationKind::InvalidFormat, "configuration.webhookUrl")],
            "{bad}"
        );
    }
}

#[test]
fn start_is_an_array_of_typed_message_objects() {
    let start = json!([{ "type": "text", "text": "Welcome!" }]);
    let draft = create_config(
        Channel::WebChat,
        json!({ "allowedOrigins": ["localhost"], "start": start }),
    )
    .unwrap();
    assert_eq!(draft.configuration["start"], start);
    assert!(create_config(
        Channel::Direct,
        json!({ "integrationType": "Bot", "start": [] })
    )
    .is_ok());
    let err = create_config(
        Channel::Direct,
        json!({ "integrationType": "Bot", "start": "hi" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::WrongType, "configuration.start")]
    );
    let err = create_config(
        Channel::Direct,
        json!({ "integrationType": "Bot", "start": [{ "type": "text" }, "hi", { "text": "x" }, { "type": 3 }] }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::WrongType, "configuration.start[1]"),
            (ViolationKind::Required, "configuration.start[2].type"),
            (ViolationKind::WrongType, "configuration.start[3].type"),
        ]
    );
}

#[test]
fn system_events_are_known_filters_non_empty_and_deduplicated_in_order() {
    let config = json!({ "webhookUrl": "https://x.io", "events": ["message:bot", "conversation:opened", "message:bot", "event"] });
    let draft = create_config(Channel::System, config).unwrap();
    assert_eq!(
        draft.configuration["events"],
        json!(["message:bot", "conversation:opened", "event"])
    );

    let err = create_config(
        Channel::System,
        json!({ "webhookUrl": "https://x.io", "events": [] }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::Empty, "configuration.events")]
    );

    let err = create_config(
        Channel::System,
        json!({ "webhookUrl": "https://x.io", "events": ["message", "Message:Bot", 7] }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::OutOfRange, "configuration.events[1]"),
            (ViolationKind::WrongType, "configuration.events[2]")
        ]
    );
    assert!(
        err.0[0].message.contains("'Message:Bot'"),
        "{}",
        err.0[0].message
    );

    let err = create_config(
        Channel::System,
        json!({ "webhookUrl": "https://x.io", "events": "message" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::WrongType, "configuration.events")]
    );
}

#[test]
fn web_chat_allowed_origins_are_non_empty_host_names() {
    let ok = json!({ "allowedOrigins": ["localhost", "*.hubster.io", "hubster.io"] });
    assert!(create_config(Channel::WebChat, ok).is_ok());
    // SPEC 7.18.1: a scheme, port or path is 400/201 (the port of an Origin is ignored).
    let err = create_config(
        Channel::WebChat,
        json!({ "allowedOrigins": ["localhost:3000", "hubster.io:443"] }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (
                ViolationKind::InvalidFormat,
                "configuration.allowedOrigins[0]"
            ),
            (
                ViolationKind::InvalidFormat,
                "configuration.allowedOrigins[1]"
            ),
        ]
    );
    let err = create_config(
        Channel::WebChat,
        json!({ "allowedOrigins": ["localhost"], "sessionTTL": 299, "title": "" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::OutOfRange, "configuration.sessionTTL"),
            (ViolationKind::OutOfRange, "configuration.title"),
        ]
    );
    assert!(create_config(
        Channel::WebChat,
        json!({ "allowedOrigins": ["localhost"], "sessionTTL": 300, "title": "Help" })
    )
    .is_ok());
    let err = create_config(Channel::WebChat, json!({ "allowedOrigins": [] })).unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::Empty, "configuration.allowedOrigins")]
    );
    let err = create_config(
        Channel::WebChat,
        json!({ "allowedOrigins": ["https://hubster.io", "hubster.io/chat", "bad host", 5] }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (
                ViolationKind::InvalidFormat,
                "configuration.allowedOrigins[0]"
            ),
            (
                ViolationKind::InvalidFormat,
                "configuration.allowedOrigins[1]"
            ),
            (
                ViolationKind::InvalidFormat,
                "configuration.allowedOrigins[2]"
            ),
            (ViolationKind::WrongType, "configuration.allowedOrigins[3]"),
        ]
    );
}

#[test]
fn mailgun_incoming_address_must_be_on_its_domain() {
    let ok = json!({ "apiKey": "k", "domain": "MG.example.com", "incomingAddress": "Support@mg.EXAMPLE.com" });
    assert!(create_config(Channel::Mailgun, ok).is_ok());
    let err = create_config(
        Channel::Mailgun,
        json!({ "apiKey": "k", "domain": "mg.example.com", "incomingAddress": "support@example.com" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(
            ViolationKind::InvalidFormat,
            "configuration.incomingAddress"
        )]
    );
    let err = create_config(
        Channel::Mailgun,
        json!({ "apiKey": "k", "domain": "mg.example.com", "incomingAddress": "nope" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(
            ViolationKind::InvalidFormat,
            "configuration.incomingAddress"
        )]
    );
}

#[test]
fn email_from_address_must_be_an_email_address() {
    let err = create_config(
        Channel::Email,
        json!({ "fromAddress": "help-at-example.com" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::InvalidFormat, "configuration.fromAddress")]
    );
}

#[test]
fn apn_certificate_must_be_base64() {
    let err = create_config(Channel::Apn, json!({ "certificate": "not base64!" })).unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::InvalidFormat, "configuration.certificate")]
    );
    assert!(create_config(Channel::Apn, json!({ "certificate": "TUlJQw" })).is_ok());
}

// ---- generated keys ----

#[test]
fn direct_and_system_get_a_signing_key_pair_on_create() {
    for channel in [Channel::Direct, Channel::System] {
        let draft = create_config(channel, valid(channel).0).unwrap();
        let public = draft.configuration["publicSigningKey"].as_str().unwrap();
        let private = draft.configuration["privateSigningKey"].as_str().unwrap();
        let sig = keys::sign_b64(private, b"x").unwrap();
        assert!(keys::verify_b64(public, b"x", &sig));
        assert_eq!(public, public.to_ascii_uppercase());
    }
    let other = create_config(Channel::Line, valid(Channel::Line).0).unwrap();
    assert!(!other.configuration.contains_key("publicSigningKey"));
}

#[test]
fn we_chat_and_message_bird_get_a_64_hex_webhook_secret() {
    for channel in [Channel::WeChat, Channel::MessageBird] {
        let a = create_config(channel, valid(channel).0).unwrap();
        let b = create_config(channel, valid(channel).0).unwrap();
        let secret = a.configuration["webhookSecret"].as_str().unwrap();
        assert_eq!(secret.len(), 64);
        assert!(secret
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(
            a.configuration["webhookSecret"],
            b.configuration["webhookSecret"]
        );
    }
}

#[test]
fn email_gets_a_generated_incoming_address_which_is_its_inbound_id() {
    let draft = create_config(Channel::Email, json!({})).unwrap();
    let address = draft.configuration["incomingAddress"].as_str().unwrap();
    let (local, domain) = address.split_once('@').unwrap();
    assert_eq!(domain, EMAIL_INBOUND_DOMAIN);
    assert_eq!(local.len(), 32);
    assert_eq!(draft.inbound_id.as_deref(), Some(address));
}

#[test]
fn clients_cannot_choose_generated_keys() {
    let config = json!({ "integrationType": "Agent", "publicSigningKey": "AA", "PrivateSigningKey": "BB", "webhookSecret": 1 });
    let draft = create_config(Channel::Direct, config).unwrap();
    assert_ne!(draft.configuration["publicSigningKey"], "AA");
    assert_ne!(draft.configuration["privateSigningKey"], "BB");
    assert!(!draft.configuration.contains_key("webhookSecret"));

    let draft = create_config(
        Channel::Email,
        json!({ "incomingAddress": "me@example.com" }),
    )
    .unwrap();
    assert_ne!(draft.configuration["incomingAddress"], "me@example.com");
    let draft = create_config(
        Channel::WeChat,
        json!({ "appId": "a", "appSecret": "s", "webhookSecret": "mine" }),
    )
    .unwrap();
    assert_ne!(draft.configuration["webhookSecret"], "mine");
}

#[test]
fn incoming_address_is_only_ignored_where_it_is_generated() {
    let config = json!({ "appId": "a", "appSecret": "s", "incomingAddress": "x@y.io" });
    let err = create_config(Channel::WeChat, config).unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::Unsupported, "configuration.incomingAddress")]
    );
}

#[test]
fn regenerate_keys_is_accepted_on_every_channel_on_create_and_never_stored() {
    for channel in Channel::ALL {
        let (mut config, _) = valid(channel);
        config
            .as_object_mut()
            .unwrap()
            .insert("RegenerateKeys".into(), json!(true));
        let draft = create_config(channel, config).unwrap_or_else(|e| panic!("{channel}: {e}"));
        assert!(!draft
            .configuration
            .keys()
            .any(|k| k.eq_ignore_ascii_case("regenerateKeys")));
    }
}

#[test]
fn regenerate_keys_must_be_a_boolean() {
    let err = create_config(
        Channel::Line,
        json!({ "channelAccessToken": "a", "channelSecret": "b", "regenerateKeys": "yes" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::WrongType, "configuration.regenerateKeys")]
    );
}

// ---- Slack ----

#[test]
fn slack_code_and_nonce_ask_for_an_oauth_exchange_and_are_not_stored() {
    let draft = create_config(Channel::Slack, json!({ "Code": "abc", "nonce": "n.1" })).unwrap();
    assert_eq!(
        draft.slack_oauth,
        Some(SlackOAuth {
            code: "abc".into(),
            nonce: "n.1".into()
        })
    );
    assert!(draft.configuration.is_empty());
    assert_eq!(draft.inbound_id, None);
    assert_eq!(draft.integration_type, IntegrationType::Agent);
}

#[test]
fn apply_slack_oauth_stores_the_token_and_team_and_derives_the_inbound_id() {
    let mut draft = create_config(Channel::Slack, json!({ "code": "abc", "nonce": "n" })).unwrap();
    let grant = SlackGrant {
        bot_access_token: "xoxb-1".into(),
        team_id: "T017QM".into(),
        ..SlackGrant::default()
    };
    apply_slack_oauth(&mut draft, &grant);
    assert_eq!(
        draft.configuration,
        *json!({ "botAccessToken": "xoxb-1", "teamId": "T017QM" })
            .as_object()
            .unwrap()
    );
    assert_eq!(draft.inbound_id.as_deref(), Some("T017QM"));
    assert_eq!(draft.slack_oauth, None);
}

#[test]
fn apply_slack_oauth_keeps_the_user_token_and_channel_slack_granted() {
    let mut draft = create_config(Channel::Slack, json!({ "code": "abc", "nonce": "n" })).unwrap();
    let grant = SlackGrant {
        bot_access_token: "xoxb-1".into(),
        team_id: "T017QM".into(),
        app_access_token: Some("xoxp-9".into()),
        default_public_channel: Some("general".into()),
    };
    apply_slack_oauth(&mut draft, &grant);
    assert_eq!(
        Value::Object(draft.configuration),
        json!({ "botAccessToken": "xoxb-1", "teamId": "T017QM", "appAccessToken": "xoxp-9", "defaultPublicChannel": "general" })
    );
}

#[test]
fn slack_token_form_is_stored_as_given() {
    let config = json!({ "botAccessToken": "xoxb", "teamId": "T1", "botName": "Switchboard", "defaultPublicChannel": "general" });
    let draft = create_config(Channel::Slack, config.clone()).unwrap();
    assert_eq!(Value::Object(draft.configuration), config);
    assert_eq!(draft.slack_oauth, None);
    assert_eq!(draft.inbound_id.as_deref(), Some("T1"));
}

#[test]
fn slack_with_only_part_of_the_oauth_form_asks_for_the_rest_of_it() {
    let err = create_config(Channel::Slack, json!({ "code": "abc" })).unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::Required, "configuration.nonce")]
    );
}

#[test]
fn slack_with_any_token_form_key_asks_for_the_token_form_and_refuses_code_and_nonce() {
    let err = create_config(Channel::Slack, json!({ "botName": "b" })).unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::Required, "configuration.botAccessToken"),
            (ViolationKind::Required, "configuration.teamId")
        ]
    );
    let err = create_config(
        Channel::Slack,
        json!({ "code": "c", "nonce": "n", "botAccessToken": "x", "teamId": "T" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::Unsupported, "configuration.code"),
            (ViolationKind::Unsupported, "configuration.nonce")
        ]
    );
}

// ---- top-level fields ----

#[test]
fn channel_id_is_a_name_in_any_case_a_number_or_digits() {
    let config = valid(Channel::TwilioSms).0;
    for channel_id in [
        json!("TwilioSMS"),
        json!("twiliosms"),
        json!(102),
        json!("102"),
    ] {
        let draft = validate_create(
            &json!({ "channelId": channel_id, "name": "n", "configuration": config }),
        )
        .unwrap();
        assert_eq!(draft.channel, Channel::TwilioSms, "{channel_id}");
    }
    for channel in Channel::ALL {
        let body = json!({ "channelId": channel.number(), "name": "n", "configuration": valid(channel).0 });
        assert_eq!(validate_create(&body).unwrap().channel, channel);
    }
}

#[test]
fn unknown_channel_id_is_206_and_wrong_type_is_302() {
    for bad in [json!("Fax"), json!(2), json!(1.5), json!("")] {
        let err = validate_create(&json!({ "channelId": bad, "name": "n", "configuration": {} }))
            .unwrap_err();
        assert_eq!(
            pairs(&err),
            [(ViolationKind::OutOfRange, "channelId")],
            "{bad}"
        );
    }
    let err = validate_create(&json!({ "channelId": true, "name": "n", "configuration": {} }))
        .unwrap_err();
    assert_eq!(pairs(&err), [(ViolationKind::WrongType, "channelId")]);
}

#[test]
fn every_top_level_violation_is_reported_at_once() {
    let err = validate_create(&json!({ "name": "", "statusId": 1 })).unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::Required, "channelId"),
            (ViolationKind::OutOfRange, "name"),
            (ViolationKind::OutOfRange, "statusId"),
            (ViolationKind::Required, "configuration"),
        ]
    );
    let err = validate_create(
        &json!({ "channelId": "Fax", "name": 3, "statusId": "3000", "configuration": [] }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::OutOfRange, "channelId"),
            (ViolationKind::WrongType, "name"),
            (ViolationKind::WrongType, "statusId"),
            (ViolationKind::WrongType, "configuration"),
        ]
    );
    let err = validate_create(
        &json!({ "channelId": "Kik", "name": "   ", "configuration": { "apiKey": 1, "x": 1 } }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::OutOfRange, "name"),
            (ViolationKind::Required, "configuration.username"),
            (ViolationKind::WrongType, "configuration.apiKey"),
            (ViolationKind::Unsupported, "configuration.x"),
        ]
    );
}

#[test]
fn name_is_1_to_200_characters() {
    let config = valid(Channel::Viber).0;
    let ok = "é".repeat(200);
    assert!(
        validate_create(&json!({ "channelId": "Viber", "name": ok, "configuration": config }))
            .is_ok()
    );
    let err = validate_create(
        &json!({ "channelId": "Viber", "name": "é".repeat(201), "configuration": config }),
    )
    .unwrap_err();
    assert_eq!(pairs(&err), [(ViolationKind::OutOfRange, "name")]);
}

#[test]
fn status_defaults_to_active_and_takes_paused() {
    let config = valid(Channel::Viber).0;
    let default =
        validate_create(&json!({ "channelId": "Viber", "name": "n", "configuration": config }))
            .unwrap();
    assert_eq!(default.status, IntegrationStatus::Active);
    let draft = validate_create(
        &json!({ "channelId": "Viber", "name": "n", "statusId": 3002, "configuration": config }),
    )
    .unwrap();
    assert_eq!(draft.status, IntegrationStatus::Paused);
}

#[test]
fn a_body_that_is_not_an_object_is_one_invalid_body_violation() {
    for body in [json!([]), json!("x"), Value::Null] {
        let err = validate_create(&body).unwrap_err();
        assert_eq!(pairs(&err), [(ViolationKind::InvalidBody, "")]);
    }
    let current = create_stored(Channel::Viber, valid(Channel::Viber).0);
    assert_eq!(
        pairs(&validate_update(&json!(1), &current).unwrap_err()),
        [(ViolationKind::InvalidBody, "")]
    );
}

#[test]
fn unknown_top_level_keys_are_ignored() {
    let body = json!({ "channelId": "Viber", "name": "n", "configuration": valid(Channel::Viber).0, "color": "red" });
    assert!(validate_create(&body).is_ok());
}

// ---- inbound ids ----

#[test]
fn inbound_ids_follow_the_catalogue() {
    let cases = [
        (Channel::TwilioSms, Some("AC1fc1")),
        (Channel::Messenger, Some("1013889883")),
        (Channel::Telegram, Some("123456")),
        (Channel::Slack, Some("T5P19488N")),
        (Channel::WeChat, Some("wx42")),
        (Channel::Mailgun, Some("support@mg.example.com")),
        (Channel::MessageBird, Some("Switchboard")),
        (Channel::Direct, None),
        (Channel::System, None),
        (Channel::Line, None),
        (Channel::Kik, None),
        (Channel::WebChat, None),
        (Channel::Viber, None),
        (Channel::Twitter, None),
        (Channel::Apn, None),
        (Channel::Fcm, None),
    ];
    for (channel, expected) in cases {
        let draft = create_config(channel, valid(channel).0).unwrap();
        assert_eq!(draft.inbound_id.as_deref(), expected, "{channel}");
    }
    let messenger =
        create_config(Channel::Messenger, json!({ "pageAccessToken": "EAAF" })).unwrap();
    assert_eq!(messenger.inbound_id, None);
}

#[test]
fn telegram_inbound_id_is_the_digits_before_the_colon_or_none() {
    for (token, expected) in [
        ("123:abc", Some("123")),
        ("abc:123", None),
        ("123", None),
        (":abc", None),
        ("12a:x", None),
    ] {
        let draft = create_config(Channel::Telegram, json!({ "token": token })).unwrap();
        assert_eq!(draft.inbound_id.as_deref(), expected, "{token}");
    }
}

// ---- updates ----

#[test]
fn update_without_fields_keeps_everything() {
    let current = create_stored(
        Channel::Direct,
        json!({ "integrationType": "Bot", "webhookUrl": "https://x.io" }),
    );
    let outcome = validate_update(&json!({}), &current).unwrap();
    assert_eq!(outcome.warning, None);
    assert_eq!(outcome.draft.name, current.name);
    assert_eq!(outcome.draft.status, current.status);
    assert_eq!(outcome.draft.configuration, current.configuration);
    assert_eq!(outcome.draft.integration_type, IntegrationType::Bot);
}

#[test]
fn update_changes_name_and_status_only_when_given() {
    let current = create_stored(Channel::Viber, valid(Channel::Viber).0);
    let outcome = validate_update(&json!({ "statusId": 3002 }), &current).unwrap();
    assert_eq!(outcome.draft.status, IntegrationStatus::Paused);
    assert_eq!(outcome.draft.name, "Test");
    let outcome = validate_update(&json!({ "name": "Renamed" }), &current).unwrap();
    assert_eq!(outcome.draft.name, "Renamed");
    assert_eq!(outcome.draft.status, IntegrationStatus::Active);
    let err = validate_update(&json!({ "name": "", "statusId": 3001 }), &current).unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::OutOfRange, "name"),
            (ViolationKind::OutOfRange, "statusId")
        ]
    );
}

#[test]
fn update_configuration_replaces_the_old_one_whole() {
    let current = create_stored(
        Channel::Direct,
        json!({ "integrationType": "Agent", "echo": true, "webhookUrl": "https://x.io", "start": [] }),
    );
    let outcome = validate_update(
        &json!({ "configuration": { "integrationType": "Agent" } }),
        &current,
    )
    .unwrap();
    let config = &outcome.draft.configuration;
    assert_eq!(config["echo"], false, "back to the default");
    assert!(!config.contains_key("webhookUrl"));
    assert!(!config.contains_key("start"));

    let err = validate_update(&json!({ "configuration": { "echo": true } }), &current).unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::Required, "configuration.integrationType")]
    );
}

#[test]
fn update_of_direct_integration_type_changes_the_derived_type() {
    let current = create_stored(Channel::Direct, json!({ "integrationType": "Agent" }));
    let outcome = validate_update(
        &json!({ "configuration": { "IntegrationType": "bot" } }),
        &current,
    )
    .unwrap();
    assert_eq!(outcome.draft.integration_type, IntegrationType::Bot);
    assert_eq!(outcome.draft.configuration["integrationType"], "Bot");
}

#[test]
fn update_keeps_signing_keys_unless_regenerate_keys_is_true() {
    for channel in [Channel::Direct, Channel::System] {
        let current = create_stored(channel, valid(channel).0);
        let keys_of = |c: &Map<String, Value>| {
            (
                c["publicSigningKey"].clone(),
                c["privateSigningKey"].clone(),
            )
        };
        let old = keys_of(&current.configuration);

        let kept =
            validate_update(&json!({ "configuration": valid(channel).0 }), &current).unwrap();
        assert_eq!(keys_of(&kept.draft.configuration), old);

        let mut config = valid(channel).0;
        config["regenerateKeys"] = json!(false);
        let kept = validate_update(&json!({ "configuration": config }), &current).unwrap();
        assert_eq!(keys_of(&kept.draft.configuration), old);

        config["regenerateKeys"] = json!(true);
        let renewed = validate_update(&json!({ "configuration": config }), &current).unwrap();
        let new = keys_of(&renewed.draft.configuration);
        assert_ne!(new.0, old.0);
        assert_ne!(new.1, old.1);
        assert!(!renewed.draft.configuration.contains_key("regenerateKeys"));
    }
}

#[test]
fn update_keeps_webhook_secret_and_generated_incoming_address() {
    for channel in [Channel::WeChat, Channel::MessageBird, Channel::Email] {
        let current = create_stored(channel, valid(channel).0);
        let mut config = valid(channel).0;
        for key in generated_keys(channel) {
            config[*key] = json!("chosen@example.com");
        }
        config["regenerateKeys"] = json!(true);
        let outcome = validate_update(&json!({ "configuration": config }), &current).unwrap();
        for key in generated_keys(channel) {
            assert_eq!(
                outcome.draft.configuration[*key], current.configuration[*key],
                "{channel}.{key}"
            );
        }
        assert_eq!(outcome.draft.inbound_id, current.inbound_id, "{channel}");
    }
}

#[test]
fn update_re_derives_the_inbound_id() {
    let current = create_stored(Channel::Telegram, json!({ "token": "111:a" }));
    let outcome =
        validate_update(&json!({ "configuration": { "token": "222:b" } }), &current).unwrap();
    assert_eq!(outcome.draft.inbound_id.as_deref(), Some("222"));
}

#[test]
fn configuration_updates_of_twilio_messenger_and_slack_are_ignored_with_a_warning() {
    for channel in [Channel::TwilioSms, Channel::Messenger, Channel::Slack] {
        let current = create_stored(channel, valid(channel).0);
        let body =
            json!({ "name": "Renamed", "configuration": { "anything": [1, 2], "accountSid": 5 } });
        let outcome = validate_update(&body, &current).unwrap();
        assert_eq!(
            outcome.draft.configuration, current.configuration,
            "{channel}"
        );
        assert_eq!(outcome.draft.inbound_id, current.inbound_id, "{channel}");
        assert_eq!(outcome.draft.name, "Renamed");
        assert_eq!(
            outcome.warning.as_deref(),
            Some(format!(
                "299 - \"Configuration updates are ignored for {}; delete and recreate the integration to change it.\"",
                channel.name()
            ))
            .as_deref()
        );
        let untouched = validate_update(&json!({ "name": "Renamed" }), &current).unwrap();
        assert_eq!(untouched.warning, None);
    }
}

#[test]
fn update_cannot_change_the_channel() {
    let current = create_stored(Channel::TwilioSms, valid(Channel::TwilioSms).0);
    for same in [
        json!("TwilioSMS"),
        json!("twiliosms"),
        json!(102),
        json!("102"),
    ] {
        assert!(
            validate_update(&json!({ "channelId": same }), &current).is_ok(),
            "{same}"
        );
    }
    for other in [json!("Line"), json!(103)] {
        let err = validate_update(&json!({ "channelId": other }), &current).unwrap_err();
        assert_eq!(pairs(&err), [(ViolationKind::OutOfRange, "channelId")]);
        assert!(
            err.0[0].message.contains("cannot change"),
            "{}",
            err.0[0].message
        );
    }
    let err = validate_update(&json!({ "channelId": "Fax" }), &current).unwrap_err();
    assert_eq!(pairs(&err), [(ViolationKind::OutOfRange, "channelId")]);
}

#[test]
fn update_ignores_read_only_top_level_fields() {
    let current = create_stored(Channel::Direct, json!({ "integrationType": "Agent" }));
    let body = json!({
        "integrationId": "not-a-uuid", "hubId": 5, "integrationTypeId": "System",
        "inboundId": "x", "created": false, "modified": [],
    });
    let outcome = validate_update(&body, &current).unwrap();
    assert_eq!(outcome.draft.integration_type, IntegrationType::Agent);
    assert_eq!(outcome.draft.inbound_id, None);
}

#[test]
fn a_get_body_put_back_changes_nothing_on_every_channel() {
    for channel in Channel::ALL {
        let current = create_stored(channel, valid(channel).0);
        let outcome = validate_update(&get_body(&current), &current)
            .unwrap_or_else(|e| panic!("{channel}: {e}"));
        let draft = outcome.draft;
        assert_eq!(draft.name, current.name, "{channel}");
        assert_eq!(draft.channel, current.channel);
        assert_eq!(draft.status, current.status);
        assert_eq!(
            draft.integration_type, current.integration_type,
            "{channel}"
        );
        assert_eq!(draft.inbound_id, current.inbound_id, "{channel}");
        assert_eq!(draft.configuration, current.configuration, "{channel}");
        assert_eq!(
            outcome.warning.is_some(),
            channel.ignores_config_updates(),
            "{channel}"
        );
    }
}

#[test]
fn update_reports_every_violation_at_once() {
    let current = create_stored(Channel::System, valid(Channel::System).0);
    let body = json!({
        "channelId": "Direct", "name": 1, "statusId": 1.5,
        "configuration": { "webhookUrl": "ftp://x", "events": [], "extra": 1, "regenerateKeys": 1 },
    });
    let err = validate_update(&body, &current).unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::OutOfRange, "channelId"),
            (ViolationKind::WrongType, "name"),
            (ViolationKind::WrongType, "statusId"),
            (ViolationKind::WrongType, "configuration.regenerateKeys"),
            (ViolationKind::InvalidFormat, "configuration.webhookUrl"),
            (ViolationKind::Empty, "configuration.events"),
            (ViolationKind::Unsupported, "configuration.extra"),
        ]
    );
}

// ---- properties ----

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9:@./*_ -]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key_strategy(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys that hit the catalogue (in random case) as well as unknown ones.
fn key_strategy() -> impl Strategy<Value = String> {
    let known: Vec<&'static str> = Channel::ALL
        .iter()
        .flat_map(|c| stored_keys(*c))
        .chain(["code", "nonce", "regenerateKeys"])
        .collect();
    prop_oneof![
        (prop::sample::select(known), any::<u64>()).prop_map(|(k, p)| flip_case(k, p)),
        "[a-zA-Z]{1,8}",
    ]
}

fn any_channel() -> impl Strategy<Value = Channel> {
    prop::sample::select(Channel::ALL.to_vec())
}

proptest! {
    #[test]
    fn random_key_case_always_validates_to_the_same_normalized_configuration(
        channel in any_channel(),
        pattern in any::<u64>(),
    ) {
        let (config, _) = valid(channel);
        let plain = create_config(channel, config.clone()).unwrap();
        let recased = create_config(channel, recase(&config, pattern)).unwrap();
        prop_assert_eq!(
            without_generated(channel, recased.configuration),
            without_generated(channel, plain.configuration)
        );
        if channel != Channel::Email {
            // Email's inbound id is its generated address, new on every create.
            prop_assert_eq!(recased.inbound_id, plain.inbound_id);
        }
        prop_assert_eq!(recased.integration_type, plain.integration_type);
    }

    #[test]
    fn arbitrary_configurations_never_panic_and_violate_only_configuration_properties(
        channel in any_channel(),
        config in any_json(),
    ) {
        match create_config(channel, config.clone()) {
            Ok(draft) => {
                prop_assert_eq!(draft.channel, channel);
                for key in draft.configuration.keys() {
                    prop_assert!(
                        stored_keys(channel).any(|k| k == key),
                        "{} stored an uncatalogued key {}", channel, key
                    );
                }
            }
            Err(err) => {
                prop_assert!(!err.is_empty());
                for v in &err.0 {
                    prop_assert!(
                        v.property == "configuration" || v.property.starts_with("configuration."),
                        "{:?}", v
                    );
                    prop_assert!(v.message.contains(&format!("'{}'", v.property)), "{:?}", v);
                }
            }
        }
    }

    #[test]
    fn arbitrary_update_bodies_never_panic(channel in any_channel(), body in any_json()) {
        let current = create_stored(channel, valid(channel).0);
        if let Ok(outcome) = validate_update(&body, &current) {
            prop_assert_eq!(outcome.draft.channel, channel);
            if channel.ignores_config_updates() {
                prop_assert_eq!(outcome.draft.configuration, current.configuration);
            }
        }
    }

    #[test]
    fn arbitrary_values_of_valid_keys_give_ok_or_violations_on_that_key(
        channel in any_channel(),
        index in any::<prop::sample::Index>(),
        value in any_json(),
    ) {
        let (mut config, _) = valid(channel);
        let specs = catalogue(channel);
        let key = specs[index.index(specs.len())].name;
        config[key] = value;
        if let Err(err) = create_config(channel, config) {
            let property = format!("configuration.{key}");
            for v in &err.0 {
                // Mailgun's address is checked against its domain, so either may be named.
                let on_key = v.property == property
                    || v.property.starts_with(&format!("{property}["))
                    || v.property.starts_with(&format!("{property}."))
                    || (channel == Channel::Mailgun && v.property == "configuration.incomingAddress")
                    || (channel == Channel::Slack && v.property.starts_with("configuration."));
                prop_assert!(on_key, "{:?} for {}", v, property);
            }
        }
    }
}

#[test]
fn configuration_strings_and_start_have_maxima() {
    use crate::limits::{MAX_CONFIG_TEXT_LEN, MAX_START_BYTES};
    let telegram = |n: usize| create_config(Channel::Telegram, json!({ "token": "t".repeat(n) }));
    assert!(telegram(MAX_CONFIG_TEXT_LEN).is_ok());
    let err = telegram(MAX_CONFIG_TEXT_LEN + 1).unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::OutOfRange, "configuration.token")]
    );
    assert_eq!(
        err.0[0].message,
        "Property 'configuration.token' must be at most 4096 characters long."
    );
    // `[{"type":"text","text":"…"}]` is 27 bytes besides the text.
    let start = |n: usize| {
        create_config(
            Channel::Direct,
            json!({ "integrationType": "Customer",
                    "start": [{ "type": "text", "text": "x".repeat(n) }] }),
        )
    };
    assert!(start(MAX_START_BYTES - 27).is_ok());
    assert_eq!(
        pairs(&start(MAX_START_BYTES - 26).unwrap_err()),
        [(ViolationKind::OutOfRange, "configuration.start")]
    );
}

// ---- System format smooch (SPEC 8.7) ----

#[test]
fn system_format_defaults_to_switchboard_and_refuses_smooch_keys() {
    let draft = create_config(Channel::System, valid(Channel::System).0).unwrap();
    assert_eq!(draft.configuration["format"], "switchboard");
    assert!(!draft.configuration.contains_key(WEBHOOK_SECRET));
    let err = create_config(
        Channel::System,
        json!({ "webhookUrl": "https://x.io", "events": ["message"], "triggers": ["message"], "includeClient": true }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::Unsupported, "configuration.triggers"),
            (ViolationKind::Unsupported, "configuration.includeClient"),
        ]
    );
    let err = create_config(
        Channel::System,
        json!({ "webhookUrl": "https://x.io", "format": "Smooch" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::OutOfRange, "configuration.format")]
    );
}

#[test]
fn smooch_format_derives_events_and_generates_a_secret_that_never_changes() {
    let draft = create_config(
        Channel::System,
        json!({ "webhookUrl": "https://x.io", "format": "smooch",
                "triggers": ["typing:appUser", "message:appMaker"], "events": ["event"],
                "webhookSecret": "chosen" }),
    )
    .unwrap();
    let c = &draft.configuration;
    assert_eq!(
        c["events"],
        json!(["message:agent", "message:bot", "event:customer"])
    );
    assert_eq!(c["triggers"], json!(["typing:appUser", "message:appMaker"]));
    assert_eq!(c["includeClient"], false);
    assert_eq!(c["includeFullAppUser"], false);
    let secret = c[WEBHOOK_SECRET].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 40);
    assert!(secret
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));

    let current = stored(draft);
    let out = validate_update(
        &json!({ "configuration": { "webhookUrl": "https://y.io", "format": "smooch",
                 "triggers": ["client:add"], "includeFullAppUser": true, "webhookSecret": "x" } }),
        &current,
    )
    .unwrap();
    let c = &out.draft.configuration;
    assert_eq!(c[WEBHOOK_SECRET], secret.as_str());
    assert_eq!(c["events"], json!([]));
    assert_eq!(c["includeFullAppUser"], true);

    let err = create_config(
        Channel::System,
        json!({ "webhookUrl": "https://x.io", "format": "smooch" }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::Required, "configuration.triggers")]
    );
    let err = create_config(
        Channel::System,
        json!({ "webhookUrl": "https://x.io", "format": "smooch", "triggers": ["message", "message"] }),
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [(ViolationKind::OutOfRange, "configuration.triggers[1]")]
    );
}

#[test]
fn shown_keys_hide_the_smooch_keys_of_a_switchboard_system() {
    let draft = create_config(Channel::System, valid(Channel::System).0).unwrap();
    let shown: Vec<_> =
        crate::channel_config::shown_keys(Channel::System, &draft.configuration).collect();
    assert_eq!(
        shown,
        [
            "webhookUrl",
            "events",
            "format",
            "publicSigningKey",
            "privateSigningKey"
        ]
    );
    let draft = create_config(
        Channel::System,
        json!({ "webhookUrl": "https://x.io", "format": "smooch", "triggers": ["*"] }),
    )
    .unwrap();
    assert_eq!(
        crate::channel_config::shown_keys(Channel::System, &draft.configuration).count(),
        stored_keys(Channel::System).count()
    );
}
