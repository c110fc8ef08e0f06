//! Group commit: concurrent [`Store::append_activities`] calls without an idempotency key share
//! one transaction, and so do concurrent [`Store::settle_delivery`] calls (webhook attempts that
//! end at the same time).
//!
//! Each call queues its job, then waits for the commit turn. Whoever gets the turn writes
//! everything queued so far (up to [`MAX_GROUP`]) in one transaction. For appends: one statement
//! marks the conversations active (and finds the closed ones), one reserves every hub's
//! `eventId`s, one inserts every copy, one or two queue the deliveries. The calls that were
//! written meanwhile find their answer when their turn comes and return at once. Under light
//! load a group is one call, as before; under heavy load the per-transaction cost (and, on
//! SQLite, the wait for the single writer) is shared by the whole group.
//!
//! The group runs in its own task, holding the turn until it is done, so a caller that goes
//! away (a client that disconnects) neither cancels the others' writes nor lets two groups
//! run at once. When a group's transaction fails, its calls are written again one by one, so
//! one bad call fails only itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use sea_orm::sea_query::ColumnType;
use switchboard_domain::conversation::{Conversation, ConversationState};
use switchboard_domain::ids::DeliveryId;
use switchboard_domain::routing::Route;
use switchboard_domain::time::{now_millis, Millis};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::deliveries::{Attempt, Settle};
use crate::engine::{AppendOutcome, Staged};
use crate::writer::{engine_write, Tx};
use crate::{Error, Result, Store};

/// The most calls one transaction writes.
pub const MAX_GROUP: usize = 256;

/// One call waiting to be written, and where its answer goes.
struct Pending<J, R> {
    job: J,
    done: oneshot::Sender<Result<R>>,
}

/// A queue of calls and the commit turn; shared by the clones of a [`Store`].
pub(crate) struct GroupCommit<J, R> {
    queue: std::sync::Mutex<Vec<Pending<J, R>>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl<J, R> Default for GroupCommit<J, R> {
    fn default() -> Self {
        Self {
            queue: std::sync::Mutex::new(Vec::new()),
            turn: Arc::default(),
        }
    }
}

impl<J: Send + 'static, R: Send + 'static> GroupCommit<J, R> {
    /// Queues `job` and waits for its answer. Whoever gets the turn runs `commit` on everything
    /// queued (at most [`MAX_GROUP`]) in a task of its own; `commit` answers one result per job,
    /// in order.
    pub(crate) async fn submit<F, Fut>(&self, job: J, commit: F) -> Result<R>
    where
        F: Fn(Vec<J>) -> Fut,
        Fut: Future<Output = Vec<Result<R>>> + Send + 'static,
    {
        let poisoned = || Error::Db("a group commit queue is poisoned".to_owned());
        let (done, mut answer) = oneshot::channel();
        self.queue
            .lock()
            .map_err(|_| poisoned())?
            .push(Pending { job, done });
        loop {
            let turn = self.turn.clone().lock_owned().await;
            match answer.try_recv() {
                Ok(result) => return result,
                Err(oneshot::error::TryRecvError::Closed) => {
                    return Err(Error::Db("a group commit failed".to_owned()))
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let group: Vec<Pending<J, R>> = {
                let mut queue = self.queue.lock().map_err(|_| poisoned())?;
                let n = queue.len().min(MAX_GROUP);
                queue.drain(..n).collect()
            };
            let (jobs, answers): (Vec<J>, Vec<_>) =
                group.into_iter().map(|p| (p.job, p.done)).unzip();
            let written = commit(jobs);
            let _ = tokio::spawn(async move {
                let _turn = turn;
                for (done, result) in answers.into_iter().zip(written.await) {
                    // A caller that went away no longer wants its answer.
                    let _ = done.send(result);
                }
            })
            .await;
        }
    }
}

/// Runs `write` on all `jobs` in one transaction; when that fails, on each job alone, so one
/// bad job fails only itself.
async fn all_or_each<J, R, F, Fut>(jobs: Vec<J>, write: F) -> Vec<Result<R>>
where
    F: Fn(Vec<J>) -> Fut,
    Fut: Future<Output = Result<Vec<R>>>,
    J: Clone,
{
    let n = jobs.len();
    match write(jobs.clone()).await {
        Ok(results) => results.into_iter().map(Ok).collect(),
        Err(e) if n == 1 => vec![Err(e)],
        Err(e) => {
            tracing::debug!(error = %e, size = n, "a group commit failed; writing its calls one by one");
            let mut results = Vec::with_capacity(n);
            for job in jobs {
                results.push(
                    write(vec![job])
                        .await
                        .and_then(|mut r| r.pop().ok_or(Error::NotFound)),
                );
            }
            results
        }
    }
}

/// An append: the conversation as routed, and its routes.
pub(crate) type AppendJob = (Conversation, Vec<Route>);

/// A settled attempt: the delivery, the attempt, and what follows.
pub(crate) type SettleJob = (DeliveryId, Attempt, Settle);

impl Store {
    /// Appends `routes` to the open `conversation` in a group commit: `Appended`, or `Closed`
    /// when the conversation was closed meanwhile.
    pub(crate) async fn append_grouped(
        &self,
        conversation: &Conversation,
        routes: &[Route],
    ) -> Result<AppendOutcome> {
        let store = self.clone();
        self.appends
            .submit((conversation.clone(), routes.to_vec()), move |jobs| {
                let store = store.clone();
                async move {
                    all_or_each(jobs, |jobs| {
                        let store = store.clone();
                        async move { store.write_group(jobs).await }
                    })
                    .await
                }
            })
            .await
    }

    /// Records a webhook attempt in a group commit with the others that end meanwhile.
    pub(crate) async fn settle_grouped(&self, job: SettleJob) -> Result<()> {
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
        engine_write!(self, |s, tx| s.settles_in(tx, &jobs))?;
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
                    crate::deliveries::placeholders(1, ids.len())
                ),
                ids,
            ))
            .await?;
        }
        // Successes, the common case, in a few statements for all; the rest one by one.
        let (succeeded, rest): (Vec<&SettleJob>, Vec<&SettleJob>) =
            order.into_iter().partition(|(_, attempt, settle)| {
                matches!(settle, Settle::Succeeded)
                    && crate::deliveries::last_error(attempt).is_none()
            });
        let done: Vec<_> = succeeded.iter().map(|(id, a, _)| (*id, a)).collect();
        self.settle_succeeded_in(tx, &done).await?;
        for (id, attempt, settle) in rest {
            self.settle_in(tx, *id, attempt, settle).await?;
        }
        Ok(())
    }

    /// Reserves `n` consecutive `eventId`s in each hub of `wanted` (hub → n) at `now`, in one
    /// statement: the first of each hub is `max(now, last + 1)`, as
    /// [`Store::reserve_event_ids`] does for one hub. The clock rows stay locked until the
    /// transaction ends; they are written in the order of `wanted`'s keys.
    async fn reserve_many(
        &self,
        tx: &Tx<'_>,
        wanted: &BTreeMap<Uuid, usize>,
        now: Millis,
    ) -> Result<HashMap<Uuid, Millis>> {
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let mut values = vec![now.into()];
        let mut rows = Vec::with_capacity(wanted.len());
        for (i, (hub, n)) in wanted.iter().enumerate() {
            let n = i64::try_from(*n).map_err(|_| Error::Db("too many activities".to_owned()))?;
            rows.push(format!("(${}, ${})", 2 * i + 2, 2 * i + 3));
            values.push((*hub).into());
            // The row's own `n` travels as `now + n - 1`, the value a new clock starts at.
            values.push(now.saturating_add(n - 1).into());
        }
        let reserved = tx
            .rows(
                self.statement(
                    &format!(
                        "INSERT INTO hub_clocks (hub_id, last_event_id) VALUES {} \
                         ON CONFLICT (hub_id) DO UPDATE SET last_event_id = CASE \
                         WHEN excluded.last_event_id > hub_clocks.last_event_id + (excluded.last_event_id - $1 + 1) \
                         THEN excluded.last_event_id \
                         ELSE hub_clocks.last_event_id + (excluded.last_event_id - $1 + 1) END \
                         RETURNING hub_id, last_event_id",
                        rows.join(", ")
                    ),
                    values,
                ),
                &[
                    ("hub_id", ColumnType::Uuid),
                    ("last_event_id", ColumnType::BigInteger),
                ],
            )
            .await?;
        let mut first = HashMap::with_capacity(wanted.len());
        for row in reserved {
            let hub: Uuid = row.try_get("", "hub_id")?;
            let last: i64 = row.try_get("", "last_event_id")?;
            let n = wanted.get(&hub).copied().unwrap_or(1) as i64;
            first.insert(hub, last - n + 1);
        }
        if first.len() != wanted.len() {
            return Err(Error::Db("the hub clocks answered too few rows".to_owned()));
        }
        Ok(first)
    }

    /// Appends every job in one transaction; one outcome per job, in order.
    async fn write_group(&self, jobs: Vec<AppendJob>) -> Result<Vec<AppendOutcome>> {
        engine_write!(self, |s, tx| s.group_in(tx, &jobs))
    }

    /// Appends every job in `tx`; one outcome per job, in order.
    async fn group_in(&self, tx: &Tx<'_>, jobs: &[AppendJob]) -> Result<Vec<AppendOutcome>> {
        let now = now_millis();

        // The open conversations, marked active (a write first: see the engine's note on SQLite).
        // Each conversation is looked for under its own tenant, as everywhere else.
        let mut ids: Vec<(Uuid, Uuid)> = jobs
            .iter()
            .map(|(c, _)| (c.id.as_uuid(), c.tenant_id.as_uuid()))
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

        // The hubs' eventIds, reserved in the order of hub ids so that two groups on
        // PostgreSQL lock the clock rows in the same order.
        let mut wanted: BTreeMap<Uuid, usize> = BTreeMap::new();
        for (c, routes) in jobs {
            if is_open(c) && !routes.is_empty() {
                *wanted.entry(c.hub_id.as_uuid()).or_default() += routes.len();
            }
        }
        let mut next = self.reserve_many(tx, &wanted, now).await?;

        let mut staged = Staged::default();
        let mut outcomes = Vec::with_capacity(jobs.len());
        for (c, routes) in jobs {
            if !is_open(c) {
                outcomes.push(AppendOutcome::Closed);
                continue;
            }
            let first = next.get_mut(&c.hub_id.as_uuid()).map_or(now, |n| {
                let first = *n;
                *n += routes.len() as Millis;
                first
            });
            outcomes.push(AppendOutcome::Appended(staged.add(c, routes, first, now)?));
        }
        self.write_staged(tx, staged, now).await?;
        Ok(outcomes)
    }
}
