//! What Messenger and WhatsApp share on Meta's Graph API (SPEC 7.8, 7.8a): the subscription
//! handshake, the `X-Hub-Signature-256` check, the Graph error body and how an error answer reads
//! as a reason or a provisioning refusal. It stays out of each channel's own formats.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::adapter::{config_str, Answer, InboundRequest, ProviderResponse, ProvisionError};

type HmacSha256 = Hmac<Sha256>;

/// The signature header (lowercase, as `InboundRequest::header` wants it).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// What the signature header's value begins with.
const SIGNATURE_PREFIX: &str = "sha256=";

/// The handshake's answer to a GET whose `hub.mode` is `subscribe` and whose `hub.verify_token`
/// equals the configuration's `webhookSecret` (compared in constant time): 200 `text/plain` with
/// `hub.challenge`. Anything else (no secret configured, no challenge) is `None`: 403/101.
pub fn handshake(configuration: &Map<String, Value>, query: &str) -> Option<Answer> {
    let mut mode = None;
    let mut token = None;
    let mut challenge = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "hub.mode" => &mut mode,
            "hub.verify_token" => &mut token,
            "hub.challenge" => &mut challenge,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v.into_owned());
        }
    }
    let secret = config_str(configuration, "webhookSecret").filter(|s| !s.is_empty());
    let (Some(secret), Some(token), Some(challenge)) = (secret, token, challenge) else {
        return None;
    };
    let token_ok: bool = secret.as_bytes().ct_eq(token.as_bytes()).into();
    if mode.as_deref() != Some("subscribe") || !token_ok {
        return None;
    }
    Some(Answer {
        status: 200,
        content_type: "text/plain",
        body: challenge,
    })
}

/// The app secret that signs the webhooks: the configuration's `appSecret`, else
/// `SWITCHBOARD_MESSENGER_APP_SECRET` (`app_secret`); empty strings count as absent.
pub fn app_secret<'a>(
    configuration: &'a Map<String, Value>,
    app_secret: Option<&'a str>,
) -> Option<&'a str> {
    config_str(configuration, "appSecret")
        .filter(|s| !s.is_empty())
        .or(app_secret.filter(|s| !s.is_empty()))
}

/// `sha256=` + lowercase hex(HMAC-SHA256(`secret`, `body`)): the header Meta sends.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("{SIGNATURE_PREFIX}{}", hex(&mac.finalize().into_bytes()))
}

/// Whether the request's `X-Hub-Signature-256` is the HMAC of its raw body with the app secret
/// (see [`app_secret`]), checked in constant time. No secret or no header: false.
pub fn verify(
    configuration: &Map<String, Value>,
    app_secret_env: Option<&str>,
    request: &InboundRequest<'_>,
) -> bool {
    let Some(secret) = app_secret(configuration, app_secret_env) else {
        return false;
    };
    let Some(given) = request
        .header(SIGNATURE_HEADER)
        .and_then(|h| h.trim().strip_prefix(SIGNATURE_PREFIX))
        .and_then(unhex)
    else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(request.body);
    mac.verify_slice(&given).is_ok()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Hex digits (either case) as bytes; `None` for an odd length or another character.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes = s.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Percent-encoding of path segments and query values (one rule for every adapter).
pub use super::adapter::percent_encode as encode;

/// A Graph API error body: `{ error: { message, type, code, error_subcode, error_data: {
/// details }, fbtrace_id } }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphError {
    pub message: String,
    pub kind: Option<String>,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    /// The error of a Graph answer's body, `None` when it carries no `error` object.
    pub fn read(body: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let e = v.get("error")?.as_object()?;
        let s = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let n = |v: Option<&Value>| {
            v.and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            })
        };
        let details = e
            .get("error_data")
            .and_then(|d| d.get("details"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Some(Self {
            message: s("message").unwrap_or_default(),
            kind: s("type"),
            code: n(e.get("code")),
            subcode: n(e.get("error_subcode")),
            details,
            fbtrace_id: s("fbtrace_id"),
        })
    }

    /// `message` (or the HTTP status's phrase when empty), then `details` when it adds to it.
    pub fn text(&self, status: u16) -> String {
        let message = if self.message.is_empty() {
            status_phrase(status).to_owned()
        } else {
            self.message.clone()
        };
        match &self.details {
            Some(d) if !message.contains(d.as_str()) => format!("{message}: {d}"),
            _ => message,
        }
    }

    /// `text`, then ` (<code>)` when there is a code.
    pub fn text_with_code(&self, status: u16) -> String {
        match self.code {
            Some(code) => format!("{} ({code})", self.text(status)),
            None => self.text(status),
        }
    }
}

/// The reason text of a failed Graph answer: the error's message (and details) with its code,
/// else the HTTP status's phrase. Never the body itself (it is not ours to echo).
pub fn reason_text(response: &ProviderResponse<'_>) -> String {
    match GraphError::read(response.body) {
        Some(e) => e.text_with_code(response.status),
        None => status_phrase(response.status).to_owned(),
    }
}

/// Whether HTTP `status` is always retried (SPEC 7.4.3): 408, 425, 429, 5xx.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || (500..600).contains(&status)
}

/// The usual phrase of an HTTP status, for answers without a Graph error.
pub fn status_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        425 => "Too Early",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        s if (200..300).contains(&s) => "unexpected answer",
        _ => "HTTP error",
    }
}

/// A provisioning answer that failed (a non-2xx status or a Graph error): `Unreachable` for
/// 408/425/429/5xx, else `Refused` with the Graph message and code.
pub fn provision_error(provider: &str, response: &ProviderResponse<'_>) -> ProvisionError {
    if retryable_status(response.status) {
        let reason = match GraphError::read(response.body) {
            Some(e) => e.text_with_code(response.status),
            None => format!("{} {}", response.status, status_phrase(response.status)),
        };
        return ProvisionError::Unreachable(format!("{provider} is unreachable: {reason}"));
    }
    refused(provider, &reason_text(response))
}

/// `"<Provider> refused the configuration: <reason>"`.
pub fn refused(provider: &str, reason: &str) -> ProvisionError {
    ProvisionError::Refused(format!("{provider} refused the configuration: {reason}"))
}

/// Whether a 2xx answer carries no Graph error.
pub fn is_success(response: &ProviderResponse<'_>) -> bool {
    (200..300).contains(&response.status) && GraphError::read(response.body).is_none()
}

/// A registration answer: 2xx with `{ success: true }`, else the refusal.
pub fn registered(provider: &str, response: &ProviderResponse<'_>) -> Result<(), ProvisionError> {
    if !is_success(response) {
        return Err(provision_error(provider, response));
    }
    let success = serde_json::from_slice::<Value>(response.body)
        .ok()
        .and_then(|v| v.get("success").and_then(Value::as_bool))
        .unwrap_or(false);
    if success {
        Ok(())
    } else {
        Err(refused(provider, "the registration was not confirmed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn request<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> InboundRequest<'a> {
        InboundRequest {
            url: "https://sb.example.com/channels/messenger/x",
            query: "",
            headers,
            body,
        }
    }

    #[test]
    fn signature_is_sha256_prefix_and_lowercase_hex_of_the_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_good_signature_verifies_and_a_changed_byte_does_not() {
        let body = br#"{"object":"page","entry":[]}"#;
        let c = config(json!({ "appSecret": "s3cret" }));
        let good = vec![(SIGNATURE_HEADER.to_owned(), signature(b"s3cret", body))];
        assert!(verify(&c, None, &request(&good, body)));
        // Upper-case hex is the same signature.
        let upper = vec![(
            SIGNATURE_HEADER.to_owned(),
            format!("sha256={}", good[0].1[7..].to_uppercase()),
        )];
        assert!(verify(&c, None, &request(&upper, body)));

        let mut changed = body.to_vec();
        changed[3] ^= 1;
        assert!(!verify(&c, None, &request(&good, &changed)));
        assert!(!verify(
            &config(json!({ "appSecret": "other" })),
            None,
            &request(&good, body)
        ));
        assert!(!verify(&c, None, &request(&[], body)));
        let bare = vec![(SIGNATURE_HEADER.to_owned(), good[0].1[7..].to_owned())];
        assert!(!verify(&c, None, &request(&bare, body)));
        let sha1 = vec![(
            SIGNATURE_HEADER.to_owned(),
            good[0].1.replace("sha256=", "sha1="),
        )];
        assert!(!verify(&c, None, &request(&sha1, body)));
        let odd = vec![(SIGNATURE_HEADER.to_owned(), format!("{}0", good[0].1))];
        assert!(!verify(&c, None, &request(&odd, body)));
    }

    #[test]
    fn the_server_app_secret_is_used_only_when_the_configuration_has_none() {
        let body = b"{}";
        let by_env = vec![(SIGNATURE_HEADER.to_owned(), signature(b"env", body))];
        let none = config(json!({}));
        assert!(verify(&none, Some("env"), &request(&by_env, body)));
        assert!(verify(
            &config(json!({ "appSecret": "" })),
            Some("env"),
            &request(&by_env, body)
        ));
        assert!(!verify(
            &config(json!({ "appSecret": "own" })),
            Some("env"),
            &request(&by_env, body)
        ));
        // No secret at all: nothing verifies, not even an HMAC with an empty key.
        let empty_key = vec![(SIGNATURE_HEADER.to_owned(), signature(b"", body))];
        assert!(!verify(&none, None, &request(&empty_key, body)));
    }

    #[test]
    fn handshake_answers_the_challenge_only_for_subscribe_and_the_right_token() {
        let c = config(json!({ "webhookSecret": "Tok3n" }));
        let ok = handshake(
            &c,
            "hub.mode=subscribe&hub.verify_token=Tok3n&hub.challenge=1158201444",
        );
        assert_eq!(
            ok,
            Some(Answer {
                status: 200,
                content_type: "text/plain",
                body: "1158201444".to_owned()
            })
        );
        // Percent-encoded values are decoded.
        let enc = handshake(
            &c,
            "hub.challenge=a%20b&hub.verify_token=Tok%33n&hub.mode=subscribe",
        );
        assert_eq!(enc.map(|a| a.body), Some("a b".to_owned()));
        for q in [
            "hub.mode=subscribe&hub.verify_token=tok3n&hub.challenge=1",
            "hub.mode=unsubscribe&hub.verify_token=Tok3n&hub.challenge=1",
            "hub.verify_token=Tok3n&hub.challenge=1",
            "hub.mode=subscribe&hub.challenge=1",
            "hub.mode=subscribe&hub.verify_token=Tok3n",
            "",
        ] {
            assert_eq!(handshake(&c, q), None, "{q}");
        }
        assert_eq!(
            handshake(
                &config(json!({})),
                "hub.mode=subscribe&hub.verify_token=&hub.challenge=1"
            ),
            None
        );
    }

    #[test]
    fn graph_errors_are_read_with_their_details() {
        let body = json!({ "error": {
            "message": "(#131047) Re-engagement message", "type": "OAuthException",
            "code": 131047, "error_subcode": 2494010,
            "error_data": { "messaging_product": "whatsapp", "details": "More than 24 hours have passed" },
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam" } })
        .to_string();
        let e = GraphError::read(body.as_bytes()).unwrap();
        assert_eq!(e.code, Some(131047));
        assert_eq!(e.subcode, Some(2494010));
        assert_eq!(e.kind.as_deref(), Some("OAuthException"));
        assert_eq!(e.fbtrace_id.as_deref(), Some("Az8or2yhqkZfEZ-_4Qn_Bam"));
        assert_eq!(
            e.text_with_code(400),
            "(#131047) Re-engagement message: More than 24 hours have passed (131047)"
        );
        assert_eq!(GraphError::read(b"<html>"), None);
        assert_eq!(GraphError::read(br#"{"success":true}"#), None);
    }

    #[test]
    fn provisioning_errors_split_unreachable_from_refused() {
        let body = br#"{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190}}"#;
        let r = |status, body| ProviderResponse {
            status,
            retry_after_ms: None,
            body,
        };
        assert_eq!(
            provision_error("Messenger", &r(400, body)),
            ProvisionError::Refused(
                "Messenger refused the configuration: Invalid OAuth access token. (190)".into()
            )
        );
        assert_eq!(
            provision_error("WhatsApp", &r(503, b"")),
            ProvisionError::Unreachable("WhatsApp is unreachable: 503 Service Unavailable".into())
        );
        assert!(registered("WhatsApp", &r(200, br#"{"success":true}"#)).is_ok());
        assert!(matches!(
            registered("WhatsApp", &r(200, br#"{"success":false}"#)),
            Err(ProvisionError::Refused(_))
        ));
        assert!(matches!(
            registered("WhatsApp", &r(429, b"")),
            Err(ProvisionError::Unreachable(_))
        ));
    }
}
