//! The engine's writes to a SQLite file, on a thread of their own.
//!
//! sqlx runs each SQLite connection on its own thread and hands it one statement at a time: a
//! transaction of eight statements costs sixteen thread wake-ups, and under load the task that
//! sends the next statement waits for a busy async worker while the transaction holds SQLite's
//! one write lock. Here the whole transaction goes to the writer thread at once and runs there
//! from `BEGIN IMMEDIATE` to `COMMIT`: one hand-off each way, and the write lock is held only
//! while SQLite works.
//!
//! The transaction's body is the same async code that runs in a pooled transaction on
//! PostgreSQL (and on an in-memory SQLite database), written against [`Tx`]: on the writer
//! thread every statement completes at once, so the body's future is polled to completion in a
//! single poll.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use rusqlite::{Connection, OpenFlags};
use sea_orm::sea_query::ColumnType;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult, QueryResult,
    Statement,
};

use crate::error::{Error, Result};
use crate::inline;

/// A write transaction: a pooled one, or one on the writer thread.
pub(crate) enum Tx<'a> {
    Pool(&'a DatabaseTransaction),
    Inline(&'a WriteConn),
}

impl Tx<'_> {
    /// The backend statements are built for.
    pub(crate) fn backend(&self) -> DbBackend {
        match self {
            Tx::Pool(txn) => txn.get_database_backend(),
            Tx::Inline(_) => DbBackend::Sqlite,
        }
    }

    /// Runs a statement that answers no rows: the rows it changed.
    pub(crate) async fn execute(&self, statement: Statement) -> Result<u64> {
        match self {
            Tx::Pool(txn) => Ok(txn.execute(statement).await?.rows_affected()),
            Tx::Inline(conn) => conn.with(|c| inline::execute(c, &statement)),
        }
    }

    /// Builds a sea-orm statement (insert, update, delete) for this backend and runs it: the
    /// rows it changed.
    pub(crate) async fn run<Q: sea_orm::QueryTrait>(&self, query: Q) -> Result<u64> {
        let statement = query.build(self.backend());
        self.execute(statement).await
    }

    /// The rows of a statement whose result columns `types` names.
    pub(crate) async fn rows(
        &self,
        statement: Statement,
        types: &[(&'static str, ColumnType)],
    ) -> Result<Vec<QueryResult>> {
        match self {
            Tx::Pool(txn) => Ok(txn.query_all(statement).await?),
            Tx::Inline(conn) => conn.with(|c| inline::query(c, &statement, types)),
        }
    }

    /// The rows of a statement whose result columns are those of `E`, as models.
    pub(crate) async fn models<E>(&self, statement: Statement) -> Result<Vec<E::Model>>
    where
        E: EntityTrait,
        E::Model: FromQueryResult + Send + Sync,
    {
        match self {
            Tx::Pool(txn) => Ok(E::find().from_raw_sql(statement).all(*txn).await?),
            Tx::Inline(conn) => conn.with(|c| inline::models::<E>(c, &statement)),
        }
    }
}

/// The writer thread's connection. The lock is never contended (one thread uses it); it makes
/// a [`Tx`] shareable across threads, as a pooled transaction is.
pub(crate) struct WriteConn(Mutex<Connection>);

impl WriteConn {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self
            .0
            .lock()
            .map_err(|_| Error::Db("the SQLite writer's lock is poisoned".to_owned()))?;
        f(&conn)
    }

    fn batch(&self, sql: &str) -> Result<()> {
        self.with(|c| c.execute_batch(sql).map_err(inline::db))
    }

    /// Runs `body` between `BEGIN IMMEDIATE` and `COMMIT`; rolls back when it fails.
    fn transaction<T>(&self, body: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.batch("BEGIN IMMEDIATE")?;
        let out = body(&Tx::Inline(self)).and_then(|v| self.batch("COMMIT").map(|()| v));
        if out.is_err() {
            let _ = self.batch("ROLLBACK");
        }
        out
    }
}

type Job = Box<dyn FnOnce(&WriteConn) + Send>;

/// How often the checkpointer copies what the writer committed from the WAL into the
/// database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The WAL's size bound, in pages: past it the writer completes the checkpoint itself, so
/// the WAL can start over (the checkpointer's own rarely catch up with a busy writer), and
/// the WAL file is cut back to this size.
const WAL_BOUND_PAGES: i64 = 4_000;

/// Prepared statements the writer keeps. A group commit's statements have one shape per group
/// size (a row, or a `(VALUES …)` pair, per activity), so the few kinds of statement come in
/// dozens of shapes; with rusqlite's default of 16, most were parsed again on every commit
/// (5 % of the writer's CPU). Measured on `webhook`: 5,200-5,350/s before, 5,580-5,940/s after.
const WRITER_STATEMENTS: usize = 256;

/// The thread that runs the engine's write transactions on a SQLite file.
pub(crate) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
    /// Dropped with the writer: the checkpointer then stops.
    _stop: mpsc::Sender<()>,
}

impl SqliteWriter {
    /// Opens the writer's connection to `path` (a file already in WAL mode) and starts its
    /// thread. The thread ends when the last handle is dropped.
    pub(crate) fn start(path: &str, busy_timeout: Duration, cache_kib: i64) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(inline::db)?;
        conn.busy_timeout(busy_timeout).map_err(inline::db)?;
        // The settings sqlx gives its connections (they are per connection), and a warm cache.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(inline::db)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(inline::db)?;
        conn.pragma_update(None, "cache_size", -cache_kib)
            .map_err(inline::db)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BOUND_PAGES)
            .map_err(inline::db)?;
        conn.pragma_update(None, "journal_size_limit", WAL_BOUND_PAGES * 4096)
            .map_err(inline::db)?;
        // A statement journal (a multi-row statement that may fail halfway inside a transaction
        // keeps one) stays in memory instead of spilling to a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(inline::db)?;
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        let checkpoints = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(inline::db)?;
        checkpoints.busy_timeout(busy_timeout).map_err(inline::db)?;
        let commits = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = mpsc::channel::<()>();
        let written = commits.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || {
                let mut seen = 0;
                // Until the writer is dropped (the channel disconnects).
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let now = written.load(Ordering::Relaxed);
                    if now != seen {
                        seen = now;
                        if let Err(e) = checkpoints.execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
                        {
                            tracing::warn!(error = %e, "a background SQLite checkpoint failed");
                        }
                    }
                }
            })
            .map_err(|e| Error::Db(format!("cannot start the SQLite checkpointer: {e}")))?;
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
        Ok(Self { jobs, _stop: stop })
    }

    /// Runs `body` in one transaction on the writer thread, in the order calls arrive. The
    /// transaction completes even if the caller stops waiting.
    pub(crate) async fn transaction<T, F>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        let stopped = || Error::Db("the SQLite writer has stopped".to_owned());
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = done.send(conn.transaction(body));
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
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

/// Runs `$body`, a future over `$tx: &Tx` and `$store: &Store`-like handle, in one engine write
/// transaction: on the writer thread of a SQLite file, else in a pooled transaction under the
/// engine's write turn. What `$body` uses must be owned (it may move to the writer thread).
macro_rules! engine_write {
    ($store:expr, |$s:ident, $tx:ident| $body:expr) => {{
        let store: &crate::Store = $store;
        match store.sqlite_writer.clone() {
            Some(writer) => {
                let $s = store.clone();
                writer
                    .transaction(move |$tx| crate::writer::at_once($body))
                    .await
            }
            None => {
                let (txn, _turn) = store.begin_write().await?;
                let $s = store;
                let $tx = &crate::writer::Tx::Pool(&txn);
                let out = $body.await?;
                txn.commit().await?;
                Ok(out)
            }
        }
    }};
}
pub(crate) use engine_write;
