//! Rate limits (SPEC 1, code 429): token buckets per tenant (portal and engine APIs, websocket
//! frames) and per client IP address (`/connect/token`, requests without credentials),
//! answered 429 with `Retry-After` and the SPEC 1 body (on a websocket: an `error` frame, the
//! socket stays open); shared by two nodes through Redis; open when Redis fails.
//!
//! Buckets that must not refill during a test refill once a minute (`1/m:N`): the N+1st request
//! is refused however slow the machine. Tests that wait for a token use `1/s`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard_domain::rate::Rate;

use crate::support::*;

fn rate(text: &str) -> Rate {
    Rate::parse(text).unwrap()
}

/// The Redis URL of the tests, or `None` after a `SKIPPED` line naming the test.
fn redis(test: &str) -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        skipped(test, "Redis", "TEST_REDIS_URL=redis://127.0.0.1:6379");
    }
    url
}

/// The value of a counter in the `/metrics` text (0 when absent).
async fn counter(s: &TestServer, series: &str) -> f64 {
    let text = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Asserts a 429 answer: the SPEC 1 body with code 429 and a `Retry-After` of whole seconds
/// (1 to `max`); answers it.
fn assert_429(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    prefix: &str,
    max: u64,
) -> u64 {
    assert_error(status, body, 429, prefix, &[429]);
    let retry: u64 = headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("Retry-After on {body}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=max).contains(&retry), "Retry-After {retry}");
    let text = body["errors"][0]["description"].as_str().unwrap();
    assert!(
        text.starts_with("Too many requests: ") && text.contains(&format!("retry in {retry} s")),
        "{text}"
    );
    retry
}

#[tokio::test]
async fn the_101st_request_of_a_burst_is_429_with_retry_after_and_tenants_are_independent() {
    for backend in backends("the_101st_request_of_a_burst_is_429") {
        let s = TestServer::start_with(backend, |a| a.rate_limit_portal = rate("1/m:100")).await;
        let before = counter(&s, "switchboard_rate_limited_total{limit=\"portal\"}").await;
        for i in 1..=100 {
            let (status, body) = s.get("/api/v1/hubs", &s.a.portal).await;
            assert_eq!(status, StatusCode::OK, "request {i}: {body}");
        }
        let (status, headers, body) = s
            .call_full(Method::GET, "/api/v1/hubs", Some(&s.a.portal), None)
            .await;
        assert_429(status, &headers, &body, "PRT", 60);
        // A write is refused the same way.
        let (status, headers, body) = s
            .call_full(
                Method::POST,
                "/api/v1/hubs",
                Some(&s.a.portal),
                Some(&json!({ "name": "refused", "description": "x" })),
            )
            .await;
        assert_429(status, &headers, &body, "PRT", 60);

        // The other tenant has its own bucket, and the engine API its own limit.
        let (status, body) = s.get("/api/v1/hubs", &s.b.portal).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = s
            .post(
                "/api/v1/conversations/establish",
                &s.a.engine,
                json!({ "integrationId": uuid::Uuid::now_v7(), "binding": "x" }),
            )
            .await;
        assert_error(status, &body, 404, "ENG", &[6000]);

        let after = counter(&s, "switchboard_rate_limited_total{limit=\"portal\"}").await;
        assert!(
            after >= before + 2.0,
            "refusals counted: {before} -> {after}"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn the_engine_limit_covers_inbound_and_a_token_waits_for_retry_after() {
    let s = TestServer::start_with(Backend::Sqlite, |a| a.rate_limit_engine = rate("1/s:3")).await;
    let hub = s.hub(&s.a.portal, "h").await;
    let customer = s
        .direct(&s.a.portal, &hub, "customers", "Customer", json!({}))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.direct(&s.a.portal, &hub, "agents", "Agent", json!({}))
        .await;
    let c = s.establish(&s.a.engine, &customer, "cust").await;
    let id = c["conversationId"].as_str().unwrap().to_owned();
    // Sends until refused (a token comes back every second: on a slow machine a few more
    // pass); the guard stops a limiter that never refuses.
    let message = json!({ "type": "message", "message": { "type": "text", "text": "hi" } });
    let path = format!("/inbound/customer/v1/direct/activity/{id}");
    let mut sent = 0;
    let retry = loop {
        let (status, headers, body) = s
            .call_full(Method::POST, &path, Some(&s.a.engine), Some(&message))
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            break assert_429(status, &headers, &body, "ENG", 1);
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        sent += 1;
        assert!(sent < 100, "100 requests at 1/s:3 were all allowed");
    };
    assert!(
        sent >= 2,
        "the establish took one token, the burst is 3: {sent} sent"
    );
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let (status, body) = s.send(&s.a.engine, &id, message).await;
    assert_eq!(status, StatusCode::OK, "after Retry-After: {body}");
    s.stop().await;
}

#[tokio::test]
async fn token_requests_and_requests_without_credentials_are_limited_per_client_ip() {
    let s = TestServer::start_with(Backend::Sqlite, |a| {
        // The start-up took 4 tokens from 127.0.0.1, which sends no header.
        a.rate_limit_token = rate("1/m:5");
        a.rate_limit_public = rate("1/m:2");
        a.client_ip_header = Some("x-forwarded-for".parse().unwrap());
    })
    .await;
    let id = s.a.creds.portal.client_id.to_string();
    let secret = s.a.creds.portal.client_secret.clone();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let token = |ip: &'static str| {
        s.http
            .post(s.url("/connect/token"))
            .header("x-forwarded-for", format!("10.9.8.7, {ip}"))
            .form(&form)
            .send()
    };
    for i in 1..=5 {
        let (status, body) = read(token("203.0.113.1").await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "token {i}: {body}");
    }
    let resp = token("203.0.113.1").await.unwrap();
    let headers = resp.headers().clone();
    let (status, body) = read(resp).await;
    assert_429(status, &headers, &body, "IDT", 60);
    // Another address has its own bucket; the first one is not a key (the proxy's is the last).
    let (status, body) = read(token("203.0.113.2").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Without credentials: unknown routes, the document, an API route without a token.
    let anonymous = |path: &'static str| {
        s.http
            .get(s.url(path))
            .header("x-forwarded-for", "198.51.100.4")
            .send()
    };
    let (status, _) = read(anonymous("/nope").await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = read(anonymous("/api/v1/hubs").await.unwrap()).await;
    assert_error(status, &body, 401, "PRT", &[102]);
    let resp = anonymous("/openapi.json").await.unwrap();
    let headers = resp.headers().clone();
    let (status, body) = read(resp).await;
    assert_429(status, &headers, &body, "PRT", 60);
    // Probes and the scrape are never limited; requests with a token count for their tenant.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let resp = anonymous(path).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    let resp = s
        .http
        .get(s.url("/api/v1/hubs"))
        .header("x-forwarded-for", "198.51.100.4")
        .bearer_auth(&s.a.portal)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn refused_credentials_count_against_the_addresss_public_limit() {
    let s = TestServer::start_with(Backend::Sqlite, |a| {
        a.rate_limit_public = rate("1/m:3");
        a.client_ip_header = Some("x-forwarded-for".parse().unwrap());
    })
    .await;
    let with = |ip: &'static str, token: String| {
        s.http
            .get(s.url("/api/v1/hubs"))
            .header("x-forwarded-for", ip)
            .bearer_auth(token)
            .send()
    };
    // A forged token is a request without credentials: three are answered 401, the fourth 429.
    for _ in 1..=3 {
        let (status, body) = read(with("198.51.100.9", "forged".to_owned()).await.unwrap()).await;
        assert_error(status, &body, 401, "PRT", &[102]);
    }
    let resp = with("198.51.100.9", "forged".to_owned()).await.unwrap();
    let headers = resp.headers().clone();
    let (status, body) = read(resp).await;
    assert_429(status, &headers, &body, "PRT", 60);
    // Valid credentials from that address still pass (they count for their tenant), and
    // another address's forged token still gets its 401.
    let (status, body) = read(with("198.51.100.9", s.a.portal.clone()).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = read(with("198.51.100.10", "forged".to_owned()).await.unwrap()).await;
    assert_error(status, &body, 401, "PRT", &[102]);
    s.stop().await;
}

#[tokio::test]
async fn a_websocket_frame_over_the_limit_gets_a_429_error_frame_and_the_socket_stays_open() {
    for backend in backends("a_websocket_frame_over_the_limit_gets_a_429_error_frame") {
        let s = TestServer::start_with(backend, |a| a.rate_limit_ws_frames = rate("1/s:3")).await;
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
        let agent = agent["integrationId"].as_str().unwrap().to_owned();
        let c = s.establish(&s.a.engine, &customer, "cust").await;
        let id = c["conversationId"].as_str().unwrap().to_owned();
        let mut ws = s.ws(&format!("iId={agent}"), Some(&s.a.engine)).await;
        let speak = |text: String| {
            json!({ "type": "activity", "ref": text, "conversationId": id,
                    "activity": { "type": "message", "message": { "type": "text", "text": text } } })
        };

        // Frames until one is refused (a token comes back every second: on a slow machine a
        // few more pass); the guard stops a limiter that never refuses.
        let mut acked = Vec::new();
        let refused = loop {
            let text = format!("m{}", acked.len() + 1);
            send_frame(&mut ws, speak(text.clone())).await;
            let answer = frame(&mut ws).await;
            if answer["type"] == "error" {
                break (text, answer);
            }
            assert_eq!(
                (&answer["type"], &answer["ref"]),
                (&json!("ack"), &json!(text))
            );
            acked.push(text);
            assert!(acked.len() < 100, "100 frames at 1/s:3 were all executed");
        };
        let (text, answer) = refused;
        assert!(acked.len() >= 3, "the burst is 3: {acked:?}");
        assert_eq!(answer["ref"], text, "{answer}");
        assert_eq!(answer["status"], 429, "{answer}");
        assert_eq!(answer["errors"][0]["code"], 429, "{answer}");
        let description = answer["errors"][0]["description"].as_str().unwrap();
        assert!(
            description.starts_with("Too many requests: ")
                && description.ends_with("(code: ENG000429)"),
            "{description}"
        );

        // The socket stays open and works once a token is back.
        tokio::time::sleep(Duration::from_secs(1)).await;
        send_frame(&mut ws, speak("after".to_owned())).await;
        let answer = frame(&mut ws).await;
        assert_eq!(
            (&answer["type"], &answer["ref"]),
            (&json!("ack"), &json!("after"))
        );

        // The refused frame was not executed.
        let (status, copies) = s
            .get(
                &format!("/api/v1/interactions/activities/{id}?type=Agent"),
                &s.a.engine,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{copies}");
        let texts: Vec<&str> = copies
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["message"]["text"].as_str())
            .collect();
        assert!(
            !texts.contains(&text.as_str()),
            "{text} was refused: {texts:?}"
        );
        assert!(texts.contains(&"after"), "{texts:?}");
        s.stop().await;
    }
}

#[tokio::test]
async fn two_nodes_sharing_redis_share_one_bucket() {
    let Some(redis) = redis("two_nodes_sharing_redis_share_one_bucket") else {
        return;
    };
    let backend = if postgres_url().is_some() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let settings = |a: &mut switchboard::ServeArgs| {
        a.redis_url = Some(redis.clone());
        a.rate_limit_portal = rate("1/m:10");
    };
    let s = TestServer::start_with(backend, settings).await;
    let two = Peer::start_with(&s, settings).await;
    // Ten requests, alternating between the nodes, empty the one bucket of the tenant; half-way
    // Redis forgets its scripts (as after a restart), and the nodes load theirs again.
    for i in 0..10 {
        if i == 5 {
            script_flush(&redis).await;
        }
        let base = if i % 2 == 0 {
            s.base.clone()
        } else {
            two.base.clone()
        };
        let resp = s
            .http
            .get(format!("{base}/api/v1/hubs"))
            .bearer_auth(&s.a.portal)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "request {i}");
    }
    for base in [&s.base, &two.base] {
        let resp = s
            .http
            .get(format!("{base}/api/v1/hubs"))
            .bearer_auth(&s.a.portal)
            .send()
            .await
            .unwrap();
        let headers = resp.headers().clone();
        let (status, body) = read(resp).await;
        assert_429(status, &headers, &body, "PRT", 60);
    }
    two.stop().await;
    s.stop().await;
}

/// `SCRIPT FLUSH` on the Redis at `url`, in the protocol's own words.
async fn script_flush(url: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(redis_address(url))
        .await
        .unwrap();
    conn.write_all(b"*2\r\n$6\r\nSCRIPT\r\n$5\r\nFLUSH\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 5];
    conn.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"+OK\r\n");
}

/// `host:port` of a `redis://host:port[/db]` URL.
fn redis_address(url: &str) -> String {
    url.trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

/// A TCP relay to Redis that can be cut: what an outage looks like to a node.
struct Relay {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn to(redis: &str) -> Self {
        let target = redis_address(redis);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { break };
                        let target = target.clone();
                        conns.spawn(async move {
                            if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                }
            }
            drop(listener);
            // Every relayed connection is closed before `cut` returns.
            conns.shutdown().await;
        });
        Self { url, stop, task }
    }

    /// Closes the relayed connections and refuses new ones.
    async fn cut(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

#[tokio::test]
async fn a_redis_outage_fails_open_on_this_nodes_buckets_and_is_counted() {
    let Some(redis) = redis("a_redis_outage_fails_open_on_this_nodes_buckets_and_is_counted")
    else {
        return;
    };
    let relay = Relay::to(&redis).await;
    let url = relay.url.clone();
    let s = TestServer::start_with(Backend::Sqlite, |a| {
        a.redis_url = Some(url);
        a.rate_limit_portal = rate("1/m:3");
    })
    .await;
    for i in 0..3 {
        let (status, body) = s.get("/api/v1/hubs", &s.a.portal).await;
        assert_eq!(status, StatusCode::OK, "request {i}: {body}");
    }
    let (status, headers, body) = s
        .call_full(Method::GET, "/api/v1/hubs", Some(&s.a.portal), None)
        .await;
    assert_429(status, &headers, &body, "PRT", 60);

    let before = counter(&s, "switchboard_rate_limit_fallbacks_total").await;
    relay.cut().await;
    // The shared bucket is empty, but Redis cannot say so: the node's own bucket answers.
    for i in 0..3 {
        let (status, body) = s.get("/api/v1/hubs", &s.a.portal).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "request {i} during the outage: {body}"
        );
    }
    // And it still limits.
    let (status, headers, body) = s
        .call_full(Method::GET, "/api/v1/hubs", Some(&s.a.portal), None)
        .await;
    assert_429(status, &headers, &body, "PRT", 60);
    let after = counter(&s, "switchboard_rate_limit_fallbacks_total").await;
    assert!(
        after >= before + 4.0,
        "fallbacks counted: {before} -> {after}"
    );
    s.stop().await;
}
