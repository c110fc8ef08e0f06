//! The two doors to the database: **read** and **write**. Every query of the repositories goes
//! through one of them; which way each runs is chosen once, when the [`Store`] connects.
//!
//! | | read | write |
//! |---|---|---|
//! | SQLite file | inline on the caller's thread (`sqlite::reads`) | a transaction on the writer thread (`sqlite::writer`) |
//! | in-memory SQLite, PostgreSQL | the pool | a pooled transaction |
//!
//! A write is a closure over one transaction type, [`Tx`]: [`Store::write`], or
//! [`Store::write_in_two`] when the caller's code must run between two steps of one transaction
//! (the answer stored with an `Idempotency-Key`, which the caller makes of the copies the first
//! step stored).
//! Write bodies build their statements with sea-orm for [`Tx::backend`] or write SQL with `$N`
//! placeholders ([`Store::statement`]), and run them with [`Tx::run`], [`Tx::execute`],
//! [`Tx::rows`] and [`Tx::models`]: one way, because the same body runs on the writer thread,
//! where a statement is a rusqlite call that completes at once, and in a pooled transaction.
//! A body awaits nothing but its `Tx` (on the writer thread it is polled once).
//!
//! Nothing here makes write transactions take turns beyond what the backend does: a SQLite file
//! has one writer thread per `Store` (and the file lock, with its busy timeout, between
//! processes), an in-memory database has one connection, and PostgreSQL locks rows (see
//! `activities` for the clocks and `deliveries` for the outbox).

use futures_util::future::BoxFuture;
use sea_orm::sea_query::ColumnType;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult, QueryResult,
    QueryTrait, Select, Statement, TransactionTrait,
};

use crate::error::is_foreign_key_violation;
use crate::once::SqlOnce;
use crate::sqlite::run;
use crate::sqlite::writer::{at_once, Step, WriteConn};
use crate::{Error, Result, Store};

/// A write transaction: a pooled one, or one on the writer thread of a SQLite file.
pub(crate) enum Tx<'a> {
    Pool(&'a DatabaseTransaction),
    Writer(&'a WriteConn),
}

impl Tx<'_> {
    /// The backend statements are built for.
    pub(crate) fn backend(&self) -> DbBackend {
        match self {
            Tx::Pool(txn) => txn.get_database_backend(),
            Tx::Writer(_) => DbBackend::Sqlite,
        }
    }

    /// Runs a statement that answers no rows: the rows it changed.
    pub(crate) async fn execute(&self, statement: Statement) -> Result<u64> {
        match self {
            Tx::Pool(txn) => Ok(txn.execute(statement).await?.rows_affected()),
            Tx::Writer(conn) => conn.with(|c| run::execute(c, &statement)),
        }
    }

    /// Builds a sea-orm statement (insert, update, delete) for this backend and runs it: the
    /// rows it changed.
    pub(crate) async fn run<Q: QueryTrait>(&self, query: Q) -> Result<u64> {
        let statement = query.build(self.backend());
        self.execute(statement).await
    }

    /// Runs an insert whose parent rows may be gone meanwhile: the rows it wrote, or
    /// [`Error::NotFound`] when a foreign key refused it.
    pub(crate) async fn insert_child<Q: QueryTrait>(&self, query: Q) -> Result<u64> {
        let statement = query.build(self.backend());
        match self {
            Tx::Pool(txn) => match txn.execute(statement).await {
                Ok(done) => Ok(done.rows_affected()),
                Err(e) if is_foreign_key_violation(&e) => Err(Error::NotFound),
                Err(e) => Err(e.into()),
            },
            Tx::Writer(conn) => conn.with(|c| run::execute_child(c, &statement)),
        }
    }

    /// The rows of a statement whose result columns `types` names.
    pub(crate) async fn rows(
        &self,
        statement: Statement,
        types: &[(&'static str, ColumnType)],
    ) -> Result<Vec<QueryResult>> {
        match self {
            Tx::Pool(txn) => Ok(txn.query_all(statement).await?),
            Tx::Writer(conn) => conn.with(|c| run::query(c, &statement, types)),
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
            Tx::Writer(conn) => conn.with(|c| run::models::<E>(c, &statement)),
        }
    }

    /// The first row `select` finds, as a model.
    pub(crate) async fn one<E>(&self, select: Select<E>) -> Result<Option<E::Model>>
    where
        E: EntityTrait,
        E::Model: FromQueryResult + Send + Sync,
    {
        let statement = select.build(self.backend());
        Ok(self.models::<E>(statement).await?.into_iter().next())
    }
}

/// What a write in two steps does after its first step.
pub(crate) enum Then<B> {
    /// Undo what the first step wrote.
    Rollback,
    /// Run the second step with this, then commit.
    Continue(B),
}

impl Store {
    /// The write door: runs `body` in one transaction, committed when it answers `Ok`, rolled
    /// back otherwise. On a SQLite file it runs on the writer thread (so it owns what it uses);
    /// elsewhere in a pooled transaction.
    pub(crate) async fn write<T, F>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t Store, &'t Tx<'t>) -> BoxFuture<'t, Result<T>> + Send + 'static,
    {
        match &self.file {
            Some(file) => {
                let store = self.clone();
                file.writer
                    .transaction(move |tx| at_once(body(&store, tx)))
                    .await
            }
            None => {
                let txn = self.db.begin().await?;
                let out = body(self, &Tx::Pool(&txn)).await;
                match out {
                    Ok(v) => {
                        txn.commit().await?;
                        Ok(v)
                    }
                    Err(e) => {
                        let _ = txn.rollback().await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// The write door for a transaction in two steps with the caller's code between them:
    /// `first` runs, `between` (on the caller's task, with the transaction open) decides what
    /// follows, and `second`, when asked for, runs before the commit. Answers what `first` and
    /// `second` answered. On the writer thread of a SQLite file the thread waits for `between`,
    /// so `between` must be short and must not wait for anything.
    pub(crate) async fn write_in_two<A, B, C, F, G>(
        &self,
        first: F,
        between: impl FnOnce(&A) -> Then<B>,
        second: G,
    ) -> Result<(A, Option<C>)>
    where
        A: Send + 'static,
        B: Send + 'static,
        C: Send + 'static,
        F: for<'t> FnOnce(&'t Store, &'t Tx<'t>) -> BoxFuture<'t, Result<A>> + Send + 'static,
        G: for<'t> FnOnce(&'t Store, &'t Tx<'t>, B) -> BoxFuture<'t, Result<C>> + Send + 'static,
    {
        match &self.file {
            Some(file) => {
                let store = self.clone();
                let (a, open) = file
                    .writer
                    .transaction_in_two(move |tx| at_once(first(&store, tx)))
                    .await?;
                let step = match between(&a) {
                    Then::Rollback => Step::Rollback,
                    Then::Continue(b) => {
                        let store = self.clone();
                        Step::Then(Box::new(move |tx| at_once(second(&store, tx, b))))
                    }
                };
                let c = open.finish(step).await?;
                Ok((a, c))
            }
            None => {
                let txn = self.db.begin().await?;
                let out = {
                    let tx = Tx::Pool(&txn);
                    match first(self, &tx).await {
                        Err(e) => Err(e),
                        Ok(a) => match between(&a) {
                            Then::Rollback => Ok((a, None, false)),
                            Then::Continue(b) => {
                                second(self, &tx, b).await.map(|c| (a, Some(c), true))
                            }
                        },
                    }
                };
                match out {
                    Ok((a, c, true)) => {
                        txn.commit().await?;
                        Ok((a, c))
                    }
                    Ok((a, c, false)) => {
                        txn.rollback().await?;
                        Ok((a, c))
                    }
                    Err(e) => {
                        let _ = txn.rollback().await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// The read door, for one row: the first row of the select `query` builds, outside any
    /// transaction. Its SQL is built once, in `sql` (see `once`): `values` are the ones `query`
    /// binds, in its order (the `LIMIT 1` added here binds the last).
    pub(crate) async fn read_one<E>(
        &self,
        sql: &SqlOnce,
        query: impl FnOnce() -> Select<E>,
        mut values: Vec<sea_orm::Value>,
    ) -> Result<Option<E::Model>>
    where
        E: EntityTrait,
        E::Model: FromQueryResult + Send + Sync,
    {
        use sea_orm::QuerySelect;
        values.push(1u64.into());
        let statement = sql.statement(self.backend(), || query().limit(1), values);
        match &self.file {
            Some(file) => Ok(file.reads.all::<E>(&statement)?.into_iter().next()),
            None => Ok(E::find().from_raw_sql(statement).one(&self.db).await?),
        }
    }

    /// The read door, for every row of `select`, as models.
    pub(crate) async fn read_all<E>(&self, select: Select<E>) -> Result<Vec<E::Model>>
    where
        E: EntityTrait,
        E::Model: FromQueryResult + Send + Sync,
    {
        match &self.file {
            Some(file) => file.reads.all::<E>(&select.build(DbBackend::Sqlite)),
            None => Ok(select.all(&self.db).await?),
        }
    }

    /// The read door, for the rows of a `SELECT` built for this backend whose result columns
    /// `types` names.
    pub(crate) async fn read_rows(
        &self,
        statement: Statement,
        types: &[(&'static str, ColumnType)],
    ) -> Result<Vec<QueryResult>> {
        match &self.file {
            Some(file) => file.reads.rows(&statement, types),
            None => Ok(self.db.query_all(statement).await?),
        }
    }
}
