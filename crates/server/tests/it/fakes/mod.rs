//! Fakes of the providers (SPEC 7.21): each is a real HTTP server (poem) on `127.0.0.1:0` that
//! checks what it is sent (method, path, authentication, body shape), answers the provider's
//! documented success and error shapes, and records every request for the test's assertions.
//! A test scripts the next answers ([`Mode`]): success, the provider's refusal, 5xx, 429 with
//! its wait hint, too slow. A request that breaks the provider's rules is answered 400 with
//! `"fake: …"` and recorded with its problem, so a test that sent it fails on
//! [`Fake::problems`].

pub mod graph;
pub mod telegram;
pub mod twilio;
pub mod whatsapp;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::StatusCode;
use poem::{Endpoint, Request, Response};
use serde_json::Value;
use tokio::task::JoinHandle;

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string (empty when none).
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body (or query) as form fields, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The first form field `name`.
    pub fn field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The first query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// How the fake answers the next request of a send (scripted per request, in order; when the
/// script is empty, [`Mode::Success`]).
#[derive(Clone, Debug)]
pub enum Mode {
    Success,
    /// The provider's refusal: HTTP status and its error body.
    Refuse(u16, Value),
    /// HTTP 500 with the provider's error body.
    ServerError,
    /// HTTP 429 with the provider's wait hint (seconds).
    RateLimited(u64),
    /// Answers after this long (longer than the server's timeout: a timeout).
    Slow(Duration),
}

/// What a provider's fake does with one request: `Ok(answer)` or `Err(problem)` when the
/// request breaks the provider's rules.
pub type Handler =
    Arc<dyn Fn(&Recorded, &Mode, &FakeState) -> Result<Response, String> + Send + Sync>;

/// What every fake keeps.
#[derive(Default)]
pub struct FakeState {
    pub requests: Mutex<Vec<Recorded>>,
    pub script: Mutex<VecDeque<Mode>>,
    pub problems: Mutex<Vec<String>>,
    /// A counter for ids the fake hands out.
    pub next_id: std::sync::atomic::AtomicU64,
    /// The fake's own base URL.
    pub url: Mutex<String>,
}

impl FakeState {
    pub fn id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }
}

/// A running fake provider.
pub struct Fake {
    pub url: String,
    pub state: Arc<FakeState>,
    handle: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

struct FakeEndpoint {
    state: Arc<FakeState>,
    handler: Handler,
}

impl Endpoint for FakeEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let body = req.take_body().into_vec().await.unwrap_or_default();
        let recorded = Recorded {
            method: req.method().as_str().to_owned(),
            path: req.uri().path().to_owned(),
            query: req.uri().query().unwrap_or_default().to_owned(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body,
        };
        self.state.requests.lock().unwrap().push(recorded.clone());
        let mode = self
            .state
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Mode::Success);
        if let Mode::Slow(d) = &mode {
            tokio::time::sleep(*d).await;
        }
        match (self.handler)(&recorded, &mode, &self.state) {
            Ok(r) => Ok(r),
            Err(problem) => {
                self.state
                    .problems
                    .lock()
                    .unwrap()
                    .push(format!("{} {}: {problem}", recorded.method, recorded.path));
                Ok(Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .body(format!("fake: {problem}")))
            }
        }
    }
}

impl Fake {
    /// Starts a fake answering with `handler`.
    pub async fn start(handler: Handler) -> Fake {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(FakeState::default());
        *state.url.lock().unwrap() = url.clone();
        let endpoint = FakeEndpoint {
            state: state.clone(),
            handler,
        };
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let handle = tokio::spawn(async move {
            let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run(endpoint)
                .await;
        });
        Fake { url, state, handle }
    }

    /// Scripts the answers of the next requests, in order.
    pub fn script(&self, modes: impl IntoIterator<Item = Mode>) {
        self.state.script.lock().unwrap().extend(modes);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The requests to a path ending in `suffix`.
    pub fn to(&self, suffix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(suffix))
            .collect()
    }

    /// Requests that broke the provider's rules.
    pub fn problems(&self) -> Vec<String> {
        self.state.problems.lock().unwrap().clone()
    }

    /// Waits until `n` requests to a path ending in `suffix` arrived (at most 20 s).
    pub async fn wait_for(&self, suffix: &str, n: usize) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.to(suffix);
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} requests to …{suffix} expected, {} arrived: {:?}; problems: {:?}",
                got.len(),
                self.requests().iter().map(|r| &r.path).collect::<Vec<_>>(),
                self.problems()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A JSON answer.
pub fn json(status: u16, body: Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(body.to_string())
}

/// Checks that `cond` holds, else the problem `what`.
pub fn check(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.into())
    }
}
