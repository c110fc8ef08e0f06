//! What only a SQLite file has: reads inline on the caller's thread ([`reads`]), every write on
//! one writer thread ([`writer`]) and a checkpointer beside it ([`checkpoint`]), over plain
//! rusqlite connections ([`run`]). An in-memory database (one connection, by definition) and
//! PostgreSQL use the pool for both doors instead.

pub(crate) mod checkpoint;
pub(crate) mod reads;
pub(crate) mod run;
pub(crate) mod writer;

use std::time::Duration;

use crate::Result;

/// The two doors of a SQLite file.
pub(crate) struct SqliteFile {
    pub(crate) reads: reads::InlineReads,
    pub(crate) writer: writer::SqliteWriter,
}

impl std::fmt::Debug for SqliteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteFile")
            .field("reads", &self.reads)
            .finish_non_exhaustive()
    }
}

impl SqliteFile {
    /// The doors of the file a `sqlite:` URL names (already in WAL mode); `None` for an
    /// in-memory database.
    pub(crate) fn open(url: &str, busy_timeout: Duration, cache_kib: i64) -> Result<Option<Self>> {
        let Some(path) = run::file_path(url) else {
            return Ok(None);
        };
        let Some(reads) = reads::InlineReads::for_url(url, busy_timeout) else {
            return Ok(None);
        };
        let writer = writer::SqliteWriter::start(&path, busy_timeout, cache_kib)?;
        Ok(Some(Self { reads, writer }))
    }
}
