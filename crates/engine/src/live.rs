//! After a commit: the live copies of stored routes go on the bus (as the frames of SPEC 5.6,
//! built with the one Direct body builder), the webhook worker is woken when deliveries were
//! queued, and revoked integrations' websockets are closed on every node. All of it is best
//! effort: what was stored stays stored, and a client that missed a frame gets it on `resume`.

use std::sync::Arc;

use switchboard_delivery::live::{activity_frame, webchat_frame, LiveMessage};
use switchboard_domain::channel::Channel;
use switchboard_domain::conversation::Conversation;
use switchboard_domain::ids::IntegrationId;
use switchboard_domain::routing::{Reach, Route};
use switchboard_domain::webhook::BodyHead;
use switchboard_storage::Appended;

use crate::Engine;

/// Close code of the websockets of a deleted or paused integration (SPEC 5.6).
pub const CLOSE_REVOKED: u16 = 4403;
/// Close code of the widget sockets of a closed WebChat conversation (SPEC 7.18.3).
pub const CLOSE_CONVERSATION_CLOSED: u16 = 4410;

impl Engine {
    /// Wakes this node's webhook worker when `routes` queued a webhook delivery, and publishes
    /// the copies whose recipient is a Direct integration on the live bus (its websockets: the
    /// live path, or a mirror of its webhook). A failed publish is logged: the copies are
    /// stored, so a client gets them on `resume`.
    pub(crate) async fn publish(
        &self,
        conversation: &Conversation,
        routes: &[Route],
        appended: &[Appended],
    ) {
        let queued = routes
            .iter()
            .flat_map(|r| &r.recipients)
            .any(|r| matches!(r.reach, Reach::Webhook { .. } | Reach::Provider));
        if queued {
            self.wake_deliveries();
        }
        let mut messages = Vec::new();
        // The conversation's properties, serialized once for every frame.
        let mut properties: Option<String> = None;
        for (route, stored) in routes.iter().zip(appended) {
            for (recipient, activity) in route.recipients.iter().zip(&stored.activities) {
                let head = BodyHead {
                    hub_id: conversation.hub_id,
                    tenant_id: conversation.tenant_id,
                    integration_id: activity.recipient.integration_id,
                    conversation_id: conversation.id,
                };
                let frame = match recipient.channel {
                    Channel::Direct => {
                        let props = match &properties {
                            Some(p) => p,
                            None => properties.insert(json_text(&conversation.properties)),
                        };
                        activity_frame(&head, props, &json_text(activity))
                    }
                    // The widget's sockets of this conversation (SPEC 7.18.3): their sessions
                    // are registered with the conversation, so only they get it.
                    Channel::WebChat => webchat_frame(&head, &json_text(activity)),
                    _ => continue,
                };
                messages.push(LiveMessage::Activity {
                    integration_id: recipient.integration_id,
                    conversation_id: conversation.id,
                    event_id: stored.event_id,
                    frame: Arc::from(frame),
                });
            }
        }
        if messages.is_empty() {
            return;
        }
        if let Err(e) = self.bus().publish(messages).await {
            tracing::warn!(error = %e, conversation = %conversation.id, "live publish failed; clients recover with resume");
        }
    }

    /// Closes the widget sockets of a closed WebChat conversation on every node with
    /// [`CLOSE_CONVERSATION_CLOSED`] (SPEC 7.18.3). A failed publish is logged.
    pub(crate) async fn close_conversation_sockets(&self, conversation: &Conversation) {
        let message = LiveMessage::CloseConversation {
            integration_id: conversation.integration_id,
            conversation_id: conversation.id,
            code: CLOSE_CONVERSATION_CLOSED,
            reason: "conversation closed".to_owned(),
        };
        if let Err(e) = self.bus().publish(vec![message]).await {
            tracing::warn!(error = %e, conversation = %conversation.id, "could not close the widget sockets of a closed conversation");
        }
    }

    /// Closes the websockets of these integrations on every node with 4403 (deleted or
    /// paused), giving `why` as the reason. A failed publish is logged.
    pub async fn revoke(&self, integrations: &[IntegrationId], why: &str) {
        let messages: Vec<LiveMessage> = integrations
            .iter()
            .map(|id| LiveMessage::Close {
                integration_id: *id,
                code: CLOSE_REVOKED,
                reason: why.to_owned(),
            })
            .collect();
        if messages.is_empty() {
            return;
        }
        if let Err(e) = self.bus().publish(messages).await {
            tracing::warn!(error = %e, "could not close the websockets of revoked integrations");
        }
    }
}

/// The JSON text of a value that always serializes (maps with string keys, activities).
fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a live frame could not be serialized");
        "null".to_owned()
    })
}
