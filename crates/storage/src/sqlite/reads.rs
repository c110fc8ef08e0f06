//! Reads of a SQLite file run inline, on the calling task's thread: the read door's SQLite
//! side.
//!
//! sqlx gives every SQLite connection its own thread: each statement is sent to it and its rows
//! sent back, two thread wake-ups per statement, which cost more CPU than the point reads on the
//! hot paths themselves (a conversation per activity, an integration per `GET`). These reads are
//! built with sea-orm as everywhere else, then run here on a few plain connections to the same
//! file: a point read by primary key takes microseconds, less than a hand-off, so it runs on the
//! async worker like any other short computation. Under WAL a reader never waits for the writer,
//! and each statement sees every transaction committed before it started, as a pooled read does.

use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sea_orm::sea_query::ColumnType;
use sea_orm::{EntityTrait, FromQueryResult, QueryResult, Statement};

use super::run::{db, file_path, models, query};
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

fn poisoned() -> Error {
    Error::Db("SQLite read connections: lock poisoned".to_owned())
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
