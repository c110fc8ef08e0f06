//! How one provider message becomes activities (SPEC 7.3.4), the same on every channel: exactly
//! one media item and text make **one** media activity whose `caption` is the text; otherwise
//! one activity per part, text first, then media in provider order. Extra parts of one provider
//! message get `#1`, `#2`, … after its id (SPEC 7.3.2 step 7).

use serde_json::{Map, Value};

use crate::activity::{LocationMessage, MediaMessage, Message};

/// The messages of one provider message: its text (if any) and its media, in provider order.
pub fn messages(text: Option<String>, media: Vec<Message>) -> Vec<Message> {
    let text = text.filter(|t| !t.trim().is_empty());
    match (text, media.len()) {
        (Some(t), 1) => {
            let mut only = media;
            let m = only.remove(0);
            vec![with_caption(m, t)]
        }
        (text, _) => text
            .map(|t| Message::text(t).convert_url_text())
            .into_iter()
            .chain(media)
            .collect(),
    }
}

/// `m` with `caption` = `text` when it is a media message; otherwise `m` unchanged.
fn with_caption(m: Message, text: String) -> Message {
    match m {
        Message::Image(mm) => Message::Image(caption(mm, text)),
        Message::Video(mm) => Message::Video(caption(mm, text)),
        Message::Audio(mm) => Message::Audio(caption(mm, text)),
        Message::Attachment(mm) => Message::Attachment(caption(mm, text)),
        other => other,
    }
}

fn caption(mut m: MediaMessage, text: String) -> MediaMessage {
    m.caption = Some(text);
    m
}

/// The `externalId`s of `n` activities of one provider message `id`: `id`, `id#1`, `id#2`, …
pub fn external_ids(id: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i == 0 {
                id.to_owned()
            } else {
                format!("{id}#{i}")
            }
        })
        .collect()
}

/// A media message of kind `kind` (`image`, `video`, `audio`, `attachment`) at `url`.
pub fn media(kind: MediaKind, url: String, title: Option<String>) -> Message {
    let m = MediaMessage {
        url,
        title,
        ..MediaMessage::default()
    };
    match kind {
        MediaKind::Image => Message::Image(m),
        MediaKind::Video => Message::Video(m),
        MediaKind::Audio => Message::Audio(m),
        MediaKind::Attachment => Message::Attachment(m),
    }
}

/// The media kinds of SPEC 7.3.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Attachment,
}

impl MediaKind {
    /// From a MIME type: `image/*`, `video/*`, `audio/*`, else attachment.
    pub fn of_mime(mime: &str) -> Self {
        let major = mime.split('/').next().unwrap_or_default().trim();
        if major.eq_ignore_ascii_case("image") {
            Self::Image
        } else if major.eq_ignore_ascii_case("video") {
            Self::Video
        } else if major.eq_ignore_ascii_case("audio") {
            Self::Audio
        } else {
            Self::Attachment
        }
    }
}

/// A location message.
pub fn location(latitude: f64, longitude: f64, address: Option<String>) -> Message {
    Message::Location(LocationMessage {
        address: address.filter(|a| !a.is_empty()),
        latitude: Some(latitude),
        longitude: Some(longitude),
        ..LocationMessage::default()
    })
}

/// `[<provider kind> not supported]`.
pub fn not_supported(kind: &str) -> Message {
    Message::text(format!("[{kind} not supported]"))
}

/// The properties of SPEC 7.3.3 to merge: `profile` (`full name`, `avatar`, `language`, when
/// given and not empty) and `channel` (`userId` = the binding, then `channel`'s own keys).
pub fn properties(
    binding: &str,
    full_name: Option<&str>,
    avatar: Option<&str>,
    language: Option<&str>,
    channel: &[(&str, &str)],
) -> Map<String, Value> {
    let mut profile = Map::new();
    for (k, v) in [
        ("full name", full_name),
        ("avatar", avatar),
        ("language", language),
    ] {
        if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
            profile.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    }
    let mut ch = Map::new();
    ch.insert("userId".to_owned(), Value::String(binding.to_owned()));
    for (k, v) in channel {
        if !v.is_empty() {
            ch.insert((*k).to_owned(), Value::String((*v).to_owned()));
        }
    }
    let mut out = Map::new();
    if !profile.is_empty() {
        out.insert("profile".to_owned(), Value::Object(profile));
    }
    out.insert("channel".to_owned(), Value::Object(ch));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(url: &str) -> Message {
        media(MediaKind::Image, url.to_owned(), None)
    }

    #[test]
    fn one_media_and_text_is_one_captioned_media_activity() {
        let out = messages(Some("look".into()), vec![image("https://x/a.png")]);
        assert_eq!(out.len(), 1);
        let Message::Image(m) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(m.caption.as_deref(), Some("look"));
    }

    #[test]
    fn otherwise_text_first_then_media_in_order() {
        let out = messages(
            Some("two".into()),
            vec![image("https://x/a.png"), image("https://x/b.png")],
        );
        assert_eq!(out.len(), 3);
        assert!(matches!(&out[0], Message::Text(t) if t.text.as_deref() == Some("two")));
        assert!(matches!(&out[2], Message::Image(m) if m.url == "https://x/b.png"));
        assert_eq!(messages(None, vec![]).len(), 0);
        assert_eq!(messages(Some("hi".into()), vec![]).len(), 1);
    }

    #[test]
    fn extra_parts_are_numbered() {
        assert_eq!(external_ids("SM1", 3), vec!["SM1", "SM1#1", "SM1#2"]);
    }

    #[test]
    fn mime_types_pick_the_kind() {
        assert_eq!(MediaKind::of_mime("image/jpeg"), MediaKind::Image);
        assert_eq!(MediaKind::of_mime("video/mp4"), MediaKind::Video);
        assert_eq!(MediaKind::of_mime("audio/ogg"), MediaKind::Audio);
        assert_eq!(MediaKind::of_mime("application/pdf"), MediaKind::Attachment);
    }
}
