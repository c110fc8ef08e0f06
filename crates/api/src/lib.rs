//! The HTTP face of Switchboard: poem + poem-openapi routes, authentication, the error format
//! of SPEC 1 on every route (framework rejections included), and the OpenAPI document.
//!
//! Routes are thin: parse, authorize, call a service, map the result. Activities,
//! conversations and the websocket call the engine's service (`switchboard-engine`); the
//! portal's routes (hubs, integrations, clients, deliveries) call the store. Every error of a
//! lower crate becomes a SPEC 1 code and status in one place, [`error`]. Business rules live
//! in `switchboard-domain`, SQL in `switchboard-storage`.

pub mod activities;
pub mod auth;
pub mod body;
pub mod channels;
pub mod chat_hub;
pub mod clients;
pub mod conversations;
pub mod deliveries;
pub mod error;
pub mod health;
pub mod hubs;
pub mod integrations;
pub mod openapi;
pub mod paging;
pub mod rate_limit;
pub mod slack;
pub mod smooch;
pub mod smooch_keys;
pub mod state;
pub mod token;
pub mod webchat;

use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response, Route};
use poem_openapi::{OpenApiService, Tags as OaTags};

pub use health::MetricsRenderer;
pub use state::{ApiConfig, AppState};

/// Groups of operations in the OpenAPI document.
#[derive(OaTags)]
pub enum Tags {
    /// Access tokens and API clients.
    Identity,
    /// Hubs: a tenant's units of routing.
    Hubs,
    /// Integrations: the channels, agents, bots and back-office systems of a hub.
    Integrations,
    /// Conversations of customers (engine API).
    Conversations,
    /// Activities: messages and events sent into conversations (engine API).
    Activities,
    /// Webhook deliveries and notifications.
    Deliveries,
    /// Health, readiness and metrics.
    Operations,
}

type Apis = (
    token::TokenApi,
    clients::ClientsApi,
    smooch_keys::SmoochKeysApi,
    hubs::HubsApi,
    integrations::IntegrationsApi,
    conversations::ConversationsApi,
    activities::ActivitiesApi,
    deliveries::DeliveriesApi,
    health::HealthApi,
);

/// The OpenAPI service of every documented route.
pub fn openapi_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            token::TokenApi,
            clients::ClientsApi,
            smooch_keys::SmoochKeysApi,
            hubs::HubsApi,
            integrations::IntegrationsApi,
            conversations::ConversationsApi,
            activities::ActivitiesApi,
            deliveries::DeliveriesApi,
            health::HealthApi,
        ),
        "Switchboard",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Switchboard is a hub-centric, multi-tenant unified messaging platform. Get a token at \
         `POST /connect/token` with a client id and secret (printed by `switchboard tenant create`, \
         or on the first start for the `default` tenant), then send it as `Authorization: Bearer …`. \
         Portal routes (hubs, integrations, clients) take a `portal-api` token; engine routes \
         (conversations, activities) an `engine-api` token. Every error answers \
         `{ status, errors: [ { code, description } ] }`; descriptions end with `(code: XXX000NNN)`. \
         Past a rate limit (per tenant on the portal and engine APIs and websocket frames, per \
         client IP address on `/connect/token` and without credentials) a request answers 429 \
         (code 429) with `Retry-After` in seconds.\n\n\
         Live delivery: `GET /engine-chat-hub?iId={integrationId}[&cId={conversationId}]` upgrades to a \
         websocket for a Direct integration (engine token as `Authorization: Bearer` or \
         `access_token`, or the integration-signed `ts` and `sig` = base64 Ed25519 signature of \
         `{iId}.{ts}`). Server frames: `{type: activity, payload}`, `{type: ack, ref, eventId, \
         interactionId}`, `{type: error, ref, status, errors}`. Client frames: `{type: activity, ref, \
         conversationId, activity}` and `{type: resume, leid}`. Frames over 256 KiB get an error \
         frame, over 1 MiB close the connection (1009); a frame past the tenant's frame rate limit gets an \
         error frame with status 429 and is not executed. A client that does not keep up is closed \
         with 4008, a deleted or paused integration's sockets with 4403, all sockets with 1001 on \
         shutdown. A socket closes with 4401 when its credentials expire or are revoked: at its \
         token's `exp`, within 5 s of the revocation of the token's client secret, and (opened \
         with `ts` and `sig`) within 5 s of the integration's keys being regenerated.\n\n\
         Channel adapters: providers call `POST /channels/{twilio|messenger|whatsapp|telegram}/{integrationId}` \
         (and Meta's handshake `GET` on the Messenger and WhatsApp paths) without a token: the \
         provider's signature or secret (`X-Twilio-Signature`, `X-Hub-Signature-256`, \
         `X-Telegram-Bot-Api-Secret-Token`) authenticates the call (401/102 otherwise). Media that \
         need the provider's credentials are served at `GET /channels/media/{integrationId}/{ref}?sig=…`. \
         Agent and bot messages to such conversations are provider deliveries, listed in \
         `/api/v1/deliveries` with `channel` and `providerMessageIds`.\n\n\
         WebChat (no token; the page's `Origin` must match the integration's `allowedOrigins`, \
         else 403/101): `POST /webchat/v1/{integrationId}/sessions` `{clientId?, profile?}` (and its \
         `OPTIONS` preflight) answers `{integrationId, conversationId, tokenId, clientId, isNew, \
         sessionToken, expiresAt, websocketUrl}`, 10 per minute per `clientId` and 60 per client IP \
         address; `GET /webchat/v1/{integrationId}/ws?sessionToken=…` upgrades to the widget socket, \
         the customer of the session's conversation (frames as on `/engine-chat-hub`, payloads \
         without `tenantId` and `conversationProperties`; text frames up to 64 KiB, 20 activities \
         per 10 s; closes 4401 at the token's `exp`, 4403 paused or deleted, 4410 conversation \
         closed).",
    )
}

/// The OpenAPI document as JSON, as served at `/openapi.json` (see [`openapi`]).
pub fn openapi_json() -> String {
    openapi::document().to_owned()
}

/// The whole HTTP application.
pub fn app(state: AppState, metrics: MetricsRenderer) -> impl Endpoint<Output = Response> {
    // The explorer shows the completed document, not poem's own.
    let api = openapi_service();
    let explorer = api
        .swagger_ui_html()
        .replacen(&api.spec(), openapi::document(), 1);
    let limiter = state.clone();
    ErrorFormat(rate_limit::ClientLimits::new(
        Route::new()
            .nest("/", api)
            .at(
                "/openapi.json",
                poem::get(poem::endpoint::make_sync(|_| {
                    poem::Response::builder()
                        .content_type("application/json; charset=utf-8")
                        .body(openapi::document())
                })),
            )
            .at("/engine-chat-hub", poem::get(chat_hub::chat_hub))
            .nest("/channels", channels::routes())
            .nest("/webchat/v1", webchat::routes())
            .nest("/v1", smooch::endpoint(smooch::Version::V1))
            .nest("/v1.1", smooch::endpoint(smooch::Version::V1_1))
            .nest(
                "/docs",
                poem::get(poem::endpoint::make_sync(move |_| {
                    poem::web::Html(explorer.clone())
                })),
            )
            .data(state)
            .data(metrics)
            .with(CatchPanic::new().with_handler(error::panic_response))
            .into_endpoint(),
        limiter,
    ))
}

/// Renders every error, whatever its origin, in the format of SPEC 1 with the prefix of the
/// request's path.
struct ErrorFormat<E>(E);

impl<E: Endpoint> Endpoint for ErrorFormat<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        match self.0.call(req).await {
            Ok(resp) => {
                let resp = resp.into_response();
                if resp.extensions().get::<error::Panicked>().is_some() {
                    return Ok(error::render(error::ApiError::internal().into(), &path));
                }
                Ok(resp)
            }
            Err(err) => {
                let method_not_allowed = err.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED;
                let mut resp = error::render(err, &path);
                // RFC 9110: a 405 says which methods the resource has.
                if method_not_allowed {
                    if let Some(allow) = openapi::allowed_methods(&path) {
                        resp.headers_mut().insert(
                            poem::http::header::ALLOW,
                            poem::http::HeaderValue::from_static(allow),
                        );
                    }
                }
                Ok(resp)
            }
        }
    }
}
