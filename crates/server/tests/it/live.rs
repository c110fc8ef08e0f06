//! Websocket delivery (SPEC 5.6) with real websocket clients: authentication at the upgrade,
//! the frames both ways, several clients, the `cId` filter, `resume`, a client that does not
//! keep up (4008), pause and delete (4403), keep-alive pings, shutdown (1001), start messages.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

struct Setup {
    hub: String,
    customer: String,
    agent: String,
    agent_private: String,
}

async fn setup(s: &TestServer) -> Setup {
    let hub = s.hub(&s.a.portal, "h").await;
    let customer = s
        .direct(&s.a.portal, &hub, "customers", "Customer", json!({}))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = s
        .direct(&s.a.portal, &hub, "agents", "Agent", json!({}))
        .await;
    Setup {
        hub,
        customer,
        agent: agent["integrationId"].as_str().unwrap().to_owned(),
        agent_private: agent["configuration"]["privateSigningKey"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

fn conversation(c: &Value) -> String {
    c["conversationId"].as_str().unwrap().to_owned()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_upgrade_authenticates_and_checks_the_integration() {
    let s = TestServer::start().await;
    let x = setup(&s).await;
    let q = format!("iId={}", x.agent);

    // The three ways in.
    let mut by_header = s.ws(&q, Some(&s.a.engine)).await;
    let mut by_query = s
        .ws(&format!("{q}&access_token={}", s.a.engine), None)
        .await;
    let ts = unix_now().to_string();
    let sig = sign(&x.agent_private, format!("{}.{ts}", x.agent).as_bytes());
    let mut by_signature = s
        .ws(&format!("{q}&ts={ts}&sig={}", encode(&sig)), None)
        .await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    s.say(&s.a.engine, &conversation(&c), "hi").await;
    for ws in [&mut by_header, &mut by_query, &mut by_signature] {
        assert_eq!(
            frame(ws).await["payload"]["activity"]["message"]["text"],
            "hi"
        );
    }

    // And the ways not in.
    let refused = |r: Result<Ws, (StatusCode, Value)>| match r {
        Ok(_) => panic!("upgraded"),
        Err(e) => e,
    };
    let (st, b) = refused(s.ws_try(&q, None).await);
    assert_error(st, &b, 401, "ENG", &[102]);
    let (st, b) = refused(s.ws_try(&q, Some("not.a.token")).await);
    assert_error(st, &b, 401, "ENG", &[102]);
    let (st, b) = refused(s.ws_try(&q, Some(&s.a.portal)).await);
    assert_error(st, &b, 403, "ENG", &[101]);
    let (st, b) = refused(
        s.ws_try(&format!("{q}&ts={ts}&sig={}", encode(&sig)), None)
            .await,
    );
    assert_error(st, &b, 401, "ENG", &[102]); // a replayed signature
    let old = (unix_now() - 400).to_string();
    let stale = sign(&x.agent_private, format!("{}.{old}", x.agent).as_bytes());
    let (st, b) = refused(
        s.ws_try(&format!("{q}&ts={old}&sig={}", encode(&stale)), None)
            .await,
    );
    assert_error(st, &b, 401, "ENG", &[102]);
    let (st, b) = refused(s.ws_try(&q, Some(&s.b.engine)).await);
    assert_error(st, &b, 404, "ENG", &[6000]);
    let (st, b) = refused(s.ws_try("", Some(&s.a.engine)).await);
    assert_error(st, &b, 400, "ENG", &[200]);
    let (st, b) = refused(s.ws_try("iId=nope", Some(&s.a.engine)).await);
    assert_error(st, &b, 400, "ENG", &[203]);
    let telegram = s
        .integration(
            &s.a.portal,
            &x.hub,
            json!({ "name": "tg", "channelId": "Telegram",
                    "configuration": { "token": "123:abc" } }),
        )
        .await;
    let (st, b) = refused(
        s.ws_try(
            &format!("iId={}", telegram["integrationId"].as_str().unwrap()),
            Some(&s.a.engine),
        )
        .await,
    );
    assert_error(st, &b, 400, "ENG", &[206]);
    let (st, b) = refused(
        s.ws_try(
            &format!("{q}&cId={}", uuid::Uuid::now_v7()),
            Some(&s.a.engine),
        )
        .await,
    );
    assert_error(st, &b, 404, "ENG", &[6500]);
    s.put(
        &format!("/api/v1/integrations/{}", x.agent),
        &s.a.portal,
        json!({ "statusId": 3002 }),
    )
    .await;
    let (st, b) = refused(s.ws_try(&q, Some(&s.a.engine)).await);
    assert_error(st, &b, 400, "ENG", &[6502]);
    s.stop().await;
}

#[tokio::test]
async fn frames_flow_both_ways_and_bad_frames_get_error_frames() {
    for backend in backends("websocket frames") {
        let s = TestServer::start_on(backend).await;
        let x = setup(&s).await;
        let mut ws = s.ws(&format!("iId={}", x.agent), Some(&s.a.engine)).await;
        let c = s.establish(&s.a.engine, &x.customer, "cust").await;
        let id = conversation(&c);
        let event_id = s.say(&s.a.engine, &id, "hello agent").await;

        let f = frame(&mut ws).await;
        assert_eq!(f["type"], "activity");
        let p = &f["payload"];
        assert_eq!(p["hubId"], x.hub);
        assert_eq!(p["tenantId"], s.a.id());
        assert_eq!(p["integrationId"], x.agent);
        assert_eq!(p["conversationId"], id);
        assert_eq!(p["conversationProperties"]["profile"]["device"], "Direct");
        assert_eq!(p["activity"]["eventId"], event_id);
        assert_eq!(p["activity"]["eventTrigger"], "message:customer");
        assert_eq!(p["activity"]["recipient"]["integrationId"], x.agent);
        assert_eq!(p["activity"]["message"]["text"], "hello agent");

        // The agent answers over the socket.
        send_frame(
            &mut ws,
            json!({ "type": "activity", "ref": "r1", "conversationId": id,
                    "activity": { "type": "message", "message": { "type": "text", "text": "hi!" } } }),
        )
        .await;
        let ack = frame(&mut ws).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        assert_eq!(ack["ref"], "r1");
        assert!(ack["eventId"].as_i64().unwrap() > event_id);
        assert!(ack["interactionId"].as_str().is_some());
        let (_, copies) = s
            .get(
                &format!("/api/v1/interactions/activities/{id}?type=Agent"),
                &s.a.engine,
            )
            .await;
        let answer = copies.as_array().unwrap().last().unwrap().clone();
        assert_eq!(answer["sender"]["integrationId"], x.agent);
        assert_eq!(answer["eventId"], ack["eventId"]);

        // Bad frames: each answered with an error frame; the socket stays usable.
        let bad: Vec<(String, u16, u32, Value)> = vec![
            ("not json".to_owned(), 400, 300, Value::Null),
            ("[1,2]".to_owned(), 400, 300, Value::Null),
            (json!({ "type": "dance", "ref": 7 }).to_string(), 400, 206, json!(7)),
            (json!({ "ref": "x" }).to_string(), 400, 301, json!("x")),
            (
                json!({ "type": "activity", "ref": "r2", "conversationId": id,
                        "activity": { "type": "message", "message": { "type": "hologram" } } })
                .to_string(),
                400,
                206,
                json!("r2"),
            ),
            (
                json!({ "type": "activity", "ref": "r3", "conversationId": id,
                        "activity": { "type": "event" } })
                .to_string(),
                400,
                5003,
                json!("r3"),
            ),
            (
                json!({ "type": "activity", "ref": "r4", "conversationId": "nope",
                        "activity": { "type": "event", "event": { "type": "seen" } } })
                .to_string(),
                400,
                203,
                json!("r4"),
            ),
            (
                json!({ "type": "activity", "ref": "r5", "conversationId": uuid::Uuid::now_v7(),
                        "activity": { "type": "event", "event": { "type": "seen" } } })
                .to_string(),
                404,
                6500,
                json!("r5"),
            ),
            (
                json!({ "type": "activity", "ref": "r6", "conversationId": id,
                        "activity": { "type": "event", "sender": { "integrationId": x.customer },
                                      "event": { "type": "seen" } } })
                .to_string(),
                403,
                101,
                json!("r6"),
            ),
            (
                json!({ "type": "activity", "ref": "big", "conversationId": id,
                        "activity": { "type": "message",
                                      "message": { "type": "text", "text": "x".repeat(300 * 1024) } } })
                .to_string(),
                413,
                304,
                Value::Null,
            ),
        ];
        for (text, status, code, reference) in bad {
            use futures_util::SinkExt;
            ws.send(tokio_tungstenite::tungstenite::Message::text(text.clone()))
                .await
                .unwrap();
            let e = frame(&mut ws).await;
            assert_eq!(
                e["type"],
                "error",
                "{e} for {}",
                &text[..text.len().min(80)]
            );
            assert_eq!(e["ref"], reference, "{e}");
            assert_eq!(e["status"], status, "{e}");
            assert_eq!(e["errors"][0]["code"], code, "{e}");
            let d = e["errors"][0]["description"].as_str().unwrap();
            assert!(d.ends_with(&format!("(code: ENG{code:06})")), "{d}");
        }
        // A closed conversation.
        s.post(
            &format!("/api/v1/conversations/{id}/close"),
            &s.a.engine,
            json!({}),
        )
        .await;
        send_frame(
            &mut ws,
            json!({ "type": "activity", "ref": "late", "conversationId": id,
                    "activity": { "type": "event", "event": { "type": "seen" } } }),
        )
        .await;
        let e = frame(&mut ws).await;
        assert_eq!(
            (
                e["type"].clone(),
                e["ref"].clone(),
                e["errors"][0]["code"].clone()
            ),
            (json!("error"), json!("late"), json!(6501))
        );
        // Still usable.
        let c2 = s.establish(&s.a.engine, &x.customer, "cust-2").await;
        send_frame(
            &mut ws,
            json!({ "type": "activity", "ref": "ok", "conversationId": conversation(&c2),
                    "activity": { "type": "event", "event": { "type": "typing_on" } } }),
        )
        .await;
        let ack = frame(&mut ws).await;
        assert_eq!(
            (ack["type"].clone(), ack["ref"].clone()),
            (json!("ack"), json!("ok"))
        );
        assert_eq!(ack["interactionId"], Value::Null);
        s.stop().await;
    }
}

#[tokio::test]
async fn every_client_gets_every_activity_and_cid_filters() {
    let s = TestServer::start().await;
    let x = setup(&s).await;
    let one = s.establish(&s.a.engine, &x.customer, "one").await;
    let two = s.establish(&s.a.engine, &x.customer, "two").await;
    let q = format!("iId={}", x.agent);
    let mut a = s.ws(&q, Some(&s.a.engine)).await;
    let mut b = s.ws(&q, Some(&s.a.engine)).await;
    let mut only_two = s
        .ws(
            &format!("{q}&cId={}", conversation(&two)),
            Some(&s.a.engine),
        )
        .await;
    for (c, t) in [(&one, "1a"), (&two, "2a"), (&one, "1b"), (&two, "2b")] {
        s.say(&s.a.engine, &conversation(c), t).await;
    }
    for ws in [&mut a, &mut b] {
        let mut texts = Vec::new();
        for _ in 0..4 {
            texts.push(frame(ws).await["payload"]["activity"]["message"]["text"].clone());
        }
        assert_eq!(texts, vec!["1a", "2a", "1b", "2b"]);
    }
    let mut texts = Vec::new();
    for _ in 0..2 {
        let f = frame(&mut only_two).await;
        assert_eq!(f["payload"]["conversationId"], conversation(&two));
        texts.push(f["payload"]["activity"]["message"]["text"].clone());
    }
    assert_eq!(texts, vec!["2a", "2b"]);
    quiet(&mut only_two, 300).await;
    s.stop().await;
}

#[tokio::test]
async fn resume_delivers_every_missed_activity_once_in_order() {
    for backend in backends("resume") {
        let s = TestServer::start_on(backend).await;
        let x = setup(&s).await;
        let one = conversation(&s.establish(&s.a.engine, &x.customer, "one").await);
        let two = conversation(&s.establish(&s.a.engine, &x.customer, "two").await);
        let q = format!("iId={}", x.agent);
        let mut ws = s.ws(&q, Some(&s.a.engine)).await;
        s.say(&s.a.engine, &one, "before").await;
        let seen = frame(&mut ws).await["payload"]["activity"]["eventId"]
            .as_i64()
            .unwrap();
        drop(ws);

        // Missed while away, across both conversations.
        let mut missed = Vec::new();
        for i in 0..12 {
            let c = if i % 2 == 0 { &one } else { &two };
            missed.push(s.say(&s.a.engine, c, &format!("m{i}")).await);
        }
        let mut ws = s.ws(&q, Some(&s.a.engine)).await;
        send_frame(&mut ws, json!({ "type": "resume", "leid": seen })).await;
        let mut got = Vec::new();
        for _ in 0..missed.len() {
            let f = frame(&mut ws).await;
            assert_eq!(f["payload"]["integrationId"], x.agent);
            got.push(f["payload"]["activity"]["eventId"].as_i64().unwrap());
        }
        assert_eq!(got, missed);
        quiet(&mut ws, 300).await;
        // Then live again, without duplicates.
        let live = s.say(&s.a.engine, &two, "live").await;
        assert_eq!(frame(&mut ws).await["payload"]["activity"]["eventId"], live);
        quiet(&mut ws, 300).await;

        // resume with cId: only that conversation.
        let mut only_one = s.ws(&format!("{q}&cId={one}"), Some(&s.a.engine)).await;
        send_frame(&mut only_one, json!({ "type": "resume", "leid": seen })).await;
        for want in missed.iter().step_by(2) {
            let f = frame(&mut only_one).await;
            assert_eq!(f["payload"]["conversationId"], one);
            assert_eq!(f["payload"]["activity"]["eventId"], *want);
        }
        quiet(&mut only_one, 300).await;
        send_frame(
            &mut only_one,
            json!({ "type": "resume", "leid": "x", "ref": 1 }),
        )
        .await;
        assert_eq!(frame(&mut only_one).await["errors"][0]["code"], 302);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_with_4008() {
    let s = TestServer::start_with(Backend::Sqlite, |args| {
        args.ws_queue = 4;
    })
    .await;
    let x = setup(&s).await;
    let id = conversation(&s.establish(&s.a.engine, &x.customer, "cust").await);
    let q = format!("iId={}", x.agent);
    let mut stalled = s.ws(&q, Some(&s.a.engine)).await;
    let mut reader = s.ws(&q, Some(&s.a.engine)).await;
    // 200 KiB in 51,200 four-byte characters: within the 65,536 characters of a text.
    let big = "\u{1F600}".repeat(50 * 1024);
    let reading = tokio::spawn(async move {
        let mut n = 0;
        while n < 100 {
            let f = frame(&mut reader).await;
            assert_eq!(f["type"], "activity");
            n += 1;
        }
        n
    });
    // 100 frames of 200 KiB: far more than the socket buffers and the queue of 4 hold.
    for _ in 0..100 {
        let (st, b) = s
            .send(
                &s.a.engine,
                &id,
                json!({ "type": "message", "message": { "type": "text", "text": big } }),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
    }
    assert_eq!(
        reading.await.unwrap(),
        100,
        "the reading client got everything"
    );
    let (code, frames) = close_code(&mut stalled).await;
    assert_eq!(code, 4008);
    assert!(frames < 100, "cut off before it got everything ({frames})");
    s.stop().await;
}

#[tokio::test]
async fn pausing_or_deleting_closes_sockets_with_4403() {
    let s = TestServer::start().await;
    let x = setup(&s).await;
    let q = format!("iId={}", x.agent);
    let mut ws = s.ws(&q, Some(&s.a.engine)).await;
    s.put(
        &format!("/api/v1/integrations/{}", x.agent),
        &s.a.portal,
        json!({ "statusId": 3002 }),
    )
    .await;
    assert_eq!(close_code(&mut ws).await.0, 4403);
    s.put(
        &format!("/api/v1/integrations/{}", x.agent),
        &s.a.portal,
        json!({ "statusId": 3000 }),
    )
    .await;
    let mut ws = s.ws(&q, Some(&s.a.engine)).await;
    s.put(
        &format!("/api/v1/hubs/{}", x.hub),
        &s.a.portal,
        json!({ "statusId": 2002 }),
    )
    .await;
    assert_eq!(close_code(&mut ws).await.0, 4403);
    s.put(
        &format!("/api/v1/hubs/{}", x.hub),
        &s.a.portal,
        json!({ "statusId": 2000 }),
    )
    .await;
    let mut ws = s.ws(&q, Some(&s.a.engine)).await;
    s.delete(&format!("/api/v1/integrations/{}", x.agent), &s.a.portal)
        .await;
    assert_eq!(close_code(&mut ws).await.0, 4403);
    s.stop().await;
}

#[tokio::test]
async fn the_server_pings_and_closes_with_1001_on_shutdown() {
    use futures_util::StreamExt;
    let s = TestServer::start_with(Backend::Sqlite, |args| {
        args.ws_ping_interval = std::time::Duration::from_millis(100);
    })
    .await;
    let x = setup(&s).await;
    let mut ws = s.ws(&format!("iId={}", x.agent), Some(&s.a.engine)).await;
    let ping = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ping.is_ping(), "{ping:?}");
    let closing = tokio::spawn(async move { close_code(&mut ws).await.0 });
    s.stop().await;
    assert_eq!(closing.await.unwrap(), 1001);
}

#[tokio::test]
async fn start_messages_reach_the_customer_when_a_conversation_opens() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "h").await;
    let customer = s
        .direct(
            &s.a.portal,
            &hub,
            "widget",
            "Customer",
            json!({ "start": [
                { "type": "text", "text": "Welcome!" },
                { "type": "text", "text": "https://youtu.be/abc123" }
            ] }),
        )
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.direct(&s.a.portal, &hub, "agents", "Agent", json!({}))
        .await;
    let mut client = s.ws(&format!("iId={customer}"), Some(&s.a.engine)).await;
    let c = s.establish(&s.a.engine, &customer, "visitor").await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let a = frame(&mut client).await["payload"]["activity"].clone();
        assert_eq!(a["flowProcess"], "AutoReply");
        assert_eq!(a["eventTrigger"], "message:bot");
        assert_eq!(a["sender"]["integrationId"], customer);
        assert_eq!(a["sender"]["integrationType"], "Bot");
        assert_eq!(a["sender"]["channelType"], "Direct");
        assert_eq!(
            a["sender"]["tokenId"],
            format!("{}.{customer}", conversation(&c))
        );
        assert_eq!(a["recipient"]["tokenId"], c["tokenId"]);
        got.push(a["message"].clone());
    }
    assert_eq!(got[0], json!({ "type": "text", "text": "Welcome!" }));
    assert_eq!(got[1]["type"], "youtube");
    // Establishing the open conversation again sends nothing.
    s.establish(&s.a.engine, &customer, "visitor").await;
    quiet(&mut client, 300).await;
    s.stop().await;
}

#[tokio::test]
async fn a_frame_over_one_mib_closes_the_socket_with_1009() {
    use futures_util::SinkExt;
    let s = TestServer::start().await;
    let x = setup(&s).await;
    let mut ws = s.ws(&format!("iId={}", x.agent), Some(&s.a.engine)).await;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        "z".repeat(2 * 1024 * 1024),
    ))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws).await.0, 1009);
    s.stop().await;
}

#[tokio::test]
async fn a_client_cut_off_with_4008_resumes_and_gets_what_it_missed_then_live_frames() {
    for backend in
        backends("a_client_cut_off_with_4008_resumes_and_gets_what_it_missed_then_live_frames")
    {
        // A queue of at most 4 KiB: one bigger frame cannot wait in it, so the session is cut
        // off with 4008 (SPEC 5.6) however fast the client reads.
        let s = TestServer::start_with(backend, |args| {
            args.ws_queue_bytes = 4096;
        })
        .await;
        let x = setup(&s).await;
        let id = conversation(&s.establish(&s.a.engine, &x.customer, "cust").await);
        let q = format!("iId={}", x.agent);
        let mut ws = s.ws(&q, Some(&s.a.engine)).await;
        let seen = s.say(&s.a.engine, &id, "small").await;
        assert_eq!(frame(&mut ws).await["payload"]["activity"]["eventId"], seen);

        let big = "z".repeat(8192);
        let cut = s.say(&s.a.engine, &id, &big).await;
        assert_eq!(close_code(&mut ws).await, (4008, 0), "cut off, not sent");
        let away = s.say(&s.a.engine, &id, "while away").await;

        // It reconnects and resumes from the last eventId it got.
        let mut ws = s.ws(&q, Some(&s.a.engine)).await;
        send_frame(&mut ws, json!({ "type": "resume", "leid": seen })).await;
        let first = frame(&mut ws).await;
        assert_eq!(first["payload"]["activity"]["eventId"], cut);
        assert_eq!(
            first["payload"]["activity"]["message"]["text"],
            big.as_str()
        );
        let second = frame(&mut ws).await;
        assert_eq!(second["payload"]["activity"]["eventId"], away);
        assert_eq!(
            second["payload"]["activity"]["message"]["text"],
            "while away"
        );
        // Then live frames, once each.
        let live = s.say(&s.a.engine, &id, "live").await;
        assert_eq!(frame(&mut ws).await["payload"]["activity"]["eventId"], live);
        quiet(&mut ws, 300).await;
        s.stop().await;
    }
}
