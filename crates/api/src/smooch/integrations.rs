//! SPEC 8.6: `{A}/integrations[/{id}]`, the hub's channels of 8.6's table in Smooch's shape.
//! Creates, updates and deletes go through the portal's own path (`crate::integrations`), so
//! validation, generated keys, provisioning (SPEC 7.5) and the engine's revocations are the same;
//! only the names differ (`switchboard_domain::smooch::integrations`).

use poem::http::StatusCode;
use serde_json::{json, Map, Value};
use switchboard_domain::channel::Channel;
use switchboard_domain::hub::Hub;
use switchboard_domain::ids::IntegrationId;
use switchboard_domain::integration::{self, Integration};
use switchboard_domain::smooch::integrations::{self as table, SmoochType};

use super::{Answer, Ctx};
use crate::error::ApiError;
use crate::integrations as portal;

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
pub async fn create(ctx: &mut Ctx<'_>, app_id: &str) -> Answer {
    let hub = ctx.app(app_id).await?;
    let ty = table::read_type(&ctx.body)?;
    check_fields(ctx, ty)?;
    let id = IntegrationId::new();
    let (_, draft) = table::draft_for_create(&ctx.body, id)?;
    let created = portal::create_draft(ctx.state, ctx.caller.tenant, hub.id, id, draft).await?;
    answer(StatusCode::CREATED, &created)
}

/// `GET {A}/integrations?types&limit&offset` → `{ integrations, hasMore, offset }`: all of them
/// without `limit`, else a page; oldest first.
pub async fn list(ctx: &mut Ctx<'_>, app_id: &str) -> Answer {
    let hub = ctx.app(app_id).await?;
    let types: Option<Vec<Channel>> = match query(ctx, "types") {
        Some(value) => Some(table::parse_types(value)?),
        None => None,
    };
    let (limit, offset) = ctx.page()?;
    let limit = if query(ctx, "limit").is_some() {
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
pub async fn get(ctx: &mut Ctx<'_>, app_id: &str, id: &str) -> Answer {
    let hub = ctx.app(app_id).await?;
    let current = find(ctx, &hub, id).await?;
    answer(StatusCode::OK, &current)
}

/// `PUT {A}/integrations/{id}` `{ type, displayName, …fields }` → `{ integration }`: `type`
/// unchanged, fields merged into the configuration (TwilioSMS and Messenger ignore them, with a
/// `Warning`).
pub async fn update(ctx: &mut Ctx<'_>, app_id: &str, id: &str) -> Answer {
    let hub = ctx.app(app_id).await?;
    let current = find(ctx, &hub, id).await?;
    let ty = table::for_channel(current.channel).ok_or_else(ApiError::integration_not_found)?;
    check_fields(ctx, ty)?;
    let outcome = table::update_outcome(&ctx.body, &current)
        .ok_or_else(ApiError::integration_not_found)??;
    let channel = current.channel;
    let (updated, warning) =
        portal::apply_update(ctx.state, ctx.caller.tenant, current, outcome).await?;
    if warning.is_some() {
        ctx.warnings.push(integration::ignored_update_text(channel));
    }
    answer(StatusCode::OK, &updated)
}

/// `DELETE {A}/integrations/{id}` → `{}`.
pub async fn delete(ctx: &mut Ctx<'_>, app_id: &str, id: &str) -> Answer {
    let hub = ctx.app(app_id).await?;
    let current = find(ctx, &hub, id).await?;
    portal::delete(ctx.state, ctx.caller.tenant, current.id).await?;
    Ok((StatusCode::OK, Value::Object(Map::new())))
}

/// A query parameter's (percent-decoded) value; the first when repeated.
fn query<'a>(ctx: &'a Ctx<'_>, name: &str) -> Option<&'a str> {
    ctx.query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
