//! The storage error: what the API maps to 404, 409 or 500. The unique-constraint check lives
//! here, once, for both backends.

use sea_orm::{DbErr, SqlErr};

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist, or belongs to another tenant (the two look the same).
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write (a duplicate name).
    #[error("already exists")]
    Conflict,
    /// A rule of the domain refused what the write would store, as it is in the transaction
    /// (the properties of a conversation, merged, past their caps): 400 with these violations.
    #[error("refused: {0}")]
    Invalid(switchboard_domain::Violations),
    /// Anything else: connection, query, migration, decryption. For logs, not for clients.
    #[error("database error: {0}")]
    Db(String),
}

impl From<switchboard_domain::Violations> for Error {
    fn from(v: switchboard_domain::Violations) -> Self {
        Error::Invalid(v)
    }
}

/// A storage result.
pub type Result<T> = std::result::Result<T, Error>;

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict,
            _ => Error::Db(err.to_string()),
        }
    }
}

/// Whether a write failed on a foreign key, i.e. the parent row it names is gone.
pub(crate) fn is_foreign_key_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    )
}
