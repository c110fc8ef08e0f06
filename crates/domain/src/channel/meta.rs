//! What Messenger and WhatsApp share on Meta's Graph API: the subscription handshake and the
//! `X-Hub-Signature-256` check (SPEC 7.8, 7.8a).
