//! Hubs (SPEC 3), read and written through the store; pausing or deleting a hub asks the
//! engine to close its integrations' websockets (4403).

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use switchboard_domain::hub::{self, Hub};
use switchboard_domain::ids::{HubId, TenantId};
use switchboard_domain::time::rfc3339;
use uuid::Uuid;

use crate::auth::PortalAuth;
use crate::body::Body;
use crate::error::{ApiError, Resource};
use crate::paging::page;
use crate::state::AppState;
use crate::Tags;

/// A new hub.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct HubIn {
    /// 1 to 200 characters, unique within the tenant.
    #[oai(validator(max_length = 200))]
    pub name: String,
    /// What the hub is for: at most 4,096 characters.
    #[oai(validator(max_length = 4096))]
    pub description: String,
    /// Close conversations idle for this many days (0, the default, never closes them).
    pub close_dormant_conversation: Option<i64>,
    /// 2000 Active (default) or 2002 Paused. A paused hub's integrations neither send nor receive.
    pub status_id: Option<i32>,
}

/// A partial update: only the given properties change.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct HubPatch {
    #[oai(validator(max_length = 200))]
    pub name: Option<String>,
    #[oai(validator(max_length = 4096))]
    pub description: Option<String>,
    pub close_dormant_conversation: Option<i64>,
    pub status_id: Option<i32>,
}

/// A hub.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct HubOut {
    pub hub_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub description: String,
    /// Days of idleness after which a conversation is closed; 0 = never.
    pub close_dormant_conversation: i64,
    /// 2000 Active, 2002 Paused.
    pub status_id: i32,
    /// RFC 3339, UTC.
    pub created: String,
    /// RFC 3339, UTC.
    pub modified: String,
}

impl From<Hub> for HubOut {
    fn from(h: Hub) -> Self {
        Self {
            hub_id: h.id.as_uuid(),
            tenant_id: h.tenant_id.as_uuid(),
            name: h.name,
            description: h.description,
            close_dormant_conversation: h.close_dormant_conversation,
            status_id: h.status.id(),
            created: rfc3339(h.created),
            modified: rfc3339(h.modified),
        }
    }
}

/// A page of hubs.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct HubPage {
    pub page_number: u64,
    pub page_size: u64,
    /// How many hubs there are in all.
    pub total: u64,
    /// Oldest first.
    pub results: Vec<HubOut>,
}

pub struct HubsApi;

#[OpenApi(tag = "Tags::Hubs")]
impl HubsApi {
    /// Create a hub
    // SPEC 3
    #[oai(path = "/api/v1/hubs", method = "post", operation_id = "hubs.create")]
    async fn create_hub(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        body: Body<HubIn>,
    ) -> Result<Json<HubOut>, ApiError> {
        let draft = hub::validate_create(&body.value)?;
        Ok(Json(
            state
                .store
                .create_hub(auth.0.tid, &draft)
                .await
                .map_err(ApiError::storage(Resource::Hub))?
                .into(),
        ))
    }

    /// Update a hub
    ///
    /// A partial update: properties left out keep their values.
    // SPEC 3
    #[oai(
        path = "/api/v1/hubs/:hubId",
        method = "put",
        operation_id = "hubs.update"
    )]
    async fn update_hub(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "hubId")] hub_id: Path<Uuid>,
        body: Body<HubPatch>,
    ) -> Result<Json<HubOut>, ApiError> {
        let id = HubId::from_uuid(hub_id.0);
        let current = state
            .store
            .get_hub(auth.0.tid, id)
            .await
            .map_err(ApiError::storage(Resource::Hub))?;
        let draft = hub::validate_patch(&body.value, &current)?;
        let updated = state
            .store
            .update_hub(auth.0.tid, id, &draft)
            .await
            .map_err(ApiError::storage(Resource::Hub))?;
        if updated.status == hub::HubStatus::Paused {
            let members = state.engine.hub_integration_ids(auth.0.tid, id).await;
            state.engine.revoke(&members, "hub paused").await;
        }
        Ok(Json(updated.into()))
    }

    /// Get a hub
    // SPEC 3
    #[oai(
        path = "/api/v1/hubs/:hubId",
        method = "get",
        operation_id = "hubs.get"
    )]
    async fn get_hub(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "hubId")] hub_id: Path<Uuid>,
    ) -> Result<Json<HubOut>, ApiError> {
        Ok(Json(
            state
                .store
                .get_hub(auth.0.tid, HubId::from_uuid(hub_id.0))
                .await
                .map_err(ApiError::storage(Resource::Hub))?
                .into(),
        ))
    }

    /// List hubs
    ///
    /// The tenant's hubs, oldest first.
    // SPEC 3
    #[oai(path = "/api/v1/hubs", method = "get", operation_id = "hubs.list")]
    async fn list_hubs(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        /// Page to return, from 0.
        #[oai(name = "pageNumber")]
        page_number: Query<Option<i64>>,
        /// Hubs per page, 1 to 100 (default 50).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> Result<Json<HubPage>, ApiError> {
        let p = state
            .store
            .list_hubs(auth.0.tid, page(page_number.0, page_size.0)?)
            .await
            .map_err(ApiError::storage(Resource::Hub))?;
        Ok(Json(HubPage {
            page_number: p.number,
            page_size: p.size,
            total: p.total,
            results: p.results.into_iter().map(HubOut::from).collect(),
        }))
    }

    /// Delete a hub
    ///
    /// Deletes the hub with its integrations, their pending deliveries and live sessions.
    // SPEC 3
    #[oai(
        path = "/api/v1/hubs/:hubId",
        method = "delete",
        operation_id = "hubs.delete"
    )]
    async fn delete_hub(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "hubId")] hub_id: Path<Uuid>,
    ) -> Result<(), ApiError> {
        delete(&state, auth.0.tid, HubId::from_uuid(hub_id.0)).await
    }
}

/// Deletes a hub (portal, or a Smooch app): its integrations' sockets close, and the tokens of
/// its app keys (SPEC 8.5: they die with it) are refused at once on this node.
pub async fn delete(state: &AppState, tenant: TenantId, id: HubId) -> Result<(), ApiError> {
    let members = state.engine.hub_integration_ids(tenant, id).await;
    let keys = state.store.list_smooch_keys(tenant, Some(id)).await?;
    state
        .store
        .delete_hub(tenant, id)
        .await
        .map_err(ApiError::storage(Resource::Hub))?;
    for key in &keys {
        state.smooch_keys.forget(&key.key_id);
    }
    state.engine.revoke(&members, "hub deleted").await;
    Ok(())
}
