//! Violations of the model's rules, all reported at once: a typed kind, the property's dotted
//! path and a sentence. The SPEC 1 code and status of each kind are decided by the API
//! (`api/src/error.rs`), not here.

use std::fmt;

/// What kind of rule a property broke; the API maps each kind to one code of SPEC 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// A required query parameter is missing.
    MissingParameter,
    /// A parameter or property has an invalid format.
    InvalidFormat,
    /// A value is not a valid UUID.
    InvalidUuid,
    /// A value is not supported or out of range.
    OutOfRange,
    /// The body is missing or not valid JSON.
    InvalidBody,
    /// A required property is missing.
    Required,
    /// A property has the wrong type.
    WrongType,
    /// A property is not supported (unknown key).
    Unsupported,
    /// A collection must contain one or more elements.
    Empty,
    /// An activity must contain exactly one of `message` or `event`.
    MessageOrEvent,
}

/// One broken rule: its kind, the property (dotted path, e.g. `configuration.accountSid`) and a
/// sentence for the API user, without the `(code: …)` suffix, which the API adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub property: String,
    pub message: String,
}

impl Violation {
    pub fn new(
        kind: ViolationKind,
        property: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            property: property.into(),
            message: message.into(),
        }
    }

    /// `Property 'x' is required.`
    pub fn required(property: &str) -> Self {
        Self::new(
            ViolationKind::Required,
            property,
            format!("Property '{property}' is required."),
        )
    }

    /// `Property 'x' must be a <expected>.`
    pub fn wrong_type(property: &str, expected: &str) -> Self {
        Self::new(
            ViolationKind::WrongType,
            property,
            format!("Property '{property}' must be {expected}."),
        )
    }

    /// `Property 'x' is not supported.`
    pub fn unsupported(property: &str) -> Self {
        Self::new(
            ViolationKind::Unsupported,
            property,
            format!("Property '{property}' is not supported."),
        )
    }

    /// `Property 'x' <why>.`, out of range.
    pub fn out_of_range(property: &str, why: &str) -> Self {
        Self::new(
            ViolationKind::OutOfRange,
            property,
            format!("Property '{property}' {why}."),
        )
    }

    /// `Property 'x' <why>.`, an invalid format.
    pub fn invalid_format(property: &str, why: &str) -> Self {
        Self::new(
            ViolationKind::InvalidFormat,
            property,
            format!("Property '{property}' {why}."),
        )
    }

    /// `Property 'x' must contain one or more elements.`
    pub fn empty(property: &str) -> Self {
        Self::new(
            ViolationKind::Empty,
            property,
            format!("Property '{property}' must contain one or more elements."),
        )
    }
}

/// Every violation found in one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    pub fn push(&mut self, v: Violation) {
        self.0.push(v);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// `Ok(value)` when nothing was violated.
    pub fn into_result<T>(self, value: T) -> Result<T, Violations> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Violation> for Violations {
    fn from(v: Violation) -> Self {
        Self(vec![v])
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msgs: Vec<&str> = self.0.iter().map(|v| v.message.as_str()).collect();
        f.write_str(&msgs.join(" "))
    }
}

impl std::error::Error for Violations {}
