//! The Smooch-compatible API's rows (SPEC 8): keys (secrets sealed, bound to their key id),
//! apps (a hub's token, settings, metadata and compat integrations) and app users.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::{Map, Value};
use switchboard_domain::ids::{AppUserId, HubId, IntegrationId, TenantId};
use switchboard_domain::paging::{Page, PageRequest};
use switchboard_domain::smooch::appuser::{AppUser, AppUserFields};
use switchboard_domain::smooch::keys::{self, KeyKind, SmoochKey};
use switchboard_domain::smooch::App;
use switchboard_domain::time::now_millis;

use crate::entities::{smooch_app, smooch_app_user, smooch_key};
use crate::{Error, Result, Store};

fn key_aad(key_id: &str) -> Vec<u8> {
    format!("smooch_keys/{key_id}").into_bytes()
}

fn json_object(text: Option<&str>) -> Result<Option<Map<String, Value>>> {
    text.map(|t| {
        serde_json::from_str(t)
            .map_err(|e| Error::Db(format!("a stored app field is not JSON: {e}")))
    })
    .transpose()
}

fn to_app(row: smooch_app::Model) -> Result<App> {
    Ok(App {
        hub_id: HubId::from_uuid(row.hub_id),
        app_token: row.app_token,
        settings: json_object(row.settings.as_deref())?,
        metadata: json_object(row.metadata.as_deref())?,
        users_integration: row.users_integration_id.map(IntegrationId::from_uuid),
        business_integration: row.business_integration_id.map(IntegrationId::from_uuid),
    })
}

fn to_app_user(row: smooch_app_user::Model) -> Result<AppUser> {
    Ok(AppUser {
        id: AppUserId::from_uuid(row.id),
        tenant_id: TenantId::from_uuid(row.tenant_id),
        hub_id: HubId::from_uuid(row.hub_id),
        integration_id: IntegrationId::from_uuid(row.integration_id),
        binding: row.binding,
        user_id: row.user_id,
        given_name: row.given_name,
        surname: row.surname,
        email: row.email,
        signed_up_at: row.signed_up_at,
        properties: serde_json::from_str(&row.properties)
            .map_err(|e| Error::Db(format!("app user {} has bad properties: {e}", row.id)))?,
        created: row.created,
        modified: row.modified,
    })
}

/// The row of a new hub's app (written with the hub, see `hubs`).
pub(crate) fn new_app_row(tenant: TenantId, hub: HubId) -> smooch_app::ActiveModel {
    smooch_app::ActiveModel {
        hub_id: Set(hub.as_uuid()),
        tenant_id: Set(tenant.as_uuid()),
        app_token: Set(keys::new_app_token()),
        settings: Set(None),
        metadata: Set(None),
        users_integration_id: Set(None),
        business_integration_id: Set(None),
    }
}

impl Store {
    fn to_key(&self, row: smooch_key::Model) -> Result<SmoochKey> {
        let secret = self.cipher.open(&row.secret_enc, &key_aad(&row.key_id))?;
        Ok(SmoochKey {
            secret: String::from_utf8(secret)
                .map_err(|_| Error::Db(format!("key {} has a bad secret", row.key_id)))?,
            key_id: row.key_id,
            tenant_id: TenantId::from_uuid(row.tenant_id),
            hub_id: row.hub_id.map(HubId::from_uuid),
            name: row.name,
            created: row.created,
        })
    }

    /// Creates an account key (`hub` `None`) or an app key of the tenant's hub (`NotFound`
    /// when the hub is not the tenant's), with a fresh id and secret.
    pub async fn create_smooch_key(
        &self,
        tenant: TenantId,
        hub: Option<HubId>,
        name: &str,
    ) -> Result<SmoochKey> {
        if let Some(hub) = hub {
            self.get_hub(tenant, hub).await?;
        }
        let kind = if hub.is_some() {
            KeyKind::App
        } else {
            KeyKind::Account
        };
        let key = SmoochKey {
            key_id: keys::new_key_id(kind),
            tenant_id: tenant,
            hub_id: hub,
            name: name.to_owned(),
            secret: keys::new_secret(),
            created: now_millis(),
        };
        let insert = smooch_key::Entity::insert(smooch_key::ActiveModel {
            key_id: Set(key.key_id.clone()),
            tenant_id: Set(tenant.as_uuid()),
            hub_id: Set(hub.map(|h| h.as_uuid())),
            name: Set(key.name.clone()),
            secret_enc: Set(self
                .cipher
                .seal(key.secret.as_bytes(), &key_aad(&key.key_id))?),
            created: Set(key.created),
        });
        self.write(move |_s, tx| Box::pin(async move { tx.run(insert).await }))
            .await?;
        Ok(key)
    }

    /// The key of this id, of any tenant (a token names its key before anything else is
    /// known), if it exists.
    pub async fn find_smooch_key(&self, key_id: &str) -> Result<Option<SmoochKey>> {
        let rows = self
            .read_all(smooch_key::Entity::find_by_id(key_id.to_owned()))
            .await?;
        rows.into_iter().next().map(|r| self.to_key(r)).transpose()
    }

    /// The tenant's account keys (`hub` `None`) or the app keys of its hub, oldest first.
    pub async fn list_smooch_keys(
        &self,
        tenant: TenantId,
        hub: Option<HubId>,
    ) -> Result<Vec<SmoochKey>> {
        let query =
            smooch_key::Entity::find().filter(smooch_key::Column::TenantId.eq(tenant.as_uuid()));
        let query = match hub {
            Some(h) => query.filter(smooch_key::Column::HubId.eq(h.as_uuid())),
            None => query.filter(smooch_key::Column::HubId.is_null()),
        }
        .order_by_asc(smooch_key::Column::Created)
        .order_by_asc(smooch_key::Column::KeyId);
        self.read_all(query)
            .await?
            .into_iter()
            .map(|r| self.to_key(r))
            .collect()
    }

    /// One page (SPEC 1) of the tenant's account keys, oldest first.
    pub async fn page_account_keys(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<SmoochKey>> {
        let query = smooch_key::Entity::find()
            .filter(smooch_key::Column::TenantId.eq(tenant.as_uuid()))
            .filter(smooch_key::Column::HubId.is_null())
            .order_by_asc(smooch_key::Column::Created)
            .order_by_asc(smooch_key::Column::KeyId);
        let page = self.read_page(query, page).await?;
        Ok(Page {
            number: page.number,
            size: page.size,
            total: page.total,
            results: page
                .results
                .into_iter()
                .map(|r| self.to_key(r))
                .collect::<Result<_>>()?,
        })
    }

    /// Deletes the tenant's account key (`hub` `None`) or its hub's app key; `NotFound` when
    /// there is no such key there.
    pub async fn delete_smooch_key(
        &self,
        tenant: TenantId,
        hub: Option<HubId>,
        key_id: &str,
    ) -> Result<()> {
        let delete = smooch_key::Entity::delete_many()
            .filter(smooch_key::Column::KeyId.eq(key_id.to_owned()))
            .filter(smooch_key::Column::TenantId.eq(tenant.as_uuid()));
        let delete = match hub {
            Some(h) => delete.filter(smooch_key::Column::HubId.eq(h.as_uuid())),
            None => delete.filter(smooch_key::Column::HubId.is_null()),
        };
        let gone = self
            .write(move |_s, tx| Box::pin(async move { tx.run(delete).await }))
            .await?;
        if gone == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// The app of the tenant's hub (`NotFound` unless the hub is the tenant's). A hub without
    /// its row (made between a migration and this code) gets one.
    pub async fn smooch_app(&self, tenant: TenantId, hub: HubId) -> Result<App> {
        self.get_hub(tenant, hub).await?;
        let find = || smooch_app::Entity::find_by_id(hub.as_uuid());
        if let Some(row) = self.read_all(find()).await?.into_iter().next() {
            return to_app(row);
        }
        let insert = smooch_app::Entity::insert(new_app_row(tenant, hub));
        match self
            .write(move |_s, tx| Box::pin(async move { tx.run(insert).await }))
            .await
        {
            Ok(_) | Err(Error::Conflict) => {}
            Err(e) => return Err(e),
        }
        let row = self.read_all(find()).await?.into_iter().next();
        to_app(row.ok_or(Error::NotFound)?)
    }

    /// The apps of these hubs that have a row (a list of apps reads them at once).
    pub async fn smooch_apps(&self, hubs: &[HubId]) -> Result<Vec<App>> {
        let ids: Vec<_> = hubs.iter().map(|h| h.as_uuid()).collect();
        self.read_all(smooch_app::Entity::find().filter(smooch_app::Column::HubId.is_in(ids)))
            .await?
            .into_iter()
            .map(to_app)
            .collect()
    }

    /// Sets the app's `settings` and `metadata` (each when `Some`).
    pub async fn set_smooch_app_fields(
        &self,
        tenant: TenantId,
        hub: HubId,
        settings: Option<&Map<String, Value>>,
        metadata: Option<&Map<String, Value>>,
    ) -> Result<App> {
        self.smooch_app(tenant, hub).await?;
        let text = |m: Option<&Map<String, Value>>| match m {
            Some(m) => Set(Some(Value::Object(m.clone()).to_string())),
            None => NotSet,
        };
        let update = smooch_app::Entity::update_many()
            .set(smooch_app::ActiveModel {
                hub_id: NotSet,
                tenant_id: NotSet,
                app_token: NotSet,
                settings: text(settings),
                metadata: text(metadata),
                users_integration_id: NotSet,
                business_integration_id: NotSet,
            })
            .filter(smooch_app::Column::HubId.eq(hub.as_uuid()));
        if settings.is_some() || metadata.is_some() {
            self.write(move |_s, tx| Box::pin(async move { tx.run(update).await }))
                .await?;
        }
        self.smooch_app(tenant, hub).await
    }

    /// Records the app's compat integrations (SPEC 8.8), each when `Some`.
    pub async fn set_smooch_compat_integrations(
        &self,
        hub: HubId,
        users: Option<IntegrationId>,
        business: Option<IntegrationId>,
    ) -> Result<()> {
        let id = |i: Option<IntegrationId>| match i {
            Some(i) => Set(Some(i.as_uuid())),
            None => NotSet,
        };
        let update = smooch_app::Entity::update_many()
            .set(smooch_app::ActiveModel {
                hub_id: NotSet,
                tenant_id: NotSet,
                app_token: NotSet,
                settings: NotSet,
                metadata: NotSet,
                users_integration_id: id(users),
                business_integration_id: id(business),
            })
            .filter(smooch_app::Column::HubId.eq(hub.as_uuid()));
        self.write(move |_s, tx| Box::pin(async move { tx.run(update).await }))
            .await?;
        Ok(())
    }

    /// Creates an app user of the tenant's hub for a customer (`integration`, `binding`). A
    /// `userId` the hub already has, or a customer that already is an app user, is `Conflict`.
    pub async fn create_app_user(
        &self,
        tenant: TenantId,
        hub: HubId,
        integration: IntegrationId,
        binding: &str,
        user_id: Option<&str>,
        fields: &AppUserFields,
    ) -> Result<AppUser> {
        let now = now_millis();
        let user = AppUser {
            id: AppUserId::new(),
            tenant_id: tenant,
            hub_id: hub,
            integration_id: integration,
            binding: binding.to_owned(),
            user_id: user_id.map(str::to_owned),
            given_name: fields.given_name.clone(),
            surname: fields.surname.clone(),
            email: fields.email.clone(),
            signed_up_at: fields.signed_up_at.unwrap_or(now),
            properties: fields.properties.clone(),
            created: now,
            modified: now,
        };
        let insert = smooch_app_user::Entity::insert(smooch_app_user::ActiveModel {
            id: Set(user.id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            hub_id: Set(hub.as_uuid()),
            integration_id: Set(integration.as_uuid()),
            binding: Set(user.binding.clone()),
            user_id: Set(user.user_id.clone()),
            given_name: Set(user.given_name.clone()),
            surname: Set(user.surname.clone()),
            email: Set(user.email.clone()),
            signed_up_at: Set(user.signed_up_at),
            properties: Set(Value::Object(user.properties.clone()).to_string()),
            created: Set(now),
            modified: Set(now),
        });
        self.write(move |_s, tx| Box::pin(async move { tx.run(insert).await }))
            .await?;
        Ok(user)
    }

    /// The app user of the tenant's hub whose `_id` is `id`, else whose `userId` is `id`.
    pub async fn find_app_user(
        &self,
        tenant: TenantId,
        hub: HubId,
        id: &str,
    ) -> Result<Option<AppUser>> {
        let scoped = || {
            smooch_app_user::Entity::find()
                .filter(smooch_app_user::Column::TenantId.eq(tenant.as_uuid()))
                .filter(smooch_app_user::Column::HubId.eq(hub.as_uuid()))
        };
        if let Ok(uuid) = uuid::Uuid::parse_str(id) {
            let rows = self
                .read_all(scoped().filter(smooch_app_user::Column::Id.eq(uuid)))
                .await?;
            if let Some(row) = rows.into_iter().next() {
                return to_app_user(row).map(Some);
            }
        }
        let rows = self
            .read_all(scoped().filter(smooch_app_user::Column::UserId.eq(id.to_owned())))
            .await?;
        rows.into_iter().next().map(to_app_user).transpose()
    }

    /// The app user of a customer, if it has one.
    pub async fn find_app_user_by_binding(
        &self,
        integration: IntegrationId,
        binding: &str,
    ) -> Result<Option<AppUser>> {
        let rows = self
            .read_all(
                smooch_app_user::Entity::find()
                    .filter(smooch_app_user::Column::IntegrationId.eq(integration.as_uuid()))
                    .filter(smooch_app_user::Column::Binding.eq(binding.to_owned())),
            )
            .await?;
        rows.into_iter().next().map(to_app_user).transpose()
    }

    /// The app user of a customer, made when SPEC 8 first needs it (`userId` null, signed up
    /// at `signed_up_at`, the customer's first conversation's opening).
    pub async fn ensure_app_user(
        &self,
        tenant: TenantId,
        hub: HubId,
        integration: IntegrationId,
        binding: &str,
        signed_up_at: i64,
    ) -> Result<AppUser> {
        if let Some(user) = self.find_app_user_by_binding(integration, binding).await? {
            return Ok(user);
        }
        let fields = AppUserFields {
            signed_up_at: Some(signed_up_at),
            ..AppUserFields::default()
        };
        match self
            .create_app_user(tenant, hub, integration, binding, None, &fields)
            .await
        {
            Ok(user) => Ok(user),
            // Made by another request meanwhile.
            Err(Error::Conflict) => self
                .find_app_user_by_binding(integration, binding)
                .await?
                .ok_or(Error::NotFound),
            Err(e) => Err(e),
        }
    }

    /// Writes an app user's Smooch fields whole (`signed_up_at` `None` keeps it).
    pub async fn update_app_user(&self, user: &AppUser, fields: &AppUserFields) -> Result<AppUser> {
        let now = now_millis();
        let update = smooch_app_user::Entity::update_many()
            .set(smooch_app_user::ActiveModel {
                id: NotSet,
                tenant_id: NotSet,
                hub_id: NotSet,
                integration_id: NotSet,
                binding: NotSet,
                user_id: NotSet,
                given_name: Set(fields.given_name.clone()),
                surname: Set(fields.surname.clone()),
                email: Set(fields.email.clone()),
                signed_up_at: match fields.signed_up_at {
                    Some(t) => Set(t),
                    None => NotSet,
                },
                properties: Set(Value::Object(fields.properties.clone()).to_string()),
                created: NotSet,
                modified: Set(now),
            })
            .filter(smooch_app_user::Column::Id.eq(user.id.as_uuid()));
        let changed = self
            .write(move |_s, tx| Box::pin(async move { tx.run(update).await }))
            .await?;
        if changed == 0 {
            return Err(Error::NotFound);
        }
        Ok(AppUser {
            given_name: fields.given_name.clone(),
            surname: fields.surname.clone(),
            email: fields.email.clone(),
            signed_up_at: fields.signed_up_at.unwrap_or(user.signed_up_at),
            properties: fields.properties.clone(),
            modified: now,
            ..user.clone()
        })
    }
}
