//! sea-orm entities: one per table, mirroring the migrations. Private to the crate: rows carry
//! bare uuids and encrypted blobs; the repositories turn them into domain types.

pub(crate) mod client;
pub(crate) mod client_secret;
pub(crate) mod hub;
pub(crate) mod integration;
pub(crate) mod server_key;
pub(crate) mod tenant;
