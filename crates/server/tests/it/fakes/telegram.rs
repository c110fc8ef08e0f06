//! A fake of Telegram's Bot API: `POST /bot{token}/{method}` with a JSON body, answered
//! `{ ok, result }` or `{ ok: false, error_code, description, parameters? }`; files at
//! `GET /file/bot{token}/{file_path}`.

use std::sync::Arc;

use poem::Response;
use serde_json::{json, Value};

use super::{check, json, Fake, FakeState, Mode, Recorded};

/// The bytes of every file the fake serves.
pub const FILE_BYTES: &[u8] = b"\x89PNG fake telegram photo";

/// A fake Telegram for the bot `token`.
pub async fn start(token: &str) -> Fake {
    let token = token.to_owned();
    Fake::start(Arc::new(move |r: &Recorded, mode: &Mode, s: &FakeState| {
        answer(&token, r, mode, s)
    }))
    .await
}

fn refusal(code: u16, description: &str) -> Response {
    json(
        code,
        json!({ "ok": false, "error_code": code, "description": description }),
    )
}

fn answer(token: &str, r: &Recorded, mode: &Mode, s: &FakeState) -> Result<Response, String> {
    if let Some(rest) = r.path.strip_prefix("/file/bot") {
        let Some((t, path)) = rest.split_once('/') else {
            return Err("a file path without a token".into());
        };
        if t != token {
            return Ok(refusal(401, "Unauthorized"));
        }
        if path == "missing" {
            return Ok(refusal(404, "Not Found"));
        }
        return Ok(Response::builder()
            .content_type("image/png")
            .body(FILE_BYTES));
    }
    let Some(rest) = r.path.strip_prefix("/bot") else {
        return Err(format!("unknown path {}", r.path));
    };
    let Some((t, method)) = rest.split_once('/') else {
        return Err("no method".into());
    };
    check(
        r.method == "POST" || r.method == "GET",
        "Bot API calls are GET or POST",
    )?;
    if t != token {
        return Ok(refusal(401, "Unauthorized"));
    }
    match mode {
        Mode::Refuse(status, body) => return Ok(json(*status, body.clone())),
        Mode::ServerError => return Ok(refusal(500, "Internal Server Error")),
        Mode::RateLimited(secs) => {
            return Ok(json(
                429,
                json!({ "ok": false, "error_code": 429,
                        "description": format!("Too Many Requests: retry after {secs}"),
                        "parameters": { "retry_after": secs } }),
            ))
        }
        Mode::Success | Mode::Slow(_) => {}
    }
    let is_json = r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"));
    let body = r.json();
    let needs_body = !matches!(method, "getMe" | "deleteWebhook");
    if needs_body {
        check(is_json && body.is_object(), "the body is a JSON object")?;
    }
    let chat = || -> Result<Value, String> {
        let id = body.get("chat_id").cloned().unwrap_or(Value::Null);
        check(
            id.is_i64() || id.as_str().is_some_and(|s| !s.is_empty()),
            "chat_id is an integer or a string",
        )?;
        Ok(json!({ "id": id, "type": "private" }))
    };
    let sent = |chat: Value, extra: Value| -> Response {
        let mut message = json!({ "message_id": s.id(), "date": 1_700_000_000, "chat": chat });
        if let (Some(m), Some(e)) = (message.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        json(200, json!({ "ok": true, "result": message }))
    };
    let string = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default();
    match method {
        "getMe" => Ok(json(
            200,
            json!({ "ok": true, "result": { "id": 123456, "is_bot": true,
                     "first_name": "Switchboard Test", "username": "sb_test_bot" } }),
        )),
        "setWebhook" => {
            check(!string("url").is_empty(), "setWebhook has a url")?;
            let secret = string("secret_token");
            check(
                (1..=256).contains(&secret.len())
                    && secret
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "secret_token is 1-256 chars of A-Z a-z 0-9 _ -",
            )?;
            Ok(json(
                200,
                json!({ "ok": true, "result": true, "description": "Webhook was set" }),
            ))
        }
        "deleteWebhook" => Ok(json(
            200,
            json!({ "ok": true, "result": true, "description": "Webhook was deleted" }),
        )),
        "sendMessage" => {
            let chat = chat()?;
            let text = string("text");
            check(
                !text.is_empty() && text.chars().count() <= 4096,
                "text is 1-4096 characters",
            )?;
            if let Some(markup) = body.get("reply_markup") {
                check(
                    markup.get("inline_keyboard").is_some_and(Value::is_array)
                        || markup.get("keyboard").is_some_and(Value::is_array),
                    "reply_markup has inline_keyboard or keyboard",
                )?;
            }
            Ok(sent(chat, json!({ "text": text })))
        }
        "sendPhoto" | "sendVideo" | "sendAudio" | "sendDocument" => {
            let chat = chat()?;
            let field = match method {
                "sendPhoto" => "photo",
                "sendVideo" => "video",
                "sendAudio" => "audio",
                _ => "document",
            };
            check(!string(field).is_empty(), format!("{method} has {field}"))?;
            Ok(sent(chat, json!({})))
        }
        "sendLocation" => {
            let chat = chat()?;
            check(
                body.get("latitude").is_some_and(Value::is_number)
                    && body.get("longitude").is_some_and(Value::is_number),
                "sendLocation has numeric latitude and longitude",
            )?;
            Ok(sent(chat, json!({})))
        }
        "sendChatAction" => {
            chat()?;
            check(!string("action").is_empty(), "sendChatAction has an action")?;
            Ok(json(200, json!({ "ok": true, "result": true })))
        }
        "answerCallbackQuery" => {
            check(
                !string("callback_query_id").is_empty(),
                "answerCallbackQuery has callback_query_id",
            )?;
            Ok(json(200, json!({ "ok": true, "result": true })))
        }
        "getFile" => {
            let id = string("file_id");
            check(!id.is_empty(), "getFile has file_id")?;
            if id == "expired" {
                return Ok(refusal(400, "Bad Request: invalid file_id"));
            }
            let path = if id == "gone" {
                "missing".to_owned()
            } else {
                format!("photos/{id}.png")
            };
            Ok(json(
                200,
                json!({ "ok": true, "result": { "file_id": id, "file_unique_id": "u",
                         "file_size": FILE_BYTES.len(), "file_path": path } }),
            ))
        }
        other => Err(format!("unknown Bot API method {other}")),
    }
}
