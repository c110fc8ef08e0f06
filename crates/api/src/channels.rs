//! The public routes of the channel adapters (SPEC 7.3): providers call
//! `/channels/{provider}/{integrationId}`, authenticated by their signature or secret, never by a
//! bearer token; media links are served by `/channels/media/{integrationId}/{ref}?sig=…`.
//!
//! The steps of SPEC 7.3.2, in order: find the integration (400/203, 404/6000), limit the body
//! (413/304), verify over the raw bytes (401/102, counted in
//! `switchboard_channel_signature_failures_total`), parse (400/300), answer a handshake, filter,
//! and hand each activity to the engine's service (deduplicate, establish, route), then answer
//! the provider after the commit. Calls the provider wants made afterwards (Telegram's
//! `answerCallbackQuery`, Messenger's profile of a new customer) run after the answer.

use poem::http::StatusCode;
use poem::web::Path;
use poem::{handler, Body, IntoResponse, Request, Response, Route};
use switchboard_delivery::provider::{route_name, ProviderClient};
use switchboard_domain::channel::adapter::{
    self, Adapter, InboundError, InboundRequest, MediaLocation,
};
use switchboard_domain::channel::{media, Channel};
use switchboard_domain::ids::IntegrationId;
use switchboard_domain::integration::Integration;
use switchboard_engine::Received;

use crate::body::MAX_BODY;
use crate::error::{ApiError, Code};
use crate::rate_limit::{Key, Limit};
use crate::state::AppState;

/// The largest media file served through a link (SPEC 7.3.5).
pub const MAX_MEDIA_BYTES: usize = 25 * 1024 * 1024;

/// The channels routes, to nest at `/channels`.
pub fn routes() -> Route {
    Route::new()
        .at("/media/:integration/:reference", poem::get(media_link))
        .at(
            "/:provider/:integration",
            poem::get(handshake).post(inbound),
        )
}

/// The channel whose route segment is `segment`, among those with an adapter.
fn channel_of(segment: &str) -> Option<Channel> {
    Channel::ALL
        .into_iter()
        .find(|c| route_name(*c) == segment && adapter::adapter(*c).is_some())
}

fn state(req: &Request) -> Result<AppState, ApiError> {
    req.data::<AppState>()
        .cloned()
        .ok_or_else(ApiError::internal)
}

fn parse_id(raw: &str) -> Result<IntegrationId, ApiError> {
    raw.parse::<IntegrationId>().map_err(|_| {
        ApiError::new(
            Code::InvalidUuid,
            format!("The integration id '{raw}' is not a valid UUID."),
        )
    })
}

/// The route's channel and adapter, or 404 when the path names no channel with an adapter.
fn route_channel(segment: &str) -> Result<(Channel, &'static dyn Adapter), ApiError> {
    channel_of(segment)
        .and_then(|c| adapter::adapter(c).map(|a| (c, a)))
        .ok_or_else(|| ApiError::new(Code::NotFound, "The route does not exist."))
}

/// The integration of `id` on `channel`: unknown, of another channel, or deleted: 404/6000.
async fn find(
    state: &AppState,
    id: IntegrationId,
    channel: Channel,
) -> Result<Integration, ApiError> {
    match state.store.find_integration_by_id(id).await {
        Ok(Some(i)) if i.channel == channel => Ok(i),
        Ok(_) => Err(ApiError::integration_not_found()),
        Err(e) => {
            tracing::warn!(error = %e, "finding a channel's integration failed");
            Err(ApiError::internal())
        }
    }
}

/// The integration's limit of provider calls (SPEC 7.3.2 step 2): 429 with `Retry-After`.
async fn limit(state: &AppState, id: IntegrationId) -> Result<(), ApiError> {
    state
        .limiter
        .check(Limit::Channel, Key::Integration(id))
        .await
        .map_err(ApiError::from)
}

/// Headers with lowercase names (poem's are already lowercase).
fn headers(req: &Request) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// The URL the provider called: `SWITCHBOARD_PUBLIC_URL` + path + (`?` + raw query).
fn called_url(providers: &ProviderClient, req: &Request) -> String {
    let base = providers.config().public_url.trim_end_matches('/');
    match req.uri().query() {
        // The routes are nested under `/channels`: the path as the provider called it.
        Some(q) => format!("{base}{}?{q}", req.original_uri().path()),
        None => format!("{base}{}", req.original_uri().path()),
    }
}

fn answer(a: adapter::Answer) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK))
        .content_type(a.content_type)
        .body(a.body)
}

/// `GET /channels/{provider}/{id}`: the subscription handshake (Messenger, WhatsApp), which
/// also finds an integration still being provisioned (SPEC 7.5.1).
#[handler]
async fn handshake(
    req: &Request,
    Path((segment, raw)): Path<(String, String)>,
) -> poem::Result<Response> {
    let state = state(req)?;
    let (channel, adapter) = route_channel(&segment)?;
    if adapter.handshake(&serde_json::Map::new(), "").is_none() {
        // A channel without a GET handshake (Twilio, Telegram): POST only.
        return Err(ApiError::with_status(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::NotFound as u32,
            "The route does not accept this method.",
        )
        .into());
    }
    let id = parse_id(&raw)?;
    let configuration = match state.store.find_integration_by_id(id).await {
        Ok(Some(i)) if i.channel == channel => i.configuration,
        Ok(Some(_)) => return Err(ApiError::integration_not_found().into()),
        Ok(None) => match state.store.find_pending_integration(id).await {
            Ok(Some((_, c, configuration))) if c == channel => configuration,
            Ok(_) => return Err(ApiError::integration_not_found().into()),
            Err(e) => {
                tracing::warn!(error = %e, "finding a pending integration failed");
                return Err(ApiError::internal().into());
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "finding a channel's integration failed");
            return Err(ApiError::internal().into());
        }
    };
    limit(&state, id).await?;
    match adapter.handshake(&configuration, req.uri().query().unwrap_or_default()) {
        Some(Ok(a)) => Ok(answer(a)),
        Some(Err(())) | None => Err(ApiError::forbidden(
            "The verify token does not match the integration's webhookSecret.",
        )
        .into()),
    }
}

/// `POST /channels/{provider}/{id}`: a provider's call (SPEC 7.3.2).
#[handler]
async fn inbound(
    req: &Request,
    Path((segment, raw)): Path<(String, String)>,
    body: Body,
) -> poem::Result<Response> {
    let state = state(req)?;
    let (channel, adapter) = route_channel(&segment)?;
    let id = parse_id(&raw)?;
    let integration = find(&state, id, channel).await?;
    limit(&state, id).await?;
    let bytes = match body.into_bytes_limit(MAX_BODY).await {
        Ok(b) => b,
        Err(poem::error::ReadBodyError::PayloadTooLarge) => {
            return Err(ApiError::new(Code::TooLarge, "The body is larger than 1 MiB.").into())
        }
        Err(_) => {
            return Err(ApiError::new(Code::InvalidBody, "The body could not be read.").into())
        }
    };
    let providers = &state.providers;
    let url = called_url(providers, req);
    let headers = headers(req);
    let request = InboundRequest {
        url: &url,
        query: req.uri().query().unwrap_or_default(),
        headers: &headers,
        body: &bytes,
    };
    let app_secret = providers.config().messenger_app_secret.as_deref();
    if !adapter.verify(&integration.configuration, app_secret, &request) {
        metrics::counter!("switchboard_channel_signature_failures_total", "channel" => channel.name())
            .increment(1);
        return Err(ApiError::unauthorized("The request's signature is missing or wrong.").into());
    }
    let public_url = providers.config().public_url.clone();
    let key = state.store.media_key();
    let linker = |reference: &str| media::link(&public_url, &key, integration.id, reference);
    let parsed = match adapter.parse(&integration.configuration, &request, &linker) {
        Ok(p) => p,
        Err(InboundError::Unauthorized) => {
            metrics::counter!("switchboard_channel_signature_failures_total", "channel" => channel.name())
                .increment(1);
            return Err(
                ApiError::unauthorized("The request's signature is missing or wrong.").into(),
            );
        }
        Err(InboundError::Unparseable(why)) => {
            return Err(ApiError::new(
                Code::InvalidBody,
                format!("The {} request cannot be read: {why}", adapter.provider()),
            )
            .into())
        }
    };
    let mut new_bindings = Vec::new();
    for item in parsed.items {
        let binding = item.binding.clone();
        let (received, is_new) = state.engine.receive(&integration, item).await.map_err(|e| {
            tracing::warn!(integration = %integration.id, error = %e, "storing a channel's activity failed");
            ApiError::internal()
        })?;
        metrics::counter!(
            "switchboard_channel_inbound_total",
            "channel" => channel.name(),
            "outcome" => received.label()
        )
        .increment(1);
        if is_new && received == Received::Stored {
            new_bindings.push(binding);
        }
    }
    for notice in &parsed.notices {
        state.engine.notice(&integration, notice).await.map_err(|e| {
            tracing::warn!(integration = %integration.id, error = %e, "recording a provider notice failed");
            ApiError::internal()
        })?;
    }
    // After the answer: best-effort calls, and the profiles of new customers.
    let after = parsed.after;
    let profiles: Vec<_> = parsed
        .profile_requests
        .into_iter()
        .filter(|(b, _)| new_bindings.contains(b))
        .collect();
    if providers.config().live && (!after.is_empty() || !profiles.is_empty()) {
        let (providers, engine) = (providers.clone(), state.engine.clone());
        tokio::spawn(async move {
            for call in after {
                if let Err(e) = providers.call(channel, &call).await {
                    tracing::debug!(error = %e, "a best-effort provider call failed");
                }
            }
            for (binding, call) in profiles {
                let Ok(answered) = providers.call(channel, &call).await else {
                    continue;
                };
                if !(200..300).contains(&answered.status) {
                    continue;
                }
                let properties = adapter.profile(&answered.body);
                if let Err(e) = engine
                    .merge_properties(&integration, &binding, properties)
                    .await
                {
                    tracing::debug!(error = %e, "merging a customer's profile failed");
                }
            }
        });
    }
    Ok(answer(adapter.answer()))
}

/// `GET /channels/media/{id}/{ref}?sig=…` (SPEC 7.3.5).
#[handler]
async fn media_link(
    req: &Request,
    Path((raw, encoded)): Path<(String, String)>,
) -> poem::Result<Response> {
    let state = state(req)?;
    let gone = || ApiError::new(Code::NotFound, "The media does not exist.");
    let Ok(id) = raw.parse::<IntegrationId>() else {
        return Err(gone().into());
    };
    let sig = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !media::verify(&state.store.media_key(), id, &encoded, &sig) {
        return Err(gone().into());
    }
    limit(&state, id).await?;
    let Some(reference) = media::decode_ref(&encoded) else {
        return Err(gone().into());
    };
    let integration = match state.store.find_integration_by_id(id).await {
        Ok(Some(i)) => i,
        Ok(None) => return Err(gone().into()),
        Err(e) => {
            tracing::warn!(error = %e, "finding a media link's integration failed");
            return Err(ApiError::internal().into());
        }
    };
    let channel = integration.channel;
    let Some(adapter) = adapter::adapter(channel) else {
        return Err(gone().into());
    };
    let providers = &state.providers;
    let unreachable = |why: String| {
        ApiError::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal as u32,
            format!("{} is unreachable: {why}", adapter.provider()),
        )
    };
    let Some(lookup) = adapter.media_lookup(&integration.configuration, &reference) else {
        return Err(gone().into());
    };
    let answered = providers
        .call(channel, &lookup)
        .await
        .map_err(unreachable)?;
    match answered.status {
        200..=299 => {}
        404 | 400 | 410 => return Err(gone().into()),
        s => return Err(unreachable(format!("HTTP {s}")).into()),
    }
    let fetch = match adapter.media_location(&integration.configuration, &answered.response()) {
        MediaLocation::Fetch(r) => r,
        MediaLocation::Gone => return Err(gone().into()),
    };
    let mut response = providers.open(channel, &fetch).await.map_err(unreachable)?;
    match response.status().as_u16() {
        200..=299 => {}
        404 | 410 => return Err(gone().into()),
        s => return Err(unreachable(format!("HTTP {s}")).into()),
    }
    let too_large = || {
        ApiError::with_status(
            StatusCode::BAD_GATEWAY,
            Code::Internal as u32,
            "media too large",
        )
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_MEDIA_BYTES as u64)
    {
        return Err(too_large().into());
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| unreachable("the download was cut short".to_owned()))?
    {
        if bytes.len() + chunk.len() > MAX_MEDIA_BYTES {
            return Err(too_large().into());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Response::builder()
        .content_type(content_type)
        .header("content-disposition", "inline")
        .header("cache-control", "private, max-age=3600")
        .header("x-content-type-options", "nosniff")
        .body(bytes)
        .into_response())
}
