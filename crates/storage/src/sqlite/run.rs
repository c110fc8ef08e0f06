//! Statements sea-orm built for SQLite, run on a plain rusqlite connection: values bound as sqlx
//! binds them, rows read back as the sea-orm values the models expect, errors mapped as sqlx's
//! are (a unique key taken is [`Error::Conflict`]). Shared by the inline reads and the writer.

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::Connection;
use sea_orm::sea_query::{ColumnType, Value};
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, IdenStatic, Iterable, ProxyRow, QueryResult,
    Statement,
};

use crate::error::{Error, Result};

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

/// Whether a SQLite error is a foreign key that refused a write.
pub(crate) fn is_foreign_key(e: &rusqlite::Error) -> bool {
    e.sqlite_error()
        .is_some_and(|f| f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
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

/// Runs an insert whose parent rows may be gone: the rows it wrote, or [`Error::NotFound`] when
/// a foreign key refused it.
pub(crate) fn execute_child(conn: &Connection, statement: &Statement) -> Result<u64> {
    let mut stmt = prepare(conn, statement)?;
    match stmt.raw_execute() {
        Ok(n) => Ok(n as u64),
        Err(e) if is_foreign_key(&e) => Err(Error::NotFound),
        Err(e) => Err(db(e)),
    }
}
