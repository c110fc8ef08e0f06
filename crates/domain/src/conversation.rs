//! Conversations (SPEC 4): the establish request, the customer's `properties` (collections of
//! string key/values, merged key by key), their defaults, and the stored conversation.

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{Map, Value};

use crate::channel::Channel;
use crate::error::{Violation, Violations};
use crate::ids::{ConversationId, HubId, IntegrationId, TenantId};
use crate::json;
use crate::routing::{ConversationView, Mode};
use crate::time::Millis;

pub use crate::limits::MAX_BINDING_LEN;

/// `open` or `closed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConversationState {
    Open,
    Closed,
}

impl ConversationState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// A stored conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub tenant_id: TenantId,
    pub hub_id: HubId,
    /// The Customer integration it was established on.
    pub integration_id: IntegrationId,
    pub binding: String,
    /// The customer's opaque id in this conversation.
    pub token_id: String,
    pub mode: Mode,
    pub state: ConversationState,
    /// Collections of string key/values (`{"profile": {"device": "WebChat"}}`).
    pub properties: Map<String, Value>,
    pub opened: Millis,
    pub closed: Option<Millis>,
    /// When the last activity was accepted (or the conversation opened): the dormancy clock.
    pub last_activity: Millis,
}

impl Conversation {
    /// The routing view.
    pub fn view(&self) -> ConversationView {
        ConversationView {
            id: self.id,
            customer_integration: self.integration_id,
            customer_token: self.token_id.clone(),
            mode: self.mode,
            open: self.state == ConversationState::Open,
        }
    }

    pub fn is_open(&self) -> bool {
        self.state == ConversationState::Open
    }
}

/// A validated `POST /api/v1/conversations/establish` body.
#[derive(Clone, Debug, PartialEq)]
pub struct Establish {
    pub integration_id: IntegrationId,
    pub binding: String,
    /// Given properties (validated shape); empty when absent.
    pub properties: Map<String, Value>,
}

/// Validates an establish body, reporting every violation: `integrationId` (Required, WrongType,
/// InvalidUuid), `binding` (Required, WrongType, OutOfRange when empty or longer than
/// [`MAX_BINDING_LEN`]), `properties` ([`validate_properties`]).
pub fn validate_establish(body: &Value) -> Result<Establish, Violations> {
    let obj = json::object(body, "").map_err(Violations::from)?;
    let mut v = Violations::default();
    let integration_id = json::string(obj, "", "integrationId", true, &mut v).and_then(|s| {
        s.parse::<IntegrationId>().ok().or_else(|| {
            v.push(Violation::new(
                crate::ViolationKind::InvalidUuid,
                "integrationId",
                format!("Property 'integrationId' must be a UUID, not '{s}'."),
            ));
            None
        })
    });
    let binding = json::string(obj, "", "binding", true, &mut v).and_then(|b| {
        let len = b.chars().count();
        if len == 0 || len > MAX_BINDING_LEN {
            v.push(Violation::out_of_range(
                "binding",
                &format!("must be 1 to {MAX_BINDING_LEN} characters long"),
            ));
            None
        } else {
            Some(b)
        }
    });
    let properties = match json::field(obj, "properties") {
        None => Some(Map::new()),
        Some(p) => validate_properties(p, "properties", &mut v),
    };
    match (integration_id, binding, properties) {
        (Some(integration_id), Some(binding), Some(properties)) if v.is_empty() => Ok(Establish {
            integration_id,
            binding,
            properties,
        }),
        _ => Err(v),
    }
}

/// Checks that `value` is an object of collections, each an object of string values (WrongType
/// otherwise; InvalidFormat for a NUL character), within the caps of
/// [`crate::limits::check_properties`] (OutOfRange). A `null` collection or value counts as
/// absent. What is stored must be checked again once merged ([`merged_properties`]).
pub fn validate_properties(
    value: &Value,
    path: &str,
    v: &mut Violations,
) -> Option<Map<String, Value>> {
    let Some(obj) = value.as_object() else {
        v.push(Violation::wrong_type(path, "an object of collections"));
        return None;
    };
    let before = v.len();
    let mut out = Map::new();
    for (name, collection) in obj {
        let at = json::path(path, name);
        if name.contains('\0') {
            v.push(Violation::invalid_format(
                &at,
                "must not contain NUL characters",
            ));
            continue;
        }
        match collection {
            Value::Null => {}
            Value::Object(entries) => {
                let mut kept = Map::new();
                for key in entries.keys() {
                    if key.contains('\0') {
                        v.push(Violation::invalid_format(
                            &json::path(&at, key),
                            "must not contain NUL characters",
                        ));
                    } else if let Some(s) = json::string(entries, &at, key, false, v) {
                        kept.insert(key.clone(), Value::String(s));
                    }
                }
                out.insert(name.clone(), Value::Object(kept));
            }
            _ => v.push(Violation::wrong_type(&at, "an object of string values")),
        }
    }
    if v.len() == before {
        crate::limits::check_properties(path, &out, v);
    }
    (v.len() == before).then_some(out)
}

/// `given` merged into `stored` ([`merge_properties`]), if the result is within the caps of
/// [`crate::limits::check_properties`]: what an establish of an open conversation stores.
/// Checking the merged result, not only what was given, keeps repeated establishes from
/// growing the properties past a cap.
pub fn merged_properties(
    stored: &Map<String, Value>,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, Violations> {
    let mut merged = stored.clone();
    merge_properties(&mut merged, given);
    let mut v = Violations::default();
    crate::limits::check_properties("properties", &merged, &mut v);
    v.into_result(merged)
}

/// Merges `given` into `stored` key by key within each collection; new values win.
pub fn merge_properties(stored: &mut Map<String, Value>, given: &Map<String, Value>) {
    for (name, collection) in given {
        let Some(entries) = collection.as_object() else {
            continue;
        };
        let target = stored
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        if let Some(target) = target.as_object_mut() {
            for (k, val) in entries {
                target.insert(k.clone(), val.clone());
            }
        }
    }
}

/// The properties of a new conversation: `given`, with `profile.device` defaulting to the
/// channel's name and `profile."full name"` to a random two-word name.
pub fn initial_properties(given: &Map<String, Value>, channel: Channel) -> Map<String, Value> {
    let mut props = given.clone();
    let profile = props
        .entry("profile".to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !profile.is_object() {
        *profile = Value::Object(Map::new());
    }
    if let Some(profile) = profile.as_object_mut() {
        profile
            .entry("device".to_owned())
            .or_insert_with(|| Value::String(channel.name().to_owned()));
        profile
            .entry("full name".to_owned())
            .or_insert_with(|| Value::String(random_name()));
    }
    props
}

const ADJECTIVES: &[&str] = &[
    "Amber", "Bold", "Brave", "Bright", "Calm", "Clever", "Coral", "Crimson", "Daring", "Eager",
    "Gentle", "Golden", "Happy", "Honest", "Jolly", "Kind", "Lively", "Lucky", "Mellow", "Merry",
    "Misty", "Noble", "Olive", "Patient", "Polite", "Quick", "Quiet", "Rapid", "Silver", "Sunny",
    "Swift", "Witty",
];
const NOUNS: &[&str] = &[
    "Badger", "Beaver", "Bison", "Crane", "Dolphin", "Eagle", "Falcon", "Ferret", "Finch", "Fox",
    "Gecko", "Heron", "Ibis", "Jaguar", "Koala", "Lemur", "Lynx", "Marten", "Otter", "Owl",
    "Panda", "Puffin", "Quail", "Raven", "Robin", "Salmon", "Seal", "Sparrow", "Tiger", "Walrus",
    "Wombat", "Zebra",
];

/// A random two-word name such as `Swift Otter`.
pub fn random_name() -> String {
    let mut rng = rand::thread_rng();
    format!(
        "{} {}",
        ADJECTIVES.choose(&mut rng).copied().unwrap_or("Quiet"),
        NOUNS.choose(&mut rng).copied().unwrap_or("Owl")
    )
}

/// A new opaque `tokenId` for a customer: 128 random bits in hex.
pub fn new_token_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a conversation whose last activity was at `last_activity` is dormant at `now` for a
/// hub that closes conversations idle for `days` days (0: never).
pub fn is_dormant(last_activity: Millis, days: i64, now: Millis) -> bool {
    days > 0 && now.saturating_sub(last_activity) >= days.saturating_mul(86_400_000)
}

/// The latest `last_activity` that is dormant at `now` for `days` (for a query), `None` when
/// the hub never closes conversations by itself.
pub fn dormant_before(days: i64, now: Millis) -> Option<Millis> {
    (days > 0).then(|| now.saturating_sub(days.saturating_mul(86_400_000)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ViolationKind;
    use serde_json::json;

    fn kinds(r: Result<Establish, Violations>) -> Vec<(ViolationKind, String)> {
        r.err()
            .map(|v| v.0.iter().map(|x| (x.kind, x.property.clone())).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_valid_body_is_read() {
        let id = IntegrationId::new();
        let e = validate_establish(&json!({
            "integrationId": id.to_string(), "binding": "cust-1",
            "properties": {"profile": {"email": "a@b.c"}, "extra": null}
        }))
        .unwrap();
        assert_eq!(e.integration_id, id);
        assert_eq!(e.binding, "cust-1");
        assert_eq!(
            e.properties,
            json!({"profile": {"email": "a@b.c"}})
                .as_object()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn every_violation_is_reported() {
        let got = kinds(validate_establish(&json!({
            "integrationId": "nope", "binding": 5,
            "properties": {"profile": {"age": 3}, "x": "y"}
        })));
        assert_eq!(
            got,
            vec![
                (ViolationKind::InvalidUuid, "integrationId".to_owned()),
                (ViolationKind::WrongType, "binding".to_owned()),
                (
                    ViolationKind::WrongType,
                    "properties.profile.age".to_owned()
                ),
                (ViolationKind::WrongType, "properties.x".to_owned()),
            ]
        );
        assert_eq!(
            kinds(validate_establish(&json!({}))),
            vec![
                (ViolationKind::Required, "integrationId".to_owned()),
                (ViolationKind::Required, "binding".to_owned())
            ]
        );
        assert_eq!(
            kinds(validate_establish(
                &json!({"integrationId": IntegrationId::new().to_string(), "binding": ""})
            )),
            vec![(ViolationKind::OutOfRange, "binding".to_owned())]
        );
        assert_eq!(
            kinds(validate_establish(
                &json!({"integrationId": IntegrationId::new().to_string(), "binding": "b", "properties": []})
            )),
            vec![(ViolationKind::WrongType, "properties".to_owned())]
        );
        assert_eq!(
            kinds(validate_establish(&json!([1]))),
            vec![(ViolationKind::InvalidBody, String::new())]
        );
    }

    #[test]
    fn merging_keeps_old_keys_and_new_values_win() {
        let mut stored =
            json!({"profile": {"device": "WebChat", "full name": "A B"}, "tags": {"x": "1"}})
                .as_object()
                .unwrap()
                .clone();
        let given =
            json!({"profile": {"full name": "Jane Doe", "email": "j@d.e"}, "crm": {"id": "7"}})
                .as_object()
                .unwrap()
                .clone();
        merge_properties(&mut stored, &given);
        assert_eq!(
            Value::Object(stored),
            json!({"profile": {"device": "WebChat", "full name": "Jane Doe", "email": "j@d.e"},
                   "tags": {"x": "1"}, "crm": {"id": "7"}})
        );
    }

    #[test]
    fn the_merged_result_is_held_to_the_caps() {
        let half: Map<String, Value> = (0..32).map(|k| (format!("k{k}"), json!("v"))).collect();
        let stored = json!({ "crm": half }).as_object().unwrap().clone();
        let more: Map<String, Value> = (32..65).map(|k| (format!("k{k}"), json!("v"))).collect();
        let given = json!({ "crm": more }).as_object().unwrap().clone();
        // Each alone is within the cap of 64 keys; merged, they are not.
        let mut v = Violations::default();
        assert!(validate_properties(&Value::Object(given.clone()), "properties", &mut v).is_some());
        let err = merged_properties(&stored, &given).unwrap_err();
        assert_eq!(
            err.0[0].message,
            "Property 'properties.crm' must hold at most 64 keys (it would hold 65)."
        );
        // Overwriting existing keys does not grow them.
        let again = json!({ "crm": { "k0": "w" } }).as_object().unwrap().clone();
        assert_eq!(
            merged_properties(&stored, &again).unwrap()["crm"]["k0"],
            "w"
        );
    }

    #[test]
    fn given_properties_past_a_cap_are_refused() {
        let got = kinds(validate_establish(&json!({
            "integrationId": IntegrationId::new().to_string(), "binding": "b",
            "properties": { "crm": { "bio": "x".repeat(4_097) } }
        })));
        assert_eq!(
            got,
            [(ViolationKind::OutOfRange, "properties.crm.bio".to_owned())]
        );
    }

    #[test]
    fn defaults_fill_only_what_is_missing() {
        let p = initial_properties(&Map::new(), Channel::WebChat);
        assert_eq!(p["profile"]["device"], "WebChat");
        let name = p["profile"]["full name"].as_str().unwrap();
        assert_eq!(name.split(' ').count(), 2, "{name}");
        let given = json!({"profile": {"device": "iPhone", "full name": "Jane"}})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(initial_properties(&given, Channel::WebChat), given);
    }

    #[test]
    fn token_ids_are_random_hex() {
        let a = new_token_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_token_id());
    }

    #[test]
    fn dormancy_counts_whole_days() {
        let day = 86_400_000;
        assert!(!is_dormant(0, 0, 100 * day));
        assert!(!is_dormant(0, 2, 2 * day - 1));
        assert!(is_dormant(0, 2, 2 * day));
        assert_eq!(dormant_before(0, 5), None);
        assert_eq!(dormant_before(1, 3 * day), Some(2 * day));
        assert!(!is_dormant(0, i64::from(i32::MAX), 100_000_000_000_000_000));
        assert!(is_dormant(0, i64::from(i32::MAX), i64::MAX));
    }
}
