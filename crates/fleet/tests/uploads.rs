//! Validators' uploads on SQLite and PostgreSQL: a batch sent again is acknowledged again
//! and stored once; conflicting batches are refused and change nothing; a resend grown
//! after a lost answer is taken; acknowledgements never pass a gap; and the validator's
//! own journal drains through the service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use smartticket_acceptance::journal::{DeviceId, Journal, JournalLimits};
use smartticket_catalog::CatalogStore;
use smartticket_core::{ManualClock, Timestamp};
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_fleet::{
    BATCH_PAYLOAD_BYTES_MAX, BATCH_RECORDS_MAX, BatchAck, Fleet, FleetError, FleetParts, RECORD_BYTES_MAX, UploadBatch,
};
use smartticket_identity::AuditCtx;
use smartticket_store::{Db, sql};

fn fleet(db: &Db) -> Fleet {
    let clock = Arc::new(ManualClock::new(Timestamp::parse_rfc3339("2026-11-21T08:30:00Z").unwrap()));
    Fleet::new(FleetParts {
        db: db.clone(),
        clock: clock.clone(),
        hsm: Arc::new(SoftHsm::generate(&[]).unwrap()),
        catalog: CatalogStore::new(db.clone(), clock),
    })
}

fn ctx() -> AuditCtx {
    AuditCtx::system("carrier-upload")
}

fn record(device: &str, sequence: u64) -> Vec<u8> {
    format!("tap {sequence} at {device}").into_bytes()
}

fn batch(id: &str, device: &str, first: u64, last: u64) -> UploadBatch {
    UploadBatch {
        batch_id: id.into(),
        device_id: device.into(),
        first_sequence: first,
        last_sequence: last,
        records: (first..=last).map(|s| record(device, s)).collect(),
    }
}

async fn count(db: &Db, query: &'static str) -> i64 {
    sql!(db.reader(), |c| sqlx::query_scalar(query).fetch_one(c).await).unwrap()
}

async fn stored(db: &Db) -> (i64, i64, i64) {
    (
        count(db, "SELECT count(*) FROM validator_records").await,
        count(db, "SELECT count(*) FROM validator_batches").await,
        count(db, "SELECT count(*) FROM audit_log WHERE action = 'validator.batch'").await,
    )
}

smartticket_store::backend_tests! {
    async fn a_replayed_batch_is_acknowledged_once_and_stored_once(db) {
        let fleet = fleet(&db);
        let first = batch("b1", "bus-17", 1, 3);
        let ack = fleet.receive_batch(&ctx(), &first).await.unwrap();
        assert_eq!(ack, BatchAck { batch_id: "b1".into(), device_id: "bus-17".into(), first_sequence: 1, last_sequence: 3, contiguous_through: 3 });
        assert_eq!(stored(&db).await, (3, 1, 1));
        // Sent again (the answer was lost), and again concurrently: the same answer, nothing more.
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (fleet, again) = (fleet.clone(), first.clone());
            tasks.push(tokio::spawn(async move { fleet.receive_batch(&ctx(), &again).await }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), ack);
        }
        assert_eq!(stored(&db).await, (3, 1, 1), "stored once, audited once");
        // Another device's sequences are its own.
        let other = fleet.receive_batch(&ctx(), &batch("b2", "tram-4", 1, 2)).await.unwrap();
        assert_eq!(other.contiguous_through, 2);
        assert_eq!(stored(&db).await, (5, 2, 2));
    }

    async fn a_conflicting_batch_is_refused_and_changes_nothing(db) {
        let fleet = fleet(&db);
        fleet.receive_batch(&ctx(), &batch("b1", "bus-17", 1, 3)).await.unwrap();
        let before = stored(&db).await;
        // The same id with other bytes.
        let mut altered = batch("b1", "bus-17", 1, 3);
        altered.records[1] = b"forged".to_vec();
        let refused = fleet.receive_batch(&ctx(), &altered).await;
        assert!(matches!(refused, Err(FleetError::RecordMismatch { sequence: 2, .. })), "{refused:?}");
        // Another id overlapping stored sequences with other bytes.
        let mut overlapping = batch("b2", "bus-17", 3, 5);
        overlapping.records[0] = b"another tap 3".to_vec();
        let refused = fleet.receive_batch(&ctx(), &overlapping).await;
        assert!(matches!(refused, Err(FleetError::RecordMismatch { sequence: 3, .. })), "{refused:?}");
        // The id of a stored batch for other sequences, or another device.
        for reused in [batch("b1", "bus-17", 4, 5), batch("b1", "tram-4", 1, 3)] {
            let refused = fleet.receive_batch(&ctx(), &reused).await;
            assert!(matches!(refused, Err(FleetError::BatchIdReused { .. })), "{refused:?}");
        }
        assert_eq!(stored(&db).await, before);
        let payload: Vec<u8> = sql!(db.reader(), |c| {
            sqlx::query_scalar("SELECT payload FROM validator_records WHERE device_id = 'bus-17' AND sequence = 2").fetch_one(c).await
        }).unwrap();
        assert_eq!(payload, record("bus-17", 2), "the stored record stays");
    }

    async fn a_resend_grown_after_a_lost_answer_is_taken_without_storing_twice(db) {
        let fleet = fleet(&db);
        fleet.receive_batch(&ctx(), &batch("1-3", "bus-17", 1, 3)).await.unwrap();
        // The journal did not hear the answer and sends its unacknowledged records again,
        // with the ones appended since, under a new id.
        let grown = fleet.receive_batch(&ctx(), &batch("1-5", "bus-17", 1, 5)).await.unwrap();
        assert_eq!(grown.contiguous_through, 5);
        assert_eq!(stored(&db).await, (5, 2, 2));
        let first_batch: String = sql!(db.reader(), |c| {
            sqlx::query_scalar("SELECT batch_id FROM validator_records WHERE device_id = 'bus-17' AND sequence = 1").fetch_one(c).await
        }).unwrap();
        assert_eq!(first_batch, "1-3", "a record keeps the batch that brought it first");
    }

    async fn acknowledgements_never_pass_a_gap(db) {
        let fleet = fleet(&db);
        let later = fleet.receive_batch(&ctx(), &batch("b2", "bus-17", 4, 6)).await.unwrap();
        assert_eq!(later.contiguous_through, 0, "1 to 3 are missing");
        let earlier = fleet.receive_batch(&ctx(), &batch("b1", "bus-17", 1, 3)).await.unwrap();
        assert_eq!(earlier.contiguous_through, 6, "the gap is filled");
        // A replay of the first answers with where the device is now.
        assert_eq!(fleet.receive_batch(&ctx(), &batch("b2", "bus-17", 4, 6)).await.unwrap().contiguous_through, 6);
    }

    async fn a_validator_journal_drains_through_the_service(db) {
        let fleet = fleet(&db);
        let dir = std::env::temp_dir().join(format!("fleet-journal-{}", smartticket_core::id::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let device = DeviceId([0xab; 16]);
        let (mut journal, _) = Journal::open(&dir, device, JournalLimits::VALIDATOR).unwrap();
        for n in 0..10_u32 {
            journal.append(format!("decision {n}").as_bytes()).unwrap();
        }
        let upload = |batch: smartticket_acceptance::journal::Batch| UploadBatch {
            batch_id: batch.id.to_string(),
            device_id: batch.id.device_id.to_string(),
            first_sequence: batch.id.sequence_first,
            last_sequence: batch.id.sequence_last,
            records: batch.records.into_iter().map(|r| r.payload).collect(),
        };
        // First upload: the answer is lost, so nothing is acknowledged.
        let first = journal.next_batch(4, BATCH_PAYLOAD_BYTES_MAX as u64).unwrap().unwrap();
        fleet.receive_batch(&ctx(), &upload(first)).await.unwrap();
        // The resend is larger; its answer arrives and the journal acknowledges it.
        while let Some(next) = journal.next_batch(6, BATCH_PAYLOAD_BYTES_MAX as u64).unwrap() {
            let ack = fleet.receive_batch(&ctx(), &upload(next)).await.unwrap();
            journal.acknowledge(ack.contiguous_through).unwrap();
        }
        assert_eq!(journal.sequence_acknowledged(), 10);
        assert_eq!(count(&db, "SELECT count(*) FROM validator_records").await, 10);
        drop(journal);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn batches_are_checked_against_their_limits_before_anything_is_read() {
    let ok = batch("b1", "bus-17", 1, 2);
    assert!(ok.check().is_ok());
    let cases: Vec<(&str, UploadBatch)> = vec![
        ("batch_id", UploadBatch { batch_id: String::new(), ..ok.clone() }),
        ("batch_id", UploadBatch { batch_id: "a b".into(), ..ok.clone() }),
        ("device_id", UploadBatch { device_id: "x".repeat(65), ..ok.clone() }),
        ("first_sequence", UploadBatch { first_sequence: 0, last_sequence: 1, ..ok.clone() }),
        ("last_sequence", UploadBatch { first_sequence: 3, last_sequence: 2, ..ok.clone() }),
        ("last_sequence", UploadBatch { first_sequence: u64::MAX - 1, last_sequence: u64::MAX, ..ok.clone() }),
        ("records", UploadBatch { last_sequence: 3, ..ok.clone() }),
        ("records", UploadBatch { records: vec![vec![0; RECORD_BYTES_MAX + 1], vec![]], ..ok.clone() }),
        (
            "records",
            UploadBatch {
                last_sequence: BATCH_RECORDS_MAX as u64 + 1,
                records: vec![vec![]; BATCH_RECORDS_MAX + 1],
                ..ok.clone()
            },
        ),
        ("records", UploadBatch { last_sequence: 1100, records: vec![vec![0; RECORD_BYTES_MAX]; 1100], ..ok.clone() }),
    ];
    for (field, bad) in cases {
        match bad.check() {
            Err(FleetError::InvalidBatch { field: got, .. }) => assert_eq!(got, field, "{bad:?}"),
            other => panic!("{field}: {other:?}"),
        }
    }
}
