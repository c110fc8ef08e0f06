//! The Smooch v1 compatible API (SPEC 8): `/v1/…` and `/v1.1/…`, so that code written for
//! Smooch (above all the npm client `smooch-core`) runs against Switchboard with a new
//! `serviceUrl` and keys. A translation layer over the same store and engine as the portal and
//! engine APIs: apps are hubs, webhooks are System integrations, app users are customers,
//! messages are activities.
//!
//! One raw endpoint serves both prefixes and routes on path segments itself, so that 8.1's
//! conventions hold on every route, unknown ones included: bodies read as JSON whatever the
//! content type (never 415), a trailing `/` ignored, ids naming nothing reachable answer 404
//! whatever their shape, and checks run in the order token (401), scope (403), path resources
//! (404), body (400). Errors answer 8.2's body, which both smooch-core (`error.code`,
//! `error.description`) and SPEC 1 clients (`status`, `errors`) read.

mod apps;
mod appusers;
mod auth;
mod integrations;
mod keys;
mod messages;
pub mod openapi;
mod unsupported;
mod webhooks;

use poem::http::{header, HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::{json, Map, Value};
use switchboard_domain::hub::Hub;
use switchboard_domain::ids::{HubId, TenantId};

use crate::error::{ApiError, Code, ErrorBody};
use crate::state::AppState;

pub use auth::SmoochKeyCache;

/// Which prefix a request came under; only webhook defaults differ (SPEC 8.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `/v1`
    V1,
    /// `/v1.1`
    V1_1,
}

/// What a verified token may reach (SPEC 8.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// An account key's `account` (or `appMaker`) token: every app of the tenant.
    Account,
    /// An app key's `app` token: its own app.
    App { hub: HubId },
    /// An app key's `appUser` token: its own app, and there the app user of this `userId`.
    AppUser { hub: HubId, user_id: String },
}

/// The caller of a compat route, once its token is verified.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    pub scope: Scope,
    /// The `kid` of the token (for logs).
    pub key_id: String,
}

/// A request being served: who calls, its query, its body, and the warnings of its answer.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub version: Version,
    pub method: Method,
    pub caller: Caller,
    /// Query pairs, percent-decoded.
    pub query: Vec<(String, String)>,
    /// The body as an object: `{}` when absent or empty, and on GET and DELETE.
    pub body: Map<String, Value>,
    /// Why the body is not a JSON object, reported when a handler reads it (after 404s).
    body_error: Option<ApiError>,
    /// Ignored fields and the like: one `Warning: 299 switchboard "…"` per entry.
    pub warnings: Vec<String>,
    /// `scheme://host` of the request, for absolute URLs in answers.
    pub base_url: String,
}

/// A compat route's answer: a status and a JSON body.
pub type Answer = Result<(StatusCode, Value), ApiError>;

/// 200 with `body`.
pub fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, body))
}

/// 201 with `body`.
pub fn created(body: Value) -> Answer {
    Ok((StatusCode::CREATED, body))
}

/// 501 `not_implemented` naming the feature (SPEC 8.10).
pub fn not_implemented(feature: &str) -> ApiError {
    ApiError::new(
        Code::NotImplemented,
        format!("{feature} is not implemented by Switchboard's Smooch-compatible API."),
    )
}

/// 404 for a path that is no route.
pub fn no_route() -> ApiError {
    ApiError::not_found("route")
}

/// 403: the token's scope may not use the route or app user.
pub fn forbidden() -> ApiError {
    ApiError::forbidden("The token's scope may not use this route.")
}

impl Ctx<'_> {
    /// Checks the body's fields: each must be in `allowed` or `ignored`; the ignored ones are
    /// dropped and named in the answer's `Warning`, any other is 400 (303). Reports a body that
    /// is not a JSON object first (400, 300).
    pub fn fields(&mut self, allowed: &[&str], ignored: &[&str]) -> Result<(), ApiError> {
        if let Some(e) = self.body_error.take() {
            return Err(e);
        }
        let mut unknown = Vec::new();
        let mut dropped = Vec::new();
        for key in self.body.keys() {
            if ignored.contains(&key.as_str()) {
                dropped.push(key.clone());
            } else if !allowed.contains(&key.as_str()) {
                unknown.push(key.clone());
            }
        }
        if !unknown.is_empty() {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                errors: unknown
                    .iter()
                    .map(|k| {
                        (
                            Code::Unsupported as u32,
                            format!("Property '{k}' is not supported."),
                        )
                    })
                    .collect(),
                retry_after: None,
            });
        }
        if !dropped.is_empty() {
            for k in &dropped {
                self.body.remove(k);
            }
            self.warnings
                .push(format!("ignored: {}", dropped.join(", ")));
        }
        Ok(())
    }

    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `limit` (1..100, default 25) and `offset` (>= 0, default 0) of a paginated route
    /// (SPEC 8.1).
    pub fn page(&self) -> Result<(u64, u64), ApiError> {
        let read = |name: &str, default: u64, min: u64, max: u64| match self.param(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= min as i64 && n <= max as i64 => Ok(n as u64),
                Ok(_) => Err(ApiError::out_of_range(format!(
                    "Parameter '{name}' must be {min} to {max}."
                ))),
                Err(_) => Err(ApiError::new(
                    Code::InvalidFormat,
                    format!("Parameter '{name}' must be an integer."),
                )),
            },
        };
        Ok((
            read("limit", 25, 1, 100)?,
            read("offset", 0, 0, i64::MAX as u64)?,
        ))
    }

    /// The hub of `app_id` that the caller may reach, or 404 (whatever the id's shape). App
    /// and appUser tokens reach their own app only.
    pub async fn app(&self, app_id: &str) -> Result<Hub, ApiError> {
        let Ok(id) = app_id.parse::<HubId>() else {
            return Err(ApiError::not_found("app"));
        };
        if let Scope::App { hub } | Scope::AppUser { hub, .. } = &self.caller.scope {
            if *hub != id {
                return Err(ApiError::not_found("app"));
            }
        }
        self.state
            .store
            .find_hub(self.caller.tenant, id)
            .await?
            .ok_or_else(|| ApiError::not_found("app"))
    }

    /// The hub of an app-implicit route (`{P}/webhooks`, `{P}/appusers`): the app key's.
    pub async fn own_app(&self) -> Result<Hub, ApiError> {
        match &self.caller.scope {
            Scope::App { hub } | Scope::AppUser { hub, .. } => self.app(&hub.to_string()).await,
            Scope::Account => Err(forbidden()),
        }
    }
}

/// Whether a path is under a compat prefix (its errors answer 8.2's body).
pub fn is_compat_path(path: &str) -> bool {
    path == "/v1" || path == "/v1.1" || path.starts_with("/v1/") || path.starts_with("/v1.1/")
}

/// The error body of SPEC 8.2: Smooch's `error` beside SPEC 1's `status` and `errors`.
pub fn error_body(body: &ErrorBody) -> Value {
    let code = match body.status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "payload_too_large",
        429 => "too_many_requests",
        501 => "not_implemented",
        503 => "service_unavailable",
        _ => "internal_server_error",
    };
    let description = body
        .errors
        .iter()
        .map(|e| e.description.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    json!({
        "error": { "code": code, "description": description },
        "status": body.status,
        "errors": body.errors.iter().map(|e| json!({ "code": e.code, "description": e.description })).collect::<Vec<_>>(),
    })
}

/// The endpoint of one prefix, to nest at `/v1` or `/v1.1`.
pub fn endpoint(version: Version) -> impl Endpoint<Output = Response> {
    poem::endpoint::make(move |req: Request| async move { serve(version, req).await })
}

async fn serve(version: Version, mut req: Request) -> poem::Result<Response> {
    let state = req
        .data::<AppState>()
        .cloned()
        .ok_or_else(ApiError::internal)?;
    let path = req.uri().path().to_owned();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let caller = auth::authenticate(&state, &req).await?;
    let method = req.method().clone();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let base_url = base_url(&req);
    let (body, body_error) = if method == Method::GET || method == Method::DELETE {
        (Map::new(), None)
    } else {
        let mut body = poem::RequestBody::new(req.take_body());
        let bytes = crate::body::read_limited(&mut body).await?;
        read_object(&bytes)
    };
    let mut ctx = Ctx {
        state: &state,
        version,
        method,
        caller,
        query,
        body,
        body_error,
        warnings: Vec::new(),
        base_url,
    };
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (status, body) = route(&mut ctx, &segs).await?;
    let mut resp = Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string());
    for w in &ctx.warnings {
        let text = format!("299 switchboard \"{}\"", w.replace(['"', '\\'], "'"));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    Ok(resp.into_response())
}

/// Reads a body as a JSON object: empty is `{}`; anything else is a deferred 400 (300).
fn read_object(bytes: &[u8]) -> (Map<String, Value>, Option<ApiError>) {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return (Map::new(), None);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => (map, None),
        Ok(_) => (
            Map::new(),
            Some(ApiError::new(
                Code::InvalidBody,
                "The body must be a JSON object.",
            )),
        ),
        Err(_) => (
            Map::new(),
            Some(ApiError::new(
                Code::InvalidBody,
                "The body is not valid JSON.",
            )),
        ),
    }
}

/// `scheme://host` of a request: `X-Forwarded-Proto` when a proxy sets it, else `http`.
fn base_url(req: &Request) -> String {
    let scheme = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|s| *s == "https" || *s == "http")
        .unwrap_or("http");
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// Routes a request by its segments after the prefix. Scope is checked per family of routes
/// before any resource is looked up (SPEC 8.3's table).
async fn route(ctx: &mut Ctx<'_>, segs: &[&str]) -> Answer {
    if let Some(feature) = unsupported::feature(&ctx.method, segs) {
        return Err(not_implemented(feature));
    }
    let scope = ctx.caller.scope.clone();
    let account = scope == Scope::Account;
    let user_scope = matches!(scope, Scope::AppUser { .. });
    match segs {
        ["apps"] => {
            if !account {
                return Err(forbidden());
            }
            apps::collection(ctx).await
        }
        ["apps", app_id] => {
            if !account {
                return Err(forbidden());
            }
            apps::item(ctx, app_id).await
        }
        ["apps", app_id, family, rest @ ..] => {
            let family = *family;
            match family {
                "keys" if !account => Err(forbidden()),
                "integrations" | "webhooks" if user_scope => Err(forbidden()),
                "keys" | "integrations" | "webhooks" | "appusers" => {
                    let hub = ctx.app(app_id).await?;
                    match family {
                        "keys" => keys::route(ctx, hub, rest).await,
                        "integrations" => integrations::route(ctx, hub, rest).await,
                        "webhooks" => webhooks::route(ctx, hub, rest).await,
                        _ => appusers::route(ctx, hub, rest).await,
                    }
                }
                _ => Err(no_route()),
            }
        }
        // App-implicit routes: the app key's own app.
        ["keys", ..] => Err(forbidden()),
        ["webhooks", rest @ ..] => {
            if !matches!(scope, Scope::App { .. }) {
                return Err(forbidden());
            }
            let hub = ctx.own_app().await?;
            webhooks::route(ctx, hub, rest).await
        }
        ["appusers", rest @ ..] => {
            if account {
                return Err(forbidden());
            }
            let hub = ctx.own_app().await?;
            appusers::route(ctx, hub, rest).await
        }
        _ => Err(no_route()),
    }
}

pub use switchboard_domain::smooch::{BUSINESS_INTEGRATION, USERS_INTEGRATION};

/// The hub's two compat Direct integrations (SPEC 8.8), *Smooch API users* (Customer) and
/// *Smooch API business* (Agent, websocket delivery: its copies are just stored), made when
/// missing (the first time, or after a delete; ` 2`, ` 3`… when the name is taken).
pub async fn compat_integrations(
    state: &AppState,
    hub: &Hub,
) -> Result<
    (
        switchboard_domain::ids::IntegrationId,
        switchboard_domain::ids::IntegrationId,
    ),
    ApiError,
> {
    let store = &state.store;
    let app = store.smooch_app(hub.tenant_id, hub.id).await?;
    let mut ids = [app.users_integration, app.business_integration];
    let mut made = [None, None];
    for (i, (name, kind)) in [
        (USERS_INTEGRATION, "Customer"),
        (BUSINESS_INTEGRATION, "Agent"),
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(id) = ids[i] {
            match store.find_integration(hub.tenant_id, id).await? {
                Some(found) if found.hub_id == hub.id => continue,
                _ => {}
            }
        }
        let mut n = 1;
        let created = loop {
            let named = switchboard_domain::smooch::compat_name(name, n);
            let draft = switchboard_domain::integration::validate_create(&json!({
                "channelId": "Direct",
                "name": named,
                "configuration": { "integrationType": kind },
            }))?;
            match store
                .create_integration(hub.tenant_id, hub.id, &draft)
                .await
            {
                Ok(created) => break created,
                Err(switchboard_storage::Error::Conflict) if n < 100 => n += 1,
                Err(e) => return Err(ApiError::storage(crate::error::Resource::Integration)(e)),
            }
        };
        ids[i] = Some(created.id);
        made[i] = Some(created.id);
    }
    if made.iter().any(Option::is_some) {
        store
            .set_smooch_compat_integrations(hub.id, made[0], made[1])
            .await?;
    }
    match ids {
        [Some(users), Some(business)] => Ok((users, business)),
        _ => Err(ApiError::internal()),
    }
}
