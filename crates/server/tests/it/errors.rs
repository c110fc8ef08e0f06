//! Errors (SPEC 1): every kind of bad request answers the SPEC body with the prefix of its path,
//! and hostile inputs never produce a 500.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

const HUBS: &str = "/api/v1/hubs";
const JSON: Option<&str> = Some("application/json");

/// Asserts a response is a 2xx or a SPEC 1 4xx, never a 500 or a framework body.
fn assert_handled(status: StatusCode, body: &Value, what: &str) {
    if status.is_success() {
        return;
    }
    assert!(status.is_client_error(), "{what}: {status} {body}");
    assert_eq!(body["status"], status.as_u16(), "{what}: {body}");
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: errors in {body}"));
    assert!(!errors.is_empty(), "{what}: {body}");
    for e in errors {
        let code = e["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("{what}: code in {e}"));
        let d = e["description"].as_str().unwrap_or("");
        assert!(d.ends_with(&format!("(code: PRT{code:06})")), "{what}: {d}");
        assert_ne!(code, 100, "{what}: internal error {body}");
    }
}

#[tokio::test]
async fn malformed_json_is_400_300() {
    let s = TestServer::start().await;
    for bad in [
        r#"{"name":"#,
        "{name: 'x'}",
        r#"{"name":"x",}"#,
        "nul",
        "{\"name\":\"x\"} trailing",
        "\u{feff}{}",
    ] {
        let (status, body) = s
            .raw(Method::POST, HUBS, Some(&s.a.portal), JSON, bad)
            .await;
        assert_error(status, &body, 400, "PRT", &[300]);
    }
    // Bytes that are not UTF-8.
    let (status, body) = s
        .raw(
            Method::POST,
            HUBS,
            Some(&s.a.portal),
            JSON,
            vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
        )
        .await;
    assert_error(status, &body, 400, "PRT", &[300]);
    s.stop().await;
}

#[tokio::test]
async fn wrong_content_type_is_415_300() {
    let s = TestServer::start().await;
    let valid = r#"{"name":"Support","description":"d"}"#;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let (status, body) = s
            .raw(Method::POST, HUBS, Some(&s.a.portal), Some(ct), valid)
            .await;
        assert_error(status, &body, 415, "PRT", &[300]);
    }
    // A body without any content type.
    let (status, body) = s
        .raw(Method::POST, HUBS, Some(&s.a.portal), None, valid)
        .await;
    assert_error(status, &body, 415, "PRT", &[300]);
    // A charset parameter and a +json type are JSON.
    let (status, body) = s
        .raw(
            Method::POST,
            HUBS,
            Some(&s.a.portal),
            Some("application/json; charset=utf-8"),
            valid,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Nothing was created by the refused requests.
    let (_, list) = s.get(HUBS, &s.a.portal).await;
    assert_eq!(list["total"], 1, "{list}");
    s.stop().await;
}

#[tokio::test]
async fn missing_body_is_400_300() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Support").await;
    for (method, path) in [
        (Method::POST, HUBS.to_owned()),
        (Method::PUT, format!("{HUBS}/{hub}")),
    ] {
        for ct in [JSON, None] {
            let (status, body) = s
                .raw(method.clone(), &path, Some(&s.a.portal), ct, "")
                .await;
            assert_error(status, &body, 400, "PRT", &[300]);
        }
        let (status, body) = s
            .raw(method.clone(), &path, Some(&s.a.portal), JSON, "  \n ")
            .await;
        assert_error(status, &body, 400, "PRT", &[300]);
    }
    s.stop().await;
}

#[tokio::test]
async fn body_over_1_mib_is_413_with_the_spec_body() {
    let s = TestServer::start().await;
    let big = json!({ "name": "Big", "description": "x".repeat(2 * 1024 * 1024) }).to_string();
    let (status, body) = s
        .raw(Method::POST, HUBS, Some(&s.a.portal), JSON, big)
        .await;
    assert_error(status, &body, 413, "PRT", &[304]);
    // Just under 1 MiB is read (and accepted: unknown top-level keys are ignored).
    let under =
        json!({ "name": "Under", "description": "", "padding": "x".repeat(1024 * 1024 - 64) })
            .to_string();
    assert!(under.len() <= 1024 * 1024);
    let (status, body) = s
        .raw(Method::POST, HUBS, Some(&s.a.portal), JSON, under)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        &body.to_string()[..200.min(body.to_string().len())]
    );
    // On the token route, with the IDT prefix.
    let form = format!(
        "grant_type=client_credentials&client_id=x&client_secret={}",
        "y".repeat(2 * 1024 * 1024)
    );
    let (status, body) = s
        .raw(
            Method::POST,
            "/connect/token",
            None,
            Some("application/x-www-form-urlencoded"),
            form,
        )
        .await;
    assert_error(status, &body, 413, "IDT", &[304]);
    s.stop().await;
}

#[tokio::test]
async fn bad_path_uuid_is_400_203() {
    let s = TestServer::start().await;
    for bad in [
        "not-a-uuid",
        "123",
        "00000000-0000-0000-0000-00000000000g",
        "%00",
        "%F0%9F%A6%80",
    ] {
        let path = format!("{HUBS}/{bad}");
        for (method, body) in [
            (Method::GET, None),
            (Method::DELETE, None),
            (Method::PUT, Some(json!({ "name": "x" }))),
        ] {
            let (status, out) = s
                .call(method.clone(), &path, Some(&s.a.portal), body.as_ref())
                .await;
            assert_error(status, &out, 400, "PRT", &[203]);
        }
        let (status, out) = s
            .get(&format!("/api/v1/integrations/{bad}"), &s.a.portal)
            .await;
        assert_error(status, &out, 400, "PRT", &[203]);
    }
    s.stop().await;
}

#[tokio::test]
async fn bad_query_values_are_400_201_and_out_of_range_paging_is_400_206() {
    let s = TestServer::start().await;
    for query in [
        "pageSize=abc",
        "pageNumber=abc",
        "pageSize=1.5",
        "pageSize=",
        "pageSize=99999999999999999999999",
    ] {
        let (status, body) = s.get(&format!("{HUBS}?{query}"), &s.a.portal).await;
        assert_error(status, &body, 400, "PRT", &[201]);
        assert!(
            body["errors"][0]["description"]
                .as_str()
                .unwrap()
                .contains("page"),
            "{body}"
        );
    }
    for query in ["pageSize=0", "pageSize=101", "pageNumber=-1", "pageSize=-5"] {
        let (status, body) = s.get(&format!("{HUBS}?{query}"), &s.a.portal).await;
        assert_error(status, &body, 400, "PRT", &[206]);
    }
    let (status, body) = s
        .get(&format!("{HUBS}?pageNumber=-1&pageSize=0"), &s.a.portal)
        .await;
    assert_error(status, &body, 400, "PRT", &[206, 206]);
    let (status, body) = s
        .get("/api/v1/integrations?pageSize=101", &s.a.portal)
        .await;
    assert_error(status, &body, 400, "PRT", &[206]);
    let (status, body) = s.get("/api/v1/integrations?hubId=nope", &s.a.portal).await;
    assert_error(status, &body, 400, "PRT", &[203]);
    // The bounds themselves are fine.
    for query in ["pageSize=1", "pageSize=100", "pageNumber=0", "pageNumber=7"] {
        let (status, body) = s.get(&format!("{HUBS}?{query}"), &s.a.portal).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
    }
    s.stop().await;
}

#[tokio::test]
async fn unknown_route_is_404_105_with_the_prefix_of_its_path() {
    let s = TestServer::start().await;
    for (path, prefix) in [
        ("/nope", "PRT"),
        ("/", "PRT"),
        ("/api/v1/nope", "PRT"),
        ("/api/v2/hubs", "PRT"),
        ("/api/v1/hubs/a/b/c", "PRT"),
        ("/connect/token/extra", "IDT"),
        ("/api/v1/tenants/unknown", "IDT"),
        ("/api/v1/tenants/clients", "IDT"),
        ("/api/v1/conversations/unknown/route/here", "ENG"),
        ("/api/v1/interactions/unknown/route/here", "ENG"),
        ("/inbound/unknown/route", "ENG"),
        ("/engine-chat-hub/unknown/route", "ENG"),
    ] {
        for token in [None, Some(s.a.portal.as_str())] {
            let (status, body) = s.call(Method::GET, path, token, None).await;
            assert_error(status, &body, 404, prefix, &[105]);
        }
        let (status, body) = s
            .call(Method::POST, path, Some(&s.a.portal), Some(&json!({})))
            .await;
        assert_error(status, &body, 404, prefix, &[105]);
    }
    s.stop().await;
}

#[tokio::test]
async fn method_not_allowed_is_405_with_the_spec_body() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Support").await;
    for (method, path, prefix) in [
        (Method::PATCH, HUBS.to_owned(), "PRT"),
        (Method::DELETE, HUBS.to_owned(), "PRT"),
        (Method::POST, format!("{HUBS}/{hub}"), "PRT"),
        (Method::PATCH, format!("{HUBS}/{hub}"), "PRT"),
        (Method::GET, "/connect/token".to_owned(), "IDT"),
        (Method::PUT, "/connect/token".to_owned(), "IDT"),
        (Method::POST, "/healthz".to_owned(), "PRT"),
    ] {
        let (status, body) = s.call(method.clone(), &path, Some(&s.a.portal), None).await;
        assert_error(status, &body, 405, prefix, &[105]);
    }
    // The hub was not touched.
    assert_eq!(
        s.get(&format!("{HUBS}/{hub}"), &s.a.portal).await.0,
        StatusCode::OK
    );
    s.stop().await;
}

#[tokio::test]
async fn body_that_is_not_an_object_is_400_300() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Support").await;
    for body in [
        json!([]),
        json!([{ "name": "x", "description": "y" }]),
        json!("Support"),
        json!(42),
        json!(true),
        json!(null),
    ] {
        for (method, path) in [
            (Method::POST, HUBS.to_owned()),
            (Method::PUT, format!("{HUBS}/{hub}")),
        ] {
            let (status, out) = s.call(method, &path, Some(&s.a.portal), Some(&body)).await;
            assert_error(status, &out, 400, "PRT", &[300]);
            assert!(
                out["errors"][0]["description"]
                    .as_str()
                    .unwrap()
                    .contains("object"),
                "{out}"
            );
        }
        let path = format!(
            "/api/v1/tenants/clients/{}/tokens",
            s.a.creds.portal.client_id
        );
        let (status, out) = s.post(&path, &s.a.portal, body.clone()).await;
        assert_error(status, &out, 400, "IDT", &[300]);
    }
    s.stop().await;
}

#[tokio::test]
async fn hub_body_with_several_problems_reports_every_one() {
    let s = TestServer::start().await;
    let (status, body) = s
        .post(
            HUBS,
            &s.a.portal,
            json!({ "name": 5, "closeDormantConversation": -1, "statusId": 1 }),
        )
        .await;
    assert_error(status, &body, 400, "PRT", &[302, 301, 206, 206]);
    let text = body.to_string();
    for property in [
        "name",
        "description",
        "closeDormantConversation",
        "statusId",
    ] {
        assert!(
            text.contains(&format!("'{property}'")),
            "{property} named in {body}"
        );
    }
    let (status, body) =
        s.post(HUBS, &s.a.portal, json!({ "name": "", "description": [], "closeDormantConversation": 1.5, "statusId": "2000" })).await;
    assert_error(status, &body, 400, "PRT", &[302, 302, 302, 206]);
    let (status, body) = s.post(HUBS, &s.a.portal, json!({})).await;
    assert_error(status, &body, 400, "PRT", &[301, 301]);
    // An update reports every problem too.
    let hub = s.hub(&s.a.portal, "Support").await;
    let (status, body) =
        s.put(&format!("{HUBS}/{hub}"), &s.a.portal, json!({ "name": "a".repeat(201), "description": 1, "closeDormantConversation": -3, "statusId": 2001 })).await;
    assert_error(status, &body, 400, "PRT", &[302, 206, 206, 206]);
    s.stop().await;
}

#[tokio::test]
async fn hostile_inputs_never_produce_a_500_on_every_backend() {
    for backend in backends("hostile_inputs_never_produce_a_500_on_every_backend") {
        let s = TestServer::start_on(backend).await;
        let t = s.a.portal.clone();

        // Deep nesting, as the whole body and inside a property.
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let (status, body) = s
            .raw(Method::POST, HUBS, Some(&t), JSON, deep.clone())
            .await;
        assert_error(status, &body, 400, "PRT", &[300]);
        let nested = format!(r#"{{"name":"Deep","description":{deep}}}"#);
        let (status, body) = s.raw(Method::POST, HUBS, Some(&t), JSON, nested).await;
        assert_error(status, &body, 400, "PRT", &[300]);
        let objects = format!("{}{}", r#"{"a":"#.repeat(5_000), "}".repeat(5_000));
        let (status, body) = s.raw(Method::POST, HUBS, Some(&t), JSON, objects).await;
        assert_error(status, &body, 400, "PRT", &[300]);

        // Huge strings.
        let (status, body) = s
            .post(
                HUBS,
                &t,
                json!({ "name": "n".repeat(500_000), "description": "d" }),
            )
            .await;
        assert_error(status, &body, 400, "PRT", &[206]);
        let (status, body) = s
            .post(
                HUBS,
                &t,
                json!({ "name": "Long description", "description": "d".repeat(900_000) }),
            )
            .await;
        assert_handled(status, &body, "huge description");

        // NUL characters, which PostgreSQL cannot store in text, are refused alike on both
        // backends, on create and on update, every one reported.
        for (name, description, codes) in [
            ("nul\u{0}name", "d", vec![201]),
            ("Nul description", "a\u{0}b", vec![201]),
            ("\u{0}", "\u{0}", vec![201, 201]),
        ] {
            let (status, body) = s
                .post(
                    HUBS,
                    &t,
                    json!({ "name": name, "description": description }),
                )
                .await;
            assert_error(status, &body, 400, "PRT", &codes);
        }
        let plain = s.hub(&t, "Plain").await;
        let (status, body) = s
            .put(&format!("{HUBS}/{plain}"), &t, json!({ "name": "x\u{0}" }))
            .await;
        assert_error(status, &body, 400, "PRT", &[201]);
        let secrets = format!(
            "/api/v1/tenants/clients/{}/tokens",
            s.a.creds.portal.client_id
        );
        let (status, body) = s.post(&secrets, &t, json!({ "name": "\u{0}" })).await;
        assert_error(status, &body, 400, "IDT", &[201]);
        let (status, body) = s.post(&format!("/api/v1/integrations/hubs/{plain}"), &t, json!({ "channelId": "Direct", "name": "a\u{0}", "configuration": { "integrationType": "Agent" } })).await;
        assert_handled(status, &body, "NUL in an integration name");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        // Unicode names are kept as given; the limit counts characters, not bytes.
        for name in [
            "Поддержка",
            "客服中心",
            "🦀 Support 🚀",
            "e\u{301}cole",
            "\u{202e}txet",
            "ت".repeat(200).as_str(),
            "🦀".repeat(200).as_str(),
        ] {
            let (status, body) = s
                .post(
                    HUBS,
                    &t,
                    json!({ "name": name, "description": "ünïcödé ✓" }),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
            assert_eq!(body["name"], name);
            let (_, got) = s
                .get(&format!("{HUBS}/{}", body["hubId"].as_str().unwrap()), &t)
                .await;
            assert_eq!(got["name"], name);
            assert_eq!(got["description"], "ünïcödé ✓");
        }
        let (status, body) = s
            .post(
                HUBS,
                &t,
                json!({ "name": "🦀".repeat(201), "description": "d" }),
            )
            .await;
        assert_error(status, &body, 400, "PRT", &[206]);

        // Extreme numbers.
        for (value, codes) in [
            (json!(i32::MAX), None),
            (json!(i64::from(i32::MAX) + 1), Some(vec![206])),
            (json!(i64::MAX), Some(vec![206])),
            (json!(i64::MIN), Some(vec![206])),
            (json!(u64::MAX), Some(vec![302])),
            (json!(1e300), Some(vec![302])),
            (json!(-0.0), Some(vec![302])),
        ] {
            let name = format!("n{value}");
            let (status, body) = s
                .post(
                    HUBS,
                    &t,
                    json!({ "name": name, "description": "d", "closeDormantConversation": value }),
                )
                .await;
            match codes {
                None => assert_eq!(status, StatusCode::OK, "{body}"),
                Some(codes) => assert_error(status, &body, 400, "PRT", &codes),
            }
            let (status, body) = s
                .post(
                    HUBS,
                    &t,
                    json!({ "name": format!("s{value}"), "description": "d", "statusId": value }),
                )
                .await;
            assert_handled(status, &body, "extreme statusId");
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        }

        // Extreme pages.
        for query in [
            "pageNumber=9223372036854775807&pageSize=100",
            "pageNumber=92233720368547758&pageSize=100",
            "pageNumber=1000000&pageSize=100",
        ] {
            let (status, body) = s.get(&format!("{HUBS}?{query}"), &t).await;
            assert_handled(status, &body, query);
            if status.is_success() {
                assert_eq!(body["results"], json!([]), "{query}: {body}");
            }
        }
        let (status, body) = s
            .get(
                "/api/v1/integrations?pageNumber=9223372036854775807&pageSize=100",
                &t,
            )
            .await;
        assert_handled(status, &body, "integrations page");

        // Unknown keys, duplicate keys and odd key spellings are handled.
        let (status, body) = s
            .raw(
                Method::POST,
                HUBS,
                Some(&t),
                JSON,
                r#"{"name":"Dup","name":"Dup2","description":"d","__proto__":{},"":1}"#,
            )
            .await;
        assert_handled(status, &body, "duplicate keys");

        // Hostile path and query strings.
        for path in [
            format!("{HUBS}/{}", "a".repeat(10_000)),
            format!("{HUBS}?pageSize={}", "9".repeat(10_000)),
            format!("{HUBS}/%00%00"),
            format!("{HUBS}/..%2F..%2Fetc%2Fpasswd"),
            format!(
                "/api/v1/integrations/hubs/{}/%F0%9F%A6%80",
                uuid::Uuid::new_v4()
            ),
        ] {
            let (status, body) = s.get(&path, &t).await;
            assert_handled(status, &body, &path);
            assert!(status.is_client_error(), "{path}: {status}");
        }

        // The server is still fine.
        let (status, list) = s.get(HUBS, &t).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        s.stop().await;
    }
}

#[tokio::test]
async fn error_bodies_are_json_whatever_rejected_the_request() {
    let s = TestServer::start().await;
    let big = "x".repeat(2 * 1024 * 1024);
    let requests = [
        s.http.get(s.url("/nope")),
        s.http.patch(s.url(HUBS)).bearer_auth(&s.a.portal),
        s.http
            .post(s.url(HUBS))
            .bearer_auth(&s.a.portal)
            .header("content-type", "text/plain")
            .body("x"),
        s.http
            .post(s.url(HUBS))
            .bearer_auth(&s.a.portal)
            .header("content-type", "application/json")
            .body(big),
        s.http.get(s.url(HUBS)),
        s.http.get(s.url(HUBS)).bearer_auth(&s.a.engine),
        s.http
            .get(s.url(&format!("{HUBS}/nope")))
            .bearer_auth(&s.a.portal),
        s.http
            .get(s.url(&format!("{HUBS}?pageSize=0")))
            .bearer_auth(&s.a.portal),
        // A long token still reaches the server's own check.
        s.http.get(s.url(HUBS)).bearer_auth("a".repeat(16 * 1024)),
    ];
    for req in requests {
        let resp = req.send().await.unwrap();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let (status, body) = read(resp).await;
        assert!(status.is_client_error(), "{status} {body}");
        assert!(
            ct.starts_with("application/json"),
            "{status}: content type {ct:?}"
        );
        assert_handled(status, &body, "any rejection");
    }
    // A trailing slash is not another route.
    let (status, body) = s.get(&format!("{HUBS}/"), &s.a.portal).await;
    assert_handled(status, &body, "trailing slash");
    assert!(status.is_client_error(), "{status}");
    s.stop().await;
}

/// A body sent in chunks, with no Content-Length, is measured as it is read: over 1 MiB is 413.
#[tokio::test]
async fn chunked_body_over_1_mib_is_413_with_the_spec_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start().await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/hubs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        s.a.portal
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    // 2 MiB of whitespace in 64 KiB chunks; the server may answer and close before the end.
    for _ in 0..32 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if conn.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let body: serde_json::Value =
        serde_json::from_str(body.trim()).unwrap_or_else(|_| panic!("JSON body in {text}"));
    assert_error(StatusCode::PAYLOAD_TOO_LARGE, &body, 413, "PRT", &[304]);
    s.stop().await;
}
