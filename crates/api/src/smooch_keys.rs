//! Account keys of the Smooch-compatible API (SPEC 8.3), managed with a portal token: what
//! Smooch's dashboard made. The secret is answered whole once, at creation; lists show its first
//! 6 characters. Deleting a key refuses its tokens at once on this node, within 5 s on every
//! node.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use switchboard_domain::json;
use switchboard_domain::smooch::keys::{masked_secret, read_name};
use switchboard_domain::time::rfc3339;

use crate::auth::PortalAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::paging::page;
use crate::state::AppState;
use crate::Tags;

/// A new account key.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct SmoochKeyIn {
    /// A name to tell it apart: 1 to 200 characters.
    #[oai(validator(max_length = 200))]
    pub name: String,
}

/// An account key of the Smooch-compatible API.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct SmoochKeyOut {
    /// `act_` + 32 lower-case hex: the `kid` of the tokens it signs.
    pub key_id: String,
    pub name: String,
    /// The HS256 secret: whole when the key is created (store it then), else its first 6
    /// characters and `...`.
    pub secret: String,
    /// When it was created (RFC 3339).
    pub created: String,
}

/// One page of account keys, oldest first.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct SmoochKeyPage {
    pub page_number: u64,
    pub page_size: u64,
    pub total: u64,
    pub results: Vec<SmoochKeyOut>,
}

pub struct SmoochKeysApi;

#[OpenApi(tag = "Tags::Identity")]
impl SmoochKeysApi {
    /// Create an account key of the Smooch-compatible API
    ///
    /// An account key (`act_…`) signs HS256 tokens (`kid` = `keyId`, scope `account`) for the
    /// `/v1` and `/v1.1` routes, over every hub of the tenant. Its secret is answered whole this
    /// once; it is stored encrypted (not hashed: checking an HMAC needs it), so whoever holds
    /// the database and its encryption key can read it.
    // SPEC 8.3
    #[oai(
        path = "/api/v1/tenants/smooch-keys",
        method = "post",
        operation_id = "smoochKeys.create"
    )]
    async fn create(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        body: Body<SmoochKeyIn>,
    ) -> Result<Json<SmoochKeyOut>, ApiError> {
        let obj = json::object(&body.value, "").map_err(ApiError::from)?;
        let name = read_name(obj)?;
        let key = state
            .store
            .create_smooch_key(auth.0.tid, None, &name)
            .await?;
        Ok(Json(SmoochKeyOut {
            key_id: key.key_id,
            name: key.name,
            secret: key.secret,
            created: rfc3339(key.created),
        }))
    }

    /// List the account keys of the Smooch-compatible API
    // SPEC 8.3
    #[oai(
        path = "/api/v1/tenants/smooch-keys",
        method = "get",
        operation_id = "smoochKeys.list"
    )]
    async fn list(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        /// Page to return, from 0.
        #[oai(name = "pageNumber")]
        page_number: Query<Option<i64>>,
        /// Keys per page, 1 to 100 (default 50).
        #[oai(name = "pageSize")]
        page_size: Query<Option<i64>>,
    ) -> Result<Json<SmoochKeyPage>, ApiError> {
        let p = state
            .store
            .page_account_keys(auth.0.tid, page(page_number.0, page_size.0)?)
            .await?;
        Ok(Json(SmoochKeyPage {
            page_number: p.number,
            page_size: p.size,
            total: p.total,
            results: p
                .results
                .into_iter()
                .map(|k| SmoochKeyOut {
                    secret: masked_secret(&k.secret),
                    key_id: k.key_id,
                    name: k.name,
                    created: rfc3339(k.created),
                })
                .collect(),
        }))
    }

    /// Delete an account key of the Smooch-compatible API
    ///
    /// Its tokens are refused at once on this node, within 5 seconds on every node.
    // SPEC 8.3
    #[oai(
        path = "/api/v1/tenants/smooch-keys/:keyId",
        method = "delete",
        operation_id = "smoochKeys.delete"
    )]
    async fn delete(
        &self,
        auth: PortalAuth,
        state: Data<&AppState>,
        #[oai(name = "keyId")] key_id: Path<String>,
    ) -> Result<(), ApiError> {
        state
            .store
            .delete_smooch_key(auth.0.tid, None, &key_id.0)
            .await
            .map_err(|_| ApiError::not_found("key"))?;
        state.smooch_keys.forget(&key_id.0);
        Ok(())
    }
}
