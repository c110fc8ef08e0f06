//! Reads of a SQLite file run inline, on the calling task's thread.
//!
//! sqlx gives every SQLite connection its own thread: each statement is sent to it and its rows
//! sent back, two thread wake-ups per statement, which cost more CPU than the point reads on the
//! hot paths themselves (a conversation per activity, an integration per `GET`). These reads are
//! built with sea-orm as everywhere else, then run here on a few plain connections to the same
//! file: a point read by primary key takes microseconds, less than a hand-off, so it runs on the
//! async worker like any other short computation. Under WAL a reader never waits for the writer,
//! and each statement sees every transaction committed before it started, as a pooled read does.
//!
//! Only reads outside a transaction come here. The same binding and row conversion serve the
//! writer thread (`writer`), which runs the hot engine writes. An in-memory database (one
//! connection, by definition) and PostgreSQL have neither.

use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, OpenFlags};
use sea_orm::sea_query::{ColumnType, Value};
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, IdenStatic, Iterable, ProxyRow, QueryResult,
    Statement,
};

use crate::error::{Error, Result};

/// Idle connections kept for reuse; more are opened under load and closed after use.
const IDLE_CONNECTIONS: usize = 4;

/// Read connections to one SQLite file.
pub(crate) struct InlineReads {
    path: String,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for InlineReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReads")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl InlineReads {
    /// Inline reads of the file a `sqlite:` URL names; `None` for an in-memory database.
    pub(crate) fn for_url(url: &str, busy_timeout: Duration) -> Option<Self> {
        file_path(url).map(|path| Self {
            path,
            busy_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn open(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(self.busy_timeout).map_err(db)?;
        // Reads only, whatever a caller passes; a small page cache (the OS caches the file).
        conn.pragma_update(None, "query_only", true).map_err(db)?;
        conn.pragma_update(None, "cache_size", -1024).map_err(db)?;
        Ok(conn)
    }

    /// Runs `f` on an idle connection (or a new one), and keeps it for the next read.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let taken = self.idle.lock().map_err(|_| poisoned())?.pop();
        let conn = match taken {
            Some(c) => c,
            None => self.open()?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().map_err(|_| poisoned())?;
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(conn);
        }
        out
    }

    /// The rows of a `SELECT` sea-orm built for SQLite, as models of `E`.
    pub(crate) fn all<E>(&self, statement: &Statement) -> Result<Vec<E::Model>>
    where
        E: EntityTrait,
        E::Model: FromQueryResult,
    {
        self.with(|conn| models::<E>(conn, statement))
    }

    /// The rows of a `SELECT` whose result columns are named in `types`.
    pub(crate) fn rows<S: AsRef<str>>(
        &self,
        statement: &Statement,
        types: &[(S, ColumnType)],
    ) -> Result<Vec<QueryResult>> {
        self.with(|conn| query(conn, statement, types))
    }
}

/// The rows of a statement sea-orm built for SQLite, as models of `E`.
pub(crate) fn models<E>(conn: &Connection, statement: &Statement) -> Result<Vec<E::Model>>
where
    E: EntityTrait,
    E::Model: FromQueryResult,
{
    let types: Vec<(String, ColumnType)> = E::Column::iter()
        .map(|c| (c.as_str().to_owned(), c.def().get_column_type().clone()))
        .collect();
    query(conn, statement, &types)?
        .iter()
        .map(|r| E::Model::from_query_result(r, "").map_err(Error::from))
        .collect()
}

/// Prepares `statement` (cached) with its values bound as sqlx binds them: `?` in order, `$N`
/// and `?N` to the Nth value.
fn prepare<'c>(
    conn: &'c Connection,
    statement: &Statement,
) -> Result<rusqlite::CachedStatement<'c>> {
    let values: Vec<Sql> = statement
        .values
        .iter()
        .flat_map(|v| v.0.iter())
        .map(to_sql)
        .collect::<Result<_>>()?;
    let mut stmt = conn.prepare_cached(&statement.sql).map_err(db)?;
    let mut next = 0;
    for i in 1..=stmt.parameter_count() {
        let n = match stmt.parameter_name(i) {
            Some(name) => name[1..]
                .parse::<usize>()
                .map_err(|_| Error::Db(format!("SQLite: parameter {name}")))?,
            None => {
                next += 1;
                next
            }
        };
        let value = values
            .get(n.wrapping_sub(1))
            .ok_or_else(|| Error::Db(format!("SQLite: no value for parameter {n}")))?;
        stmt.raw_bind_parameter(i, value).map_err(db)?;
    }
    Ok(stmt)
}

/// Runs a statement that answers no rows: the rows it changed.
pub(crate) fn execute(conn: &Connection, statement: &Statement) -> Result<u64> {
    let mut stmt = prepare(conn, statement)?;
    Ok(stmt.raw_execute().map_err(db)? as u64)
}

/// The rows of a statement whose result columns are named in `types`.
pub(crate) fn query<S: AsRef<str>>(
    conn: &Connection,
    statement: &Statement,
    types: &[(S, ColumnType)],
) -> Result<Vec<QueryResult>> {
    let mut stmt = prepare(conn, statement)?;
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let types = names
        .iter()
        .map(|name| {
            types
                .iter()
                .find(|(n, _)| n.as_ref() == name)
                .map(|(_, t)| t)
                .ok_or_else(|| Error::Db(format!("SQLite: no type for column {name}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        let mut values = std::collections::BTreeMap::new();
        for (i, (name, ty)) in names.iter().zip(&types).enumerate() {
            values.insert(name.clone(), from_sql(row.get_ref(i).map_err(db)?, ty)?);
        }
        out.push(QueryResult::from(ProxyRow::new(values)));
    }
    Ok(out)
}

/// The file a `sqlite:` URL names; `None` for an in-memory database.
pub(crate) fn file_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory =
        path.is_empty() || path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory");
    (!in_memory).then(|| path.to_owned())
}

/// A SQLite error as the storage error: a unique key taken is a conflict, as through sqlx.
pub(crate) fn db(e: rusqlite::Error) -> Error {
    use rusqlite::ffi;
    match e.sqlite_error() {
        Some(f)
            if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Error::Conflict
        }
        _ => Error::Db(format!("SQLite: {e}")),
    }
}

fn poisoned() -> Error {
    Error::Db("SQLite read connections: lock poisoned".to_owned())
}

/// A bound value as sqlx binds it for SQLite (UUIDs as 16-byte blobs, booleans as integers).
fn to_sql(value: &Value) -> Result<Sql> {
    let unsupported = || Error::Db(format!("SQLite: unsupported parameter {value:?}"));
    Ok(match value {
        Value::Bool(v) => v.map_or(Sql::Null, |b| Sql::Integer(b.into())),
        Value::TinyInt(v) => v.map_or(Sql::Null, |n| Sql::Integer(n.into())),
        Value::SmallInt(v) => v.map_or(Sql::Null, |n| Sql::Integer(n.into())),
        Value::Int(v) => v.map_or(Sql::Null, |n| Sql::Integer(n.into())),
        Value::BigInt(v) => v.map_or(Sql::Null, Sql::Integer),
        Value::TinyUnsigned(v) => v.map_or(Sql::Null, |n| Sql::Integer(n.into())),
        Value::SmallUnsigned(v) => v.map_or(Sql::Null, |n| Sql::Integer(n.into())),
        Value::Unsigned(v) => v.map_or(Sql::Null, |n| Sql::Integer(n.into())),
        Value::BigUnsigned(v) => match v {
            None => Sql::Null,
            Some(n) => Sql::Integer(i64::try_from(*n).map_err(|_| unsupported())?),
        },
        Value::Float(v) => v.map_or(Sql::Null, |n| Sql::Real(n.into())),
        Value::Double(v) => v.map_or(Sql::Null, Sql::Real),
        Value::String(v) => v.as_ref().map_or(Sql::Null, |s| Sql::Text(s.to_string())),
        Value::Char(v) => v.map_or(Sql::Null, |c| Sql::Text(c.to_string())),
        Value::Bytes(v) => v.as_ref().map_or(Sql::Null, |b| Sql::Blob(b.to_vec())),
        Value::Uuid(v) => v
            .as_ref()
            .map_or(Sql::Null, |u| Sql::Blob(u.as_bytes().to_vec())),
        Value::Json(v) => v.as_ref().map_or(Sql::Null, |j| Sql::Text(j.to_string())),
        _ => return Err(unsupported()),
    })
}

/// A column's value as the sea-orm value its model field reads (typed NULLs included).
fn from_sql(value: ValueRef<'_>, ty: &ColumnType) -> Result<Value> {
    let mismatch = || Error::Db(format!("SQLite: a {ty:?} column holds {value:?}"));
    let int = || match value {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(n) => Ok(Some(n)),
        _ => Err(mismatch()),
    };
    let narrow = |n: Option<i64>| -> Result<Option<i32>> {
        n.map(|n| i32::try_from(n).map_err(|_| mismatch()))
            .transpose()
    };
    let text = || match value {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(|s| Some(Box::new(s.to_owned())))
            .map_err(|_| mismatch()),
        _ => Err(mismatch()),
    };
    let blob = || match value {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) => Ok(Some(b)),
        _ => Err(mismatch()),
    };
    Ok(match ty {
        ColumnType::Boolean => Value::Bool(int()?.map(|n| n != 0)),
        ColumnType::TinyInteger => Value::TinyInt(
            int()?
                .map(|n| i8::try_from(n).map_err(|_| mismatch()))
                .transpose()?,
        ),
        ColumnType::SmallInteger => Value::SmallInt(
            int()?
                .map(|n| i16::try_from(n).map_err(|_| mismatch()))
                .transpose()?,
        ),
        ColumnType::Integer => Value::Int(narrow(int()?)?),
        ColumnType::BigInteger => Value::BigInt(int()?),
        ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => Value::String(text()?),
        ColumnType::Blob | ColumnType::Binary(_) | ColumnType::VarBinary(_) => {
            Value::Bytes(blob()?.map(|b| Box::new(b.to_vec())))
        }
        ColumnType::Uuid => Value::Uuid(
            blob()?
                .map(|b| {
                    sea_orm::prelude::Uuid::from_slice(b)
                        .map(Box::new)
                        .map_err(|_| mismatch())
                })
                .transpose()?,
        ),
        ColumnType::Double => Value::Double(match value {
            ValueRef::Null => None,
            ValueRef::Real(r) => Some(r),
            ValueRef::Integer(n) => Some(n as f64),
            _ => return Err(mismatch()),
        }),
        _ => return Err(mismatch()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_are_read_inline() {
        let t = Duration::from_secs(1);
        assert!(InlineReads::for_url("sqlite::memory:", t).is_none());
        assert!(InlineReads::for_url("sqlite://db?mode=memory&cache=shared", t).is_none());
        assert!(InlineReads::for_url("postgres://x", t).is_none());
        let file = InlineReads::for_url("sqlite://data/switchboard.db?mode=rwc", t);
        assert_eq!(file.map(|r| r.path), Some("data/switchboard.db".to_owned()));
        let bare = InlineReads::for_url("sqlite:switchboard.db", t);
        assert_eq!(bare.map(|r| r.path), Some("switchboard.db".to_owned()));
    }
}
