//! Every size limit of the model, in one place: the longest string of each kind and the caps
//! of a conversation's `properties`. Validators read them from here, the API states them in
//! the OpenAPI document (`maxLength`, checked against these by a test) and the README lists
//! them. A value past its limit is OutOfRange (400/206) with a message naming the limit.
//!
//! String lengths count Unicode code points (`chars()`), as JSON Schema's `maxLength` does;
//! the total size of `properties` counts the bytes of its JSON. The bounds of one answer of
//! the activities list are here too.

use serde_json::{Map, Value};

use crate::error::{Violation, Violations};
use crate::json;

/// Hub, integration and client secret `name`.
pub const MAX_NAME_LEN: usize = 200;
/// Hub `description`.
pub const MAX_DESCRIPTION_LEN: usize = 4_096;
/// A conversation's `binding`.
pub const MAX_BINDING_LEN: usize = 1_024;
/// A string of an integration's `configuration` (tokens, ids, secrets, addresses, Slack's
/// `code` and `nonce`), except the URLs and the Apn `certificate`.
pub const MAX_CONFIG_TEXT_LEN: usize = 4_096;
/// The Apn `certificate` (base64 of a PKCS #12 file).
pub const MAX_CERTIFICATE_LEN: usize = 65_536;
/// A URL: `webhookUrl`, a media message's `url`, a link action's `url`.
pub const MAX_URL_LEN: usize = 8_192;
/// The `start` messages of a configuration, as JSON, in bytes.
pub const MAX_START_BYTES: usize = 65_536;
/// A message's `text`.
pub const MAX_TEXT_LEN: usize = 65_536;
/// A title: a media message's `title` and `caption`, an item's `title` and `subtitle`, an
/// action's `title`, a location's `address`.
pub const MAX_TITLE_LEN: usize = 1_024;
/// A postback or reply action's `payload`, and an event's `payloadType`.
pub const MAX_PAYLOAD_LEN: usize = 8_192;
/// An activity's `externalId`.
pub const MAX_EXTERNAL_ID_LEN: usize = 1_024;
/// A payload event's `payload` (any JSON), as JSON, in bytes.
pub const MAX_EVENT_PAYLOAD_BYTES: usize = 65_536;
/// Any other string of a message (properties the model does not name, kept as given, such as
/// a contact's details): the same as [`MAX_TEXT_LEN`].
pub const MAX_OTHER_TEXT_LEN: usize = MAX_TEXT_LEN;

/// Collections in a conversation's `properties`.
pub const MAX_PROPERTY_COLLECTIONS: usize = 32;
/// Keys in one collection of `properties`.
pub const MAX_PROPERTY_KEYS: usize = 64;
/// The name of a collection, or of a key in one.
pub const MAX_PROPERTY_NAME_LEN: usize = 256;
/// A value in a collection.
pub const MAX_PROPERTY_VALUE_LEN: usize = 4_096;
/// All of `properties` as JSON, in bytes: what goes into every webhook body and frame.
pub const MAX_PROPERTIES_BYTES: usize = 16_384;

/// Copies in one answer of `GET /api/v1/interactions/activities/{conversationId}` (whole
/// events only: one event's copies are never split).
pub const MAX_LISTED_COPIES: u64 = 1_000;
/// Bytes of stored JSON in one answer of that list (the first event is answered whole even
/// past it).
pub const MAX_LISTED_BYTES: u64 = 4 * 1024 * 1024;

/// Whether `s` is at most `max` characters long; records an OutOfRange violation naming the
/// limit at `property` otherwise.
pub fn check_len(property: &str, s: &str, max: usize, v: &mut Violations) -> bool {
    // Every char is at least one byte: a short string needs no counting.
    if s.len() <= max || s.chars().count() <= max {
        return true;
    }
    v.push(Violation::out_of_range(
        property,
        &format!("must be at most {max} characters long"),
    ));
    false
}

/// Whether `value` is at most `max` bytes as JSON; records an OutOfRange violation naming the
/// limit at `property` otherwise.
pub fn check_json_bytes(property: &str, value: &Value, max: usize, v: &mut Violations) -> bool {
    let bytes = json_len(value);
    if bytes <= max {
        return true;
    }
    v.push(Violation::out_of_range(
        property,
        &format!("must be at most {max} bytes as JSON (it has {bytes})"),
    ));
    false
}

/// The length in bytes of `value` written as compact JSON, without building the text.
pub fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a Value into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// The length in bytes of `map` written as compact JSON, without copying it.
pub fn object_json_len(map: &Map<String, Value>) -> usize {
    let members: usize = map
        .iter()
        .map(|(name, value)| json_len(name.as_str()) + 1 + json_len(value))
        .sum();
    2 + map.len().saturating_sub(1) + members
}

/// Checks every string nested in `value` (at `path`) against [`MAX_OTHER_TEXT_LEN`]: the
/// properties of a message that the model keeps as given.
pub fn check_other_strings(path: &str, value: &Value, v: &mut Violations) {
    match value {
        Value::String(s) => {
            check_len(path, s, MAX_OTHER_TEXT_LEN, v);
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_other_strings(&format!("{path}[{i}]"), item, v);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                check_len(&json::path(path, key), key, MAX_OTHER_TEXT_LEN, v);
                check_other_strings(&json::path(path, key), item, v);
            }
        }
        _ => {}
    }
}

/// Checks a conversation's `properties` (at `path`) against their caps: at most
/// [`MAX_PROPERTY_COLLECTIONS`] collections of at most [`MAX_PROPERTY_KEYS`] keys, names of
/// at most [`MAX_PROPERTY_NAME_LEN`] and values of at most [`MAX_PROPERTY_VALUE_LEN`]
/// characters, at most [`MAX_PROPERTIES_BYTES`] bytes as JSON in all. Called on what would be
/// stored (given properties merged into the stored ones), so that repeated establishes cannot
/// grow them past a cap.
pub fn check_properties(path: &str, properties: &Map<String, Value>, v: &mut Violations) {
    let before = v.len();
    if properties.len() > MAX_PROPERTY_COLLECTIONS {
        v.push(Violation::out_of_range(
            path,
            &format!(
                "must hold at most {MAX_PROPERTY_COLLECTIONS} collections (it would hold {})",
                properties.len()
            ),
        ));
    }
    for (name, collection) in properties {
        let at = json::path(path, name);
        check_len(&at, name, MAX_PROPERTY_NAME_LEN, v);
        let Some(entries) = collection.as_object() else {
            continue;
        };
        if entries.len() > MAX_PROPERTY_KEYS {
            v.push(Violation::out_of_range(
                &at,
                &format!(
                    "must hold at most {MAX_PROPERTY_KEYS} keys (it would hold {})",
                    entries.len()
                ),
            ));
        }
        for (key, value) in entries {
            let key_at = json::path(&at, key);
            check_len(&key_at, key, MAX_PROPERTY_NAME_LEN, v);
            if let Some(s) = value.as_str() {
                check_len(&key_at, s, MAX_PROPERTY_VALUE_LEN, v);
            }
        }
    }
    if v.len() > before {
        return;
    }
    let total = object_json_len(properties);
    if total > MAX_PROPERTIES_BYTES {
        let largest = properties
            .iter()
            .max_by_key(|(_, c)| json_len(c))
            .map(|(name, _)| name.as_str())
            .unwrap_or_default();
        v.push(Violation::out_of_range(
            path,
            &format!(
                "must be at most {MAX_PROPERTIES_BYTES} bytes as JSON (it would be {total}; \
                 its largest collection is '{largest}')"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn messages(p: &Map<String, Value>) -> Vec<String> {
        let mut v = Violations::default();
        check_properties("properties", p, &mut v);
        v.0.into_iter().map(|x| x.message).collect()
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let mut v = Violations::default();
        assert!(check_len("t", &"é".repeat(10), 10, &mut v));
        assert!(!check_len("t", &"é".repeat(11), 10, &mut v));
        assert_eq!(
            v.0[0].message,
            "Property 't' must be at most 10 characters long."
        );
    }

    #[test]
    fn json_len_is_the_compact_text_length() {
        let value = json!({"a": ["é", 1, null], "b": {"c": "\"q\""}});
        assert_eq!(json_len(&value), value.to_string().len());
    }

    #[test]
    fn properties_at_every_cap_are_accepted() {
        let mut p = Map::new();
        for c in 0..MAX_PROPERTY_COLLECTIONS {
            p.insert(format!("c{c}"), json!({}));
        }
        assert!(messages(&p).is_empty());
        let keys: Map<String, Value> = (0..MAX_PROPERTY_KEYS)
            .map(|k| (format!("k{k}"), json!("v")))
            .collect();
        assert!(messages(&props(json!({ "c": keys }))).is_empty());
        let long = props(
            json!({ "c": { "k".repeat(MAX_PROPERTY_NAME_LEN): "é".repeat(MAX_PROPERTY_VALUE_LEN) } }),
        );
        assert!(messages(&long).is_empty());
    }

    #[test]
    fn each_cap_names_its_limit_and_place() {
        let mut p = Map::new();
        for c in 0..=MAX_PROPERTY_COLLECTIONS {
            p.insert(format!("c{c}"), json!({}));
        }
        assert_eq!(
            messages(&p),
            ["Property 'properties' must hold at most 32 collections (it would hold 33)."]
        );
        let keys: Map<String, Value> = (0..=MAX_PROPERTY_KEYS)
            .map(|k| (format!("k{k}"), json!("v")))
            .collect();
        assert_eq!(
            messages(&props(json!({ "crm": keys }))),
            ["Property 'properties.crm' must hold at most 64 keys (it would hold 65)."]
        );
        assert_eq!(
            messages(&props(
                json!({ "crm": { "bio": "x".repeat(MAX_PROPERTY_VALUE_LEN + 1) } })
            )),
            ["Property 'properties.crm.bio' must be at most 4096 characters long."]
        );
        let big: Map<String, Value> = (0..5)
            .map(|k| (format!("k{k}"), json!("x".repeat(4_000))))
            .collect();
        let got = messages(&props(json!({ "small": {"a": "b"}, "big": big })));
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("Property 'properties' must be at most 16384 bytes as JSON"),
            "{got:?}"
        );
        assert!(got[0].contains("'big'"), "{got:?}");
    }

    #[test]
    fn the_total_counts_the_json_exactly() {
        let with = |fill: usize| {
            let mut c = Map::new();
            for k in 0..4 {
                let len = fill / 4 + usize::from(k < fill % 4);
                c.insert(format!("k{k}"), json!("x".repeat(len)));
            }
            props(json!({ "c": c, "d": {} }))
        };
        let overhead = json_len(&Value::Object(with(0)));
        assert_eq!(object_json_len(&with(0)), overhead);
        let exact = with(MAX_PROPERTIES_BYTES - overhead);
        assert_eq!(
            json_len(&Value::Object(exact.clone())),
            MAX_PROPERTIES_BYTES
        );
        assert_eq!(object_json_len(&exact), MAX_PROPERTIES_BYTES);
        assert!(messages(&exact).is_empty());
        assert_eq!(
            messages(&with(MAX_PROPERTIES_BYTES - overhead + 1)),
            [
                "Property 'properties' must be at most 16384 bytes as JSON (it would be 16385; \
              its largest collection is 'c')."
            ]
        );
    }
}
