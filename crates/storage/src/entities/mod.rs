//! sea-orm entities: one per table, mirroring the migrations. Private to the crate: rows carry
//! bare uuids and encrypted blobs; the repositories turn them into domain types.

pub(crate) mod activity;
pub(crate) mod client;
pub(crate) mod client_secret;
pub(crate) mod conversation;
pub(crate) mod delivery;
pub(crate) mod delivery_activity;
pub(crate) mod delivery_attempt;
pub(crate) mod hub;
pub(crate) mod idempotency_key;
pub(crate) mod integration;
pub(crate) mod notification;
pub(crate) mod pending_integration;
pub(crate) mod server_key;
pub(crate) mod smooch_app;
pub(crate) mod smooch_app_user;
pub(crate) mod smooch_key;
pub(crate) mod tenant;
pub(crate) mod used_signature;
