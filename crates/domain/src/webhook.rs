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
    /// To a provider channel through its adapter (SPEC 7.4).
    Provider,
}

impl DeliveryKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::System => "system",
            Self::Provider => "provider",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Direct, Self::System, Self::Provider]
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
        // A provider delivery has no webhook body; if one is ever asked for, it is Direct's.
        DeliveryKind::Direct | DeliveryKind::Provider => {
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

/// What a special-purpose range means for a webhook: no webhook is sent there, or the range
/// carries an IPv4 address that is judged instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRule {
    /// Not globally reachable: refused.
    Refused,
    /// The IPv4 address in the last 32 bits decides (IPv4-mapped, -compatible, -translated,
    /// NAT64 well-known prefix).
    EmbedsLast32,
    /// 6to4: the IPv4 address in bits 16..48 decides.
    EmbedsSixToFour,
}

/// One special-purpose IPv4 range that no webhook is sent to.
#[derive(Clone, Copy, Debug)]
pub struct V4Range {
    pub net: Ipv4Addr,
    pub len: u8,
    pub name: &'static str,
}

/// One special-purpose IPv6 range and its rule.
#[derive(Clone, Copy, Debug)]
pub struct V6Range {
    pub net: Ipv6Addr,
    pub len: u8,
    pub rule: RangeRule,
    pub name: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, name: &'static str) -> V4Range {
    V4Range {
        net: Ipv4Addr::new(a, b, c, d),
        len,
        name,
    }
}

const fn v6(s: [u16; 8], len: u8, rule: RangeRule, name: &'static str) -> V6Range {
    V6Range {
        net: Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
        rule,
        name,
    }
}

/// The IPv4 ranges that no webhook is sent to: every entry of the IANA IPv4 Special-Purpose
/// Address Registry that is not globally reachable, plus multicast. A range that holds a few
/// globally reachable anycast addresses (`192.0.0.9`, `192.0.0.10`) is refused whole: no
/// webhook receiver lives there.
#[rustfmt::skip]
pub const REFUSED_V4: &[V4Range] = &[
    v4(0, 0, 0, 0, 8, "this network"),
    v4(10, 0, 0, 0, 8, "private-use"),
    v4(100, 64, 0, 0, 10, "shared address space (CGNAT)"),
    v4(127, 0, 0, 0, 8, "loopback"),
    v4(169, 254, 0, 0, 16, "link-local"),
    v4(172, 16, 0, 0, 12, "private-use"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignments"),
    v4(192, 0, 2, 0, 24, "documentation (TEST-NET-1)"),
    v4(192, 88, 99, 0, 24, "deprecated 6to4 relay anycast"),
    v4(192, 168, 0, 0, 16, "private-use"),
    v4(198, 18, 0, 0, 15, "benchmarking"),
    v4(198, 51, 100, 0, 24, "documentation (TEST-NET-2)"),
    v4(203, 0, 113, 0, 24, "documentation (TEST-NET-3)"),
    v4(224, 0, 0, 0, 4, "multicast"),
    v4(240, 0, 0, 0, 4, "reserved"),
    v4(255, 255, 255, 255, 32, "limited broadcast"),
];

/// The IPv6 ranges that no webhook is sent to, or whose embedded IPv4 address decides: every
/// entry of the IANA IPv6 Special-Purpose Address Registry that is not globally reachable,
/// the deprecated site-local and IPv4-compatible ranges, multicast, and the forms that carry an
/// IPv4 address. `2001::/23` (Teredo, benchmarking, ORCHID and a few anycast services) is
/// refused whole. A `Refused` range wins over an embedding one that holds it (`::1` in `::/96`).
#[rustfmt::skip]
pub const SPECIAL_V6: &[V6Range] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, RangeRule::Refused, "unspecified"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, RangeRule::Refused, "loopback"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, RangeRule::EmbedsLast32, "IPv4-compatible (deprecated)"),
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, RangeRule::EmbedsLast32, "IPv4-mapped"),
    v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96, RangeRule::EmbedsLast32, "IPv4-translated"),
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, RangeRule::EmbedsLast32, "NAT64 well-known prefix"),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, RangeRule::Refused, "NAT64 local-use"),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, RangeRule::Refused, "discard-only"),
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, RangeRule::Refused, "dummy prefix"),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, RangeRule::Refused, "IETF protocol assignments (Teredo, benchmarking, ORCHID)"),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, RangeRule::Refused, "documentation"),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, RangeRule::EmbedsSixToFour, "6to4"),
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, RangeRule::Refused, "documentation"),
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, RangeRule::Refused, "segment routing SIDs"),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, RangeRule::Refused, "unique local"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, RangeRule::Refused, "link-local"),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, RangeRule::Refused, "site-local (deprecated)"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, RangeRule::Refused, "multicast"),
];

impl V4Range {
    /// Whether `ip` is in this range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.net) & mask
    }
}

impl V6Range {
    /// Whether `ip` is in this range.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.len))
            .unwrap_or(0);
        u128::from(ip) & mask == u128::from(self.net) & mask
    }
}

/// Whether a webhook may not be sent to this address (server-side request forgery): any
/// address of [`REFUSED_V4`] or of a `Refused` range of [`SPECIAL_V6`]; an IPv6 address that
/// embeds an IPv4 address (IPv4-mapped, -compatible, -translated, 6to4, NAT64) is judged by it.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            let mut embedded = None;
            for range in SPECIAL_V6.iter().filter(|r| r.contains(v6)) {
                match range.rule {
                    RangeRule::Refused => return true,
                    RangeRule::EmbedsLast32 => {
                        embedded = Some(Ipv4Addr::from(u128::from(v6) as u32));
                    }
                    RangeRule::EmbedsSixToFour => {
                        embedded = Some(Ipv4Addr::from((u128::from(v6) >> 80) as u32));
                    }
                }
            }
            embedded.is_some_and(forbidden_v4)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    REFUSED_V4.iter().any(|r| r.contains(ip))
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

    /// Each special-purpose range, by its CIDR: an address inside (refused) and one just
    /// outside (allowed). Where every neighbour is refused too (`240.0.0.0/4`, broadcast,
    /// `fec0::/10`, `ff00::/8`), the nearest allowed address. An embedding range's inside
    /// address embeds a refused IPv4 address.
    const RANGES: &[(&str, &str, &str)] = &[
        ("0.0.0.0/8", "0.1.2.3", "1.0.0.0"),
        ("10.0.0.0/8", "10.255.255.255", "11.0.0.0"),
        ("100.64.0.0/10", "100.64.0.1", "100.128.0.0"),
        ("127.0.0.0/8", "127.0.0.1", "128.0.0.0"),
        ("169.254.0.0/16", "169.254.169.254", "169.255.0.0"),
        ("172.16.0.0/12", "172.31.255.255", "172.32.0.0"),
        ("192.0.0.0/24", "192.0.0.170", "192.0.1.0"),
        ("192.0.2.0/24", "192.0.2.1", "192.0.3.0"),
        ("192.88.99.0/24", "192.88.99.1", "192.88.100.0"),
        ("192.168.0.0/16", "192.168.1.1", "192.169.0.0"),
        ("198.18.0.0/15", "198.19.255.255", "198.20.0.0"),
        ("198.51.100.0/24", "198.51.100.7", "198.51.101.0"),
        ("203.0.113.0/24", "203.0.113.9", "203.0.114.0"),
        ("224.0.0.0/4", "224.0.0.1", "223.255.255.255"),
        ("240.0.0.0/4", "240.0.0.1", "223.255.255.254"),
        ("255.255.255.255/32", "255.255.255.255", "223.255.255.253"),
        ("::/128", "::", "2606:4700::1"),
        ("::1/128", "::1", "2606:4700::2"),
        ("::/96", "::10.0.0.1", "::1:0:0"),
        ("::ffff:0.0.0.0/96", "::ffff:127.0.0.1", "::1:0:0:0"),
        ("::ffff:0:0:0/96", "::ffff:0:192.168.0.1", "::1:0:0:0:0"),
        ("64:ff9b::/96", "64:ff9b::169.254.169.254", "64:ff9b::1:0:0"),
        ("64:ff9b:1::/48", "64:ff9b:1::8.8.8.8", "64:ff9b:2::"),
        ("100::/64", "100::1", "100:0:0:2::"),
        ("100:0:0:1::/64", "100:0:0:1::1", "100:0:0:2::1"),
        (
            "2001::/23",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:200::1",
        ),
        ("2001:db8::/32", "2001:db8::1", "2001:db9::1"),
        ("2002::/16", "2002:a00:1::1", "2003::1"),
        ("3fff::/20", "3fff::1", "3fff:1000::1"),
        ("5f00::/16", "5f00::1", "5f01::1"),
        ("fc00::/7", "fd00::1", "fe00::1"),
        ("fe80::/10", "fe80::1", "fe7f:ffff::1"),
        ("fec0::/10", "fec0::1", "fe7f:ffff::2"),
        ("ff00::/8", "ff02::1", "fe7f:ffff::3"),
    ];

    fn cidr(net: String, len: u8) -> String {
        format!("{net}/{len}")
    }

    #[test]
    fn every_special_purpose_range_is_refused_inside_and_allowed_just_outside() {
        let table: Vec<String> = REFUSED_V4
            .iter()
            .map(|r| cidr(r.net.to_string(), r.len))
            .chain(SPECIAL_V6.iter().map(|r| cidr(r.net.to_string(), r.len)))
            .collect();
        let listed: Vec<&str> = RANGES.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(
            table, listed,
            "the test lists each range of the table, in order"
        );
        for (range, inside, outside) in RANGES {
            let inside: IpAddr = inside.parse().unwrap();
            let outside: IpAddr = outside.parse().unwrap();
            assert!(is_forbidden_address(inside), "{range}: {inside} is refused");
            assert!(
                !is_forbidden_address(outside),
                "{range}: {outside} is allowed"
            );
        }
    }

    #[test]
    fn an_embedded_ipv4_address_decides_for_its_ipv6_form() {
        for (refused, allowed) in [
            ("::ffff:10.0.0.1", "::ffff:8.8.8.8"),
            ("::127.0.0.1", "::8.8.8.8"),
            ("::ffff:0:100.64.0.1", "::ffff:0:8.8.8.8"),
            ("2002:c0a8:101::1", "2002:808:808::1"),
            ("2002:c612:1::", "2002:5db8:d822::"),
            ("64:ff9b::10.1.2.3", "64:ff9b::93.184.216.34"),
            ("64:ff9b::224.0.0.1", "64:ff9b::1.1.1.1"),
        ] {
            assert!(is_forbidden_address(refused.parse().unwrap()), "{refused}");
            assert!(!is_forbidden_address(allowed.parse().unwrap()), "{allowed}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(!is_forbidden_address(public.parse().unwrap()), "{public}");
        }
    }
}
