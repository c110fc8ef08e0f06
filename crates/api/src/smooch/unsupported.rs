//! What SPEC 8.10 puts out of scope: such a route answers 501 `not_implemented` naming the
//! feature, never a silent success, and never a 404 that would read as a typo.

use poem::http::Method;

/// The feature a request asks for, when it is out of scope. `segs` are the path's segments
/// after the prefix.
pub fn feature(method: &Method, segs: &[&str]) -> Option<&'static str> {
    // The routes of an app, with `{A}` or app-implicit.
    let app_rest = match segs {
        ["apps", _, rest @ ..] => rest,
        rest => rest,
    };
    let feature = match app_rest {
        ["menu", ..] => "Persistent menus",
        ["integrations", _, "menu", ..] => "Persistent menus",
        ["templates", ..] | ["integrations", _, "messageTemplates", ..] => "Templates",
        ["integrations", _, "profile", ..] => "Channel profiles",
        ["attachments", ..] => "Attachments",
        ["appusers", _, "images", ..] => "Image uploads",
        ["stripe", ..] | ["customer", ..] => "Stripe payments",
        ["notifications", ..] => "Notifications",
        ["serviceaccounts", ..] => "Service accounts",
        ["whatsapp", ..] | ["deployments", ..] => "WhatsApp deployments",
        ["sdks", ..] => "SDK settings",
        ["init", ..] => "The device API",
        ["appusers", "merge", ..] => "Merging app users",
        ["appusers", _, "channels"] if method == Method::POST => "Channel linking",
        ["appusers", _, "channels", _] => "Channel linking",
        ["appusers", _, "ping" | "linkrequest" | "authcode" | "qrcode", ..] => "Channel linking",
        // smooch-core's pingChannel: `…/appusers/{id}/integrations/{type}/ping`.
        ["appusers", _, "integrations", _, "ping"] => "Channel linking",
        ["appusers", _, "businesssystems", ..] => "Business systems",
        ["appusers", _, "conversation", "postback"] => "Postbacks sent through the API",
        ["appusers", _] if method == Method::DELETE => "Deleting app users (activities are kept)",
        ["appusers", _, "profile"] if method == Method::DELETE => {
            "Deleting app user profiles (activities are kept)"
        }
        ["appusers", _, "messages", ..] if method == Method::DELETE => {
            "Deleting messages (activities are kept)"
        }
        ["appusers", _, "conversation"] if method == Method::DELETE => {
            "Deleting messages (activities are kept)"
        }
        _ => return None,
    };
    Some(feature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_scope_routes_name_their_feature() {
        let get = Method::GET;
        assert_eq!(
            feature(&get, &["apps", "a", "menu"]),
            Some("Persistent menus")
        );
        assert_eq!(
            feature(&Method::DELETE, &["apps", "a", "appusers", "u"]),
            Some("Deleting app users (activities are kept)")
        );
        assert_eq!(feature(&Method::GET, &["apps", "a", "appusers", "u"]), None);
        assert_eq!(
            feature(&Method::POST, &["appusers", "u", "channels"]),
            Some("Channel linking")
        );
        assert_eq!(feature(&Method::GET, &["appusers", "u", "channels"]), None);
        assert_eq!(feature(&get, &["apps"]), None);
        assert_eq!(feature(&get, &["apps", "a", "integrations", "i"]), None);
    }
}
