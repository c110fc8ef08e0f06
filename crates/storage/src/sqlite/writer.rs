//! The writer thread: every write transaction of a SQLite file runs here (the write door's
//! SQLite side), one at a time, in the order they arrive.
//!
//! sqlx runs each SQLite connection on its own thread and hands it one statement at a time: a
//! transaction of eight statements costs sixteen thread wake-ups, and under load the task that
//! sends the next statement waits for a busy async worker while the transaction holds SQLite's
//! one write lock. Here the whole transaction goes to the writer thread at once and runs there
//! from `BEGIN IMMEDIATE` to `COMMIT`: one hand-off each way, and the write lock is held only
//! while SQLite works.
//!
//! A transaction's body is the same async code that runs in a pooled transaction on PostgreSQL
//! (and on an in-memory SQLite database), written against [`Tx`]: on the writer thread every
//! statement completes at once, so the body's future is polled to completion in a single poll
//! ([`at_once`]); a body that awaits anything but its [`Tx`] fails. A transaction in two steps
//! ([`SqliteWriter::transaction_in_two`]) is the one exception to "the thread never waits": the
//! thread holds the transaction open while the caller computes what the second step writes.
//!
//! Other processes (or another [`crate::Store`] on the same file) write through writer threads
//! of their own; SQLite's file lock and its busy timeout make them take turns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::checkpoint::Checkpointer;
use super::run::db;
use crate::doors::Tx;
use crate::error::{Error, Result};

/// The writer thread's connection. The lock is never contended (one thread uses it); it makes
/// a [`Tx`] shareable across threads, as a pooled transaction is.
pub(crate) struct WriteConn(Mutex<Connection>);

impl WriteConn {
    /// Runs `f` on the connection.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self
            .0
            .lock()
            .map_err(|_| Error::Db("the SQLite writer's lock is poisoned".to_owned()))?;
        f(&conn)
    }

    fn batch(&self, sql: &str) -> Result<()> {
        self.with(|c| c.execute_batch(sql).map_err(db))
    }

    /// Commits, or rolls back when `out` is an error or the commit fails.
    fn finish<T>(&self, out: Result<T>) -> Result<T> {
        let out = out.and_then(|v| self.batch("COMMIT").map(|()| v));
        if out.is_err() {
            let _ = self.batch("ROLLBACK");
        }
        out
    }
}

type Job = Box<dyn FnOnce(&WriteConn) + Send>;

/// The second step of a transaction in two steps.
pub(crate) type SecondStep<C> = Box<dyn FnOnce(&Tx<'_>) -> Result<C> + Send>;

/// The WAL's size bound, in pages: past it the writer completes the checkpoint itself, so
/// the WAL can start over (the checkpointer's own rarely catch up with a busy writer), and
/// the WAL file is cut back to this size.
const WAL_BOUND_PAGES: i64 = 4_000;

/// Prepared statements the writer keeps. A group commit's statements have one shape per group
/// size (a row, or a `(VALUES …)` pair, per activity), so the few kinds of statement come in
/// dozens of shapes; with rusqlite's default of 16, most would be parsed again on every commit.
const WRITER_STATEMENTS: usize = 256;

/// What the second step of a transaction in two steps does.
pub(crate) enum Step<C> {
    /// Undo what the first step wrote.
    Rollback,
    /// Run this, then commit.
    Then(SecondStep<C>),
}

/// The open transaction of [`SqliteWriter::transaction_in_two`], waiting for its second step.
pub(crate) struct Open<C> {
    step: mpsc::Sender<Step<C>>,
    done: oneshot::Receiver<Result<Option<C>>>,
}

impl<C> Open<C> {
    /// Runs `step` and ends the transaction: the second step's output, if it ran.
    pub(crate) async fn finish(self, step: Step<C>) -> Result<Option<C>> {
        self.step.send(step).map_err(|_| stopped())?;
        self.done.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Db("the SQLite writer has stopped".to_owned())
}

/// The thread that runs the write transactions of a SQLite file, and its checkpointer.
pub(crate) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
    /// Dropped with the writer: the checkpointer then stops.
    _checkpointer: Checkpointer,
}

impl SqliteWriter {
    /// Opens the writer's connection to `path` (a file already in WAL mode) and starts its
    /// thread and the checkpointer. The thread ends when the last handle is dropped.
    pub(crate) fn start(path: &str, busy_timeout: Duration, cache_kib: i64) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(busy_timeout).map_err(db)?;
        // The settings sqlx gives its connections (they are per connection), and a warm cache.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(db)?;
        conn.pragma_update(None, "cache_size", -cache_kib)
            .map_err(db)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BOUND_PAGES)
            .map_err(db)?;
        conn.pragma_update(None, "journal_size_limit", WAL_BOUND_PAGES * 4096)
            .map_err(db)?;
        // A statement journal (a multi-row statement that may fail halfway inside a transaction
        // keeps one) stays in memory instead of spilling to a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(db)?;
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        let commits = Arc::new(AtomicU64::new(0));
        let checkpointer = Checkpointer::start(path, busy_timeout, commits.clone())?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                let conn = WriteConn(Mutex::new(conn));
                while let Ok(job) = queue.recv() {
                    commits.fetch_add(1, Ordering::Relaxed);
                    // A job that panics loses only its own answer (its caller sees an error).
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn)))
                        .is_err()
                    {
                        let _ = conn.batch("ROLLBACK");
                    }
                }
            })
            .map_err(|e| Error::Db(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self {
            jobs,
            _checkpointer: checkpointer,
        })
    }

    /// Runs `body` in one transaction on the writer thread, from `BEGIN IMMEDIATE` to `COMMIT`
    /// (or `ROLLBACK` when it fails). The transaction completes even if the caller stops
    /// waiting.
    pub(crate) async fn transaction<T, F>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let out = conn
                .batch("BEGIN IMMEDIATE")
                .and_then(|()| conn.finish(body(&Tx::Writer(conn))));
            let _ = done.send(out);
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `first` in a transaction on the writer thread and answers its output, with the
    /// transaction still open: the thread waits for [`Open::finish`] (or for the caller to go
    /// away, which rolls back). For a write whose second step needs the caller's code.
    pub(crate) async fn transaction_in_two<A, C, F>(&self, first: F) -> Result<(A, Open<C>)>
    where
        A: Send + 'static,
        C: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<A> + Send + 'static,
    {
        let (first_done, first_answer) = oneshot::channel();
        let (step, steps) = mpsc::channel::<Step<C>>();
        let (done, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let tx = Tx::Writer(conn);
            let a = match conn.batch("BEGIN IMMEDIATE").and_then(|()| first(&tx)) {
                Ok(a) => a,
                Err(e) => {
                    let _ = conn.batch("ROLLBACK");
                    let _ = first_done.send(Err(e));
                    return;
                }
            };
            // The caller went away: nothing of this transaction is wanted.
            if first_done.send(Ok(a)).is_err() {
                let _ = conn.batch("ROLLBACK");
                return;
            }
            let out = match steps.recv() {
                Ok(Step::Then(second)) => conn.finish(second(&tx).map(Some)),
                Ok(Step::Rollback) | Err(_) => conn.batch("ROLLBACK").map(|()| None),
            };
            let _ = done.send(out);
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        let a = first_answer.await.map_err(|_| stopped())??;
        Ok((a, Open { step, done: answer }))
    }
}

/// The output of a transaction body on the writer thread, where nothing it awaits is pending.
pub(crate) fn at_once<T>(body: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    body.now_or_never().unwrap_or_else(|| {
        Err(Error::Db(
            "a write on the SQLite writer thread waited for something else".to_owned(),
        ))
    })
}
