//! Statements of a fixed shape, built by sea-query once per backend.
//!
//! Building a point `SELECT` with sea-query (the statement tree, then its SQL text) can take more
//! CPU than SQLite takes to answer it. The hot point reads keep their SQL in a [`SqlOnce`] beside
//! them and bind each call's values to it.
//! The caller still writes the query with sea-orm, with its real values: a release build builds it
//! the first time only; a debug build (every test) builds it every time and checks that the
//! cached SQL and the values given are what it builds, so a query and its values cannot drift
//! apart unnoticed.

use std::sync::OnceLock;

use sea_orm::sea_query::{Value, Values};
use sea_orm::{DbBackend, QueryTrait, Statement};

/// The SQL of one query shape, per backend.
pub(crate) struct SqlOnce {
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

impl SqlOnce {
    pub(crate) const fn new() -> Self {
        Self {
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// The statement `query` builds for `backend`, with `values` bound: they must be the values
    /// `query` binds, in its order.
    pub(crate) fn statement<Q: QueryTrait>(
        &self,
        backend: DbBackend,
        query: impl FnOnce() -> Q,
        values: Vec<Value>,
    ) -> Statement {
        let cell = match backend {
            DbBackend::Sqlite => &self.sqlite,
            _ => &self.postgres,
        };
        let sql = if cfg!(debug_assertions) {
            let built = query().build(backend);
            let sql = cell.get_or_init(|| built.sql.clone());
            assert_eq!(*sql, built.sql, "a SqlOnce serves one query shape");
            assert_eq!(
                Some(&Values(values.clone())),
                built.values.as_ref(),
                "the values given are not those of the query"
            );
            sql
        } else {
            cell.get_or_init(|| query().build(backend).sql)
        };
        Statement::from_sql_and_values(backend, sql.as_str(), values)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use uuid::Uuid;

    use super::*;
    use crate::entities::hub;

    fn by_id(id: Uuid, tenant: Uuid) -> sea_orm::Select<hub::Entity> {
        hub::Entity::find_by_id(id).filter(hub::Column::TenantId.eq(tenant))
    }

    #[test]
    fn binds_each_calls_values_to_the_sql_built_once() {
        static SQL: SqlOnce = SqlOnce::new();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for _ in 0..2 {
                let (id, tenant) = (Uuid::new_v4(), Uuid::new_v4());
                let got = SQL.statement(
                    backend,
                    || by_id(id, tenant),
                    vec![id.into(), tenant.into()],
                );
                assert_eq!(got, by_id(id, tenant).build(backend));
            }
        }
    }

    #[test]
    #[should_panic(expected = "the values given are not those of the query")]
    fn values_out_of_order_are_caught() {
        static SQL: SqlOnce = SqlOnce::new();
        let (id, tenant) = (Uuid::new_v4(), Uuid::new_v4());
        SQL.statement(
            DbBackend::Sqlite,
            || by_id(id, tenant),
            vec![tenant.into(), id.into()],
        );
    }
}
