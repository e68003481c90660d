//! The storage layer's own guarantees, proven on SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use smartticket_store::{Db, StoreError, sql};

async fn insert_audit_row(db: &Db, action: &str) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    sql!(tx.conn(), |c| {
        sqlx::query("INSERT INTO audit_log (at_us, actor_kind, action, outcome) VALUES ($1, 'system', $2, 'ok')")
            .bind(1_i64)
            .bind(action)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    })?;
    tx.commit().await
}

async fn count_audit_rows(db: &Db) -> i64 {
    sql!(db.reader(), |c| sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(c).await).unwrap()
}

smartticket_store::backend_tests! {
    async fn migrations_are_current_and_idempotent(db) {
        let status = db.migration_status().await.unwrap();
        assert!(status.is_current(), "{status:?}");
        assert_eq!(status.applied, status.known);
        let again = db.migrate().await.unwrap();
        assert_eq!(again, status, "a second run must change nothing");
        db.ping().await.unwrap();
    }

    async fn audit_log_is_append_only_in_the_database_itself(db) {
        insert_audit_row(&db, "test.one").await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let update = sql!(tx.conn(), |c| sqlx::query("UPDATE audit_log SET action = 'forged'").execute(c).await.map(|r| r.rows_affected()));
        assert!(update.is_err(), "UPDATE on audit_log must be refused");
        drop(tx);
        let mut tx = db.begin().await.unwrap();
        let delete = sql!(tx.conn(), |c| sqlx::query("DELETE FROM audit_log").execute(c).await.map(|r| r.rows_affected()));
        assert!(delete.is_err(), "DELETE on audit_log must be refused");
        drop(tx);
        assert_eq!(count_audit_rows(&db).await, 1);
    }

    async fn dropping_a_transaction_rolls_it_back(db) {
        {
            let mut tx = db.begin().await.unwrap();
            sql!(tx.conn(), |c| {
                sqlx::query("INSERT INTO audit_log (at_us, actor_kind, action, outcome) VALUES (1, 'system', 'x', 'ok')")
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
            })
            .unwrap();
            // no commit
        }
        assert_eq!(count_audit_rows(&db).await, 0);
        insert_audit_row(&db, "kept").await.unwrap();
        assert_eq!(count_audit_rows(&db).await, 1);
    }

    async fn unique_violations_are_classified(db) {
        let insert = |id: &'static str| {
            let db = db.clone();
            async move {
                let mut tx = db.begin().await?;
                sql!(tx.conn(), |c| {
                    sqlx::query(
                        "INSERT INTO partners (id, name, contact_email, created_at_us, updated_at_us) \
                         VALUES ($1, 'Same name', 'a@b.c', 0, 0)",
                    )
                    .bind(id)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
                })?;
                tx.commit().await
            }
        };
        insert("00000000-0000-7000-8000-000000000001").await.unwrap();
        let err = insert("00000000-0000-7000-8000-000000000002").await.unwrap_err();
        assert!(err.is_unique_violation(), "{err:?}");
    }

    async fn foreign_keys_are_enforced(db) {
        let mut tx = db.begin().await.unwrap();
        let result = sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO partner_api_keys (id, partner_id, label, token_hash, token_prefix, created_by, created_at_us) \
                 VALUES ('k', 'no-such-partner', 'l', $1, 'p', 'x', 0)",
            )
            .bind(vec![1_u8; 32])
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        let err = StoreError::from(result.unwrap_err());
        assert!(matches!(err, StoreError::ForeignKey { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn sqlite_keeps_committed_rows_across_a_reopen() {
    let test_db = smartticket_store::testing::TestDb::sqlite().await.unwrap();
    insert_audit_row(&test_db.db, "durable").await.unwrap();
    test_db.db.close().await;
    let reopened = Db::open(&test_db.options).await.unwrap();
    assert_eq!(count_audit_rows(&reopened).await, 1);
    assert!(reopened.migration_status().await.unwrap().is_current());
    reopened.close().await;
}

#[tokio::test]
async fn sqlite_readers_cannot_write() {
    let test_db = smartticket_store::testing::TestDb::sqlite().await.unwrap();
    let result = sql!(test_db.db.reader(), |c| {
        sqlx::query("INSERT INTO audit_log (at_us, actor_kind, action, outcome) VALUES (1, 'system', 'x', 'ok')")
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    });
    assert!(result.is_err(), "the read pool must be read-only");
}

#[tokio::test]
async fn a_fresh_database_reports_every_migration_pending() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&smartticket_store::StoreOptions::sqlite_in(dir.path())).await.unwrap();
    let status = db.migration_status().await.unwrap();
    assert!(!status.is_current());
    assert_eq!(status.pending, status.known);
    db.migrate().await.unwrap();
    assert!(db.migration_status().await.unwrap().is_current());
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_not_a_crash() {
    let options = smartticket_store::StoreOptions::postgres("postgres://nobody@127.0.0.1:1/none");
    let mut options = options;
    options.acquire_timeout = std::time::Duration::from_millis(500);
    let err = Db::open(&options).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[test]
fn database_urls_are_checked() {
    use smartticket_store::{Backend, StoreOptions};
    let dir = std::path::Path::new("/tmp/x");
    assert_eq!(StoreOptions::from_url_or_data_dir(None, dir).unwrap().backend(), Backend::Sqlite);
    assert_eq!(StoreOptions::from_url_or_data_dir(Some("  "), dir).unwrap().backend(), Backend::Sqlite);
    assert_eq!(StoreOptions::from_url_or_data_dir(Some("postgres://a@b/c"), dir).unwrap().backend(), Backend::Postgres);
    assert_eq!(StoreOptions::from_url_or_data_dir(Some("sqlite:///tmp/x.db"), dir).unwrap().backend(), Backend::Sqlite);
    let err = StoreOptions::from_url_or_data_dir(Some("mysql://root@h/db"), dir).unwrap_err();
    assert!(err.to_string().contains("unsupported database URL scheme `mysql`"), "{err}");
    let debug = format!("{:?}", StoreOptions::postgres("postgres://u:secret@h/db"));
    assert!(!debug.contains("secret"), "options must not print passwords: {debug}");
}
