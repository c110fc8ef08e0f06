//! App users (SPEC 8.8): one customer of a hub (a Customer integration and a `binding`) with a
//! UUID and its Smooch fields. No merging across channels.

use serde_json::{Map, Value};

use crate::ids::{AppUserId, HubId, IntegrationId, TenantId};

/// An app user as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct AppUser {
    pub id: AppUserId,
    pub tenant_id: TenantId,
    pub hub_id: HubId,
    /// The customer's integration.
    pub integration_id: IntegrationId,
    /// The customer's binding on that integration.
    pub binding: String,
    /// The business's own id of the user (`null` for customers the API did not create).
    pub user_id: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    /// Epoch milliseconds.
    pub signed_up_at: i64,
    /// Flat properties.
    pub properties: Map<String, Value>,
    /// Epoch milliseconds.
    pub created: i64,
    pub modified: i64,
}

/// The Smooch fields of an app user as written (a create, or an update's result).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppUserFields {
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    /// Epoch milliseconds; `None` on a create: now.
    pub signed_up_at: Option<i64>,
    pub properties: Map<String, Value>,
}
