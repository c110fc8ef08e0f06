//! The widget socket (SPEC 7.18.3): `GET /webchat/v1/{integrationId}/ws?sessionToken=…`.
//!
//! The checks run before the upgrade (session token 401/102, `Origin` 403/101, integration or
//! hub paused 400/6502, conversation closed 400/6501); the socket is then a session of the
//! `/engine-chat-hub` machinery ([`crate::chat_hub`]) registered for the WebChat integration
//! and its one conversation, acting as that conversation's customer: [`Widget`] holds what
//! differs (the conversation, the allowed activity types, the per-socket activity limit).
//! It closes with 4401 at the token's `exp`, 4403 when the integration or hub is paused or
//! deleted, 4410 when the conversation closes, 4008 too slow, 1001 on shutdown.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::web::websocket::{Message, WebSocket, WebSocketConfig};
use poem::web::Path;
use poem::{handler, FromRequest, IntoResponse, Request, Response};
use serde_json::Value;
use switchboard_domain::activity::validate_inbound;
use switchboard_domain::channel::webchat::{self, SessionTokenError};
use switchboard_domain::ids::{ConversationId, IntegrationId};
use switchboard_domain::time::now_millis;

use crate::chat_hub::Session;
use crate::error::{ApiError, Code};
use crate::state::AppState;

/// The largest frame a widget may send: past it the socket closes with 1009.
pub const MAX_WIDGET_FRAME: usize = 64 * 1024;
/// Activities a widget socket may send per [`ACTIVITY_WINDOW`].
pub const MAX_ACTIVITIES: usize = 20;
/// The window of [`MAX_ACTIVITIES`].
pub const ACTIVITY_WINDOW: Duration = Duration::from_secs(10);

/// What a widget socket adds to a chat-hub session.
pub(crate) struct Widget {
    /// The session's conversation.
    conversation: ConversationId,
    /// When this socket's recent activity frames came, oldest first.
    recent: VecDeque<Instant>,
}

impl Widget {
    /// Counts a client frame: an `activity` frame past [`MAX_ACTIVITIES`] in
    /// [`ACTIVITY_WINDOW`] is refused (429) and not executed.
    pub(crate) fn count_frame(
        &mut self,
        parsed: &Result<Value, serde_json::Error>,
    ) -> Result<(), ApiError> {
        let is_activity =
            matches!(parsed, Ok(v) if v.get("type").and_then(Value::as_str) == Some("activity"));
        if !is_activity {
            return Ok(());
        }
        let now = Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= ACTIVITY_WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= MAX_ACTIVITIES {
            let wait = self.recent.front().map_or(1, |t| {
                (ACTIVITY_WINDOW - now.duration_since(*t)).as_secs().max(1)
            });
            return Err(ApiError {
                retry_after: Some(wait),
                ..ApiError::new(
                    Code::RateLimited,
                    format!(
                        "Too many activities: a widget socket sends at most {MAX_ACTIVITIES} per \
                         {} s; retry in {wait} s.",
                        ACTIVITY_WINDOW.as_secs()
                    ),
                )
            });
        }
        self.recent.push_back(now);
        Ok(())
    }

    /// Accepts the activity of a client frame as the customer of the session's conversation;
    /// the `ack`, or the error.
    pub(crate) async fn activity(
        &self,
        session: &Session,
        frame: &Value,
    ) -> Result<Message, ApiError> {
        match frame.get("conversationId") {
            None | Some(Value::Null) => {}
            Some(Value::String(s))
                if s.parse::<ConversationId>().ok() == Some(self.conversation) => {}
            Some(_) => {
                return Err(ApiError::forbidden(
                    "A widget socket sends into its session's conversation only.",
                ))
            }
        }
        let body = match frame.get("activity") {
            None | Some(Value::Null) => {
                return Err(ApiError::new(
                    Code::Required,
                    "Property 'activity' is required.",
                ))
            }
            Some(b) => b,
        };
        if body.get("sender").is_some_and(|s| !s.is_null()) {
            return Err(ApiError::forbidden(
                "A widget socket speaks for its session's customer: 'sender' is not accepted.",
            ));
        }
        let inbound = validate_inbound(body)?;
        webchat::check_widget_activity(body).map_err(ApiError::from)?;
        crate::chat_hub::accept_and_ack(
            &session.state,
            session.tenant,
            self.conversation,
            inbound,
            session.integration,
            frame,
        )
        .await
    }
}

fn session_token(req: &Request) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "sessionToken")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// Upgrades to a widget socket after the checks of SPEC 7.18.3.
#[handler]
pub async fn widget_socket(
    req: &Request,
    Path(integration_id): Path<String>,
) -> poem::Result<Response> {
    let state = req
        .data::<AppState>()
        .ok_or_else(ApiError::internal)?
        .clone();
    let unauthorized = |why: &str| ApiError::unauthorized(why);
    let iid: IntegrationId = integration_id
        .parse()
        .map_err(|_| unauthorized("The session token is not for this integration."))?;
    let token = session_token(req)
        .ok_or_else(|| unauthorized("Query parameter 'sessionToken' is required."))?;
    let claims = webchat::decode_session(&state.verifying, &token, iid, now_millis() / 1000)
        .map_err(|e| match e {
            SessionTokenError::Expired => unauthorized("The session token has expired."),
            SessionTokenError::Audience => {
                unauthorized("The token is not a WebChat session token.")
            }
            SessionTokenError::Integration => {
                unauthorized("The session token is not for this integration.")
            }
            SessionTokenError::Token(_) => unauthorized("The session token is invalid."),
        })?;
    let (integration, _) = super::webchat_integration(&state, &integration_id)
        .await
        .map_err(|_| unauthorized("The session token is not for this integration."))?;
    if integration.tenant_id != claims.tid {
        return Err(unauthorized("The session token is not for this integration.").into());
    }
    super::check_origin(req, &integration)?;
    let hub = state
        .store
        .get_hub(integration.tenant_id, integration.hub_id)
        .await
        .map_err(ApiError::from)?;
    switchboard_engine::check_active(&integration, hub.status).map_err(ApiError::from)?;
    let conversation = state
        .store
        .get_conversation(integration.tenant_id, claims.cid)
        .await
        .map_err(ApiError::from)?;
    if conversation.integration_id != iid {
        return Err(unauthorized("The session token is not for this integration.").into());
    }
    if !conversation.is_open() {
        return Err(ApiError::new(
            Code::ConversationClosed,
            "The session's conversation is closed: create a new session.",
        )
        .into());
    }

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
    config.read_buffer_size = crate::chat_hub::READ_BUFFER;
    config.max_message_size = Some(MAX_WIDGET_FRAME);
    config.max_frame_size = Some(MAX_WIDGET_FRAME);
    // Registered before the upgrade answer goes out, for this conversation only.
    let subscription = state.live.register(iid, Some(claims.cid));
    let left = claims
        .exp
        .saturating_mul(1000)
        .saturating_sub(now_millis())
        .max(0);
    let expires = tokio::time::Instant::now() + Duration::from_millis(left.unsigned_abs());
    let session = Session {
        subscription: Some(subscription),
        watched: None,
        expires: Some(expires),
        tenant: integration.tenant_id,
        integration: iid,
        conversation: Some(claims.cid),
        floor: None,
        widget: Some(Widget {
            conversation: claims.cid,
            recent: VecDeque::new(),
        }),
        state,
    };
    let mut resp = ws
        .config(config)
        .on_upgrade(move |socket| session.run(socket))
        .into_response();
    super::cors_headers(&mut resp, req);
    Ok(resp)
}
