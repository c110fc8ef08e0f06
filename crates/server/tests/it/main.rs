//! End-to-end tests: a real server on an ephemeral port with the production wiring, driven over
//! HTTP with reqwest. One binary, a module per area.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod fakes;
mod gate;
mod support;

mod channels;
mod channels_messenger;
mod channels_telegram;
mod channels_twilio;
mod channels_whatsapp;
mod drain;
mod engine;
mod errors;
mod hubs;
mod identity;
mod integrations;
mod live;
mod multinode;
mod node;
mod operations;
mod rate_limits;
mod sender_hub;
mod sizes;
mod slow_clients;
mod smooch_auth;
mod smooch_client;
mod smooch_integrations;
mod smooch_users;
mod smooch_webhooks;
mod webchat;
mod webchat_browser;
mod webhook_crash;
mod webhooks;
mod ws_credentials;
