//! Hubs (SPEC 3): a tenant's unit of routing, owning integrations.

use serde_json::Value;

use crate::error::{Violation, Violations};
use crate::ids::{HubId, TenantId};
use crate::json;
use crate::time::Millis;

pub use crate::limits::{MAX_DESCRIPTION_LEN, MAX_NAME_LEN};

/// Largest `closeDormantConversation`: the 32-bit integer of the seed API. It also keeps
/// "days in milliseconds" arithmetic far from overflowing.
pub const MAX_DORMANT_DAYS: i64 = i32::MAX as i64;

/// `statusId` of a hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HubStatus {
    /// 2000
    Active,
    /// 2002
    Paused,
}

impl HubStatus {
    pub const fn id(self) -> i32 {
        match self {
            Self::Active => 2000,
            Self::Paused => 2002,
        }
    }
    pub const fn from_id(id: i64) -> Option<Self> {
        match id {
            2000 => Some(Self::Active),
            2002 => Some(Self::Paused),
            _ => None,
        }
    }
}

/// A stored hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hub {
    pub id: HubId,
    pub tenant_id: TenantId,
    pub name: String,
    pub description: String,
    /// Days of idleness after which a conversation closes; 0 = never.
    pub close_dormant_conversation: i64,
    pub status: HubStatus,
    pub created: Millis,
    pub modified: Millis,
}

/// The writable fields of a hub, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubDraft {
    pub name: String,
    pub description: String,
    pub close_dormant_conversation: i64,
    pub status: HubStatus,
}

/// Validates a create body: `name`* (1..=200 chars), `description`* (at most
/// [`MAX_DESCRIPTION_LEN`] chars), `closeDormantConversation`
/// (days >= 0, default 0), `statusId` (2000 or 2002, default 2000). Unknown keys are ignored.
pub fn validate_create(body: &Value) -> Result<HubDraft, Violations> {
    let obj = json::object(body, "").map_err(Violations::from)?;
    let mut v = Violations::default();
    let name = json::string(obj, "", "name", true, &mut v);
    let description = json::text(obj, "", "description", true, MAX_DESCRIPTION_LEN, &mut v);
    let dormant = json::integer(obj, "", "closeDormantConversation", false, &mut v);
    let status = json::integer(obj, "", "statusId", false, &mut v);
    let name_given = name.is_some();
    let draft = HubDraft {
        name: name.unwrap_or_default(),
        description: description.unwrap_or_default(),
        close_dormant_conversation: dormant.unwrap_or(0),
        status: HubStatus::Active,
    };
    finish(draft, name_given, dormant, status, v)
}

/// Validates a partial update: only the given keys change.
pub fn validate_patch(body: &Value, current: &Hub) -> Result<HubDraft, Violations> {
    let obj = json::object(body, "").map_err(Violations::from)?;
    let mut v = Violations::default();
    let name = json::string(obj, "", "name", false, &mut v);
    let description = json::text(obj, "", "description", false, MAX_DESCRIPTION_LEN, &mut v);
    let dormant = json::integer(obj, "", "closeDormantConversation", false, &mut v);
    let status = json::integer(obj, "", "statusId", false, &mut v);
    let name_given = name.is_some();
    let draft = HubDraft {
        name: name.unwrap_or_else(|| current.name.clone()),
        description: description.unwrap_or_else(|| current.description.clone()),
        close_dormant_conversation: dormant.unwrap_or(current.close_dormant_conversation),
        status: current.status,
    };
    finish(draft, name_given, dormant, status, v)
}

/// Checks the ranges of the values read; `name_given` says whether a valid string name was read
/// (a name of the wrong type or format is already reported).
fn finish(
    mut draft: HubDraft,
    name_given: bool,
    dormant: Option<i64>,
    status: Option<i64>,
    mut v: Violations,
) -> Result<HubDraft, Violations> {
    if name_given {
        let len = draft.name.chars().count();
        if len == 0 || len > MAX_NAME_LEN || draft.name.trim().is_empty() {
            v.push(Violation::out_of_range(
                "name",
                &format!("must be 1 to {MAX_NAME_LEN} characters long"),
            ));
        }
    }
    if dormant.is_some_and(|d| !(0..=MAX_DORMANT_DAYS).contains(&d)) {
        v.push(Violation::out_of_range(
            "closeDormantConversation",
            "must be 0 to 2147483647 days",
        ));
    }
    if let Some(s) = status {
        match HubStatus::from_id(s) {
            Some(s) => draft.status = s,
            None => v.push(Violation::out_of_range(
                "statusId",
                "must be 2000 (Active) or 2002 (Paused)",
            )),
        }
    }
    v.into_result(draft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ViolationKind;
    use serde_json::json;

    #[test]
    fn create_reports_every_violation() {
        let err =
            validate_create(&json!({ "name": 5, "closeDormantConversation": -1, "statusId": 1 }))
                .unwrap_err();
        let kinds: Vec<_> = err
            .0
            .iter()
            .map(|v| (v.kind, v.property.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (ViolationKind::WrongType, "name"),
                (ViolationKind::Required, "description"),
                (ViolationKind::OutOfRange, "closeDormantConversation"),
                (ViolationKind::OutOfRange, "statusId"),
            ]
        );
    }

    #[test]
    fn create_defaults() {
        let d = validate_create(&json!({ "name": "Support", "description": "" })).unwrap();
        assert_eq!(d.status, HubStatus::Active);
        assert_eq!(d.close_dormant_conversation, 0);
    }

    #[test]
    fn a_bad_name_is_reported_once() {
        let err = validate_create(&json!({ "name": "\u{0}", "description": "x" })).unwrap_err();
        assert_eq!(
            err.0.iter().map(|v| v.kind).collect::<Vec<_>>(),
            [ViolationKind::InvalidFormat]
        );
    }

    #[test]
    fn dormancy_is_0_to_i32_max_days() {
        let ok = |d: i64| {
            validate_create(
                &json!({ "name": "n", "description": "", "closeDormantConversation": d }),
            )
            .is_ok()
        };
        assert!(ok(0) && ok(30) && ok(i64::from(i32::MAX)));
        assert!(!ok(-1) && !ok(i64::from(i32::MAX) + 1) && !ok(i64::MAX));
    }

    #[test]
    fn description_length_bounds() {
        let body = |n: usize| json!({ "name": "n", "description": "é".repeat(n) });
        assert!(validate_create(&body(MAX_DESCRIPTION_LEN)).is_ok());
        let err = validate_create(&body(1_000_000)).unwrap_err();
        assert_eq!(
            err.0,
            [Violation::out_of_range(
                "description",
                "must be at most 4096 characters long"
            )]
        );
        let hub = Hub {
            id: HubId::new(),
            tenant_id: TenantId::new(),
            name: "n".into(),
            description: String::new(),
            close_dormant_conversation: 0,
            status: HubStatus::Active,
            created: 0,
            modified: 0,
        };
        assert!(validate_patch(&json!({ "description": "x".repeat(4_097) }), &hub).is_err());
        assert!(validate_patch(&json!({ "description": "x".repeat(4_096) }), &hub).is_ok());
    }

    #[test]
    fn name_length_bounds() {
        assert!(validate_create(&json!({ "name": "", "description": "x" })).is_err());
        assert!(validate_create(&json!({ "name": "a".repeat(200), "description": "x" })).is_ok());
        assert!(validate_create(&json!({ "name": "a".repeat(201), "description": "x" })).is_err());
    }
}
