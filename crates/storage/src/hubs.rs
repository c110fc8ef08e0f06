//! Hubs (SPEC 3): create, read, update, list and delete a tenant's hubs. Names are unique per
//! tenant (a duplicate is `Conflict`); lists are oldest first.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use switchboard_domain::hub::{Hub, HubDraft, HubStatus};
use switchboard_domain::ids::{HubId, TenantId};
use switchboard_domain::paging::{Page, PageRequest};
use switchboard_domain::time::now_millis;

use crate::entities::{hub, integration, smooch_app, smooch_app_user, smooch_key};
use crate::once::SqlOnce;
use crate::{Error, Result, Store};

fn to_hub(row: hub::Model) -> Result<Hub> {
    let status = HubStatus::from_id(row.status_id.into()).ok_or_else(|| {
        Error::Db(format!(
            "hub {} has unknown status {}",
            row.id, row.status_id
        ))
    })?;
    Ok(Hub {
        id: HubId::from_uuid(row.id),
        tenant_id: TenantId::from_uuid(row.tenant_id),
        name: row.name,
        description: row.description,
        close_dormant_conversation: row.close_dormant_conversation,
        status,
        created: row.created,
        modified: row.modified,
    })
}

impl Store {
    /// Creates a hub of the tenant. A name the tenant already uses is `Conflict`.
    pub async fn create_hub(&self, tenant: TenantId, draft: &HubDraft) -> Result<Hub> {
        let now = now_millis();
        let id = HubId::new();
        let insert = hub::Entity::insert(hub::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            name: Set(draft.name.clone()),
            description: Set(draft.description.clone()),
            close_dormant_conversation: Set(draft.close_dormant_conversation),
            status_id: Set(draft.status.id()),
            created: Set(now),
            modified: Set(now),
        });
        // Every hub is a Smooch app (SPEC 8.4): its token is made with it.
        let app = smooch_app::Entity::insert(crate::smooch::new_app_row(tenant, id));
        self.write(move |_s, tx| {
            Box::pin(async move {
                tx.run(insert).await?;
                tx.run(app).await
            })
        })
        .await?;
        self.hubs_changed();
        Ok(Hub {
            id,
            tenant_id: tenant,
            name: draft.name.clone(),
            description: draft.description.clone(),
            close_dormant_conversation: draft.close_dormant_conversation,
            status: draft.status,
            created: now,
            modified: now,
        })
    }

    /// The tenant's hub, if it exists.
    pub async fn find_hub(&self, tenant: TenantId, hub: HubId) -> Result<Option<Hub>> {
        static SQL: SqlOnce = SqlOnce::new();
        let (id, tenant) = (hub.as_uuid(), tenant.as_uuid());
        self.read_one(
            &SQL,
            || hub::Entity::find_by_id(id).filter(hub::Column::TenantId.eq(tenant)),
            vec![id.into(), tenant.into()],
        )
        .await?
        .map(to_hub)
        .transpose()
    }

    /// The tenant's hub, or `NotFound`.
    pub async fn get_hub(&self, tenant: TenantId, hub: HubId) -> Result<Hub> {
        self.find_hub(tenant, hub).await?.ok_or(Error::NotFound)
    }

    /// Replaces the writable fields of the tenant's hub and sets `modified`. A name another of
    /// the tenant's hubs uses is `Conflict`.
    pub async fn update_hub(&self, tenant: TenantId, hub: HubId, draft: &HubDraft) -> Result<Hub> {
        let update = hub::Entity::update_many()
            .set(hub::ActiveModel {
                id: NotSet,
                tenant_id: NotSet,
                name: Set(draft.name.clone()),
                description: Set(draft.description.clone()),
                close_dormant_conversation: Set(draft.close_dormant_conversation),
                status_id: Set(draft.status.id()),
                created: NotSet,
                modified: Set(now_millis()),
            })
            .filter(hub::Column::Id.eq(hub.as_uuid()))
            .filter(hub::Column::TenantId.eq(tenant.as_uuid()));
        let row = self
            .write(move |_s, tx| {
                Box::pin(async move {
                    if tx.run(update).await? == 0 {
                        return Err(Error::NotFound);
                    }
                    tx.one(hub::Entity::find_by_id(hub.as_uuid()))
                        .await?
                        .ok_or(Error::NotFound)
                })
            })
            .await?;
        self.hubs_changed();
        to_hub(row)
    }

    /// One page of the tenant's hubs, oldest first.
    pub async fn list_hubs(&self, tenant: TenantId, page: PageRequest) -> Result<Page<Hub>> {
        let query = hub::Entity::find()
            .filter(hub::Column::TenantId.eq(tenant.as_uuid()))
            .order_by_asc(hub::Column::Created)
            .order_by_asc(hub::Column::Id);
        let page = self.read_page(query, page).await?;
        Ok(Page {
            number: page.number,
            size: page.size,
            total: page.total,
            results: page
                .results
                .into_iter()
                .map(to_hub)
                .collect::<Result<_>>()?,
        })
    }

    /// Deletes the tenant's hub and its integrations, in one transaction, with what it has as a
    /// Smooch app (SPEC 8.4: its app keys and app users).
    pub async fn delete_hub(&self, tenant: TenantId, hub: HubId) -> Result<()> {
        let integrations = integration::Entity::delete_many()
            .filter(integration::Column::HubId.eq(hub.as_uuid()))
            .filter(integration::Column::TenantId.eq(tenant.as_uuid()));
        let hubs = hub::Entity::delete_many()
            .filter(hub::Column::Id.eq(hub.as_uuid()))
            .filter(hub::Column::TenantId.eq(tenant.as_uuid()));
        let app = smooch_app::Entity::delete_many()
            .filter(smooch_app::Column::HubId.eq(hub.as_uuid()))
            .filter(smooch_app::Column::TenantId.eq(tenant.as_uuid()));
        let keys = smooch_key::Entity::delete_many()
            .filter(smooch_key::Column::HubId.eq(hub.as_uuid()))
            .filter(smooch_key::Column::TenantId.eq(tenant.as_uuid()));
        let users = smooch_app_user::Entity::delete_many()
            .filter(smooch_app_user::Column::HubId.eq(hub.as_uuid()))
            .filter(smooch_app_user::Column::TenantId.eq(tenant.as_uuid()));
        self.write(move |_s, tx| {
            Box::pin(async move {
                tx.run(integrations).await?;
                tx.run(app).await?;
                tx.run(keys).await?;
                tx.run(users).await?;
                if tx.run(hubs).await? == 0 {
                    return Err(Error::NotFound);
                }
                Ok(())
            })
        })
        .await?;
        self.hubs_changed();
        Ok(())
    }
}
