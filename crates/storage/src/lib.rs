//! Switchboard storage: sea-orm entities and repositories over SQLite or PostgreSQL.
//!
//! [`Store`] is the one handle: it connects, runs the migrations of `switchboard-migration`, and
//! offers a method per repository operation, taking domain types and answering domain types.
//! Every tenant-scoped method takes the tenant id first and only ever touches that tenant's rows,
//! so another tenant's row is simply [`Error::NotFound`]. `find_*` answers an `Option`, `get_*`
//! turns absence into `NotFound`. Channel configurations and server keys are encrypted at rest
//! ([`EncryptionKey`]). No SQL lives outside this crate; no HTTP or business rule lives in it:
//! a rule it applies (the `eventId` clock, dormancy) is the domain's function, called here.
//!
//! Where things are:
//! - `doors`: the two ways to the database, read and write (a closure over one transaction
//!   type, `Tx`), and how each runs on each backend, chosen once in [`Store::connect`];
//! - `sqlite/`: what only a SQLite file has (inline reads, the writer thread, the checkpointer);
//! - `group`: group commit, for either backend;
//! - one repository per noun: `hubs`, `integrations`, `identity`, `conversations`,
//!   `activities` (with the clock, idempotency keys and used signatures), `deliveries` (the
//!   outbox and notifications); `paging` for their lists;
//! - `entities`: one sea-orm entity per table; `once`: SQL of hot point reads built once.

mod activities;
mod conversations;
mod crypto;
mod deliveries;
mod doors;
mod entities;
mod error;
mod group;
mod hubs;
mod identity;
mod integrations;
mod once;
mod paging;
mod smooch;
mod smooch_messages;
mod sqlite;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, SqlxPostgresConnector, SqlxSqliteConnector,
    Statement, TransactionTrait,
};
use switchboard_migration::{Migrator, MigratorTrait};

pub use activities::{
    AppendOutcome, Appended, CopyPage, Idempotency, ResumeItem, IDEMPOTENCY_TTL_MS,
};
pub use conversations::{CloseOutcome, Closed, Closing, Established, NewConversation};
pub use crypto::EncryptionKey;
pub use deliveries::{
    Attempt, Claimed, ConversationFacts, Delivery, Notification, Settle, SmoochFacts, HELD,
};
pub use error::{Error, Result};
pub use identity::{ClientOut, Login, NewClient, NewTenant, SecretInfo};
pub use smooch_messages::{MessageCursor, StoredMessage};

use crypto::Cipher;

/// Key of the PostgreSQL advisory lock that serializes migrations across nodes.
const MIGRATION_LOCK_KEY: i64 = 0x5377_6974_6368_4d67; // "SwitchMg"

/// Connections of a PostgreSQL pool (per node).
const PG_MAX_CONNECTIONS: u32 = 10;
/// How long a query waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SQLite waits for another connection's write lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The page cache of a SQLite file's writer connection, KiB.
const SQLITE_WRITER_CACHE_KIB: i64 = 8192;
/// A PostgreSQL connection idle for longer is pinged before it is handed out (the server may
/// have restarted or dropped it meanwhile). A busy pool hands out connections without a ping:
/// sqlx pings on every acquire by default, one more round trip for each query.
const PG_PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// A handle on the database: its two doors (see `doors`) and the at-rest cipher. Cheap to
/// clone.
#[derive(Clone)]
pub struct Store {
    /// The pool: on PostgreSQL and an in-memory SQLite database, both doors; on a SQLite file,
    /// the migrations only.
    db: DatabaseConnection,
    /// A SQLite file's doors: reads inline, writes on the writer thread (see `sqlite`).
    file: Option<Arc<sqlite::SqliteFile>>,
    cipher: Cipher,
    /// When a new delivery is first due, after its activity: the retry schedule's first delay.
    first_delivery_delay_ms: i64,
    /// Counts the writes to hubs and integrations made through this store (all clones share
    /// it), so a cache of them can tell that it is stale: see [`Store::hub_generation`].
    hub_generation: Arc<std::sync::atomic::AtomicU64>,
    /// Appends, and settled webhook attempts, waiting for a group commit (see `group`).
    appends: Arc<group::GroupCommit<activities::AppendJob, AppendOutcome>>,
    settles: Arc<group::GroupCommit<deliveries::SettleJob, ()>>,
    /// `SWITCHBOARD_PROVIDERS=offline`: provider deliveries are written held (SPEC 7.5.3).
    providers_offline: bool,
    /// The key of media link signatures (SPEC 7.3.5), derived from the at-rest key.
    media_key: [u8; 32],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.db.get_database_backend())
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// Creates a missing SQLite file (of a `mode=rwc` URL) readable and writable by its owner only
/// (0600), whatever the umask, before SQLite opens it: SQLite gives the `-wal` and `-shm` files
/// the main file's permissions, so they are 0600 too. Any failure is left for SQLite to report.
fn create_owner_only(database_url: &str, options: &SqliteConnectOptions) {
    let creates = database_url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|pair| pair == "mode=rwc"));
    if !creates {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(options.get_filename());
    }
}

impl Store {
    /// Connects to `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…`.
    ///
    /// SQLite runs in WAL mode with `synchronous=NORMAL`, a 5 s busy timeout and foreign keys
    /// on. An in-memory database lives in one connection that is never recycled, or it would
    /// vanish.
    pub async fn connect(database_url: &str, key: EncryptionKey) -> Result<Store> {
        let mut file = None;
        let db = if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            // Plans for the values at hand: the outbox's tables grow from nothing to tens of
            // thousands of rows faster than autovacuum analyzes them, and the generic plans of
            // prepared statements then walked the whole backlog. Planning each execution costs
            // far less.
            //
            // No JIT compilation either: it pays off for long analytic queries only, and a
            // planner estimate inflated by lagging statistics made it compile short outbox reads
            // (over 10 ms of compiling for a 1 ms read).
            let options = PgConnectOptions::from_str(database_url)
                .map_err(|e| Error::Db(format!("invalid PostgreSQL URL: {e}")))?
                .options([("plan_cache_mode", "force_custom_plan"), ("jit", "off")]);
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
            create_owner_only(database_url, &options);
            // One connection: an in-memory database's (never recycled, or it would vanish), or
            // a file's for its migrations. A SQLite connection is a local file handle that
            // cannot hang up: no ping before each use (sqlx's default).
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .test_before_acquire(false)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|e| Error::Db(format!("cannot open SQLite database: {e}")))?;
            // The pool's connection has put the file in WAL mode: the doors may open it now.
            file = sqlite::SqliteFile::open(
                database_url,
                SQLITE_BUSY_TIMEOUT,
                SQLITE_WRITER_CACHE_KIB,
            )?
            .map(Arc::new);
            SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
        } else {
            return Err(Error::Db(
                "unsupported database URL: expected sqlite:… or postgres://…".to_owned(),
            ));
        };
        Ok(Store {
            db,
            file,
            cipher: Cipher::new(&key),
            media_key: key.media_key(),
            providers_offline: false,
            first_delivery_delay_ms: 0,
            hub_generation: Arc::default(),
            appends: Arc::default(),
            settles: Arc::default(),
        })
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

    /// This store with new deliveries first due `ms` after their activity (the first delay of
    /// the retry schedule; 0 by default).
    pub fn with_first_delivery_delay(mut self, ms: i64) -> Self {
        self.first_delivery_delay_ms = ms.max(0);
        self
    }

    /// This store with provider deliveries written held (`SWITCHBOARD_PROVIDERS=offline`,
    /// SPEC 7.5.3) or due as usual.
    pub fn with_providers_offline(mut self, offline: bool) -> Self {
        self.providers_offline = offline;
        self
    }

    /// The key of media link signatures (SPEC 7.3.5).
    pub fn media_key(&self) -> [u8; 32] {
        self.media_key
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

    /// Checks that the database answers (`SELECT 1` through the read door), for readiness
    /// probes.
    pub async fn ping(&self) -> Result<()> {
        self.read_rows(
            Statement::from_string(self.backend(), "SELECT 1 AS one"),
            &[("one", sea_orm::sea_query::ColumnType::Integer)],
        )
        .await?;
        Ok(())
    }
}
