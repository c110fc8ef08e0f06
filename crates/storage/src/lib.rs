//! Switchboard storage: sea-orm entities and repositories over SQLite or PostgreSQL.
//!
//! [`Store`] is the one handle: it connects, runs the migrations of `switchboard-migration`, and
//! offers a method per repository operation, taking domain types and answering domain types.
//! Every tenant-scoped method takes the tenant id first and only ever touches that tenant's rows,
//! so another tenant's row is simply [`Error::NotFound`]. `find_*` answers an `Option`, `get_*`
//! turns absence into `NotFound`. Channel configurations and server keys are encrypted at rest
//! ([`EncryptionKey`]). No SQL lives outside this crate; no HTTP or business rule lives in it.

mod activities;
mod conversations;
mod crypto;
mod deliveries;
mod entities;
mod error;
mod group;
mod hubs;
mod identity;
mod inline;
mod integrations;
mod once;
mod paging;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, SqlxPostgresConnector,
    SqlxSqliteConnector, Statement, TransactionTrait,
};
use switchboard_migration::{Migrator, MigratorTrait};

pub use activities::{AppendOutcome, Appended, Idempotency, ResumeItem, IDEMPOTENCY_TTL_MS};
pub use conversations::{Closed, Established, NewConversation};
pub use crypto::EncryptionKey;
pub use deliveries::{Attempt, Claimed, Delivery, Notification, Settle};
pub use error::{Error, Result};
pub use identity::{ClientOut, Login, NewClient, NewTenant, SecretInfo};

use crypto::Cipher;

/// Key of the PostgreSQL advisory lock that serializes migrations across nodes.
const MIGRATION_LOCK_KEY: i64 = 0x5377_6974_6368_4d67; // "SwitchMg"

/// Connections of a PostgreSQL pool (per node).
const PG_MAX_CONNECTIONS: u32 = 10;
/// Connections of a SQLite file pool: readers run in parallel under WAL, writers queue.
const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// How long a query waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SQLite waits for another connection's write lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The page cache of each SQLite write connection, KiB.
const SQLITE_WRITER_CACHE_KIB: i64 = 8192;
/// A PostgreSQL connection idle for longer is pinged before it is handed out (the server may
/// have restarted or dropped it meanwhile). A busy pool hands out connections without a ping:
/// sqlx pings on every acquire by default, one more round trip for each query.
const PG_PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// A handle on the database: a connection pool and the at-rest cipher. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// The engine's other write transactions ([`Store::begin_write`]): on a SQLite file, one
    /// connection of its own, whose page cache stays warm (a connection's cache is dropped when
    /// another connection has written); elsewhere the pool.
    writer: DatabaseConnection,
    cipher: Cipher,
    /// Serializes the engine's write transactions on SQLite, which has one writer anyway: a
    /// transaction that waited here never meets SQLITE_BUSY from another engine write.
    sqlite_writes: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// When a new delivery is first due, after its activity: the retry schedule's first delay.
    first_delivery_delay_ms: i64,
    /// Counts the writes to hubs and integrations made through this store (all clones share
    /// it), so a cache of them can tell that it is stale: see [`Store::hub_generation`].
    hub_generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Appends, and settled webhook attempts, waiting for a group commit.
    appends: std::sync::Arc<group::GroupCommit<activities::AppendJob, AppendOutcome>>,
    settles: std::sync::Arc<group::GroupCommit<deliveries::SettleJob, ()>>,
    /// Reads of a SQLite file that run on the caller's thread (see `inline`).
    inline: Option<std::sync::Arc<inline::InlineReads>>,
    /// The thread that runs the hot engine writes (appends, claims, settles) of a SQLite
    /// file, each transaction at once (see `writer`).
    sqlite_writer: Option<std::sync::Arc<writer::SqliteWriter>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…`.
    ///
    /// SQLite runs in WAL mode with `synchronous=NORMAL`, a 5 s busy timeout and foreign keys
    /// on. An in-memory database lives in one connection that is never recycled, or it would
    /// vanish.
    pub async fn connect(database_url: &str, key: EncryptionKey) -> Result<Store> {
        let mut inline = None;
        let mut writer = None;
        let mut sqlite_writer = None;
        let db = if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            // Plans for the values at hand: the outbox's tables grow from nothing to tens of
            // thousands of rows faster than autovacuum analyzes them, and the generic plans of
            // prepared statements then walked the whole backlog (2 s claims). Planning each
            // execution costs well under a millisecond.
            let options = PgConnectOptions::from_str(database_url)
                .map_err(|e| Error::Db(format!("invalid PostgreSQL URL: {e}")))?
                .options([("plan_cache_mode", "force_custom_plan")]);
            let pool = PgPoolOptions::new()
                .max_connections(PG_MAX_CONNECTIONS)
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > PG_PING_AFTER_IDLE {
                            use sea_orm::sqlx::Connection;
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|e| Error::Db(format!("cannot connect to PostgreSQL: {e}")))?;
            SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
        } else if database_url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(database_url)
                .map_err(|e| Error::Db(format!("invalid SQLite URL: {e}")))?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true);
            let in_memory =
                database_url.contains(":memory:") || database_url.contains("mode=memory");
            // One connection, never recycled: an in-memory database's, or a file's writer.
            let single = || {
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .test_before_acquire(false)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
            };
            let pool = if in_memory {
                single()
            } else {
                SqlitePoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS)
            };
            // A SQLite connection is a local file handle that cannot hang up: no ping before each
            // use (sqlx's default), which cost a round trip to the connection's thread per query.
            let pool = pool
                .test_before_acquire(false)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
                .await
                .map_err(|e| Error::Db(format!("cannot open SQLite database: {e}")))?;
            if !in_memory {
                let one = single()
                    .connect_with(
                        options.pragma("cache_size", format!("-{SQLITE_WRITER_CACHE_KIB}")),
                    )
                    .await
                    .map_err(|e| Error::Db(format!("cannot open SQLite database: {e}")))?;
                writer = Some(SqlxSqliteConnector::from_sqlx_sqlite_pool(one));
                inline = inline::InlineReads::for_url(database_url, SQLITE_BUSY_TIMEOUT)
                    .map(std::sync::Arc::new);
                if let Some(path) = inline::file_path(database_url) {
                    sqlite_writer = Some(std::sync::Arc::new(writer::SqliteWriter::start(
                        &path,
                        SQLITE_BUSY_TIMEOUT,
                        SQLITE_WRITER_CACHE_KIB,
                    )?));
                }
            }
            SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
        } else {
            return Err(Error::Db(
                "unsupported database URL: expected sqlite:… or postgres://…".to_owned(),
            ));
        };
        Ok(Store {
            writer: writer.unwrap_or_else(|| db.clone()),
            db,
            cipher: Cipher::new(&key),
            sqlite_writes: std::sync::Arc::new(tokio::sync::Mutex::new(())),
            first_delivery_delay_ms: 0,
            hub_generation: std::sync::Arc::default(),
            appends: std::sync::Arc::default(),
            settles: std::sync::Arc::default(),
            inline,
            sqlite_writer,
        })
    }

    /// The first row of the select `query` builds, read inline on a SQLite file (see `inline`),
    /// else through the pool. For reads outside a transaction. Its SQL is built once, in `sql`
    /// (see `once`): `values` are the ones `query` binds, in its order (the `LIMIT 1` added here
    /// binds the last).
    pub(crate) async fn read_one<E>(
        &self,
        sql: &once::SqlOnce,
        query: impl FnOnce() -> sea_orm::Select<E>,
        mut values: Vec<sea_orm::Value>,
    ) -> Result<Option<E::Model>>
    where
        E: sea_orm::EntityTrait,
        E::Model: sea_orm::FromQueryResult + Send + Sync,
    {
        use sea_orm::QuerySelect;
        values.push(1u64.into());
        let statement = sql.statement(self.db.get_database_backend(), || query().limit(1), values);
        match &self.inline {
            Some(reads) => Ok(reads.all::<E>(&statement)?.into_iter().next()),
            None => Ok(E::find().from_raw_sql(statement).one(&self.db).await?),
        }
    }

    /// The rows of a raw `SELECT` built for this backend, whose result columns `types` names,
    /// read as [`Store::read_one`] reads.
    pub(crate) async fn read_rows(
        &self,
        statement: Statement,
        types: &[(&'static str, sea_orm::sea_query::ColumnType)],
    ) -> Result<Vec<sea_orm::QueryResult>> {
        match &self.inline {
            Some(reads) => reads.rows(&statement, types),
            None => Ok(self.db.query_all(statement).await?),
        }
    }

    /// Every row of `select`, read as [`Store::read_one`] reads.
    pub(crate) async fn read_all<E>(&self, select: sea_orm::Select<E>) -> Result<Vec<E::Model>>
    where
        E: sea_orm::EntityTrait,
        E::Model: sea_orm::FromQueryResult + Send + Sync,
    {
        use sea_orm::QueryTrait;
        match &self.inline {
            Some(reads) => reads.all::<E>(&select.build(DbBackend::Sqlite)),
            None => Ok(select.all(&self.db).await?),
        }
    }

    /// A statement written with PostgreSQL placeholders (`$1`), for either backend (SQLite
    /// reads `?1`).
    pub(crate) fn statement(&self, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
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

    /// This store with new deliveries first due `ms` after their activity (the first delay of
    /// the retry schedule; 0 by default).
    pub fn with_first_delivery_delay(mut self, ms: i64) -> Self {
        self.first_delivery_delay_ms = ms.max(0);
        self
    }

    /// A number that grows after every write to a hub or an integration made through this store
    /// (or a clone of it). Read it before loading a hub; the load is still current while the
    /// number is unchanged, as far as this process knows (another node's writes are not seen).
    pub fn hub_generation(&self) -> u64 {
        self.hub_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Marks hubs and integrations as changed: called after such a write, once it is committed.
    pub(crate) fn hubs_changed(&self) {
        self.hub_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The backend statements are built for.
    pub(crate) fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Whether the database is PostgreSQL (else SQLite).
    pub fn is_postgres(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// Applies the pending migrations, all in one transaction. On PostgreSQL a transaction-scoped
    /// advisory lock makes nodes that start together take turns; the later ones then find nothing
    /// pending.
    pub async fn migrate(&self) -> Result<()> {
        let txn = self.db.begin().await?;
        if self.is_postgres() {
            txn.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [MIGRATION_LOCK_KEY.into()],
            ))
            .await?;
        }
        Migrator::up(&txn, None)
            .await
            .map_err(|e| Error::Db(format!("migration failed: {e}")))?;
        txn.commit().await?;
        Ok(())
    }

    /// Checks that the database answers (`SELECT 1`), for readiness probes.
    pub async fn ping(&self) -> Result<()> {
        let backend = self.db.get_database_backend();
        self.db
            .query_one(Statement::from_string(backend, "SELECT 1"))
            .await?;
        Ok(())
    }
}
