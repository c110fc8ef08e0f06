//! `/engine-chat-hub` (SPEC 5.6): live delivery to Direct integrations over websockets.
//!
//! The upgrade authenticates (engine token in `Authorization` or `access_token`, or the
//! integration-signed `ts` and `sig`) and checks the integration; errors answer in the SPEC 1
//! format before any upgrade. A session then registers with the node's [`LiveRegistry`] (whose
//! bounded queue cuts off a client that does not keep up with close code 4008) and loops over:
//! live frames, the client's frames (`activity`, accepted through the engine's service and
//! answered by `ack` or `error`; `resume`, replayed from storage with the same frame builder as
//! the live path), a keep-alive ping, and the server's shutdown (close code 1001). A client
//! frame past the tenant's frame rate limit is answered by an `error` frame with status 429 and
//! not executed; the socket stays open.
//!
//! A socket lives no longer than its credentials ([`CLOSE_CREDENTIALS`], 4401): a token-opened
//! socket closes at the token's `exp`, and each node checks the credentials of all its open
//! sockets every [`CREDENTIALS_CHECK`] in one query per kind ([`CredentialWatch`]): a revoked
//! or expired client secret, or regenerated integration keys (for a socket opened with `ts`
//! and `sig`), close the socket. No frame does any of this work.
//!
//! [`LiveRegistry`]: switchboard_delivery::live::LiveRegistry

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use poem::http::StatusCode;
use poem::web::websocket::{Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::{handler, FromRequest, IntoResponse, Request, Response};
use serde_json::{json, Value};
use switchboard_delivery::live::{activity_frame, SessionEvent, Subscription};
use switchboard_domain::activity::validate_inbound;
use switchboard_domain::channel::Channel;
use switchboard_domain::identity::Scope;
use switchboard_domain::ids::{ConversationId, IntegrationId, SecretId, TenantId};
use switchboard_domain::integration::Integration;
use switchboard_domain::signing;
use switchboard_domain::time::now_millis;
use switchboard_domain::webhook::BodyHead;
use switchboard_engine::{check_active, AcceptOutcome};
use switchboard_storage::Store;
use tokio::sync::{watch, Notify};

use crate::activities::signing_integration;
use crate::auth::verify_token;
use crate::error::{ApiError, Code, Resource};
use crate::rate_limit::{Key, Limit};
use crate::state::AppState;

/// The largest client frame handled; a larger one is answered with an `error` frame and the
/// connection stays usable.
pub const MAX_CLIENT_FRAME: usize = 256 * 1024;
/// The largest frame read at all: past it the connection is closed (1009).
const MAX_READ_FRAME: usize = 1024 * 1024;
/// How long one write to the client may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most queued frames written together before a flush.
const WRITE_BATCH: usize = 64;
/// The initial read buffer of a socket.
pub(crate) const READ_BUFFER: usize = 2 * 1024;
/// Copies read from storage per query while replaying.
const RESUME_BATCH: u64 = 500;
/// Close code of a socket whose credentials expired or were revoked: its token reached `exp`,
/// its client secret was revoked or expired, or the keys of the integration that signed it were
/// regenerated. The client authenticates again and reconnects.
pub const CLOSE_CREDENTIALS: u16 = 4401;
/// How often a node checks the credentials behind its open sockets: with the query's time, a
/// revocation closes them within 5 s on every node (SPEC 2).
pub const CREDENTIALS_CHECK: Duration = Duration::from_secs(2);

pub(crate) type Sink = SplitSink<WebSocketStream, Message>;

fn query(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Upgrades to a session of a Direct integration (SPEC 5.6).
#[handler]
pub async fn chat_hub(req: &Request) -> poem::Result<Response> {
    let state = req
        .data::<AppState>()
        .ok_or_else(ApiError::internal)?
        .clone();
    let q = query(req);
    let iid_raw = q.get("iId").map(String::as_str);

    let token = bearer(req).or_else(|| q.get("access_token").map(String::as_str));
    let (tenant, credential, expires): (TenantId, Credential, Option<i64>) =
        if let Some(token) = token {
            let claims = verify_token(&state, token, Scope::Engine).await?;
            (claims.tid, Credential::Secret(claims.sid), Some(claims.exp))
        } else if let (Some(ts), Some(sig)) = (q.get("ts"), q.get("sig")) {
            let id = iid_raw.unwrap_or_default();
            let signer =
                signing_integration(&state, id, ts, &signing::socket_message(id, ts), sig).await?;
            let key = Credential::Key(signer.id, public_key(&signer).to_owned());
            (signer.tenant_id, key, None)
        } else {
            return Err(ApiError::unauthorized(
                "Authenticate with an engine token (Authorization: Bearer, or access_token) or \
             with the integration-signed ts and sig.",
            )
            .into());
        };

    let iid: IntegrationId = match iid_raw {
        None | Some("") => {
            return Err(
                ApiError::new(Code::MissingParameter, "Query parameter 'iId' is required.").into(),
            )
        }
        Some(s) => s.parse().map_err(|_| ApiError::invalid_uuid("iId"))?,
    };
    let integration = state
        .store
        .get_integration(tenant, iid)
        .await
        .map_err(ApiError::storage(Resource::Integration))?;
    if integration.channel != Channel::Direct {
        return Err(ApiError::out_of_range(format!(
            "Integration '{iid}' is a {} integration: websockets serve Direct integrations.",
            integration.channel.name()
        ))
        .into());
    }
    let hub = state
        .store
        .get_hub(tenant, integration.hub_id)
        .await
        .map_err(ApiError::storage(Resource::Integration))?;
    check_active(&integration, hub.status).map_err(ApiError::from)?;
    let conversation = match q.get("cId").map(String::as_str) {
        None | Some("") => None,
        Some(s) => {
            let id: ConversationId = s.parse().map_err(|_| ApiError::invalid_uuid("cId"))?;
            let c = state
                .store
                .get_conversation(tenant, id)
                .await
                .map_err(ApiError::storage(Resource::Conversation))?;
            if c.hub_id != integration.hub_id {
                return Err(ApiError::conversation_not_found().into());
            }
            Some(id)
        }
    };

    let ws = WebSocket::from_request_without_body(req)
        .await
        .map_err(|_| {
            ApiError::with_status(
                StatusCode::BAD_REQUEST,
                Code::InvalidFormat as u32,
                "This route upgrades to a websocket: send a websocket handshake.",
            )
        })?;
    let mut config = WebSocketConfig::default();
    // Most sockets sit idle, waiting for frames, and clients send small frames: a 2 KiB read
    // buffer (it grows to fit a big frame) instead of tungstenite's eager 128 KiB keeps an idle
    // socket's memory small, and tungstenite zeroes the buffer on every read attempt.
    config.read_buffer_size = READ_BUFFER;
    config.max_message_size = Some(MAX_READ_FRAME);
    config.max_frame_size = Some(MAX_READ_FRAME);
    // Registered before the upgrade answer goes out: an activity accepted as soon as the
    // client sees the upgrade is queued for it, not missed.
    let subscription = state.live.register(iid, conversation);
    let watched = watch_credential(&state, credential);
    // The token's `exp` (Unix seconds) as a deadline of this process's clock.
    let expires = expires.map(|exp| {
        let left = exp.saturating_mul(1000).saturating_sub(now_millis()).max(0);
        tokio::time::Instant::now() + Duration::from_millis(left.unsigned_abs())
    });
    let session = Session {
        subscription: Some(subscription),
        watched: Some(watched),
        expires,
        state,
        tenant,
        integration: iid,
        conversation,
        floor: None,
        widget: None,
    };
    Ok(ws
        .config(config)
        .on_upgrade(move |socket| session.run(socket))
        .into_response())
}

pub(crate) struct Session {
    pub(crate) subscription: Option<switchboard_delivery::live::Subscription>,
    /// The socket's entry in its node's [`CredentialWatch`]: told when the credentials go
    /// (none for a widget socket, whose session token only expires).
    pub(crate) watched: Option<Watched>,
    /// When the token the socket was opened with expires.
    pub(crate) expires: Option<tokio::time::Instant>,
    pub(crate) state: AppState,
    pub(crate) tenant: TenantId,
    pub(crate) integration: IntegrationId,
    pub(crate) conversation: Option<ConversationId>,
    /// After a `resume`: the newest `eventId` the client has; live frames up to it are
    /// duplicates of what was replayed.
    pub(crate) floor: Option<i64>,
    /// A WebChat widget socket (SPEC 7.18.3): the customer of one conversation.
    pub(crate) widget: Option<crate::webchat::socket::Widget>,
}

/// Why a session ends.
enum End {
    /// Close with this code and reason.
    Close(u16, String),
    /// The client left or the connection failed: nothing more to send.
    Gone,
}

async fn send(sink: &mut Sink, msg: Message) -> Result<(), End> {
    match tokio::time::timeout(WRITE_TIMEOUT, sink.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(End::Gone),
    }
}

/// Writes a live frame and the frames queued behind it (at most [`WRITE_BATCH`]) and flushes
/// them in one write. Frames up to `floor` were replayed by a `resume` and are left out. A close
/// queued behind the frames ends the session once they are written.
async fn write_frames(
    sub: &mut Subscription,
    sink: &mut Sink,
    floor: Option<i64>,
    first: (i64, Arc<str>),
) -> Result<(), End> {
    let write = async {
        let mut next = Some(first);
        let mut written = 0;
        let mut end = None;
        while let Some((event_id, frame)) = next.take() {
            if floor.is_none_or(|f| event_id > f) {
                sink.feed(Message::Text(frame.to_string()))
                    .await
                    .map_err(|_| ())?;
                written += 1;
            }
            if written >= WRITE_BATCH {
                break;
            }
            match sub.try_next() {
                Some(SessionEvent::Frame {
                    event_id, frame, ..
                }) => next = Some((event_id, frame)),
                Some(SessionEvent::Close { code, reason }) => end = Some(End::Close(code, reason)),
                None => {}
            }
        }
        sink.flush().await.map_err(|_| ())?;
        Ok::<_, ()>(end)
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(None)) => Ok(()),
        Ok(Ok(Some(end))) => Err(end),
        _ => Err(End::Gone),
    }
}

pub(crate) fn error_frame(reference: &Value, err: &ApiError) -> Message {
    let body = err.body("ENG");
    Message::Text(
        json!({
            "type": "error",
            "ref": reference,
            "status": body.status,
            "errors": body.errors.iter().map(|e| json!({"code": e.code, "description": e.description})).collect::<Vec<_>>(),
        })
        .to_string(),
    )
}

impl Session {
    pub(crate) async fn run(mut self, socket: WebSocketStream) {
        let (mut sink, mut stream) = socket.split();
        let mut sub = match self.subscription.take() {
            Some(sub) => sub,
            None => self
                .state
                .live
                .register(self.integration, self.conversation),
        };
        let mut shutdown = self.state.shutdown.clone();
        let interval = self.state.config.ws_ping_interval;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut last_seen = Instant::now();
        let revoked = self
            .watched
            .as_ref()
            .map_or_else(|| Arc::new(Notify::new()), |w| w.revoked.clone());
        let expires = self.expires;
        let expiry = async move {
            match expires {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expiry);
        metrics::gauge!("switchboard_ws_connections").increment(1.0);

        let end = loop {
            if *shutdown.borrow() {
                break End::Close(1001, "server shutting down".to_owned());
            }
            let step = tokio::select! {
                biased;
                _ = shutdown.changed() => continue,
                () = &mut expiry => Err(End::Close(CLOSE_CREDENTIALS, if self.widget.is_some() { "session expired" } else { "credentials expired" }.to_owned())),
                () = revoked.notified() => Err(End::Close(CLOSE_CREDENTIALS, "credentials revoked".to_owned())),
                // The work of an event is boxed: handling a client frame runs a whole accept,
                // and writing carries a timer; inline, their futures would make every idle
                // socket's task as large as the largest of them.
                event = sub.next() => match event {
                    Some(SessionEvent::Frame { event_id, frame, .. }) => {
                        Box::pin(write_frames(&mut sub, &mut sink, self.floor, (event_id, frame))).await
                    }
                    Some(SessionEvent::Close { code, reason }) => Err(End::Close(code, reason)),
                    None => Err(End::Gone),
                },
                incoming = stream.next() => {
                    last_seen = Instant::now();
                    Box::pin(self.incoming(incoming, &mut sink)).await
                }
                _ = ping.tick() => {
                    if last_seen.elapsed() > interval * 2 {
                        Err(End::Close(1011, "no answer to keep-alive pings".to_owned()))
                    } else {
                        Box::pin(send(&mut sink, Message::Ping(Vec::new()))).await
                    }
                }
            };
            if let Err(end) = step {
                break end;
            }
        };
        drop(sub);
        if let Some(w) = &self.watched {
            w.forget();
        }
        if let End::Close(code, reason) = end {
            let _ = send(&mut sink, Message::close_with(code, reason)).await;
            // Let the client's close reply (or its EOF) arrive, so the close frame is read
            // before the connection goes.
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(Ok(m)) = stream.next().await {
                    if m.is_close() {
                        break;
                    }
                }
            })
            .await;
        }
        metrics::gauge!("switchboard_ws_connections").decrement(1.0);
    }

    async fn incoming(
        &mut self,
        incoming: Option<std::io::Result<Message>>,
        sink: &mut Sink,
    ) -> Result<(), End> {
        let text = match incoming {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(b))) if std::str::from_utf8(&b).is_ok() => {
                String::from_utf8(b).unwrap_or_default()
            }
            Some(Ok(Message::Binary(_))) => {
                let err = ApiError::new(Code::InvalidBody, "Frames are JSON text.");
                return send(sink, error_frame(&Value::Null, &err)).await;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(()),
            Some(Ok(Message::Close(_))) | None => return Err(End::Gone),
            Some(Err(e)) => {
                let text = e.to_string().to_ascii_lowercase();
                let too_big = ["capacity", "limit", "too long", "too big", "size"]
                    .iter()
                    .any(|w| text.contains(w));
                return Err(if too_big {
                    let reason = if self.widget.is_some() {
                        "frame larger than 64 KiB"
                    } else {
                        "frame larger than 1 MiB"
                    };
                    End::Close(1009, reason.to_owned())
                } else {
                    End::Gone
                });
            }
        };
        if text.len() > MAX_CLIENT_FRAME {
            let err = ApiError::new(Code::TooLarge, "The frame is larger than 256 KiB.");
            return send(sink, error_frame(&Value::Null, &err)).await;
        }
        let parsed = serde_json::from_str::<Value>(&text);
        // A widget's activities count against its socket's own limit (SPEC 7.18.3).
        if let Some(widget) = &mut self.widget {
            if let Err(err) = widget.count_frame(&parsed) {
                let reference = match &parsed {
                    Ok(Value::Object(o)) => o.get("ref").cloned().unwrap_or(Value::Null),
                    _ => Value::Null,
                };
                return send(sink, error_frame(&reference, &err)).await;
            }
        }
        // Every frame counts, valid or not; one over the tenant's limit is not executed.
        if let Err(refused) = self
            .state
            .limiter
            .check(Limit::Frames, Key::Tenant(self.tenant))
            .await
        {
            let reference = match &parsed {
                Ok(Value::Object(o)) => o.get("ref").cloned().unwrap_or(Value::Null),
                _ => Value::Null,
            };
            return send(sink, error_frame(&reference, &refused.into())).await;
        }
        let frame: Value = match parsed {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                let err = ApiError::new(Code::InvalidBody, "A frame must be a JSON object.");
                return send(sink, error_frame(&Value::Null, &err)).await;
            }
            Err(e) => {
                let err = ApiError::new(
                    Code::InvalidBody,
                    format!("The frame is not valid JSON: {e}."),
                );
                return send(sink, error_frame(&Value::Null, &err)).await;
            }
        };
        let reference = frame.get("ref").cloned().unwrap_or(Value::Null);
        match frame.get("type").and_then(Value::as_str) {
            Some("activity") => {
                let answer = match self.activity(&frame).await {
                    Ok(m) => m,
                    Err(err) => error_frame(&reference, &err),
                };
                send(sink, answer).await
            }
            Some("resume") => match frame.get("leid") {
                None | Some(Value::Null) => self.resume(0, sink).await,
                Some(v) => match v.as_i64() {
                    Some(leid) => self.resume(leid, sink).await,
                    None => {
                        let err = ApiError::new(
                            Code::WrongType,
                            "Property 'leid' must be an integer (an eventId).",
                        );
                        send(sink, error_frame(&reference, &err)).await
                    }
                },
            },
            Some(other) => {
                let err = ApiError::out_of_range(format!(
                    "Frame type '{other}' is not supported: send 'activity' or 'resume'."
                ));
                send(sink, error_frame(&reference, &err)).await
            }
            None => {
                let err = ApiError::new(Code::Required, "Property 'type' is required.");
                send(sink, error_frame(&reference, &err)).await
            }
        }
    }

    /// Sends the activity of a client frame as this integration; the `ack` or the error.
    async fn activity(&self, frame: &Value) -> Result<Message, ApiError> {
        if let Some(widget) = &self.widget {
            return widget.activity(self, frame).await;
        }
        let conversation: ConversationId = match frame.get("conversationId") {
            None | Some(Value::Null) => {
                return Err(ApiError::new(
                    Code::Required,
                    "Property 'conversationId' is required.",
                ))
            }
            Some(Value::String(s)) => s.parse().map_err(|_| {
                ApiError::new(
                    Code::InvalidUuid,
                    format!("Property 'conversationId' must be a UUID, not '{s}'."),
                )
            })?,
            Some(_) => {
                return Err(ApiError::new(
                    Code::WrongType,
                    "Property 'conversationId' must be a string.",
                ))
            }
        };
        let body = match frame.get("activity") {
            None | Some(Value::Null) => {
                return Err(ApiError::new(
                    Code::Required,
                    "Property 'activity' is required.",
                ))
            }
            Some(b) => b,
        };
        let inbound = validate_inbound(body)?;
        accept_and_ack(
            &self.state,
            self.tenant,
            conversation,
            inbound,
            self.integration,
            frame,
        )
        .await
    }

    /// Replays every copy for this integration after `leid`, oldest first; live frames up to
    /// the last one replayed are dropped afterwards (they were in the replay).
    async fn resume(&mut self, leid: i64, sink: &mut Sink) -> Result<(), End> {
        let mut cursor = leid;
        loop {
            let batch = match self
                .state
                .store
                .integration_activities(self.integration, self.conversation, cursor, RESUME_BATCH)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    let err = ApiError::from(e);
                    return send(sink, error_frame(&Value::Null, &err)).await;
                }
            };
            let done = (batch.len() as u64) < RESUME_BATCH;
            for item in batch {
                cursor = cursor.max(item.event_id);
                let head = BodyHead {
                    hub_id: item.hub_id,
                    tenant_id: self.tenant,
                    integration_id: self.integration,
                    conversation_id: item.conversation_id,
                };
                let frame = if self.widget.is_some() {
                    switchboard_delivery::live::webchat_frame(&head, &item.activity)
                } else {
                    activity_frame(&head, &item.properties, &item.activity)
                };
                send(sink, Message::Text(frame)).await?;
            }
            if done {
                break;
            }
        }
        self.floor = Some(self.floor.map_or(cursor, |f| f.max(cursor)));
        Ok(())
    }
}

/// The public signing key of a Direct integration, as a signature is verified against it.
fn public_key(integration: &Integration) -> &str {
    integration
        .configuration
        .get(switchboard_domain::channel_config::PUBLIC_SIGNING_KEY)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// What a socket was opened with, checked again while it is open.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Credential {
    /// An engine token: its client secret must stay active.
    Secret(SecretId),
    /// The integration's signature: the integration's public key must stay this one.
    Key(IntegrationId, String),
}

/// The credentials of a node's open sockets, checked every [`CREDENTIALS_CHECK`] by one task
/// per node (started with the first socket) in one query per kind for all sockets.
#[derive(Default)]
pub struct CredentialWatch {
    sockets: Mutex<HashMap<u64, (Credential, Arc<Notify>)>>,
    next: AtomicU64,
    started: AtomicBool,
}

/// A socket's entry in the [`CredentialWatch`]; `revoked` is notified when its credentials go.
pub(crate) struct Watched {
    id: u64,
    watch: Arc<CredentialWatch>,
    revoked: Arc<Notify>,
}

impl Watched {
    fn forget(&self) {
        if let Ok(mut sockets) = self.watch.sockets.lock() {
            sockets.remove(&self.id);
        }
    }
}

impl Drop for Watched {
    /// A socket whose upgrade never completes leaves the watch too.
    fn drop(&mut self) {
        self.forget();
    }
}

fn watch_credential(state: &AppState, credential: Credential) -> Watched {
    let watch = state.ws_credentials.clone();
    if !watch.started.swap(true, Ordering::AcqRel) {
        tokio::spawn(check_credentials(
            Arc::downgrade(&watch),
            state.store.clone(),
            state.shutdown.clone(),
        ));
    }
    let id = watch.next.fetch_add(1, Ordering::Relaxed);
    let revoked = Arc::new(Notify::new());
    if let Ok(mut sockets) = watch.sockets.lock() {
        sockets.insert(id, (credential, revoked.clone()));
    }
    Watched { id, watch, revoked }
}

/// The node's check: every [`CREDENTIALS_CHECK`], the active secrets among those of its open
/// sockets (one query) and the keys of the integrations whose signature opened one (one
/// query); the sockets whose credentials are gone are told to close. A failed query is logged
/// and checked again at the next tick (a database outage does not close every socket). A
/// deleted integration is left to its own close (4403).
async fn check_credentials(
    weak: Weak<CredentialWatch>,
    store: Store,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(CREDENTIALS_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { return },
        }
        let Some(registry) = weak.upgrade() else {
            return;
        };
        let (asked_secrets, asked_integrations) = {
            let Ok(sockets) = registry.sockets.lock() else {
                return;
            };
            let mut secrets = HashSet::new();
            let mut integrations = HashSet::new();
            for (credential, _) in sockets.values() {
                match credential {
                    Credential::Secret(id) => secrets.insert(*id),
                    Credential::Key(id, _) => integrations.insert(*id),
                };
            }
            (secrets, integrations)
        };
        let (secrets, integrations): (Vec<_>, Vec<_>) = (
            asked_secrets.iter().copied().collect(),
            asked_integrations.iter().copied().collect(),
        );
        let active = match store.active_secrets(&secrets, now_millis()).await {
            Ok(active) => Some(active),
            Err(e) => {
                tracing::warn!(error = %e, "could not check the secrets of open websockets");
                None
            }
        };
        let keys: Option<HashMap<IntegrationId, String>> =
            match store.integrations_by_ids(&integrations).await {
                Ok(found) => Some(
                    found
                        .iter()
                        .map(|i| (i.id, public_key(i).to_owned()))
                        .collect(),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "could not check the keys of open websockets");
                    None
                }
            };
        // Only what was asked is judged: a socket opened while the queries ran is checked at
        // the next tick, not closed for being absent from an answer that never asked about it.
        let gone = |credential: &Credential| match credential {
            Credential::Secret(id) => {
                asked_secrets.contains(id) && active.as_ref().is_some_and(|a| !a.contains(id))
            }
            Credential::Key(id, key) => {
                asked_integrations.contains(id)
                    && keys
                        .as_ref()
                        .and_then(|k| k.get(id))
                        .is_some_and(|current| current != key)
            }
        };
        if let Ok(sockets) = registry.sockets.lock() {
            for (credential, revoked) in sockets.values() {
                if gone(credential) {
                    revoked.notify_one();
                }
            }
        };
    }
}

/// Accepts a client frame's activity into `conversation` as `integration` (a Direct socket or a
/// widget socket) and answers its `ack` frame (SPEC 5.6).
pub(crate) async fn accept_and_ack(
    state: &AppState,
    tenant: TenantId,
    conversation: ConversationId,
    inbound: switchboard_domain::activity::InboundActivity,
    integration: IntegrationId,
    frame: &Value,
) -> Result<Message, ApiError> {
    let accepted = match state
        .engine
        .accept(tenant, conversation, inbound, Some(integration), None)
        .await?
    {
        AcceptOutcome::Accepted(a) => a,
        AcceptOutcome::Replayed(_) => return Err(ApiError::internal()),
    };
    Ok(Message::Text(
        json!({
            "type": "ack",
            "ref": frame.get("ref").cloned().unwrap_or(Value::Null),
            "eventId": accepted.event_id,
            "interactionId": accepted.interaction_id,
        })
        .to_string(),
    ))
}
