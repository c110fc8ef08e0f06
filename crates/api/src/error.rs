//! The error format of SPEC 1, the catalogue of codes, and the one place where errors of the
//! lower crates (domain violations and routing refusals, the engine's [`EngineError`],
//! storage) and of the framework become codes, statuses and responses.

use poem::error::ResponseError;
use poem::http::{header, StatusCode};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object};
use switchboard_domain::routing::RouteError;
use switchboard_domain::{Violation, ViolationKind, Violations};
use switchboard_engine::Error as EngineError;

/// The codes of SPEC 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Internal = 100,
    Forbidden = 101,
    Unauthorized = 102,
    NotFound = 105,
    AlreadyExists = 106,
    MissingParameter = 200,
    InvalidFormat = 201,
    InvalidUuid = 203,
    OutOfRange = 206,
    InvalidBody = 300,
    Required = 301,
    WrongType = 302,
    Unsupported = 303,
    Empty = 306,
    MessageOrEvent = 5003,
    NoHandler = 5501,
    IntegrationNotFound = 6000,
    ConversationNotFound = 6500,
    ConversationClosed = 6501,
    Paused = 6502,
    RateLimited = 429,
    /// HTTP 413: the request body is too large (SPEC 7.22).
    TooLarge = 304,
    /// HTTP 501: a feature of the Smooch API that Switchboard does not have (SPEC 8.10).
    NotImplemented = 107,
}

impl Code {
    /// The HTTP status this code answers with.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound | Self::IntegrationNotFound | Self::ConversationNotFound => {
                StatusCode::NOT_FOUND
            }
            Self::AlreadyExists => StatusCode::CONFLICT,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn from_violation(kind: ViolationKind) -> Self {
        match kind {
            ViolationKind::MissingParameter => Self::MissingParameter,
            ViolationKind::InvalidFormat => Self::InvalidFormat,
            ViolationKind::InvalidUuid => Self::InvalidUuid,
            ViolationKind::OutOfRange => Self::OutOfRange,
            ViolationKind::InvalidBody => Self::InvalidBody,
            ViolationKind::Required => Self::Required,
            ViolationKind::WrongType => Self::WrongType,
            ViolationKind::Unsupported => Self::Unsupported,
            ViolationKind::Empty => Self::Empty,
            ViolationKind::MessageOrEvent => Self::MessageOrEvent,
        }
    }
}

/// One error of an error body.
#[derive(Clone, Debug, PartialEq, Eq, Object)]
#[oai(rename_all = "camelCase")]
pub struct ErrorItem {
    /// The code of SPEC 1 (for example 301: required property missing).
    pub code: u32,
    /// A sentence for people, ending with `(code: PRT000301)`: the API's prefix and the code.
    pub description: String,
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Object)]
#[oai(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Always equal to the HTTP status.
    pub status: u16,
    /// Every problem found, not only the first.
    pub errors: Vec<ErrorItem>,
}

/// An error answered by the API. Descriptions get their `(code: …)` suffix when rendered, from
/// the request's path (see [`render`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {errors:?}")]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<(u32, String)>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// One error of `code` with its own status.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self::with_status(code.status(), code as u32, message)
    }

    /// One error with an explicit status (e.g. 415 with code 300).
    pub fn with_status(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![(code, message.into())],
            retry_after: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("The {what} does not exist."))
    }
    pub fn integration_not_found() -> Self {
        Self::new(Code::IntegrationNotFound, "The integration does not exist.")
    }
    pub fn conversation_not_found() -> Self {
        Self::new(
            Code::ConversationNotFound,
            "The conversation does not exist.",
        )
    }
    pub fn unauthorized(why: &str) -> Self {
        Self::new(Code::Unauthorized, why.to_owned())
    }
    pub fn forbidden(why: &str) -> Self {
        Self::new(Code::Forbidden, why.to_owned())
    }
    pub fn conflict(what: &str) -> Self {
        Self::new(Code::AlreadyExists, what.to_owned())
    }
    pub fn internal() -> Self {
        Self::new(Code::Internal, "An internal error occurred.")
    }
    pub fn out_of_range(message: impl Into<String>) -> Self {
        Self::new(Code::OutOfRange, message)
    }
    pub fn invalid_uuid(name: &str) -> Self {
        Self::new(
            Code::InvalidUuid,
            format!("Parameter '{name}' is not a valid UUID."),
        )
    }
}

/// What a route was looking for, to name it when storage says it is missing or a duplicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Hub,
    Integration,
    Client,
    Secret,
    Conversation,
}

impl Resource {
    fn missing(self) -> ApiError {
        match self {
            Self::Hub => ApiError::not_found("hub"),
            Self::Integration => ApiError::integration_not_found(),
            Self::Client => ApiError::not_found("client"),
            Self::Secret => ApiError::not_found("secret"),
            Self::Conversation => ApiError::conversation_not_found(),
        }
    }

    fn duplicate(self) -> ApiError {
        match self {
            Self::Hub => ApiError::conflict("A hub with this name already exists."),
            Self::Integration => {
                ApiError::conflict("An integration with this name already exists in the hub.")
            }
            Self::Client | Self::Secret | Self::Conversation => {
                ApiError::conflict("It already exists.")
            }
        }
    }
}

impl ApiError {
    /// Maps a storage error for a route about `resource`: the one place where `NotFound` and
    /// `Conflict` get their codes (105 or 6000, 106).
    pub fn storage(resource: Resource) -> impl FnOnce(switchboard_storage::Error) -> ApiError {
        move |e| match e {
            switchboard_storage::Error::NotFound => resource.missing(),
            switchboard_storage::Error::Conflict => resource.duplicate(),
            other => other.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        // A body that is not an object or not JSON is one error, 400/300, alone.
        let errors: Vec<(u32, String)> =
            v.0.into_iter()
                .map(|Violation { kind, message, .. }| (Code::from_violation(kind) as u32, message))
                .collect();
        Self {
            status: StatusCode::BAD_REQUEST,
            errors,
            retry_after: None,
        }
    }
}

impl From<Violation> for ApiError {
    fn from(v: Violation) -> Self {
        Violations::from(v).into()
    }
}

impl From<switchboard_storage::Error> for ApiError {
    fn from(e: switchboard_storage::Error) -> Self {
        match e {
            switchboard_storage::Error::NotFound => Self::not_found("resource"),
            switchboard_storage::Error::Conflict => {
                Self::conflict("A resource with this name already exists.")
            }
            switchboard_storage::Error::Invalid(v) => v.into(),
            other => {
                tracing::error!(error = %other, "storage error");
                Self::internal()
            }
        }
    }
}

impl From<crate::rate_limit::Refused> for ApiError {
    /// A request over its rate limit: 429/429 with `Retry-After`.
    fn from(r: crate::rate_limit::Refused) -> Self {
        Self {
            retry_after: Some(r.retry_after),
            ..Self::new(Code::RateLimited, r.to_string())
        }
    }
}

impl From<RouteError> for ApiError {
    /// A routing refusal: its code here, its sentence from the domain.
    fn from(e: RouteError) -> Self {
        let code = match e {
            RouteError::SenderNotInHub(_) => Code::IntegrationNotFound,
            RouteError::SenderNotAllowed(_) | RouteError::SenderInAnotherHub(_) => Code::OutOfRange,
            RouteError::SenderPaused(_) | RouteError::HubPaused => Code::Paused,
            RouteError::ConversationClosed(_) => Code::ConversationClosed,
            RouteError::NoHandler => Code::NoHandler,
        };
        Self::new(code, e.to_string())
    }
}

impl From<EngineError> for ApiError {
    /// An error of the engine's service: its code and status here, its sentence from the
    /// engine; a storage failure is logged and answers 500/100.
    fn from(e: EngineError) -> Self {
        let code = match e {
            EngineError::Refused(r) => return r.into(),
            EngineError::Storage(s) => return s.into(),
            EngineError::ConversationNotFound(_) => Code::ConversationNotFound,
            EngineError::IntegrationNotFound(_) => Code::IntegrationNotFound,
            EngineError::HubNotFound(_) => Code::NotFound,
            EngineError::NotCustomer { .. } => Code::OutOfRange,
            EngineError::HubPaused | EngineError::IntegrationPaused(_) => Code::Paused,
            EngineError::ConversationClosed(_) => Code::ConversationClosed,
            EngineError::ForeignSender => Code::Forbidden,
            EngineError::IdempotencyKeyReused => Code::AlreadyExists,
        };
        Self::new(code, e.to_string())
    }
}

/// Documents the error responses of an operation in OpenAPI.
impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        let content = || {
            vec![MetaMediaType {
                content_type: "application/json; charset=utf-8",
                schema: ErrorBody::schema_ref(),
            }]
        };
        let one = |status: u16, description: &'static str| MetaResponse {
            description,
            status: Some(status),
            status_range: None,
            content: content(),
            headers: vec![],
        };
        MetaResponses {
            responses: vec![
                one(400, "The request is invalid: every problem is listed in `errors` (codes 200-306, 5003, 5501, 6501, 6502)."),
                one(401, "The token is missing, malformed, expired or revoked (code 102)."),
                one(403, "The token's scope does not allow this route (code 101)."),
                one(404, "The resource does not exist or belongs to another tenant (codes 105, 6000, 6500)."),
                one(409, "A resource with the same name already exists (code 106)."),
                one(413, "The body is larger than 1 MiB (code 304)."),
                one(415, "The content type is not the route's (code 300)."),
                MetaResponse {
                    headers: vec![MetaHeader {
                        name: "Retry-After".to_owned(),
                        description: Some("Whole seconds to wait before the next request (at least 1).".to_owned()),
                        required: true,
                        deprecated: false,
                        schema: u64::schema_ref(),
                    }],
                    ..one(429, "A rate limit is reached (code 429): per tenant on the portal and engine APIs, per client IP address on `/connect/token` and without credentials. Retry after `Retry-After` seconds.")
                },
                one(500, "An internal error (code 100); nothing internal is disclosed."),
            ],
        }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

/// The prefix of error descriptions for a request path (SPEC 1).
pub fn prefix_for(path: &str) -> &'static str {
    if crate::smooch::is_compat_path(path) {
        "SMC"
    } else if path.starts_with("/connect/token") || path.starts_with("/api/v1/tenants/") {
        "IDT"
    } else if [
        "/api/v1/conversations/",
        "/api/v1/interactions/",
        "/inbound/",
        "/engine-chat-hub",
        "/channels/",
        "/webchat/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
    {
        "ENG"
    } else {
        "PRT"
    }
}

impl ApiError {
    /// The SPEC 1 body of this error, descriptions suffixed with `prefix` (`ENG`, `PRT`, `IDT`).
    pub fn body(&self, prefix: &str) -> ErrorBody {
        ErrorBody {
            status: self.status.as_u16(),
            errors: self
                .errors
                .iter()
                .map(|(code, msg)| ErrorItem {
                    code: *code,
                    description: format!("{msg} (code: {prefix}{code:06})"),
                })
                .collect(),
        }
    }
}

/// Renders an error of any origin as SPEC 1 body for a request to `path`.
pub fn render(err: poem::Error, path: &str) -> Response {
    let api = to_api_error(err);
    let prefix = prefix_for(path);
    let body = api.body(prefix);
    let text = if prefix == "SMC" {
        crate::smooch::error_body(&body).to_string()
    } else {
        body.to_json_string()
    };
    let mut resp = Response::builder()
        .status(api.status)
        .content_type("application/json; charset=utf-8")
        .body(text);
    if let Some(secs) = api.retry_after {
        if let Ok(v) = secs.to_string().parse() {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp.into_response()
}

/// Marks the response of a handler that panicked, so that [`render`] can answer it in the
/// SPEC 1 format with the request's prefix.
#[derive(Clone, Copy, Debug)]
pub struct Panicked;

/// The response of `CatchPanic` for a handler that panicked: the cause goes to the log, the
/// client gets a 500 that [`render`] turns into 500/100.
pub fn panic_response(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = cause
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| cause.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %message, "a handler panicked");
    let mut resp = Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .finish();
    resp.extensions_mut().insert(Panicked);
    resp
}

/// Maps the framework's own rejections onto the catalogue.
fn to_api_error(err: poem::Error) -> ApiError {
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    };
    if let Some(api) = err.downcast_ref::<ApiError>() {
        return api.clone();
    }
    if err.is::<AuthorizationError>() {
        return ApiError::unauthorized("A bearer token is required.");
    }
    if err.is::<ParsePathError>() {
        return ApiError::new(Code::InvalidUuid, "A path parameter is not a valid UUID.");
    }
    if let Some(e) = err.downcast_ref::<ParseParamError>() {
        return if is_id_param(e.name) {
            ApiError::invalid_uuid(e.name)
        } else {
            ApiError::new(
                Code::InvalidFormat,
                format!("Parameter '{}' has an invalid format.", e.name),
            )
        };
    }
    if err.is::<ContentTypeError>() {
        return ApiError::with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            300,
            "The content type is not supported by this route.",
        );
    }
    if err.is::<ParseRequestPayloadError>() {
        return ApiError::new(
            Code::InvalidBody,
            "The body is missing or is not valid JSON.",
        );
    }
    let status = err.status();
    match status {
        StatusCode::NOT_FOUND => ApiError::new(Code::NotFound, "The route does not exist."),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::with_status(
            status,
            Code::NotFound as u32,
            "The route does not accept this method.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(Code::TooLarge, "The body is larger than 1 MiB.")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::with_status(
            status,
            300,
            "The content type is not supported by this route.",
        ),
        StatusCode::UNAUTHORIZED => ApiError::unauthorized("A valid bearer token is required."),
        StatusCode::FORBIDDEN => ApiError::forbidden("The token does not allow this route."),
        s if s.is_client_error() => {
            ApiError::with_status(s, Code::InvalidBody as u32, "The request is invalid.")
        }
        _ => {
            tracing::error!(error = %err, "unhandled error");
            ApiError::internal()
        }
    }
}

fn is_id_param(name: &str) -> bool {
    name.ends_with("Id") || name == "id" || name == "iId" || name == "cId"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_answers_500_marked_for_rendering() {
        let resp = panic_response(Box::new("boom"));
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(resp.extensions().get::<Panicked>().is_some());
        let rendered = render(ApiError::internal().into(), "/api/v1/hubs");
        assert_eq!(rendered.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn engine_errors_get_their_spec_1_code_and_status_here() {
        use switchboard_domain::channel::IntegrationType;
        use switchboard_domain::ids::{ConversationId, HubId, IntegrationId};
        let c = ConversationId::new();
        let i = IntegrationId::new();
        let cases = [
            (EngineError::ConversationNotFound(c), 404, 6500, "The conversation does not exist.".to_owned()),
            (EngineError::IntegrationNotFound(i), 404, 6000, "The integration does not exist.".to_owned()),
            (EngineError::HubNotFound(HubId::new()), 404, 105, "The hub does not exist.".to_owned()),
            (
                EngineError::NotCustomer { integration: i, integration_type: IntegrationType::Agent },
                400,
                206,
                format!("Integration '{i}' is of type Agent: conversations are established on Customer integrations."),
            ),
            (EngineError::HubPaused, 400, 6502, "The hub is paused.".to_owned()),
            (EngineError::IntegrationPaused(i), 400, 6502, format!("Integration '{i}' is paused.")),
            (EngineError::ConversationClosed(c), 400, 6501, format!("Conversation '{c}' is closed.")),
            (
                EngineError::ForeignSender,
                403,
                101,
                "A signed request or a websocket acts as its own integration only: 'sender.integrationId' names another integration.".to_owned(),
            ),
            (
                EngineError::IdempotencyKeyReused,
                409,
                106,
                "This Idempotency-Key was already used with another path or body.".to_owned(),
            ),
            (EngineError::Refused(RouteError::NoHandler), 400, 5501, RouteError::NoHandler.to_string()),
            (EngineError::Refused(RouteError::SenderNotInHub(i)), 404, 6000, format!("Integration '{i}' does not exist.")),
            (
                EngineError::Refused(RouteError::SenderInAnotherHub(i)),
                400,
                206,
                format!("Integration '{i}' belongs to another hub: the sender must be an integration of the conversation's hub."),
            ),
            (
                EngineError::Storage(switchboard_storage::Error::Db("boom".to_owned())),
                500,
                100,
                "An internal error occurred.".to_owned(),
            ),
        ];
        for (err, status, code, text) in cases {
            let what = format!("{err:?}");
            let api = ApiError::from(err);
            assert_eq!(api.status.as_u16(), status, "{what}");
            assert_eq!(api.errors, vec![(code, text)], "{what}");
        }
    }

    #[test]
    fn prefixes_follow_the_path() {
        assert_eq!(prefix_for("/connect/token"), "IDT");
        assert_eq!(prefix_for("/api/v1/tenants/clients/x"), "IDT");
        assert_eq!(prefix_for("/api/v1/conversations/establish"), "ENG");
        assert_eq!(prefix_for("/inbound/customer/v1/direct/activity/x"), "ENG");
        assert_eq!(prefix_for("/engine-chat-hub"), "ENG");
        assert_eq!(prefix_for("/api/v1/hubs"), "PRT");
        assert_eq!(prefix_for("/nope"), "PRT");
    }
}
