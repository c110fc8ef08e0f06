//! A fake of Twilio's REST API (2010-04-01): the IncomingPhoneNumber resource (fetch with GET,
//! update with a form POST) and the Message resource (create with a form POST), behind HTTP
//! Basic `AccountSid:AuthToken`. Answers Twilio's resource shapes, and errors as
//! `{ code, message, more_info, status }` (429 with a `Retry-After` header).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use poem::http::StatusCode;
use poem::Response;
use serde_json::{json, Value};

use super::{check, json, Fake, FakeState, Mode, Recorded};

/// Twilio's limit of a message body (characters).
pub const BODY_LIMIT: usize = 1600;

/// One phone number of the account.
#[derive(Clone, Debug)]
pub struct Number {
    /// `PN…`.
    pub sid: String,
    /// E.164.
    pub phone: String,
    pub sms: bool,
    pub mms: bool,
    pub voice: bool,
}

/// A Twilio error body.
pub fn error(status: u16, code: i64, message: &str) -> Value {
    json!({ "code": code, "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status })
}

fn error_answer(status: u16, code: i64, message: &str) -> Response {
    json(status, error(status, code, message))
}

/// A fake Twilio holding one account with `numbers`.
pub async fn start(account_sid: &str, auth_token: &str, numbers: Vec<Number>) -> Fake {
    let account = account_sid.to_owned();
    let token = auth_token.to_owned();
    Fake::start(Arc::new(move |r: &Recorded, mode: &Mode, s: &FakeState| {
        answer(&account, &token, &numbers, r, mode, s)
    }))
    .await
}

/// Whether `v` looks like an E.164 number (`+` and 8 to 15 digits).
fn e164(v: &str) -> bool {
    v.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

fn absolute_url(v: &str) -> bool {
    url::Url::parse(v).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn rfc2822_now() -> &'static str {
    "Mon, 07 Dec 2026 12:00:00 +0000"
}

fn number_resource(account: &str, n: &Number, sms_url: &str, sms_method: &str) -> Value {
    json!({
        "account_sid": account,
        "address_requirements": "none",
        "api_version": "2010-04-01",
        "beta": false,
        "capabilities": { "fax": false, "mms": n.mms, "sms": n.sms, "voice": n.voice },
        "date_created": rfc2822_now(),
        "date_updated": rfc2822_now(),
        "friendly_name": n.phone,
        "phone_number": n.phone,
        "origin": "twilio",
        "sid": n.sid,
        "sms_application_sid": "",
        "sms_fallback_method": "POST",
        "sms_fallback_url": "",
        "sms_method": sms_method,
        "sms_url": sms_url,
        "status": "in-use",
        "voice_method": "POST",
        "voice_url": null,
        "uri": format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{}.json", n.sid),
    })
}

fn answer(
    account: &str,
    token: &str,
    numbers: &[Number],
    r: &Recorded,
    mode: &Mode,
    s: &FakeState,
) -> Result<Response, String> {
    let Some(rest) = r.path.strip_prefix("/2010-04-01/Accounts/") else {
        return Err(format!("unknown path {}", r.path));
    };
    let Some((path_account, resource)) = rest.split_once('/') else {
        return Err(format!("no resource in {}", r.path));
    };
    // HTTP Basic AccountSid:AuthToken.
    let given = r
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    if given.as_deref() != Some(&format!("{account}:{token}")) {
        return Ok(error_answer(401, 20003, "Authenticate"));
    }
    if path_account != account {
        return Ok(error_answer(
            404,
            20404,
            &format!("The requested resource {} was not found", r.path),
        ));
    }
    match mode {
        Mode::Refuse(status, body) => return Ok(json(*status, body.clone())),
        Mode::ServerError => return Ok(error_answer(500, 20500, "Internal Server Error")),
        Mode::RateLimited(secs) => {
            let mut resp = error_answer(429, 20429, "Too Many Requests");
            resp.headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
            return Ok(resp);
        }
        Mode::Success | Mode::Slow(_) => {}
    }
    if r.method == "POST" {
        check(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")),
            "a POST body is application/x-www-form-urlencoded",
        )?;
    }
    let fields = r.form();
    let field = |name: &str| r.field(name);

    if let Some(number_sid) = resource
        .strip_prefix("IncomingPhoneNumbers/")
        .and_then(|n| n.strip_suffix(".json"))
    {
        let Some(number) = numbers.iter().find(|n| n.sid == number_sid) else {
            return Ok(error_answer(
                404,
                20404,
                &format!("The requested resource {} was not found", r.path),
            ));
        };
        return match r.method.as_str() {
            "GET" => {
                check(r.body.is_empty(), "a fetch has no body")?;
                Ok(json(200, number_resource(account, number, "", "POST")))
            }
            "POST" => {
                let known = [
                    "SmsUrl",
                    "SmsMethod",
                    "SmsFallbackUrl",
                    "SmsFallbackMethod",
                    "FriendlyName",
                ];
                for (k, _) in &fields {
                    check(
                        known.contains(&k.as_str()),
                        format!("unexpected field {k} in a number update"),
                    )?;
                }
                let url = field("SmsUrl").unwrap_or_default();
                check(absolute_url(&url), "SmsUrl is an absolute http(s) URL")?;
                let method = field("SmsMethod").unwrap_or_default();
                check(method == "POST", "SmsMethod is POST")?;
                Ok(json(200, number_resource(account, number, &url, &method)))
            }
            other => Err(format!("{other} on an IncomingPhoneNumber")),
        };
    }

    if resource == "Messages.json" {
        check(r.method == "POST", "messages are created with POST")?;
        let known = ["To", "From", "Body", "MediaUrl", "StatusCallback"];
        for (k, _) in &fields {
            check(
                known.contains(&k.as_str()),
                format!("unexpected field {k} in a message create"),
            )?;
        }
        let to = field("To").unwrap_or_default();
        let from = field("From").unwrap_or_default();
        if to.is_empty() {
            return Ok(error_answer(400, 21604, "A 'To' phone number is required."));
        }
        if !e164(&to) {
            return Ok(error_answer(
                400,
                21211,
                &format!("Invalid 'To' Phone Number: {to}"),
            ));
        }
        let Some(number) = numbers.iter().find(|n| n.phone == from) else {
            s.problems
                .lock()
                .unwrap()
                .push(format!("From {from} is not a number of the account"));
            return Ok(error_answer(
                400,
                21606,
                &format!("The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."),
            ));
        };
        let body = field("Body");
        let media: Vec<String> = fields
            .iter()
            .filter(|(k, _)| k == "MediaUrl")
            .map(|(_, v)| v.clone())
            .collect();
        if body.as_deref().unwrap_or_default().is_empty() && media.is_empty() {
            s.problems
                .lock()
                .unwrap()
                .push("a message without Body or MediaUrl".to_owned());
            return Ok(error_answer(400, 21602, "Message body is required."));
        }
        if body
            .as_deref()
            .is_some_and(|b| b.chars().count() > BODY_LIMIT)
        {
            s.problems
                .lock()
                .unwrap()
                .push(format!("a Body over {BODY_LIMIT} characters"));
            return Ok(error_answer(
                400,
                21617,
                "The concatenated message body exceeds the 1600 character limit.",
            ));
        }
        check(media.len() <= 10, "at most 10 MediaUrl")?;
        for m in &media {
            check(absolute_url(m), format!("MediaUrl {m} is an absolute URL"))?;
        }
        check(
            media.is_empty() || number.mms,
            "MediaUrl from a number without MMS",
        )?;
        let sid = format!("SM{:032x}", s.id());
        let resource = json!({
            "account_sid": account,
            "api_version": "2010-04-01",
            "body": body.unwrap_or_default(),
            "date_created": rfc2822_now(),
            "date_sent": null,
            "date_updated": rfc2822_now(),
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": from,
            "messaging_service_sid": null,
            "num_media": media.len().to_string(),
            "num_segments": "1",
            "price": null,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {
                "media": format!("/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json")
            },
            "to": to,
            "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
        });
        return Ok(Response::builder()
            .status(StatusCode::CREATED)
            .content_type("application/json")
            .body(resource.to_string()));
    }
    Err(format!("unknown resource {resource}"))
}
