//! Webhook delivery (SPEC 5.5) to a real HTTP receiver on an ephemeral port: headers and the
//! `v1a` signature, key rotation, retries with the same `webhook-id`, the schedule's jitter,
//! `Retry-After` (seconds or a date, the longer of it and the schedule, at most 24 h), attempt
//! timeouts, 410 Gone, exhaustion and notifications, replay, System bodies and filters, order,
//! the private-address guard, and the deliveries and notifications routes. Waits are read
//! from the deliveries route (`nextAttemptAt` less the end of the last attempt), not timed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

/// The jitter of non-zero delays (SPEC 5.5: ±10 %).
const JITTER: f64 = 0.10;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) path: String,
    headers: std::collections::HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the receiver answers the next request (then 200 once the script is empty).
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    Status(u16),
    /// This status with a `Retry-After` header of this value.
    RetryAfter(u16, String),
    Slow(Duration),
    Redirect(&'static str),
    /// 200 with a body of this many bytes.
    Huge(usize),
}

#[derive(Clone, Default)]
struct Log {
    seen: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    /// Requests being answered now, and the most at once.
    inflight: Arc<Mutex<(usize, usize)>>,
}

pub(crate) struct Receiver {
    base: String,
    log: Log,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        use poem::{handler, web::Data, EndpointExt, Request, Response, Route};

        #[handler]
        async fn hook(req: &Request, body: Vec<u8>, log: Data<&Log>) -> Response {
            {
                let mut f = log.inflight.lock().unwrap();
                f.0 += 1;
                f.1 = f.1.max(f.0);
            }
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            log.seen.lock().unwrap().push(Received {
                path: req.uri().path().to_owned(),
                headers,
                body,
            });
            let reply = log.script.lock().unwrap().pop_front();
            let resp = match reply {
                None => Response::builder()
                    .status(poem::http::StatusCode::OK)
                    .finish(),
                Some(Reply::Status(s)) => Response::builder()
                    .status(poem::http::StatusCode::from_u16(s).unwrap())
                    .finish(),
                Some(Reply::RetryAfter(s, after)) => Response::builder()
                    .status(poem::http::StatusCode::from_u16(s).unwrap())
                    .header("retry-after", after.as_str())
                    .finish(),
                Some(Reply::Redirect(to)) => Response::builder()
                    .status(poem::http::StatusCode::FOUND)
                    .header("location", to)
                    .finish(),
                Some(Reply::Huge(n)) => Response::builder()
                    .status(poem::http::StatusCode::OK)
                    .body(vec![b'x'; n]),
                Some(Reply::Slow(d)) => {
                    tokio::time::sleep(d).await;
                    Response::builder()
                        .status(poem::http::StatusCode::OK)
                        .finish()
                }
            };
            log.inflight.lock().unwrap().0 -= 1;
            resp
        }

        let log = Log::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let acceptor = poem::listener::TcpAcceptor::from_std(listener).unwrap();
        let app = Route::new()
            .at("/*path", poem::post(hook))
            .data(log.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async {
                        let _ = rx.await;
                    },
                    Some(Duration::from_secs(1)),
                )
                .await;
        });
        Receiver {
            base,
            log,
            stop: Some(tx),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.log.script.lock().unwrap().extend(replies);
    }

    pub(crate) fn seen(&self) -> Vec<Received> {
        self.log.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived (10 s at most).
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..400 {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} requests, got {:?}", self.seen().len());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A server that may post to 127.0.0.1, with a short schedule.
pub(crate) async fn server(schedule: &str) -> TestServer {
    let schedule = switchboard::config::parse_schedule(schedule).unwrap();
    TestServer::start_with(Backend::Sqlite, move |args| {
        args.allow_private_webhooks = true;
        args.retry_schedule = schedule;
        args.webhook_timeout = Duration::from_secs(2);
        args.public_host = "sb-test".to_owned();
    })
    .await
}

struct Setup {
    hub: String,
    customer: String,
    agent: Value,
}

impl Setup {
    fn agent_id(&self) -> String {
        self.agent["integrationId"].as_str().unwrap().to_owned()
    }
}

async fn setup(s: &TestServer, hook: &str) -> Setup {
    let hub = s
        .hub(&s.a.portal, &format!("h-{}", uuid::Uuid::now_v7()))
        .await;
    let customer = s
        .direct(&s.a.portal, &hub, "customers", "Customer", json!({}))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = s
        .direct(
            &s.a.portal,
            &hub,
            "agents",
            "Agent",
            json!({ "webhookUrl": hook }),
        )
        .await;
    Setup {
        hub,
        customer,
        agent,
    }
}

async fn deliveries(s: &TestServer, query: &str) -> Value {
    let (st, b) = s
        .get(&format!("/api/v1/deliveries?{query}"), &s.a.portal)
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    b
}

/// Polls the deliveries list until `check` holds (10 s at most).
pub(crate) async fn until(s: &TestServer, query: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        last = deliveries(s, query).await;
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deliveries never matched: {last}");
}

pub(crate) fn verifies(public_hex: &str, r: &Received) -> bool {
    signature_holds(
        public_hex,
        r.header("webhook-id"),
        r.header("webhook-timestamp"),
        &r.body,
        r.header("webhook-signature"),
    )
}

/// Epoch milliseconds of an RFC 3339 time in an answer.
fn millis(v: &Value) -> i64 {
    let t = v.as_str().unwrap_or_else(|| panic!("a time, got {v}"));
    switchboard_domain::time::parse_rfc3339(t).unwrap_or_else(|| panic!("an RFC 3339 time: {t}"))
}

/// The wait the worker chose after attempt `n` (from 0, the last one made) of a pending
/// delivery: its `nextAttemptAt` less the end of that attempt (`at` + `durationMs`), from
/// which SPEC 5.5 counts ("after the end of the previous one").
fn wait_after(d: &Value, n: usize) -> i64 {
    assert_eq!(d["status"], "pending", "{d}");
    assert_eq!(d["attemptCount"], n + 1, "{d}");
    let a = &d["attempts"][n];
    millis(&d["nextAttemptAt"]) - (millis(&a["at"]) + a["durationMs"].as_i64().unwrap())
}

/// The (only) delivery of `integration` once it has made `n` attempts, still pending, read
/// before the next attempt settles (10 s at most).
async fn pending_after(s: &TestServer, integration: &str, n: u64) -> Value {
    let list = until(s, &format!("integrationId={integration}"), |b| {
        b["results"][0]["attemptCount"].as_u64().unwrap_or(0) >= n
    })
    .await;
    let d = list["results"][0].clone();
    assert_eq!(d["attemptCount"], n, "read too late: {d}");
    assert_eq!(d["status"], "pending", "{d}");
    d
}

/// An HTTP date (the IMF-fixdate of RFC 9110 5.6.7) of Unix seconds, written here rather than
/// with the date code the product parses it with: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(unix: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // The civil date of a day count, in 400-year eras of the proleptic Gregorian calendar
    // counted from 0000-03-01 (so that a leap day ends its year).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        // 1970-01-01 was a Thursday.
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[tokio::test]
async fn a_delivery_is_signed_as_spec_5_5_says_and_key_rotation_takes_effect() {
    let r = Receiver::start().await;
    let s = server("0s").await;
    let x = setup(&s, &r.url("/agent")).await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    let conversation = c["conversationId"].as_str().unwrap().to_owned();
    let event = s.say(&s.a.engine, &conversation, "hello").await;

    let got = r.wait_for(1).await;
    let d = &got[0];
    assert_eq!(d.path, "/agent");
    assert_eq!(d.header("content-type"), "application/json");
    assert!(d.header("webhook-id").starts_with("msg_"), "{d:?}");
    let ts: i64 = d.header("webhook-timestamp").parse().unwrap();
    assert!((unix_now() - ts).abs() <= 5, "timestamp {ts}");
    let public = x.agent["configuration"]["publicSigningKey"]
        .as_str()
        .unwrap();
    assert!(
        verifies(public, d),
        "the signature verifies with the public key"
    );
    assert!(d.header("webhook-signature").starts_with("v1a,"));
    assert_eq!(d.header("x-hub-id"), x.hub);
    assert_eq!(d.header("x-integration-id"), x.agent_id());
    assert_eq!(d.header("x-conversation-id"), conversation);
    assert_eq!(d.header("x-public-key"), public);
    assert_eq!(d.header("x-source-system"), "sb-test");
    let body = d.json();
    assert_eq!(
        body.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            "activity",
            "conversationId",
            "conversationProperties",
            "hubId",
            "integrationId",
            "tenantId"
        ]
    );
    assert_eq!(body["hubId"], x.hub);
    assert_eq!(body["tenantId"], s.a.id());
    assert_eq!(body["integrationId"], x.agent_id());
    assert_eq!(body["conversationId"], conversation);
    assert_eq!(
        body["conversationProperties"]["profile"]["device"],
        "Direct"
    );
    assert_eq!(body["activity"]["eventId"], event);
    assert_eq!(body["activity"]["recipient"]["integrationId"], x.agent_id());
    assert_eq!(body["activity"]["message"]["text"], "hello");
    // A tampered body does not verify.
    let mut tampered = d.clone();
    tampered.body.push(b' ');
    assert!(!verifies(public, &tampered));

    // After regenerateKeys, the next delivery verifies only with the new key.
    let (st, renewed) = s
        .put(
            &format!("/api/v1/integrations/{}", x.agent_id()),
            &s.a.portal,
            json!({ "configuration": { "integrationType": "Agent", "webhookUrl": r.url("/agent"),
                                       "regenerateKeys": true } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{renewed}");
    let new_public = renewed["configuration"]["publicSigningKey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_public, public);
    s.say(&s.a.engine, &conversation, "after rotation").await;
    let got = r.wait_for(2).await;
    assert!(verifies(&new_public, &got[1]));
    assert!(!verifies(public, &got[1]));
    assert_eq!(got[1].header("x-public-key"), new_public);
    assert_ne!(got[1].header("webhook-id"), got[0].header("webhook-id"));
    s.stop().await;
}

#[tokio::test]
async fn a_failure_is_retried_with_the_same_webhook_id_and_a_fresh_signature() {
    let r = Receiver::start().await;
    r.script([Reply::Status(503)]);
    // The retry comes at least the delay less its 10 % jitter after the first attempt ends:
    // more than a second, so `webhook-timestamp` (whole seconds) and the signature differ.
    const RETRY_MS: u64 = 1250;
    assert!(RETRY_MS as f64 * (1.0 - JITTER) > 1000.0);
    let s = server(&format!("0s,{RETRY_MS}ms")).await;
    let x = setup(&s, &r.url("/agent")).await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    s.say(
        &s.a.engine,
        c["conversationId"].as_str().unwrap(),
        "retry me",
    )
    .await;
    let got = r.wait_for(2).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_ne!(
        got[0].header("webhook-timestamp"),
        got[1].header("webhook-timestamp")
    );
    assert_ne!(
        got[0].header("webhook-signature"),
        got[1].header("webhook-signature")
    );
    assert_eq!(got[0].body, got[1].body);
    let public = x.agent["configuration"]["publicSigningKey"]
        .as_str()
        .unwrap();
    assert!(verifies(public, &got[0]) && verifies(public, &got[1]));
    let list = until(&s, "status=succeeded", |b| b["total"] == 1).await;
    let d = &list["results"][0];
    assert_eq!(d["attemptCount"], 2);
    assert_eq!(d["webhookId"], got[0].header("webhook-id"));
    assert_eq!(d["attempts"][0]["statusCode"], 503);
    assert_eq!(d["attempts"][1]["statusCode"], 200);
    assert_eq!(d["nextAttemptAt"], Value::Null);
    assert_eq!(d["integrationId"], x.agent_id());
    assert_eq!(d["eventIds"].as_array().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn retry_after_makes_the_next_attempt_wait_the_longer_of_it_and_the_schedule() {
    // The schedule's second delay is 2 s, so 1.8 to 2.2 s with jitter. One receiver asks for
    // more (4 s: Retry-After wins), the other for less (1 s: the schedule wins).
    let longer = Receiver::start().await;
    longer.script([Reply::RetryAfter(429, "4".to_owned())]);
    let shorter = Receiver::start().await;
    shorter.script([Reply::RetryAfter(503, "1".to_owned())]);
    let s = server("0s,2s").await;
    let x = setup(&s, &longer.url("/agent")).await;
    let y = setup(&s, &shorter.url("/agent")).await;
    for who in [&x, &y] {
        let c = s.establish(&s.a.engine, &who.customer, "cust").await;
        s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "later")
            .await;
    }

    let d = pending_after(&s, &x.agent_id(), 1).await;
    assert_eq!(d["attempts"][0]["statusCode"], 429);
    assert_eq!(
        wait_after(&d, 0),
        4000,
        "Retry-After 4 s is longer than the 2 s (±10 %) of the schedule: {d}"
    );
    let d = pending_after(&s, &y.agent_id(), 1).await;
    assert_eq!(d["attempts"][0]["statusCode"], 503);
    let wait = wait_after(&d, 0);
    assert!(
        (1800..=2200).contains(&wait),
        "the schedule's 2 s (±10 %) is longer than Retry-After 1 s, waited {wait} ms: {d}"
    );

    // And the worker kept to those times: no second attempt before `nextAttemptAt`.
    for (who, least) in [(&x, 4000), (&y, 1800)] {
        let list = until(
            &s,
            &format!("integrationId={}&status=succeeded", who.agent_id()),
            |b| b["total"] == 1,
        )
        .await;
        let d = &list["results"][0];
        let first = &d["attempts"][0];
        let end = millis(&first["at"]) + first["durationMs"].as_i64().unwrap();
        let second = millis(&d["attempts"][1]["at"]);
        assert!(
            second - end >= least,
            "second attempt {} ms after the first: {d}",
            second - end
        );
    }
    let (a, b) = (longer.seen(), shorter.seen());
    assert_eq!((a.len(), b.len()), (2, 2));
    s.stop().await;
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured_and_capped_at_24_hours() {
    assert_eq!(
        http_date(784_111_777),
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "the test's own HTTP-date writer (RFC 9110's example)"
    );
    const DAY_MS: i64 = 24 * 3_600_000;
    let in_an_hour = unix_now() + 3600;
    let hour = Receiver::start().await;
    hour.script([Reply::RetryAfter(503, http_date(in_an_hour))]);
    let far_date = Receiver::start().await;
    far_date.script([Reply::RetryAfter(503, http_date(unix_now() + 3 * 86_400))]);
    let far_seconds = Receiver::start().await;
    far_seconds.script([Reply::RetryAfter(429, (7 * 86_400).to_string())]);
    // Without a Retry-After the next attempt would come a second later.
    let s = server("0s,1s").await;
    let mut agents = Vec::new();
    for r in [&hour, &far_date, &far_seconds] {
        let x = setup(&s, &r.url("/agent")).await;
        let c = s.establish(&s.a.engine, &x.customer, "cust").await;
        s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "later")
            .await;
        agents.push(x.agent_id());
    }

    // The date form: the next attempt is at that date (whole seconds; the server compares it
    // with its clock when the answer comes, a few milliseconds before the attempt's end).
    let d = pending_after(&s, &agents[0], 1).await;
    let next = millis(&d["nextAttemptAt"]);
    let due = in_an_hour * 1000;
    assert!(
        (due - 1000..=due + 1000).contains(&next),
        "Retry-After {} gave nextAttemptAt {}: {d}",
        http_date(in_an_hour),
        d["nextAttemptAt"]
    );
    // Three days ahead as a date, or seven days in seconds: 24 hours.
    for agent in &agents[1..] {
        let d = pending_after(&s, agent, 1).await;
        assert_eq!(wait_after(&d, 0), DAY_MS, "capped at 24 h: {d}");
    }
    s.stop().await;
}

#[tokio::test]
async fn gone_pauses_exhaustion_notifies_and_a_replay_keeps_the_webhook_id() {
    let r = Receiver::start().await;
    r.script([Reply::Status(500), Reply::Status(500), Reply::Status(410)]);
    let s = server("0s,100ms").await;
    let x = setup(&s, &r.url("/agent")).await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    let conversation = c["conversationId"].as_str().unwrap().to_owned();
    s.say(&s.a.engine, &conversation, "one").await;
    // Two attempts, both 500: exhausted.
    let failed = until(&s, "status=failed", |b| b["total"] == 1).await;
    let d = failed["results"][0].clone();
    assert_eq!(d["attemptCount"], 2);
    assert_eq!(d["lastError"], "HTTP 500");
    let (_, notes) = s.get("/api/v1/notifications", &s.a.portal).await;
    assert_eq!(notes["total"], 1, "{notes}");
    assert_eq!(notes["results"][0]["kind"], "exhausted");
    assert_eq!(notes["results"][0]["deliveryId"], d["deliveryId"]);
    assert_eq!(notes["results"][0]["integrationId"], x.agent_id());
    let (_, theirs) = s.get("/api/v1/notifications", &s.b.portal).await;
    assert_eq!(theirs["total"], 0);

    // Replay: the receiver now answers 410 Gone: failed again, and the integration paused.
    let id = d["deliveryId"].as_str().unwrap();
    let (st, replayed) = s
        .post(
            &format!("/api/v1/deliveries/{id}/retry"),
            &s.a.portal,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["webhookId"], d["webhookId"]);
    let got = r.wait_for(3).await;
    assert_eq!(
        got[2].header("webhook-id"),
        d["webhookId"].as_str().unwrap()
    );
    until(&s, "status=failed", |b| {
        b["results"][0]["attemptCount"] == 3
    })
    .await;
    let (_, integration) = s
        .get(
            &format!("/api/v1/integrations/{}", x.agent_id()),
            &s.a.portal,
        )
        .await;
    assert_eq!(integration["statusId"], 3002);
    let (_, notes) = s.get("/api/v1/notifications", &s.a.portal).await;
    assert_eq!(notes["results"][1]["kind"], "gone");

    // The routes' errors.
    let (st, b) = s
        .post(
            &format!("/api/v1/deliveries/{id}/retry"),
            &s.b.portal,
            json!({}),
        )
        .await;
    assert_error(st, &b, 404, "PRT", &[105]);
    let (st, b) = s
        .post(
            &format!("/api/v1/deliveries/{id}/retry"),
            &s.a.engine,
            json!({}),
        )
        .await;
    assert_error(st, &b, 403, "PRT", &[101]);
    let (st, b) = s.get("/api/v1/deliveries?status=lost", &s.a.portal).await;
    assert_error(st, &b, 400, "PRT", &[206]);
    let (st, b) = s
        .get("/api/v1/deliveries?integrationId=nope", &s.a.portal)
        .await;
    assert_error(st, &b, 400, "PRT", &[203]);
    let (st, b) = s.get("/api/v1/deliveries?pageSize=0", &s.a.portal).await;
    assert_error(st, &b, 400, "PRT", &[206]);
    assert_eq!(
        deliveries(&s, &format!("integrationId={}", x.agent_id())).await["total"],
        1
    );
    assert_eq!(
        deliveries(&s, &format!("integrationId={}", uuid::Uuid::now_v7())).await["total"],
        0
    );
    let (_, theirs) = s.get("/api/v1/deliveries", &s.b.portal).await;
    assert_eq!(theirs["total"], 0);
    s.stop().await;
}

#[tokio::test]
async fn gone_mid_schedule_stops_the_retries_fails_the_delivery_and_pauses_the_integration() {
    let r = Receiver::start().await;
    // 500, then 410 Gone; anything after would be answered 200.
    r.script([Reply::Status(500), Reply::Status(410)]);
    let s = server("0s,100ms,100ms,100ms,100ms").await;
    let x = setup(&s, &r.url("/agent")).await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    let conversation = c["conversationId"].as_str().unwrap().to_owned();
    s.say(&s.a.engine, &conversation, "one").await;
    let list = until(&s, &format!("integrationId={}", x.agent_id()), |b| {
        b["total"] == 1 && b["results"][0]["status"] != "pending"
    })
    .await;
    let d = list["results"][0].clone();
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["attemptCount"], 2, "no attempt after the 410: {d}");
    assert_eq!(d["attempts"][0]["statusCode"], 500);
    assert_eq!(d["attempts"][1]["statusCode"], 410);
    assert_eq!(d["lastError"], "HTTP 410");
    assert_eq!(d["nextAttemptAt"], Value::Null);
    let (_, integration) = s
        .get(
            &format!("/api/v1/integrations/{}", x.agent_id()),
            &s.a.portal,
        )
        .await;
    assert_eq!(integration["statusId"], 3002, "paused: {integration}");
    let (_, notes) = s.get("/api/v1/notifications", &s.a.portal).await;
    assert_eq!(notes["total"], 1, "{notes}");
    assert_eq!(notes["results"][0]["kind"], "gone");
    assert_eq!(notes["results"][0]["deliveryId"], d["deliveryId"]);
    assert_eq!(notes["results"][0]["integrationId"], x.agent_id());

    // Active again, the next message of the conversation is the next request the receiver
    // gets: the failed delivery was not attempted again in between, and stays as it was.
    let (st, b) = s
        .put(
            &format!("/api/v1/integrations/{}", x.agent_id()),
            &s.a.portal,
            json!({ "statusId": 3000 }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    s.say(&s.a.engine, &conversation, "two").await;
    let got = r.wait_for(3).await;
    assert_eq!(
        got[0].header("webhook-id"),
        d["webhookId"].as_str().unwrap()
    );
    assert_eq!(
        got[1].header("webhook-id"),
        d["webhookId"].as_str().unwrap()
    );
    assert_ne!(
        got[2].header("webhook-id"),
        d["webhookId"].as_str().unwrap()
    );
    assert_eq!(got[2].json()["activity"]["message"]["text"], "two");
    until(
        &s,
        &format!("integrationId={}&status=succeeded", x.agent_id()),
        |b| b["total"] == 1,
    )
    .await;
    let failed = deliveries(&s, &format!("integrationId={}&status=failed", x.agent_id())).await;
    assert_eq!(failed["results"][0]["attemptCount"], 2, "{failed}");
    assert_eq!(r.seen().len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn retries_wait_the_schedule_with_a_jitter_of_at_most_ten_percent() {
    // Three retries, each 2 s after the end of the attempt before (1.8 to 2.2 s with jitter).
    const DELAY_MS: i64 = 2000;
    const RETRIES: usize = 3;
    let r = Receiver::start().await;
    r.script((0..RETRIES).map(|_| Reply::Status(500)));
    let s = server(&format!("0s{}", format!(",{DELAY_MS}ms").repeat(RETRIES))).await;
    let x = setup(&s, &r.url("/agent")).await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "jitter")
        .await;
    // The wait after each failed attempt, read while the delivery waits (polled far more often
    // than the 1.8 s it waits at least).
    let query = format!("integrationId={}", x.agent_id());
    let mut waits: Vec<i64> = Vec::new();
    let mut next_at: Vec<i64> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let list = deliveries(&s, &query).await;
        let d = list["results"][0].clone();
        let made = d["attemptCount"].as_u64().unwrap_or(0) as usize;
        if d["status"] == "succeeded" {
            break d;
        }
        assert_eq!(d["status"], "pending", "{d}");
        assert!(
            made <= waits.len() + 1,
            "missed the wait after attempt {}: {d}",
            waits.len() + 1
        );
        if made == waits.len() + 1 {
            waits.push(wait_after(&d, made - 1));
            next_at.push(millis(&d["nextAttemptAt"]));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered in 30 s: {d}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["attemptCount"], RETRIES + 1, "{done}");
    assert_eq!(waits.len(), RETRIES, "{waits:?}");
    let spread = (DELAY_MS as f64 * JITTER).round() as i64;
    for w in &waits {
        assert!(
            (DELAY_MS - spread..=DELAY_MS + spread).contains(w),
            "a wait of {w} ms, not {DELAY_MS} ms ± {spread}: {waits:?}"
        );
    }
    assert!(
        waits.iter().any(|w| *w != waits[0]),
        "jittered waits are not all the same: {waits:?}"
    );
    // Each retry came when it was due, not before.
    for (n, due) in next_at.iter().enumerate() {
        let at = millis(&done["attempts"][n + 1]["at"]);
        assert!(at >= *due, "attempt {} at {at}, due {due}: {done}", n + 2);
    }
    s.stop().await;
}

#[tokio::test]
async fn an_attempt_that_times_out_is_recorded_as_a_failed_attempt_and_retried() {
    let r = Receiver::start().await;
    // The first answer would come after 6 s; the attempt's timeout is 1 s.
    r.script([Reply::Slow(Duration::from_secs(6))]);
    let schedule = switchboard::config::parse_schedule("0s,200ms").unwrap();
    let s = TestServer::start_with(Backend::Sqlite, move |args| {
        args.allow_private_webhooks = true;
        args.retry_schedule = schedule;
        args.webhook_timeout = Duration::from_secs(1);
    })
    .await;
    let x = setup(&s, &r.url("/agent")).await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "slow")
        .await;
    let list = until(&s, "status=succeeded", |b| b["total"] == 1).await;
    let d = &list["results"][0];
    assert_eq!(d["attemptCount"], 2, "{d}");
    let timed_out = &d["attempts"][0];
    assert_eq!(timed_out["statusCode"], Value::Null, "no answer: {d}");
    let error = timed_out["error"].as_str().unwrap_or("");
    assert!(error.contains("timeout"), "the failure says why: {d}");
    let took = timed_out["durationMs"].as_i64().unwrap();
    assert!(
        (1000..6000).contains(&took),
        "cut at the 1 s timeout, not at the answer: {took} ms"
    );
    assert_eq!(d["attempts"][1]["statusCode"], 200);
    let got = r.seen();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    s.stop().await;
}

#[tokio::test]
async fn a_system_integration_gets_each_matching_activity_once() {
    let r = Receiver::start().await;
    let s = server("0s").await;
    let x = setup(&s, &r.url("/agent")).await;
    let system = s
        .integration(
            &s.a.portal,
            &x.hub,
            json!({ "name": "crm", "channelId": "System",
                    "configuration": { "webhookUrl": r.url("/crm"),
                                       "events": ["message", "message:customer", "conversation:opened"] } }),
        )
        .await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    let conversation = c["conversationId"].as_str().unwrap().to_owned();
    let event = s.say(&s.a.engine, &conversation, "to the crm").await;
    // typing_on matches no filter of the System integration.
    s.send(
        &s.a.engine,
        &conversation,
        json!({ "type": "event", "event": { "type": "typing_on" } }),
    )
    .await;
    // conversation:opened, the message: two to /crm; the message and the event to /agent.
    // Deliveries are written with their activities, so the System integration's are all
    // there now: one per matching activity, each answered once.
    let system_id = system["integrationId"].as_str().unwrap();
    let list = deliveries(&s, &format!("integrationId={system_id}")).await;
    assert_eq!(list["total"], 2, "{list}");
    let opened_event = list["results"][0]["eventIds"][0].clone();
    let carried: Vec<&Value> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["eventIds"].as_array().unwrap())
        .collect();
    assert_eq!(carried, vec![&opened_event, &json!(event)], "{list}");
    let done = until(
        &s,
        &format!("integrationId={system_id}&status=succeeded"),
        |b| b["total"] == 2,
    )
    .await;
    for d in done["results"].as_array().unwrap() {
        assert_eq!(d["attemptCount"], 1, "{d}");
    }
    let got = r.wait_for(4).await;
    let crm: Vec<Received> = r.seen().into_iter().filter(|x| x.path == "/crm").collect();
    assert_eq!(crm.len(), 2, "{got:?}");
    let opened = crm[0].json();
    assert_eq!(
        opened["activities"][0]["eventTrigger"],
        "conversation:opened"
    );
    assert_eq!(opened["activities"][0]["event"]["reason"], "establish");
    let message = crm[1].json();
    assert!(message.get("activity").is_none());
    assert_eq!(message["integrationId"], system["integrationId"]);
    assert_eq!(message["activities"].as_array().unwrap().len(), 1);
    assert_eq!(message["activities"][0]["eventId"], event);
    assert_eq!(
        message["activities"][0]["recipient"]["integrationType"],
        "System"
    );
    let public = system["configuration"]["publicSigningKey"]
        .as_str()
        .unwrap();
    assert!(verifies(public, &crm[1]));
    s.stop().await;
}

#[tokio::test]
async fn one_conversation_arrives_in_order_one_at_a_time() {
    let r = Receiver::start().await;
    r.script((0..10).map(|_| Reply::Slow(Duration::from_millis(40))));
    let s = server("0s").await;
    let x = setup(&s, &r.url("/agent")).await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    let conversation = c["conversationId"].as_str().unwrap().to_owned();
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(s.say(&s.a.engine, &conversation, &format!("m{i}")).await);
    }
    let got = r.wait_for(10).await;
    let order: Vec<i64> = got
        .iter()
        .map(|d| d.json()["activity"]["eventId"].as_i64().unwrap())
        .collect();
    assert_eq!(order, sent);
    assert_eq!(r.log.inflight.lock().unwrap().1, 1, "one at a time");
    s.stop().await;
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let r = Receiver::start().await;
    let schedule = switchboard::config::parse_schedule("0s,24h").unwrap();
    let s = TestServer::start_with(Backend::Sqlite, move |args| {
        args.retry_schedule = schedule;
        args.allow_private_webhooks = false;
    })
    .await;
    // Accepted at creation; refused at delivery time, after DNS ("localhost").
    let x = setup(&s, &r.url("/agent").replace("127.0.0.1", "localhost")).await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "no")
        .await;
    let list = until(&s, "", |b| {
        b["results"][0]["attemptCount"].as_i64().unwrap_or(0) >= 1
    })
    .await;
    let d = &list["results"][0];
    assert_eq!(d["status"], "pending", "retried like any failure");
    assert!(d["nextAttemptAt"].as_str().is_some());
    let error = d["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("private"), "{error}");
    assert_eq!(d["attempts"][0]["statusCode"], Value::Null);
    // An IP literal too.
    s.put(
        &format!("/api/v1/integrations/{}", x.agent_id()),
        &s.a.portal,
        json!({ "configuration": { "integrationType": "Agent", "webhookUrl": r.url("/agent") } }),
    )
    .await;
    let c2 = s.establish(&s.a.engine, &x.customer, "cust-2").await;
    s.say(&s.a.engine, c2["conversationId"].as_str().unwrap(), "no")
        .await;
    until(&s, "", |b| {
        b["results"][1]["attemptCount"].as_i64().unwrap_or(0) >= 1
    })
    .await;
    let list = deliveries(&s, "").await;
    let error = list["results"][1]["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("private"), "{error}");
    assert!(r.seen().is_empty(), "nothing reached the receiver");
    s.stop().await;
}

#[tokio::test]
async fn a_silent_receiver_does_not_stall_other_endpoints() {
    let silent = Receiver::start().await;
    silent.script((0..200).map(|_| Reply::Slow(Duration::from_secs(5))));
    let healthy = Receiver::start().await;
    let schedule = switchboard::config::parse_schedule("0s,24h").unwrap();
    let s = TestServer::start_with(Backend::Sqlite, move |args| {
        args.allow_private_webhooks = true;
        args.retry_schedule = schedule;
        args.webhook_timeout = Duration::from_secs(3);
    })
    .await;
    let x = setup(&s, &silent.url("/silent")).await;
    // More conversations to the silent endpoint than the worker has slots.
    for i in 0..80 {
        let c = s
            .establish(&s.a.engine, &x.customer, &format!("c{i}"))
            .await;
        s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "hello?")
            .await;
    }
    silent.wait_for(1).await;
    // Another hub's agent with a healthy endpoint.
    let y = setup(&s, &healthy.url("/healthy")).await;
    let c = s.establish(&s.a.engine, &y.customer, "other").await;
    s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "fast")
        .await;
    healthy.wait_for(1).await;
    assert!(
        silent.log.inflight.lock().unwrap().0 > 0,
        "delivered while the silent endpoint still hangs"
    );
    assert!(
        silent.seen().len() <= 16,
        "at most 16 in flight to one endpoint"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_a_huge_answer_is_cut() {
    let r = Receiver::start().await;
    r.script([Reply::Redirect("/elsewhere"), Reply::Huge(20 * 1024 * 1024)]);
    let s = server("0s,100ms").await;
    let x = setup(&s, &r.url("/agent")).await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "hi")
        .await;
    let list = until(&s, "status=succeeded", |b| b["total"] == 1).await;
    let d = &list["results"][0];
    assert_eq!(d["attempts"][0]["statusCode"], 302, "not followed: {d}");
    assert_eq!(d["attempts"][1]["statusCode"], 200);
    let paths: Vec<String> = r.seen().into_iter().map(|x| x.path).collect();
    assert_eq!(
        paths,
        vec!["/agent", "/agent"],
        "the redirect was not followed"
    );
    s.stop().await;
}

/// The text of every refused or unresolved destination.
const REFUSED: &str = switchboard_delivery::webhook::REFUSED_DESTINATION;

#[tokio::test]
async fn refused_destinations_read_the_same_whatever_the_reason() {
    let r = Receiver::start().await;
    let schedule = switchboard::config::parse_schedule("0s,24h").unwrap();
    let s = TestServer::start_with(Backend::Sqlite, move |args| {
        args.retry_schedule = schedule;
        args.allow_private_webhooks = false;
    })
    .await;
    let port = r.base.rsplit(':').next().unwrap().to_owned();
    let hooks = [
        // A name that resolves to a private address, and one that does not resolve.
        format!("http://localhost:{port}/agent"),
        format!("http://nowhere.invalid:{port}/agent"),
        // IP literals: IPv4, and IPv4-compatible and 6to4 IPv6 forms of loopback.
        format!("http://127.0.0.1:{port}/agent"),
        format!("http://[::127.0.0.1]:{port}/agent"),
        format!("http://[2002:7f00:1::1]:{port}/agent"),
    ];
    for (i, hook) in hooks.iter().enumerate() {
        let x = setup(&s, hook).await;
        let c = s
            .establish(&s.a.engine, &x.customer, &format!("cust-{i}"))
            .await;
        s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "no")
            .await;
    }
    let list = until(&s, "", |b| {
        b["results"].as_array().is_some_and(|all| {
            all.len() == hooks.len()
                && all
                    .iter()
                    .all(|d| d["attemptCount"].as_i64().unwrap_or(0) >= 1)
        })
    })
    .await;
    for d in list["results"].as_array().unwrap() {
        assert_eq!(d["attempts"][0]["error"], REFUSED, "{d}");
        assert_eq!(d["attempts"][0]["statusCode"], Value::Null);
    }
    assert!(r.seen().is_empty(), "nothing reached the receiver");
    s.stop().await;
}

/// A stand-in for an HTTP proxy on 127.0.0.1: it records each request's head and answers 200.
struct ProxyLike {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ProxyLike {
    async fn start() -> ProxyLike {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // The head, then as much of the body as it declares (1 s at most).
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        while let Ok(n) = conn.read(&mut chunk).await {
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                            let text = String::from_utf8_lossy(&buf).to_string();
                            if let Some(end) = text.find("\r\n\r\n") {
                                let length = text[..end]
                                    .lines()
                                    .find_map(|l| {
                                        let (k, v) = l.split_once(':')?;
                                        k.eq_ignore_ascii_case("content-length")
                                            .then(|| v.trim().parse::<usize>().ok())?
                                    })
                                    .unwrap_or(0);
                                if buf.len() >= end + 4 + length {
                                    break;
                                }
                            }
                        }
                    })
                    .await;
                    let head = String::from_utf8_lossy(&buf);
                    let line = head.lines().next().unwrap_or("").to_owned();
                    log.lock().unwrap().push(line);
                    let _ = conn
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        ProxyLike { port, seen, task }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ProxyLike {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Set in the child process of [`webhooks_ignore_the_environment_proxy`].
const PROXY_CHILD: &str = "IT_WEBHOOK_PROXY_CHILD";

#[tokio::test]
async fn webhooks_ignore_the_environment_proxy() {
    if std::env::var_os(PROXY_CHILD).is_some() {
        // In the child, whose environment names the proxy (the parent checks what it saw).
        let r = Receiver::start().await;
        let s = server("0s,24h").await;
        // `localhost`, not 127.0.0.1: NO_PROXY lets only the test's own calls go direct.
        let x = setup(&s, &r.url("/agent").replace("127.0.0.1", "localhost")).await;
        let c = s.establish(&s.a.engine, &x.customer, "cust").await;
        s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "direct")
            .await;
        r.wait_for(1).await;
        until(&s, "status=succeeded", |b| b["total"] == 1).await;
        s.stop().await;
        return;
    }
    // Proxy variables are read by every HTTP client built in the process: set them only in a
    // child process that runs this test alone.
    let proxy = ProxyLike::start().await;
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "webhooks::webhooks_ignore_the_environment_proxy",
            "--exact",
            "--test-threads=1",
        ])
        .env(PROXY_CHILD, "1")
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1");
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        child.env(var, &url).env(var.to_ascii_lowercase(), &url);
    }
    let out = child.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(proxy.seen(), Vec::<String>::new(), "the proxy saw nothing");
}

#[tokio::test]
async fn an_operator_proxy_carries_webhooks_but_private_literals_are_still_refused() {
    let r = Receiver::start().await;
    let proxy = ProxyLike::start().await;
    let schedule = switchboard::config::parse_schedule("0s,24h").unwrap();
    // The proxy by name: its own host resolves to loopback, which the guard lets through.
    let via = format!("http://localhost:{}", proxy.port);
    let s = TestServer::start_with(Backend::Sqlite, move |args| {
        args.retry_schedule = schedule;
        args.allow_private_webhooks = false;
        args.webhook_proxy = Some(via);
    })
    .await;
    // A host name goes to the proxy, which resolves it.
    let x = setup(&s, "http://hook.example.invalid/agent").await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "via")
        .await;
    until(&s, "status=succeeded", |b| b["total"] == 1).await;
    assert_eq!(
        proxy.seen(),
        vec!["POST http://hook.example.invalid/agent HTTP/1.1"]
    );
    // A private IP literal is refused before the proxy.
    let y = setup(&s, &r.url("/agent")).await;
    let c = s.establish(&s.a.engine, &y.customer, "cust-2").await;
    s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "no")
        .await;
    let list = until(&s, "status=pending", |b| {
        b["results"][0]["attemptCount"].as_i64().unwrap_or(0) >= 1
    })
    .await;
    assert_eq!(list["results"][0]["attempts"][0]["error"], REFUSED);
    assert_eq!(proxy.seen().len(), 1, "the proxy saw only the first");
    assert!(r.seen().is_empty());
    s.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_fresh_servers_database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let r = Receiver::start().await;
    let s = server("0s,24h").await;
    // A write, so that the write-ahead log and its index hold something.
    let x = setup(&s, &r.url("/agent")).await;
    let c = s.establish(&s.a.engine, &x.customer, "cust").await;
    s.say(&s.a.engine, c["conversationId"].as_str().unwrap(), "secret")
        .await;
    r.wait_for(1).await;
    let path = s
        .database_url
        .strip_prefix("sqlite://")
        .and_then(|p| p.split('?').next())
        .unwrap()
        .to_owned();
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}: {:o}", mode & 0o777);
    }
    s.stop().await;
}
