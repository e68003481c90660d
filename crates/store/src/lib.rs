//! Storage: one [`Db`] handle over SQLite (the embedded default, a file in the data
//! directory) or PostgreSQL (when a `postgres://` URL is given), the migrations of both,
//! and the [`sql!`] macro that runs one SQL text on whichever backend is open.
//!
//! Domain crates own their queries; this crate owns connections, transactions, schema and
//! the mapping of driver failures to [`StoreError`]. Queries use `$1`-style placeholders,
//! which both SQLite and PostgreSQL accept, and portable types only (`TEXT` ids, `BIGINT`
//! minor units and microsecond timestamps, `BYTEA`/`BLOB` bytes).
#![forbid(unsafe_code)]

mod db;
mod error;
mod migrate;
mod rows;
pub mod testing;

pub use db::{Backend, DATABASE_FILE_NAME, Db, StoreOptions, Target, Tx};
pub use error::{StoreError, unique_or};
pub use migrate::MigrationStatus;
pub use rows::{POSTGRES_ROW_CHUNKS, SQLITE_ROWS_PER_STATEMENT, decode_id, decode_time, encode_time};

#[doc(hidden)]
pub use sqlx;

/// Runs one query expression against whichever backend a [`Target`] holds.
///
/// The body is compiled once per backend, so it may use any type both drivers encode
/// (`i64`, `String`, `&str`, `Vec<u8>`, `bool`, `Option` of those) and decode rows into
/// tuples or `FromRow` structs of them.
///
/// ```ignore
/// let count: i64 = sql!(db.reader(), |c| {
///     sqlx::query_scalar("SELECT count(*) FROM staff_users").fetch_one(c).await
/// })?;
/// ```
#[macro_export]
macro_rules! sql {
    ($target:expr, |$conn:ident| $body:expr) => {
        match $target {
            $crate::Target::Sqlite($conn) => $body,
            $crate::Target::Postgres($conn) => $body,
        }
    };
}
