//! The Switchboard model and its rules. No I/O, no async, no database: every rule here is a plain
//! function over plain types, so it is tested without a server. Raw request bodies come in as
//! `serde_json::Value` so that validation can report every violation at once (SPEC 1), not only
//! the first one a deserializer meets; each violation has a typed kind ([`ViolationKind`]), and
//! the API decides its SPEC 1 code.
//!
//! - [`ids`]: typed ids; [`time`]: epoch milliseconds; [`json`]: reading loose JSON bodies;
//!   [`error`]: violations; [`paging`]: `pageNumber` and `pageSize`; [`limits`]: every size
//!   limit (string lengths, the caps of `properties`).
//! - [`hub`], [`integration`]: hubs and integrations (SPEC 3); [`channel`]: the channel
//!   catalogue; [`channel_config`]: each channel's `configuration` keys and their checks.
//! - [`identity`]: client scopes and secrets; [`token`]: access tokens (SPEC 2); [`keys`]:
//!   Ed25519 key pairs; [`signing`]: integration-signed requests.
//! - [`conversation`]: the establish request and the stored conversation; [`activity`]:
//!   messages, events, inbound validation and stored copies (SPEC 4); [`clock`]: the `eventId`
//!   clock.
//! - [`routing`]: who receives an activity (SPEC 5.1–5.4); [`filter`]: System event filters;
//!   [`webhook`]: webhook delivery rules (SPEC 5.5); [`rate`]: rate limits as token buckets.
//! - [`smooch`]: the Smooch v1 compatible API's rules (SPEC 8): keys and HS256 tokens, and the
//!   translations between Smooch's shapes and Switchboard's.
//!
//! A module whose tests outweigh its code keeps them in a sibling `tests.rs`
//! (`integration/tests.rs`).

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
pub mod limits;
pub mod paging;
pub mod rate;
pub mod routing;
pub mod signing;
pub mod smooch;
pub mod time;
pub mod token;
pub mod webhook;

pub use error::{Violation, ViolationKind, Violations};
