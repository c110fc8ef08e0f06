//! The channel catalogue (SPEC 3): every channel's number, name and integration type, and the
//! channel adapters (SPEC 7): the shared framework in [`adapter`], one module per provider.

pub mod adapter;
pub mod media;
pub mod messenger;
pub mod meta;
pub mod parts;
pub mod render;
pub mod telegram;
pub mod twilio;
pub mod webchat;
pub mod whatsapp;

use std::fmt;

/// The kind of party an integration speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntegrationType {
    Customer,
    Agent,
    Bot,
    System,
}

impl IntegrationType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "Customer",
            Self::Agent => "Agent",
            Self::Bot => "Bot",
            Self::System => "System",
        }
    }

    /// Parses `Customer`, `Agent`, `Bot`, `System` (case-insensitively).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Customer, Self::Agent, Self::Bot, Self::System]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for IntegrationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Direct,
    System,
    Messenger,
    TwilioSms,
    Line,
    Telegram,
    Kik,
    WebChat,
    Viber,
    WeChat,
    Twitter,
    Mailgun,
    MessageBird,
    Email,
    Apn,
    Fcm,
    Slack,
    WhatsApp,
}

impl Channel {
    /// Every channel, in catalogue order.
    pub const ALL: [Channel; 18] = [
        Self::Direct,
        Self::System,
        Self::Messenger,
        Self::TwilioSms,
        Self::Line,
        Self::Telegram,
        Self::Kik,
        Self::WebChat,
        Self::Viber,
        Self::WeChat,
        Self::Twitter,
        Self::Mailgun,
        Self::MessageBird,
        Self::Email,
        Self::WhatsApp,
        Self::Apn,
        Self::Fcm,
        Self::Slack,
    ];

    /// The catalogue number.
    pub const fn number(self) -> i32 {
        match self {
            Self::Direct => 1,
            Self::System => 3,
            Self::Messenger => 101,
            Self::TwilioSms => 102,
            Self::Line => 103,
            Self::Telegram => 104,
            Self::Kik => 105,
            Self::WebChat => 106,
            Self::Viber => 107,
            Self::WeChat => 108,
            Self::Twitter => 109,
            Self::Mailgun => 110,
            Self::MessageBird => 111,
            Self::Email => 112,
            Self::WhatsApp => 113,
            Self::Apn => 201,
            Self::Fcm => 202,
            Self::Slack => 1001,
        }
    }

    /// The catalogue name, as answered in `channelId`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Direct => "Direct",
            Self::System => "System",
            Self::Messenger => "Messenger",
            Self::TwilioSms => "TwilioSMS",
            Self::Line => "Line",
            Self::Telegram => "Telegram",
            Self::Kik => "Kik",
            Self::WebChat => "WebChat",
            Self::Viber => "Viber",
            Self::WeChat => "WeChat",
            Self::Twitter => "Twitter",
            Self::Mailgun => "Mailgun",
            Self::MessageBird => "MessageBird",
            Self::Email => "Email",
            Self::WhatsApp => "WhatsApp",
            Self::Apn => "Apn",
            Self::Fcm => "Fcm",
            Self::Slack => "Slack",
        }
    }

    /// From its number.
    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| i64::from(c.number()) == n)
    }

    /// From its name (case-insensitively) or its number written as digits.
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(n) = s.trim().parse::<i64>() {
            return Self::from_number(n);
        }
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
    }

    /// The integration type every integration of this channel has, where the channel fixes it
    /// (`None` for Direct, whose `integrationType` key says).
    pub const fn fixed_type(self) -> Option<IntegrationType> {
        match self {
            Self::Direct => None,
            Self::System => Some(IntegrationType::System),
            Self::Slack => Some(IntegrationType::Agent),
            _ => Some(IntegrationType::Customer),
        }
    }

    /// Whether the channel re-authenticates with its provider, so that a configuration update
    /// is ignored (with a `Warning`): TwilioSMS, Messenger and Slack.
    pub const fn ignores_config_updates(self) -> bool {
        matches!(self, Self::TwilioSms | Self::Messenger | Self::Slack)
    }

    /// Whether integrations of this channel get an Ed25519 signing key pair.
    pub const fn has_signing_keys(self) -> bool {
        matches!(self, Self::Direct | Self::System)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(Channel::parse("TwilioSMS"), Some(Channel::TwilioSms));
        assert_eq!(Channel::parse("twiliosms"), Some(Channel::TwilioSms));
        assert_eq!(Channel::parse("102"), Some(Channel::TwilioSms));
        assert_eq!(Channel::parse("1001"), Some(Channel::Slack));
        assert_eq!(Channel::parse("2"), None);
        assert_eq!(Channel::parse("Fax"), None);
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.name()), Some(c));
            assert_eq!(Channel::from_number(c.number().into()), Some(c));
        }
    }
}
