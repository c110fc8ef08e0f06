//! Webhook delivery rules (SPEC 5.5): the Direct and System body (the one builder, used by the
//! webhook worker, the live `activity` frames and `resume` alike), the retry schedule with
//! jitter and `Retry-After`, the Standard Webhooks signature with the asymmetric `v1a` scheme,
//! what an answer means, and the guard against webhook URLs that resolve to private addresses.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ids::{ConversationId, HubId, IntegrationId, TenantId};
use crate::keys;
use crate::time::Millis;

/// The longest wait between two attempts, and the cap of a `Retry-After`: 24 hours.
pub const MAX_DELAY_MS: Millis = 24 * 3_600_000;

/// Jitter of non-zero delays: ±10 %.
pub const JITTER: f64 = 0.10;

/// The delays of SPEC 5.5: the first attempt at once, then 2, 4, 6, 8, 10 minutes, 30 minutes,
/// 2, 6, 12 and 24 hours after the end of the previous attempt (11 attempts).
pub const DEFAULT_SCHEDULE_MS: [Millis; 11] = [
    0, 120_000, 240_000, 360_000, 480_000, 600_000, 1_800_000, 7_200_000, 21_600_000, 43_200_000,
    86_400_000,
];

/// A retry schedule: one delay per attempt, the first before the first attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    delays: Vec<Millis>,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            delays: DEFAULT_SCHEDULE_MS.to_vec(),
        }
    }
}

impl Schedule {
    /// A schedule of these delays (at least one; each clamped to 0..=24 h).
    pub fn new(delays: impl IntoIterator<Item = Millis>) -> Option<Self> {
        let delays: Vec<Millis> = delays
            .into_iter()
            .map(|d| d.clamp(0, MAX_DELAY_MS))
            .collect();
        (!delays.is_empty()).then_some(Self { delays })
    }

    /// How many attempts the schedule allows.
    pub fn attempts(&self) -> usize {
        self.delays.len()
    }

    /// The delay before the first attempt.
    pub fn first_delay(&self) -> Millis {
        self.delays.first().copied().unwrap_or(0)
    }

    /// The wait after the `attempts_made`-th failed attempt before the next one, or `None`
    /// when the schedule is exhausted. `jitter` in -1.0..=1.0 scales ±10 % of a non-zero delay;
    /// a `Retry-After` (ms) makes the wait the longer of the two, at most 24 h.
    pub fn next_delay(
        &self,
        attempts_made: usize,
        retry_after: Option<Millis>,
        jitter: f64,
    ) -> Option<Millis> {
        let base = *self.delays.get(attempts_made)?;
        let jittered = if base == 0 {
            0
        } else {
            let j = jitter.clamp(-1.0, 1.0) * JITTER;
            ((base as f64) * (1.0 + j)).round() as Millis
        };
        let wait = match retry_after {
            Some(r) => jittered.max(r),
            None => jittered,
        };
        Some(wait.clamp(0, MAX_DELAY_MS))
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not yet answered 2xx; attempted again at `nextAttemptAt`.
    Pending,
    /// Answered 2xx.
    Succeeded,
    /// Given up: the schedule was exhausted, or the receiver answered 410 Gone.
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// The body a delivery carries: one `activity` (Direct) or `activities` (System).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    Direct,
    System,
}

impl DeliveryKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Direct, Self::System]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Whom a delivery body is about: the fields before its properties and activities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyHead {
    pub hub_id: HubId,
    pub tenant_id: TenantId,
    /// The recipient integration.
    pub integration_id: IntegrationId,
    pub conversation_id: ConversationId,
}

/// Appends the body of SPEC 5.5 to `out`: `{ hubId, tenantId, integrationId, conversationId,
/// conversationProperties, activity }` for Direct (the first of `activities`, `null` when there
/// is none), `activities: [...]` for System. `properties` and `activities` are JSON text (as
/// stored), spliced as they are, so no copy is parsed or serialized again.
pub fn write_body<S: AsRef<str>>(
    out: &mut String,
    kind: DeliveryKind,
    head: &BodyHead,
    properties: &str,
    activities: &[S],
) {
    out.reserve(
        200 + properties.len()
            + activities
                .iter()
                .map(|a| a.as_ref().len() + 1)
                .sum::<usize>(),
    );
    // Writing to a `String` cannot fail.
    let _ = write!(
        out,
        "{{\"hubId\":\"{}\",\"tenantId\":\"{}\",\"integrationId\":\"{}\",\"conversationId\":\"{}\",\"conversationProperties\":",
        head.hub_id, head.tenant_id, head.integration_id, head.conversation_id
    );
    out.push_str(properties);
    match kind {
        DeliveryKind::Direct => {
            out.push_str(",\"activity\":");
            out.push_str(activities.first().map_or("null", AsRef::as_ref));
        }
        DeliveryKind::System => {
            out.push_str(",\"activities\":[");
            for (i, a) in activities.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(a.as_ref());
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// The body of SPEC 5.5 as a new string (see [`write_body`]).
pub fn body<S: AsRef<str>>(
    kind: DeliveryKind,
    head: &BodyHead,
    properties: &str,
    activities: &[S],
) -> String {
    let mut out = String::new();
    write_body(&mut out, kind, head, properties, activities);
    out
}

/// What an HTTP answer means for a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 410 Gone: stop, fail the delivery, pause the integration.
    Gone,
    /// Anything else: retry on the schedule.
    Retry,
}

/// The verdict on an HTTP status.
pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        _ => Verdict::Retry,
    }
}

/// Parses a `Retry-After` header: delay-seconds, or an HTTP date relative to `now` (ms).
pub fn parse_retry_after(value: &str, now: Millis) -> Option<Millis> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return Some(secs.max(0).saturating_mul(1000).min(MAX_DELAY_MS));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some((at.timestamp_millis() - now).clamp(0, MAX_DELAY_MS))
}

/// The signed content of Standard Webhooks: `{webhook-id}.{webhook-timestamp}.{body}`.
pub fn signed_content(webhook_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(webhook_id.len() + body.len() + 24);
    m.extend_from_slice(webhook_id.as_bytes());
    m.push(b'.');
    m.extend_from_slice(timestamp.to_string().as_bytes());
    m.push(b'.');
    m.extend_from_slice(body);
    m
}

/// The `webhook-signature` value: `v1a,` + base64 Ed25519 signature of the signed content by
/// the integration's private key (hex); `None` when the key is not a valid key.
pub fn signature(
    private_hex: &str,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    keys::sign_b64(private_hex, &signed_content(webhook_id, timestamp, body))
        .map(|s| format!("v1a,{s}"))
}

/// Whether a receiver would accept `header` (space-separated `v1a,…` signatures) for this
/// content with the public key (hex).
pub fn verify_signature(
    public_hex: &str,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let content = signed_content(webhook_id, timestamp, body);
    header
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1a,"))
        .any(|sig| keys::verify_b64(public_hex, &content, sig))
}

/// Whether a webhook may not be sent to this address (server-side request forgery): loopback,
/// private, link-local, unspecified, shared (CGNAT), broadcast, documentation, or multicast,
/// and the IPv6 equivalents (unique local, link-local, IPv4-mapped forms of the above).
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 of any IPv4
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64/10
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

/// `Ipv6Addr` of an IPv4 address, for tests and callers that normalize.
pub fn mapped(ip: Ipv4Addr) -> Ipv6Addr {
    ip.to_ipv6_mapped()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_the_json_of_spec_5_5() {
        let head = BodyHead {
            hub_id: HubId::new(),
            tenant_id: TenantId::new(),
            integration_id: IntegrationId::new(),
            conversation_id: ConversationId::new(),
        };
        let props = r#"{"profile":{"email":"a@b.c"}}"#;
        let parse = |s: String| serde_json::from_str::<serde_json::Value>(&s).unwrap();
        let expected = |extra: (&str, serde_json::Value)| {
            let mut v = serde_json::json!({
                "hubId": head.hub_id,
                "tenantId": head.tenant_id,
                "integrationId": head.integration_id,
                "conversationId": head.conversation_id,
                "conversationProperties": {"profile": {"email": "a@b.c"}},
            });
            v[extra.0] = extra.1;
            v
        };
        let one = body(DeliveryKind::Direct, &head, props, &[r#"{"a":1}"#]);
        assert_eq!(
            parse(one),
            expected(("activity", serde_json::json!({"a": 1})))
        );
        let none = body::<&str>(DeliveryKind::Direct, &head, props, &[]);
        assert_eq!(parse(none), expected(("activity", serde_json::Value::Null)));
        let two = body(DeliveryKind::System, &head, props, &["1", "2"]);
        assert_eq!(
            parse(two),
            expected(("activities", serde_json::json!([1, 2])))
        );
        let empty = body::<&str>(DeliveryKind::System, &head, props, &[]);
        assert_eq!(
            parse(empty),
            expected(("activities", serde_json::json!([])))
        );
        let mut out = String::from("[");
        write_body(&mut out, DeliveryKind::Direct, &head, "{}", &["2"]);
        out.push(']');
        assert_eq!(parse(out)[0]["activity"], 2, "appends to what is there");
    }

    #[test]
    fn the_default_schedule_is_spec_5_5() {
        let s = Schedule::default();
        assert_eq!(s.attempts(), 11);
        assert_eq!(s.first_delay(), 0);
        assert_eq!(s.next_delay(1, None, 0.0), Some(120_000));
        assert_eq!(s.next_delay(10, None, 0.0), Some(86_400_000));
        assert_eq!(
            s.next_delay(11, None, 0.0),
            None,
            "exhausted after 11 attempts"
        );
    }

    #[test]
    fn jitter_is_ten_percent_of_non_zero_delays_and_retry_after_wins_when_longer() {
        let s = Schedule::new([0, 1000, 60_000]).unwrap();
        assert_eq!(s.next_delay(0, None, 1.0), Some(0), "no jitter on zero");
        assert_eq!(s.next_delay(1, None, 1.0), Some(1100));
        assert_eq!(s.next_delay(1, None, -1.0), Some(900));
        assert_eq!(s.next_delay(1, None, 7.0), Some(1100), "clamped");
        assert_eq!(s.next_delay(1, Some(5000), 0.0), Some(5000));
        assert_eq!(s.next_delay(2, Some(5000), 0.0), Some(60_000));
        assert_eq!(
            s.next_delay(1, Some(MAX_DELAY_MS * 3), 0.0),
            Some(MAX_DELAY_MS)
        );
        assert!(Schedule::new([]).is_none());
    }

    #[test]
    fn answers_have_verdicts() {
        assert_eq!(verdict(200), Verdict::Delivered);
        assert_eq!(verdict(204), Verdict::Delivered);
        assert_eq!(verdict(299), Verdict::Delivered);
        assert_eq!(verdict(301), Verdict::Retry);
        assert_eq!(verdict(410), Verdict::Gone);
        assert_eq!(verdict(500), Verdict::Retry);
        assert_eq!(verdict(429), Verdict::Retry);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after("120", 0), Some(120_000));
        assert_eq!(parse_retry_after("-5", 0), Some(0));
        assert_eq!(parse_retry_after("999999999", 0), Some(MAX_DELAY_MS));
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2026 07:28:00 GMT")
            .unwrap()
            .timestamp_millis();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:28:30 GMT", now),
            Some(30_000)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn signatures_verify_with_the_public_key_only() {
        let pair = keys::generate();
        let sig = signature(&pair.private, "msg_1", 1_700_000_000, b"{}").unwrap();
        assert!(sig.starts_with("v1a,"));
        assert!(verify_signature(
            &pair.public,
            "msg_1",
            1_700_000_000,
            b"{}",
            &sig
        ));
        assert!(!verify_signature(
            &pair.public,
            "msg_1",
            1_700_000_001,
            b"{}",
            &sig
        ));
        assert!(!verify_signature(
            &pair.public,
            "msg_2",
            1_700_000_000,
            b"{}",
            &sig
        ));
        assert!(!verify_signature(
            &pair.public,
            "msg_1",
            1_700_000_000,
            b"{ }",
            &sig
        ));
        let other = keys::generate();
        assert!(!verify_signature(
            &other.public,
            "msg_1",
            1_700_000_000,
            b"{}",
            &sig
        ));
        assert_eq!(signed_content("a", 5, b"b"), b"a.5.b".to_vec());
    }

    #[test]
    fn private_addresses_are_forbidden_and_public_ones_are_not() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_forbidden_address(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_forbidden_address(good.parse().unwrap()), "{good}");
        }
        assert!(is_forbidden_address(IpAddr::V6(mapped(
            Ipv4Addr::LOCALHOST
        ))));
    }
}
