//! Activities (SPEC 4): the copies stored for each recipient, the hub's `eventId` clock, the
//! webhook deliveries queued with them, `Idempotency-Key`s and used integration signatures.
//!
//! There is one way to append: [`Store::append_in`], inside a write transaction. It reads each
//! hub's last `eventId` (on PostgreSQL with the `hub_clocks` rows locked until the commit, so
//! two transactions of one hub, on any node, take turns), asks the domain's
//! [`EventIdClock`] for the next ones, writes the clocks back, and stores the copies, their
//! deliveries and the conversation's new mode. `eventId`s of a hub therefore increase in commit
//! order: a reader that saw `eventId` N has seen everything before it.
//!
//! [`Store::append_activities`] (an activity accepted into an open conversation) marks the
//! conversations active, finds the closed ones, and appends, for a whole group of calls in one
//! transaction (see `group`). A call with an `Idempotency-Key` is a group of its own: the key is
//! claimed, the append runs, and the answer is stored with the key, in one transaction.
//! Establishing and closing a conversation append their lifecycle routes with the same
//! [`Store::append_in`] (see `conversations`).
//!
//! Idempotency keys and used signatures live here because they guard the acceptance of an
//! activity: a key replays an append, a signature may sign one request only.

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::sea_query::{ColumnType, Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Value as DbValue,
};
use switchboard_domain::activity::Activity;
use switchboard_domain::channel::{adapter, IntegrationType};
use switchboard_domain::clock::EventIdClock;
use switchboard_domain::conversation::{Conversation, ConversationState};
use switchboard_domain::ids::{ConversationId, HubId, IntegrationId, TenantId};
use switchboard_domain::paging::{copies_page_end, CopyBound};
use switchboard_domain::routing::{Mode, Reach, Route};
use switchboard_domain::time::{now_millis, Millis};
use switchboard_domain::webhook::DeliveryKind;
use uuid::Uuid;

use crate::conversations::json_text;
use crate::deliveries::Outbox;
use crate::doors::{Then, Tx};
use crate::entities::{activity, conversation, idempotency_key, used_signature};
use crate::group::all_or_each;
use crate::{Error, Result, Store};

/// One answer of a conversation's copies ([`Store::conversation_activities`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyPage {
    /// The stored JSON of each copy, oldest first.
    pub bodies: Vec<String>,
    /// The `eventId` to ask again from (`leid`) when more copies may follow.
    pub next: Option<Millis>,
}

/// How long an `Idempotency-Key` is remembered: 24 hours.
pub const IDEMPOTENCY_TTL_MS: Millis = 24 * 3_600_000;

/// The copies of one stored route, in the order of its recipients.
#[derive(Clone, Debug, PartialEq)]
pub struct Appended {
    pub event_id: Millis,
    pub activities: Vec<Activity>,
}

/// An `Idempotency-Key` claimed by an append.
#[derive(Clone, Debug)]
pub struct Idempotency {
    pub key: String,
    /// Hash of the request's path and body: the same key with another hash is a conflict.
    pub request_hash: String,
}

/// The answer of [`Store::append_activities`].
#[derive(Clone, Debug, PartialEq)]
pub enum AppendOutcome {
    /// Stored; one entry per route.
    Appended(Vec<Appended>),
    /// The idempotency key was already used (by a request that committed first): its hash and
    /// the answer it got. Nothing was stored.
    Replay {
        request_hash: String,
        response: String,
    },
    /// The conversation was closed (or deleted) meanwhile. Nothing was stored.
    Closed,
}

/// One stored copy for a recipient, as `resume` replays it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumeItem {
    pub hub_id: HubId,
    pub conversation_id: ConversationId,
    pub event_id: Millis,
    /// The copy's JSON.
    pub activity: String,
    /// The conversation's properties now, as JSON.
    pub properties: String,
}

/// An append waiting for its group: the conversation as routed, its routes, and the key that
/// may be used once (a provider's message id, SPEC 7.3.2 step 7), claimed in the same
/// transaction.
pub(crate) type AppendJob = (Conversation, Vec<Route>, Option<Idempotency>);

/// Rows to write for appended routes: the copies, their webhook deliveries, and the
/// conversations whose mode changes.
#[derive(Default)]
struct Staged {
    rows: Vec<activity::ActiveModel>,
    outbox: Vec<Outbox>,
    modes: Vec<(ConversationId, Mode)>,
}

impl Staged {
    /// Stages the copies of `routes` of `conversation`, the first with `eventId` `first` and
    /// each next route one more.
    fn add(
        &mut self,
        conversation: &Conversation,
        routes: &[Route],
        first: Millis,
        now: Millis,
    ) -> Result<Vec<Appended>> {
        let mut appended = Vec::with_capacity(routes.len());
        for (i, route) in routes.iter().enumerate() {
            let event_id = first + i as i64;
            let activities = route.activities(event_id);
            for (recipient, a) in route.recipients.iter().zip(&activities) {
                let id = Uuid::now_v7();
                let kind = match recipient.reach {
                    Reach::Webhook { .. }
                        if recipient.integration_type == IntegrationType::System =>
                    {
                        Some(DeliveryKind::System)
                    }
                    Reach::Webhook { .. } => Some(DeliveryKind::Direct),
                    // The sender's own copy (its echo) is never sent back to the provider.
                    Reach::Provider
                        if !recipient.is_echo
                            && adapter::delivers(recipient.channel, &a.payload) =>
                    {
                        Some(DeliveryKind::Provider)
                    }
                    _ => None,
                };
                if let Some(kind) = kind {
                    self.outbox.push(Outbox {
                        tenant_id: conversation.tenant_id,
                        hub_id: conversation.hub_id,
                        conversation_id: conversation.id,
                        activity_id: id,
                        event_id,
                        integration_id: recipient.integration_id,
                        kind,
                        channel: (kind == DeliveryKind::Provider).then_some(recipient.channel),
                    });
                }
                self.rows.push(activity::ActiveModel {
                    id: Set(id),
                    tenant_id: Set(conversation.tenant_id.as_uuid()),
                    hub_id: Set(conversation.hub_id.as_uuid()),
                    conversation_id: Set(conversation.id.as_uuid()),
                    event_id: Set(event_id),
                    sender_integration_id: Set(a.sender.integration_id.as_uuid()),
                    sender_type: Set(a.sender.integration_type.as_str().to_owned()),
                    recipient_integration_id: Set(a.recipient.integration_id.as_uuid()),
                    recipient_type: Set(a.recipient.integration_type.as_str().to_owned()),
                    is_echo: Set(a.is_echo),
                    body: Set(json_text(a)?),
                    created: Set(now),
                });
            }
            appended.push(Appended {
                event_id,
                activities,
            });
        }
        if let Some(mode) = routes.iter().filter_map(|r| r.new_mode).next_back() {
            self.modes.push((conversation.id, mode));
        }
        Ok(appended)
    }
}

impl Store {
    /// Stores the activities of `routes` in the tenant's conversation, in one transaction with
    /// the conversation's new last activity (and mode) and, when given, the idempotency key
    /// with the answer `respond` makes of the stored copies.
    ///
    /// The conversation must be open when the transaction runs ([`AppendOutcome::Closed`]
    /// otherwise); a key that a concurrent request committed first is
    /// [`AppendOutcome::Replay`]. An expired key (older than 24 h) is taken over. Calls
    /// without a key that run at the same time are written in one transaction (a group commit).
    pub async fn append_activities(
        &self,
        conversation: &Conversation,
        routes: &[Route],
        idempotency: Option<&Idempotency>,
        respond: &(dyn Fn(&[Appended]) -> String + Sync),
    ) -> Result<AppendOutcome> {
        let Some(claim) = idempotency else {
            return self.append_grouped(conversation, routes, None).await;
        };
        let tenant = conversation.tenant_id;
        let job = (conversation.clone(), routes.to_vec(), None);
        let (claimed, key) = (claim.clone(), claim.key.clone());
        let (outcome, _) = self
            .write_in_two(
                move |s, tx| {
                    Box::pin(async move {
                        let now = now_millis();
                        if !s.claim_key(tx, tenant, &claimed, now).await? {
                            let row = tx
                                .one(
                                    idempotency_key::Entity::find()
                                        .filter(
                                            idempotency_key::Column::TenantId.eq(tenant.as_uuid()),
                                        )
                                        .filter(idempotency_key::Column::Key.eq(claimed.key)),
                                )
                                .await?
                                .ok_or_else(|| Error::Db("idempotency key vanished".to_owned()))?;
                            return Ok(AppendOutcome::Replay {
                                request_hash: row.request_hash,
                                response: row.response,
                            });
                        }
                        s.open_and_append(tx, std::slice::from_ref(&job), now)
                            .await?
                            .pop()
                            .ok_or(Error::NotFound)
                    })
                },
                // The answer is the caller's; a key claimed for nothing stored is let go.
                |outcome| match outcome {
                    AppendOutcome::Appended(appended) => Then::Continue(respond(appended)),
                    _ => Then::Rollback,
                },
                move |_s, tx, response: String| {
                    Box::pin(async move {
                        tx.run(
                            idempotency_key::Entity::update_many()
                                .col_expr(idempotency_key::Column::Response, Expr::value(response))
                                .filter(idempotency_key::Column::TenantId.eq(tenant.as_uuid()))
                                .filter(idempotency_key::Column::Key.eq(key)),
                        )
                        .await?;
                        Ok(())
                    })
                },
            )
            .await?;
        Ok(outcome)
    }

    /// Claims the tenant's `Idempotency-Key` in `tx` with an empty answer: false when it is
    /// taken (and younger than 24 hours).
    async fn claim_key(
        &self,
        tx: &Tx<'_>,
        tenant: TenantId,
        claim: &Idempotency,
        now: Millis,
    ) -> Result<bool> {
        let claimed = tx
            .execute(self.statement(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, response, created) \
                 VALUES ($1, $2, $3, '', $4) ON CONFLICT (tenant_id, key) DO UPDATE \
                 SET request_hash = excluded.request_hash, response = '', created = excluded.created \
                 WHERE idempotency_keys.created <= $5",
                vec![
                    tenant.as_uuid().into(),
                    claim.key.as_str().into(),
                    claim.request_hash.as_str().into(),
                    now.into(),
                    (now - IDEMPOTENCY_TTL_MS).into(),
                ],
            ))
            .await?;
        Ok(claimed > 0)
    }

    /// Stores `routes` in the open `conversation` once per `key` within 24 hours (a provider's
    /// message id): the key is claimed in the append's transaction, in a group commit with
    /// the appends of the moment. A key used before answers [`AppendOutcome::Replay`] (with an
    /// empty response) and stores nothing.
    pub async fn append_once(
        &self,
        conversation: &Conversation,
        routes: &[Route],
        key: &Idempotency,
    ) -> Result<AppendOutcome> {
        self.append_grouped(conversation, routes, Some(key.clone()))
            .await
    }

    /// Appends `routes` to the open `conversation` in a group commit: `Appended`, or `Closed`
    /// when the conversation was closed meanwhile (or `Replay` when its `once` key was used).
    async fn append_grouped(
        &self,
        conversation: &Conversation,
        routes: &[Route],
        once: Option<Idempotency>,
    ) -> Result<AppendOutcome> {
        let store = self.clone();
        self.appends
            .submit((conversation.clone(), routes.to_vec(), once), move |jobs| {
                let store = store.clone();
                async move {
                    all_or_each(jobs, |jobs| {
                        let store = store.clone();
                        async move {
                            store
                                .write(move |s, tx| {
                                    Box::pin(async move {
                                        s.open_and_append(tx, &jobs, now_millis()).await
                                    })
                                })
                                .await
                        }
                    })
                    .await
                }
            })
            .await
    }

    /// Appends each job to its conversation if that is open (and marks it active at `now`),
    /// in `tx`: one outcome per job, in order.
    pub(crate) async fn open_and_append(
        &self,
        tx: &Tx<'_>,
        jobs: &[AppendJob],
        now: Millis,
    ) -> Result<Vec<AppendOutcome>> {
        // The open conversations, marked active in one statement that also answers which are
        // open (on PostgreSQL it locks them until the commit). Each conversation is looked for
        // under its own tenant, as everywhere else.
        let mut ids: Vec<(Uuid, Uuid)> = jobs
            .iter()
            .map(|(c, _, _)| (c.id.as_uuid(), c.tenant_id.as_uuid()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let pairs: Vec<String> = (0..ids.len())
            .map(|i| format!("(${}, ${})", 2 * i + 3, 2 * i + 4))
            .collect();
        let mut values = vec![now.into(), ConversationState::Open.as_str().into()];
        for (id, tenant) in &ids {
            values.push((*id).into());
            values.push((*tenant).into());
        }
        let rows = tx
            .rows(
                self.statement(
                    &format!(
                        "UPDATE conversations SET last_activity = $1 \
                         WHERE status = $2 AND (id, tenant_id) IN (VALUES {}) RETURNING id, tenant_id",
                        pairs.join(", ")
                    ),
                    values,
                ),
                &[("id", ColumnType::Uuid), ("tenant_id", ColumnType::Uuid)],
            )
            .await?;
        let open: HashSet<(Uuid, Uuid)> = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<Uuid>("", "id")?,
                    r.try_get::<Uuid>("", "tenant_id")?,
                ))
            })
            .collect::<std::result::Result<_, sea_orm::DbErr>>()?;
        let is_open = |c: &Conversation| open.contains(&(c.id.as_uuid(), c.tenant_id.as_uuid()));
        // The keys that may be used once, claimed now: a job whose key is taken stores nothing.
        let mut used = vec![false; jobs.len()];
        for (i, (c, _, once)) in jobs.iter().enumerate() {
            if let Some(key) = once.as_ref().filter(|_| is_open(c)) {
                used[i] = !self.claim_key(tx, c.tenant_id, key, now).await?;
            }
        }

        let to_append: Vec<(&Conversation, &[Route])> = jobs
            .iter()
            .zip(&used)
            .filter(|((c, _, _), used)| is_open(c) && !**used)
            .map(|((c, routes, _), _)| (c, routes.as_slice()))
            .collect();
        let mut appended = self.append_in(tx, &to_append, now).await?.into_iter();
        jobs.iter()
            .zip(&used)
            .map(|((c, _, once), used)| match (is_open(c), used) {
                (true, false) => appended
                    .next()
                    .map(AppendOutcome::Appended)
                    .ok_or(Error::NotFound),
                (true, true) => Ok(AppendOutcome::Replay {
                    request_hash: once
                        .as_ref()
                        .map(|k| k.request_hash.clone())
                        .unwrap_or_default(),
                    response: String::new(),
                }),
                (false, _) => Ok(AppendOutcome::Closed),
            })
            .collect()
    }

    /// Appends the routes of each conversation in `tx`, whatever its state: reserves their
    /// `eventId`s (the first route of a conversation gets the first id of its reservation),
    /// stores the copies, queues the webhook deliveries, and sets each conversation's new
    /// mode. One list of [`Appended`] per entry, in order.
    pub(crate) async fn append_in(
        &self,
        tx: &Tx<'_>,
        appends: &[(&Conversation, &[Route])],
        now: Millis,
    ) -> Result<Vec<Vec<Appended>>> {
        let mut wanted: BTreeMap<Uuid, usize> = BTreeMap::new();
        for (c, routes) in appends {
            if !routes.is_empty() {
                *wanted.entry(c.hub_id.as_uuid()).or_default() += routes.len();
            }
        }
        let mut next = self.reserve_event_ids(tx, &wanted, now).await?;
        let mut staged = Staged::default();
        let mut out = Vec::with_capacity(appends.len());
        for (c, routes) in appends {
            let first = next.get_mut(&c.hub_id.as_uuid()).map_or(now, |n| {
                let first = *n;
                *n += routes.len() as Millis;
                first
            });
            out.push(staged.add(c, routes, first, now)?);
        }
        self.write_staged(tx, staged, now).await?;
        Ok(out)
    }

    /// Reserves `n` consecutive `eventId`s in each hub of `wanted` (hub → n) at `now`: the
    /// first of each hub. The hub's last id is read in `tx`, the next ones are the domain's
    /// [`EventIdClock`], and the new last id is written back. On PostgreSQL the clock rows are
    /// locked (in hub order, so that two transactions never wait for each other in a circle)
    /// until the transaction ends; on SQLite the transaction holds the database's one write
    /// lock from its first write.
    async fn reserve_event_ids(
        &self,
        tx: &Tx<'_>,
        wanted: &BTreeMap<Uuid, usize>,
        now: Millis,
    ) -> Result<HashMap<Uuid, Millis>> {
        let mut first = HashMap::with_capacity(wanted.len());
        if wanted.is_empty() {
            return Ok(first);
        }
        let hubs: Vec<Uuid> = wanted.keys().copied().collect();
        let mut last = self.lock_clocks(tx, &hubs).await?;
        // A hub without a clock yet starts one; a clock that another transaction started
        // meanwhile is locked and read like the others.
        let mut missing: Vec<Uuid> = hubs
            .iter()
            .filter(|h| !last.contains_key(*h))
            .copied()
            .collect();
        while !missing.is_empty() {
            let mut started: Vec<(Uuid, Millis, Millis)> = Vec::with_capacity(missing.len());
            for hub in &missing {
                let mut clock = EventIdClock::after(None);
                let id = clock.reserve(now, wanted[hub]);
                started.push((*hub, id, clock.last().unwrap_or(id)));
            }
            let inserted: HashSet<Uuid> = self
                .write_clocks(tx, &started, false)
                .await?
                .into_iter()
                .collect();
            for (hub, id, _) in &started {
                if inserted.contains(hub) {
                    first.insert(*hub, *id);
                }
            }
            let raced: Vec<Uuid> = missing
                .iter()
                .filter(|h| !inserted.contains(*h))
                .copied()
                .collect();
            last.extend(self.lock_clocks(tx, &raced).await?);
            missing = raced
                .into_iter()
                .filter(|h| !last.contains_key(h))
                .collect();
        }
        let mut advanced: Vec<(Uuid, Millis, Millis)> = Vec::with_capacity(last.len());
        for hub in &hubs {
            if let Some(previous) = last.get(hub) {
                let mut clock = EventIdClock::after(Some(*previous));
                let id = clock.reserve(now, wanted[hub]);
                first.insert(*hub, id);
                advanced.push((*hub, id, clock.last().unwrap_or(id)));
            }
        }
        if !advanced.is_empty() {
            self.write_clocks(tx, &advanced, true).await?;
        }
        Ok(first)
    }

    /// The last `eventId`s of those of `hubs` that have a clock, read in `tx`; on PostgreSQL
    /// their rows stay locked until the transaction ends.
    async fn lock_clocks(&self, tx: &Tx<'_>, hubs: &[Uuid]) -> Result<HashMap<Uuid, Millis>> {
        if hubs.is_empty() {
            return Ok(HashMap::new());
        }
        let lock = if self.is_postgres() {
            " FOR UPDATE"
        } else {
            ""
        };
        let rows = tx
            .rows(
                self.statement(
                    &format!(
                        "SELECT hub_id, last_event_id FROM hub_clocks WHERE hub_id IN ({}) \
                         ORDER BY hub_id{lock}",
                        crate::deliveries::placeholders(1, hubs.len())
                    ),
                    hubs.iter().map(|h| DbValue::from(*h)).collect(),
                ),
                &[
                    ("hub_id", ColumnType::Uuid),
                    ("last_event_id", ColumnType::BigInteger),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("", "hub_id")?, r.try_get("", "last_event_id")?)))
            .collect()
    }

    /// Writes the hubs' new last `eventId`s (hub, first, last) in `tx`: over the locked rows
    /// when `existing`, else as new rows, skipping a hub whose clock another transaction
    /// started first. The hubs written.
    async fn write_clocks(
        &self,
        tx: &Tx<'_>,
        clocks: &[(Uuid, Millis, Millis)],
        existing: bool,
    ) -> Result<Vec<Uuid>> {
        let mut values: Vec<DbValue> = Vec::with_capacity(2 * clocks.len());
        let rows: Vec<String> = clocks
            .iter()
            .enumerate()
            .map(|(i, (hub, _, last))| {
                values.push((*hub).into());
                values.push((*last).into());
                format!("(${}, ${})", 2 * i + 1, 2 * i + 2)
            })
            .collect();
        let on_conflict = if existing {
            "DO UPDATE SET last_event_id = excluded.last_event_id"
        } else {
            "DO NOTHING"
        };
        let written = tx
            .rows(
                self.statement(
                    &format!(
                        "INSERT INTO hub_clocks (hub_id, last_event_id) VALUES {} \
                         ON CONFLICT (hub_id) {on_conflict} RETURNING hub_id",
                        rows.join(", ")
                    ),
                    values,
                ),
                &[("hub_id", ColumnType::Uuid)],
            )
            .await?;
        written
            .iter()
            .map(|r| Ok(r.try_get("", "hub_id")?))
            .collect()
    }

    /// Writes staged copies, deliveries and mode changes in `tx`.
    async fn write_staged(&self, tx: &Tx<'_>, staged: Staged, now: Millis) -> Result<()> {
        // Bounded batches: PostgreSQL takes at most 65535 bind values per statement.
        let mut rows = staged.rows.into_iter().peekable();
        while rows.peek().is_some() {
            let batch: Vec<_> = rows.by_ref().take(1000).collect();
            tx.run(activity::Entity::insert_many(batch)).await?;
        }
        self.enqueue_in(tx, &staged.outbox, now, now + self.first_delivery_delay_ms)
            .await?;
        for (conversation, mode) in staged.modes {
            tx.run(
                conversation::Entity::update_many()
                    .col_expr(conversation::Column::Mode, Expr::value(mode.as_str()))
                    .filter(conversation::Column::Id.eq(conversation.as_uuid())),
            )
            .await?;
        }
        Ok(())
    }

    /// The answer first given to the tenant's `key` within the last 24 hours, with the hash of
    /// its request: `(request_hash, response)`.
    pub async fn find_idempotency(
        &self,
        tenant: TenantId,
        key: &str,
        now: Millis,
    ) -> Result<Option<(String, String)>> {
        let query = idempotency_key::Entity::find()
            .filter(idempotency_key::Column::TenantId.eq(tenant.as_uuid()))
            .filter(idempotency_key::Column::Key.eq(key))
            .filter(idempotency_key::Column::Created.gt(now - IDEMPOTENCY_TTL_MS))
            .limit(1);
        Ok(self
            .read_all(query)
            .await?
            .pop()
            .map(|row| (row.request_hash, row.response)))
    }

    /// The conversation's copies whose sender or recipient is of `party_type`, System and echo
    /// copies left out, with `eventId` > `after`, oldest first, within `bound`: whole events
    /// only (the first one even past the bound), see [`copies_page_end`]. The stored JSON of
    /// each copy is answered as it is, with where the next answer starts.
    ///
    /// The sizes of the copies are read first (at most `bound.count + 1` of them), then the
    /// bodies of the events that fit, so that no more than one answer is ever held.
    pub async fn conversation_activities(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        party_type: IntegrationType,
        after: Millis,
        bound: CopyBound,
    ) -> Result<CopyPage> {
        let copies = || {
            let t = party_type.as_str();
            activity::Entity::find()
                .select_only()
                .filter(activity::Column::TenantId.eq(tenant.as_uuid()))
                .filter(activity::Column::ConversationId.eq(conversation.as_uuid()))
                .filter(activity::Column::EventId.gt(after))
                .filter(activity::Column::IsEcho.eq(false))
                .filter(activity::Column::RecipientType.ne(IntegrationType::System.as_str()))
                .filter(
                    activity::Column::SenderType
                        .eq(t)
                        .or(activity::Column::RecipientType.eq(t)),
                )
                .order_by_asc(activity::Column::EventId)
                .order_by_asc(activity::Column::Id)
        };
        let bytes = if self.is_postgres() {
            "CAST(octet_length(body) AS BIGINT)"
        } else {
            "length(CAST(body AS BLOB))"
        };
        let sizes = copies()
            .column(activity::Column::EventId)
            .expr_as(Expr::cust(bytes), "size")
            // Bound as a signed 64-bit integer: a larger limit would panic in the driver.
            .limit(bound.count.saturating_add(1).min(i64::MAX as u64));
        let sizes = self
            .read_rows(
                sizes.build(self.backend()),
                &[
                    ("event_id", ColumnType::BigInteger),
                    ("size", ColumnType::BigInteger),
                ],
            )
            .await?
            .iter()
            .map(|row| {
                let size: i64 = row.try_get("", "size")?;
                Ok((row.try_get("", "event_id")?, size.max(0) as u64))
            })
            .collect::<Result<Vec<(Millis, u64)>>>()?;
        let Some(end) = copies_page_end(&sizes, bound) else {
            return Ok(CopyPage::default());
        };
        let bodies = copies()
            .column(activity::Column::Body)
            .filter(activity::Column::EventId.lte(end.last));
        let bodies = self
            .read_rows(bodies.build(self.backend()), &[("body", ColumnType::Text)])
            .await?
            .iter()
            .map(|row| Ok(row.try_get("", "body")?))
            .collect::<Result<Vec<String>>>()?;
        Ok(CopyPage {
            bodies,
            next: end.more.then_some(end.last),
        })
    }

    /// The copies received by `integration` with `eventId` > `after` (of one conversation when
    /// given), oldest first, at most `limit`: what `resume` replays.
    pub async fn integration_activities(
        &self,
        integration: IntegrationId,
        conversation: Option<ConversationId>,
        after: Millis,
        limit: u64,
    ) -> Result<Vec<ResumeItem>> {
        let mut sql = String::from(
            "SELECT a.hub_id, a.conversation_id, a.event_id, a.body, c.properties \
             FROM activities a JOIN conversations c ON c.id = a.conversation_id \
             WHERE a.recipient_integration_id = $1 AND a.event_id > $2",
        );
        let mut values: Vec<DbValue> = vec![integration.as_uuid().into(), after.into()];
        if let Some(c) = conversation {
            sql.push_str(" AND a.conversation_id = $4");
            values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
            values.push(c.as_uuid().into());
        } else {
            values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        }
        sql.push_str(" ORDER BY a.event_id, a.id LIMIT $3");
        let rows = self
            .read_rows(
                self.statement(&sql, values),
                &[
                    ("hub_id", ColumnType::Uuid),
                    ("conversation_id", ColumnType::Uuid),
                    ("event_id", ColumnType::BigInteger),
                    ("body", ColumnType::Text),
                    ("properties", ColumnType::Text),
                ],
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(ResumeItem {
                    hub_id: HubId::from_uuid(row.try_get("", "hub_id")?),
                    conversation_id: ConversationId::from_uuid(row.try_get("", "conversation_id")?),
                    event_id: row.try_get("", "event_id")?,
                    activity: row.try_get("", "body")?,
                    properties: row.try_get("", "properties")?,
                })
            })
            .collect()
    }

    /// Records an integration signature as used until `expires`; false when it already was
    /// (a replay).
    pub async fn use_signature(&self, signature: &str, expires: Millis) -> Result<bool> {
        let insert = used_signature::Entity::insert(used_signature::ActiveModel {
            signature: Set(signature.to_owned()),
            expires: Set(expires),
        })
        .on_conflict(
            OnConflict::column(used_signature::Column::Signature)
                .do_nothing()
                .to_owned(),
        );
        let written = self
            .write(move |_s, tx| Box::pin(async move { tx.run(insert).await }))
            .await?;
        Ok(written > 0)
    }

    /// Forgets idempotency keys older than 24 hours and signatures past their window.
    pub async fn sweep_expired(&self, now: Millis) -> Result<()> {
        self.write(move |_s, tx| {
            Box::pin(async move {
                tx.run(
                    idempotency_key::Entity::delete_many()
                        .filter(idempotency_key::Column::Created.lte(now - IDEMPOTENCY_TTL_MS)),
                )
                .await?;
                tx.run(
                    used_signature::Entity::delete_many()
                        .filter(used_signature::Column::Expires.lt(now)),
                )
                .await?;
                Ok(())
            })
        })
        .await
    }
}
