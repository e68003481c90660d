//! Schema migrations, one ordered directory per backend (`migrations/sqlite`,
//! `migrations/postgres`) with the same versions and names in both; a test keeps them in
//! step. Applied migrations are recorded by sqlx in `_sqlx_migrations` with checksums, so
//! an edited migration is detected instead of silently skipped.

use sqlx::migrate::Migrator;

use crate::{Db, StoreError, Target};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// How the database's schema compares with this build's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions this build knows, in order.
    pub known: Vec<i64>,
    /// Versions applied successfully in the database, in order.
    pub applied: Vec<i64>,
    /// Known versions not yet applied.
    pub pending: Vec<i64>,
    /// Applied versions this build does not know (a newer build migrated the database).
    pub unknown: Vec<i64>,
    /// Applied versions whose recorded checksum differs from this build's file.
    pub modified: Vec<i64>,
}

impl MigrationStatus {
    /// True when every known migration is applied, unmodified, and nothing else is.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty() && self.modified.is_empty()
    }
}

impl Db {
    fn migrator(&self) -> &'static Migrator {
        match self.backend() {
            crate::Backend::Sqlite => &SQLITE,
            crate::Backend::Postgres => &POSTGRES,
        }
    }

    /// Applies every pending migration, each in its own transaction. Safe to run on every
    /// start and from several processes: PostgreSQL takes an advisory lock, SQLite's
    /// single writer serialises.
    pub async fn migrate(&self) -> Result<MigrationStatus, StoreError> {
        let migrator = self.migrator();
        match self.pools_for_migration() {
            Target::Sqlite(pool) => migrator.run(pool).await?,
            Target::Postgres(pool) => migrator.run(pool).await?,
        }
        let status = self.migration_status().await?;
        if status.is_current() { Ok(status) } else { Err(StoreError::SchemaNotCurrent(describe(&status))) }
    }

    /// Compares the applied migrations with this build's, without changing anything.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let table_exists: bool = match self.reader() {
            Target::Sqlite(c) => {
                sqlx::query_scalar(
                    "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(c)
                .await?
            }
            Target::Postgres(c) => {
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(c).await?
            }
        };
        let applied: Vec<(i64, Vec<u8>)> = if table_exists {
            crate::sql!(self.reader(), |c| {
                sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version")
                    .fetch_all(c)
                    .await
            })?
        } else {
            Vec::new()
        };
        let migrator = self.migrator();
        let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
        let pending = known.iter().copied().filter(|v| !applied.iter().any(|(a, _)| a == v)).collect();
        let unknown = applied.iter().map(|(v, _)| *v).filter(|v| !known.contains(v)).collect();
        let modified = applied
            .iter()
            .filter(|(v, checksum)| {
                migrator.iter().any(|m| m.version == *v && m.checksum.as_ref() != checksum.as_slice())
            })
            .map(|(v, _)| *v)
            .collect();
        Ok(MigrationStatus {
            known,
            applied: applied.into_iter().map(|(v, _)| v).collect(),
            pending,
            unknown,
            modified,
        })
    }
}

/// One line saying what is wrong with the schema.
pub(crate) fn describe(status: &MigrationStatus) -> String {
    let mut parts = Vec::new();
    if !status.pending.is_empty() {
        parts.push(format!("pending migrations {:?} (run `smartticket migrate`)", status.pending));
    }
    if !status.unknown.is_empty() {
        parts.push(format!("migrations {:?} come from a newer SmartTicket", status.unknown));
    }
    if !status.modified.is_empty() {
        parts.push(format!("migrations {:?} were changed after being applied", status.modified));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migrations() {
        let sqlite: Vec<(i64, String)> = SQLITE.iter().map(|m| (m.version, m.description.to_string())).collect();
        let postgres: Vec<(i64, String)> = POSTGRES.iter().map(|m| (m.version, m.description.to_string())).collect();
        assert_eq!(sqlite, postgres, "migrations/sqlite and migrations/postgres must list the same versions and names");
        assert!(!sqlite.is_empty());
    }
}
