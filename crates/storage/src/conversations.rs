//! Conversations (SPEC 4): establish (open one per binding, or merge properties into the open
//! one), read, close, and find the dormant ones.
//!
//! Establishing a new conversation and closing one store their lifecycle routes
//! (`conversation:opened`, start messages, `conversation:closed`) in the same transaction,
//! through the one append of `activities`. Routing is the caller's (`domain::routing`): these
//! writes take a closure that builds the routes from the conversation as stored, and run it on
//! the caller's task between the two steps of one write transaction
//! ([`Store::write_in_two`]): the first step opens or closes the conversation, the second
//! appends the routes.
//!
//! Dormancy is the domain's rule ([`dormant_before`]); storage only selects the open
//! conversations idle since the cutoff it computes.

use futures_util::future::BoxFuture;
use sea_orm::sea_query::{ColumnType, Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use serde_json::{Map, Value};
use switchboard_domain::activity::ConversationReason;
use switchboard_domain::conversation::{
    dormant_before, merge_properties, Conversation, ConversationState,
};
use switchboard_domain::ids::{ConversationId, HubId, IntegrationId, TenantId};
use switchboard_domain::routing::{Mode, Route};
use switchboard_domain::time::{now_millis, Millis};

use crate::activities::Appended;
use crate::doors::{Then, Tx};
use crate::entities::{conversation, hub};
use crate::once::SqlOnce;
use crate::{Error, Result, Store};

/// How many times a write that lost a race (a unique key taken by a concurrent transaction)
/// is tried again.
const RACE_RETRIES: usize = 3;

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

pub(crate) fn json_text(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Db(format!("cannot serialize: {e}")))
}

/// The first step of an establish: the open conversation of the binding, or a new one.
enum Opened {
    Existing(Conversation),
    New(Conversation),
}

/// In `tx`: the open conversation of `new`'s binding with `given` properties merged in, or a
/// new conversation stored for it. `Conflict` when a concurrent establish stored one first;
/// `NotFound` when the integration or hub is gone.
async fn open_in(tx: &Tx<'_>, new: &NewConversation, given: &Map<String, Value>) -> Result<Opened> {
    let now = now_millis();
    // Locks the open conversation of the binding, if any (a write first, so that two
    // establishes of one binding on PostgreSQL take turns here).
    let locked = tx
        .run(
            conversation::Entity::update_many()
                .col_expr(
                    conversation::Column::LastActivity,
                    Expr::col(conversation::Column::LastActivity).into(),
                )
                .filter(conversation::Column::TenantId.eq(new.tenant.as_uuid()))
                .filter(conversation::Column::IntegrationId.eq(new.integration.as_uuid()))
                .filter(conversation::Column::OpenBinding.eq(new.binding.as_str())),
        )
        .await?;
    if locked > 0 {
        let row = tx
            .one(
                conversation::Entity::find()
                    .filter(conversation::Column::TenantId.eq(new.tenant.as_uuid()))
                    .filter(conversation::Column::IntegrationId.eq(new.integration.as_uuid()))
                    .filter(conversation::Column::OpenBinding.eq(new.binding.as_str())),
            )
            .await?
            .ok_or(Error::NotFound)?;
        let mut conversation = to_conversation(row)?;
        if !given.is_empty() {
            merge_properties(&mut conversation.properties, given);
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
    tx.insert_child(conversation::Entity::insert(conversation::ActiveModel {
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
    }))
    .await?;
    Ok(Opened::New(conversation))
}

/// The second step of an establish or a close: appends the caller's `routes` to the
/// conversation, at the time it was opened or closed. Answers the routes and their copies.
fn append_routes<'t>(
    s: &'t Store,
    tx: &'t Tx<'t>,
    (conversation, routes): (Conversation, Vec<Route>),
) -> BoxFuture<'t, Result<(Vec<Route>, Vec<Appended>)>> {
    Box::pin(async move {
        let at = conversation.closed.unwrap_or(conversation.opened);
        let appended = s
            .append_in(tx, &[(&conversation, &routes)], at)
            .await?
            .pop()
            .unwrap_or_default();
        Ok((routes, appended))
    })
}

impl Store {
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
            let (new, given) = (new.clone(), given.clone());
            let written = self
                .write_in_two(
                    move |_s, tx| Box::pin(async move { open_in(tx, &new, &given).await }),
                    |opened| match opened {
                        Opened::Existing(_) => Then::Commit,
                        Opened::New(c) => Then::Continue((c.clone(), routes_for(c))),
                    },
                    append_routes,
                )
                .await;
            return match written {
                Ok((Opened::Existing(conversation), _)) => Ok(Established {
                    conversation,
                    is_new: false,
                    routes: Vec::new(),
                    appended: Vec::new(),
                }),
                Ok((Opened::New(conversation), appended)) => {
                    let (routes, appended) = appended.unwrap_or_default();
                    Ok(Established {
                        conversation,
                        is_new: true,
                        routes,
                        appended,
                    })
                }
                // A concurrent establish of the same binding committed first: take its
                // conversation on the next turn.
                Err(Error::Conflict) => continue,
                Err(e) => Err(e),
            };
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
        let reason = match reason {
            ConversationReason::Establish => "establish",
            ConversationReason::Api => "api",
            ConversationReason::Dormant => "dormant",
        };
        let ((conversation, closed_now), appended) = self
            .write_in_two(
                move |_s, tx| {
                    Box::pin(async move {
                        let now = now_millis();
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
                            .filter(
                                conversation::Column::Status.eq(ConversationState::Open.as_str()),
                            );
                        if let Some(idle_since) = idle_since {
                            update =
                                update.filter(conversation::Column::LastActivity.lte(idle_since));
                        }
                        let done = tx.run(update).await?;
                        let row = tx
                            .one(
                                conversation::Entity::find_by_id(id.as_uuid())
                                    .filter(conversation::Column::TenantId.eq(tenant.as_uuid())),
                            )
                            .await?
                            .ok_or(Error::NotFound)?;
                        Ok((to_conversation(row)?, done > 0))
                    })
                },
                |(conversation, closed_now)| match closed_now {
                    true => Then::Continue((conversation.clone(), routes_for(conversation))),
                    false => Then::Commit,
                },
                append_routes,
            )
            .await?;
        let (routes, appended) = appended.unwrap_or_default();
        Ok(Closed {
            conversation,
            closed_now,
            routes,
            appended,
        })
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
