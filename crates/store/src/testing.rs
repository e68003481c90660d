//! Fresh, isolated databases for tests on both backends.
//!
//! SQLite gets a file in its own temporary directory. PostgreSQL gets its own schema in
//! the database named by `SMARTTICKET_TEST_DATABASE_URL`, so parallel tests and parallel
//! runs never see each other's rows; schemas left by crashed runs are dropped after an
//! hour. Use [`backend_tests!`](crate::backend_tests) to run one test body on both.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection;

use crate::{Db, StoreError, StoreOptions};

/// The variable naming the PostgreSQL database tests may create schemas in.
pub const TEST_DATABASE_URL_VAR: &str = "SMARTTICKET_TEST_DATABASE_URL";

/// Test schemas older than this are leftovers of crashed runs and are dropped.
const STALE_SCHEMA_AGE_SECS: u64 = 3600;

/// A migrated database that exists only for one test.
pub struct TestDb {
    /// The open, migrated database.
    pub db: Db,
    /// The options it was opened with (to open it again, as a restarted process would).
    pub options: StoreOptions,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(tempfile::TempDir),
    Postgres { url: String, schema: String },
}

impl TestDb {
    /// A migrated SQLite database in a new temporary directory.
    pub async fn sqlite() -> Result<TestDb, StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Config(format!("temporary directory: {e}")))?;
        let options = StoreOptions::sqlite_in(dir.path());
        let db = Db::open(&options).await?;
        db.migrate().await?;
        Ok(TestDb { db, options, cleanup: Cleanup::Sqlite(dir) })
    }

    /// A migrated PostgreSQL schema of its own, in the database named by
    /// `SMARTTICKET_TEST_DATABASE_URL`. Fails with an explanation when it is unset.
    pub async fn postgres() -> Result<TestDb, StoreError> {
        let url = std::env::var(TEST_DATABASE_URL_VAR).map_err(|_| {
            StoreError::Config(format!(
                "{TEST_DATABASE_URL_VAR} is not set: this test needs PostgreSQL, for example \
                 {TEST_DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432/test (see .ci/run)"
            ))
        })?;
        Self::postgres_at(&url, 4).await
    }

    /// A migrated PostgreSQL schema of its own in the database at `url`, with a pool of
    /// `connections_max` (benchmarks use it too: a scratch schema, dropped by
    /// [`TestDb::finish`]).
    pub async fn postgres_at(url: &str, connections_max: u32) -> Result<TestDb, StoreError> {
        let url = url.to_owned();
        let now_secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let schema = format!("st_test_{now_secs}_{}", uuid_simple());
        let mut admin = sqlx::PgConnection::connect(&url).await?;
        drop_stale_schemas(&mut admin, now_secs).await?;
        // The name is ours (digits and hex), so formatting it into DDL is safe.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await?;
        admin.close().await?;
        let mut options = StoreOptions::postgres(url.clone());
        options.postgres_schema = Some(schema.clone());
        options.connections_max = connections_max;
        let db = Db::open(&options).await?;
        db.migrate().await?;
        Ok(TestDb { db, options, cleanup: Cleanup::Postgres { url, schema } })
    }

    /// Closes the database and removes everything the test created.
    pub async fn finish(self) -> Result<(), StoreError> {
        self.db.close().await;
        match self.cleanup {
            Cleanup::Sqlite(dir) => drop(dir),
            Cleanup::Postgres { url, schema } => {
                let mut admin = sqlx::PgConnection::connect(&url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
            }
        }
        Ok(())
    }
}

fn uuid_simple() -> String {
    smartticket_core::id::Uuid::now_v7().simple().to_string()
}

async fn drop_stale_schemas(admin: &mut sqlx::PgConnection, now_secs: u64) -> Result<(), StoreError> {
    let names: Vec<String> = sqlx::query_scalar("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'st\\_test\\_%'")
        .fetch_all(&mut *admin)
        .await?;
    for name in names {
        let created_secs = name.split('_').nth(2).and_then(|s| s.parse::<u64>().ok()).unwrap_or(now_secs);
        let is_ours = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if is_ours && now_secs.saturating_sub(created_secs) > STALE_SCHEMA_AGE_SECS {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
                .execute(&mut *admin)
                .await?;
        }
    }
    Ok(())
}

/// Runs each test body once on SQLite and once on PostgreSQL (ignored unless asked for,
/// since it needs a server):
///
/// ```ignore
/// smartticket_store::backend_tests! {
///     async fn counts_rows(db) { /* uses db: Db */ }
/// }
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($(async fn $name:ident($db:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test_db = $crate::testing::TestDb::sqlite().await.expect("SQLite test database");
                    let $db = test_db.db.clone();
                    $body
                    test_db.finish().await.expect("cleanup");
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL (SMARTTICKET_TEST_DATABASE_URL)"]
                async fn $name() {
                    let test_db = $crate::testing::TestDb::postgres().await.expect("PostgreSQL test database");
                    let $db = test_db.db.clone();
                    $body
                    test_db.finish().await.expect("cleanup");
                }
            )*
        }
    };
}
