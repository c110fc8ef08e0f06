//! The checkpointer: a thread that copies what the writer committed from the WAL into the
//! database file, so that readers find short WALs and the writer rarely checkpoints itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::run::db;
use crate::error::{Error, Result};

/// How often the checkpointer looks for new commits.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The running checkpointer. It stops when this is dropped.
pub(crate) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts a thread that runs a passive checkpoint of the file at `path` every
    /// [`CHECKPOINT_EVERY`] in which `commits` grew.
    pub(crate) fn start(
        path: &str,
        busy_timeout: Duration,
        commits: Arc<AtomicU64>,
    ) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(busy_timeout).map_err(db)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || {
                let mut seen = 0;
                // Until the checkpointer is dropped (the channel disconnects).
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let now = commits.load(Ordering::Relaxed);
                    if now != seen {
                        seen = now;
                        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                            tracing::warn!(error = %e, "a background SQLite checkpoint failed");
                        }
                    }
                }
            })
            .map_err(|e| Error::Db(format!("cannot start the SQLite checkpointer: {e}")))?;
        Ok(Self { _stop: stop })
    }
}
