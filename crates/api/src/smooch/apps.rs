//! Apps ↔ hubs (SPEC 8.4): every hub of the tenant is an app. Account scope only.

use poem::http::Method;
use serde_json::{json, Map, Value};
use switchboard_domain::hub::{self, Hub};
use switchboard_domain::paging::PageRequest;
use switchboard_domain::smooch::{self, App};

use super::{created, not_implemented, ok, Answer, Ctx};
use crate::error::{ApiError, Resource};
use crate::state::AppState;

/// The app of a hub as Smooch shows it.
pub fn app_json(hub: &Hub, app: &App) -> Value {
    json!({
        "_id": hub.id.to_string(),
        "name": hub.name,
        "appToken": app.app_token,
        "settings": app.settings.clone().map_or_else(|| json!({}), Value::Object),
        "metadata": app.metadata.clone().map_or(Value::Null, Value::Object),
    })
}

const FIELDS: &[&str] = &["name", "settings", "metadata"];

/// `{P}/apps`: create, list.
pub async fn collection(ctx: &mut Ctx<'_>) -> Answer {
    if ctx.param("serviceAccountId").is_some() {
        return Err(not_implemented("Service accounts"));
    }
    match ctx.method {
        Method::POST => create(ctx).await,
        Method::GET => list(ctx).await,
        _ => Err(super::no_route()),
    }
}

/// `{P}/apps/{appId}`: get, update, delete.
pub async fn item(ctx: &mut Ctx<'_>, app_id: &str) -> Answer {
    let hub = ctx.app(app_id).await?;
    match ctx.method {
        Method::GET => {
            let app = ctx.state.store.smooch_app(hub.tenant_id, hub.id).await?;
            ok(json!({ "app": app_json(&hub, &app) }))
        }
        Method::PUT => update(ctx, hub).await,
        Method::DELETE => {
            crate::hubs::delete(ctx.state, hub.tenant_id, hub.id).await?;
            ok(json!({}))
        }
        _ => Err(super::no_route()),
    }
}

fn settings_warning(ctx: &mut Ctx<'_>) {
    if ctx.body.contains_key("settings") {
        ctx.warnings
            .push("settings are stored, not applied".to_owned());
    }
}

async fn create(ctx: &mut Ctx<'_>) -> Answer {
    ctx.fields(FIELDS, &[])?;
    let tenant = ctx.caller.tenant;
    let mut body = Map::new();
    body.insert(
        "name".into(),
        ctx.body.get("name").cloned().unwrap_or(Value::Null),
    );
    body.insert("description".into(), json!(""));
    // Smooch requires `name`; SPEC 3's validation says so in its words.
    let draft = hub::validate_create(&Value::Object(body))?;
    let blank = App {
        hub_id: switchboard_domain::ids::HubId::new(),
        app_token: String::new(),
        settings: None,
        metadata: None,
        users_integration: None,
        business_integration: None,
    };
    let (settings, metadata) =
        smooch::validate_app_fields(ctx.body.get("settings"), ctx.body.get("metadata"), &blank)?;
    settings_warning(ctx);
    let hub = ctx
        .state
        .store
        .create_hub(tenant, &draft)
        .await
        .map_err(|e| match e {
            switchboard_storage::Error::Conflict => {
                ApiError::conflict("An app with this name already exists.")
            }
            e => ApiError::storage(Resource::Hub)(e),
        })?;
    let app = ctx
        .state
        .store
        .set_smooch_app_fields(tenant, hub.id, settings.as_ref(), metadata.as_ref())
        .await?;
    super::compat_integrations(ctx.state, &hub).await?;
    created(json!({ "app": app_json(&hub, &app) }))
}

async fn list(ctx: &mut Ctx<'_>) -> Answer {
    let (limit, offset) = ctx.page()?;
    let tenant = ctx.caller.tenant;
    // Hubs are listed in pages of SPEC 1; an offset that is not a multiple of the limit reads
    // the pages it spans.
    let hubs = hubs_window(ctx.state, tenant, limit, offset).await?;
    let (window, total) = hubs;
    let ids: Vec<_> = window.iter().map(|h| h.id).collect();
    let mut apps = ctx.state.store.smooch_apps(&ids).await?;
    let mut out = Vec::with_capacity(window.len());
    for hub in &window {
        let app = match apps.iter().position(|a| a.hub_id == hub.id) {
            Some(i) => apps.swap_remove(i),
            None => ctx.state.store.smooch_app(tenant, hub.id).await?,
        };
        out.push(app_json(hub, &app));
    }
    let has_more = offset + (out.len() as u64) < total;
    ok(json!({ "apps": out, "hasMore": has_more, "offset": offset }))
}

/// The tenant's hubs `offset..offset + limit` (oldest first) and how many it has.
async fn hubs_window(
    state: &AppState,
    tenant: switchboard_domain::ids::TenantId,
    limit: u64,
    offset: u64,
) -> Result<(Vec<Hub>, u64), ApiError> {
    let first = offset / limit;
    let mut out = Vec::new();
    let mut total = 0;
    for number in first..=first + 1 {
        let page = state
            .store
            .list_hubs(
                tenant,
                PageRequest {
                    number,
                    size: limit,
                },
            )
            .await?;
        total = page.total;
        let start = number * limit;
        for (i, hub) in page.results.into_iter().enumerate() {
            let at = start + i as u64;
            if at >= offset && at < offset + limit {
                out.push(hub);
            }
        }
        if offset % limit == 0 {
            break;
        }
    }
    Ok((out, total))
}

async fn update(ctx: &mut Ctx<'_>, hub: Hub) -> Answer {
    ctx.fields(FIELDS, &[])?;
    let tenant = hub.tenant_id;
    let stored = ctx.state.store.smooch_app(tenant, hub.id).await?;
    let (settings, metadata) =
        smooch::validate_app_fields(ctx.body.get("settings"), ctx.body.get("metadata"), &stored)?;
    settings_warning(ctx);
    let hub = match ctx.body.get("name") {
        Some(name) => {
            let patch = json!({ "name": name });
            let draft = hub::validate_patch(&patch, &hub)?;
            ctx.state
                .store
                .update_hub(tenant, hub.id, &draft)
                .await
                .map_err(|e| match e {
                    switchboard_storage::Error::Conflict => {
                        ApiError::conflict("An app with this name already exists.")
                    }
                    e => ApiError::storage(Resource::Hub)(e),
                })?
        }
        None => hub,
    };
    let app = ctx
        .state
        .store
        .set_smooch_app_fields(tenant, hub.id, settings.as_ref(), metadata.as_ref())
        .await?;
    ok(json!({ "app": app_json(&hub, &app) }))
}
