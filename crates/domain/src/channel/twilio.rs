//! The TwilioSMS adapter (SPEC 7.7): form-encoded inbound calls signed with HMAC-SHA1, outbound
//! through the Messages resource, the number's SMS webhook pointed at Switchboard.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha1::Sha1;

use super::adapter::{
    config_str, Adapter, Answer, HttpMethod, Inbound, InboundError, InboundItem, InboundRequest,
    MediaLinker, Outcome, ProviderAuth, ProviderRequest, ProviderResponse, ProvisionError,
    Rendered, RequestBody, SendContext,
};
use super::parts::{self, MediaKind};
use super::render;
use crate::activity::{Message, Payload};

type HmacSha1 = Hmac<Sha1>;

/// Characters of `Body` per part **[unconfirmed: SPEC 7.7 limit]**.
pub const TEXT_LIMIT: usize = 1600;

/// The signature header (lowercase).
const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Twilio's error code for refused credentials ("Authenticate").
const CODE_AUTHENTICATE: i64 = 20003;

/// The TwilioSMS adapter.
pub struct Twilio;

/// `X-Twilio-Signature` of a call to `url` with POST parameters `params`:
/// base64(HMAC-SHA1(auth token, url + every parameter sorted by name (byte order), each as name
/// then value, no separators)). Repeated names are ordered by value.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(
        signature_mac(auth_token, url, params)
            .finalize()
            .into_bytes(),
    )
}

fn signature_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    // HMAC takes keys of any length.
    let mut mac =
        HmacSha1::new_from_slice(auth_token.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// `url` with its scheme's default port (443 for https, 80 for http) removed when it is given,
/// added when no port is given; `None` for other schemes or ports. Twilio's SDKs accept a
/// signature over either form **[unconfirmed: port rule from SDK behaviour]**.
pub fn default_port_variant(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_len);
    // The host part begins after any userinfo; an IPv6 host is bracketed.
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    let port_at = host_port
        .rfind(':')
        .filter(|&i| !host_port[i..].contains(']'));
    let authority = match port_at {
        Some(i) if &host_port[i + 1..] == default => {
            format!("{}{}", &authority[..host_start], &host_port[..i])
        }
        Some(_) => return None,
        None => format!("{authority}:{default}"),
    };
    Some(format!("{scheme}://{authority}{tail}"))
}

/// The decoded pairs of a form body, in order.
fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A path segment, percent-encoded.
use super::adapter::percent_encode as segment;

fn auth(configuration: &Map<String, Value>) -> ProviderAuth {
    ProviderAuth::Basic {
        user: config_str(configuration, "accountSid")
            .unwrap_or_default()
            .to_owned(),
        password: config_str(configuration, "authToken")
            .unwrap_or_default()
            .to_owned(),
    }
}

/// `/2010-04-01/Accounts/{accountSid}/IncomingPhoneNumbers/{numberSid}.json`.
fn number_path(configuration: &Map<String, Value>) -> String {
    format!(
        "/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{}.json",
        segment(config_str(configuration, "accountSid").unwrap_or_default()),
        segment(config_str(configuration, "numberSid").unwrap_or_default()),
    )
}

/// What a Twilio error answer says: `message` and `code` of `{ code, message, more_info,
/// status }`, else the raw body (cut to 200 chars).
fn error_of(body: &[u8]) -> (String, Option<i64>) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v.get("code").and_then(Value::as_i64);
    let message = match v.get("message").and_then(Value::as_str) {
        Some(m) => m.to_owned(),
        None => {
            let raw = String::from_utf8_lossy(body);
            let raw = raw.trim();
            if raw.is_empty() {
                "no reason given".to_owned()
            } else {
                raw.chars().take(200).collect()
            }
        }
    };
    (message, code)
}

/// `"Twilio <status>: <message> (<code>)"` (no code: without the parenthesis).
fn reason(status: u16, message: &str, code: Option<i64>) -> String {
    match code {
        Some(c) => format!("Twilio {status}: {message} ({c})"),
        None => format!("Twilio {status}: {message}"),
    }
}

/// The provisioning error of a non-2xx answer.
fn provision_error(response: &ProviderResponse<'_>) -> ProvisionError {
    let (message, code) = error_of(response.body);
    let status = response.status;
    if status == 429 || status >= 500 {
        ProvisionError::Unreachable(format!(
            "Twilio is unreachable: {}",
            reason(status, &message, code)
        ))
    } else {
        let code = code.map_or_else(|| status.to_string(), |c| c.to_string());
        ProvisionError::Refused(format!(
            "Twilio refused the configuration: {message} ({code})"
        ))
    }
}

impl Twilio {
    /// The send of one part: `To`, `From`, then `Body` and `MediaUrl` when given.
    fn send(
        configuration: &Map<String, Value>,
        to: &str,
        from: &str,
        body: Option<&str>,
        media_url: Option<&str>,
    ) -> ProviderRequest {
        let mut fields = vec![
            ("To".to_owned(), to.to_owned()),
            ("From".to_owned(), from.to_owned()),
        ];
        if let Some(b) = body.filter(|b| !b.is_empty()) {
            fields.push(("Body".to_owned(), b.to_owned()));
        }
        if let Some(u) = media_url {
            fields.push(("MediaUrl".to_owned(), u.to_owned()));
        }
        ProviderRequest::new(
            HttpMethod::Post,
            format!(
                "/2010-04-01/Accounts/{}/Messages.json",
                segment(config_str(configuration, "accountSid").unwrap_or_default())
            ),
            auth(configuration),
            RequestBody::Form(fields),
            "send",
        )
    }
}

impl Adapter for Twilio {
    fn provider(&self) -> &'static str {
        "Twilio"
    }

    /// The signature over `request.url`, then over its default-port variant; and `AccountSid`
    /// equal to the configuration's `accountSid`.
    fn verify(
        &self,
        configuration: &Map<String, Value>,
        _app_secret: Option<&str>,
        request: &InboundRequest<'_>,
    ) -> bool {
        let (Some(token), Some(account)) = (
            config_str(configuration, "authToken"),
            config_str(configuration, "accountSid"),
        ) else {
            return false;
        };
        let Some(given) = request
            .header(SIGNATURE_HEADER)
            .and_then(|s| STANDARD.decode(s.trim().as_bytes()).ok())
        else {
            return false;
        };
        let params = form(request.body);
        if param(&params, "AccountSid") != Some(account) {
            return false;
        }
        let matches = |url: &str| {
            signature_mac(token, url, &params)
                .verify_slice(&given)
                .is_ok()
        };
        matches(request.url) || default_port_variant(request.url).is_some_and(|u| matches(&u))
    }

    fn parse(
        &self,
        _configuration: &Map<String, Value>,
        request: &InboundRequest<'_>,
        _media: MediaLinker<'_>,
    ) -> Result<Inbound, InboundError> {
        let params = form(request.body);
        let from = param(&params, "From")
            .filter(|f| !f.is_empty())
            .ok_or_else(|| InboundError::Unparseable("From is missing".to_owned()))?;
        let sid = param(&params, "MessageSid")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| InboundError::Unparseable("MessageSid is missing".to_owned()))?;
        let count: usize = param(&params, "NumMedia")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        let media = (0..count)
            .filter_map(|i| {
                let url = param(&params, &format!("MediaUrl{i}")).filter(|u| !u.is_empty())?;
                let mime = param(&params, &format!("MediaContentType{i}")).unwrap_or_default();
                Some(parts::media(MediaKind::of_mime(mime), url.to_owned(), None))
            })
            .collect();
        let text = param(&params, "Body").map(str::to_owned);
        let messages = parts::messages(text, media);
        let ids = parts::external_ids(sid, messages.len());
        let properties = parts::properties(from, None, None, None, &[("phone", from)]);
        let items = messages
            .into_iter()
            .zip(ids)
            .map(|(m, external_id)| InboundItem {
                binding: from.to_owned(),
                external_id,
                payload: Payload::Message(m),
                properties: properties.clone(),
                existing_only: false,
            })
            .collect();
        Ok(Inbound {
            items,
            ..Inbound::default()
        })
    }

    /// An empty TwiML document: no reply.
    fn answer(&self) -> Answer {
        Answer {
            status: 200,
            content_type: "text/xml",
            body: "<Response></Response>".to_owned(),
        }
    }

    fn render(&self, context: &SendContext<'_>, payload: &Payload) -> Rendered {
        let Payload::Message(message) = payload else {
            return Rendered::Nothing;
        };
        let configuration = context.configuration;
        let Some(from) = config_str(configuration, "phoneNumber").filter(|p| !p.is_empty()) else {
            return Rendered::Refused("Twilio: the integration has no phoneNumber".to_owned());
        };
        let to = context.binding;
        let mms = configuration
            .get("capabilities")
            .and_then(|c| c.get("mms"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let media = match message {
            Message::Image(m) | Message::Video(m) | Message::Audio(m) | Message::Attachment(m)
                if mms =>
            {
                Some(m)
            }
            _ => None,
        };
        let parts = match media {
            Some(m) => {
                let label = m
                    .caption
                    .as_deref()
                    .filter(|c| !c.trim().is_empty())
                    .or(m.title.as_deref())
                    .unwrap_or_default();
                let mut bodies = render::split(label, TEXT_LIMIT).into_iter();
                let first = bodies.next();
                std::iter::once(Self::send(
                    configuration,
                    to,
                    from,
                    first.as_deref(),
                    Some(&m.url),
                ))
                .chain(bodies.map(|b| Self::send(configuration, to, from, Some(&b), None)))
                .collect()
            }
            None => render::split(&render::text_fallback(message, false), TEXT_LIMIT)
                .iter()
                .map(|b| Self::send(configuration, to, from, Some(b), None))
                .collect(),
        };
        Rendered::Parts(parts)
    }

    fn outcome(&self, response: &ProviderResponse<'_>) -> Outcome {
        let status = response.status;
        if (200..300).contains(&status) {
            let id = serde_json::from_slice::<Value>(response.body)
                .ok()
                .and_then(|v| v.get("sid").and_then(Value::as_str).map(str::to_owned));
            return Outcome::Accepted { id };
        }
        let (message, code) = error_of(response.body);
        let reason = reason(status, &message, code);
        if matches!(status, 408 | 425 | 429) || status >= 500 {
            Outcome::Retry {
                reason,
                wait_ms: response.retry_after_ms,
            }
        } else if status == 401 || code == Some(CODE_AUTHENTICATE) {
            Outcome::Credentials { reason }
        } else {
            Outcome::Permanent { reason }
        }
    }

    fn verify_credentials(&self, configuration: &Map<String, Value>) -> Option<ProviderRequest> {
        Some(ProviderRequest::new(
            HttpMethod::Get,
            number_path(configuration),
            auth(configuration),
            RequestBody::None,
            "verify",
        ))
    }

    /// `phoneNumber` from `phone_number`, `capabilities` `{ sms, mms, voice }` (absent: false).
    fn learn(
        &self,
        _configuration: &Map<String, Value>,
        response: &ProviderResponse<'_>,
    ) -> Result<Map<String, Value>, ProvisionError> {
        if !(200..300).contains(&response.status) {
            return Err(provision_error(response));
        }
        let v: Value = serde_json::from_slice(response.body).unwrap_or(Value::Null);
        let Some(phone) = v.get("phone_number").and_then(Value::as_str) else {
            return Err(ProvisionError::Refused(format!(
                "Twilio refused the configuration: no phone_number in the answer ({})",
                response.status
            )));
        };
        let capability = |name: &str| {
            v.get("capabilities")
                .and_then(|c| c.get(name))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let mut learned = Map::new();
        learned.insert("phoneNumber".to_owned(), Value::String(phone.to_owned()));
        learned.insert(
            "capabilities".to_owned(),
            json!({ "sms": capability("sms"), "mms": capability("mms"), "voice": capability("voice") }),
        );
        Ok(learned)
    }

    /// Points the number's incoming-message webhook at `url`.
    fn register(&self, configuration: &Map<String, Value>, url: &str) -> Vec<ProviderRequest> {
        vec![ProviderRequest::new(
            HttpMethod::Post,
            number_path(configuration),
            auth(configuration),
            RequestBody::Form(vec![
                ("SmsUrl".to_owned(), url.to_owned()),
                ("SmsMethod".to_owned(), "POST".to_owned()),
            ]),
            "register",
        )]
    }

    fn registered(&self, response: &ProviderResponse<'_>) -> Result<(), ProvisionError> {
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(provision_error(response))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::SenderRole;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn encode(p: &[(String, String)]) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(p)
            .finish()
    }

    fn config() -> Map<String, Value> {
        json!({ "accountSid": "AC123", "authToken": "12345", "numberSid": "PN66",
                "phoneNumber": "+15550001111",
                "capabilities": { "sms": true, "mms": true, "voice": false } })
        .as_object()
        .unwrap()
        .clone()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    /// Twilio's published example.
    fn vector_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn reproduces_twilios_published_signature() {
        assert_eq!(
            signature("12345", URL, &vector_params()),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        // Order of the given parameters does not matter.
        let mut reversed = vector_params();
        reversed.reverse();
        assert_eq!(
            signature("12345", URL, &reversed),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert_ne!(
            signature("12346", URL, &vector_params()),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    fn request<'a>(
        url: &'a str,
        headers: &'a [(String, String)],
        body: &'a [u8],
    ) -> InboundRequest<'a> {
        InboundRequest {
            url,
            query: "",
            headers,
            body,
        }
    }

    fn signed(url_signed: &str, params: &[(String, String)]) -> Vec<(String, String)> {
        vec![(
            SIGNATURE_HEADER.to_owned(),
            signature("12345", url_signed, params),
        )]
    }

    #[test]
    fn verify_checks_signature_and_account() {
        let mut params = vector_params();
        params.push(("AccountSid".to_owned(), "AC123".to_owned()));
        let body = encode(&params);
        let headers = signed(URL, &params);
        let c = config();
        assert!(Twilio.verify(&c, None, &request(URL, &headers, body.as_bytes())));
        // Another URL, another body, another token, no header: refused.
        assert!(!Twilio.verify(
            &c,
            None,
            &request("https://mycompany.com/other", &headers, body.as_bytes())
        ));
        let tampered = body.replace("1234", "4321");
        assert!(!Twilio.verify(&c, None, &request(URL, &headers, tampered.as_bytes())));
        let mut other = c.clone();
        other.insert("authToken".into(), json!("54321"));
        assert!(!Twilio.verify(&other, None, &request(URL, &headers, body.as_bytes())));
        assert!(!Twilio.verify(&c, None, &request(URL, &[], body.as_bytes())));
        let garbage = vec![(SIGNATURE_HEADER.to_owned(), "%%%".to_owned())];
        assert!(!Twilio.verify(&c, None, &request(URL, &garbage, body.as_bytes())));
    }

    #[test]
    fn verify_refuses_another_account() {
        let mut params = vector_params();
        params.push(("AccountSid".to_owned(), "AC999".to_owned()));
        let body = encode(&params);
        let headers = signed(URL, &params);
        assert!(!Twilio.verify(&config(), None, &request(URL, &headers, body.as_bytes())));
        // Without AccountSid too.
        let params = vector_params();
        let body = encode(&params);
        let headers = signed(URL, &params);
        assert!(!Twilio.verify(&config(), None, &request(URL, &headers, body.as_bytes())));
    }

    #[test]
    fn verify_accepts_the_default_port_variant() {
        let mut params = vector_params();
        params.push(("AccountSid".to_owned(), "AC123".to_owned()));
        let body = encode(&params);
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        // Signed with the port, received without it, and the other way round.
        let headers = signed(with_port, &params);
        assert!(Twilio.verify(&config(), None, &request(URL, &headers, body.as_bytes())));
        let headers = signed(URL, &params);
        assert!(Twilio.verify(
            &config(),
            None,
            &request(with_port, &headers, body.as_bytes())
        ));
        // Another port is no variant.
        let headers = signed("https://mycompany.com:8443/myapp.php?foo=1&bar=2", &params);
        assert!(!Twilio.verify(&config(), None, &request(URL, &headers, body.as_bytes())));
    }

    #[test]
    fn default_port_variants() {
        assert_eq!(
            default_port_variant("https://a.io/x?y=1").as_deref(),
            Some("https://a.io:443/x?y=1")
        );
        assert_eq!(
            default_port_variant("https://a.io:443/x").as_deref(),
            Some("https://a.io/x")
        );
        assert_eq!(
            default_port_variant("http://a.io").as_deref(),
            Some("http://a.io:80")
        );
        assert_eq!(
            default_port_variant("http://a.io:80?q").as_deref(),
            Some("http://a.io?q")
        );
        assert_eq!(
            default_port_variant("http://u:p@a.io/").as_deref(),
            Some("http://u:p@a.io:80/")
        );
        assert_eq!(
            default_port_variant("https://[::1]/x").as_deref(),
            Some("https://[::1]:443/x")
        );
        assert_eq!(
            default_port_variant("https://[::1]:443/x").as_deref(),
            Some("https://[::1]/x")
        );
        assert_eq!(default_port_variant("https://a.io:8443/x"), None);
        assert_eq!(default_port_variant("http://a.io:443/x"), None);
        assert_eq!(default_port_variant("ftp://a.io/x"), None);
        assert_eq!(default_port_variant("not a url"), None);
    }

    fn parse(params: &[(&str, &str)]) -> Result<Inbound, InboundError> {
        let body = encode(&pairs(params));
        let linker = |r: &str| format!("https://sb/m/{r}");
        Twilio.parse(&config(), &request(URL, &[], body.as_bytes()), &linker)
    }

    #[test]
    fn parses_a_text() {
        let inbound = parse(&[
            ("AccountSid", "AC123"),
            ("MessageSid", "SM1"),
            ("From", "+4915112345678"),
            ("To", "+15550001111"),
            ("Body", "Hello there"),
            ("NumMedia", "0"),
        ])
        .unwrap();
        assert_eq!(inbound.items.len(), 1);
        let item = &inbound.items[0];
        assert_eq!(item.binding, "+4915112345678");
        assert_eq!(item.external_id, "SM1");
        assert_eq!(item.payload, Payload::Message(Message::text("Hello there")));
        assert_eq!(
            Value::Object(item.properties.clone()),
            json!({ "channel": { "userId": "+4915112345678", "phone": "+4915112345678" } })
        );
        assert!(!item.existing_only);
    }

    #[test]
    fn parses_media_with_and_without_text() {
        let one = parse(&[
            ("MessageSid", "MM1"),
            ("From", "+1555"),
            ("Body", "look"),
            ("NumMedia", "1"),
            ("MediaUrl0", "https://api.twilio.com/m/ME1"),
            ("MediaContentType0", "image/jpeg"),
        ])
        .unwrap();
        assert_eq!(one.items.len(), 1);
        let Payload::Message(Message::Image(m)) = &one.items[0].payload else {
            panic!("{one:?}")
        };
        assert_eq!(m.url, "https://api.twilio.com/m/ME1");
        assert_eq!(m.caption.as_deref(), Some("look"));

        let three = parse(&[
            ("MessageSid", "MM2"),
            ("From", "+1555"),
            ("Body", "two files"),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://api.twilio.com/m/ME2"),
            ("MediaContentType0", "video/mp4"),
            ("MediaUrl1", "https://api.twilio.com/m/ME3"),
            ("MediaContentType1", "text/vcard"),
        ])
        .unwrap();
        let ids: Vec<&str> = three.items.iter().map(|i| i.external_id.as_str()).collect();
        assert_eq!(ids, ["MM2", "MM2#1", "MM2#2"]);
        let kinds: Vec<&str> = three
            .items
            .iter()
            .map(|i| match &i.payload {
                Payload::Message(m) => m.type_name(),
                Payload::Event(_) => "event",
            })
            .collect();
        assert_eq!(kinds, ["text", "video", "attachment"]);
    }

    #[test]
    fn a_bare_url_body_is_converted_and_missing_keys_are_unparseable() {
        let inbound = parse(&[
            ("MessageSid", "SM2"),
            ("From", "+1"),
            ("Body", "https://x.io/a.png"),
        ])
        .unwrap();
        assert!(matches!(
            &inbound.items[0].payload,
            Payload::Message(Message::Image(_))
        ));
        assert!(matches!(
            parse(&[("MessageSid", "SM3")]),
            Err(InboundError::Unparseable(_))
        ));
        assert!(matches!(
            parse(&[("From", "+1")]),
            Err(InboundError::Unparseable(_))
        ));
        // Nothing to say: no item.
        assert!(
            parse(&[("MessageSid", "SM4"), ("From", "+1"), ("Body", "")])
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[test]
    fn answers_empty_twiml() {
        let a = Twilio.answer();
        assert_eq!(
            (a.status, a.content_type, a.body.as_str()),
            (200, "text/xml", "<Response></Response>")
        );
    }

    fn context<'a>(
        configuration: &'a Map<String, Value>,
        properties: &'a Map<String, Value>,
    ) -> SendContext<'a> {
        SendContext {
            configuration,
            binding: "+4915112345678",
            properties,
            now: 0,
            sender: SenderRole::Agent,
            last_customer_activity: None,
            last_customer_message: None,
            last_customer_external_id: None,
        }
    }

    fn render(configuration: &Map<String, Value>, v: Value) -> Rendered {
        let props = Map::new();
        let m: Message = serde_json::from_value(v).unwrap();
        Twilio.render(&context(configuration, &props), &Payload::Message(m))
    }

    fn forms(r: Rendered) -> Vec<Vec<(String, String)>> {
        let Rendered::Parts(parts) = r else {
            panic!("{r:?}")
        };
        parts
            .into_iter()
            .map(|p| {
                assert_eq!(p.method, HttpMethod::Post);
                assert_eq!(
                    p.target,
                    super::super::adapter::Target::Path(
                        "/2010-04-01/Accounts/AC123/Messages.json".into()
                    )
                );
                assert_eq!(
                    p.auth,
                    ProviderAuth::Basic {
                        user: "AC123".into(),
                        password: "12345".into()
                    }
                );
                assert_eq!(p.operation, "send");
                let RequestBody::Form(f) = p.body else {
                    panic!()
                };
                f
            })
            .collect()
    }

    #[test]
    fn renders_a_text() {
        let f = forms(render(
            &config(),
            json!({ "type": "text", "text": "Hi",
            "actions": [{ "type": "link", "title": "Site", "url": "https://x.io" }] }),
        ));
        assert_eq!(
            f,
            vec![pairs(&[
                ("To", "+4915112345678"),
                ("From", "+15550001111"),
                ("Body", "Hi\nSite: https://x.io")
            ])]
        );
    }

    #[test]
    fn a_long_text_is_split_per_1600_chars() {
        let text = format!("{}\n{}", "a".repeat(1600), "b".repeat(10));
        let f = forms(render(&config(), json!({ "type": "text", "text": text })));
        assert_eq!(f.len(), 2);
        assert_eq!(f[0][2], ("Body".to_owned(), "a".repeat(1600)));
        assert_eq!(f[1][2], ("Body".to_owned(), "b".repeat(10)));
    }

    #[test]
    fn media_goes_as_mms_only_with_the_capability() {
        let image = json!({ "type": "image", "url": "https://x.io/a.png", "caption": "A cat" });
        let f = forms(render(&config(), image.clone()));
        assert_eq!(
            f,
            vec![pairs(&[
                ("To", "+4915112345678"),
                ("From", "+15550001111"),
                ("Body", "A cat"),
                ("MediaUrl", "https://x.io/a.png")
            ])]
        );
        let bare = forms(render(
            &config(),
            json!({ "type": "attachment", "url": "https://x.io/a.pdf" }),
        ));
        assert_eq!(
            bare[0],
            pairs(&[
                ("To", "+4915112345678"),
                ("From", "+15550001111"),
                ("MediaUrl", "https://x.io/a.pdf")
            ])
        );

        let mut sms_only = config();
        sms_only.insert(
            "capabilities".into(),
            json!({ "sms": true, "mms": false, "voice": false }),
        );
        let f = forms(render(&sms_only, image));
        assert_eq!(
            f[0][2],
            ("Body".to_owned(), "A cat\nhttps://x.io/a.png".to_owned())
        );
        assert_eq!(f[0].len(), 3);
    }

    #[test]
    fn other_messages_use_the_text_fallback_and_events_nothing() {
        let f = forms(render(
            &config(),
            json!({ "type": "location", "latitude": 1.5, "longitude": 2.5 }),
        ));
        assert_eq!(
            f[0][2].1,
            "1.5,2.5\nhttps://www.openstreetmap.org/?mlat=1.5&mlon=2.5"
        );
        let f = forms(render(
            &config(),
            json!({ "type": "youtube", "url": "https://youtu.be/x" }),
        ));
        assert_eq!(f[0][2].1, "https://youtu.be/x");
        let props = Map::new();
        let c = config();
        for e in [
            crate::activity::Event::TypingOn,
            crate::activity::Event::Seen,
        ] {
            assert_eq!(
                Twilio.render(&context(&c, &props), &Payload::Event(e)),
                Rendered::Nothing
            );
        }
        let mut no_number = config();
        no_number.remove("phoneNumber");
        assert!(matches!(
            render(&no_number, json!({ "type": "text", "text": "x" })),
            Rendered::Refused(_)
        ));
    }

    fn answer(status: u16, body: &str) -> Outcome {
        Twilio.outcome(&ProviderResponse {
            status,
            retry_after_ms: Some(5000),
            body: body.as_bytes(),
        })
    }

    #[test]
    fn outcomes_by_status_class() {
        assert_eq!(
            answer(201, r#"{"sid":"SM42","status":"queued"}"#),
            Outcome::Accepted {
                id: Some("SM42".into())
            }
        );
        assert_eq!(
            answer(
                429,
                r#"{"code":20429,"message":"Too Many Requests","more_info":"x","status":429}"#
            ),
            Outcome::Retry {
                reason: "Twilio 429: Too Many Requests (20429)".into(),
                wait_ms: Some(5000)
            }
        );
        assert!(
            matches!(answer(503, ""), Outcome::Retry { reason, .. } if reason == "Twilio 503: no reason given")
        );
        assert_eq!(
            answer(
                401,
                r#"{"code":20003,"message":"Authenticate","more_info":"x","status":401}"#
            ),
            Outcome::Credentials {
                reason: "Twilio 401: Authenticate (20003)".into()
            }
        );
        assert!(matches!(
            answer(403, r#"{"code":20003,"message":"Authenticate"}"#),
            Outcome::Credentials { .. }
        ));
        assert_eq!(
            answer(
                400,
                r#"{"code":21211,"message":"The 'To' number +1 is not a valid phone number.","status":400}"#
            ),
            Outcome::Permanent {
                reason: "Twilio 400: The 'To' number +1 is not a valid phone number. (21211)"
                    .into()
            }
        );
        assert!(matches!(
            answer(
                400,
                r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient"}"#
            ),
            Outcome::Permanent { .. }
        ));
        assert!(
            matches!(answer(404, "Not Found"), Outcome::Permanent { reason } if reason == "Twilio 404: Not Found")
        );
    }

    #[test]
    fn provisioning_calls() {
        let c = config();
        let v = Twilio.verify_credentials(&c).unwrap();
        assert_eq!(v.method, HttpMethod::Get);
        assert_eq!(
            v.target,
            super::super::adapter::Target::Path(
                "/2010-04-01/Accounts/AC123/IncomingPhoneNumbers/PN66.json".into()
            )
        );
        assert_eq!(
            v.auth,
            ProviderAuth::Basic {
                user: "AC123".into(),
                password: "12345".into()
            }
        );
        let r = Twilio.register(&c, "https://sb.io/channels/twilio/abc");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].method, HttpMethod::Post);
        assert_eq!(r[0].target, v.target);
        assert_eq!(
            r[0].body,
            RequestBody::Form(pairs(&[
                ("SmsUrl", "https://sb.io/channels/twilio/abc"),
                ("SmsMethod", "POST")
            ]))
        );
        assert_eq!(Twilio.deregister(&c), None);
    }

    fn response(status: u16, body: &str) -> ProviderResponse<'_> {
        ProviderResponse {
            status,
            retry_after_ms: None,
            body: body.as_bytes(),
        }
    }

    #[test]
    fn learns_number_and_capabilities() {
        let body = r#"{"sid":"PN66","phone_number":"+15550001111","capabilities":{"voice":true,"sms":true,"mms":false,"fax":false}}"#;
        let learned = Twilio.learn(&config(), &response(200, body)).unwrap();
        assert_eq!(
            Value::Object(learned),
            json!({ "phoneNumber": "+15550001111", "capabilities": { "sms": true, "mms": false, "voice": true } })
        );
        assert_eq!(
            Twilio.learn(&config(), &response(404, r#"{"code":20404,"message":"The requested resource was not found","status":404}"#)),
            Err(ProvisionError::Refused("Twilio refused the configuration: The requested resource was not found (20404)".into()))
        );
        assert_eq!(
            Twilio.learn(
                &config(),
                &response(401, r#"{"code":20003,"message":"Authenticate"}"#)
            ),
            Err(ProvisionError::Refused(
                "Twilio refused the configuration: Authenticate (20003)".into()
            ))
        );
        assert!(
            matches!(Twilio.learn(&config(), &response(503, "")), Err(ProvisionError::Unreachable(r)) if r.starts_with("Twilio is unreachable: "))
        );
        assert!(matches!(
            Twilio.learn(&config(), &response(200, "{}")),
            Err(ProvisionError::Refused(_))
        ));
        assert_eq!(Twilio.registered(&response(200, "{}")), Ok(()));
        assert!(
            matches!(Twilio.registered(&response(400, r#"{"code":21402,"message":"Url is not valid"}"#)), Err(ProvisionError::Refused(r)) if r.ends_with("Url is not valid (21402)"))
        );
        assert!(matches!(
            Twilio.registered(&response(429, "")),
            Err(ProvisionError::Unreachable(_))
        ));
    }
}
