//! The engine's storage (SPEC 4): conversations, activity copies, the hub's `eventId` clock,
//! idempotency keys and used signatures.
//!
//! Every write that appends activities runs in one transaction that also advances the hub's
//! clock (`hub_clocks`): on PostgreSQL the clock row stays locked until commit, so `eventId`s of
//! a hub increase in commit order and a reader that saw `eventId` N has seen everything before
//! it. On SQLite there is one writer at a time anyway: the hot writes (appends, claims, settles)
//! of a SQLite file run on its writer thread (`writer`), each from `BEGIN IMMEDIATE`; the others
//! are serialized by [`Store::sqlite_writes`] and start with a write, so that none has to
//! upgrade a read snapshot (which SQLite refuses with `SQLITE_BUSY` without waiting).
//!
//! Routing is the caller's (`domain::routing`): these functions store the routes they are given.
//! A write that needs the row it creates (establish, close) takes a closure that builds the
//! routes from the stored conversation, inside the transaction.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait, Value as DbValue,
};
use serde_json::{Map, Value};
use switchboard_domain::activity::{Activity, ConversationReason};
use switchboard_domain::channel::IntegrationType;
use switchboard_domain::conversation::{Conversation, ConversationState};
use switchboard_domain::ids::{ConversationId, HubId, IntegrationId, TenantId};
use switchboard_domain::routing::{Mode, Reach, Route};
use switchboard_domain::time::{now_millis, Millis};
use switchboard_domain::webhook::DeliveryKind;
use uuid::Uuid;

use crate::deliveries::Outbox;
use crate::entities::{activity, conversation, idempotency_key, used_signature};
use crate::error::is_foreign_key_violation;
use crate::once::SqlOnce;
use crate::writer::Tx;
use crate::{Error, Result, Store};

/// How long an `Idempotency-Key` is remembered: 24 hours.
pub const IDEMPOTENCY_TTL_MS: Millis = 24 * 3_600_000;

/// How many times a write that lost a race (a unique key taken by a concurrent transaction)
/// is tried again.
const RACE_RETRIES: usize = 3;

/// Rows to write for appended routes: the copies, their webhook deliveries, and the
/// conversations whose mode changes.
#[derive(Default)]
pub(crate) struct Staged {
    rows: Vec<activity::ActiveModel>,
    outbox: Vec<Outbox>,
    modes: Vec<(ConversationId, Mode)>,
}

impl Staged {
    /// Stages the copies of `routes` of `conversation`, the first with `eventId` `first` and
    /// each next route one more.
    pub(crate) fn add(
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
                if let Reach::Webhook { .. } = recipient.reach {
                    self.outbox.push(Outbox {
                        tenant_id: conversation.tenant_id,
                        hub_id: conversation.hub_id,
                        conversation_id: conversation.id,
                        activity_id: id,
                        event_id,
                        integration_id: recipient.integration_id,
                        kind: if recipient.integration_type == IntegrationType::System {
                            DeliveryKind::System
                        } else {
                            DeliveryKind::Direct
                        },
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

/// A conversation to open when its binding has none open.
#[derive(Clone, Debug)]
pub struct NewConversation {
    pub tenant: TenantId,
    pub hub: HubId,
    /// The Customer integration.
    pub integration: IntegrationId,
    pub binding: String,
    pub token_id: String,
    pub mode: Mode,
    /// The properties of a new conversation (defaults applied).
    pub properties: Map<String, Value>,
}

/// The copies of one stored route, in the order of its recipients.
#[derive(Clone, Debug, PartialEq)]
pub struct Appended {
    pub event_id: Millis,
    pub activities: Vec<Activity>,
}

/// The answer of [`Store::establish_conversation`].
#[derive(Clone, Debug)]
pub struct Established {
    pub conversation: Conversation,
    pub is_new: bool,
    /// The routes stored with a new conversation, and their copies (empty when not new).
    pub routes: Vec<Route>,
    pub appended: Vec<Appended>,
}

/// The answer of [`Store::close_conversation`].
#[derive(Clone, Debug)]
pub struct Closed {
    pub conversation: Conversation,
    /// Whether this call closed it (false: it was closed already, nothing was stored).
    pub closed_now: bool,
    pub routes: Vec<Route>,
    pub appended: Vec<Appended>,
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

fn to_conversation(row: conversation::Model) -> Result<Conversation> {
    let corrupt = |what: &str| Error::Db(format!("conversation {} has a bad {what}", row.id));
    let mode = Mode::parse(&row.mode).ok_or_else(|| corrupt("mode"))?;
    let state = ConversationState::parse(&row.status).ok_or_else(|| corrupt("status"))?;
    let properties = match serde_json::from_str::<Value>(&row.properties) {
        Ok(Value::Object(m)) => m,
        _ => return Err(corrupt("properties")),
    };
    Ok(Conversation {
        id: ConversationId::from_uuid(row.id),
        tenant_id: TenantId::from_uuid(row.tenant_id),
        hub_id: HubId::from_uuid(row.hub_id),
        integration_id: IntegrationId::from_uuid(row.integration_id),
        binding: row.binding,
        token_id: row.token_id,
        mode,
        state,
        properties,
        opened: row.opened,
        closed: row.closed,
        last_activity: row.last_activity,
    })
}

fn json_text(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Db(format!("cannot serialize: {e}")))
}

impl Store {
    /// A statement written with PostgreSQL placeholders (`$1`), for either backend (SQLite
    /// reads `?1`).
    pub(crate) fn statement(&self, sql: &str, values: Vec<DbValue>) -> Statement {
        if self.is_postgres() {
            Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
        } else {
            Statement::from_sql_and_values(DbBackend::Sqlite, sql.replace('$', "?"), values)
        }
    }

    /// Begins an engine write transaction (on SQLite, after taking the engine's write turn).
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<(DatabaseTransaction, Option<tokio::sync::MutexGuard<'_, ()>>)> {
        let guard = if self.is_postgres() {
            None
        } else {
            Some(self.sqlite_writes.lock().await)
        };
        Ok((self.writer.begin().await?, guard))
    }

    /// Reserves `n` consecutive `eventId`s of the hub at `now`: the first is
    /// `max(now, last + 1)`. The clock row stays locked until the transaction ends.
    pub(crate) async fn reserve_event_ids(
        &self,
        txn: &DatabaseTransaction,
        hub: HubId,
        n: usize,
        now: Millis,
    ) -> Result<Millis> {
        let n = i64::try_from(n).map_err(|_| Error::Db("too many activities".to_owned()))?;
        let row = txn
            .query_one(self.statement(
                "INSERT INTO hub_clocks (hub_id, last_event_id) VALUES ($1, $2) \
                 ON CONFLICT (hub_id) DO UPDATE SET last_event_id = CASE \
                 WHEN excluded.last_event_id > hub_clocks.last_event_id + $3 \
                 THEN excluded.last_event_id ELSE hub_clocks.last_event_id + $3 END \
                 RETURNING last_event_id",
                vec![
                    hub.as_uuid().into(),
                    now.saturating_add(n - 1).into(),
                    n.into(),
                ],
            ))
            .await?
            .ok_or_else(|| Error::Db("the hub clock answered nothing".to_owned()))?;
        let last: i64 = row.try_get("", "last_event_id")?;
        Ok(last - n + 1)
    }

    /// Appends the routes of one conversation in `txn`: reserves their `eventId`s, stores the
    /// copies, queues the webhook deliveries, and sets the conversation's new mode.
    async fn append_in(
        &self,
        txn: &DatabaseTransaction,
        conversation: &Conversation,
        routes: &[Route],
        now: Millis,
    ) -> Result<Vec<Appended>> {
        if routes.is_empty() {
            return Ok(Vec::new());
        }
        let first = self
            .reserve_event_ids(txn, conversation.hub_id, routes.len(), now)
            .await?;
        let mut staged = Staged::default();
        let appended = staged.add(conversation, routes, first, now)?;
        self.write_staged(&Tx::Pool(txn), staged, now).await?;
        Ok(appended)
    }

    /// Writes staged copies, deliveries and mode changes in `tx`.
    pub(crate) async fn write_staged(
        &self,
        tx: &Tx<'_>,
        staged: Staged,
        now: Millis,
    ) -> Result<()> {
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

    /// The conversation of `binding` on the Customer integration if one is open, with
    /// `given` properties merged in (new values win); else a new one, stored with the routes
    /// `routes_for` builds from it (its `conversation:opened` and start messages), in one
    /// transaction.
    pub async fn establish_conversation<F>(
        &self,
        new: &NewConversation,
        given: &Map<String, Value>,
        routes_for: F,
    ) -> Result<Established>
    where
        F: Fn(&Conversation) -> Vec<Route>,
    {
        for _ in 0..RACE_RETRIES {
            let now = now_millis();
            let (txn, _turn) = self.begin_write().await?;
            // Locks the open conversation of the binding, if any (a write first: see the
            // module's note on SQLite).
            let locked = conversation::Entity::update_many()
                .col_expr(
                    conversation::Column::LastActivity,
                    Expr::col(conversation::Column::LastActivity).into(),
                )
                .filter(conversation::Column::TenantId.eq(new.tenant.as_uuid()))
                .filter(conversation::Column::IntegrationId.eq(new.integration.as_uuid()))
                .filter(conversation::Column::OpenBinding.eq(new.binding.as_str()))
                .exec(&txn)
                .await?;
            if locked.rows_affected > 0 {
                let row = conversation::Entity::find()
                    .filter(conversation::Column::TenantId.eq(new.tenant.as_uuid()))
                    .filter(conversation::Column::IntegrationId.eq(new.integration.as_uuid()))
                    .filter(conversation::Column::OpenBinding.eq(new.binding.as_str()))
                    .one(&txn)
                    .await?
                    .ok_or(Error::NotFound)?;
                let mut conversation = to_conversation(row)?;
                if !given.is_empty() {
                    switchboard_domain::conversation::merge_properties(
                        &mut conversation.properties,
                        given,
                    );
                    conversation::Entity::update_many()
                        .col_expr(
                            conversation::Column::Properties,
                            Expr::value(json_text(&conversation.properties)?),
                        )
                        .filter(conversation::Column::Id.eq(conversation.id.as_uuid()))
                        .exec(&txn)
                        .await?;
                }
                txn.commit().await?;
                return Ok(Established {
                    conversation,
                    is_new: false,
                    routes: Vec::new(),
                    appended: Vec::new(),
                });
            }

            let conversation = Conversation {
                id: ConversationId::new(),
                tenant_id: new.tenant,
                hub_id: new.hub,
                integration_id: new.integration,
                binding: new.binding.clone(),
                token_id: new.token_id.clone(),
                mode: new.mode,
                state: ConversationState::Open,
                properties: new.properties.clone(),
                opened: now,
                closed: None,
                last_activity: now,
            };
            let inserted = conversation::Entity::insert(conversation::ActiveModel {
                id: Set(conversation.id.as_uuid()),
                tenant_id: Set(new.tenant.as_uuid()),
                hub_id: Set(new.hub.as_uuid()),
                integration_id: Set(new.integration.as_uuid()),
                binding: Set(new.binding.clone()),
                open_binding: Set(Some(new.binding.clone())),
                token_id: Set(new.token_id.clone()),
                mode: Set(new.mode.as_str().to_owned()),
                status: Set(ConversationState::Open.as_str().to_owned()),
                properties: Set(json_text(&conversation.properties)?),
                opened: Set(now),
                closed: Set(None),
                close_reason: Set(None),
                last_activity: Set(now),
            })
            .exec_without_returning(&txn)
            .await;
            match inserted {
                Ok(_) => {}
                // The integration or hub was deleted meanwhile.
                Err(e) if is_foreign_key_violation(&e) => return Err(Error::NotFound),
                Err(e) => match Error::from(e) {
                    // A concurrent establish of the same binding committed first: take its
                    // conversation on the next turn.
                    Error::Conflict => {
                        txn.rollback().await?;
                        continue;
                    }
                    other => return Err(other),
                },
            }
            let routes = routes_for(&conversation);
            let appended = self.append_in(&txn, &conversation, &routes, now).await?;
            txn.commit().await?;
            return Ok(Established {
                conversation,
                is_new: true,
                routes,
                appended,
            });
        }
        Err(Error::Db(
            "establish lost the race for its binding too many times".to_owned(),
        ))
    }

    /// The tenant's conversation, if it exists.
    pub async fn find_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Option<Conversation>> {
        static SQL: SqlOnce = SqlOnce::new();
        let (id, tenant) = (id.as_uuid(), tenant.as_uuid());
        self.read_one(
            &SQL,
            || {
                conversation::Entity::find_by_id(id)
                    .filter(conversation::Column::TenantId.eq(tenant))
            },
            vec![id.into(), tenant.into()],
        )
        .await?
        .map(to_conversation)
        .transpose()
    }

    /// The tenant's conversation, or `NotFound`.
    pub async fn get_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Conversation> {
        self.find_conversation(tenant, id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Closes the tenant's open conversation with the routes `routes_for` builds (its
    /// `conversation:closed`), in one transaction. With `idle_since`, only when its last
    /// activity is at or before that time (the dormancy sweeper: an activity that came in
    /// meanwhile keeps it open, and `closed_now` is false). A closed conversation is answered
    /// as it is. `NotFound` when it is not the tenant's.
    pub async fn close_conversation<F>(
        &self,
        tenant: TenantId,
        id: ConversationId,
        reason: ConversationReason,
        idle_since: Option<Millis>,
        routes_for: F,
    ) -> Result<Closed>
    where
        F: FnOnce(&Conversation) -> Vec<Route>,
    {
        let now = now_millis();
        let (txn, _turn) = self.begin_write().await?;
        let reason = match reason {
            ConversationReason::Establish => "establish",
            ConversationReason::Api => "api",
            ConversationReason::Dormant => "dormant",
        };
        let mut update = conversation::Entity::update_many()
            .col_expr(
                conversation::Column::Status,
                Expr::value(ConversationState::Closed.as_str()),
            )
            .col_expr(
                conversation::Column::OpenBinding,
                Expr::value(Option::<String>::None),
            )
            .col_expr(conversation::Column::Closed, Expr::value(now))
            .col_expr(conversation::Column::CloseReason, Expr::value(reason))
            .filter(conversation::Column::Id.eq(id.as_uuid()))
            .filter(conversation::Column::TenantId.eq(tenant.as_uuid()))
            .filter(conversation::Column::Status.eq(ConversationState::Open.as_str()));
        if let Some(idle_since) = idle_since {
            update = update.filter(conversation::Column::LastActivity.lte(idle_since));
        }
        let done = update.exec(&txn).await?;
        let row = conversation::Entity::find_by_id(id.as_uuid())
            .filter(conversation::Column::TenantId.eq(tenant.as_uuid()))
            .one(&txn)
            .await?
            .ok_or(Error::NotFound)?;
        let conversation = to_conversation(row)?;
        if done.rows_affected == 0 {
            txn.commit().await?;
            return Ok(Closed {
                conversation,
                closed_now: false,
                routes: Vec::new(),
                appended: Vec::new(),
            });
        }
        let routes = routes_for(&conversation);
        let appended = self.append_in(&txn, &conversation, &routes, now).await?;
        txn.commit().await?;
        Ok(Closed {
            conversation,
            closed_now: true,
            routes,
            appended,
        })
    }

    /// Open conversations, of any tenant, idle for their hub's `closeDormantConversation`
    /// days at `now`, at most `limit`, longest idle first.
    pub async fn dormant_conversations(
        &self,
        now: Millis,
        limit: u64,
    ) -> Result<Vec<Conversation>> {
        let rows = conversation::Entity::find()
            .from_raw_sql(self.statement(
                "SELECT c.* FROM conversations c JOIN hubs h ON h.id = c.hub_id \
                 WHERE c.status = 'open' AND h.close_dormant_conversation > 0 \
                 AND c.last_activity <= $1 - h.close_dormant_conversation * 86400000 \
                 ORDER BY c.last_activity LIMIT $2",
                vec![now.into(), i64::try_from(limit).unwrap_or(i64::MAX).into()],
            ))
            .all(&self.db)
            .await?;
        rows.into_iter().map(to_conversation).collect()
    }

    /// The answer first given to the tenant's `key` within the last 24 hours, with the hash of
    /// its request: `(request_hash, response)`.
    pub async fn find_idempotency(
        &self,
        tenant: TenantId,
        key: &str,
        now: Millis,
    ) -> Result<Option<(String, String)>> {
        Ok(idempotency_key::Entity::find()
            .filter(idempotency_key::Column::TenantId.eq(tenant.as_uuid()))
            .filter(idempotency_key::Column::Key.eq(key))
            .filter(idempotency_key::Column::Created.gt(now - IDEMPOTENCY_TTL_MS))
            .one(&self.db)
            .await?
            .map(|row| (row.request_hash, row.response)))
    }

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
        // Without a key to claim, concurrent appends share a transaction (see `group`).
        if idempotency.is_none() {
            return self.append_grouped(conversation, routes).await;
        }
        let now = now_millis();
        let tenant = conversation.tenant_id;
        let (txn, _turn) = self.begin_write().await?;
        if let Some(claim) = idempotency {
            let claimed = txn
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
            if claimed.rows_affected() == 0 {
                let row = idempotency_key::Entity::find()
                    .filter(idempotency_key::Column::TenantId.eq(tenant.as_uuid()))
                    .filter(idempotency_key::Column::Key.eq(claim.key.as_str()))
                    .one(&txn)
                    .await?
                    .ok_or_else(|| Error::Db("idempotency key vanished".to_owned()))?;
                txn.rollback().await?;
                return Ok(AppendOutcome::Replay {
                    request_hash: row.request_hash,
                    response: row.response,
                });
            }
        }
        let open = conversation::Entity::update_many()
            .col_expr(conversation::Column::LastActivity, Expr::value(now))
            .filter(conversation::Column::Id.eq(conversation.id.as_uuid()))
            .filter(conversation::Column::TenantId.eq(tenant.as_uuid()))
            .filter(conversation::Column::Status.eq(ConversationState::Open.as_str()))
            .exec(&txn)
            .await?;
        if open.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(AppendOutcome::Closed);
        }
        let appended = self.append_in(&txn, conversation, routes, now).await?;
        if let Some(claim) = idempotency {
            idempotency_key::Entity::update_many()
                .col_expr(
                    idempotency_key::Column::Response,
                    Expr::value(respond(&appended)),
                )
                .filter(idempotency_key::Column::TenantId.eq(tenant.as_uuid()))
                .filter(idempotency_key::Column::Key.eq(claim.key.as_str()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(AppendOutcome::Appended(appended))
    }

    /// The conversation's copies whose sender or recipient is of `party_type`, System and echo
    /// copies left out, with `eventId` > `after`, oldest first, at most `limit`.
    pub async fn conversation_activities(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        party_type: IntegrationType,
        after: Millis,
        limit: u64,
    ) -> Result<Vec<String>> {
        let t = party_type.as_str();
        Ok(activity::Entity::find()
            .select_only()
            .column(activity::Column::Body)
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
            // Bound as a signed 64-bit integer: a larger limit would panic in the driver.
            .limit(limit.min(i64::MAX as u64))
            .into_tuple::<String>()
            .all(&self.db)
            .await?)
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
        let rows = self.db.query_all(self.statement(&sql, values)).await?;
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
        let done = used_signature::Entity::insert(used_signature::ActiveModel {
            signature: Set(signature.to_owned()),
            expires: Set(expires),
        })
        .exec_without_returning(&self.db)
        .await;
        match done.map_err(Error::from) {
            Ok(_) => Ok(true),
            Err(Error::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Forgets idempotency keys older than 24 hours and signatures past their window.
    pub async fn sweep_expired(&self, now: Millis) -> Result<()> {
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::Created.lte(now - IDEMPOTENCY_TTL_MS))
            .exec(&self.db)
            .await?;
        used_signature::Entity::delete_many()
            .filter(used_signature::Column::Expires.lt(now))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
