//! Typed ids: a bare `Uuid` never crosses a crate boundary.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// Wraps a uuid read from storage or a request.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// The underlying uuid, for storage.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    )*};
}

typed_id!(
    /// A tenant: a business that owns hubs.
    TenantId,
    /// An API client of a tenant (portal or engine).
    ClientId,
    /// One secret of an API client.
    SecretId,
    /// A hub.
    HubId,
    /// An integration of a hub.
    IntegrationId,
    /// A conversation.
    ConversationId,
    /// One message activity, shared by all its copies (`interactionId`).
    InteractionId,
    /// A webhook delivery.
    DeliveryId,
    /// A notification for a tenant.
    NotificationId,
    /// An app user of the Smooch-compatible API (SPEC 8.8): one customer of a hub.
    AppUserId,
);
