//! The Smooch v1 compatibility layer's rules (SPEC 8): pure functions the `api::smooch` routes,
//! routing and the webhook worker share.
//!
//! - [`webhook`]: 8.7's webhook triggers, which activity fires which, the derived System
//!   filters, the v1 / v1.1 defaults and the body a smooch-format System integration gets.

pub mod webhook;
