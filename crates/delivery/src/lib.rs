//! Delivery of activities to their recipients: the webhook worker (signed, retried, ordered,
//! at-least-once, from the outbox written with each activity) and the live bus that carries
//! activities to websocket sessions on every node.
//!
//! Empty until the engine and webhook issues (#3, #4) land; the crate exists now so that the
//! dependency direction of ARCHITECTURE.md (`api → delivery → storage → domain`) is fixed.
