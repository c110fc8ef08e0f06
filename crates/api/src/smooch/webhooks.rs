//! Webhooks (SPEC 8.7): `{A}/webhooks` and, for `app` scope, `{P}/webhooks`. A webhook is a
//! System integration of format `smooch`, portal-made ones included; other integrations are not
//! webhooks here (404). Validation, the generated `secret` and the derived `events` are the
//! System channel's (`domain::channel_config`); delivery is the webhook worker's.

use poem::http::Method;
use serde_json::{json, Map, Value};
use switchboard_domain::channel::Channel;
use switchboard_domain::channel_config::WEBHOOK_SECRET;
use switchboard_domain::hub::Hub;
use switchboard_domain::ids::IntegrationId;
use switchboard_domain::integration::{self, Integration};
use switchboard_domain::smooch::webhook::{
    self as rules, INCLUDE_CLIENT, INCLUDE_FULL_APP_USER, TRIGGERS,
};
use switchboard_domain::{Violation, Violations};

use super::{created, no_route, ok, Answer, Ctx, Version};
use crate::error::{ApiError, Code, Resource};

/// The fields of a webhook body.
const FIELDS: &[&str] = &["target", TRIGGERS, INCLUDE_CLIENT, INCLUDE_FULL_APP_USER];

/// The routes after `{A}/webhooks` (or `{P}/webhooks`).
pub async fn route(ctx: &mut Ctx<'_>, hub: Hub, rest: &[&str]) -> Answer {
    let method = ctx.method.clone();
    match rest {
        [] if method == Method::POST => create(ctx, &hub).await,
        [] if method == Method::GET => {
            let webhooks: Vec<Value> = list(ctx, &hub).await?.iter().map(render).collect();
            ok(json!({ "webhooks": webhooks }))
        }
        [id] if method == Method::GET => {
            ok(json!({ "webhook": render(&find(ctx, &hub, id).await?) }))
        }
        [id] if method == Method::PUT => {
            let current = find(ctx, &hub, id).await?;
            update(ctx, current).await
        }
        [id] if method == Method::DELETE => {
            let current = find(ctx, &hub, id).await?;
            ctx.state
                .store
                .delete_integration(hub.tenant_id, current.id)
                .await
                .map_err(|_| not_found())?;
            ok(json!({}))
        }
        _ => Err(no_route()),
    }
}

fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "The webhook does not exist.")
}

/// The hub's webhooks, oldest first.
async fn list(ctx: &Ctx<'_>, hub: &Hub) -> Result<Vec<Integration>, ApiError> {
    Ok(ctx
        .state
        .store
        .list_hub_integrations(hub.tenant_id, hub.id, Some(Channel::System))
        .await?
        .into_iter()
        .filter(|i| rules::is_smooch(&i.configuration))
        .collect())
}

/// The hub's webhook `id`: a smooch-format System integration of the hub, else 404 (whatever
/// the id's shape).
async fn find(ctx: &Ctx<'_>, hub: &Hub, id: &str) -> Result<Integration, ApiError> {
    let id: IntegrationId = id.parse().map_err(|_| not_found())?;
    ctx.state
        .store
        .find_integration(hub.tenant_id, id)
        .await?
        .filter(|i| {
            i.hub_id == hub.id && i.channel == Channel::System && rules::is_smooch(&i.configuration)
        })
        .ok_or_else(not_found)
}

/// 8.7's `webhook` of a System integration.
fn render(i: &Integration) -> Value {
    let c = &i.configuration;
    let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
    json!({
        "_id": i.id.to_string(),
        "target": c.get("webhookUrl").cloned().unwrap_or(Value::Null),
        "triggers": c.get(TRIGGERS).cloned().unwrap_or_else(|| json!([])),
        "secret": c.get(WEBHOOK_SECRET).cloned().unwrap_or(Value::Null),
        "version": rules::VERSION,
        "includeClient": flag(INCLUDE_CLIENT),
        "includeFullAppUser": flag(INCLUDE_FULL_APP_USER),
    })
}

/// The configuration keys the body's fields set: `target` is `webhookUrl`, the rest keep their
/// names.
fn apply_fields(body: &Map<String, Value>, configuration: &mut Map<String, Value>) {
    for field in FIELDS {
        if let Some(value) = body.get(*field).filter(|v| !v.is_null()) {
            let key = if *field == "target" {
                "webhookUrl"
            } else {
                field
            };
            configuration.insert(key.to_owned(), value.clone());
        }
    }
    configuration.insert(rules::FORMAT.to_owned(), json!(rules::FORMAT_SMOOCH));
}

/// Violations of the System configuration, named as the webhook's fields.
fn as_fields(v: Violations) -> ApiError {
    let renamed = Violations(
        v.0.into_iter()
            .map(|x| {
                let rename = |s: &str| {
                    s.replace("configuration.webhookUrl", "target")
                        .replace("configuration.", "")
                };
                Violation::new(x.kind, rename(&x.property), rename(&x.message))
            })
            .collect(),
    );
    renamed.into()
}

// SPEC 8.7
async fn create(ctx: &mut Ctx<'_>, hub: &Hub) -> Answer {
    ctx.fields(FIELDS, &[])?;
    let defaults = match ctx.version {
        Version::V1 => rules::V1_DEFAULTS,
        Version::V1_1 => rules::V1_1_DEFAULTS,
    };
    let mut configuration = Map::new();
    configuration.insert(TRIGGERS.to_owned(), json!(defaults.triggers));
    configuration.insert(INCLUDE_CLIENT.to_owned(), json!(defaults.include_client));
    configuration.insert(
        INCLUDE_FULL_APP_USER.to_owned(),
        json!(defaults.include_full_app_user),
    );
    apply_fields(&ctx.body, &mut configuration);
    if ctx.body.get("target").is_none_or(Value::is_null) {
        return Err(Violation::required("target").into());
    }
    let id = IntegrationId::new();
    let draft = integration::validate_create(&json!({
        "channelId": "System",
        "name": rules::integration_name(id),
        "configuration": configuration,
    }))
    .map_err(as_fields)?;
    let made = ctx
        .state
        .store
        .create_integration_as(hub.tenant_id, hub.id, id, &draft)
        .await
        .map_err(ApiError::storage(Resource::Hub))?;
    created(json!({ "webhook": render(&made) }))
}

// SPEC 8.7: the given fields replace theirs, the others are kept; at least one.
async fn update(ctx: &mut Ctx<'_>, current: Integration) -> Answer {
    ctx.fields(FIELDS, &[])?;
    if !FIELDS
        .iter()
        .any(|f| ctx.body.get(*f).is_some_and(|v| !v.is_null()))
    {
        return Err(ApiError::new(
            Code::Required,
            "At least one of 'target', 'triggers', 'includeClient', 'includeFullAppUser' is required.",
        ));
    }
    let mut configuration = current.configuration.clone();
    apply_fields(&ctx.body, &mut configuration);
    let outcome =
        integration::validate_update(&json!({ "configuration": configuration }), &current)
            .map_err(as_fields)?;
    let updated = ctx
        .state
        .store
        .update_integration(current.tenant_id, current.id, &outcome.draft)
        .await
        .map_err(ApiError::storage(Resource::Integration))?;
    ok(json!({ "webhook": render(&updated) }))
}
