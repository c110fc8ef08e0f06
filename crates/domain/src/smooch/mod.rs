//! The Smooch v1 compatible API (SPEC 8) as rules over plain types: its keys and HS256 tokens
//! ([`keys`]), app users ([`appuser`]), and the translations between Smooch's shapes and
//! Switchboard's hubs, integrations, System integrations and activities. The routes are in
//! `switchboard-api`'s `smooch` module; nothing here knows HTTP. [`message`]: 8.9's messages
//! in and out; [`webhook`]: 8.7's webhook triggers and the body a smooch-format System
//! integration gets.

pub mod appuser;
pub mod integrations;
pub mod keys;
pub mod message;
pub mod webhook;

use serde_json::{Map, Value};

use crate::ids::{HubId, IntegrationId};

/// What a hub has as a Smooch app (SPEC 8.4): its public token, the stored `settings` and
/// `metadata` (`None` until set), and its two compat Direct integrations (8.8) once made.
#[derive(Clone, Debug, PartialEq)]
pub struct App {
    pub hub_id: HubId,
    pub app_token: String,
    pub settings: Option<Map<String, Value>>,
    pub metadata: Option<Map<String, Value>>,
    /// *Smooch API users* (Customer).
    pub users_integration: Option<IntegrationId>,
    /// *Smooch API business* (Agent).
    pub business_integration: Option<IntegrationId>,
}

/// The names of an app's compat Direct integrations (SPEC 8.8): *Smooch API users*
/// (Customer) and *Smooch API business* (Agent).
pub const USERS_INTEGRATION: &str = "Smooch API users";
pub const BUSINESS_INTEGRATION: &str = "Smooch API business";

/// The `n`-th name tried for a compat integration: the name, then `name 2`, `name 3`… while
/// the hub already uses it.
pub fn compat_name(name: &str, n: u32) -> String {
    if n <= 1 {
        name.to_owned()
    } else {
        format!("{name} {n}")
    }
}

/// The most bytes an app's `settings` and `metadata` take together, as JSON (SPEC 8.4).
pub const MAX_APP_FIELDS_BYTES: usize = 8 * 1024;

/// An app's `settings` and `metadata`, each when given.
pub type AppFields = (Option<Map<String, Value>>, Option<Map<String, Value>>);

/// An app's `settings` and `metadata` as given (`None`: not given or `null`): `settings` any
/// object, `metadata` a flat object of strings, numbers and booleans, both within
/// [`MAX_APP_FIELDS_BYTES`] together (counting what is stored of the one not given).
pub fn validate_app_fields(
    settings: Option<&Value>,
    metadata: Option<&Value>,
    stored: &App,
) -> Result<AppFields, crate::Violations> {
    use crate::{Violation, Violations};
    let mut v = Violations::default();
    let object = |name: &str, value: Option<&Value>, v: &mut Violations| match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => {
            v.push(Violation::wrong_type(name, "an object"));
            None
        }
    };
    let settings = object("settings", settings, &mut v);
    let metadata = object("metadata", metadata, &mut v);
    if let Some(m) = &metadata {
        for (k, value) in m {
            if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                v.push(Violation::wrong_type(
                    &format!("metadata.{k}"),
                    "a string, a number or a boolean",
                ));
            }
        }
    }
    let size = |given: &Option<Map<String, Value>>, kept: &Option<Map<String, Value>>| {
        given
            .as_ref()
            .or(kept.as_ref())
            .map_or(0, |m| Value::Object(m.clone()).to_string().len())
    };
    if size(&settings, &stored.settings) + size(&metadata, &stored.metadata) > MAX_APP_FIELDS_BYTES
    {
        v.push(Violation::out_of_range(
            "metadata",
            "settings and metadata must take at most 8 KB together",
        ));
    }
    v.into_result((settings, metadata))
}
