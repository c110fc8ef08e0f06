//! Bounded sizes (issue 15): every free-text string has a maximum, a conversation's
//! `properties` have caps checked on what would be stored, and one answer of the activities
//! list is bounded by count and bytes, cut between events, with a `Link` to the rest. A value
//! past a limit is 400/206 naming the limit; a value exactly at it is accepted.

use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use switchboard_domain::limits;

use crate::support::{assert_error, backends, TestServer};

/// `n` copies of a two-byte character: lengths count characters, not bytes.
fn chars(n: usize) -> String {
    "é".repeat(n)
}

fn description(body: &Value) -> &str {
    body["errors"][0]["description"]
        .as_str()
        .unwrap_or_default()
}

/// Asserts one 400/206 whose description is `Property '<property>' <why>.`.
fn assert_too_long(status: StatusCode, body: &Value, prefix: &str, property: &str, max: usize) {
    assert_error(status, body, 400, prefix, &[206]);
    assert_eq!(
        description(body),
        format!(
            "Property '{property}' must be at most {max} characters long. (code: {prefix}000206)"
        )
    );
}

#[tokio::test]
async fn a_million_character_hub_description_is_refused_and_one_at_the_cap_accepted() {
    for backend in backends("a_million_character_hub_description_is_refused") {
        let s = TestServer::start_on(backend).await;
        let t = &s.a.portal;
        let huge = json!({ "name": "huge", "description": "x".repeat(1_000_000) });
        let (st, b) = s.post("/api/v1/hubs", t, huge).await;
        assert_too_long(st, &b, "PRT", "description", limits::MAX_DESCRIPTION_LEN);

        let at_cap = json!({ "name": "fits", "description": chars(limits::MAX_DESCRIPTION_LEN) });
        let (st, b) = s.post("/api/v1/hubs", t, at_cap).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let hub = b["hubId"].as_str().unwrap().to_owned();
        assert_eq!(
            b["description"].as_str().unwrap().chars().count(),
            limits::MAX_DESCRIPTION_LEN
        );

        // An update is held to the same limit, and a refused one changes nothing.
        let over = json!({ "description": chars(limits::MAX_DESCRIPTION_LEN + 1) });
        let (st, b) = s.put(&format!("/api/v1/hubs/{hub}"), t, over).await;
        assert_too_long(st, &b, "PRT", "description", limits::MAX_DESCRIPTION_LEN);
        let (st, b) = s.get(&format!("/api/v1/hubs/{hub}"), t).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["description"], chars(limits::MAX_DESCRIPTION_LEN));
        s.stop().await;
    }
}

#[tokio::test]
async fn integration_names_and_configuration_strings_have_maxima() {
    let s = TestServer::start().await;
    let t = &s.a.portal;
    let hub = s.hub(t, "h").await;
    let path = format!("/api/v1/integrations/hubs/{hub}");
    let direct = |name: String, configuration: Value| json!({ "name": name, "channelId": "Direct", "configuration": configuration });
    let customer = json!({ "integrationType": "Customer" });
    let url = |n: usize| {
        let head = "https://example.com/";
        format!("{head}{}", "a".repeat(n - head.len()))
    };
    // Each: a body past one limit, the property and the limit; then the same at the limit.
    let cases = [
        (
            direct(chars(limits::MAX_NAME_LEN + 1), customer.clone()),
            direct(chars(limits::MAX_NAME_LEN), customer.clone()),
            "name",
            limits::MAX_NAME_LEN,
        ),
        (
            direct(
                "hook".into(),
                json!({ "integrationType": "Bot", "webhookUrl": url(limits::MAX_URL_LEN + 1) }),
            ),
            direct(
                "hook".into(),
                json!({ "integrationType": "Bot", "webhookUrl": url(limits::MAX_URL_LEN) }),
            ),
            "configuration.webhookUrl",
            limits::MAX_URL_LEN,
        ),
        (
            json!({ "name": "tg", "channelId": "Telegram",
                    "configuration": { "token": chars(limits::MAX_CONFIG_TEXT_LEN + 1) } }),
            json!({ "name": "tg", "channelId": "Telegram",
                    "configuration": { "token": chars(limits::MAX_CONFIG_TEXT_LEN) } }),
            "configuration.token",
            limits::MAX_CONFIG_TEXT_LEN,
        ),
    ];
    for (over, at, property, max) in cases {
        let (st, b) = s.post(&path, t, over).await;
        if property == "name" {
            // Names keep their message, which gives the lower bound too.
            assert_error(st, &b, 400, "PRT", &[206]);
            assert_eq!(
                description(&b),
                "Property 'name' must be 1 to 200 characters long and not blank. (code: PRT000206)"
            );
        } else {
            assert_too_long(st, &b, "PRT", property, max);
        }
        let (st, b) = s.post(&path, t, at).await;
        assert_eq!(st, StatusCode::OK, "{property}: {b}");
    }
    s.stop().await;
}

/// A hub with a Customer integration and `bots` Bot integrations; answers an open
/// conversation's id.
async fn conversation_with_bots(s: &TestServer, bots: usize) -> (String, String) {
    let hub = s.hub(&s.a.portal, "h").await;
    let customer = s
        .direct(&s.a.portal, &hub, "customers", "Customer", json!({}))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..bots {
        s.direct(&s.a.portal, &hub, &format!("bot{i}"), "Bot", json!({}))
            .await;
    }
    let c = s.establish(&s.a.engine, &customer, "visitor").await;
    (customer, c["conversationId"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn activity_texts_titles_payloads_and_urls_have_maxima() {
    let s = TestServer::start().await;
    let (_, conversation) = conversation_with_bots(&s, 1).await;
    let text = |t: String| json!({ "type": "message", "message": { "type": "text", "text": t } });
    let media = |url: String, title: String| json!({ "type": "message", "message": { "type": "image", "url": url, "title": title } });
    let url = |n: usize| {
        let head = "https://example.com/";
        format!("{head}{}", "a".repeat(n - head.len()))
    };
    let button = |title: String, payload: String| {
        json!({ "type": "message", "message": { "type": "text", "text": "pick",
                "actions": [{ "type": "postback", "title": title, "payload": payload }] } })
    };
    let card_subtitle = |sub: String| json!({ "type": "message", "message": { "type": "card", "title": "t", "subtitle": sub } });
    let external = |id: String| json!({ "type": "message", "externalId": id, "message": { "type": "text", "text": "x" } });
    let cases = [
        (
            text(chars(limits::MAX_TEXT_LEN + 1)),
            text(chars(limits::MAX_TEXT_LEN)),
            "message.text",
            limits::MAX_TEXT_LEN,
        ),
        (
            media(url(limits::MAX_URL_LEN + 1), "t".into()),
            media(url(limits::MAX_URL_LEN), "t".into()),
            "message.url",
            limits::MAX_URL_LEN,
        ),
        (
            media(url(100), chars(limits::MAX_TITLE_LEN + 1)),
            media(url(100), chars(limits::MAX_TITLE_LEN)),
            "message.title",
            limits::MAX_TITLE_LEN,
        ),
        (
            button(chars(limits::MAX_TITLE_LEN + 1), "p".into()),
            button(chars(limits::MAX_TITLE_LEN), "p".into()),
            "message.actions[0].title",
            limits::MAX_TITLE_LEN,
        ),
        (
            button("b".into(), chars(limits::MAX_PAYLOAD_LEN + 1)),
            button("b".into(), chars(limits::MAX_PAYLOAD_LEN)),
            "message.actions[0].payload",
            limits::MAX_PAYLOAD_LEN,
        ),
        (
            card_subtitle(chars(limits::MAX_TITLE_LEN + 1)),
            card_subtitle(chars(limits::MAX_TITLE_LEN)),
            "message.subtitle",
            limits::MAX_TITLE_LEN,
        ),
        (
            external(chars(limits::MAX_EXTERNAL_ID_LEN + 1)),
            external(chars(limits::MAX_EXTERNAL_ID_LEN)),
            "externalId",
            limits::MAX_EXTERNAL_ID_LEN,
        ),
    ];
    for (over, at, property, max) in cases {
        let (st, b) = s.send(&s.a.engine, &conversation, over).await;
        assert_too_long(st, &b, "ENG", property, max);
        let (st, b) = s.send(&s.a.engine, &conversation, at).await;
        assert_eq!(st, StatusCode::OK, "{property}: {b}");
    }
    s.stop().await;
}

/// `n` keys `<prefix>0..` with value `v` each.
fn keys(prefix: &str, n: usize, v: &str) -> Map<String, Value> {
    (0..n).map(|k| (format!("{prefix}{k}"), json!(v))).collect()
}

async fn establish_with(
    s: &TestServer,
    customer: &str,
    binding: &str,
    properties: Value,
) -> (StatusCode, Value) {
    s.post(
        "/api/v1/conversations/establish",
        &s.a.engine,
        json!({ "integrationId": customer, "binding": binding, "properties": properties }),
    )
    .await
}

#[tokio::test]
async fn each_properties_cap_is_refused_naming_it_and_one_at_the_cap_accepted() {
    for backend in backends("each_properties_cap_is_refused_naming_it") {
        let s = TestServer::start_on(backend).await;
        let (customer, _) = conversation_with_bots(&s, 1).await;
        let collections = |n: usize| -> Map<String, Value> {
            (0..n)
                .map(|c| (format!("c{c}"), json!({ "k": "v" })))
                .collect()
        };
        // `profile` (with its two defaults) is one of the collections.
        let long_key = "k".repeat(limits::MAX_PROPERTY_NAME_LEN + 1);
        let cases = [
            (
                json!(collections(limits::MAX_PROPERTY_COLLECTIONS)),
                "Property 'properties' must hold at most 32 collections (it would hold 33)."
                    .to_owned(),
            ),
            (
                json!({ "crm": keys("k", limits::MAX_PROPERTY_KEYS + 1, "v") }),
                "Property 'properties.crm' must hold at most 64 keys (it would hold 65)."
                    .to_owned(),
            ),
            (
                json!({ "crm": { "bio": chars(limits::MAX_PROPERTY_VALUE_LEN + 1) } }),
                "Property 'properties.crm.bio' must be at most 4096 characters long.".to_owned(),
            ),
            (
                json!({ "crm": { long_key.clone(): "v" } }),
                format!(
                    "Property 'properties.crm.{long_key}' must be at most 256 characters long."
                ),
            ),
            // Every value within its cap, 20,000 bytes in all.
            (
                json!({ "crm": keys("k", 5, &"x".repeat(4_000)) }),
                String::new(),
            ),
        ];
        for (i, (properties, want)) in cases.into_iter().enumerate() {
            let (st, b) = establish_with(&s, &customer, &format!("over{i}"), properties).await;
            assert_error(st, &b, 400, "ENG", &[206]);
            if want.is_empty() {
                assert!(
                    description(&b).starts_with(
                        "Property 'properties' must be at most 16384 bytes as JSON (it would be "
                    ) && description(&b).contains("its largest collection is 'crm'"),
                    "{b}"
                );
            } else {
                assert_eq!(description(&b), format!("{want} (code: ENG000206)"));
            }
        }

        // At every cap at once: 31 collections besides `profile`, 62 keys besides its two
        // defaults, names and a value at their maximum.
        let mut at_cap = collections(limits::MAX_PROPERTY_COLLECTIONS - 1);
        let mut profile = keys("p", limits::MAX_PROPERTY_KEYS - 2, "v");
        profile.insert(
            "n".repeat(limits::MAX_PROPERTY_NAME_LEN),
            json!(chars(limits::MAX_PROPERTY_VALUE_LEN)),
        );
        profile.remove("p0");
        at_cap.insert("profile".into(), json!(profile));
        let (st, b) = establish_with(&s, &customer, "at-cap", json!(at_cap)).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["properties"].as_object().unwrap().len(), 32);
        assert_eq!(b["properties"]["profile"].as_object().unwrap().len(), 64);
        s.stop().await;
    }
}

#[tokio::test]
async fn repeated_establishes_cannot_grow_properties_past_a_cap() {
    for backend in backends("repeated_establishes_cannot_grow_properties_past_a_cap") {
        let s = TestServer::start_on(backend).await;
        let (customer, _) = conversation_with_bots(&s, 1).await;
        // Keys: 40, then 20 more (60), then 10 more would make 70 > 64.
        let (st, b) =
            establish_with(&s, &customer, "grow", json!({ "crm": keys("a", 40, "v") })).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let conversation = b["conversationId"].as_str().unwrap().to_owned();
        let (st, b) =
            establish_with(&s, &customer, "grow", json!({ "crm": keys("b", 20, "v") })).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let (st, b) =
            establish_with(&s, &customer, "grow", json!({ "crm": keys("c", 10, "v") })).await;
        assert_error(st, &b, 400, "ENG", &[206]);
        assert_eq!(
            description(&b),
            "Property 'properties.crm' must hold at most 64 keys (it would hold 70). (code: ENG000206)"
        );
        // Values already there may still change.
        let (st, b) =
            establish_with(&s, &customer, "grow", json!({ "crm": { "a0": "new" } })).await;
        assert_eq!(st, StatusCode::OK, "{b}");

        // The total: each call adds a collection of about 4,000 bytes. With the 60 keys of
        // `crm` and `profile` (under 1,000 bytes), three fit in 16,384 bytes, a fourth does not,
        // nor any after it.
        let mut outcomes = Vec::new();
        for i in 0..5 {
            let (st, b) = establish_with(
                &s,
                &customer,
                "grow",
                json!({ format!("notes{i}"): { "n": "x".repeat(4_000) } }),
            )
            .await;
            if st != StatusCode::OK {
                assert_error(st, &b, 400, "ENG", &[206]);
                assert!(
                    description(&b)
                        .starts_with("Property 'properties' must be at most 16384 bytes as JSON"),
                    "{b}"
                );
            }
            outcomes.push(st == StatusCode::OK);
        }
        assert_eq!(outcomes, [true, true, true, false, false]);

        // What is stored stayed within every cap.
        let (st, c) = s
            .get(
                &format!("/api/v1/conversations/{conversation}"),
                &s.a.engine,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{c}");
        let props = &c["properties"];
        assert_eq!(props["crm"].as_object().unwrap().len(), 60);
        assert_eq!(props["crm"]["a0"], "new");
        assert!(
            props.to_string().len() <= limits::MAX_PROPERTIES_BYTES,
            "{props}"
        );
        s.stop().await;
    }
}

/// Sends `n` customer messages whose text is `text`, a few at a time.
async fn say_many(s: &TestServer, conversation: &str, n: usize, text: &str) {
    use futures_util::stream::{self, StreamExt};
    let body = json!({ "type": "message", "message": { "type": "text", "text": text } });
    let results: Vec<(StatusCode, Value)> = stream::iter(0..n)
        .map(|_| s.send(&s.a.engine, conversation, body.clone()))
        .buffered(8)
        .collect()
        .await;
    for (st, b) in results {
        assert_eq!(st, StatusCode::OK, "{b}");
    }
}

/// One answer of the activities list: its copies and its `Link` header.
async fn list_page(s: &TestServer, path: &str) -> (Vec<Value>, Option<String>) {
    let resp = s
        .http
        .get(s.url(path))
        .bearer_auth(&s.a.engine)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let link = resp
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_owned());
    let copies: Vec<Value> = resp.json().await.unwrap();
    (copies, link)
}

/// Every page from `leid=0`, following `Link` until there is none; asserts that each link
/// names the last `eventId` of its page and that no event is split between pages.
async fn all_pages(s: &TestServer, conversation: &str) -> Vec<Vec<Value>> {
    let mut path = format!("/api/v1/interactions/activities/{conversation}?type=Customer");
    let mut pages: Vec<Vec<Value>> = Vec::new();
    loop {
        let (copies, link) = list_page(s, &path).await;
        if let Some(previous) = pages.last() {
            let before = previous.last().unwrap()["eventId"].as_i64().unwrap();
            if let Some(first) = copies.first() {
                assert!(
                    first["eventId"].as_i64().unwrap() > before,
                    "an event was split"
                );
            }
        }
        pages.push(copies);
        let Some(link) = link else { break };
        let last = pages.last().unwrap().last().unwrap()["eventId"]
            .as_i64()
            .unwrap();
        assert_eq!(
            link,
            format!(
                "</api/v1/interactions/activities/{conversation}?type=Customer&leid={last}>; rel=\"next\""
            )
        );
        path = link
            .trim_start_matches('<')
            .split_once('>')
            .unwrap()
            .0
            .to_owned();
        assert!(pages.len() < 100, "the links do not end");
    }
    pages
}

#[tokio::test]
async fn the_activities_list_is_cut_at_1000_copies_between_events_with_a_next_link() {
    for backend in backends("the_activities_list_is_cut_at_1000_copies") {
        let s = TestServer::start_on(backend).await;
        // Three bots: each customer message is three copies (the opening event has none
        // of type Customer). 334 messages are 1,002 copies: 333 events (999 copies) fit in
        // 1,000, the 334th does not, and is not split.
        let (_, conversation) = conversation_with_bots(&s, 3).await;
        say_many(&s, &conversation, 334, "hello").await;
        let pages = all_pages(&s, &conversation).await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [999, 3]);
        let events = |p: &[Value]| {
            let mut e: Vec<i64> = p.iter().map(|c| c["eventId"].as_i64().unwrap()).collect();
            e.dedup();
            e.len()
        };
        assert_eq!((events(&pages[0]), events(&pages[1])), (333, 1));
        s.stop().await;
    }
}

#[tokio::test]
async fn the_activities_list_is_cut_at_4_mib_between_events_with_a_next_link() {
    for backend in backends("the_activities_list_is_cut_at_4_mib") {
        let s = TestServer::start_on(backend).await;
        // Two bots: each message is two copies of a little over 256 KiB (65,536 four-byte
        // characters), about 512 KiB an event: seven events fit in 4 MiB, the eighth does
        // not.
        let (_, conversation) = conversation_with_bots(&s, 2).await;
        let text = "\u{1F600}".repeat(limits::MAX_TEXT_LEN);
        say_many(&s, &conversation, 10, &text).await;
        let pages = all_pages(&s, &conversation).await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [14, 6]);
        for page in &pages {
            let bytes: usize = page.iter().map(|c| c.to_string().len()).sum();
            assert!(bytes as u64 <= limits::MAX_LISTED_BYTES, "{bytes} bytes");
            assert!(page.iter().all(|c| c["message"]["text"] == text));
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn the_openapi_document_states_each_maximum() {
    let s = TestServer::start().await;
    let (st, doc) = s.get("/openapi.json", &s.a.portal).await;
    assert_eq!(st, StatusCode::OK);
    let schemas = &doc["components"]["schemas"];
    let max_length = |schema: &str, property: &str| {
        schemas[schema]["properties"][property]["maxLength"].as_u64()
    };
    let expected = [
        ("HubIn", "name", limits::MAX_NAME_LEN),
        ("HubIn", "description", limits::MAX_DESCRIPTION_LEN),
        ("HubPatch", "name", limits::MAX_NAME_LEN),
        ("HubPatch", "description", limits::MAX_DESCRIPTION_LEN),
        ("IntegrationIn", "name", limits::MAX_NAME_LEN),
        ("IntegrationUpdate", "name", limits::MAX_NAME_LEN),
        ("SecretIn", "name", limits::MAX_NAME_LEN),
        ("EstablishIn", "binding", limits::MAX_BINDING_LEN),
        ("InboundIn", "externalId", limits::MAX_EXTERNAL_ID_LEN),
    ];
    for (schema, property, max) in expected {
        assert_eq!(
            max_length(schema, property),
            Some(max as u64),
            "{schema}.{property}"
        );
    }
    assert_eq!(
        schemas["EstablishIn"]["properties"]["properties"]["maxProperties"].as_u64(),
        Some(limits::MAX_PROPERTY_COLLECTIONS as u64)
    );
    s.stop().await;
}
