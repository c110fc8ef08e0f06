//! WebChat's public API (SPEC 7.18), nested at `/webchat/v1`: CORS by the integration's
//! `allowedOrigins` (7.18.1), sessions (7.18.2), the widget socket ([`socket`], 7.18.3), and the
//! widget's assets ([`assets`], 7.18.4). No credentials but the session token; errors in the
//! SPEC 1 format with prefix `ENG`.

pub mod assets;
pub mod socket;

use poem::http::{header, HeaderValue, StatusCode};
use poem::web::Path;
use poem::{handler, Request, Response, Route};
use serde_json::{json, Value};
use switchboard_domain::channel::webchat::{self, SessionClaims};
use switchboard_domain::channel::Channel;
use switchboard_domain::conversation::Establish;
use switchboard_domain::ids::IntegrationId;
use switchboard_domain::integration::Integration;
use switchboard_domain::time::now_millis;

use crate::error::{ApiError, Code};
use crate::rate_limit::{client_ip, Key, Limit};
use crate::state::AppState;

/// The routes under `/webchat/v1`.
pub fn routes() -> Route {
    Route::new()
        .at("/widget.js", poem::get(assets::widget))
        .at("/demo", poem::get(assets::demo))
        .at(
            "/:integration_id/sessions",
            poem::post(sessions).options(preflight),
        )
        .at("/:integration_id/ws", poem::get(socket::widget_socket))
}

/// The WebChat integration of an id, of any tenant; 404/6000 when unknown or not WebChat.
pub(crate) async fn webchat_integration(
    state: &AppState,
    id: &str,
) -> Result<(Integration, IntegrationId), ApiError> {
    let iid: IntegrationId = id.parse().map_err(|_| ApiError::integration_not_found())?;
    let found = state
        .store
        .integrations_by_ids(&[iid])
        .await
        .map_err(ApiError::from)?;
    match found.into_iter().next() {
        Some(i) if i.channel == Channel::WebChat => Ok((i, iid)),
        _ => Err(ApiError::integration_not_found()),
    }
}

/// The request's origin host when the integration allows it; else 403/101.
pub(crate) fn check_origin(req: &Request, integration: &Integration) -> Result<String, ApiError> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let allowed = webchat::allowed_origins(&integration.configuration);
    webchat::allowed_origin(&allowed, origin).ok_or_else(|| {
        ApiError::forbidden(match origin {
            None => {
                "The request has no Origin header: WebChat answers browsers of its allowed origins."
            }
            Some(_) => "The request's Origin is not among the integration's allowedOrigins.",
        })
    })
}

/// Adds the CORS headers of an allowed request (its own `Origin`, `Vary: Origin`).
pub(crate) fn cors_headers(resp: &mut Response, req: &Request) {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        resp.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
        // A 429's wait, readable by the widget's script.
        resp.headers_mut().insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Retry-After"),
        );
    }
}

/// `OPTIONS …/sessions`: 204 with the allowed method, header and max age for an allowed
/// origin; else 403/101 (404/6000 for an unknown integration).
#[handler]
async fn preflight(req: &Request, Path(id): Path<String>) -> poem::Result<Response> {
    let state = req.data::<AppState>().ok_or_else(ApiError::internal)?;
    let (integration, _) = webchat_integration(state, &id).await?;
    check_origin(req, &integration)?;
    let mut resp = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "POST")
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type")
        .header(header::ACCESS_CONTROL_MAX_AGE, "600")
        .finish();
    cors_headers(&mut resp, req);
    Ok(resp)
}

/// The `websocketUrl` of an integration: the public URL with `ws`/`wss` for `http`/`https`.
fn websocket_url(public_url: &str, integration: IntegrationId) -> String {
    let base = public_url.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}/webchat/v1/{integration}/ws")
}

/// The bucket of a `clientId` of an integration: the first 8 bytes of a SHA-256 of both, the
/// same on every node (the buckets may live in Redis), so the secret itself is not kept.
fn client_key(integration: IntegrationId, client_id: &str) -> Key {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(integration.to_string())
        .chain_update(b":")
        .chain_update(client_id)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Key::WebChatClient(u64::from_be_bytes(first))
}

/// `POST /webchat/v1/{integrationId}/sessions` (SPEC 7.18.2).
#[handler]
async fn sessions(
    req: &Request,
    Path(id): Path<String>,
    body: poem::Body,
) -> poem::Result<Response> {
    let state = req
        .data::<AppState>()
        .ok_or_else(ApiError::internal)?
        .clone();
    let (integration, iid) = webchat_integration(&state, &id).await?;
    let origin = check_origin(req, &integration)?;
    let answer = session(&state, req, integration, iid, origin, body).await;
    let mut resp = match answer {
        Ok(r) => r,
        // Rendered here to carry the CORS headers (an allowed page reads its errors); the
        // path inside this nest has lost its `/webchat` prefix, so the prefix is named.
        Err(e) => crate::error::render(e.into(), "/webchat/v1"),
    };
    cors_headers(&mut resp, req);
    Ok(resp)
}

async fn session(
    state: &AppState,
    req: &Request,
    integration: Integration,
    iid: IntegrationId,
    origin: String,
    body: poem::Body,
) -> Result<Response, ApiError> {
    let hub = state
        .store
        .get_hub(integration.tenant_id, integration.hub_id)
        .await
        .map_err(ApiError::from)?;
    switchboard_engine::check_active(&integration, hub.status).map_err(ApiError::from)?;
    let bytes = body
        .into_bytes_limit(64 * 1024)
        .await
        .map_err(|_| ApiError::new(Code::TooLarge, "The body is larger than 64 KiB."))?;
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                Code::InvalidBody,
                format!("The body is not valid JSON: {e}."),
            )
        })?
    };
    let request = webchat::validate_session(&value)?;
    let ip = client_ip(req, state.config.client_ip_header.as_ref());
    state
        .limiter
        .check(Limit::WebChatIp, Key::client(ip))
        .await?;
    let client_id = request.client_id.unwrap_or_else(webchat::new_client_id);
    state
        .limiter
        .check(Limit::WebChatClient, client_key(iid, &client_id))
        .await?;
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let properties = webchat::session_properties(&request.profile, &origin, user_agent);
    let established = state
        .engine
        .establish(
            integration.tenant_id,
            Establish {
                integration_id: iid,
                binding: client_id.clone(),
                properties,
            },
        )
        .await?;
    let conversation = established.conversation;
    let now = now_millis() / 1000;
    let claims = SessionClaims::new(
        integration.tenant_id,
        iid,
        conversation.id,
        &conversation.token_id,
        now,
        webchat::session_ttl(&integration.configuration),
    );
    let token = webchat::encode_session(&state.signing, &claims);
    let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let body = json!({
        "integrationId": iid,
        "conversationId": conversation.id,
        "tokenId": conversation.token_id,
        "clientId": client_id,
        "isNew": established.is_new,
        "sessionToken": token,
        "expiresAt": expires_at,
        "websocketUrl": websocket_url(&state.providers.config().public_url, iid),
        // The widget's header: the configured `title`, else the integration's name.
        "title": integration
            .configuration
            .get("title")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(&integration.name),
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_follow_the_public_url() {
        let id = IntegrationId::new();
        assert_eq!(
            websocket_url("https://sb.example.com/", id),
            format!("wss://sb.example.com/webchat/v1/{id}/ws")
        );
        assert_eq!(
            websocket_url("http://127.0.0.1:8080", id),
            format!("ws://127.0.0.1:8080/webchat/v1/{id}/ws")
        );
    }
}
