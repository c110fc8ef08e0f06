//! Identity (SPEC 2): tenants, their API clients and client secrets, and the server's
//! token-signing seed.
//!
//! A secret is stored only as `hash_secret` and a six-character preview; the whole value is
//! answered once, when it is made. Revoking a secret deletes it, so "is this token's secret
//! still active" is a primary-key lookup.

use sea_orm::sea_query::{ColumnType, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use switchboard_domain::identity::{generate_secret, hash_secret, secret_preview, Scope};
use switchboard_domain::ids::{ClientId, SecretId, TenantId};
use switchboard_domain::time::{now_millis, Millis};

use crate::doors::Tx;
use crate::entities::{client, client_secret, server_key, tenant};
use crate::once::SqlOnce;
use crate::{Error, Result, Store};

/// Row id of the token-signing seed in `server_keys`.
const TOKEN_SIGNING: &str = "token-signing";

/// What `create_tenant` answers: the new tenant and the one-time secrets of its two clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTenant {
    pub tenant_id: TenantId,
    /// The `portal-api` client.
    pub portal: NewClient,
    /// The `engine-api` client.
    pub engine: NewClient,
}

/// A new client and its first secret, shown this once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewClient {
    pub client_id: ClientId,
    pub client_secret: String,
}

/// A successful client-credentials login: what an access token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub tenant_id: TenantId,
    pub client_id: ClientId,
    pub scope: Scope,
    /// The secret used, so that revoking it revokes the tokens issued from it.
    pub secret_id: SecretId,
}

/// A client as `GET /api/v1/tenants/clients/{clientId}` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOut {
    pub tenant_id: TenantId,
    pub client_id: ClientId,
    pub name: String,
    pub enabled: bool,
    pub allowed_scopes: Vec<Scope>,
    /// Oldest first.
    pub secrets: Vec<SecretInfo>,
}

/// A stored secret, without its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretInfo {
    pub id: SecretId,
    pub name: String,
    /// The first six characters and `...`.
    pub preview: String,
    pub expiration: Option<Millis>,
}

/// Whether a secret with this expiration may still be used at `now`.
fn unexpired(expiration: Option<Millis>, now: Millis) -> bool {
    expiration.is_none_or(|at| at > now)
}

fn parse_scope(text: &str) -> Result<Scope> {
    Scope::parse(text).ok_or_else(|| Error::Db(format!("unknown client scope {text:?} in a row")))
}

fn secret_info(row: client_secret::Model) -> SecretInfo {
    SecretInfo {
        id: SecretId::from_uuid(row.id),
        name: row.name,
        preview: row.preview,
        expiration: row.expiration,
    }
}

/// Makes a secret for a client: stores its hash and preview, answers the whole value.
async fn insert_secret(
    tx: &Tx<'_>,
    tenant: TenantId,
    client_id: ClientId,
    name: &str,
    expiration: Option<Millis>,
    now: Millis,
) -> Result<(SecretInfo, String)> {
    let secret = generate_secret();
    let id = SecretId::new();
    let preview = secret_preview(&secret);
    tx.run(client_secret::Entity::insert(client_secret::ActiveModel {
        id: Set(id.as_uuid()),
        client_id: Set(client_id.as_uuid()),
        tenant_id: Set(tenant.as_uuid()),
        name: Set(name.to_owned()),
        hash: Set(hash_secret(&secret)),
        preview: Set(preview.clone()),
        expiration: Set(expiration),
        created: Set(now),
    }))
    .await?;
    let info = SecretInfo {
        id,
        name: name.to_owned(),
        preview,
        expiration,
    };
    Ok((info, secret))
}

/// Makes a client of a tenant with one secret named `default`.
async fn insert_client(
    tx: &Tx<'_>,
    tenant: TenantId,
    name: &str,
    scope: Scope,
    now: Millis,
) -> Result<NewClient> {
    let client_id = ClientId::new();
    tx.run(client::Entity::insert(client::ActiveModel {
        id: Set(client_id.as_uuid()),
        tenant_id: Set(tenant.as_uuid()),
        name: Set(name.to_owned()),
        scope: Set(scope.as_str().to_owned()),
        enabled: Set(true),
        created: Set(now),
    }))
    .await?;
    let (_, client_secret) = insert_secret(tx, tenant, client_id, "default", None, now).await?;
    Ok(NewClient {
        client_id,
        client_secret,
    })
}

impl Store {
    /// Creates a tenant with a `portal` client (scope `portal-api`) and an `engine` client
    /// (`engine-api`), each with one secret named `default`, in one transaction. A taken name
    /// is `Conflict`.
    pub async fn create_tenant(&self, name: &str) -> Result<NewTenant> {
        let now = now_millis();
        let tenant_id = TenantId::new();
        let name = name.to_owned();
        self.write(move |_s, tx| {
            Box::pin(async move {
                tx.run(tenant::Entity::insert(tenant::ActiveModel {
                    id: Set(tenant_id.as_uuid()),
                    name: Set(name),
                    created: Set(now),
                }))
                .await?;
                let portal = insert_client(tx, tenant_id, "portal", Scope::Portal, now).await?;
                let engine = insert_client(tx, tenant_id, "engine", Scope::Engine, now).await?;
                Ok(NewTenant {
                    tenant_id,
                    portal,
                    engine,
                })
            })
        })
        .await
    }

    /// Whether a tenant of this id exists.
    pub async fn tenant_exists(&self, id: TenantId) -> Result<bool> {
        let rows = self
            .read_all(tenant::Entity::find_by_id(id.as_uuid()))
            .await?;
        Ok(!rows.is_empty())
    }

    /// How many tenants exist (0 on a fresh install, which then creates `default`).
    pub async fn count_tenants(&self) -> Result<u64> {
        let rows = self
            .read_rows(
                Statement::from_string(self.backend(), "SELECT COUNT(*) AS n FROM tenants"),
                &[("n", ColumnType::BigInteger)],
            )
            .await?;
        let n: i64 = match rows.first() {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// The login of `client_id` with the secret whose hash is `secret_hash`, if the client is
    /// enabled and the secret belongs to it and has not expired at `now`.
    pub async fn find_login(
        &self,
        client_id: ClientId,
        secret_hash: &str,
        now: Millis,
    ) -> Result<Option<Login>> {
        let secret = self
            .read_all(
                client_secret::Entity::find()
                    .filter(client_secret::Column::Hash.eq(secret_hash))
                    .filter(client_secret::Column::ClientId.eq(client_id.as_uuid()))
                    .limit(1),
            )
            .await?
            .pop();
        let Some(secret) = secret.filter(|s| unexpired(s.expiration, now)) else {
            return Ok(None);
        };
        let client = self
            .read_all(client::Entity::find_by_id(secret.client_id).limit(1))
            .await?
            .pop();
        let Some(client) = client.filter(|c| c.enabled) else {
            return Ok(None);
        };
        Ok(Some(Login {
            tenant_id: TenantId::from_uuid(client.tenant_id),
            client_id,
            scope: parse_scope(&client.scope)?,
            secret_id: SecretId::from_uuid(secret.id),
        }))
    }

    /// Whether a secret still exists (revoking deletes it) and has not expired at `now`.
    pub async fn secret_is_active(&self, secret_id: SecretId, now: Millis) -> Result<bool> {
        static SQL: SqlOnce = SqlOnce::new();
        let id = secret_id.as_uuid();
        let secret = self
            .read_one(
                &SQL,
                || client_secret::Entity::find_by_id(id),
                vec![id.into()],
            )
            .await?;
        Ok(secret.is_some_and(|s| unexpired(s.expiration, now)))
    }

    /// Which of `ids` still exist and have not expired at `now`, in one query: the periodic
    /// check of the secrets behind a node's open websockets.
    pub async fn active_secrets(
        &self,
        ids: &[SecretId],
        now: Millis,
    ) -> Result<std::collections::HashSet<SecretId>> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let rows = self
            .read_all(
                client_secret::Entity::find()
                    .filter(client_secret::Column::Id.is_in(ids.iter().map(|i| i.as_uuid()))),
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter(|s| unexpired(s.expiration, now))
            .map(|s| SecretId::from_uuid(s.id))
            .collect())
    }

    /// One client of the tenant, with its secrets (oldest first).
    pub async fn get_client(&self, tenant: TenantId, client_id: ClientId) -> Result<ClientOut> {
        let client = self
            .read_all(
                client::Entity::find_by_id(client_id.as_uuid())
                    .filter(client::Column::TenantId.eq(tenant.as_uuid()))
                    .limit(1),
            )
            .await?
            .pop()
            .ok_or(Error::NotFound)?;
        let secrets = self
            .read_all(
                client_secret::Entity::find()
                    .filter(client_secret::Column::ClientId.eq(client.id))
                    .filter(client_secret::Column::TenantId.eq(tenant.as_uuid()))
                    .order_by_asc(client_secret::Column::Created)
                    .order_by_asc(client_secret::Column::Id),
            )
            .await?;
        Ok(ClientOut {
            tenant_id: tenant,
            client_id,
            name: client.name,
            enabled: client.enabled,
            allowed_scopes: vec![parse_scope(&client.scope)?],
            secrets: secrets.into_iter().map(secret_info).collect(),
        })
    }

    /// Adds a secret to a client of the tenant; answers it with its whole value, this once.
    pub async fn add_secret(
        &self,
        tenant: TenantId,
        client_id: ClientId,
        name: &str,
        expiration: Option<Millis>,
    ) -> Result<(SecretInfo, String)> {
        let client = self
            .read_all(
                client::Entity::find_by_id(client_id.as_uuid())
                    .filter(client::Column::TenantId.eq(tenant.as_uuid()))
                    .limit(1),
            )
            .await?;
        if client.is_empty() {
            return Err(Error::NotFound);
        }
        let name = name.to_owned();
        self.write(move |_s, tx| {
            Box::pin(async move {
                insert_secret(tx, tenant, client_id, &name, expiration, now_millis()).await
            })
        })
        .await
    }

    /// Revokes (deletes) a secret of a client of the tenant; `NotFound` if it is not theirs.
    pub async fn revoke_secret(
        &self,
        tenant: TenantId,
        client_id: ClientId,
        secret_id: SecretId,
    ) -> Result<()> {
        let delete = client_secret::Entity::delete_many()
            .filter(client_secret::Column::Id.eq(secret_id.as_uuid()))
            .filter(client_secret::Column::ClientId.eq(client_id.as_uuid()))
            .filter(client_secret::Column::TenantId.eq(tenant.as_uuid()));
        let done = self
            .write(move |_s, tx| Box::pin(async move { tx.run(delete).await }))
            .await?;
        if done == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// The server's Ed25519 token-signing seed, made on first use and kept encrypted. Nodes that
    /// ask at once race to insert; the losers' inserts do nothing and all read the winner's seed.
    /// Every node must hold the same `EncryptionKey`: a seed sealed under another key is `Db`.
    pub async fn token_signing_seed(&self) -> Result<[u8; 32]> {
        if let Some(seed) = self.read_server_key(TOKEN_SIGNING).await? {
            return Ok(seed);
        }
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        let sealed = self.cipher.seal(&seed, &server_key_aad(TOKEN_SIGNING))?;
        let insert = server_key::Entity::insert(server_key::ActiveModel {
            id: Set(TOKEN_SIGNING.to_owned()),
            key_enc: Set(sealed),
            created: Set(now_millis()),
        })
        .on_conflict(
            OnConflict::column(server_key::Column::Id)
                .do_nothing()
                .to_owned(),
        );
        self.write(move |_s, tx| Box::pin(async move { tx.run(insert).await }))
            .await?;
        self.read_server_key(TOKEN_SIGNING)
            .await?
            .ok_or_else(|| Error::Db("server key vanished after insert".to_owned()))
    }

    async fn read_server_key(&self, id: &str) -> Result<Option<[u8; 32]>> {
        let row = self
            .read_all(server_key::Entity::find_by_id(id).limit(1))
            .await?
            .pop();
        let Some(row) = row else {
            return Ok(None);
        };
        let plain = self.cipher.open(&row.key_enc, &server_key_aad(id))?;
        let key = plain
            .try_into()
            .map_err(|_| Error::Db(format!("server key {id:?} is not 32 bytes")))?;
        Ok(Some(key))
    }
}

/// Associated data binding a sealed server key to its row.
fn server_key_aad(id: &str) -> Vec<u8> {
    format!("server_keys/{id}").into_bytes()
}
