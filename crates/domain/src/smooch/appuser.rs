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

use crate::error::{Violation, Violations};
use crate::json;
use crate::limits::{
    self, MAX_BINDING_LEN, MAX_NAME_LEN, MAX_PROPERTIES_BYTES, MAX_PROPERTY_KEYS,
    MAX_PROPERTY_NAME_LEN, MAX_PROPERTY_VALUE_LEN,
};
use crate::time::{self, Millis};
use serde_json::json;

/// The fields of `POST …/appusers`.
pub const CREATE_FIELDS: &[&str] = &[
    "userId",
    "givenName",
    "surname",
    "email",
    "signedUpAt",
    "properties",
];
/// The fields of `PUT …/appusers/{id}` (the create's but `userId`).
pub const UPDATE_FIELDS: &[&str] = &["givenName", "surname", "email", "signedUpAt", "properties"];
/// Smooch app-user fields Switchboard drops, with a `Warning`.
pub const IGNORED_FIELDS: &[&str] = &["credentialRequired"];

/// Bytes of JSON the `smooch` collection may take in a conversation's properties.
const SMOOCH_PROPERTIES_BUDGET: usize = MAX_PROPERTIES_BYTES / 2;

/// A validated create body: the `userId` and the fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewAppUser {
    pub user_id: String,
    pub fields: AppUserFields,
}

/// A validated update body: `None` leaves a field, `Some(None)` clears it (a JSON `null`);
/// `properties` merge by key, a `null` value removes its key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppUserUpdate {
    pub given_name: Option<Option<String>>,
    pub surname: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub signed_up_at: Option<Millis>,
    pub properties: Option<Map<String, Value>>,
}

/// Reads a create body: `userId`* (1..1024 chars), `givenName`, `surname`, `email` (strings up
/// to 200 chars), `signedUpAt` (RFC 3339), `properties` (an object, at most 16 KB of JSON).
pub fn validate_create(body: &Map<String, Value>) -> Result<NewAppUser, Violations> {
    let mut v = Violations::default();
    let user_id = json::text(body, "", "userId", true, MAX_BINDING_LEN, &mut v);
    if user_id.as_deref() == Some("") {
        v.push(Violation::out_of_range("userId", "must not be empty"));
    }
    let update = fields(body, &mut v);
    match user_id {
        Some(user_id) if v.is_empty() => Ok(NewAppUser {
            user_id,
            fields: AppUserFields {
                given_name: update.given_name.flatten(),
                surname: update.surname.flatten(),
                email: update.email.flatten(),
                signed_up_at: update.signed_up_at,
                properties: update
                    .properties
                    .map(|mut p| {
                        p.retain(|_, v| !v.is_null());
                        p
                    })
                    .unwrap_or_default(),
            },
        }),
        _ => Err(v),
    }
}

/// Reads an update body (the create's fields but `userId`, which the API refuses as unknown).
pub fn validate_update(body: &Map<String, Value>) -> Result<AppUserUpdate, Violations> {
    let mut v = Violations::default();
    let update = fields(body, &mut v);
    v.into_result(update)
}

fn fields(body: &Map<String, Value>, v: &mut Violations) -> AppUserUpdate {
    let name = |key: &str, v: &mut Violations| match body.get(key) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => json::text(body, "", key, false, MAX_NAME_LEN, v).map(Some),
    };
    let given_name = name("givenName", v);
    let surname = name("surname", v);
    let email = name("email", v);
    let signed_up_at = json::string(body, "", "signedUpAt", false, v).and_then(|s| {
        let t = time::parse_rfc3339(&s);
        if t.is_none() {
            v.push(Violation::invalid_format(
                "signedUpAt",
                "must be an RFC 3339 date-time",
            ));
        }
        t
    });
    let properties = match json::field(body, "properties") {
        None => None,
        Some(Value::Object(p)) => {
            limits::check_json_bytes(
                "properties",
                &Value::Object(p.clone()),
                MAX_PROPERTIES_BYTES,
                v,
            );
            Some(p.clone())
        }
        Some(_) => {
            v.push(Violation::wrong_type("properties", "an object"));
            None
        }
    };
    AppUserUpdate {
        given_name,
        surname,
        email,
        signed_up_at,
        properties,
    }
}

impl AppUser {
    /// PUT (8.8): the fields to write: given fields replace, `properties` merge by key
    /// (`null` removes); a violation when the merged properties pass 16 KB.
    pub fn updated(&self, update: AppUserUpdate) -> Result<AppUserFields, Violations> {
        let mut properties = self.properties.clone();
        if let Some(given) = update.properties {
            merge(&mut properties, given);
        }
        let mut v = Violations::default();
        limits::check_json_bytes(
            "properties",
            &Value::Object(properties.clone()),
            MAX_PROPERTIES_BYTES,
            &mut v,
        );
        let pick = |given: Option<Option<String>>, kept: &Option<String>| match given {
            Some(x) => x,
            None => kept.clone(),
        };
        v.into_result(AppUserFields {
            given_name: pick(update.given_name, &self.given_name),
            surname: pick(update.surname, &self.surname),
            email: pick(update.email, &self.email),
            signed_up_at: Some(update.signed_up_at.unwrap_or(self.signed_up_at)),
            properties,
        })
    }

    /// `givenName surname`, whichever are set; `None` when neither is.
    pub fn display_name(&self) -> Option<String> {
        let parts: Vec<&str> = [self.given_name.as_deref(), self.surname.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// `given` merged into `stored` key by key; a `null` value removes its key.
pub fn merge(stored: &mut Map<String, Value>, given: Map<String, Value>) {
    for (k, val) in given {
        if val.is_null() {
            stored.remove(&k);
        } else {
            stored.insert(k, val);
        }
    }
}

/// What [`app_user_json`] needs besides the stored app user.
#[derive(Clone, Debug, PartialEq)]
pub struct AppUserView<'a> {
    /// The Smooch type of the app user's integration (`api` for Direct).
    pub platform: &'a str,
    /// Whether any conversation of the pair exists.
    pub conversation_started: bool,
    /// The time of the pair's last activity, if any.
    pub last_activity: Option<Millis>,
}

/// 8.8's `appUser`: `_id`, `userId`, `givenName`, `surname`, `email`, `signedUpAt`,
/// `properties`, `conversationStarted`, `clients` (one: the app user's integration and binding,
/// `lastSeen` = last activity else `signedUpAt`), `pendingClients: []`. Times are RFC 3339.
pub fn app_user_json(user: &AppUser, view: &AppUserView<'_>) -> Value {
    let last_seen = view.last_activity.unwrap_or(user.signed_up_at);
    json!({
        "_id": user.id.to_string(),
        "userId": user.user_id,
        "givenName": user.given_name,
        "surname": user.surname,
        "email": user.email,
        "signedUpAt": time::rfc3339(user.signed_up_at),
        "properties": user.properties,
        "conversationStarted": view.conversation_started,
        "clients": [ {
            "id": user.id.to_string(),
            "platform": view.platform,
            "integrationId": user.integration_id.to_string(),
            "externalId": user.binding,
            "active": true,
            "lastSeen": time::rfc3339(last_seen),
        } ],
        "pendingClients": [],
    })
}

/// 8.8's `channels` entry of the app user: `{ type, integrationId, externalId }`.
pub fn channel_json(user: &AppUser, platform: &str) -> Value {
    json!({
        "type": platform,
        "integrationId": user.integration_id.to_string(),
        "externalId": user.binding,
    })
}

/// The `properties` an establish for this app user passes (8.8): `profile` with `"full name"`
/// (given name and surname) and `email`, `smooch` with the app user's properties as strings
/// (a string as is, anything else its JSON text); each collection only when it has entries.
/// Within SPEC 4's caps: names past 256 chars are left out, values cut to 4096 chars, and keys
/// stop at 64 or at half of the properties' byte cap, leaving room for the rest.
pub fn establish_properties(user: &AppUser) -> Map<String, Value> {
    let mut out = Map::new();
    let mut profile = Map::new();
    if let Some(n) = user.display_name() {
        profile.insert("full name".into(), Value::String(n));
    }
    if let Some(e) = user.email.as_deref().filter(|e| !e.is_empty()) {
        profile.insert("email".into(), Value::String(e.to_owned()));
    }
    if !profile.is_empty() {
        out.insert("profile".into(), Value::Object(profile));
    }
    let mut smooch = Map::new();
    for (k, v) in &user.properties {
        if v.is_null() || k.chars().count() > MAX_PROPERTY_NAME_LEN {
            continue;
        }
        if smooch.len() == MAX_PROPERTY_KEYS {
            break;
        }
        let s = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let s: String = s.chars().take(MAX_PROPERTY_VALUE_LEN).collect();
        smooch.insert(k.clone(), Value::String(s));
        if limits::object_json_len(&smooch) > SMOOCH_PROPERTIES_BUDGET {
            smooch.remove(k);
            break;
        }
    }
    if !smooch.is_empty() {
        out.insert("smooch".into(), Value::Object(smooch));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn user() -> AppUser {
        let new = validate_create(&body(json!({
            "userId": "u1", "givenName": "Ada", "surname": "Lovelace", "email": "ada@x.io",
            "signedUpAt": "2024-11-18T03:20:00.123Z", "properties": { "tier": "gold", "n": 3 }
        })))
        .unwrap();
        stored(new, 1_800_000_000_000)
    }

    /// What storage makes of a create.
    fn stored(new: NewAppUser, now: Millis) -> AppUser {
        AppUser {
            id: AppUserId::new(),
            tenant_id: TenantId::new(),
            hub_id: HubId::new(),
            integration_id: IntegrationId::new(),
            binding: new.user_id.clone(),
            user_id: Some(new.user_id),
            given_name: new.fields.given_name,
            surname: new.fields.surname,
            email: new.fields.email,
            signed_up_at: new.fields.signed_up_at.unwrap_or(now),
            properties: new.fields.properties,
            created: now,
            modified: now,
        }
    }

    /// What storage makes of an update.
    fn write(u: &mut AppUser, f: AppUserFields) {
        u.given_name = f.given_name;
        u.surname = f.surname;
        u.email = f.email;
        u.signed_up_at = f.signed_up_at.unwrap_or(u.signed_up_at);
        u.properties = f.properties;
    }

    #[test]
    fn create_reads_every_field_and_binding_is_the_user_id() {
        let u = user();
        assert_eq!(u.user_id.as_deref(), Some("u1"));
        assert_eq!(u.binding, "u1");
        assert_eq!(u.signed_up_at, 1_731_900_000_123);
        assert_eq!(u.properties, body(json!({ "tier": "gold", "n": 3 })));
        let minimal =
            validate_create(&body(json!({ "userId": "x", "properties": { "a": null } }))).unwrap();
        assert_eq!(minimal.fields.signed_up_at, None);
        assert!(minimal.fields.properties.is_empty());
    }

    #[test]
    fn create_reports_every_violation() {
        let err = validate_create(&body(json!({
            "givenName": 3, "signedUpAt": "yesterday", "properties": [], "email": "e"
        })))
        .unwrap_err();
        let props: Vec<&str> = err.0.iter().map(|v| v.property.as_str()).collect();
        assert_eq!(props, ["userId", "givenName", "signedUpAt", "properties"]);
        assert!(validate_create(&body(json!({ "userId": "" }))).is_err());
        assert!(validate_create(&body(json!({ "userId": 7 }))).is_err());
    }

    #[test]
    fn update_replaces_fields_and_merges_properties() {
        let u = user();
        let upd = validate_update(&body(json!({
            "givenName": "Grace", "surname": null,
            "properties": { "tier": null, "n": 4, "new": { "a": 1 } }
        })))
        .unwrap();
        let f = u.updated(upd).unwrap();
        assert_eq!(f.given_name.as_deref(), Some("Grace"));
        assert_eq!(f.surname, None);
        assert_eq!(f.email.as_deref(), Some("ada@x.io"));
        assert_eq!(f.signed_up_at, Some(u.signed_up_at));
        assert_eq!(f.properties, body(json!({ "n": 4, "new": { "a": 1 } })));
    }

    #[test]
    fn update_past_the_properties_cap_is_refused() {
        let mut u = user();
        let big = "x".repeat(10_000);
        let f = u
            .updated(validate_update(&body(json!({ "properties": { "a": big } }))).unwrap())
            .unwrap();
        write(&mut u, f);
        let upd = validate_update(&body(
            json!({ "givenName": "Z", "properties": { "b": big } }),
        ))
        .unwrap();
        assert!(u.updated(upd).is_err());
    }

    #[test]
    fn json_has_clients_and_pending_clients() {
        let u = user();
        let j = app_user_json(
            &u,
            &AppUserView {
                platform: "api",
                conversation_started: false,
                last_activity: None,
            },
        );
        assert_eq!(j["_id"], json!(u.id.to_string()));
        assert_eq!(j["userId"], json!("u1"));
        assert_eq!(j["signedUpAt"], json!("2024-11-18T03:20:00.123Z"));
        assert_eq!(j["conversationStarted"], json!(false));
        assert_eq!(j["pendingClients"], json!([]));
        assert_eq!(
            j["clients"],
            json!([{ "id": u.id.to_string(), "platform": "api",
                     "integrationId": u.integration_id.to_string(), "externalId": "u1",
                     "active": true, "lastSeen": "2024-11-18T03:20:00.123Z" }])
        );
        let j = app_user_json(
            &u,
            &AppUserView {
                platform: "telegram",
                conversation_started: true,
                last_activity: Some(1_731_900_001_000),
            },
        );
        assert_eq!(
            j["clients"][0]["lastSeen"],
            json!("2024-11-18T03:20:01.000Z")
        );
        assert_eq!(j["conversationStarted"], json!(true));
        assert_eq!(
            channel_json(&u, "api"),
            json!({ "type": "api", "integrationId": u.integration_id.to_string(), "externalId": "u1" })
        );
    }

    #[test]
    fn establish_properties_carry_profile_and_stringified_properties() {
        let u = user();
        assert_eq!(
            Value::Object(establish_properties(&u)),
            json!({ "profile": { "full name": "Ada Lovelace", "email": "ada@x.io" },
                    "smooch": { "tier": "gold", "n": "3" } })
        );
        let mut bare = u.clone();
        bare.given_name = None;
        bare.surname = None;
        bare.email = None;
        bare.properties.clear();
        assert!(establish_properties(&bare).is_empty());
        bare.surname = Some("Solo".into());
        assert_eq!(
            Value::Object(establish_properties(&bare)),
            json!({ "profile": { "full name": "Solo" } })
        );
    }

    #[test]
    fn establish_properties_stay_within_the_caps() {
        let mut u = user();
        u.properties = (0..100)
            .map(|i| (format!("k{i}"), json!("v".repeat(5000))))
            .collect();
        let p = establish_properties(&u);
        let smooch = p["smooch"].as_object().unwrap();
        assert_eq!(
            smooch.len(),
            1,
            "two values of 4096 chars pass half the byte cap"
        );
        assert_eq!(smooch["k0"].as_str().unwrap().len(), MAX_PROPERTY_VALUE_LEN);
        u.properties = (0..100).map(|i| (format!("k{i}"), json!(i))).collect();
        let p = establish_properties(&u);
        assert_eq!(p["smooch"].as_object().unwrap().len(), MAX_PROPERTY_KEYS);
        let mut v = Violations::default();
        limits::check_properties("properties", &p, &mut v);
        assert!(v.is_empty());
    }
}
