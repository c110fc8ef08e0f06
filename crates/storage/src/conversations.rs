//! Conversations (SPEC 4): establish (open one per binding, or merge properties into the open
//! one), read, close, and find the dormant ones.
//!
//! Establishing a new conversation and closing one store their lifecycle routes
//! (`conversation:opened`, start messages, `conversation:closed`) in the same transaction,
//! through the one append of `activities`. Routing is the caller's (`domain::routing`), and it
//! is decided before the write: the caller hands in the conversation it would open
//! ([`NewConversation`]) or the conversation it read and will close ([`Closing`]), each with
//! the routes built from it, and each write is one body of [`Store::write`] that checks the
//! conversation as it is in the transaction and either stores those routes or leaves them.
//! A close whose conversation changed since it was read stores nothing and says so
//! ([`CloseOutcome::Changed`]): the caller reads it again and builds its routes again.
//!
//! Dormancy is the domain's rule ([`dormant_before`]); storage only selects the open
//! conversations idle since the cutoff it computes.

use sea_orm::sea_query::{ColumnType, Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use serde_json::{Map, Value};
use switchboard_domain::activity::ConversationReason;
use switchboard_domain::conversation::{
    dormant_before, merged_properties, Conversation, ConversationState,
};
use switchboard_domain::ids::{ConversationId, HubId, IntegrationId, TenantId};
use switchboard_domain::limits;
use switchboard_domain::routing::{Mode, Route};
use switchboard_domain::time::Millis;

use crate::activities::Appended;
use crate::doors::Tx;
use crate::entities::{conversation, hub};
use crate::once::SqlOnce;
use crate::{Error, Result, Store};

/// How many times a write that lost a race (a unique key taken by a concurrent transaction)
/// is tried again.
const RACE_RETRIES: usize = 3;

/// A conversation to open when its binding has none open, and its lifecycle routes, both
/// prepared by the caller before the write.
#[derive(Clone, Debug)]
pub struct NewConversation {
    /// The conversation to store as it is: open, with a new id, the Customer integration and
    /// binding it is established on, its token, mode and initial properties (defaults
    /// applied), opened and last active at the same time.
    pub conversation: Conversation,
    /// Its `conversation:opened` and start messages, built from `conversation`: appended at its
    /// opening time when it is stored, dropped when the binding has a conversation open.
    pub routes: Vec<Route>,
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

/// A close prepared by the caller before the write: the conversation as it read it, and the
/// `conversation:closed` routes it built for it closed at `at` for `reason`.
#[derive(Clone, Debug)]
pub struct Closing {
    /// The conversation as the caller read it (open): what `routes` were built from.
    pub read: Conversation,
    pub reason: ConversationReason,
    /// When it closes (if an activity was accepted after `at`, it closes at that activity's
    /// time instead, so that no conversation closes before its last activity).
    pub at: Millis,
    /// Only close it if its last activity is at or before this time (the dormancy sweeper).
    pub idle_since: Option<Millis>,
    /// Its `conversation:closed`, stored with the close.
    pub routes: Vec<Route>,
}

/// The answer of [`Store::close_conversation`].
#[derive(Clone, Debug)]
pub struct Closed {
    pub conversation: Conversation,
    /// Whether this call closed it (false: it was closed already, or was active after
    /// `idle_since`; nothing was stored).
    pub closed_now: bool,
    pub routes: Vec<Route>,
    pub appended: Vec<Appended>,
}

/// What [`Store::close_conversation`] did.
// One answer per close, never kept: not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum CloseOutcome {
    /// Closed now with its routes, or answered as it is in the transaction (see
    /// [`Closed::closed_now`]).
    Done(Closed),
    /// It is open but no longer what the caller read (its mode or properties, say, changed
    /// meanwhile), so the routes may be wrong: nothing was stored.
    Changed,
}

pub(crate) fn to_conversation(row: conversation::Model) -> Result<Conversation> {
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

pub(crate) fn json_text(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Db(format!("cannot serialize: {e}")))
}

/// What an establish found in its transaction.
enum Opened {
    /// The binding's open conversation, with the given properties merged in.
    Existing(Conversation),
    /// None was open: the new one was stored.
    New,
}

/// In `tx`: the open conversation of `new`'s binding with `given` properties merged in, or
/// `new` stored as it is. `Conflict` when a concurrent establish stored one first; `NotFound`
/// when the integration or hub is gone; `Invalid` when the properties it would store (merged,
/// or `new`'s with their defaults) are past a cap of `domain::limits`.
async fn open_in(tx: &Tx<'_>, new: &Conversation, given: &Map<String, Value>) -> Result<Opened> {
    let binding = || {
        conversation::Column::TenantId
            .eq(new.tenant_id.as_uuid())
            .and(conversation::Column::IntegrationId.eq(new.integration_id.as_uuid()))
            .and(conversation::Column::OpenBinding.eq(new.binding.as_str()))
    };
    // Locks the open conversation of the binding, if any (a write first, so that two
    // establishes of one binding on PostgreSQL take turns here).
    let locked = tx
        .run(
            conversation::Entity::update_many()
                .col_expr(
                    conversation::Column::LastActivity,
                    Expr::col(conversation::Column::LastActivity).into(),
                )
                .filter(binding()),
        )
        .await?;
    if locked > 0 {
        let row = tx
            .one(conversation::Entity::find().filter(binding()))
            .await?
            .ok_or(Error::NotFound)?;
        let mut conversation = to_conversation(row)?;
        let merged = if given.is_empty() {
            None
        } else {
            Some(merged_properties(&conversation.properties, given)?)
        };
        // Nothing to write when the merge changes nothing (a provider repeats its user's name).
        if let Some(merged) = merged.filter(|m| *m != conversation.properties) {
            conversation.properties = merged;
            tx.run(
                conversation::Entity::update_many()
                    .col_expr(
                        conversation::Column::Properties,
                        Expr::value(json_text(&conversation.properties)?),
                    )
                    .filter(conversation::Column::Id.eq(conversation.id.as_uuid())),
            )
            .await?;
        }
        return Ok(Opened::Existing(conversation));
    }

    let mut v = switchboard_domain::Violations::default();
    limits::check_properties("properties", &new.properties, &mut v);
    v.into_result(())?;
    tx.insert_child(conversation::Entity::insert(conversation::ActiveModel {
        id: Set(new.id.as_uuid()),
        tenant_id: Set(new.tenant_id.as_uuid()),
        hub_id: Set(new.hub_id.as_uuid()),
        integration_id: Set(new.integration_id.as_uuid()),
        binding: Set(new.binding.clone()),
        open_binding: Set(Some(new.binding.clone())),
        token_id: Set(new.token_id.clone()),
        mode: Set(new.mode.as_str().to_owned()),
        status: Set(ConversationState::Open.as_str().to_owned()),
        properties: Set(json_text(&new.properties)?),
        opened: Set(new.opened),
        closed: Set(None),
        close_reason: Set(None),
        last_activity: Set(new.last_activity),
    }))
    .await?;
    Ok(Opened::New)
}

/// Appends `routes` to `conversation` in `tx` at `at`: the copies of each route.
async fn append_routes(
    s: &Store,
    tx: &Tx<'_>,
    conversation: &Conversation,
    routes: &[Route],
    at: Millis,
) -> Result<Vec<Appended>> {
    Ok(s.append_in(tx, &[(conversation, routes)], at)
        .await?
        .pop()
        .unwrap_or_default())
}

/// Whether `stored` is still the conversation `read` was, but for its last activity (which
/// every accepted activity moves, and which no lifecycle route depends on).
fn unchanged_since(read: &Conversation, stored: &Conversation) -> bool {
    let read = Conversation {
        last_activity: stored.last_activity,
        ..read.clone()
    };
    read == *stored
}

impl Store {
    /// The conversation of `new`'s binding on its Customer integration if one is open, with
    /// `given` properties merged in (new values win), and `new`'s routes dropped; else
    /// `new.conversation` stored as it is with `new.routes` appended at its opening time. One
    /// write transaction; tried again when a concurrent establish of the binding stored its
    /// conversation first. `NotFound` when the integration or hub is gone.
    pub async fn establish_conversation(
        &self,
        new: &NewConversation,
        given: &Map<String, Value>,
    ) -> Result<Established> {
        let c = &new.conversation;
        if !c.is_open() || c.closed.is_some() {
            return Err(Error::Db(format!(
                "conversation {} to establish is not open",
                c.id
            )));
        }
        for _ in 0..RACE_RETRIES {
            let (new, given) = (new.clone(), given.clone());
            let written = self
                .write(move |s, tx| {
                    Box::pin(async move {
                        let NewConversation {
                            conversation,
                            routes,
                        } = new;
                        match open_in(tx, &conversation, &given).await? {
                            Opened::Existing(conversation) => Ok(Established {
                                conversation,
                                is_new: false,
                                routes: Vec::new(),
                                appended: Vec::new(),
                            }),
                            Opened::New => {
                                let at = conversation.opened;
                                let appended =
                                    append_routes(s, tx, &conversation, &routes, at).await?;
                                Ok(Established {
                                    conversation,
                                    is_new: true,
                                    routes,
                                    appended,
                                })
                            }
                        }
                    })
                })
                .await;
            return match written {
                // A concurrent establish of the same binding committed first: take its
                // conversation on the next turn.
                Err(Error::Conflict) => continue,
                other => other,
            };
        }
        Err(Error::Db(
            "establish lost the race for its binding too many times".to_owned(),
        ))
    }

    /// The open conversation of `binding` on the tenant's Customer integration, if any.
    pub async fn find_open_conversation(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        binding: &str,
    ) -> Result<Option<Conversation>> {
        self.read_all(
            conversation::Entity::find()
                .filter(conversation::Column::TenantId.eq(tenant.as_uuid()))
                .filter(conversation::Column::IntegrationId.eq(integration.as_uuid()))
                .filter(conversation::Column::OpenBinding.eq(binding)),
        )
        .await?
        .pop()
        .map(to_conversation)
        .transpose()
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

    /// Closes `closing.read`, of its tenant, with `closing.routes`, in one write transaction,
    /// if it is as it was read. In the transaction, the conversation is:
    /// - closed already: answered as it is, nothing stored (`closed_now` false);
    /// - with `idle_since`, active after that time (an activity came in since the dormancy
    ///   sweeper listed it): answered as it is, left open, nothing stored;
    /// - open but changed since it was read (anything but its last activity):
    ///   [`CloseOutcome::Changed`], nothing stored;
    /// - else closed at `closing.at` (or at its last activity if that is later), with the
    ///   routes appended at that time (`closed_now` true).
    ///
    /// `NotFound` when it is not the tenant's (or was deleted).
    pub async fn close_conversation(&self, closing: &Closing) -> Result<CloseOutcome> {
        let closing = closing.clone();
        self.write(move |s, tx| {
            Box::pin(async move {
                let Closing {
                    read,
                    reason,
                    at,
                    idle_since,
                    routes,
                } = closing;
                let this = || {
                    conversation::Column::Id
                        .eq(read.id.as_uuid())
                        .and(conversation::Column::TenantId.eq(read.tenant_id.as_uuid()))
                };
                // Locks it (a write first, so that on PostgreSQL an establish that merges
                // properties or an append that marks it active waits for this close, or
                // this close for them).
                let locked = tx
                    .run(
                        conversation::Entity::update_many()
                            .col_expr(
                                conversation::Column::LastActivity,
                                Expr::col(conversation::Column::LastActivity).into(),
                            )
                            .filter(this()),
                    )
                    .await?;
                if locked == 0 {
                    return Err(Error::NotFound);
                }
                let row = tx
                    .one(conversation::Entity::find().filter(this()))
                    .await?
                    .ok_or(Error::NotFound)?;
                let mut stored = to_conversation(row)?;
                let kept_open = idle_since.is_some_and(|since| stored.last_activity > since);
                if !stored.is_open() || kept_open {
                    return Ok(CloseOutcome::Done(Closed {
                        conversation: stored,
                        closed_now: false,
                        routes: Vec::new(),
                        appended: Vec::new(),
                    }));
                }
                if !unchanged_since(&read, &stored) {
                    return Ok(CloseOutcome::Changed);
                }
                let at = at.max(stored.last_activity);
                let reason = match reason {
                    ConversationReason::Establish => "establish",
                    ConversationReason::Api => "api",
                    ConversationReason::Dormant => "dormant",
                };
                tx.run(
                    conversation::Entity::update_many()
                        .col_expr(
                            conversation::Column::Status,
                            Expr::value(ConversationState::Closed.as_str()),
                        )
                        .col_expr(
                            conversation::Column::OpenBinding,
                            Expr::value(Option::<String>::None),
                        )
                        .col_expr(conversation::Column::Closed, Expr::value(at))
                        .col_expr(conversation::Column::CloseReason, Expr::value(reason))
                        .filter(this()),
                )
                .await?;
                stored.state = ConversationState::Closed;
                stored.closed = Some(at);
                let appended = append_routes(s, tx, &stored, &routes, at).await?;
                Ok(CloseOutcome::Done(Closed {
                    conversation: stored,
                    closed_now: true,
                    routes,
                    appended,
                }))
            })
        })
        .await
    }

    /// Open conversations, of any tenant, idle for their hub's `closeDormantConversation`
    /// days at `now`, at most `limit`, longest idle first. The rule is the domain's
    /// ([`dormant_before`], which also says which numbers of days never close anything): hubs
    /// that share a number of days share a cutoff, and each such group is one query.
    pub async fn dormant_conversations(
        &self,
        now: Millis,
        limit: u64,
    ) -> Result<Vec<Conversation>> {
        let column = "close_dormant_conversation";
        let mut days: Vec<i64> = self
            .read_rows(
                hub::Entity::find()
                    .select_only()
                    .column(hub::Column::CloseDormantConversation)
                    .distinct()
                    .build(self.backend()),
                &[(column, ColumnType::BigInteger)],
            )
            .await?
            .iter()
            .map(|row| row.try_get("", column))
            .collect::<std::result::Result<_, _>>()?;
        days.sort_unstable();
        let limit = limit.min(i64::MAX as u64);
        let mut rows = Vec::new();
        for days in days {
            let Some(cutoff) = dormant_before(days, now) else {
                continue;
            };
            let hubs = Query::select()
                .column(hub::Column::Id)
                .from(hub::Entity)
                .and_where(hub::Column::CloseDormantConversation.eq(days))
                .to_owned();
            let idle = conversation::Entity::find()
                .filter(conversation::Column::HubId.in_subquery(hubs))
                .filter(conversation::Column::Status.eq(ConversationState::Open.as_str()))
                .filter(conversation::Column::LastActivity.lte(cutoff))
                .order_by_asc(conversation::Column::LastActivity)
                .limit(limit);
            rows.extend(self.read_all(idle).await?);
        }
        rows.sort_by_key(|row| row.last_activity);
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        rows.into_iter().map(to_conversation).collect()
    }
}
