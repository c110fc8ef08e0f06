//! What every channel adapter (SPEC 7.1) is made of, as pure functions over plain types: the
//! provider requests it wants made (built here, sent by `delivery::provider`), how it reads the
//! provider's answers, and what an inbound call becomes. Nothing here does I/O.
//!
//! One module per channel (`twilio`, `messenger`, `whatsapp`, `telegram`, …) implements
//! [`Adapter`]; [`adapter`] finds it by channel. The shared rules live beside: the text fallback
//! and splitting (`render`), the mapping of a provider message's parts (`parts`), media links
//! (`media`).

use serde_json::{Map, Value};

use super::Channel;
use crate::activity::{Payload, SenderRole};
use crate::time::Millis;

/// An HTTP method of a provider request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Delete,
}

/// How a provider request authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderAuth {
    None,
    /// HTTP Basic.
    Basic {
        user: String,
        password: String,
    },
    /// `Authorization: Bearer …`.
    Bearer(String),
}

/// The body of a provider request.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestBody {
    None,
    Json(Value),
    /// `application/x-www-form-urlencoded`, in this order (names may repeat).
    Form(Vec<(String, String)>),
}

/// Where a provider request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Appended to the provider's base URL (`SWITCHBOARD_PROVIDER_<NAME>_URL`); begins with `/`
    /// and may carry a query string, already percent-encoded.
    Path(String),
    /// An absolute URL the provider gave (WhatsApp's media URL).
    Absolute(String),
}

/// One HTTP request to a provider.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderRequest {
    pub method: HttpMethod,
    pub target: Target,
    pub auth: ProviderAuth,
    pub body: RequestBody,
    /// What the call is for, as the metric `switchboard_provider_request_seconds{operation}`
    /// names it (`send`, `verify`, `register`, `media`, `profile`, …).
    pub operation: &'static str,
}

impl ProviderRequest {
    /// A request to `path` under the provider's base URL.
    pub fn new(
        method: HttpMethod,
        path: impl Into<String>,
        auth: ProviderAuth,
        body: RequestBody,
        operation: &'static str,
    ) -> Self {
        Self {
            method,
            target: Target::Path(path.into()),
            auth,
            body,
            operation,
        }
    }
}

/// What a provider answered to one request.
#[derive(Clone, Copy, Debug)]
pub struct ProviderResponse<'a> {
    pub status: u16,
    /// The `Retry-After` header, already read as milliseconds from now.
    pub retry_after_ms: Option<i64>,
    pub body: &'a [u8],
}

/// How one send (one part) ended (SPEC 7.4.3). Every `reason` reads
/// `"<Provider> <status>: <provider reason>"` and never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; the provider's id of the message when it gives one.
    Accepted { id: Option<String> },
    /// Try again later; `wait_ms` is the provider's own wait hint (`Retry-After`, Telegram
    /// `retry_after`, …) when it gave one.
    Retry {
        reason: String,
        wait_ms: Option<i64>,
    },
    /// Refused for good: `delivery_failed`.
    Permanent { reason: String },
    /// The credentials were refused: `provider_auth_failed`.
    Credentials { reason: String },
}

/// What an outbound render needs besides the activity (SPEC 7.4.1: rendered at send time from
/// the stored activity, the integration's current configuration and the conversation).
#[derive(Clone, Copy, Debug)]
pub struct SendContext<'a> {
    /// The integration's current configuration (secrets decrypted).
    pub configuration: &'a Map<String, Value>,
    /// The customer's binding in the conversation (phone number, PSID, chat id, …).
    pub binding: &'a str,
    /// The conversation's properties.
    pub properties: &'a Map<String, Value>,
    /// Now.
    pub now: Millis,
    /// Who sent the activity (Agent or Bot).
    pub sender: SenderRole,
    /// When the customer's last activity arrived (a message or an event such as a postback;
    /// read receipts and typing indicators do not count), if any.
    pub last_customer_activity: Option<Millis>,
    /// When the customer's last **message** arrived, if any.
    pub last_customer_message: Option<Millis>,
    /// `externalId` of the conversation's latest customer message received through this
    /// integration, without its `#n` suffix.
    pub last_customer_external_id: Option<&'a str>,
}

/// What an activity becomes for a provider.
#[derive(Clone, Debug, PartialEq)]
pub enum Rendered {
    /// The calls to make, in order: the parts of the delivery.
    Parts(Vec<ProviderRequest>),
    /// No call for this activity (an event the channel does not map).
    Nothing,
    /// Refused without a call, for good (WhatsApp outside its window): the reason.
    Refused(String),
}

/// An inbound call as received, for verification and parsing.
#[derive(Clone, Copy, Debug)]
pub struct InboundRequest<'a> {
    /// The absolute URL the provider called: `SWITCHBOARD_PUBLIC_URL` + path + (`?` + raw query
    /// when present). Twilio signs it.
    pub url: &'a str,
    /// The raw query string, without `?` (empty when none).
    pub query: &'a str,
    /// Headers, names lowercase.
    pub headers: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
}

impl InboundRequest<'_> {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One activity an inbound call carries (SPEC 7.3.2 steps 7–9).
#[derive(Clone, Debug, PartialEq)]
pub struct InboundItem {
    /// The customer's binding (phone number, PSID, chat id, `wa_id`, …).
    pub binding: String,
    /// The provider's message id (with `#n` for the extra parts of one provider message): the
    /// deduplication key.
    pub external_id: String,
    pub payload: Payload,
    /// Properties to merge into the conversation (SPEC 7.3.3): `{ "profile": {…},
    /// "channel": {…} }`, string values only.
    pub properties: Map<String, Value>,
    /// Only delivered into the binding's open conversation; none open: ignored (WhatsApp
    /// `read` statuses).
    pub existing_only: bool,
}

/// A notification an inbound call raises (WhatsApp `failed` statuses), at most once per
/// `dedupe_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundNotice {
    pub dedupe_key: String,
    /// `delivery_failed`, …
    pub kind: &'static str,
    pub description: String,
}

/// The provider's success answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    /// 200 with an empty body.
    pub fn empty() -> Self {
        Self {
            status: 200,
            content_type: "text/plain",
            body: String::new(),
        }
    }
}

/// What a verified inbound call carries.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Inbound {
    /// In provider order.
    pub items: Vec<InboundItem>,
    pub notices: Vec<InboundNotice>,
    /// Best-effort calls made after the answer (Telegram `answerCallbackQuery`).
    pub after: Vec<ProviderRequest>,
    /// Profile calls worth making when an item's binding opens a new conversation (Messenger's
    /// user profile), by binding; their answers are read by [`Adapter::profile`].
    pub profile_requests: Vec<(String, ProviderRequest)>,
}

/// Why an inbound call is refused (SPEC 7.3.2 steps 3–4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboundError {
    /// Missing or wrong signature: 401/102, nothing stored.
    Unauthorized,
    /// Unparseable after a valid signature: 400/300, with what was wrong.
    Unparseable(String),
}

/// What a provisioning call's answer means (SPEC 7.5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProvisionError {
    /// Connection error, timeout, 5xx, 429: 503/100 `"<Provider> is unreachable: <reason>"`.
    Unreachable(String),
    /// 4xx or a provider error: 400/206 `"<Provider> refused the configuration: <reason>
    /// (<code>)"`; the string is the whole description.
    Refused(String),
}

/// Turns a media reference into an absolute media link (SPEC 7.3.5); given by the caller,
/// which knows the public URL, the integration and the key.
pub type MediaLinker<'a> = &'a dyn Fn(&str) -> String;

/// Where a media file is fetched after its lookup.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaLocation {
    /// Fetch this (with the credentials it carries).
    Fetch(ProviderRequest),
    /// The provider no longer has it: 404/105.
    Gone,
}

/// One channel's adapter. Methods a channel has no use for keep their defaults.
pub trait Adapter: Sync {
    /// The provider's name in reasons and errors (`Twilio`, `Messenger`, `WhatsApp`, `Telegram`).
    fn provider(&self) -> &'static str;

    /// The secret-checking of SPEC 7.3.2 step 3, over the raw bytes, in constant time.
    /// `app_secret` is `SWITCHBOARD_MESSENGER_APP_SECRET` when set.
    fn verify(
        &self,
        configuration: &Map<String, Value>,
        app_secret: Option<&str>,
        request: &InboundRequest<'_>,
    ) -> bool;

    /// A handshake GET (Messenger and WhatsApp `hub.challenge`): `Some(Ok(answer))` to answer
    /// it, `Some(Err(()))` for 403/101, `None` when the channel has no GET handshake.
    fn handshake(
        &self,
        _configuration: &Map<String, Value>,
        _query: &str,
    ) -> Option<Result<Answer, ()>> {
        None
    }

    /// Parses a verified call (steps 4–6): the activities it carries, filtered; media that need
    /// credentials become links through `media`.
    fn parse(
        &self,
        configuration: &Map<String, Value>,
        request: &InboundRequest<'_>,
        media: MediaLinker<'_>,
    ) -> Result<Inbound, InboundError>;

    /// The provider's success answer to an inbound call (step 10).
    fn answer(&self) -> Answer {
        Answer::empty()
    }

    /// Conversation properties from a profile call's answer (`Inbound::profile_requests`).
    fn profile(&self, _body: &[u8]) -> Map<String, Value> {
        Map::new()
    }

    /// Whether the channel maps this `typing_on`, `typing_off` or `seen` event to a provider
    /// call (SPEC 7.4.1: only where the channel section says so).
    fn delivers_event(&self, _event: &crate::activity::Event) -> bool {
        false
    }

    /// The calls that send `payload` (SPEC 7.4), in order.
    fn render(&self, context: &SendContext<'_>, payload: &Payload) -> Rendered;

    /// How one send's answer ends it (SPEC 7.4.3), with the provider's message id.
    fn outcome(&self, response: &ProviderResponse<'_>) -> Outcome;

    /// Step 2 of SPEC 7.5.1: the call that verifies the credentials, none when the channel
    /// has none.
    fn verify_credentials(&self, _configuration: &Map<String, Value>) -> Option<ProviderRequest> {
        None
    }

    /// The read-only keys learned from the answer of [`Adapter::verify_credentials`] (checked
    /// against the configuration), or the refusal.
    fn learn(
        &self,
        _configuration: &Map<String, Value>,
        _response: &ProviderResponse<'_>,
    ) -> Result<Map<String, Value>, ProvisionError> {
        Ok(Map::new())
    }

    /// Step 4: the calls that register Switchboard's URL (`url` = `{PUBLIC_URL}/channels/…/{id}`),
    /// in order, with the configuration as it will be stored.
    fn register(&self, _configuration: &Map<String, Value>, _url: &str) -> Vec<ProviderRequest> {
        Vec::new()
    }

    /// Whether a registration call's answer is a success; else the refusal.
    fn registered(&self, _response: &ProviderResponse<'_>) -> Result<(), ProvisionError> {
        Ok(())
    }

    /// The best-effort call that deregisters on delete.
    fn deregister(&self, _configuration: &Map<String, Value>) -> Option<ProviderRequest> {
        None
    }

    /// Media links: the lookup call for a provider reference (`None`: the reference is not
    /// fetched in two steps, [`Adapter::media_location`] gets no answer to read).
    fn media_lookup(
        &self,
        _configuration: &Map<String, Value>,
        _reference: &str,
    ) -> Option<ProviderRequest> {
        None
    }

    /// Where the file is, from the lookup's answer.
    fn media_location(
        &self,
        _configuration: &Map<String, Value>,
        _response: &ProviderResponse<'_>,
    ) -> MediaLocation {
        MediaLocation::Gone
    }
}

/// The adapter of a provider channel built so far; `None` for the others (their activities are
/// stored only).
pub fn adapter(channel: Channel) -> Option<&'static dyn Adapter> {
    match channel {
        Channel::TwilioSms => Some(&super::twilio::Twilio),
        Channel::Messenger => Some(&super::messenger::Messenger),
        Channel::WhatsApp => Some(&super::whatsapp::WhatsApp),
        Channel::Telegram => Some(&super::telegram::Telegram),
        _ => None,
    }
}

/// Whether an activity to a provider channel becomes a provider delivery (SPEC 7.4.1): every
/// message, and the `typing_on`, `typing_off` and `seen` events the channel maps (one attempt
/// each); no other event.
pub fn delivers(channel: Channel, payload: &Payload) -> bool {
    let Some(adapter) = adapter(channel) else {
        return false;
    };
    match payload {
        Payload::Message(_) => true,
        Payload::Event(e) => is_fleeting(e) && adapter.delivers_event(e),
    }
}

/// The events a provider gets one attempt of, never retried and never notified.
pub fn is_fleeting(event: &crate::activity::Event) -> bool {
    use crate::activity::Event;
    matches!(event, Event::TypingOn | Event::TypingOff | Event::Seen)
}

/// `s` percent-encoded for a URL path segment or query value: everything but RFC 3986's
/// unreserved characters becomes `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A configuration string, `None` when absent or not a string.
pub fn config_str<'a>(configuration: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    configuration.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("EAAB-x_y.z~1"), "EAAB-x_y.z~1");
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn only_mapped_events_of_channels_with_an_adapter_are_delivered() {
        use crate::activity::{Event, Message};
        let text = Payload::Message(Message::text("hi"));
        assert!(delivers(Channel::TwilioSms, &text));
        assert!(!delivers(Channel::Line, &text));
        let typing = Payload::Event(Event::TypingOn);
        assert!(delivers(Channel::Telegram, &typing));
        assert!(!delivers(Channel::TwilioSms, &typing));
        assert!(!delivers(Channel::Telegram, &Payload::Event(Event::Seen)));
        assert!(delivers(
            Channel::Messenger,
            &Payload::Event(Event::TypingOff)
        ));
        assert!(!delivers(
            Channel::WhatsApp,
            &Payload::Event(Event::TypingOff)
        ));
        assert!(!delivers(
            Channel::Messenger,
            &Payload::Event(Event::Takeover)
        ));
    }
}
