//! Reading loosely typed JSON bodies property by property, collecting every violation.

use serde_json::{Map, Value};

use crate::error::{Violation, Violations};

/// The body as an object, or a violation saying it is not one.
pub fn object<'a>(body: &'a Value, property: &str) -> Result<&'a Map<String, Value>, Violation> {
    body.as_object().ok_or_else(|| {
        if property.is_empty() {
            Violation::new(
                crate::ViolationKind::InvalidBody,
                "",
                "The body must be a JSON object.",
            )
        } else {
            Violation::wrong_type(property, "an object")
        }
    })
}

/// Joins a prefix and a key into a dotted property path.
pub fn path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A property read from an object, with what went wrong recorded in `v`.
/// `null` counts as absent.
pub fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|x| !x.is_null())
}

/// A string property; `None` when absent (recording Required if `required`), of the wrong type
/// (WrongType), or holding a NUL character (InvalidFormat: PostgreSQL cannot store one in text, so
/// both backends refuse it alike rather than one failing with a 500).
pub fn string(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
    required: bool,
    v: &mut Violations,
) -> Option<String> {
    match field(obj, key) {
        None => {
            if required {
                v.push(Violation::required(&path(prefix, key)));
            }
            None
        }
        Some(Value::String(s)) if s.contains('\0') => {
            v.push(Violation::invalid_format(
                &path(prefix, key),
                "must not contain NUL characters",
            ));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            v.push(Violation::wrong_type(&path(prefix, key), "a string"));
            None
        }
    }
}

/// A free-text string property: [`string`], then at most `max` characters
/// ([`crate::limits::check_len`], OutOfRange past it).
pub fn text(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
    required: bool,
    max: usize,
    v: &mut Violations,
) -> Option<String> {
    let s = string(obj, prefix, key, required, v)?;
    crate::limits::check_len(&path(prefix, key), &s, max, v).then_some(s)
}

/// An integer property (a JSON number without fraction).
pub fn integer(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
    required: bool,
    v: &mut Violations,
) -> Option<i64> {
    match field(obj, key) {
        None => {
            if required {
                v.push(Violation::required(&path(prefix, key)));
            }
            None
        }
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(_) => {
            v.push(Violation::wrong_type(&path(prefix, key), "an integer"));
            None
        }
    }
}

/// A boolean property.
pub fn boolean(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
    required: bool,
    v: &mut Violations,
) -> Option<bool> {
    match field(obj, key) {
        None => {
            if required {
                v.push(Violation::required(&path(prefix, key)));
            }
            None
        }
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            v.push(Violation::wrong_type(&path(prefix, key), "a boolean"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ViolationKind;
    use serde_json::json;

    #[test]
    fn string_refuses_nul_characters() {
        let body = json!({ "name": "a\u{0}b", "ok": "fine" });
        let obj = object(&body, "").unwrap();
        let mut v = Violations::default();
        assert_eq!(string(obj, "", "name", true, &mut v), None);
        assert_eq!(string(obj, "", "ok", true, &mut v).as_deref(), Some("fine"));
        assert_eq!(
            v.0.iter()
                .map(|x| (x.kind, x.property.as_str()))
                .collect::<Vec<_>>(),
            [(ViolationKind::InvalidFormat, "name")]
        );
    }
}
