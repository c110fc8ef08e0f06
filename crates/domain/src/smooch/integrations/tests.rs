use serde_json::{json, Map, Value};

use super::*;
use crate::channel::IntegrationType;
use crate::error::ViolationKind;
use crate::ids::{HubId, TenantId};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn stored(draft: IntegrationDraft, id: IntegrationId) -> Integration {
    Integration {
        id,
        tenant_id: TenantId::new(),
        hub_id: HubId::new(),
        name: draft.name,
        channel: draft.channel,
        integration_type: draft.integration_type,
        inbound_id: draft.inbound_id,
        status: draft.status,
        configuration: draft.configuration,
        created: 0,
        modified: 0,
    }
}

fn create(body: Value) -> Result<(Integration, Value), Violations> {
    let id = IntegrationId::new();
    let (_, draft) = draft_for_create(&obj(body), id)?;
    let integration = stored(draft, id);
    let rendered = render(&integration).expect("a table channel");
    Ok((integration, rendered))
}

fn properties(v: &Violations) -> Vec<(&str, ViolationKind)> {
    v.0.iter().map(|x| (x.property.as_str(), x.kind)).collect()
}

#[test]
fn the_table_maps_each_type_to_one_channel_and_back() {
    assert_eq!(TYPES.len(), 12);
    for t in TYPES {
        assert_eq!(by_name(t.name), Some(t));
        assert_eq!(for_channel(t.channel), Some(t));
        // Every field lands on a key of the channel's catalogue.
        for f in t.fields {
            assert!(
                crate::channel_config::keys(t.channel)
                    .iter()
                    .any(|k| k.name == f.config),
                "{}.{}",
                t.name,
                f.smooch
            );
        }
    }
    for c in [
        Channel::Direct,
        Channel::System,
        Channel::WebChat,
        Channel::Kik,
        Channel::WhatsApp,
        Channel::Slack,
    ] {
        assert_eq!(for_channel(c), None, "{c}");
    }
    assert_eq!(by_name("Twilio"), None);
    assert_eq!(
        by_name("frontendEmail").map(|t| t.channel),
        Some(Channel::Email)
    );
}

#[test]
fn types_filter_takes_one_name_or_a_list_and_unsupported_types_match_nothing() {
    assert_eq!(parse_types("twilio"), Ok(vec![Channel::TwilioSms]));
    assert_eq!(
        parse_types("twilio,line, twilio"),
        Ok(vec![Channel::TwilioSms, Channel::Line])
    );
    assert_eq!(parse_types("web,ios"), Ok(vec![]));
    assert_eq!(
        parse_types("slack,fcm"),
        Ok(vec![Channel::Fcm]),
        "slack is 8.10's, not the table's"
    );
    for bad in ["fax", "", "twilio,", "Twilio", "TwilioSMS"] {
        let err = parse_types(bad).expect_err(bad);
        assert_eq!(err.property, "types");
        assert_eq!(err.kind, ViolationKind::OutOfRange);
    }
}

#[test]
fn twilio_renames_phone_number_sid_and_answers_public_fields_only() {
    let (i, out) = create(json!({
        "type": "twilio", "accountSid": "AC1", "authToken": "secret", "phoneNumberSid": "PN1",
        "displayName": "SMS"
    }))
    .expect("valid");
    assert_eq!(i.channel, Channel::TwilioSms);
    assert_eq!(i.name, "SMS");
    assert_eq!(i.configuration["numberSid"], "PN1");
    assert_eq!(i.configuration["authToken"], "secret");
    assert_eq!(i.inbound_id.as_deref(), Some("AC1"));
    assert_eq!(
        out,
        json!({ "_id": i.id.to_string(), "type": "twilio", "displayName": "SMS",
                "status": "active", "accountSid": "AC1", "phoneNumberSid": "PN1" })
    );
}

#[test]
fn display_name_defaults_to_type_and_id() {
    let (i, out) = create(json!({ "type": "telegram", "token": "123:abc" })).expect("valid");
    assert_eq!(i.name, format!("telegram {}", i.id));
    assert_eq!(out["displayName"], i.name.as_str());
    // The generated verify token is a secret of Telegram: not public there.
    assert!(i.configuration.contains_key("webhookSecret"));
    assert!(out.get("webhookSecret").is_none());
    assert!(out.get("token").is_none());
}

#[test]
fn generated_webhook_secret_is_public_for_wechat_and_messagebird() {
    let (i, out) = create(json!({
        "type": "wechat", "appId": "wx1", "appSecret": "s", "displayName": "W"
    }))
    .expect("valid");
    let secret = i.configuration["webhookSecret"]
        .as_str()
        .expect("generated");
    assert_eq!(out["webhookSecret"], secret);
    assert_eq!(out["appId"], "wx1");
    assert!(out.get("appSecret").is_none());

    let (i, out) = create(json!({
        "type": "messagebird", "accessKey": "k", "originator": "Shop", "signingKey": "sk"
    }))
    .expect("valid");
    assert_eq!(i.configuration["signingKey"], "sk");
    assert_eq!(out["originator"], "Shop");
    assert_eq!(out["webhookSecret"], i.configuration["webhookSecret"]);
    assert!(out.get("signingKey").is_none() && out.get("accessKey").is_none());
}

#[test]
fn frontend_email_answers_the_generated_address_and_its_local_part() {
    let (i, out) =
        create(json!({ "type": "frontendEmail", "fromAddress": "a@shop.example" })).expect("valid");
    let address = i.configuration["incomingAddress"]
        .as_str()
        .expect("generated");
    let (local, _) = address.split_once('@').expect("an address");
    assert_eq!(out["smoochAddress"], address);
    assert_eq!(out["shortId"], local);
    assert_eq!(out["fromAddress"], "a@shop.example");

    let (_, out) = create(json!({ "type": "frontendEmail" })).expect("no field is required");
    assert!(out.get("fromAddress").is_none());
    assert!(out["smoochAddress"].is_string());
}

#[test]
fn apn_takes_booleans_and_answers_them_false_by_default() {
    let (i, out) = create(json!({ "type": "apn", "certificate": "TUlJQw==", "password": "pw" }))
        .expect("valid");
    assert_eq!(i.channel, Channel::Apn);
    assert_eq!(out["autoUpdateBadge"], false);
    assert_eq!(out["production"], false);
    assert!(out.get("certificate").is_none() && out.get("password").is_none());

    let (_, out) = create(json!({ "type": "apn", "certificate": "TUlJQw==", "production": true }))
        .expect("valid");
    assert_eq!(out["production"], true);

    let err = create(json!({ "type": "apn", "certificate": "TUlJQw==", "production": "yes" }))
        .expect_err("a string flag");
    assert_eq!(properties(&err), [("production", ViolationKind::WrongType)]);
}

#[test]
fn each_type_creates_with_its_fields() {
    let bodies = [
        json!({ "type": "messenger", "pageAccessToken": "t", "appId": "1", "appSecret": "s" }),
        json!({ "type": "line", "channelAccessToken": "t", "channelSecret": "s" }),
        json!({ "type": "viber", "token": "t" }),
        json!({ "type": "twitter", "consumerKey": "ck", "consumerSecret": "cs",
                "accessTokenKey": "ak", "accessTokenSecret": "as", "envName": "prod" }),
        json!({ "type": "mailgun", "apiKey": "k", "domain": "mg.example.com",
                "incomingAddress": "in@mg.example.com" }),
        json!({ "type": "fcm", "serverKey": "k", "senderId": "42" }),
    ];
    let secrets = [
        "pageAccessToken",
        "appSecret",
        "channelAccessToken",
        "channelSecret",
        "token",
        "consumerSecret",
        "accessTokenSecret",
        "apiKey",
        "serverKey",
    ];
    for body in bodies {
        let (i, out) = create(body.clone()).unwrap_or_else(|e| panic!("{body}: {e:?}"));
        assert_eq!(out["type"], body["type"]);
        for secret in secrets {
            assert!(out.get(secret).is_none(), "{body}: {secret}");
        }
        assert_eq!(i.status, IntegrationStatus::Active);
    }
    let (_, out) = create(
        json!({ "type": "twitter", "consumerKey": "ck", "consumerSecret": "cs",
        "accessTokenKey": "ak", "accessTokenSecret": "as" }),
    )
    .expect("envName is optional");
    assert_eq!(out["consumerKey"], "ck");
    assert_eq!(out["accessTokenKey"], "ak");
    assert!(out.get("envName").is_none());
}

#[test]
fn violations_name_the_smooch_fields() {
    let err = create(json!({ "type": "twilio", "accountSid": "AC1" })).expect_err("missing");
    let mut props = properties(&err);
    props.sort_by_key(|(p, _)| *p);
    assert_eq!(
        props,
        [
            ("authToken", ViolationKind::Required),
            ("phoneNumberSid", ViolationKind::Required)
        ]
    );
    assert!(err
        .0
        .iter()
        .any(|v| v.message == "Property 'phoneNumberSid' is required."));

    let err = create(json!({ "type": "twilio", "accountSid": 5, "authToken": "a",
        "phoneNumberSid": "p", "displayName": 3 }))
    .expect_err("wrong types");
    let mut props = properties(&err);
    props.sort_by_key(|(p, _)| *p);
    assert_eq!(
        props,
        [
            ("accountSid", ViolationKind::WrongType),
            ("displayName", ViolationKind::WrongType)
        ]
    );

    let err = create(json!({ "type": "viber", "token": "t", "displayName": "" }))
        .expect_err("empty name");
    assert_eq!(
        properties(&err),
        [("displayName", ViolationKind::OutOfRange)]
    );
    assert!(err.0[0].message.starts_with("Property 'displayName' "));

    let err = create(json!({ "type": "viber", "token": "t", "pageId": "x" }))
        .expect_err("another type's field");
    assert_eq!(properties(&err), [("pageId", ViolationKind::Unsupported)]);
}

#[test]
fn type_is_required_known_and_supported() {
    let id = IntegrationId::new();
    for (body, kind) in [
        (json!({}), ViolationKind::Required),
        (json!({ "type": 3 }), ViolationKind::WrongType),
        (json!({ "type": "web" }), ViolationKind::OutOfRange),
        (json!({ "type": "whatsapp" }), ViolationKind::OutOfRange),
        (json!({ "type": "fax" }), ViolationKind::OutOfRange),
    ] {
        let err = draft_for_create(&obj(body.clone()), id).expect_err("bad type");
        assert_eq!(properties(&err), [("type", kind)], "{body}");
    }
    let err = draft_for_create(&obj(json!({ "type": "web" })), id).expect_err("8.10");
    assert!(err.0[0].message.contains("not supported"), "{:?}", err.0[0]);
}

#[test]
fn ignored_fields_are_dropped() {
    let (i, _) = create(json!({
        "type": "line", "channelAccessToken": "t", "channelSecret": "s", "channelId": "c",
        "qrCodeUrl": "https://x", "serviceCode": "1", "switcherSecret": "z"
    }))
    .expect("ignored, not refused");
    assert_eq!(
        i.configuration
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["channelAccessToken", "channelSecret"]
    );
    assert_eq!(
        by_name("line").map(|t| t.allowed_fields()),
        Some(vec![
            "type",
            "displayName",
            "channelAccessToken",
            "channelSecret"
        ])
    );
}

#[test]
fn update_merges_given_fields_and_keeps_the_rest() {
    let (current, _) = create(json!({
        "type": "wechat", "appId": "wx1", "appSecret": "s", "displayName": "W"
    }))
    .expect("valid");
    let secret = current.configuration["webhookSecret"].clone();
    let outcome = update_outcome(
        &obj(json!({ "type": "wechat", "appSecret": "s2" })),
        &current,
    )
    .expect("a table channel")
    .expect("valid");
    assert_eq!(outcome.warning, None);
    let c = &outcome.draft.configuration;
    assert_eq!(c["appId"], "wx1");
    assert_eq!(c["appSecret"], "s2");
    assert_eq!(c["webhookSecret"], secret, "generated keys are kept");
    assert_eq!(outcome.draft.name, "W");

    let outcome = update_outcome(&obj(json!({ "displayName": "W2" })), &current)
        .expect("a table channel")
        .expect("valid");
    assert_eq!(outcome.draft.name, "W2");
    assert_eq!(outcome.draft.configuration, current.configuration);
}

#[test]
fn update_refuses_a_type_change_and_bad_fields() {
    let (current, _) = create(json!({ "type": "viber", "token": "t" })).expect("valid");
    let err = update_outcome(&obj(json!({ "type": "line" })), &current)
        .expect("a table channel")
        .expect_err("type change");
    assert_eq!(properties(&err), [("type", ViolationKind::OutOfRange)]);
    let err = update_outcome(&obj(json!({ "token": "" })), &current)
        .expect("a table channel")
        .expect_err("blank token");
    assert_eq!(properties(&err), [("token", ViolationKind::OutOfRange)]);
}

#[test]
fn twilio_and_messenger_configuration_changes_are_ignored_with_a_warning() {
    let (current, _) = create(json!({
        "type": "twilio", "accountSid": "AC1", "authToken": "a", "phoneNumberSid": "PN1"
    }))
    .expect("valid");
    let outcome = update_outcome(&obj(json!({ "phoneNumberSid": "PN2" })), &current)
        .expect("a table channel")
        .expect("valid");
    assert_eq!(
        outcome.warning,
        Some(crate::integration::ignored_update_warning(
            Channel::TwilioSms
        ))
    );
    assert_eq!(outcome.draft.configuration["numberSid"], "PN1");

    let outcome = update_outcome(&obj(json!({ "displayName": "x" })), &current)
        .expect("a table channel")
        .expect("valid");
    assert_eq!(outcome.warning, None, "no field, no warning");
}

#[test]
fn channels_outside_the_table_are_not_rendered_or_updated() {
    let direct = integration::validate_create(&json!({
        "channelId": "Direct", "name": "d", "configuration": { "integrationType": "Agent" }
    }))
    .expect("valid");
    assert_eq!(direct.integration_type, IntegrationType::Agent);
    let direct = stored(direct, IntegrationId::new());
    assert_eq!(render(&direct), None);
    assert!(update_outcome(&Map::new(), &direct).is_none());
}

#[test]
fn paused_is_inactive() {
    let (mut i, _) = create(json!({ "type": "viber", "token": "t" })).expect("valid");
    i.status = IntegrationStatus::Paused;
    assert_eq!(render(&i).expect("rendered")["status"], "inactive");
}
