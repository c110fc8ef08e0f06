//! A fake of Meta's Graph API as Messenger uses it (SPEC 7.8): one Page with its Page access
//! token. Every call carries `access_token` in the query; a wrong one is Graph's
//! `OAuthException` (code 190) at HTTP 400.
//!
//! - `GET /me?fields=id,name` → the Page `{ id, name }`;
//! - `POST /{pageId}/subscribed_apps?subscribed_fields=…` → `{ success: true }`;
//! - `POST /{pageId}/messages` (Send API, JSON `{ recipient: { id }, messaging_type, tag?,
//!   message | sender_action }`, checked against Meta's limits) → `{ recipient_id, message_id }`;
//! - `GET /{psid}?fields=first_name,last_name,profile_pic` → the user's profile.
//!
//! Errors have Graph's shape `{ error: { message, type, code, error_subcode?, fbtrace_id } }`
//! ([`error`]); [`Mode::ServerError`] is HTTP 500 with code 2 (temporary), [`Mode::RateLimited`]
//! HTTP 429 with code 613 (Graph gives no wait hint in seconds: the mode's value is unused).

use std::sync::Arc;

use poem::Response;
use serde_json::{json, Value};

use super::{check, json, Fake, FakeState, Mode, Recorded};

/// The fake's Page.
pub const PAGE_ID: &str = "1013889883";
pub const PAGE_NAME: &str = "Switchboard Shoes";
/// The Page access token the fake accepts.
pub const TOKEN: &str = "EAAGm0PX4ZCpsBAFakePageToken";

/// The profile the fake answers for every PSID: `first_name`, `last_name`, and a picture URL
/// ending in the PSID.
pub const FIRST_NAME: &str = "Ada";
pub const LAST_NAME: &str = "Lovelace";

/// The fields `subscribed_apps` accepts (the Page webhook fields Messenger documents).
const SUBSCRIBABLE: &[&str] = &[
    "messages",
    "messaging_postbacks",
    "message_reads",
    "message_deliveries",
    "message_echoes",
    "messaging_optins",
    "messaging_referrals",
    "messaging_handovers",
    "messaging_policy_enforcement",
    "message_reactions",
];

/// Send API limits (Meta's documentation): text 2000 characters, 13 quick replies, 3 buttons
/// per template or element, 10 generic template elements, button template text 640.
const TEXT_MAX: usize = 2000;
const QUICK_REPLIES_MAX: usize = 13;
const BUTTONS_MAX: usize = 3;
const ELEMENTS_MAX: usize = 10;
const BUTTON_TEXT_MAX: usize = 640;

/// The picture URL of `psid`'s profile.
pub fn picture(psid: &str) -> String {
    format!("https://platform-lookaside.fbsbx.com/platform/profilepic/?psid={psid}")
}

/// A Graph error body.
pub fn error(code: i64, subcode: Option<i64>, kind: &str, message: &str) -> Value {
    let mut e = json!({ "message": message, "type": kind, "code": code,
                        "fbtrace_id": "AbCdEfGhIjK" });
    if let Some(sub) = subcode {
        e["error_subcode"] = json!(sub);
    }
    json!({ "error": e })
}

/// Graph's answer to a refused token (HTTP 400, code 190).
pub fn bad_token() -> Value {
    error(
        190,
        None,
        "OAuthException",
        "Invalid OAuth access token - Cannot parse access token",
    )
}

/// A fake Graph API for the Page [`PAGE_ID`] with the token [`TOKEN`].
pub async fn start() -> Fake {
    Fake::start(Arc::new(|r: &Recorded, mode: &Mode, s: &FakeState| {
        answer(r, mode, s)
    }))
    .await
}

fn answer(r: &Recorded, mode: &Mode, s: &FakeState) -> Result<Response, String> {
    let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    check(
        !segments.is_empty() && segments.iter().all(|p| !p.is_empty()),
        format!("a Graph path has no empty segment: {}", r.path),
    )?;
    let token = r.query_param("access_token").unwrap_or_default();
    check(!token.is_empty(), "every Graph call carries access_token")?;
    if token != TOKEN {
        return Ok(json(400, bad_token()));
    }
    match mode {
        Mode::Refuse(status, body) => return Ok(json(*status, body.clone())),
        Mode::ServerError => {
            return Ok(json(
                500,
                error(
                    2,
                    None,
                    "OAuthException",
                    "An unexpected error has occurred. Please retry your request later.",
                ),
            ))
        }
        Mode::RateLimited(_) => {
            return Ok(json(
                429,
                error(
                    613,
                    None,
                    "OAuthException",
                    "Calls to this api have exceeded the rate limit.",
                ),
            ))
        }
        Mode::Success | Mode::Slow(_) => {}
    }
    match (r.method.as_str(), segments.as_slice()) {
        ("GET", ["me"]) => {
            check(
                r.query_param("fields").as_deref() == Some("id,name"),
                "GET /me asks fields=id,name",
            )?;
            Ok(json(200, json!({ "id": PAGE_ID, "name": PAGE_NAME })))
        }
        ("POST", [page, "subscribed_apps"]) => {
            check(*page == PAGE_ID, format!("subscribed_apps of page {page}"))?;
            let fields = r.query_param("subscribed_fields").unwrap_or_default();
            check(
                !fields.is_empty() && fields.split(',').all(|f| SUBSCRIBABLE.contains(&f)),
                format!("subscribed_fields is a list of webhook fields: {fields:?}"),
            )?;
            Ok(json(200, json!({ "success": true })))
        }
        ("POST", [page, "messages"]) => {
            check(
                *page == PAGE_ID || *page == "me",
                format!("messages of page {page}"),
            )?;
            let recipient = send(r)?;
            Ok(json(
                200,
                json!({ "recipient_id": recipient,
                        "message_id": format!("m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_{}", s.id()) }),
            ))
        }
        ("GET", [psid]) => {
            check(
                psid.bytes().all(|b| b.is_ascii_digit()),
                format!("a PSID is digits: {psid}"),
            )?;
            check(
                r.query_param("fields").as_deref() == Some("first_name,last_name,profile_pic"),
                "the profile asks fields=first_name,last_name,profile_pic",
            )?;
            Ok(json(
                200,
                json!({ "first_name": FIRST_NAME, "last_name": LAST_NAME,
                        "profile_pic": picture(psid), "id": psid }),
            ))
        }
        (m, p) => Err(format!("no Graph route {m} /{}", p.join("/"))),
    }
}

/// Checks a Send API body; answers its recipient.
fn send(r: &Recorded) -> Result<String, String> {
    check(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "the Send API body is JSON",
    )?;
    let body = r.json();
    let obj = body.as_object().ok_or("the body is a JSON object")?;
    let recipient = body["recipient"]["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or("recipient.id is a non-empty string")?
        .to_owned();
    let messaging_type = body["messaging_type"].as_str().unwrap_or_default();
    check(
        matches!(messaging_type, "RESPONSE" | "UPDATE" | "MESSAGE_TAG"),
        format!("messaging_type is RESPONSE, UPDATE or MESSAGE_TAG: {messaging_type:?}"),
    )?;
    match body.get("tag") {
        None => check(messaging_type != "MESSAGE_TAG", "MESSAGE_TAG needs a tag")?,
        Some(tag) => {
            check(
                messaging_type == "MESSAGE_TAG",
                "a tag goes only with MESSAGE_TAG",
            )?;
            check(
                matches!(
                    tag.as_str(),
                    Some(
                        "HUMAN_AGENT"
                            | "CONFIRMED_EVENT_UPDATE"
                            | "POST_PURCHASE_UPDATE"
                            | "ACCOUNT_UPDATE"
                    )
                ),
                format!("an unknown tag {tag}"),
            )?;
        }
    }
    let allowed = [
        "recipient",
        "messaging_type",
        "tag",
        "message",
        "sender_action",
    ];
    check(
        obj.keys().all(|k| allowed.contains(&k.as_str())),
        format!("unknown keys in {body}"),
    )?;
    match (body.get("message"), body.get("sender_action")) {
        (Some(m), None) => message(m)?,
        (None, Some(a)) => check(
            matches!(a.as_str(), Some("typing_on" | "typing_off" | "mark_seen")),
            format!("sender_action is typing_on, typing_off or mark_seen: {a}"),
        )?,
        _ => return Err("exactly one of message and sender_action".into()),
    }
    Ok(recipient)
}

fn message(m: &Value) -> Result<(), String> {
    let text = m.get("text");
    let attachment = m.get("attachment");
    match (text, attachment) {
        (Some(t), None) => {
            let t = t.as_str().unwrap_or_default();
            check(
                !t.is_empty() && t.chars().count() <= TEXT_MAX,
                format!("text is 1-{TEXT_MAX} characters ({})", t.chars().count()),
            )?;
        }
        (None, Some(a)) => attachment_ok(a)?,
        _ => return Err("a message has exactly one of text and attachment".into()),
    }
    if let Some(q) = m.get("quick_replies") {
        let q = q.as_array().ok_or("quick_replies is an array")?;
        check(
            (1..=QUICK_REPLIES_MAX).contains(&q.len()),
            format!("1-{QUICK_REPLIES_MAX} quick_replies ({})", q.len()),
        )?;
        for r in q {
            let kind = r["content_type"].as_str().unwrap_or_default();
            check(
                matches!(kind, "text" | "user_phone_number" | "user_email"),
                format!("a quick reply's content_type: {kind:?}"),
            )?;
            if kind == "text" {
                check(
                    r["title"].as_str().is_some_and(|t| !t.is_empty())
                        && r["payload"].as_str().is_some_and(|p| !p.is_empty()),
                    "a text quick reply has a title and a payload",
                )?;
            }
        }
    }
    Ok(())
}

fn attachment_ok(a: &Value) -> Result<(), String> {
    let kind = a["type"].as_str().unwrap_or_default();
    let payload = &a["payload"];
    match kind {
        "image" | "video" | "audio" | "file" => check(
            payload["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
                || payload["attachment_id"].is_string(),
            format!("a {kind} attachment has a url"),
        ),
        "template" => match payload["template_type"].as_str().unwrap_or_default() {
            "button" => {
                let text = payload["text"].as_str().unwrap_or_default();
                check(
                    !text.is_empty() && text.chars().count() <= BUTTON_TEXT_MAX,
                    format!("a button template's text is 1-{BUTTON_TEXT_MAX} characters"),
                )?;
                buttons(&payload["buttons"], 1)
            }
            "generic" => {
                let elements = payload["elements"]
                    .as_array()
                    .ok_or("a generic template has elements")?;
                check(
                    (1..=ELEMENTS_MAX).contains(&elements.len()),
                    format!("1-{ELEMENTS_MAX} elements ({})", elements.len()),
                )?;
                for e in elements {
                    check(
                        e["title"].as_str().is_some_and(|t| !t.is_empty()),
                        "an element has a title",
                    )?;
                    if !e["buttons"].is_null() {
                        buttons(&e["buttons"], 1)?;
                    }
                }
                Ok(())
            }
            other => Err(format!("an unknown template_type {other:?}")),
        },
        other => Err(format!("an unknown attachment type {other:?}")),
    }
}

fn buttons(b: &Value, min: usize) -> Result<(), String> {
    let b = b.as_array().ok_or("buttons is an array")?;
    check(
        (min..=BUTTONS_MAX).contains(&b.len()),
        format!("{min}-{BUTTONS_MAX} buttons ({})", b.len()),
    )?;
    for button in b {
        let title = button["title"].as_str().is_some_and(|t| !t.is_empty());
        match button["type"].as_str().unwrap_or_default() {
            "web_url" => check(
                title && button["url"].as_str().is_some_and(|u| !u.is_empty()),
                "a web_url button has a url and a title",
            )?,
            "postback" => check(
                title && button["payload"].as_str().is_some_and(|p| !p.is_empty()),
                "a postback button has a title and a payload",
            )?,
            other => return Err(format!("an unknown button type {other:?}")),
        }
    }
    Ok(())
}
