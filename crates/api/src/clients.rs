//! API clients of the tenant and their secrets (SPEC 2), reachable with a portal token.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use switchboard_domain::ids::{ClientId, SecretId};
use switchboard_domain::time::{now_millis, parse_rfc3339, rfc3339};
use switchboard_domain::{json, Violation, Violations};
use switchboard_storage::SecretInfo;
use uuid::Uuid;

use crate::auth::PortalAuth;
use crate::body::Body;
use crate::error::{ApiError, Resource};
use crate::state::AppState;
use crate::Tags;

/// The longest name of a secret, in characters.
pub const MAX_SECRET_NAME_LEN: usize = 200;

/// A client secret as listed: only its first 6 characters are shown.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct SecretOut {
    /// The secret's id (`tokenId` in the revoke route).
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The first 6 characters, then `...`.
    pub token: String,
    /// When it stops working (RFC 3339), or null for never.
    pub expiration: Option<String>,
}

impl From<SecretInfo> for SecretOut {
    fn from(s: SecretInfo) -> Self {
        Self {
            id: s.id.as_uuid(),
            name: s.name,
            token: s.preview,
            expiration: s.expiration.map(rfc3339),
        }
    }
}

/// An API client of the tenant.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ClientOut {
    pub tenant_id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub enabled: bool,
    /// `portal-api` or `engine-api`.
    pub allowed_scopes: Vec<String>,
    /// The client's secrets, oldest first.
    pub secrets: Vec<SecretOut>,
}

/// A new secret.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct SecretIn {
    /// A name to tell it apart.
    pub name: String,
    /// When it stops working (RFC 3339, in the future); absent for never.
    pub expiration: Option<String>,
}

/// A new secret, shown whole this once.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct NewSecretOut {
    pub id: Uuid,
    pub name: String,
    /// The whole secret: store it now, it is never shown again.
    pub token: String,
    pub expiration: Option<String>,
}

pub struct ClientsApi;

#[OpenApi(tag = "Tags::Identity")]
impl ClientsApi {
    /// Get a client
    ///
    /// An API client of the caller's tenant, with its secrets (only their first characters).
    // SPEC 2
    #[oai(
        path = "/api/v1/tenants/clients/:clientId",
        method = "get",
        operation_id = "clients.get"
    )]
    async fn get_client(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "clientId")] client_id: Path<Uuid>,
    ) -> Result<Json<ClientOut>, ApiError> {
        let c = state
            .store
            .get_client(auth.0.tid, ClientId::from_uuid(client_id.0))
            .await
            .map_err(ApiError::storage(Resource::Client))?;
        Ok(Json(ClientOut {
            tenant_id: c.tenant_id.as_uuid(),
            client_id: c.client_id.as_uuid(),
            name: c.name,
            enabled: c.enabled,
            allowed_scopes: c
                .allowed_scopes
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            secrets: c.secrets.into_iter().map(SecretOut::from).collect(),
        }))
    }

    /// Add a secret to a client
    ///
    /// Answers the whole secret in `token`, this once; only its hash is stored.
    // SPEC 2
    #[oai(
        path = "/api/v1/tenants/clients/:clientId/tokens",
        method = "post",
        operation_id = "clients.addSecret"
    )]
    async fn add_secret(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "clientId")] client_id: Path<Uuid>,
        body: Body<SecretIn>,
    ) -> Result<Json<NewSecretOut>, ApiError> {
        let obj = json::object(&body.value, "").map_err(ApiError::from)?;
        let mut v = Violations::default();
        let name = json::string(obj, "", "name", true, &mut v);
        if name
            .as_deref()
            .is_some_and(|n| n.trim().is_empty() || n.chars().count() > MAX_SECRET_NAME_LEN)
        {
            v.push(Violation::out_of_range(
                "name",
                &format!("must be 1 to {MAX_SECRET_NAME_LEN} characters long"),
            ));
        }
        let expiration = match json::string(obj, "", "expiration", false, &mut v) {
            None => None,
            Some(s) => match parse_rfc3339(&s) {
                None => {
                    v.push(Violation::invalid_format(
                        "expiration",
                        "must be an RFC 3339 date and time",
                    ));
                    None
                }
                Some(ms) if ms <= now_millis() => {
                    v.push(Violation::out_of_range(
                        "expiration",
                        "must be in the future",
                    ));
                    None
                }
                Some(ms) => Some(ms),
            },
        };
        let name = match (name, v.is_empty()) {
            (Some(n), true) => n,
            _ => return Err(v.into()),
        };
        let (info, secret) = state
            .store
            .add_secret(
                auth.0.tid,
                ClientId::from_uuid(client_id.0),
                &name,
                expiration,
            )
            .await
            .map_err(ApiError::storage(Resource::Client))?;
        Ok(Json(NewSecretOut {
            id: info.id.as_uuid(),
            name: info.name,
            token: secret,
            expiration: info.expiration.map(rfc3339),
        }))
    }

    /// Revoke a secret
    ///
    /// The secret stops working, and so does every access token issued from it (on every node
    /// within 5 seconds).
    // SPEC 2
    #[oai(
        path = "/api/v1/tenants/clients/:clientId/tokens/:tokenId",
        method = "delete",
        operation_id = "clients.revokeSecret"
    )]
    async fn revoke_secret(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "clientId")] client_id: Path<Uuid>,
        #[oai(name = "tokenId")] token_id: Path<Uuid>,
    ) -> Result<(), ApiError> {
        let secret = SecretId::from_uuid(token_id.0);
        state
            .store
            .revoke_secret(auth.0.tid, ClientId::from_uuid(client_id.0), secret)
            .await
            .map_err(ApiError::storage(Resource::Secret))?;
        state.forget_secret(secret);
        Ok(())
    }
}
