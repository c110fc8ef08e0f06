//! Messages (SPEC 4): the twelve message types, their items and actions, and SPEC 4's
//! conversion of a text that is only a media URL. Nothing here fetches anything: the conversion
//! looks at the text alone. Validation of a raw message is in [`super::validate_message`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The properties of a message, action or item that the model does not name, kept as given
/// so that nothing a client sends is lost on the way to the recipient.
pub type Extra = Map<String, Value>;

/// A message (SPEC 4), tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Message {
    /// `text`, `items`, `actions`: at least one of them.
    Text(TextMessage),
    Image(MediaMessage),
    Video(MediaMessage),
    Audio(MediaMessage),
    Attachment(MediaMessage),
    Youtube(MediaMessage),
    Vimeo(MediaMessage),
    /// `address` and/or `latitude` + `longitude`.
    Location(LocationMessage),
    /// Contact details; their shape is the client's (any properties).
    Contact(Extra),
    /// One item: optional `title`, optional `actions`, any other properties.
    Card(Item),
    /// `items`*, one or more.
    Carousel(ItemsMessage),
    /// `items`*, one or more.
    List(ItemsMessage),
}

/// Every message `type`, in the order of SPEC 4.
pub const MESSAGE_TYPES: &[&str] = &[
    "text",
    "image",
    "video",
    "audio",
    "attachment",
    "youtube",
    "vimeo",
    "location",
    "contact",
    "card",
    "carousel",
    "list",
];

/// A `text` message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Item>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<Action>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An `image`, `video`, `audio`, `attachment`, `youtube` or `vimeo` message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaMessage {
    /// An absolute http or https URL.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `location` message: an address, coordinates, or both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Degrees, -90..=90; given together with `longitude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Degrees, -180..=180; given together with `latitude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `carousel` or `list` message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemsMessage {
    /// One or more.
    pub items: Vec<Item>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An item of a `text`, `carousel` or `list`, or the body of a `card`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<Action>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A button of a message, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Action {
    /// Sends `payload` back as the customer's answer.
    Postback(PayloadAction),
    /// A quick reply carrying `payload`.
    Reply(PayloadAction),
    /// Opens `url`.
    Link(LinkAction),
}

/// Every action `type`.
pub const ACTION_TYPES: &[&str] = &["postback", "reply", "link"];

/// A `postback` or `reply` action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAction {
    pub title: String,
    pub payload: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `link` action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkAction {
    pub title: String,
    /// An absolute http or https URL.
    pub url: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Action {
    /// A `reply` action.
    pub fn reply(title: impl Into<String>, payload: impl Into<String>) -> Self {
        Self::Reply(PayloadAction {
            title: title.into(),
            payload: payload.into(),
            ..PayloadAction::default()
        })
    }

    /// A `postback` action.
    pub fn postback(title: impl Into<String>, payload: impl Into<String>) -> Self {
        Self::Postback(PayloadAction {
            title: title.into(),
            payload: payload.into(),
            ..PayloadAction::default()
        })
    }

    /// A `link` action.
    pub fn link(title: impl Into<String>, url: impl Into<String>) -> Self {
        Self::Link(LinkAction {
            title: title.into(),
            url: url.into(),
            ..LinkAction::default()
        })
    }
}

impl Message {
    /// The wire `type` (`text`, `image`, …).
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Image(_) => "image",
            Self::Video(_) => "video",
            Self::Audio(_) => "audio",
            Self::Attachment(_) => "attachment",
            Self::Youtube(_) => "youtube",
            Self::Vimeo(_) => "vimeo",
            Self::Location(_) => "location",
            Self::Contact(_) => "contact",
            Self::Card(_) => "card",
            Self::Carousel(_) => "carousel",
            Self::List(_) => "list",
        }
    }

    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(TextMessage {
            text: Some(text.into()),
            ..TextMessage::default()
        })
    }

    /// A text message with buttons.
    pub fn text_with(text: impl Into<String>, actions: Vec<Action>) -> Self {
        Self::Text(TextMessage {
            text: Some(text.into()),
            actions: Some(actions),
            ..TextMessage::default()
        })
    }

    /// SPEC 4's URL conversion: a `text` without items or actions whose whole (trimmed) text is
    /// one http(s) URL becomes an `image`, `video`, `audio`, `youtube` or `vimeo` message with
    /// `url` set (see [`media_type_of_url`]); anything else comes back unchanged. Never fetches;
    /// idempotent.
    ///
    /// Other properties of the text (`title`, `caption`, unknown keys) are kept.
    pub fn convert_url_text(self) -> Self {
        let Self::Text(t) = self else { return self };
        let convertible = t.items.is_none() && t.actions.is_none();
        let target = t
            .text
            .as_deref()
            .filter(|_| convertible)
            .and_then(|s| media_type_of_url(s).map(|kind| (kind, s.trim().to_owned())));
        let Some((kind, url)) = target else {
            return Self::Text(t);
        };
        let mut extra = t.extra;
        let mut take = |key: &str| match extra.remove(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let title = take("title");
        let caption = take("caption");
        extra.remove("url");
        let media = MediaMessage {
            url,
            title,
            caption,
            extra,
        };
        match kind {
            UrlMedia::Image => Self::Image(media),
            UrlMedia::Video => Self::Video(media),
            UrlMedia::Audio => Self::Audio(media),
            UrlMedia::Youtube => Self::Youtube(media),
            UrlMedia::Vimeo => Self::Vimeo(media),
        }
    }
}

/// What a bare URL in a text turns into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlMedia {
    Image,
    Video,
    Audio,
    Youtube,
    Vimeo,
}

const IMAGE_EXTENSIONS: &[&str] = &[".png", ".jpg", ".jpeg", ".gif", ".webp"];
const VIDEO_EXTENSIONS: &[&str] = &[".mp4", ".webm", ".mov"];
const AUDIO_EXTENSIONS: &[&str] = &[".mp3", ".wav", ".ogg", ".m4a"];

/// What `text` is when, trimmed, it is exactly one http(s) URL (no inner whitespace) of a known
/// media kind: `youtube` (`youtube.com/watch?v=…` on the bare, `www.` or `m.` host, or
/// `youtu.be/<id>`), `vimeo` (`vimeo.com/<digits>`), else by the path's extension, compared
/// case-insensitively: image (.png .jpg .jpeg .gif .webp), video (.mp4 .webm .mov), audio (.mp3
/// .wav .ogg .m4a). `None` for anything else.
pub fn media_type_of_url(text: &str) -> Option<UrlMedia> {
    let s = text.trim();
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return None;
    }
    let url = url::Url::parse(s).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let path = url.path();
    match host.as_str() {
        "youtube.com" | "www.youtube.com" | "m.youtube.com" if path == "/watch" => {
            let has_video = url.query_pairs().any(|(k, v)| k == "v" && !v.is_empty());
            return has_video.then_some(UrlMedia::Youtube);
        }
        "youtu.be" => {
            let id = path.trim_start_matches('/').trim_end_matches('/');
            return (!id.is_empty() && !id.contains('/')).then_some(UrlMedia::Youtube);
        }
        "vimeo.com" | "www.vimeo.com" => {
            let id = path.trim_start_matches('/').trim_end_matches('/');
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
                return Some(UrlMedia::Vimeo);
            }
        }
        _ => {}
    }
    let path = path.to_ascii_lowercase();
    let ends = |exts: &[&str]| exts.iter().any(|e| path.ends_with(e));
    if ends(IMAGE_EXTENSIONS) {
        Some(UrlMedia::Image)
    } else if ends(VIDEO_EXTENSIONS) {
        Some(UrlMedia::Video)
    } else if ends(AUDIO_EXTENSIONS) {
        Some(UrlMedia::Audio)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn converted(text: &str) -> Message {
        Message::text(text).convert_url_text()
    }

    #[test]
    fn a_url_text_becomes_image_video_or_audio_by_extension() {
        for (url, t) in [
            ("https://x.io/a.png", "image"),
            ("http://x.io/a/b.JPG", "image"),
            ("https://x.io/a.jpeg?size=2", "image"),
            ("https://x.io/a.gif", "image"),
            ("https://x.io/a.webp#frag", "image"),
            ("https://x.io/a.mp4", "video"),
            ("https://x.io/a.WebM", "video"),
            ("https://x.io/a.mov", "video"),
            ("https://x.io/a.mp3", "audio"),
            ("https://x.io/a.wav", "audio"),
            ("https://x.io/a.ogg", "audio"),
            ("https://x.io/a.m4a", "audio"),
        ] {
            let m = converted(url);
            assert_eq!(m.type_name(), t, "{url}");
            assert_eq!(
                serde_json::to_value(&m).unwrap(),
                json!({ "type": t, "url": url })
            );
        }
    }

    #[test]
    fn youtube_and_vimeo_links_are_recognized() {
        for url in [
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://youtube.com/watch?v=dQw4w9WgXcQ&t=4",
            "http://m.youtube.com/watch?feature=x&v=abc",
            "https://youtu.be/dQw4w9WgXcQ",
        ] {
            assert_eq!(converted(url).type_name(), "youtube", "{url}");
        }
        for url in ["https://vimeo.com/76979871", "https://www.vimeo.com/1/"] {
            assert_eq!(converted(url).type_name(), "vimeo", "{url}");
        }
        for url in [
            "https://www.youtube.com/watch",
            "https://www.youtube.com/watch?v=",
            "https://www.youtube.com/channel/x",
            "https://youtu.be/",
            "https://vimeo.com/channels/staff",
            "https://notyoutube.com/watch?v=x",
        ] {
            assert_eq!(converted(url).type_name(), "text", "{url}");
        }
    }

    #[test]
    fn other_texts_stay_text() {
        for text in [
            "look: https://x.io/a.png",
            "https://x.io/a.png https://x.io/b.png",
            "ftp://x.io/a.png",
            "https://x.io/a.pdf",
            "https://x.io/",
            "x.io/a.png",
            "a.png",
            "",
        ] {
            assert_eq!(converted(text), Message::text(text), "{text}");
        }
    }

    proptest! {
        #[test]
        fn url_conversion_never_panics_and_is_idempotent(text in ".{0,60}") {
            let once = converted(&text);
            prop_assert_eq!(once.clone().convert_url_text(), once);
        }

        #[test]
        fn url_conversion_of_built_urls_is_idempotent(
            scheme in prop_oneof![Just("http"), Just("https"), Just("ftp")],
            host in prop_oneof![Just("x.io"), Just("youtube.com"), Just("www.youtube.com"), Just("youtu.be"), Just("vimeo.com")],
            path in "(/[a-zA-Z0-9]{0,8}){0,3}",
            ext in prop_oneof![Just(""), Just(".png"), Just(".JPG"), Just(".mp4"), Just(".mp3"), Just(".pdf")],
            query in prop_oneof![Just(""), Just("?v=abc"), Just("?v=")],
            pad in prop_oneof![Just(""), Just(" "), Just("\n")],
        ) {
            let text = format!("{pad}{scheme}://{host}{path}{ext}{query}{pad}");
            let once = converted(&text);
            if scheme == "ftp" {
                prop_assert_eq!(once.type_name(), "text");
            }
            if once.type_name() != "text" {
                let v = serde_json::to_value(&once).unwrap();
                prop_assert_eq!(v["url"].as_str(), Some(text.trim()));
            }
            prop_assert_eq!(once.clone().convert_url_text(), once);
        }

    }
}
