//! Activities (SPEC 4): the inbound route (bearer token or integration-signed, with
//! `Idempotency-Key`), which hands the activity to the engine's service and writes its answer
//! (the JSON kept with a key is made here, by [`InboundOut`]), and the conversation's activity
//! copies.

use poem::web::Data;
use poem::{IntoResponse, Request, RequestBody};
use poem_openapi::auth::ApiKey;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, ToJSON, Type};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
    SecurityScheme,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use switchboard_domain::activity::validate_inbound;
use switchboard_domain::channel::{Channel, IntegrationType};
use switchboard_domain::ids::{ConversationId, IntegrationId, TenantId};
use switchboard_domain::limits::{MAX_LISTED_BYTES, MAX_LISTED_COPIES};
use switchboard_domain::paging::CopyBound;
use switchboard_domain::signing;
use switchboard_domain::time::now_millis;
use switchboard_engine::{AcceptOutcome, Accepted, Idempotency, Keyed};
use uuid::Uuid;

use crate::auth::EngineAuth;
use crate::body::{read_limited, Body};
use crate::error::{ApiError, Code, Resource};
use crate::rate_limit::{Key, Limit};
use crate::state::AppState;
use crate::Tags;

/// The longest `Idempotency-Key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Documents the integration-signed scheme: `x-signature` with `x-integration-id` and
/// `x-timestamp` (see SPEC 4). Checked by [`InboundAuth`].
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "x-signature", key_in = "header")]
pub struct IntegrationSignature(pub ApiKey);

/// Who sends an inbound request.
#[derive(Clone, Debug, PartialEq)]
pub enum Caller {
    /// An engine token of the tenant.
    Token { tenant: TenantId },
    /// A request signed by a Direct integration: it acts as that integration only.
    Signed {
        tenant: TenantId,
        integration: IntegrationId,
    },
}

impl Caller {
    pub fn tenant(&self) -> TenantId {
        match self {
            Self::Token { tenant } | Self::Signed { tenant, .. } => *tenant,
        }
    }

    pub fn acting_as(&self) -> Option<IntegrationId> {
        match self {
            Self::Token { .. } => None,
            Self::Signed { integration, .. } => Some(*integration),
        }
    }
}

/// Bearer engine token, or an integration-signed request when `x-signature` is present.
pub struct InboundAuth(pub Caller);

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn refused(why: impl std::fmt::Display) -> ApiError {
    ApiError::unauthorized(&format!("The request signature is refused: {why}"))
}

/// The Direct integration a signature names, if it signs with its own key: 401/102 otherwise
/// (also for an integration that does not exist: the caller proves nothing yet); 429/429 past
/// the tenant's engine rate limit.
pub async fn signing_integration(
    state: &AppState,
    integration_id: &str,
    timestamp: &str,
    message: &[u8],
    signature: &str,
) -> Result<switchboard_domain::integration::Integration, ApiError> {
    let now = now_millis() / 1000;
    let ts = signing::check_timestamp(timestamp, now).map_err(refused)?;
    let id: IntegrationId = integration_id
        .trim()
        .parse()
        .map_err(|_| refused("the integration id is not a UUID."))?;
    let integration = state
        .store
        .find_integration_by_id(id)
        .await?
        .filter(|i| i.channel == Channel::Direct)
        .ok_or_else(|| refused("no Direct integration has this id."))?;
    let key = integration
        .configuration
        .get(switchboard_domain::channel_config::PUBLIC_SIGNING_KEY)
        .and_then(Value::as_str)
        .unwrap_or_default();
    signing::verify(key, message, signature).map_err(refused)?;
    // Signed requests and sockets count as the tenant's engine API requests.
    state
        .limiter
        .check(Limit::Engine, Key::Tenant(integration.tenant_id))
        .await?;
    let expires = (ts + signing::WINDOW_SECS + 1) * 1000;
    if !state.store.use_signature(signature.trim(), expires).await? {
        return Err(refused(signing::SignatureError::Replayed));
    }
    Ok(integration)
}

impl<'a> ApiExtractor<'a> for InboundAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <EngineAuth as ApiExtractor>::register(registry);
        <IntegrationSignature as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut s = <EngineAuth as ApiExtractor>::security_schemes();
        s.extend(<IntegrationSignature as ApiExtractor>::security_schemes());
        s
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let Some(signature) = header(req, "x-signature") else {
            let token = <EngineAuth as ApiExtractor>::from_request(req, body, opts).await?;
            return Ok(Self(Caller::Token {
                tenant: token.0.tid,
            }));
        };
        let state = req.data::<AppState>().ok_or_else(ApiError::internal)?;
        let (Some(id), Some(ts)) = (header(req, "x-integration-id"), header(req, "x-timestamp"))
        else {
            return Err(
                refused("x-integration-id and x-timestamp must come with x-signature.").into(),
            );
        };
        // The signature covers the body: read it here and put it back for the route.
        let bytes = read_limited(body).await?;
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let message = signing::request_message(ts, req.method().as_str(), path, &bytes);
        let integration = signing_integration(state, id, ts, &message, signature).await?;
        *body = RequestBody::new(poem::Body::from(bytes));
        Ok(Self(Caller::Signed {
            tenant: integration.tenant_id,
            integration: integration.id,
        }))
    }
}

/// An activity to send (SPEC 4).
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct InboundIn {
    /// `message` or `event`, as the payload given.
    #[oai(rename = "type")]
    pub kind: String,
    /// Your own id of the activity, echoed back: at most 1,024 characters.
    #[oai(validator(max_length = 1024))]
    pub external_id: Option<String>,
    /// Left out: the conversation's customer integration (or, for a signed request, the
    /// signing integration). Required for an Agent or Bot integration of the hub.
    pub sender: Option<SenderIn>,
    /// Exactly one of `message` and `event`. Types: text, image, video, audio, attachment,
    /// youtube, vimeo, location, contact, card, carousel, list. Lengths, in characters:
    /// `text` at most 65,536; `url` (media, link actions) 8,192; `title`, `caption`,
    /// `subtitle` and a location's `address` 1,024; an action's `payload` 8,192; any other
    /// string (a contact's details, properties of your own) 65,536.
    pub message: Option<Value>,
    /// Types: seen, typing_on, typing_off, payload, handover, takeover, release. A payload
    /// event's `payloadType` is at most 8,192 characters, its `payload` at most 64 KiB as JSON.
    pub event: Option<Value>,
}

/// The sender of an activity.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct SenderIn {
    pub integration_id: Uuid,
}

/// An accepted activity: stored, and its deliveries queued.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct InboundOut {
    /// Always 200.
    pub status: u16,
    /// Epoch milliseconds, strictly increasing within the hub.
    pub event_id: i64,
    pub external_id: Option<String>,
    pub hub_id: Uuid,
    pub conversation_id: Uuid,
    /// The sender.
    pub integration_id: Uuid,
    /// Messages only.
    #[oai(skip_serializing_if_is_none)]
    pub interaction_id: Option<Uuid>,
}

/// The hash that ties an `Idempotency-Key` to its request: the path and the body's JSON in a
/// canonical form (object keys sorted), so re-serializing the same body is the same request.
fn request_hash(path: &str, body: &Value) -> String {
    let mut h = Sha256::new();
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub struct ActivitiesApi;

#[OpenApi(tag = "Tags::Activities")]
impl ActivitiesApi {
    /// Send an activity
    ///
    /// Sends one activity into the conversation as its customer (no `sender`) or as an Agent
    /// or Bot integration of its hub, with an engine token or signed by a Direct integration
    /// (`x-integration-id`, `x-timestamp`, `x-signature`: base64 Ed25519 signature of
    /// `{timestamp}.{METHOD}.{path and query}.{body}`; a signature is accepted once). Answers
    /// once the activity is stored and its deliveries queued. With `Idempotency-Key` (kept 24
    /// hours per tenant), repeating the same request answers the first result without a second
    /// activity; the same key with another path or body is 409/106.
    // SPEC 4
    #[oai(
        path = "/inbound/customer/v1/direct/activity/:conversationId",
        method = "post",
        operation_id = "activities.send"
    )]
    async fn send(
        &self,
        auth: InboundAuth,
        state: Data<&AppState>,
        req: &Request,
        #[oai(name = "conversationId")] id: Path<Uuid>,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
        body: Body<InboundIn>,
    ) -> Result<Json<InboundOut>, ApiError> {
        let tenant = auth.0.tenant();
        let claim = match idempotency_key.0 {
            Some(key) if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY => {
                return Err(ApiError::new(
                    Code::InvalidFormat,
                    format!("Header 'Idempotency-Key' must be 1 to {MAX_IDEMPOTENCY_KEY} bytes."),
                ))
            }
            Some(key) => Some(Idempotency {
                key,
                request_hash: request_hash(req.uri().path(), &body.value),
            }),
            None => None,
        };
        // A reused key answers before the body is validated: the same whatever it holds.
        if let Some(claim) = &claim {
            if let Some(response) = state.engine.replay(tenant, claim).await? {
                return replayed(&response);
            }
        }
        let inbound = validate_inbound(&body.value)?;
        let respond = |a: &Accepted| InboundOut::from(a).to_json_string();
        let outcome = state
            .engine
            .accept(
                tenant,
                ConversationId::from_uuid(id.0),
                inbound,
                auth.0.acting_as(),
                claim.map(|claim| Keyed {
                    claim,
                    respond: &respond,
                }),
            )
            .await?;
        match outcome {
            AcceptOutcome::Accepted(a) => Ok(Json(InboundOut::from(&a))),
            AcceptOutcome::Replayed(response) => replayed(&response),
        }
    }

    /// List a conversation's activities
    ///
    /// The conversation's activity copies (one per recipient; System and echo copies left
    /// out) whose sender or recipient is of `type`, with `eventId` greater than `leid`, oldest
    /// first. One answer holds at most 1,000 copies and 4 MiB of JSON, in whole events (the
    /// copies of one `eventId` are never split; a single event larger than that is answered
    /// alone). When more may follow, the `Link` header gives the next request,
    /// `<…?type=T&leid=N>; rel="next"`, where N is the last `eventId` answered; without it,
    /// the list is complete.
    // SPEC 4
    #[oai(
        path = "/api/v1/interactions/activities/:conversationId",
        method = "get",
        operation_id = "activities.list"
    )]
    async fn list(
        &self,
        auth: EngineAuth,
        state: Data<&AppState>,
        #[oai(name = "conversationId")] id: Path<Uuid>,
        /// `Customer`, `Agent` or `Bot` (required; any case).
        #[oai(name = "type")]
        party: Query<Option<String>>,
        /// Only copies with a greater `eventId` (epoch ms; default 0).
        leid: Query<Option<i64>>,
    ) -> Result<ListResponse, ApiError> {
        let tenant = auth.0.tid;
        let party = match party.0.as_deref() {
            None | Some("") => {
                return Err(ApiError::new(
                    Code::MissingParameter,
                    "Query parameter 'type' is required.",
                ))
            }
            Some(t) => match IntegrationType::parse(t) {
                Some(
                    t @ (IntegrationType::Customer | IntegrationType::Agent | IntegrationType::Bot),
                ) => t,
                _ => {
                    return Err(ApiError::out_of_range(format!(
                        "Query parameter 'type' must be Customer, Agent or Bot, not '{t}'."
                    )))
                }
            },
        };
        let leid = leid.0.unwrap_or(0);
        let conversation = ConversationId::from_uuid(id.0);
        state
            .store
            .get_conversation(tenant, conversation)
            .await
            .map_err(ApiError::storage(Resource::Conversation))?;
        let bound = CopyBound {
            count: MAX_LISTED_COPIES,
            bytes: MAX_LISTED_BYTES,
        };
        let page = state
            .store
            .conversation_activities(tenant, conversation, party, leid, bound)
            .await?;
        let next = page.next.map(|leid| {
            format!(
                "</api/v1/interactions/activities/{}?type={}&leid={leid}>; rel=\"next\"",
                id.0,
                party.as_str()
            )
        });
        Ok(ListResponse::Ok(RawJsonArray::new(&page.bodies), next))
    }
}

/// An answer of the activities list.
#[derive(ApiResponse)]
pub enum ListResponse {
    /// The copies, oldest first.
    #[oai(status = 200)]
    Ok(
        RawJsonArray,
        /// `<…?type=T&leid=N>; rel="next"` when more copies may follow: ask again with it.
        #[oai(header = "Link")]
        Option<String>,
    ),
}

/// A JSON array of stored JSON values, written as they are stored (never parsed again);
/// documented as an array of objects.
pub struct RawJsonArray(String);

impl RawJsonArray {
    /// The array of `items`, each already JSON.
    pub fn new(items: &[String]) -> Self {
        let len = items.iter().map(|i| i.len() + 1).sum::<usize>() + 2;
        let mut out = String::with_capacity(len);
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(item);
        }
        out.push(']');
        Self(out)
    }
}

impl Payload for RawJsonArray {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        <Vec<Value> as Type>::schema_ref()
    }

    fn register(registry: &mut Registry) {
        <Vec<Value> as Type>::register(registry);
    }
}

impl IntoResponse for RawJsonArray {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .body(self.0)
    }
}

/// The answer kept with an `Idempotency-Key`, as the first request got it.
fn replayed(response: &str) -> Result<Json<InboundOut>, ApiError> {
    InboundOut::parse_from_json_string(response)
        .map(Json)
        .map_err(|_| ApiError::internal())
}

impl From<&Accepted> for InboundOut {
    fn from(a: &Accepted) -> Self {
        Self {
            status: 200,
            event_id: a.event_id,
            external_id: a.external_id.clone(),
            hub_id: a.hub_id.as_uuid(),
            conversation_id: a.conversation_id.as_uuid(),
            integration_id: a.integration_id.as_uuid(),
            interaction_id: a.interaction_id.map(|i| i.as_uuid()),
        }
    }
}
