//! Group commit, for either backend: concurrent calls of one kind share one write
//! transaction. Appends without an idempotency key (`activities`) and settled webhook attempts
//! (`deliveries`) use it.
//!
//! Each call queues its job, then waits for the commit turn. Whoever gets the turn writes
//! everything queued so far (up to [`MAX_GROUP`]) in one transaction. The calls that were
//! written meanwhile find their answer when their turn comes and return at once. Under light
//! load a group is one call; under heavy load the per-transaction cost (and, on SQLite, the
//! wait for the writer thread) is shared by the whole group.
//!
//! The group runs in its own task, holding the turn until it is done, so a caller that goes
//! away (a client that disconnects) neither cancels the others' writes nor lets two groups
//! of one kind run at once. When a group's transaction fails, its calls are written again one
//! by one ([`all_or_each`]), so one bad call fails only itself.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::{Error, Result};

/// The most calls one transaction writes.
pub const MAX_GROUP: usize = 256;

/// One call waiting to be written, and where its answer goes.
struct Pending<J, R> {
    job: J,
    done: oneshot::Sender<Result<R>>,
}

/// A queue of calls and the commit turn; shared by the clones of a [`crate::Store`].
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
pub(crate) async fn all_or_each<J, R, F, Fut>(jobs: Vec<J>, write: F) -> Vec<Result<R>>
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
