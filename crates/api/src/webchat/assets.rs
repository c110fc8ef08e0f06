//! The WebChat widget and its demo page (SPEC 7.18.4), both compiled into the binary.
//!
//! `GET /webchat/v1/widget.js` answers the script with an `ETag` (a hash of its content, so a
//! new binary with a new script gets a new tag) and a 304 to a matching `If-None-Match`; anyone
//! may load it (`Access-Control-Allow-Origin: *`, `Cross-Origin-Resource-Policy: cross-origin`).
//! `GET /webchat/v1/demo?integrationId=…` answers a page that embeds the widget for that
//! integration and opens it; the id is checked for its form only (no lookup), so the page says
//! nothing about which integrations exist.

use std::sync::OnceLock;

use poem::http::{header, HeaderValue, StatusCode};
use poem::{handler, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Code};
use crate::state::AppState;

/// The widget's source, as served.
pub const WIDGET_JS: &str = include_str!("../../assets/widget.js");

/// The demo page's template: `{{INTEGRATION_ID}}` and `{{SCRIPT_URL}}` are filled in.
pub const DEMO_HTML: &str = include_str!("../../assets/demo.html");

/// The most the widget may weigh, uncompressed (SPEC 7.18.4).
pub const MAX_WIDGET_BYTES: usize = 32 * 1024;

/// The demo page's `Content-Security-Policy` (SPEC 7.18.4).
pub const DEMO_CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src * data:; \
                            media-src *; style-src 'self' 'unsafe-inline'";

/// The widget's `ETag`: the first 128 bits of the SHA-256 of its content, in hex, quoted.
pub fn widget_etag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let digest = Sha256::digest(WIDGET_JS.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    })
}

/// Whether an `If-None-Match` value names `etag` (RFC 9110 §13.1.2: weak comparison, `*`
/// matches any).
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    let want = etag.trim_start_matches("W/");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == want)
}

/// `GET /webchat/v1/widget.js`.
#[handler]
pub async fn widget(req: &Request) -> Response {
    let etag = widget_etag();
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| none_match(v, etag));
    let builder = Response::builder()
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header("Cross-Origin-Resource-Policy", "cross-origin")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if fresh {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    builder
        .content_type("application/javascript; charset=utf-8")
        .body(WIDGET_JS)
        .into_response()
}

/// `GET /webchat/v1/demo?integrationId=…`: missing (or empty) 400/200, not a UUID 400/203.
#[handler]
pub async fn demo(req: &Request) -> poem::Result<Response> {
    let raw = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "integrationId")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                Code::MissingParameter,
                "The query parameter 'integrationId' is required.",
            )
        })?;
    let id = uuid::Uuid::parse_str(&raw).map_err(|_| ApiError::invalid_uuid("integrationId"))?;
    let public_url = req
        .data::<AppState>()
        .map(|s| {
            s.config
                .providers
                .public_url
                .trim_end_matches('/')
                .to_owned()
        })
        .unwrap_or_default();
    let page = demo_page(&id.hyphenated().to_string(), &public_url);
    let mut resp = Response::builder()
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .body(page);
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DEMO_CSP),
    );
    Ok(resp)
}

/// The demo page for `integration_id` (a canonical UUID), showing the embedding snippet with
/// the script's URL under `public_url`.
pub fn demo_page(integration_id: &str, public_url: &str) -> String {
    DEMO_HTML
        .replace("{{INTEGRATION_ID}}", &escape(integration_id))
        .replace(
            "{{SCRIPT_URL}}",
            &escape(&format!("{public_url}/webchat/v1/widget.js")),
        )
}

/// Text for HTML, in an element or a quoted attribute.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widget_weighs_at_most_32_kib() {
        assert!(
            WIDGET_JS.len() <= MAX_WIDGET_BYTES,
            "widget.js is {} bytes, over the {} of SPEC 7.18.4",
            WIDGET_JS.len(),
            MAX_WIDGET_BYTES
        );
    }

    #[test]
    fn the_widget_never_inserts_html() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "createContextualFragment",
        ] {
            assert!(!WIDGET_JS.contains(sink), "widget.js uses {sink}");
        }
        assert!(WIDGET_JS.contains("attachShadow"));
        assert!(WIDGET_JS.contains("referrerpolicy', 'no-referrer"));
        assert!(WIDGET_JS.contains("switchboard.webchat."));
    }

    #[test]
    fn the_etag_is_a_quoted_hash_and_matches_weakly() {
        let tag = widget_etag();
        assert_eq!(tag.len(), 34);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert!(none_match(tag, tag));
        assert!(none_match(&format!("W/{tag}"), tag));
        assert!(none_match(&format!("\"x\", {tag}"), tag));
        assert!(none_match("*", tag));
        assert!(!none_match("\"x\"", tag));
        assert!(!none_match("", tag));
    }

    #[test]
    fn the_demo_page_embeds_the_widget_without_inline_script() {
        let page = demo_page(
            "0b6f8e6a-5a43-4c57-9c1e-2f7a8d1b9c10",
            "https://sb.example.com",
        );
        assert!(!page.contains("{{"));
        assert!(page.contains(
            "<script src=\"widget.js\" data-integration-id=\"0b6f8e6a-5a43-4c57-9c1e-2f7a8d1b9c10\""
        ));
        assert!(page.contains("https://sb.example.com/webchat/v1/widget.js"));
        // The page's CSP allows no inline script: every script element has a src.
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script src=").count()
        );
        assert_eq!(escape("a\"<b>&'"), "a&quot;&lt;b&gt;&amp;&#39;");
    }
}
