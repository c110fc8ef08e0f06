//! Time as an input: epoch milliseconds, formatted as RFC 3339 UTC on the way out.

use chrono::{SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Now, in epoch milliseconds.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

/// `2026-11-21T03:14:42.123Z`.
pub fn rfc3339(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => String::new(),
    }
}

/// Parses an RFC 3339 time into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let ms = 1_731_900_000_123;
        assert_eq!(rfc3339(ms), "2024-11-18T03:20:00.123Z");
        assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
    }
}
