//! What can go wrong in storage, classified by who can fix it: the database being away
//! (retry later, answer 503), a constraint the caller broke (a conflict), or stored data
//! that no longer decodes (a bug or tampering; never silently skipped).

use thiserror::Error;

/// A storage failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be reached or is shutting down; nothing was changed.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness constraint refused the write; `constraint` names it where the backend
    /// says (PostgreSQL) or gives the driver's message (SQLite).
    #[error("a row with the same unique key already exists ({constraint})")]
    Unique {
        /// The constraint or column that clashed.
        constraint: String,
    },
    /// A foreign key refused the write.
    #[error("the write refers to a row that does not exist ({constraint})")]
    ForeignKey {
        /// The constraint or column that was violated.
        constraint: String,
    },
    /// A stored value no longer decodes into its domain type.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The options do not describe a usable database.
    #[error("database configuration: {0}")]
    Config(String),
    /// Applying migrations failed; the schema is left as it was before the failing one.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The schema is older or newer than this build expects.
    #[error("the database schema is not current: {0}")]
    SchemaNotCurrent(String),
    /// Any other driver error.
    #[error("database error: {0}")]
    Sql(#[source] sqlx::Error),
}

impl StoreError {
    /// True when the write clashed with a uniqueness constraint.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Unique { .. })
    }

    /// True when the database could not be reached; the operation may be retried.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Runs the result of a write through [`StoreError`], turning a uniqueness clash into the
/// caller's own error (`EmailTaken`, `NameTaken`): the one constraint an insert can break
/// once its id is fresh.
pub fn unique_or<T, E: From<StoreError>>(result: Result<T, sqlx::Error>, clash: impl FnOnce() -> E) -> Result<T, E> {
    match result.map_err(StoreError::from) {
        Ok(value) => Ok(value),
        Err(error) if error.is_unique_violation() => Err(clash()),
        Err(error) => Err(E::from(error)),
    }
}

/// PostgreSQL SQLSTATE classes and codes meaning "the server is not there for you now".
fn is_postgres_unavailable(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || code.starts_with("57P") // operator intervention: admin shutdown, crash shutdown
}

/// SQLite primary result codes that mean the file is busy, locked, full or unreadable.
fn is_sqlite_unavailable(code: &str) -> bool {
    // SQLITE_BUSY=5, SQLITE_LOCKED=6, SQLITE_IOERR=10, SQLITE_FULL=13, SQLITE_CANTOPEN=14;
    // extended codes carry the primary code in their low byte.
    code.parse::<i64>().map(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14)).unwrap_or(false)
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().map(str::to_owned).unwrap_or_else(|| db.message().to_owned());
                if db.is_unique_violation() {
                    return StoreError::Unique { constraint };
                }
                if db.is_foreign_key_violation() {
                    return StoreError::ForeignKey { constraint };
                }
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                if is_postgres_unavailable(&code) || is_sqlite_unavailable(&code) {
                    StoreError::Unavailable(error)
                } else {
                    StoreError::Sql(error)
                }
            }
            _ => StoreError::Sql(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_unavailable_codes() {
        assert!(is_postgres_unavailable("08006"));
        assert!(is_postgres_unavailable("57P01"));
        assert!(!is_postgres_unavailable("23505"));
        assert!(is_sqlite_unavailable("5"));
        assert!(is_sqlite_unavailable("261")); // SQLITE_BUSY_RECOVERY
        assert!(!is_sqlite_unavailable("2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
    }
}
