//! SPEC 8.6: `{A}/integrations[/{id}]`, the hub's channels of 8.6's table in Smooch's shape.
//! Creates, updates and deletes go through the portal's own path (`crate::integrations`), so
//! validation, generated keys, provisioning (SPEC 7.5) and the engine's revocations are the same;
//! only the names differ (`switchboard_domain::smooch::integrations`).

use poem::http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use switchboard_domain::channel::Channel;
use switchboard_domain::hub::Hub;
use switchboard_domain::ids::IntegrationId;
use switchboard_domain::integration::{self, Integration};
use switchboard_domain::smooch::integrations::{self as table, SmoochType};

use super::{no_route, Answer, Ctx};
use crate::error::ApiError;
use crate::integrations as portal;

/// The routes after `{A}/integrations`.
pub async fn route(ctx: &mut Ctx<'_>, hub: Hub, rest: &[&str]) -> Answer {
    match (ctx.method.clone(), rest) {
        (Method::POST, []) => create(ctx, &hub).await,
        (Method::GET, []) => list(ctx, &hub).await,
        (Method::GET, [id]) => get(ctx, &hub, id).await,
        (Method::PUT, [id]) => update(ctx, &hub, id).await,
        (Method::DELETE, [id]) => delete(ctx, &hub, id).await,
        _ => Err(no_route()),
    }
}

/// The hub's integration `id`, when it is one of the table's channels: else 404 (another
/// channel's id, another hub's, not a UUID at all).
async fn find(ctx: &Ctx<'_>, hub: &Hub, id: &str) -> Result<Integration, ApiError> {
    let Ok(id) = id.parse::<IntegrationId>() else {
        return Err(ApiError::integration_not_found());
    };
    ctx.state
        .store
        .find_integration(ctx.caller.tenant, id)
        .await?
        .filter(|i| i.hub_id == hub.id && table::for_channel(i.channel).is_some())
        .ok_or_else(ApiError::integration_not_found)
}

/// `{ integration }`.
fn answer(status: StatusCode, integration: &Integration) -> Answer {
    let rendered = table::render(integration).ok_or_else(ApiError::integration_not_found)?;
    Ok((status, json!({ "integration": rendered })))
}

/// Checks the body's fields against `ty`'s (unknown 400, ignored dropped with a `Warning`).
fn check_fields(ctx: &mut Ctx<'_>, ty: &SmoochType) -> Result<(), ApiError> {
    ctx.fields(&ty.allowed_fields(), ty.ignored)
}

/// `POST {A}/integrations` `{ type*, displayName, …type fields }` → 201 `{ integration }`.
async fn create(ctx: &mut Ctx<'_>, hub: &Hub) -> Answer {
    let ty = match table::read_type(&ctx.body) {
        Ok(ty) => ty,
        Err(violation) => {
            // A body that is not a JSON object is reported as such, not as a missing `type`.
            let given: Vec<String> = ctx.body.keys().cloned().collect();
            ctx.fields(&given.iter().map(String::as_str).collect::<Vec<_>>(), &[])?;
            return Err(violation.into());
        }
    };
    check_fields(ctx, ty)?;
    let id = IntegrationId::new();
    let (_, draft) = table::draft_for_create(&ctx.body, id)?;
    // A portal hub gets its compat integrations with its first compat POST (SPEC 8.8).
    super::compat_integrations(ctx.state, hub).await?;
    let created = portal::create_draft(ctx.state, ctx.caller.tenant, hub.id, id, draft).await?;
    answer(StatusCode::CREATED, &created)
}

/// `GET {A}/integrations?types&limit&offset` → `{ integrations, hasMore, offset }`: all of them
/// without `limit`, else a page; oldest first.
async fn list(ctx: &mut Ctx<'_>, hub: &Hub) -> Answer {
    let types: Option<Vec<Channel>> = match ctx.param("types") {
        Some(value) => Some(table::parse_types(value)?),
        None => None,
    };
    let (limit, offset) = ctx.page()?;
    let limit = if ctx.param("limit").is_some() {
        limit
    } else {
        u64::MAX
    };
    let all: Vec<Integration> = ctx
        .state
        .store
        .list_hub_integrations(ctx.caller.tenant, hub.id, None)
        .await?
        .into_iter()
        .filter(|i| table::for_channel(i.channel).is_some())
        .filter(|i| types.as_ref().is_none_or(|t| t.contains(&i.channel)))
        .collect();
    let total = all.len() as u64;
    let page: Vec<Value> = all
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .filter_map(table::render)
        .collect();
    let has_more = offset.saturating_add(page.len() as u64) < total;
    Ok((
        StatusCode::OK,
        json!({ "integrations": page, "hasMore": has_more, "offset": offset }),
    ))
}

/// `GET {A}/integrations/{id}` → `{ integration }`.
async fn get(ctx: &mut Ctx<'_>, hub: &Hub, id: &str) -> Answer {
    let current = find(ctx, hub, id).await?;
    answer(StatusCode::OK, &current)
}

/// `PUT {A}/integrations/{id}` `{ type, displayName, …fields }` → `{ integration }`: `type`
/// unchanged, fields merged into the configuration (TwilioSMS and Messenger ignore them, with a
/// `Warning`).
async fn update(ctx: &mut Ctx<'_>, hub: &Hub, id: &str) -> Answer {
    let current = find(ctx, hub, id).await?;
    let ty = table::for_channel(current.channel).ok_or_else(ApiError::integration_not_found)?;
    check_fields(ctx, ty)?;
    let outcome = table::update_outcome(&ctx.body, &current)
        .ok_or_else(ApiError::integration_not_found)??;
    let channel = current.channel;
    super::compat_integrations(ctx.state, hub).await?;
    let (updated, warning) =
        portal::apply_update(ctx.state, ctx.caller.tenant, current, outcome).await?;
    if warning.is_some() {
        ctx.warnings.push(integration::ignored_update_text(channel));
    }
    answer(StatusCode::OK, &updated)
}

/// `DELETE {A}/integrations/{id}` → `{}`.
async fn delete(ctx: &mut Ctx<'_>, hub: &Hub, id: &str) -> Answer {
    let current = find(ctx, hub, id).await?;
    portal::delete(ctx.state, ctx.caller.tenant, current.id).await?;
    Ok((StatusCode::OK, Value::Object(Map::new())))
}
