//! App keys (SPEC 8.5), account scope only: `{A}/keys[/{keyId}[/jwt]]`. The secret is in every
//! answer, as in Smooch (only account scope sees it, and it can make keys anyway); each read of
//! one is logged with the key's id.

use poem::http::Method;
use serde_json::{json, Value};
use switchboard_domain::hub::Hub;
use switchboard_domain::smooch::keys::{self, SmoochKey};

use super::{created, no_route, ok, Answer, Ctx};
use crate::error::ApiError;

fn key_json(key: &SmoochKey) -> Value {
    tracing::info!(key_id = %key.key_id, "an app key's secret was read");
    json!({ "_id": key.key_id, "name": key.name, "secret": key.secret })
}

/// The routes after `{A}/keys`.
pub async fn route(ctx: &mut Ctx<'_>, hub: Hub, rest: &[&str]) -> Answer {
    let store = &ctx.state.store;
    match (&ctx.method, rest) {
        (&Method::POST, []) => {
            ctx.fields(&["name"], &[])?;
            let name = keys::read_name(&ctx.body)?;
            let key = store
                .create_smooch_key(hub.tenant_id, Some(hub.id), &name)
                .await?;
            created(json!({ "key": key_json(&key) }))
        }
        (&Method::GET, []) => {
            let keys = store.list_smooch_keys(hub.tenant_id, Some(hub.id)).await?;
            ok(json!({ "keys": keys.iter().map(key_json).collect::<Vec<_>>() }))
        }
        (&Method::GET, [key_id]) => {
            let key = find(ctx, &hub, key_id).await?;
            ok(json!({ "key": key_json(&key) }))
        }
        (&Method::GET, [key_id, "jwt"]) => {
            let key = find(ctx, &hub, key_id).await?;
            let iat = chrono::Utc::now().timestamp();
            let jwt = keys::sign(
                &key.key_id,
                &key.secret,
                &json!({ "scope": "app", "iat": iat }),
            );
            ok(json!({ "jwt": jwt }))
        }
        (&Method::DELETE, [key_id]) => {
            store
                .delete_smooch_key(hub.tenant_id, Some(hub.id), key_id)
                .await
                .map_err(|_| ApiError::not_found("key"))?;
            ctx.state.smooch_keys.forget(key_id);
            ok(json!({}))
        }
        _ => Err(no_route()),
    }
}

/// The hub's app key of this id, or 404 (another app's key too).
async fn find(ctx: &Ctx<'_>, hub: &Hub, key_id: &str) -> Result<SmoochKey, ApiError> {
    match ctx.state.store.find_smooch_key(key_id).await? {
        Some(key) if key.tenant_id == hub.tenant_id && key.hub_id == Some(hub.id) => Ok(key),
        _ => Err(ApiError::not_found("key")),
    }
}
