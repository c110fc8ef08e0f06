//! SPEC 8.8/8.9 reads of an app user's conversations: every conversation of one customer (a
//! Customer integration and a binding), and the messages of a set of conversations, one per
//! activity, paged by `eventId` for getMessages.

use sea_orm::sea_query::ColumnType;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use switchboard_domain::conversation::Conversation;
use switchboard_domain::ids::{ConversationId, IntegrationId, TenantId};
use switchboard_domain::time::Millis;

use crate::conversations::to_conversation;
use crate::entities::conversation;
use crate::{Result, Store};

/// Where a page of messages starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageCursor {
    /// The latest ones with `eventId` < the value (newest first while scanning).
    Before(Millis),
    /// The earliest ones with `eventId` > the value.
    After(Millis),
}

/// One message activity: a stored copy of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub event_id: Millis,
    pub conversation_id: ConversationId,
    /// The copy's SPEC 4 JSON.
    pub body: String,
}

/// Copies read per scan step: several copies make one activity, and events are skipped.
const SCAN_BATCH: i64 = 500;

impl Store {
    /// Every conversation of `binding` on the tenant's `integration`, oldest first.
    pub async fn binding_conversations(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        binding: &str,
    ) -> Result<Vec<Conversation>> {
        self.read_all(
            conversation::Entity::find()
                .filter(conversation::Column::TenantId.eq(tenant.as_uuid()))
                .filter(conversation::Column::IntegrationId.eq(integration.as_uuid()))
                .filter(conversation::Column::Binding.eq(binding))
                .order_by_asc(conversation::Column::Opened)
                .order_by_asc(conversation::Column::Id),
        )
        .await?
        .into_iter()
        .map(to_conversation)
        .collect()
    }

    /// Up to `limit` message activities of `conversations` (one stored copy of each, not an
    /// echo), in the cursor's direction: the latest before it (answered oldest first) or the
    /// earliest after it. Events are skipped.
    pub async fn conversation_messages(
        &self,
        tenant: TenantId,
        conversations: &[ConversationId],
        cursor: MessageCursor,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let mut out: Vec<StoredMessage> = Vec::new();
        if conversations.is_empty() || limit == 0 {
            return Ok(out);
        }
        let (mut bound, descending) = match cursor {
            MessageCursor::Before(ms) => (ms, true),
            MessageCursor::After(ms) => (ms, false),
        };
        let list: Vec<String> = (0..conversations.len())
            .map(|i| format!("${}", i + 4))
            .collect();
        let sql = format!(
            "SELECT event_id, conversation_id, body FROM activities WHERE tenant_id = $1 AND is_echo = {f} \
             AND event_id {op} $2 AND conversation_id IN ({list}) \
             ORDER BY event_id {dir}, id LIMIT $3",
            f = if self.is_postgres() { "false" } else { "0" },
            op = if descending { "<" } else { ">" },
            dir = if descending { "DESC" } else { "ASC" },
            list = list.join(", "),
        );
        loop {
            let mut values: Vec<sea_orm::Value> =
                vec![tenant.as_uuid().into(), bound.into(), SCAN_BATCH.into()];
            values.extend(conversations.iter().map(|c| c.as_uuid().into()));
            let rows = self
                .read_rows(
                    self.statement(&sql, values),
                    &[
                        ("event_id", ColumnType::BigInteger),
                        ("conversation_id", ColumnType::Uuid),
                        ("body", ColumnType::Text),
                    ],
                )
                .await?;
            let scanned = rows.len();
            let mut last_seen = None;
            for row in rows {
                let event_id: i64 = row.try_get("", "event_id")?;
                let body: String = row.try_get("", "body")?;
                if last_seen == Some(event_id) {
                    continue;
                }
                last_seen = Some(event_id);
                if is_message(&body) {
                    out.push(StoredMessage {
                        event_id,
                        conversation_id: ConversationId::from_uuid(
                            row.try_get("", "conversation_id")?,
                        ),
                        body,
                    });
                    if out.len() == limit {
                        break;
                    }
                }
            }
            if out.len() == limit || (scanned as i64) < SCAN_BATCH {
                break;
            }
            // The next batch starts past the last event read: if this batch cut its copies in
            // two, the rest are copies of an activity already counted (or skipped).
            match last_seen {
                Some(last) => bound = last,
                None => break,
            }
        }
        if descending {
            out.reverse();
        }
        Ok(out)
    }
}

/// Whether a stored copy is a message (its `type`), without parsing the whole activity.
fn is_message(body: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: &'a str,
    }
    serde_json::from_str::<Kind<'_>>(body).is_ok_and(|k| k.kind == "message")
}
