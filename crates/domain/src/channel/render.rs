//! The text fallback and splitting of SPEC 7.4.2, identical on every channel.

use crate::activity::Message;

/// The text fallback of `message` (SPEC 7.4.2). `buttons`: whether the channel renders the
/// actions as buttons (then they are left out of the text).
pub fn text_fallback(message: &Message, buttons: bool) -> String {
    let _ = (message, buttons);
    String::new()
}

/// `text` split into parts of at most `limit` characters (SPEC 7.4.2): at the last newline,
/// else the last whitespace, before the limit (else at the limit, on a character boundary); at
/// most 10 parts, the tenth ending in `…`.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    let _ = limit;
    vec![text.to_owned()]
}
