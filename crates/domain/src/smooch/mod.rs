//! SPEC 8: the Smooch v1 compatibility API's rules.
//!
//! - [`appuser`]: 8.8's app users; [`message`]: 8.9's messages in and out;
//! - [`webhook`]: 8.7's webhook triggers, which activity fires which, the derived System
//!   filters, the v1 / v1.1 defaults and the body a smooch-format System integration gets.

pub mod appuser;
pub mod message;
pub mod webhook;
