//! The text fallback and splitting of SPEC 7.4.2, identical on every channel.

use serde_json::Value;

use crate::activity::{Action, Item, LocationMessage, MediaMessage, Message};

/// The most parts one text is split into (SPEC 7.4.2).
pub const MAX_PARTS: usize = 10;

/// What ends the last part when a text needs more than [`MAX_PARTS`] parts.
pub const ELLIPSIS: char = '…';

/// The text fallback of `message` (SPEC 7.4.2). `buttons`: whether the channel renders the
/// actions as buttons (then they are left out of the text).
///
/// | message | text |
/// |---|---|
/// | `text` | `text`; each item `• {title}` (+ ` — {description}`); actions (without buttons) |
/// | media | `caption` or `title`, newline, `url` |
/// | `location` | `address`, newline, `{lat},{lon}`, newline, an openstreetmap.org link |
/// | `contact` | one `name: value` line per field |
/// | `card` | `title`, `description`, `mediaUrl`, actions (without buttons) |
/// | `carousel`, `list` | each item as a card, separated by an empty line |
///
/// Actions without buttons: `link` → `{title}: {url}`, `reply`/`postback` → `• {title}`.
/// Empty lines are skipped.
pub fn text_fallback(message: &Message, buttons: bool) -> String {
    match message {
        Message::Text(t) => {
            let mut lines = Vec::new();
            push(&mut lines, t.text.as_deref());
            for item in t.items.iter().flatten() {
                push(&mut lines, item_line(item).as_deref());
            }
            if !buttons {
                push_actions(&mut lines, t.actions.as_deref());
            }
            lines.join("\n")
        }
        Message::Image(m)
        | Message::Video(m)
        | Message::Audio(m)
        | Message::Attachment(m)
        | Message::Youtube(m)
        | Message::Vimeo(m) => media_fallback(m),
        Message::Location(l) => location_fallback(l),
        Message::Contact(fields) => {
            let mut lines = Vec::new();
            for (name, value) in fields {
                let value = match value {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if !value.trim().is_empty() {
                    lines.push(format!("{name}: {value}"));
                }
            }
            lines.join("\n")
        }
        Message::Card(item) => card_fallback(item, buttons),
        Message::Carousel(m) | Message::List(m) => m
            .items
            .iter()
            .map(|item| card_fallback(item, buttons))
            .filter(|card| !card.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n"),
    }
}

/// A card's text: `title`, `description`, media URL, then (without buttons) its actions.
pub fn card_fallback(item: &Item, buttons: bool) -> String {
    let mut lines = Vec::new();
    push(&mut lines, item.title.as_deref());
    push(&mut lines, extra_str(item, "description"));
    push(&mut lines, extra_str(item, "mediaUrl"));
    if !buttons {
        push_actions(&mut lines, item.actions.as_deref());
    }
    lines.join("\n")
}

/// A media message's text: `caption` or `title` (if any), newline, `url`.
pub fn media_fallback(m: &MediaMessage) -> String {
    let label = m
        .caption
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .or(m.title.as_deref());
    let mut lines = Vec::new();
    push(&mut lines, label);
    push(&mut lines, Some(&m.url));
    lines.join("\n")
}

/// A location's text: `address` (if any), then the coordinates and an OpenStreetMap link.
pub fn location_fallback(l: &LocationMessage) -> String {
    let mut lines = Vec::new();
    push(&mut lines, l.address.as_deref());
    if let (Some(lat), Some(lon)) = (l.latitude, l.longitude) {
        lines.push(format!("{lat},{lon}"));
        lines.push(format!(
            "https://www.openstreetmap.org/?mlat={lat}&mlon={lon}"
        ));
    }
    lines.join("\n")
}

/// The text line of one action when the channel has no buttons: `link` → `{title}: {url}`,
/// `reply`/`postback` → `• {title}`.
pub fn action_line(action: &Action) -> String {
    match action {
        Action::Link(l) => format!("{}: {}", l.title, l.url),
        Action::Reply(p) | Action::Postback(p) => format!("• {}", p.title),
    }
}

/// `• {title}` (+ ` — {description}`) of an item of a `text`; `None` when both are empty.
fn item_line(item: &Item) -> Option<String> {
    let title = item.title.as_deref().filter(|t| !t.trim().is_empty());
    let description = extra_str(item, "description").filter(|d| !d.trim().is_empty());
    match (title, description) {
        (Some(t), Some(d)) => Some(format!("• {t} — {d}")),
        (Some(t), None) => Some(format!("• {t}")),
        (None, Some(d)) => Some(format!("• {d}")),
        (None, None) => None,
    }
}

fn extra_str<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.extra.get(key).and_then(Value::as_str)
}

fn push(lines: &mut Vec<String>, line: Option<&str>) {
    if let Some(l) = line.filter(|l| !l.trim().is_empty()) {
        lines.push(l.to_owned());
    }
}

fn push_actions(lines: &mut Vec<String>, actions: Option<&[Action]>) {
    for action in actions.unwrap_or_default() {
        push(lines, Some(&action_line(action)));
    }
}

/// `text` split into parts of at most `limit` characters (SPEC 7.4.2): at the last newline,
/// else the last whitespace, before the limit (else at the limit, on a character boundary); at
/// most 10 parts, the tenth ending in `…`.
///
/// Characters are Unicode scalar values (`char`s). The newline or whitespace a text is split at
/// is dropped, and each part loses its trailing whitespace (a part never ends in the separator);
/// a separator right after `limit` characters counts as before the limit. A text of at most
/// `limit` characters (the empty text included) is one part, unchanged. A `limit` of 0 is taken
/// as 1.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        if rest.chars().count() <= limit {
            parts.push(rest.to_owned());
            return parts;
        }
        if parts.len() + 1 == MAX_PARTS {
            let (end, _) = cut(rest, limit - 1);
            let mut last = rest[..end].to_owned();
            last.push(ELLIPSIS);
            parts.push(last);
            return parts;
        }
        let (end, next) = cut(rest, limit);
        parts.push(rest[..end].to_owned());
        rest = &rest[next..];
    }
}

/// Where the first part of `s` (longer than `limit` chars) ends and the rest begins, in bytes:
/// the part is `s[..end]` (trailing whitespace excluded, at most `limit` chars, not empty unless
/// `limit` is 0) and the rest `s[next..]`.
fn cut(s: &str, limit: usize) -> (usize, usize) {
    // The byte index of char number `limit` (the first one that does not fit) and the window
    // of the first `limit + 1` chars, whose last char may be the separator.
    let Some((hard, at_limit)) = s.char_indices().nth(limit) else {
        return (s.len(), s.len());
    };
    let window = &s[..hard + at_limit.len_utf8()];
    let soft = last_separator(window, |c| c == '\n')
        .or_else(|| last_separator(window, char::is_whitespace));
    if let Some((at, sep_len)) = soft {
        let end = window[..at].trim_end().len();
        if end > 0 {
            return (end, at + sep_len);
        }
    }
    (hard, hard)
}

/// The byte index and length of the last char of `window` matching `is_sep`, not at index 0.
fn last_separator(window: &str, is_sep: impl Fn(char) -> bool) -> Option<(usize, usize)> {
    window
        .char_indices()
        .rev()
        .find(|&(i, c)| i > 0 && is_sep(c))
        .map(|(i, c)| (i, c.len_utf8()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(v: serde_json::Value) -> Message {
        serde_json::from_value(v).unwrap()
    }

    fn chars(s: &str) -> usize {
        s.chars().count()
    }

    // ---- text fallback ----

    #[test]
    fn text_with_items_and_actions() {
        let m = msg(json!({
            "type": "text",
            "text": "Pick one",
            "items": [
                { "title": "Red", "description": "warm" },
                { "title": "Blue" },
                { "description": "only a description" },
                {}
            ],
            "actions": [
                { "type": "link", "title": "Site", "url": "https://x.io" },
                { "type": "reply", "title": "Yes", "payload": "y" },
                { "type": "postback", "title": "No", "payload": "n" }
            ]
        }));
        assert_eq!(
            text_fallback(&m, false),
            "Pick one\n• Red — warm\n• Blue\n• only a description\nSite: https://x.io\n• Yes\n• No"
        );
        assert_eq!(
            text_fallback(&m, true),
            "Pick one\n• Red — warm\n• Blue\n• only a description"
        );
    }

    #[test]
    fn plain_text_is_itself() {
        assert_eq!(
            text_fallback(&Message::text("héllo\nthere"), false),
            "héllo\nthere"
        );
        assert_eq!(text_fallback(&Message::text(""), false), "");
        let only_actions = msg(json!({ "type": "text",
            "actions": [{ "type": "reply", "title": "Go", "payload": "go" }] }));
        assert_eq!(text_fallback(&only_actions, false), "• Go");
        assert_eq!(text_fallback(&only_actions, true), "");
    }

    #[test]
    fn media_prefers_caption_then_title() {
        for t in ["image", "video", "audio", "attachment", "youtube", "vimeo"] {
            let both =
                msg(json!({ "type": t, "url": "https://x.io/a", "title": "T", "caption": "C" }));
            assert_eq!(text_fallback(&both, false), "C\nhttps://x.io/a", "{t}");
            let title = msg(json!({ "type": t, "url": "https://x.io/a", "title": "T" }));
            assert_eq!(text_fallback(&title, true), "T\nhttps://x.io/a", "{t}");
            let bare = msg(json!({ "type": t, "url": "https://x.io/a" }));
            assert_eq!(text_fallback(&bare, false), "https://x.io/a", "{t}");
        }
    }

    #[test]
    fn location_with_and_without_address() {
        let m = msg(
            json!({ "type": "location", "address": "Alexanderplatz, Berlin",
            "latitude": 52.5219, "longitude": 13.4132 }),
        );
        assert_eq!(
            text_fallback(&m, false),
            "Alexanderplatz, Berlin\n52.5219,13.4132\n\
             https://www.openstreetmap.org/?mlat=52.5219&mlon=13.4132"
        );
        let m = msg(json!({ "type": "location", "latitude": -33.5, "longitude": 151.0 }));
        assert_eq!(
            text_fallback(&m, false),
            "-33.5,151\nhttps://www.openstreetmap.org/?mlat=-33.5&mlon=151"
        );
        let m = msg(json!({ "type": "location", "address": "Main St 1" }));
        assert_eq!(text_fallback(&m, false), "Main St 1");
    }

    #[test]
    fn contact_is_one_name_value_line_per_field() {
        let m = msg(json!({ "type": "contact", "email": "a@x.io", "name": "Ada",
            "phone": "+4930123", "age": 36, "nothing": null, "empty": "" }));
        let text = text_fallback(&m, false);
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            ["age: 36", "email: a@x.io", "name: Ada", "phone: +4930123"]
        );
    }

    #[test]
    fn card_lines_skip_empty_ones() {
        let m = msg(
            json!({ "type": "card", "title": "Shoes", "description": "Red ones",
            "mediaUrl": "https://x.io/s.png",
            "actions": [{ "type": "link", "title": "Buy", "url": "https://x.io/buy" },
                        { "type": "postback", "title": "Later", "payload": "l" }] }),
        );
        assert_eq!(
            text_fallback(&m, false),
            "Shoes\nRed ones\nhttps://x.io/s.png\nBuy: https://x.io/buy\n• Later"
        );
        assert_eq!(
            text_fallback(&m, true),
            "Shoes\nRed ones\nhttps://x.io/s.png"
        );
        let m = msg(json!({ "type": "card", "title": "", "description": "only" }));
        assert_eq!(text_fallback(&m, false), "only");
    }

    #[test]
    fn carousel_and_list_are_cards_separated_by_an_empty_line() {
        for t in ["carousel", "list"] {
            let m = msg(json!({ "type": t, "items": [
                { "title": "A", "description": "first",
                  "actions": [{ "type": "reply", "title": "Pick A", "payload": "a" }] },
                { "title": "B", "mediaUrl": "https://x.io/b.png" },
                {}
            ] }));
            assert_eq!(
                text_fallback(&m, false),
                "A\nfirst\n• Pick A\n\nB\nhttps://x.io/b.png",
                "{t}"
            );
            assert_eq!(text_fallback(&m, true), "A\nfirst\n\nB\nhttps://x.io/b.png");
        }
    }

    // ---- split ----

    #[test]
    fn short_texts_are_one_part_unchanged() {
        assert_eq!(split("", 5), vec![""]);
        assert_eq!(split("abcde", 5), vec!["abcde"]);
        assert_eq!(split(" a b ", 5), vec![" a b "]);
        // Five chars, ten bytes.
        assert_eq!(split("ééééé", 5), vec!["ééééé"]);
    }

    #[test]
    fn splits_at_the_last_newline_before_the_limit() {
        assert_eq!(split("ab cd\nef gh ij", 10), vec!["ab cd", "ef gh ij"]);
        assert_eq!(
            split("one\ntwo\nthree four", 9),
            vec!["one\ntwo", "three", "four"]
        );
        // Blank lines between paragraphs are not kept at a part's end.
        assert_eq!(
            split("para one\n\npara two", 10),
            vec!["para one", "para two"]
        );
    }

    #[test]
    fn else_at_the_last_whitespace() {
        assert_eq!(split("hello world again", 11), vec!["hello world", "again"]);
        assert_eq!(split("aaa bbb ccc ddd", 8), vec!["aaa bbb", "ccc ddd"]);
        // A separator right after `limit` chars: the part is exactly the limit.
        assert_eq!(split("abcde fgh", 5), vec!["abcde", "fgh"]);
        assert_eq!(split("abcde\nfgh", 5), vec!["abcde", "fgh"]);
        // Tabs and other whitespace count.
        assert_eq!(split("abc\tdefgh", 6), vec!["abc", "defgh"]);
    }

    #[test]
    fn else_at_the_limit_on_a_char_boundary() {
        assert_eq!(split("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(split("ééééééé", 3), vec!["ééé", "ééé", "é"]);
        // 4-byte chars: each part is whole chars.
        assert_eq!(split("😀😀😀😀😀", 2), vec!["😀😀", "😀😀", "😀"]);
        // A leading separator is no split point.
        assert_eq!(split(" abcdef", 3), vec![" ab", "cde", "f"]);
    }

    #[test]
    fn multibyte_text_splits_by_chars_not_bytes() {
        let text = "日本語のテキスト です 長い 文章";
        for limit in 1..=text.chars().count() {
            let parts = split(text, limit);
            assert!(
                parts.iter().all(|p| chars(p) <= limit),
                "{limit}: {parts:?}"
            );
            assert!(parts.len() <= MAX_PARTS);
        }
        assert_eq!(split("日本語 のテキ", 4), vec!["日本語", "のテキ"]);
    }

    #[test]
    fn at_most_ten_parts_the_tenth_ending_in_an_ellipsis() {
        let text = "abcd".repeat(30); // 120 chars, 30 parts of 4 without the cap
        let parts = split(&text, 4);
        assert_eq!(parts.len(), MAX_PARTS);
        assert!(parts[..9].iter().all(|p| p == "abcd"));
        assert_eq!(parts[9], "abc…");
        assert!(parts.iter().all(|p| chars(p) <= 4));

        // Exactly ten parts fit: no ellipsis.
        let parts = split(&"abcd".repeat(10), 4);
        assert_eq!(parts.len(), 10);
        assert_eq!(parts[9], "abcd");

        // Words: the tenth part is cut at whitespace too, within the limit with its `…`.
        let text = "word ".repeat(40);
        let parts = split(text.trim_end(), 10);
        assert_eq!(parts.len(), 10);
        assert_eq!(parts[0], "word word");
        assert_eq!(parts[9], "word word…");

        // Limit 1: the tenth part is the ellipsis alone.
        let parts = split(&"x".repeat(20), 1);
        assert_eq!(parts.len(), 10);
        assert_eq!(parts[9], "…");
        assert_eq!(split("xy", 0), vec!["x", "y"]);
    }

    #[test]
    fn nothing_but_separators_is_lost_below_the_cap() {
        let text = "The quick brown fox\njumps over the lazy dog.\nÉtude über naïve façades";
        for limit in 3..30 {
            let parts = split(text, limit);
            assert!(parts.len() <= MAX_PARTS, "{limit}");
            if parts.len() < MAX_PARTS {
                let squash = |s: &str| s.split_whitespace().collect::<String>();
                assert_eq!(squash(&parts.concat()), squash(text), "{limit}: {parts:?}");
            }
            assert!(
                parts.iter().all(|p| chars(p) <= limit),
                "{limit}: {parts:?}"
            );
            assert!(parts.iter().all(|p| !p.is_empty()));
        }
    }
}
