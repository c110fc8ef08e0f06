//! The webhook outbox (SPEC 5.5): deliveries written with their activities, claimed by workers
//! under a lease, settled after each attempt, listed and replayed by tenant admins, and the
//! tenant's notifications.
//!
//! Order: a delivery is claimable only when no older pending delivery exists for the same
//! endpoint (integration) and conversation, so one conversation's deliveries reach one endpoint
//! one at a time, in order. On PostgreSQL the claim takes rows with `FOR UPDATE SKIP LOCKED`,
//! so nodes share the work without sending one delivery twice; a worker that dies leaves its
//! lease to expire, and the delivery is claimed again (at-least-once).
//!
//! Claims, settles and the other outbox writes go through the write door (`doors`); attempts
//! that end at the same time are settled in one transaction (a group commit, see `group`).

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{ColumnType, Expr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QueryTrait,
    Value as DbValue,
};
use switchboard_domain::channel::Channel;
use switchboard_domain::ids::{
    ConversationId, DeliveryId, HubId, IntegrationId, NotificationId, TenantId,
};
use switchboard_domain::integration::{Integration, IntegrationStatus};
use switchboard_domain::paging::{Page, PageRequest};
use switchboard_domain::time::Millis;
use switchboard_domain::webhook::{DeliveryKind, DeliveryStatus};
use uuid::Uuid;

use crate::doors::Tx;
use crate::entities::{delivery, delivery_activity, delivery_attempt, integration, notification};
use crate::group::all_or_each;
use crate::once::SqlOnce;
use crate::{Error, Result, Store};

/// One attempt of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub at: Millis,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A delivery as tenant admins see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub hub_id: HubId,
    pub integration_id: IntegrationId,
    pub conversation_id: ConversationId,
    pub webhook_id: String,
    pub kind: DeliveryKind,
    pub status: DeliveryStatus,
    pub event_ids: Vec<Millis>,
    pub attempt_count: i32,
    /// Attempts since it was last queued (its place in the schedule).
    pub round_attempts: i32,
    pub next_attempt_at: Option<Millis>,
    pub last_error: Option<String>,
    pub attempts: Vec<Attempt>,
    pub created: Millis,
    /// Provider deliveries: the recipient's channel (`"Telegram"`); `None` on webhooks.
    pub channel: Option<String>,
    /// Provider deliveries: how many parts the provider accepted.
    pub parts_accepted: i32,
    /// Provider deliveries: the provider's ids of the accepted parts.
    pub provider_ids: Vec<String>,
}

/// `next_attempt_at` of a provider delivery held while providers are offline (SPEC 7.5.3):
/// never due until a live start releases it; answered as `nextAttemptAt: null`.
pub const HELD: Millis = i64::MAX;

/// What a provider delivery's render needs of its conversation (SPEC 7.4.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversationFacts {
    /// The customer's binding.
    pub binding: String,
    /// When the customer's last activity arrived.
    pub last_customer_activity: Option<Millis>,
    /// When the customer's last message arrived.
    pub last_customer_message: Option<Millis>,
    /// `externalId` of the latest customer message received through the delivery's
    /// integration, without its `#n` suffix.
    pub last_customer_external_id: Option<String>,
}

/// What a smooch-format webhook body (SPEC 8.7) needs of its conversation and sender, besides
/// the app user.
#[derive(Clone, Debug, PartialEq)]
pub struct SmoochFacts {
    /// The conversation's customer integration and its channel.
    pub customer_integration: IntegrationId,
    pub customer_channel: Channel,
    /// The customer's binding.
    pub binding: String,
    /// `openedDateTime`: a lazily made app user's `signedUpAt`.
    pub opened: Millis,
    /// The conversation's last activity.
    pub last_activity: Millis,
    /// `properties.profile."full name"`, when set.
    pub full_name: Option<String>,
    /// The sending integration's name (an `appMaker` message's `name`).
    pub sender_name: Option<String>,
}

/// A claimed delivery with what its POST needs.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery: Delivery,
    /// The endpoint's integration now (its `webhookUrl` and keys).
    pub integration: Integration,
    /// The conversation's properties now, as JSON.
    pub properties: String,
    /// The activity copies, oldest first, as JSON.
    pub activities: Vec<String>,
    /// Provider deliveries: what the render needs of the conversation.
    pub conversation: Option<ConversationFacts>,
}

/// How an attempt ends a delivery's turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settle {
    Succeeded,
    /// Attempt again at this time.
    Retry {
        next_at: Millis,
    },
    /// Give up, record a notification, and pause the integration when it answered 410.
    Failed {
        kind: String,
        description: String,
        pause_integration: bool,
    },
    /// Give up without a notification (a provider event's one attempt, SPEC 7.4.1).
    Abandoned,
}

/// A notification for a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: NotificationId,
    pub integration_id: IntegrationId,
    pub delivery_id: Option<DeliveryId>,
    pub kind: String,
    pub description: String,
    pub created: Millis,
}

/// A webhook recipient of one stored copy, for [`Store::append_activities`] and friends.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    pub tenant_id: TenantId,
    pub hub_id: HubId,
    pub conversation_id: ConversationId,
    pub activity_id: Uuid,
    pub event_id: Millis,
    pub integration_id: IntegrationId,
    pub kind: DeliveryKind,
    /// Provider deliveries: the recipient's channel.
    pub channel: Option<Channel>,
}

/// A settled attempt: the delivery, the attempt, and what follows.
pub(crate) type SettleJob = (DeliveryId, Attempt, Settle);

fn to_delivery(
    row: delivery::Model,
    event_ids: Vec<Millis>,
    attempts: Vec<Attempt>,
) -> Result<Delivery> {
    let corrupt = |what: &str| Error::Db(format!("delivery {} has a bad {what}", row.id));
    let status = DeliveryStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?;
    Ok(Delivery {
        id: DeliveryId::from_uuid(row.id),
        tenant_id: TenantId::from_uuid(row.tenant_id),
        hub_id: HubId::from_uuid(row.hub_id),
        integration_id: IntegrationId::from_uuid(row.integration_id),
        conversation_id: ConversationId::from_uuid(row.conversation_id),
        webhook_id: row.webhook_id,
        kind: DeliveryKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
        status,
        event_ids,
        attempt_count: row.attempt_count,
        round_attempts: row.round_attempts,
        next_attempt_at: (status == DeliveryStatus::Pending && row.next_attempt_at != HELD)
            .then_some(row.next_attempt_at),
        last_error: row.last_error,
        attempts,
        created: row.created,
        channel: row.channel,
        parts_accepted: row.parts_accepted,
        provider_ids: row
            .provider_ids
            .as_deref()
            .and_then(|ids| serde_json::from_str(ids).ok())
            .unwrap_or_default(),
    })
}

/// `$first, $first+1, …` for `n` values.
/// What a delivery's `last_error` becomes after an attempt: its error, else a status that is not
/// 2xx; `None` for a success.
pub(crate) fn last_error(attempt: &Attempt) -> Option<String> {
    attempt.error.clone().or_else(|| {
        attempt
            .status_code
            .filter(|c| !(200..300).contains(c))
            .map(|c| format!("HTTP {c}"))
    })
}

/// The stored row of one attempt of delivery `id`.
fn attempt_row(id: DeliveryId, attempt: &Attempt) -> delivery_attempt::ActiveModel {
    delivery_attempt::ActiveModel {
        id: Set(Uuid::now_v7()),
        delivery_id: Set(id.as_uuid()),
        at: Set(attempt.at),
        status_code: Set(attempt.status_code.map(i32::from)),
        error: Set(attempt.error.clone()),
        duration_ms: Set(attempt.duration_ms),
    }
}

pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Writes one delivery per outbox entry in `tx` (the activity's transaction), due at
    /// `due`.
    pub(crate) async fn enqueue_in(
        &self,
        tx: &Tx<'_>,
        entries: &[Outbox],
        now: Millis,
        due: Millis,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // Streams (endpoint, conversation) that already have a head. On PostgreSQL the heads are
        // locked: a settle that is moving a head on waits, or is waited for, so a stream never
        // ends up without one. (Two heads can happen; the claim's order check copes with that.)
        let mut streams: Vec<(Uuid, Uuid)> = entries
            .iter()
            .map(|e| (e.integration_id.as_uuid(), e.conversation_id.as_uuid()))
            .collect();
        streams.sort_unstable();
        streams.dedup();
        let mut values: Vec<DbValue> = vec![DeliveryStatus::Pending.as_str().into()];
        let pairs: Vec<String> = streams
            .iter()
            .enumerate()
            .map(|(i, (integration, conversation))| {
                values.push((*integration).into());
                values.push((*conversation).into());
                format!("(${}, ${})", 2 * i + 2, 2 * i + 3)
            })
            .collect();
        // Locked in id order, as a group of settles locks its deliveries, so the two never
        // deadlock.
        let lock = if self.is_postgres() {
            " ORDER BY id FOR UPDATE"
        } else {
            ""
        };
        let mut headed: HashSet<(Uuid, Uuid)> = HashSet::new();
        for row in tx
            .rows(
                self.statement(
                    &format!(
                        "SELECT integration_id, conversation_id FROM deliveries \
                         WHERE head AND status = $1 AND (integration_id, conversation_id) IN (VALUES {}){lock}",
                        pairs.join(", ")
                    ),
                    values,
                ),
                &[
                    ("integration_id", ColumnType::Uuid),
                    ("conversation_id", ColumnType::Uuid),
                ],
            )
            .await?
        {
            headed.insert((
                row.try_get::<Uuid>("", "integration_id")?,
                row.try_get::<Uuid>("", "conversation_id")?,
            ));
        }

        let mut rows = Vec::with_capacity(entries.len());
        let mut links = Vec::with_capacity(entries.len());
        for e in entries {
            let id = DeliveryId::new();
            // The first entry of a stream without a head is its head (entries come oldest first).
            let head = headed.insert((e.integration_id.as_uuid(), e.conversation_id.as_uuid()));
            // Provider deliveries wait for a live start while providers are offline.
            let held = e.kind == DeliveryKind::Provider && self.providers_offline;
            rows.push(delivery::ActiveModel {
                id: Set(id.as_uuid()),
                tenant_id: Set(e.tenant_id.as_uuid()),
                hub_id: Set(e.hub_id.as_uuid()),
                integration_id: Set(e.integration_id.as_uuid()),
                conversation_id: Set(e.conversation_id.as_uuid()),
                webhook_id: Set(format!("msg_{}", id.as_uuid().simple())),
                kind: Set(e.kind.as_str().to_owned()),
                status: Set(DeliveryStatus::Pending.as_str().to_owned()),
                seq: Set(e.event_id),
                attempt_count: Set(0),
                round_attempts: Set(0),
                next_attempt_at: Set(if held { HELD } else { due }),
                lease_until: Set(None),
                last_error: Set(held.then(|| "providers offline".to_owned())),
                created: Set(now),
                modified: Set(now),
                head: Set(head),
                channel: Set(e.channel.map(|c| c.name().to_owned())),
                parts_accepted: Set(0),
                provider_ids: Set(None),
            });
            links.push(delivery_activity::ActiveModel {
                delivery_id: Set(id.as_uuid()),
                activity_id: Set(e.activity_id),
                event_id: Set(e.event_id),
            });
        }
        for chunk in rows.chunks(500) {
            tx.run(delivery::Entity::insert_many(chunk.to_vec()))
                .await?;
        }
        for chunk in links.chunks(1000) {
            tx.run(delivery_activity::Entity::insert_many(chunk.to_vec()))
                .await?;
        }
        Ok(())
    }

    /// Claims up to `limit` due deliveries for `lease_ms`: each the oldest pending delivery of
    /// its endpoint and conversation, not claimed by a live lease. Answers them with what their
    /// POST needs; a delivery whose integration is gone is dropped. Only the flagged heads of
    /// the streams are looked at (a small partial index, whatever the backlog); the check that
    /// no older delivery of the stream is pending still decides.
    pub async fn claim_deliveries(
        &self,
        now: Millis,
        lease_ms: i64,
        limit: u64,
        skip: &[IntegrationId],
    ) -> Result<Vec<Claimed>> {
        // Endpoints that already have as many attempts in flight as they may (ids are UUIDs,
        // so they are spliced as literals).
        let skip = if skip.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = skip
                .iter()
                .map(|i| {
                    if self.is_postgres() {
                        format!("'{i}'::uuid")
                    } else {
                        format!("X'{}'", i.as_uuid().simple())
                    }
                })
                .collect();
            format!(" AND d.integration_id NOT IN ({})", ids.join(","))
        };
        let lock = if self.is_postgres() {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE deliveries SET lease_until = $1, modified = $2 WHERE id IN (\
             SELECT d.id FROM deliveries d WHERE d.head AND d.status = 'pending' AND d.next_attempt_at <= $2 \
             AND (d.lease_until IS NULL OR d.lease_until < $2){skip} \
             AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.integration_id = d.integration_id \
             AND e.conversation_id = d.conversation_id AND e.status = 'pending' AND e.seq < d.seq) \
             ORDER BY d.next_attempt_at, d.seq LIMIT $3{lock}) RETURNING *"
        );
        let statement = self.statement(
            &sql,
            vec![
                (now + lease_ms).into(),
                now.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        );
        // On PostgreSQL the claim is one statement, so it runs as its own transaction: no
        // `BEGIN` and `COMMIT` round trips around it (its rows are locked while it runs, and
        // `SKIP LOCKED` keeps two nodes' claims apart as before). A SQLite file writes it on the
        // writer thread.
        let rows = if self.is_postgres() {
            delivery::Entity::find()
                .from_raw_sql(statement)
                .all(&self.db)
                .await?
        } else {
            self.write(move |_s, tx| {
                Box::pin(async move { tx.models::<delivery::Entity>(statement).await })
            })
            .await?
        };

        if rows.is_empty() {
            return Ok(Vec::new());
        }

        // What the POSTs need, for the whole batch at once: the endpoints' integrations, the
        // copies of each delivery, and the conversations' properties.
        let mut integration_ids: Vec<Uuid> = rows.iter().map(|r| r.integration_id).collect();
        integration_ids.sort_unstable();
        integration_ids.dedup();
        let integrations: HashMap<Uuid, Integration> = self
            .read_all(
                integration::Entity::find().filter(integration::Column::Id.is_in(integration_ids)),
            )
            .await?
            .into_iter()
            .map(|row| Ok((row.id, self.to_integration(row)?)))
            .collect::<Result<_>>()?;

        // The copies of each delivery with their conversation's properties now, in one read.
        // Each copy and each conversation is looked up by its key in a subquery of its own: a
        // join here was planned as a hash join over the whole `activities` table whenever the
        // statistics lagged behind the outbox (a fresh database, autovacuum late or off), one
        // scan of every activity per claim. A copy that is gone is left out; so is the
        // properties of a conversation that is gone (read as `{}`).
        let delivery_ids: Vec<DbValue> = rows.iter().map(|r| r.id.into()).collect();
        let items = self
            .read_rows(
                self.statement(
                    &format!(
                        "SELECT l.delivery_id, l.event_id, \
                         (SELECT a.body FROM activities a WHERE a.id = l.activity_id) AS body, \
                         (SELECT c.properties FROM deliveries d JOIN conversations c ON c.id = d.conversation_id \
                         WHERE d.id = l.delivery_id) AS properties \
                         FROM delivery_activities l \
                         WHERE l.delivery_id IN ({}) ORDER BY l.delivery_id, l.event_id",
                        placeholders(1, delivery_ids.len())
                    ),
                    delivery_ids,
                ),
                &[
                    ("delivery_id", ColumnType::Uuid),
                    ("event_id", ColumnType::BigInteger),
                    ("body", ColumnType::Text),
                    ("properties", ColumnType::Text),
                ],
            )
            .await?;
        let mut copies: HashMap<Uuid, (Vec<String>, Vec<Millis>)> = HashMap::new();
        let mut properties: HashMap<Uuid, String> = HashMap::new();
        for item in items {
            let id = item.try_get::<Uuid>("", "delivery_id")?;
            if let Some(p) = item.try_get::<Option<String>>("", "properties")? {
                properties.entry(id).or_insert(p);
            }
            let Some(body) = item.try_get::<Option<String>>("", "body")? else {
                continue;
            };
            let entry = copies.entry(id).or_default();
            entry.0.push(body);
            entry.1.push(item.try_get::<i64>("", "event_id")?);
        }

        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            // A delivery whose integration is gone is dropped.
            let Some(integration) = integrations.get(&row.integration_id).cloned() else {
                continue;
            };
            let (activities, event_ids) = copies.remove(&row.id).unwrap_or_default();
            let properties = properties
                .remove(&row.id)
                .unwrap_or_else(|| "{}".to_owned());
            let provider = row.kind == DeliveryKind::Provider.as_str();
            let conversation_id = row.conversation_id;
            let delivery = to_delivery(row, event_ids, Vec::new())?;
            let conversation = if provider {
                Some(
                    self.conversation_facts(conversation_id, integration.id)
                        .await?,
                )
            } else {
                None
            };
            claimed.push(Claimed {
                delivery,
                integration,
                properties,
                activities,
                conversation,
            });
        }
        Ok(claimed)
    }

    /// Records an attempt of a claimed delivery and what follows it, and releases the lease.
    /// Attempts that end at the same time are recorded in one transaction (a group commit).
    pub async fn settle_delivery(
        &self,
        id: DeliveryId,
        attempt: &Attempt,
        settle: &Settle,
    ) -> Result<()> {
        self.settle_grouped((id, attempt.clone(), settle.clone()))
            .await
    }

    /// Records a webhook attempt in a group commit with the others that end meanwhile.
    async fn settle_grouped(&self, job: SettleJob) -> Result<()> {
        let store = self.clone();
        self.settles
            .submit(job, move |jobs| {
                let store = store.clone();
                async move {
                    all_or_each(jobs, |jobs| {
                        let store = store.clone();
                        async move { store.write_settles(jobs).await }
                    })
                    .await
                }
            })
            .await
    }

    /// Records every settled attempt in one transaction.
    async fn write_settles(&self, jobs: Vec<SettleJob>) -> Result<Vec<()>> {
        let n = jobs.len();
        let paused = jobs.iter().any(|(_, _, s)| {
            matches!(
                s,
                Settle::Failed {
                    pause_integration: true,
                    ..
                }
            )
        });
        self.write(move |s, tx| Box::pin(async move { s.settles_in(tx, &jobs).await }))
            .await?;
        if paused {
            self.hubs_changed();
        }
        Ok(vec![(); n])
    }

    /// Records the settled attempts `jobs` in `tx`.
    async fn settles_in(&self, tx: &Tx<'_>, jobs: &[SettleJob]) -> Result<()> {
        // In id order: an enqueue locks the heads it looks at in the same order.
        let mut order: Vec<&SettleJob> = jobs.iter().collect();
        order.sort_by_key(|(id, _, _)| id.as_uuid());
        if self.is_postgres() {
            // The batched statements below lock in the order of their plans: lock first.
            let ids: Vec<sea_orm::Value> =
                order.iter().map(|(id, _, _)| id.as_uuid().into()).collect();
            tx.execute(self.statement(
                &format!(
                    "SELECT id FROM deliveries WHERE id IN ({}) ORDER BY id FOR UPDATE",
                    placeholders(1, ids.len())
                ),
                ids,
            ))
            .await?;
        }
        // Successes, the common case, in a few statements for all; the rest one by one.
        let (succeeded, rest): (Vec<&SettleJob>, Vec<&SettleJob>) =
            order.into_iter().partition(|(_, attempt, settle)| {
                matches!(settle, Settle::Succeeded) && last_error(attempt).is_none()
            });
        let done: Vec<_> = succeeded.iter().map(|(id, a, _)| (*id, a)).collect();
        self.settle_succeeded_in(tx, &done).await?;
        for (id, attempt, settle) in rest {
            self.settle_in(tx, *id, attempt, settle).await?;
        }
        Ok(())
    }

    /// Records successful attempts (no [`last_error`]) in `tx`, in three statements for all of them (the common
    /// case of a settle group): the deliveries succeed and stop being heads, the next pending
    /// delivery of each stream becomes its head, and the attempts are inserted. `NotFound` when
    /// a delivery is gone.
    pub(crate) async fn settle_succeeded_in(
        &self,
        tx: &Tx<'_>,
        done: &[(DeliveryId, &Attempt)],
    ) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let mut values: Vec<DbValue> = vec![DeliveryStatus::Succeeded.as_str().into()];
        let mut cases = String::new();
        let mut ids = Vec::with_capacity(done.len());
        for (id, attempt) in done {
            let n = values.len();
            cases.push_str(&format!(" WHEN ${} THEN ${}", n + 1, n + 2));
            ids.push(format!("${}", n + 1));
            values.push(id.as_uuid().into());
            values.push((attempt.at + attempt.duration_ms).into());
        }
        let ids = ids.join(", ");
        // The update also tells whether every delivery exists.
        let updated = tx
            .rows(
                self.statement(
                    &format!(
                        "UPDATE deliveries SET attempt_count = attempt_count + 1, \
                         round_attempts = round_attempts + 1, lease_until = NULL, last_error = NULL, \
                         status = $1, head = FALSE, modified = CASE id{cases} END \
                         WHERE id IN ({ids}) RETURNING id"
                    ),
                    values,
                ),
                &[("id", ColumnType::Uuid)],
            )
            .await?;
        if updated.len() != done.len() {
            return Err(Error::NotFound);
        }
        let mut values: Vec<DbValue> = vec![DeliveryStatus::Pending.as_str().into()];
        values.extend(done.iter().map(|(id, _)| DbValue::from(id.as_uuid())));
        tx.execute(self.statement(
            &format!(
                "UPDATE deliveries SET head = TRUE WHERE id IN (\
                 SELECT (SELECT n.id FROM deliveries n \
                 WHERE n.integration_id = s.integration_id AND n.conversation_id = s.conversation_id \
                 AND n.status = $1 ORDER BY n.seq LIMIT 1) \
                 FROM deliveries s WHERE s.id IN ({}))",
                placeholders(2, done.len())
            ),
            values,
        ))
        .await?;
        tx.run(delivery_attempt::Entity::insert_many(
            done.iter().map(|(id, attempt)| attempt_row(*id, attempt)),
        ))
        .await?;
        Ok(())
    }

    /// Records one attempt in `tx`; `NotFound` when the delivery is gone.
    pub(crate) async fn settle_in(
        &self,
        tx: &Tx<'_>,
        id: DeliveryId,
        attempt: &Attempt,
        settle: &Settle,
    ) -> Result<()> {
        let now = attempt.at + attempt.duration_ms;
        let last_error = last_error(attempt);
        let mut update = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::AttemptCount,
                Expr::col(delivery::Column::AttemptCount).add(1),
            )
            .col_expr(
                delivery::Column::RoundAttempts,
                Expr::col(delivery::Column::RoundAttempts).add(1),
            )
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(delivery::Column::Modified, Expr::value(now))
            .col_expr(delivery::Column::LastError, Expr::value(last_error))
            .filter(delivery::Column::Id.eq(id.as_uuid()));
        update = match settle {
            Settle::Succeeded => update
                .col_expr(
                    delivery::Column::Status,
                    Expr::value(DeliveryStatus::Succeeded.as_str()),
                )
                .col_expr(delivery::Column::Head, Expr::value(false)),
            Settle::Retry { next_at } => {
                update.col_expr(delivery::Column::NextAttemptAt, Expr::value(*next_at))
            }
            Settle::Failed { .. } | Settle::Abandoned => update
                .col_expr(
                    delivery::Column::Status,
                    Expr::value(DeliveryStatus::Failed.as_str()),
                )
                .col_expr(delivery::Column::Head, Expr::value(false)),
        };
        // The update also tells whether the delivery exists.
        if tx.run(update).await? == 0 {
            return Err(Error::NotFound);
        }
        if !matches!(settle, Settle::Retry { .. }) {
            // The stream's next delivery, if any, is its head now.
            tx.execute(self.statement(
                "UPDATE deliveries SET head = TRUE WHERE id = (\
                 SELECT n.id FROM deliveries n JOIN deliveries s ON s.id = $1 \
                 WHERE n.integration_id = s.integration_id AND n.conversation_id = s.conversation_id \
                 AND n.status = $2 ORDER BY n.seq LIMIT 1)",
                vec![id.as_uuid().into(), DeliveryStatus::Pending.as_str().into()],
            ))
            .await?;
        }
        tx.run(delivery_attempt::Entity::insert(attempt_row(id, attempt)))
            .await?;
        if let Settle::Failed {
            kind,
            description,
            pause_integration,
        } = settle
        {
            let row = tx
                .models::<delivery::Entity>(
                    delivery::Entity::find_by_id(id.as_uuid()).build(tx.backend()),
                )
                .await?
                .pop()
                .ok_or(Error::NotFound)?;
            tx.run(notification::Entity::insert(notification::ActiveModel {
                id: Set(NotificationId::new().as_uuid()),
                tenant_id: Set(row.tenant_id),
                integration_id: Set(row.integration_id),
                delivery_id: Set(Some(row.id)),
                kind: Set(kind.clone()),
                description: Set(description.clone()),
                created: Set(now),
            }))
            .await?;
            if *pause_integration {
                tx.run(
                    integration::Entity::update_many()
                        .col_expr(
                            integration::Column::StatusId,
                            Expr::value(IntegrationStatus::Paused.id()),
                        )
                        .col_expr(integration::Column::Modified, Expr::value(now))
                        .filter(integration::Column::Id.eq(row.integration_id)),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Gives a claimed delivery back without attempting it, due again at `at` (its endpoint
    /// already has as many attempts in flight as it may).
    pub async fn defer_delivery(&self, id: DeliveryId, at: Millis) -> Result<()> {
        let update = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(at))
            .filter(delivery::Column::Id.eq(id.as_uuid()));
        self.write(move |_s, tx| Box::pin(async move { tx.run(update).await }))
            .await?;
        Ok(())
    }

    /// Releases every lease (a single node starting again: nothing of its own is in flight).
    pub async fn release_leases(&self) -> Result<u64> {
        let update = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .filter(delivery::Column::LeaseUntil.is_not_null());
        self.write(move |_s, tx| Box::pin(async move { tx.run(update).await }))
            .await
    }

    async fn delivery_details(&self, rows: Vec<delivery::Model>) -> Result<Vec<Delivery>> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let links = self
            .read_all(
                delivery_activity::Entity::find()
                    .filter(delivery_activity::Column::DeliveryId.is_in(ids.clone()))
                    .order_by_asc(delivery_activity::Column::EventId),
            )
            .await?;
        let attempts = self
            .read_all(
                delivery_attempt::Entity::find()
                    .filter(delivery_attempt::Column::DeliveryId.is_in(ids))
                    .order_by_asc(delivery_attempt::Column::At)
                    .order_by_asc(delivery_attempt::Column::Id),
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                let events = links
                    .iter()
                    .filter(|l| l.delivery_id == row.id)
                    .map(|l| l.event_id)
                    .collect();
                let tries = attempts
                    .iter()
                    .filter(|a| a.delivery_id == row.id)
                    .map(|a| Attempt {
                        at: a.at,
                        status_code: a.status_code.and_then(|c| u16::try_from(c).ok()),
                        error: a.error.clone(),
                        duration_ms: a.duration_ms,
                    })
                    .collect();
                to_delivery(row, events, tries)
            })
            .collect()
    }

    /// The tenant's deliveries, of one integration and one status when given, oldest first.
    pub async fn list_deliveries(
        &self,
        tenant: TenantId,
        integration: Option<IntegrationId>,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<Delivery>> {
        let mut query =
            delivery::Entity::find().filter(delivery::Column::TenantId.eq(tenant.as_uuid()));
        if let Some(i) = integration {
            query = query.filter(delivery::Column::IntegrationId.eq(i.as_uuid()));
        }
        if let Some(s) = status {
            query = query.filter(delivery::Column::Status.eq(s.as_str()));
        }
        let query = query
            .order_by_asc(delivery::Column::Created)
            .order_by_asc(delivery::Column::Id);
        let page = self.read_page(query, page).await?;
        Ok(Page {
            number: page.number,
            size: page.size,
            total: page.total,
            results: self.delivery_details(page.results).await?,
        })
    }

    /// The tenant's delivery, or `NotFound`.
    pub async fn get_delivery(&self, tenant: TenantId, id: DeliveryId) -> Result<Delivery> {
        static SQL: SqlOnce = SqlOnce::new();
        let (id, tenant) = (id.as_uuid(), tenant.as_uuid());
        let row = self
            .read_one(
                &SQL,
                || delivery::Entity::find_by_id(id).filter(delivery::Column::TenantId.eq(tenant)),
                vec![id.into(), tenant.into()],
            )
            .await?
            .ok_or(Error::NotFound)?;
        self.delivery_details(vec![row])
            .await?
            .pop()
            .ok_or(Error::NotFound)
    }

    /// Queues the tenant's finished (failed or succeeded) delivery again, due now, with the
    /// same `webhook-id` and a fresh schedule. `Conflict` while it is pending.
    pub async fn requeue_delivery(
        &self,
        tenant: TenantId,
        id: DeliveryId,
        now: Millis,
    ) -> Result<Delivery> {
        let current = self.get_delivery(tenant, id).await?;
        if current.status == DeliveryStatus::Pending {
            return Err(Error::Conflict);
        }
        let update = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::Status,
                Expr::value(DeliveryStatus::Pending.as_str()),
            )
            .col_expr(delivery::Column::RoundAttempts, Expr::value(0))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
            // The oldest in its stream again, so a head (another head of the stream waits for it:
            // the claim's order check).
            .col_expr(delivery::Column::Head, Expr::value(true))
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(delivery::Column::Modified, Expr::value(now))
            .filter(delivery::Column::Id.eq(id.as_uuid()))
            .filter(delivery::Column::TenantId.eq(tenant.as_uuid()))
            .filter(delivery::Column::Status.ne(DeliveryStatus::Pending.as_str()));
        self.write(move |_s, tx| Box::pin(async move { tx.run(update).await }))
            .await?;
        self.get_delivery(tenant, id).await
    }

    /// What a provider delivery's render needs of its conversation: the binding and the
    /// customer's latest activities (SPEC 7.4.1). The customer's copies are read newest first,
    /// a few at a time, until a message has been seen.
    async fn conversation_facts(
        &self,
        conversation: Uuid,
        integration: IntegrationId,
    ) -> Result<ConversationFacts> {
        let mut facts = ConversationFacts::default();
        if let Some(row) = self
            .read_rows(
                self.statement(
                    "SELECT binding FROM conversations WHERE id = $1",
                    vec![conversation.into()],
                ),
                &[("binding", ColumnType::Text)],
            )
            .await?
            .pop()
        {
            facts.binding = row.try_get::<String>("", "binding")?;
        }
        // One copy per recipient: the distinct event ids are the customer's activities.
        let rows = self
            .read_rows(
                self.statement(
                    "SELECT event_id, created, body FROM activities WHERE conversation_id = $1 \
                     AND sender_type = 'Customer' AND sender_integration_id = $2 \
                     ORDER BY event_id DESC LIMIT 50",
                    vec![conversation.into(), integration.as_uuid().into()],
                ),
                &[
                    ("event_id", ColumnType::BigInteger),
                    ("created", ColumnType::BigInteger),
                    ("body", ColumnType::Text),
                ],
            )
            .await?;
        for row in rows {
            let created = row.try_get::<i64>("", "created")?;
            let body: serde_json::Value =
                serde_json::from_str(&row.try_get::<String>("", "body")?).unwrap_or_default();
            // A read receipt or a typing indicator is not the customer's turn: it opens no
            // provider window (Meta counts messages, postbacks, quick replies).
            let event = body
                .get("event")
                .and_then(|e| e.get("type"))
                .and_then(serde_json::Value::as_str);
            if !matches!(event, Some("seen" | "typing_on" | "typing_off")) {
                facts.last_customer_activity.get_or_insert(created);
            }
            if facts.last_customer_message.is_some() {
                break;
            }
            if body.get("type").and_then(serde_json::Value::as_str) == Some("message") {
                facts.last_customer_message = Some(created);
                facts.last_customer_external_id = body
                    .get("externalId")
                    .and_then(serde_json::Value::as_str)
                    .map(|id| id.split('#').next().unwrap_or(id).to_owned());
            }
        }
        Ok(facts)
    }

    /// What a smooch-format webhook body needs of `conversation` and of the activity's sender
    /// integration (SPEC 8.7); `None` when the conversation is gone.
    pub async fn smooch_facts(
        &self,
        conversation: ConversationId,
        sender: IntegrationId,
    ) -> Result<Option<SmoochFacts>> {
        let Some(row) = self
            .read_rows(
                self.statement(
                    "SELECT c.integration_id, i.channel_id, c.binding, c.opened, c.last_activity, \
                     c.properties, (SELECT s.name FROM integrations s WHERE s.id = $2) AS sender_name \
                     FROM conversations c JOIN integrations i ON i.id = c.integration_id WHERE c.id = $1",
                    vec![conversation.as_uuid().into(), sender.as_uuid().into()],
                ),
                &[
                    ("integration_id", ColumnType::Uuid),
                    ("channel_id", ColumnType::Integer),
                    ("binding", ColumnType::Text),
                    ("opened", ColumnType::BigInteger),
                    ("last_activity", ColumnType::BigInteger),
                    ("properties", ColumnType::Text),
                    ("sender_name", ColumnType::Text),
                ],
            )
            .await?
            .pop()
        else {
            return Ok(None);
        };
        let channel = row.try_get::<i32>("", "channel_id")?;
        let properties: serde_json::Value =
            serde_json::from_str(&row.try_get::<String>("", "properties")?).unwrap_or_default();
        Ok(Some(SmoochFacts {
            customer_integration: IntegrationId::from_uuid(
                row.try_get::<Uuid>("", "integration_id")?,
            ),
            customer_channel: Channel::from_number(i64::from(channel))
                .ok_or_else(|| Error::Db(format!("unknown channel {channel}")))?,
            binding: row.try_get::<String>("", "binding")?,
            opened: row.try_get::<i64>("", "opened")?,
            last_activity: row.try_get::<i64>("", "last_activity")?,
            full_name: properties
                .pointer("/profile/full name")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            sender_name: row.try_get::<Option<String>>("", "sender_name")?,
        }))
    }

    /// Records that the provider accepted the first `parts` parts of a provider delivery,
    /// with their ids, before the next part is sent: a retry resumes after them.
    pub async fn record_parts(&self, id: DeliveryId, parts: i32, ids: &[String]) -> Result<()> {
        let ids = serde_json::to_string(ids)
            .map_err(|e| Error::Db(format!("cannot serialize provider ids: {e}")))?;
        let update = delivery::Entity::update_many()
            .col_expr(delivery::Column::PartsAccepted, Expr::value(parts))
            .col_expr(delivery::Column::ProviderIds, Expr::value(ids))
            .filter(delivery::Column::Id.eq(id.as_uuid()));
        self.write(move |_s, tx| Box::pin(async move { tx.run(update).await }))
            .await?;
        Ok(())
    }

    /// Makes the provider deliveries held while providers were offline due at `now` (a live
    /// start, SPEC 7.5.3); answers how many.
    pub async fn release_held_deliveries(&self, now: Millis) -> Result<u64> {
        let update = delivery::Entity::update_many()
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
            .col_expr(
                delivery::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(delivery::Column::NextAttemptAt.eq(HELD));
        self.write(move |_s, tx| Box::pin(async move { tx.run(update).await }))
            .await
    }

    /// Records a notification for the tenant about `integration`. With `once`, only when no
    /// notification was recorded under that key within `window_ms` (the key is kept like an
    /// `Idempotency-Key`, in the same transaction): answers whether it was recorded.
    pub async fn notify(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        kind: &str,
        description: &str,
        once: Option<(&str, Millis)>,
    ) -> Result<bool> {
        let now = switchboard_domain::time::now_millis();
        let insert = notification::Entity::insert(notification::ActiveModel {
            id: Set(NotificationId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            integration_id: Set(integration.as_uuid()),
            delivery_id: Set(None),
            kind: Set(kind.to_owned()),
            description: Set(description.to_owned()),
            created: Set(now),
        });
        let claim = once.map(|(key, window)| {
            self.statement(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, response, created) \
                 VALUES ($1, $2, '', '', $3) ON CONFLICT (tenant_id, key) DO UPDATE \
                 SET created = excluded.created WHERE idempotency_keys.created <= $4",
                vec![
                    tenant.as_uuid().into(),
                    format!("\nnotice:{key}").into(),
                    now.into(),
                    (now - window).into(),
                ],
            )
        });
        self.write(move |_s, tx| {
            Box::pin(async move {
                if let Some(claim) = claim {
                    if tx.execute(claim).await? == 0 {
                        return Ok(false);
                    }
                }
                tx.run(insert).await?;
                Ok(true)
            })
        })
        .await
    }

    /// The tenant's notifications, oldest first.
    pub async fn list_notifications(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<Notification>> {
        let query = notification::Entity::find()
            .filter(notification::Column::TenantId.eq(tenant.as_uuid()))
            .order_by_asc(notification::Column::Created)
            .order_by_asc(notification::Column::Id);
        let page = self.read_page(query, page).await?;
        Ok(Page {
            number: page.number,
            size: page.size,
            total: page.total,
            results: page
                .results
                .into_iter()
                .map(|n| Notification {
                    id: NotificationId::from_uuid(n.id),
                    integration_id: IntegrationId::from_uuid(n.integration_id),
                    delivery_id: n.delivery_id.map(DeliveryId::from_uuid),
                    kind: n.kind,
                    description: n.description,
                    created: n.created,
                })
                .collect(),
        })
    }
}
