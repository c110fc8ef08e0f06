//! The Switchboard model and its rules: typed ids, hubs, integrations and the channel catalogue,
//! identity (client secrets, access tokens), signing keys, pagination; activities, System event
//! filters and the routing of activities to integrations.
//!
//! No I/O, no async, no database: every rule here is a plain function over plain types, so it is
//! tested without a server. Raw request bodies come in as `serde_json::Value` so that validation
//! can report every violation at once (SPEC 1), not only the first one a deserializer meets.

pub mod activity;
pub mod channel;
pub mod channel_config;
pub mod clock;
pub mod conversation;
pub mod error;
pub mod filter;
pub mod hub;
pub mod identity;
pub mod ids;
pub mod integration;
pub mod json;
pub mod keys;
pub mod paging;
pub mod routing;
pub mod signing;
pub mod time;
pub mod token;
pub mod webhook;

pub use error::{Violation, ViolationKind, Violations};
