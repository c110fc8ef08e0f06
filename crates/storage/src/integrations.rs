//! Integrations (SPEC 3): a hub's integrations. Names are unique per hub (a duplicate is
//! `Conflict`); the channel is fixed at creation. The configuration holds channel secrets, so it
//! is sealed whole (AES-256-GCM, bound to the integration's id) on write and opened on read.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::{Map, Value};
use switchboard_domain::channel::{Channel, IntegrationType};
use switchboard_domain::ids::{HubId, IntegrationId, TenantId};
use switchboard_domain::integration::{Integration, IntegrationDraft, IntegrationStatus};
use switchboard_domain::paging::{Page, PageRequest};
use switchboard_domain::time::now_millis;

use crate::entities::{integration, pending_integration};
use crate::once::SqlOnce;
use crate::{Error, Result, Store};

/// Associated data binding a sealed configuration to its integration.
fn configuration_aad(id: IntegrationId) -> Vec<u8> {
    format!("integrations/{id}").into_bytes()
}

impl Store {
    fn seal_configuration(
        &self,
        id: IntegrationId,
        config: &Map<String, Value>,
    ) -> Result<Vec<u8>> {
        let plain = serde_json::to_vec(config)
            .map_err(|e| Error::Db(format!("cannot serialize a configuration: {e}")))?;
        self.cipher.seal(&plain, &configuration_aad(id))
    }

    pub(crate) fn to_integration(&self, row: integration::Model) -> Result<Integration> {
        let id = IntegrationId::from_uuid(row.id);
        let corrupt = |what: &str| Error::Db(format!("integration {id} has an unknown {what}"));
        let channel =
            Channel::from_number(row.channel_id.into()).ok_or_else(|| corrupt("channel"))?;
        let integration_type =
            IntegrationType::parse(&row.integration_type).ok_or_else(|| corrupt("type"))?;
        let status =
            IntegrationStatus::from_id(row.status_id.into()).ok_or_else(|| corrupt("status"))?;
        let plain = self
            .cipher
            .open(&row.configuration_enc, &configuration_aad(id))?;
        let configuration = serde_json::from_slice(&plain)
            .map_err(|e| Error::Db(format!("integration {id} has a bad configuration: {e}")))?;
        Ok(Integration {
            id,
            tenant_id: TenantId::from_uuid(row.tenant_id),
            hub_id: HubId::from_uuid(row.hub_id),
            name: row.name,
            channel,
            integration_type,
            inbound_id: row.inbound_id,
            status,
            configuration,
            created: row.created,
            modified: row.modified,
        })
    }

    /// Creates an integration in the tenant's hub. `NotFound` when the hub is not the tenant's;
    /// `Conflict` when the hub already has an integration of that name.
    pub async fn create_integration(
        &self,
        tenant: TenantId,
        hub: HubId,
        draft: &IntegrationDraft,
    ) -> Result<Integration> {
        self.create_integration_as(tenant, hub, IntegrationId::new(), draft)
            .await
    }

    /// [`Store::create_integration`] with the id chosen by the caller (a provisioned
    /// integration's id is in the URL registered with its provider before it is stored). Its
    /// pending row, if any, goes in the same transaction.
    pub async fn create_integration_as(
        &self,
        tenant: TenantId,
        hub: HubId,
        id: IntegrationId,
        draft: &IntegrationDraft,
    ) -> Result<Integration> {
        if self.find_hub(tenant, hub).await?.is_none() {
            return Err(Error::NotFound);
        }
        let now = now_millis();
        let sealed = self.seal_configuration(id, &draft.configuration)?;
        let insert = integration::Entity::insert(integration::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            hub_id: Set(hub.as_uuid()),
            name: Set(draft.name.clone()),
            channel_id: Set(draft.channel.number()),
            integration_type: Set(draft.integration_type.as_str().to_owned()),
            inbound_id: Set(draft.inbound_id.clone()),
            status_id: Set(draft.status.id()),
            configuration_enc: Set(sealed),
            created: Set(now),
            modified: Set(now),
        });
        let unpend = pending_integration::Entity::delete_many()
            .filter(pending_integration::Column::Id.eq(id.as_uuid()));
        // `NotFound` when the hub was deleted since we looked.
        self.write(move |_s, tx| {
            Box::pin(async move {
                tx.insert_child(insert).await?;
                tx.run(unpend).await?;
                Ok(())
            })
        })
        .await?;
        self.hubs_changed();
        Ok(Integration {
            id,
            tenant_id: tenant,
            hub_id: hub,
            name: draft.name.clone(),
            channel: draft.channel,
            integration_type: draft.integration_type,
            inbound_id: draft.inbound_id.clone(),
            status: draft.status,
            configuration: draft.configuration.clone(),
            created: now,
            modified: now,
        })
    }

    /// The tenant's integration, if it exists.
    pub async fn find_integration(
        &self,
        tenant: TenantId,
        id: IntegrationId,
    ) -> Result<Option<Integration>> {
        static SQL: SqlOnce = SqlOnce::new();
        let (id, tenant) = (id.as_uuid(), tenant.as_uuid());
        self.read_one(
            &SQL,
            || integration::Entity::find_by_id(id).filter(integration::Column::TenantId.eq(tenant)),
            vec![id.into(), tenant.into()],
        )
        .await?
        .map(|row| self.to_integration(row))
        .transpose()
    }

    /// The tenant's integration, or `NotFound`.
    pub async fn get_integration(
        &self,
        tenant: TenantId,
        id: IntegrationId,
    ) -> Result<Integration> {
        self.find_integration(tenant, id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Replaces the writable state of the tenant's integration (name, type, inbound id, status,
    /// configuration) and sets `modified`. The channel never changes: `draft.channel` is not
    /// written (the domain refuses a different one). A name another integration of the hub uses
    /// is `Conflict`.
    pub async fn update_integration(
        &self,
        tenant: TenantId,
        id: IntegrationId,
        draft: &IntegrationDraft,
    ) -> Result<Integration> {
        let sealed = self.seal_configuration(id, &draft.configuration)?;
        let update = integration::Entity::update_many()
            .set(integration::ActiveModel {
                id: NotSet,
                tenant_id: NotSet,
                hub_id: NotSet,
                name: Set(draft.name.clone()),
                channel_id: NotSet,
                integration_type: Set(draft.integration_type.as_str().to_owned()),
                inbound_id: Set(draft.inbound_id.clone()),
                status_id: Set(draft.status.id()),
                configuration_enc: Set(sealed),
                created: NotSet,
                modified: Set(now_millis()),
            })
            .filter(integration::Column::Id.eq(id.as_uuid()))
            .filter(integration::Column::TenantId.eq(tenant.as_uuid()));
        let row = self
            .write(move |_s, tx| {
                Box::pin(async move {
                    if tx.run(update).await? == 0 {
                        return Err(Error::NotFound);
                    }
                    tx.one(integration::Entity::find_by_id(id.as_uuid()))
                        .await?
                        .ok_or(Error::NotFound)
                })
            })
            .await?;
        self.hubs_changed();
        self.to_integration(row)
    }

    /// One page of the tenant's integrations, of one hub when `hub` is given, oldest first.
    pub async fn list_integrations(
        &self,
        tenant: TenantId,
        hub: Option<HubId>,
        page: PageRequest,
    ) -> Result<Page<Integration>> {
        let mut query =
            integration::Entity::find().filter(integration::Column::TenantId.eq(tenant.as_uuid()));
        if let Some(hub) = hub {
            query = query.filter(integration::Column::HubId.eq(hub.as_uuid()));
        }
        let query = query
            .order_by_asc(integration::Column::Created)
            .order_by_asc(integration::Column::Id);
        let page = self.read_page(query, page).await?;
        Ok(Page {
            number: page.number,
            size: page.size,
            total: page.total,
            results: page
                .results
                .into_iter()
                .map(|row| self.to_integration(row))
                .collect::<Result<_>>()?,
        })
    }

    /// The integration of that id, whatever its tenant: only for a caller that proves it acts
    /// for that integration (an integration-signed request).
    pub async fn find_integration_by_id(&self, id: IntegrationId) -> Result<Option<Integration>> {
        static SQL: SqlOnce = SqlOnce::new();
        let id = id.as_uuid();
        self.read_one(
            &SQL,
            || integration::Entity::find_by_id(id),
            vec![id.into()],
        )
        .await?
        .map(|row| self.to_integration(row))
        .transpose()
    }

    /// Those of `ids` that exist, of any tenant, in one query: the periodic check of the keys
    /// behind a node's signature-opened websockets.
    pub async fn integrations_by_ids(&self, ids: &[IntegrationId]) -> Result<Vec<Integration>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read_all(
            integration::Entity::find()
                .filter(integration::Column::Id.is_in(ids.iter().map(|i| i.as_uuid()))),
        )
        .await?
        .into_iter()
        .map(|row| self.to_integration(row))
        .collect()
    }

    /// All integrations of the tenant's hub, of one channel when `channel` is given, oldest
    /// first. Empty when the hub is not the tenant's.
    pub async fn list_hub_integrations(
        &self,
        tenant: TenantId,
        hub: HubId,
        channel: Option<Channel>,
    ) -> Result<Vec<Integration>> {
        let mut query = integration::Entity::find()
            .filter(integration::Column::TenantId.eq(tenant.as_uuid()))
            .filter(integration::Column::HubId.eq(hub.as_uuid()));
        if let Some(channel) = channel {
            query = query.filter(integration::Column::ChannelId.eq(channel.number()));
        }
        self.read_all(
            query
                .order_by_asc(integration::Column::Created)
                .order_by_asc(integration::Column::Id),
        )
        .await?
        .into_iter()
        .map(|row| self.to_integration(row))
        .collect()
    }

    /// Deletes the tenant's integration; `NotFound` if it is not theirs.
    pub async fn delete_integration(&self, tenant: TenantId, id: IntegrationId) -> Result<()> {
        let delete = integration::Entity::delete_many()
            .filter(integration::Column::Id.eq(id.as_uuid()))
            .filter(integration::Column::TenantId.eq(tenant.as_uuid()));
        let done = self
            .write(move |_s, tx| Box::pin(async move { tx.run(delete).await }))
            .await?;
        self.hubs_changed();
        if done == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// Keeps a configuration being provisioned under `id` (SPEC 7.5.1 step 3): invisible to
    /// everything but [`Store::find_pending_integration`].
    pub async fn add_pending_integration(
        &self,
        tenant: TenantId,
        id: IntegrationId,
        channel: Channel,
        configuration: &Map<String, Value>,
    ) -> Result<()> {
        let sealed = self.seal_configuration(id, configuration)?;
        let insert = pending_integration::Entity::insert(pending_integration::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            channel_id: Set(channel.number()),
            configuration_enc: Set(sealed),
            created: Set(now_millis()),
        });
        self.write(move |_s, tx| Box::pin(async move { tx.run(insert).await }))
            .await?;
        Ok(())
    }

    /// A configuration being provisioned: its tenant, channel and configuration.
    pub async fn find_pending_integration(
        &self,
        id: IntegrationId,
    ) -> Result<Option<(TenantId, Channel, Map<String, Value>)>> {
        let Some(row) = self
            .read_all(pending_integration::Entity::find_by_id(id.as_uuid()))
            .await?
            .pop()
        else {
            return Ok(None);
        };
        let channel = Channel::from_number(row.channel_id.into())
            .ok_or_else(|| Error::Db(format!("pending integration {id} has an unknown channel")))?;
        let plain = self
            .cipher
            .open(&row.configuration_enc, &configuration_aad(id))?;
        let configuration = serde_json::from_slice(&plain).map_err(|e| {
            Error::Db(format!(
                "pending integration {id} has a bad configuration: {e}"
            ))
        })?;
        Ok(Some((
            TenantId::from_uuid(row.tenant_id),
            channel,
            configuration,
        )))
    }

    /// Forgets a configuration being provisioned (its provisioning failed).
    pub async fn remove_pending_integration(&self, id: IntegrationId) -> Result<()> {
        let delete = pending_integration::Entity::delete_many()
            .filter(pending_integration::Column::Id.eq(id.as_uuid()));
        self.write(move |_s, tx| Box::pin(async move { tx.run(delete).await }))
            .await?;
        Ok(())
    }

    /// Deletes the pending rows created before `before` (a process died while provisioning).
    pub async fn sweep_pending_integrations(&self, before: i64) -> Result<u64> {
        let delete = pending_integration::Entity::delete_many()
            .filter(pending_integration::Column::Created.lt(before));
        self.write(move |_s, tx| Box::pin(async move { tx.run(delete).await }))
            .await
    }
}
