//! The [`Db`] handle: which backend is open, its pools, and [`Tx`] transactions.
//!
//! SQLite gets one writer connection and a pool of read-only connections: SQLite admits
//! one writer at a time anyway, and queueing writers in-process is cheaper and fairer
//! than letting them spin on `SQLITE_BUSY`. Writers start with `BEGIN IMMEDIATE` so a
//! transaction that reads before it writes can never fail half-way on a lock upgrade.
//! PostgreSQL gets one pool used for both.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::StoreError;

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE_NAME: &str = "smartticket.db";

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, embedded, one file in the data directory.
    Sqlite,
    /// PostgreSQL, over the network.
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// Where the database is and how to use it. Every limit is explicit; see the defaults.
#[derive(Clone)]
pub struct StoreOptions {
    location: Location,
    /// PostgreSQL pool size, or the number of SQLite read-only connections.
    pub connections_max: u32,
    /// How long a request waits for a free connection before the database counts as
    /// unavailable.
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a lock held by another process (the CLI beside a server).
    pub busy_timeout: Duration,
    /// PostgreSQL only: put every table in this schema (tests give each run its own).
    pub postgres_schema: Option<String>,
    /// Connect on first use instead of at open; lets a server start while the database is
    /// still coming up, answering 503 until it is there.
    pub connect_lazily: bool,
}

#[derive(Clone)]
enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password; print only what identifies the backend.
        let location = match &self.location {
            Location::Sqlite(path) => format!("sqlite:{}", path.display()),
            Location::Postgres(_) => "postgres:<url hidden>".to_owned(),
        };
        f.debug_struct("StoreOptions")
            .field("location", &location)
            .field("connections_max", &self.connections_max)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish_non_exhaustive()
    }
}

impl StoreOptions {
    /// Connections per pool unless configured: enough for a 2-core machine's request
    /// handlers without starving PostgreSQL's own `max_connections` (100 by default).
    pub const CONNECTIONS_MAX_DEFAULT: u32 = 8;
    /// Wait for a connection at most this long before answering "unavailable".
    pub const ACQUIRE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
    /// Wait on another process's SQLite lock at most this long.
    pub const BUSY_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

    /// The SQLite file `smartticket.db` in `data_dir`.
    pub fn sqlite_in(data_dir: &Path) -> Self {
        Self::with_location(Location::Sqlite(data_dir.join(DATABASE_FILE_NAME)))
    }

    /// A PostgreSQL database at `url` (`postgres://user:pass@host:port/db`).
    pub fn postgres(url: impl Into<String>) -> Self {
        Self::with_location(Location::Postgres(url.into()))
    }

    /// PostgreSQL or SQLite from a URL (`postgres://…`, `postgresql://…`, `sqlite://PATH`),
    /// or the SQLite file in `data_dir` when there is no URL.
    pub fn from_url_or_data_dir(url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Self::sqlite_in(data_dir));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::postgres(url));
        }
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(StoreError::Config("a sqlite URL needs a file path: sqlite://PATH".into()));
            }
            return Ok(Self::with_location(Location::Sqlite(PathBuf::from(path))));
        }
        let scheme = url.split(':').next().unwrap_or_default();
        Err(StoreError::Config(format!(
            "unsupported database URL scheme `{}`: use postgres://… or sqlite://PATH",
            scheme.chars().take(16).collect::<String>()
        )))
    }

    fn with_location(location: Location) -> Self {
        Self {
            location,
            connections_max: Self::CONNECTIONS_MAX_DEFAULT,
            acquire_timeout: Self::ACQUIRE_TIMEOUT_DEFAULT,
            busy_timeout: Self::BUSY_TIMEOUT_DEFAULT,
            postgres_schema: None,
            connect_lazily: false,
        }
    }

    /// The backend these options open.
    pub fn backend(&self) -> Backend {
        match self.location {
            Location::Sqlite(_) => Backend::Sqlite,
            Location::Postgres(_) => Backend::Postgres,
        }
    }
}

/// A query target on one backend: a pool or a connection inside a [`Tx`]. Consumed by
/// the [`sql!`](crate::sql) macro.
pub enum Target<S, P> {
    /// The SQLite side.
    Sqlite(S),
    /// The PostgreSQL side.
    Postgres(P),
}

/// An open database: cheap to clone, shared by every request.
#[derive(Clone, Debug)]
pub struct Db {
    pools: Pools,
}

#[derive(Clone, Debug)]
enum Pools {
    Sqlite { write: SqlitePool, read: SqlitePool, checkpoint: SqlitePool, path: PathBuf },
    Postgres { pool: PgPool },
}

impl Db {
    /// Opens (and for SQLite, creates) the database. Does not migrate; see [`Db::migrate`].
    pub async fn open(options: &StoreOptions) -> Result<Db, StoreError> {
        let pools = match &options.location {
            Location::Sqlite(path) => open_sqlite(path, options).await?,
            Location::Postgres(url) => open_postgres(url, options).await?,
        };
        Ok(Db { pools })
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The SQLite file, when the backend is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.pools {
            Pools::Sqlite { path, .. } => Some(path),
            Pools::Postgres { .. } => None,
        }
    }

    /// A target for reads outside a transaction. On SQLite these connections are
    /// read-only: a write through them fails instead of bypassing the single writer.
    pub fn reader(&self) -> Target<&SqlitePool, &PgPool> {
        match &self.pools {
            Pools::Sqlite { read, .. } => Target::Sqlite(read),
            Pools::Postgres { pool } => Target::Postgres(pool),
        }
    }

    /// Starts a read-write transaction. Dropping the [`Tx`] without [`Tx::commit`] rolls
    /// it back, so an early `?` return never leaves half a change behind.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pools {
            Pools::Sqlite { write, .. } => TxInner::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?),
            Pools::Postgres { pool } => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Tx { inner })
    }

    /// Starts a read-only transaction: one consistent snapshot for a read that takes
    /// several queries. On SQLite it runs on a read-only connection, so reads never wait
    /// for (or hold up) the single writer; writing through it fails.
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pools {
            Pools::Sqlite { read, .. } => TxInner::Sqlite(read.begin_with("BEGIN DEFERRED").await?),
            Pools::Postgres { pool } => TxInner::Postgres(pool.begin_with("BEGIN READ ONLY").await?),
        };
        Ok(Tx { inner })
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let one: i64 =
            crate::sql!(self.reader(), |c| sqlx::query_scalar("SELECT CAST(1 AS BIGINT)").fetch_one(c).await)?;
        if one == 1 { Ok(()) } else { Err(StoreError::Corrupt("SELECT 1 did not return 1".into())) }
    }

    /// Closes every connection, waiting for those in use to be returned. On SQLite the
    /// last connection to close checkpoints the write-ahead log into the main file.
    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { write, read, checkpoint, .. } => {
                checkpoint.close().await;
                read.close().await;
                write.close().await;
            }
            Pools::Postgres { pool } => pool.close().await,
        }
    }

    pub(crate) fn pools_for_migration(&self) -> Target<&SqlitePool, &PgPool> {
        match &self.pools {
            Pools::Sqlite { write, .. } => Target::Sqlite(write),
            Pools::Postgres { pool } => Target::Postgres(pool),
        }
    }
}

async fn open_sqlite(path: &Path, options: &StoreOptions) -> Result<Pools, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    // Explicit pragmas rather than driver defaults: durability (FULL sync of the WAL on
    // every commit) is the point of a ledger, and foreign keys are off in SQLite unless
    // asked for on every connection.
    let base = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout)
        // Statement and savepoint journals in memory, not in temporary files: group commit
        // runs every request of a batch in a savepoint. A bigger page cache (64 MiB) keeps
        // the hot indexes (orders, keys, audit) out of the kernel's read path.
        .pragma("temp_store", "memory")
        .pragma("cache_size", "-65536")
        .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string());
    let write_options = base.clone().create_if_missing(true);
    let write_pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(if options.connect_lazily { 0 } else { 1 })
        .acquire_timeout(options.acquire_timeout)
        .connect_with(write_options)
        .await?;
    let read_pool = SqlitePoolOptions::new()
        .max_connections(options.connections_max.max(1))
        .acquire_timeout(options.acquire_timeout)
        .connect_lazy_with(base.clone().read_only(true));
    // Checkpoints (copying the write-ahead log into the database file, with an fsync) run
    // on a connection of their own in the background, so the writer's commits never wait
    // for one; the writer's own automatic checkpoint stays as a bound if this falls behind.
    let checkpoint_pool = SqlitePoolOptions::new().max_connections(1).connect_lazy_with(base);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(checkpoint_in_background(checkpoint_pool.clone()));
    }
    Ok(Pools::Sqlite { write: write_pool, read: read_pool, checkpoint: checkpoint_pool, path: path.to_path_buf() })
}

/// How often the background checkpointer runs.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// WAL pages after which the writer checkpoints by itself (the background one normally
/// keeps the log far shorter): 40 MiB at 4 KiB pages.
const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

async fn checkpoint_in_background(pool: SqlitePool) {
    let mut ticks = tokio::time::interval(CHECKPOINT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        ticks.tick().await;
        // PASSIVE: copy what no reader still needs, never block the writer or readers.
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(%error, "background WAL checkpoint failed; the writer will checkpoint itself");
        }
    }
}

async fn open_postgres(url: &str, options: &StoreOptions) -> Result<Pools, StoreError> {
    let mut connect = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {}", redact_error(&e))))?;
    if let Some(schema) = &options.postgres_schema {
        connect = connect.options([("search_path", schema.as_str())]);
    }
    let pool_options =
        PgPoolOptions::new().max_connections(options.connections_max.max(1)).acquire_timeout(options.acquire_timeout);
    let pool = if options.connect_lazily {
        pool_options.connect_lazy_with(connect)
    } else {
        pool_options.connect_with(connect).await?
    };
    Ok(Pools::Postgres { pool })
}

/// Driver errors about a URL can quote it, password included; keep only the kind.
fn redact_error(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Configuration(_) => "the URL could not be parsed".into(),
        other => other.to_string().chars().take(200).collect(),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    // The directory holds customer data and sessions: owner-only from the start.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::Config(format!("cannot create data directory {}: {e}", dir.display())))
}

/// A read-write transaction on either backend.
pub struct Tx {
    inner: TxInner,
}

enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// The connection inside the transaction, for the [`sql!`](crate::sql) macro.
    pub fn conn(&mut self) -> Target<&mut SqliteConnection, &mut PgConnection> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => Target::Sqlite(&mut **tx),
            TxInner::Postgres(tx) => Target::Postgres(&mut **tx),
        }
    }

    /// Makes every write of the transaction durable (an fsync on SQLite with FULL sync).
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await?,
            TxInner::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Cuts the rows of a multi-row statement into the chunks this backend runs best:
    /// see [`crate::POSTGRES_ROW_CHUNKS`] and [`crate::SQLITE_ROWS_PER_STATEMENT`].
    pub fn statement_chunks<'r, T>(&self, rows: &'r [T]) -> Vec<&'r [T]> {
        match self.inner {
            TxInner::Sqlite(_) => rows.chunks(crate::SQLITE_ROWS_PER_STATEMENT).collect(),
            TxInner::Postgres(_) => crate::rows::postgres_chunks(rows),
        }
    }

    /// Marks a point the transaction can return to: group commit runs many requests in
    /// one transaction, each between a savepoint and its release, so one request's
    /// failure undoes only its own writes.
    pub async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.execute_raw("SAVEPOINT batch_item").await
    }

    /// Keeps the writes since [`Tx::savepoint`].
    pub async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.execute_raw("RELEASE SAVEPOINT batch_item").await
    }

    /// Undoes the writes since [`Tx::savepoint`] (and, on PostgreSQL, clears the error
    /// state a failed statement leaves), then releases it.
    pub async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.execute_raw("ROLLBACK TO SAVEPOINT batch_item").await?;
        self.execute_raw("RELEASE SAVEPOINT batch_item").await
    }

    async fn execute_raw(&mut self, statement: &'static str) -> Result<(), StoreError> {
        crate::sql!(self.conn(), |c| sqlx::query(statement).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Discards every write of the transaction.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(tx) => tx.rollback().await?,
            TxInner::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}
