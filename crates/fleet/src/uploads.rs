//! Batches of journal records validators upload (DESIGN §4: batches with ids, retried until
//! acknowledged). Each record is stored exactly once per (device, sequence), and the answer
//! says up to which sequence every record of the device is stored: what the validator's
//! journal may acknowledge.
//!
//! Idempotency: a batch id always names the same device and sequences, and a batch sent
//! again is answered again without storing anything. A batch overlapping stored records is
//! taken when those records are byte for byte the ones stored: after a lost answer the
//! journal resends its unacknowledged records with newer ones appended
//! (`acceptance::journal::Journal::next_batch`), under another id. A record arriving again
//! with other bytes, and a batch id reused for other records, are refused as conflicts.

use serde::Serialize;
use serde_json::json;
use smartticket_acceptance::journal::{RECORD_PAYLOAD_BYTES_MAX, UPLOAD_BATCH_RECORDS_MAX};
use smartticket_core::Timestamp;
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_store::{Db, StoreError, Tx, sql};
use utoipa::ToSchema;

use crate::FleetError;

/// Most records in a batch: the journal's own upload limit.
pub const BATCH_RECORDS_MAX: usize = UPLOAD_BATCH_RECORDS_MAX as usize;
/// Largest record: the journal's own record limit.
pub const RECORD_BYTES_MAX: usize = RECORD_PAYLOAD_BYTES_MAX;
/// Most payload bytes in a batch: one transaction's worth (the journal takes its batch limit
/// from the caller; validators use this one).
pub const BATCH_PAYLOAD_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Longest device id (the journal's is 32 hex characters).
pub const DEVICE_ID_CHARS_MAX: usize = 64;
/// Longest batch id (the journal's is 64 hex characters).
pub const BATCH_ID_CHARS_MAX: usize = 128;
/// Stored sequences read at a time while moving a device's acknowledgement forward.
const WATERMARK_SCAN_ROWS: i64 = 4096;

/// A batch of records from one validator's journal: sequences `first_sequence` to
/// `last_sequence`, one record each, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadBatch {
    /// The batch's id: the same id always names the same records.
    pub batch_id: String,
    /// The validator.
    pub device_id: String,
    /// The first record's sequence (from 1).
    pub first_sequence: u64,
    /// The last record's sequence.
    pub last_sequence: u64,
    /// The records' bytes, as the validator engine wrote them; not read here.
    pub records: Vec<Vec<u8>>,
}

/// The answer to a batch. A batch sent again gets the same answer, except that
/// `contiguous_through` may have moved on with later batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BatchAck {
    /// The batch.
    pub batch_id: String,
    /// The validator.
    pub device_id: String,
    /// The batch's first sequence.
    pub first_sequence: u64,
    /// The batch's last sequence.
    pub last_sequence: u64,
    /// Every record of the device up to this sequence is stored: the journal may
    /// acknowledge up to here (0: none yet).
    pub contiguous_through: u64,
}

/// What the back office holds of one validator's journal: what its carrier (or the fleet
/// simulator) checks to see that every record arrived exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeviceUploads {
    /// The validator.
    pub device_id: String,
    /// Every record up to this sequence is stored.
    pub contiguous_through: u64,
    /// Records stored (once each, whatever was sent again).
    pub records_stored: u64,
    /// Distinct batches received.
    pub batches_received: u64,
    /// The first upload.
    pub first_upload_at: Timestamp,
    /// The latest upload.
    pub last_upload_at: Timestamp,
}

/// The uploads of `device_id`; `None` when it never uploaded.
pub(crate) async fn device(db: &Db, device_id: &str) -> Result<Option<DeviceUploads>, FleetError> {
    check_id("device_id", device_id, DEVICE_ID_CHARS_MAX)?;
    let mut tx = db.begin_read().await?;
    let row: Option<(i64, i64, i64)> = sql!(tx.conn(), |c| {
        sqlx::query_as(
            "SELECT contiguous_through, first_upload_at_us, last_upload_at_us FROM validator_devices WHERE device_id = $1",
        )
        .bind(device_id)
        .fetch_optional(c)
        .await
    })?;
    let Some((through, first_us, last_us)) = row else {
        tx.commit().await?;
        return Ok(None);
    };
    let records: i64 = sql!(tx.conn(), |c| {
        sqlx::query_scalar("SELECT COUNT(*) FROM validator_records WHERE device_id = $1")
            .bind(device_id)
            .fetch_one(c)
            .await
    })?;
    let batches: i64 = sql!(tx.conn(), |c| {
        sqlx::query_scalar("SELECT COUNT(*) FROM validator_batches WHERE device_id = $1")
            .bind(device_id)
            .fetch_one(c)
            .await
    })?;
    tx.commit().await?;
    Ok(Some(DeviceUploads {
        device_id: device_id.to_owned(),
        contiguous_through: u64::try_from(through).unwrap_or(0),
        records_stored: u64::try_from(records).unwrap_or(0),
        batches_received: u64::try_from(batches).unwrap_or(0),
        first_upload_at: Timestamp::from_unix_micros(first_us).unwrap_or(Timestamp::EPOCH),
        last_upload_at: Timestamp::from_unix_micros(last_us).unwrap_or(Timestamp::EPOCH),
    }))
}

impl UploadBatch {
    /// Checks ids, sequences and every limit before anything is read or stored.
    pub fn check(&self) -> Result<(), FleetError> {
        check_id("batch_id", &self.batch_id, BATCH_ID_CHARS_MAX)?;
        check_id("device_id", &self.device_id, DEVICE_ID_CHARS_MAX)?;
        if self.first_sequence == 0 {
            return Err(FleetError::invalid("first_sequence", "sequences start at 1"));
        }
        if self.last_sequence < self.first_sequence || i64::try_from(self.last_sequence).is_err() {
            return Err(FleetError::invalid("last_sequence", "must be at least first_sequence and below 2^63"));
        }
        if self.records.is_empty() || self.records.len() > BATCH_RECORDS_MAX {
            return Err(FleetError::invalid("records", format!("1 to {BATCH_RECORDS_MAX} records")));
        }
        if self.last_sequence - self.first_sequence + 1 != self.records.len() as u64 {
            return Err(FleetError::invalid("records", "one record per sequence from first_sequence to last_sequence"));
        }
        if let Some(index) = self.records.iter().position(|record| record.len() > RECORD_BYTES_MAX) {
            return Err(FleetError::invalid(
                "records",
                format!("record {index} is larger than {RECORD_BYTES_MAX} bytes"),
            ));
        }
        if self.payload_bytes() > BATCH_PAYLOAD_BYTES_MAX {
            return Err(FleetError::invalid("records", format!("more than {BATCH_PAYLOAD_BYTES_MAX} bytes in all")));
        }
        Ok(())
    }

    fn payload_bytes(&self) -> usize {
        self.records.iter().map(Vec::len).sum()
    }

    /// The records with their sequences.
    fn numbered(&self) -> impl Iterator<Item = (i64, &[u8])> + '_ {
        let first = i64::try_from(self.first_sequence).unwrap_or(i64::MAX);
        (first..).zip(self.records.iter().map(Vec::as_slice))
    }

    fn ack(&self, contiguous_through: u64) -> BatchAck {
        BatchAck {
            batch_id: self.batch_id.clone(),
            device_id: self.device_id.clone(),
            first_sequence: self.first_sequence,
            last_sequence: self.last_sequence,
            contiguous_through,
        }
    }
}

/// Ids are printable ASCII without spaces or quotes, so they are safe in logs and files.
fn check_id(field: &'static str, id: &str, chars_max: usize) -> Result<(), FleetError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
    if id.is_empty() || id.len() > chars_max || !id.bytes().all(allowed) {
        return Err(FleetError::invalid(field, format!("1 to {chars_max} of A-Z a-z 0-9 - _ . :")));
    }
    Ok(())
}

/// Receives a checked batch; see the module docs.
pub(crate) async fn receive(
    db: &Db,
    ctx: &AuditCtx,
    batch: &UploadBatch,
    now: Timestamp,
) -> Result<BatchAck, FleetError> {
    batch.check()?;
    // A resend is answered from a read snapshot, without taking the writer.
    let mut tx = db.begin_read().await?;
    let replayed = replay(&mut tx, batch).await?;
    tx.rollback().await?;
    if let Some(ack) = replayed {
        ctx.mark_recorded();
        return Ok(ack);
    }
    let mut tx = db.begin().await?;
    // Upserting the device row first serialises this device's batches (the row lock on
    // PostgreSQL, the single writer on SQLite) for the rest of the transaction.
    let device_through: i64 = sql!(tx.conn(), |c| {
        sqlx::query_scalar(
            "INSERT INTO validator_devices (device_id, contiguous_through, first_upload_at_us, last_upload_at_us) \
             VALUES ($1, 0, $2, $2) ON CONFLICT (device_id) DO UPDATE SET last_upload_at_us = excluded.last_upload_at_us \
             RETURNING contiguous_through",
        )
        .bind(batch.device_id.as_str())
        .bind(now.unix_micros())
        .fetch_one(c)
        .await
    })?;
    // The same batch may have been stored by a concurrent request since the snapshot.
    if let Some(ack) = replay(&mut tx, batch).await? {
        tx.commit().await?;
        ctx.mark_recorded();
        return Ok(ack);
    }
    let stored = stored_records(&mut tx, batch).await?;
    let mut new_records = Vec::with_capacity(batch.records.len());
    let mut stored = stored.into_iter().peekable();
    for (sequence, payload) in batch.numbered() {
        match stored.next_if(|(stored_sequence, _)| *stored_sequence == sequence) {
            Some((_, stored_payload)) if stored_payload != payload => {
                return Err(FleetError::RecordMismatch {
                    device_id: batch.device_id.clone(),
                    sequence: u64::try_from(sequence).unwrap_or(0),
                });
            }
            Some(_) => {}
            None => new_records.push((sequence, payload)),
        }
    }
    insert_batch(&mut tx, batch, ctx, now).await?;
    insert_records(&mut tx, batch, &new_records, now).await?;
    let through = advance(&mut tx, &batch.device_id, device_through).await?;
    let details = json!({
        "device_id": batch.device_id,
        "first_sequence": batch.first_sequence,
        "last_sequence": batch.last_sequence,
        "records_new": new_records.len(),
        "payload_bytes": batch.payload_bytes(),
        "contiguous_through": through,
    });
    let event = AuditEvent::ok("validator.batch", "validator_batch", &batch.batch_id).details(details);
    audit::record(&mut tx, ctx, now, event).await?;
    tx.commit().await?;
    Ok(batch.ack(through))
}

/// The answer to `batch` if this very batch is stored already; a conflict if its id is
/// stored for other records or its records are stored with other bytes.
async fn replay(tx: &mut Tx, batch: &UploadBatch) -> Result<Option<BatchAck>, FleetError> {
    let row: Option<(String, i64, i64)> = sql!(tx.conn(), |c| {
        sqlx::query_as("SELECT device_id, first_sequence, last_sequence FROM validator_batches WHERE batch_id = $1")
            .bind(batch.batch_id.as_str())
            .fetch_optional(c)
            .await
    })?;
    let Some((device_id, first, last)) = row else { return Ok(None) };
    let same_range = i64::try_from(batch.first_sequence) == Ok(first) && i64::try_from(batch.last_sequence) == Ok(last);
    if device_id != batch.device_id || !same_range {
        return Err(FleetError::BatchIdReused {
            batch_id: batch.batch_id.clone(),
            stored: format!("device {device_id}, sequences {first} to {last}"),
        });
    }
    let stored = stored_records(tx, batch).await?;
    if stored.len() != batch.records.len() {
        return Err(StoreError::Corrupt(format!("batch {} is stored without all its records", batch.batch_id)).into());
    }
    for ((sequence, stored_payload), (_, payload)) in stored.iter().zip(batch.numbered()) {
        if stored_payload.as_slice() != payload {
            return Err(FleetError::RecordMismatch {
                device_id: batch.device_id.clone(),
                sequence: u64::try_from(*sequence).unwrap_or(0),
            });
        }
    }
    let through: i64 = sql!(tx.conn(), |c| {
        sqlx::query_scalar("SELECT contiguous_through FROM validator_devices WHERE device_id = $1")
            .bind(batch.device_id.as_str())
            .fetch_one(c)
            .await
    })?;
    Ok(Some(batch.ack(u64::try_from(through).unwrap_or(0))))
}

/// The stored records of the batch's device in the batch's range, by sequence.
async fn stored_records(tx: &mut Tx, batch: &UploadBatch) -> Result<Vec<(i64, Vec<u8>)>, FleetError> {
    let first = i64::try_from(batch.first_sequence).unwrap_or(i64::MAX);
    let last = i64::try_from(batch.last_sequence).unwrap_or(i64::MAX);
    let rows = sql!(tx.conn(), |c| {
        sqlx::query_as(
            "SELECT sequence, payload FROM validator_records WHERE device_id = $1 AND sequence BETWEEN $2 AND $3 \
             ORDER BY sequence",
        )
        .bind(batch.device_id.as_str())
        .bind(first)
        .bind(last)
        .fetch_all(c)
        .await
    })?;
    Ok(rows)
}

async fn insert_batch(tx: &mut Tx, batch: &UploadBatch, ctx: &AuditCtx, now: Timestamp) -> Result<(), FleetError> {
    let count = i64::try_from(batch.records.len()).unwrap_or(i64::MAX);
    let bytes = i64::try_from(batch.payload_bytes()).unwrap_or(i64::MAX);
    let inserted = sql!(tx.conn(), |c| {
        sqlx::query(
            "INSERT INTO validator_batches (batch_id, device_id, first_sequence, last_sequence, record_count, \
             payload_bytes, uploaded_by, received_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(batch.batch_id.as_str())
        .bind(batch.device_id.as_str())
        .bind(i64::try_from(batch.first_sequence).unwrap_or(i64::MAX))
        .bind(i64::try_from(batch.last_sequence).unwrap_or(i64::MAX))
        .bind(count)
        .bind(bytes)
        .bind(ctx.actor.columns().1)
        .bind(now.unix_micros())
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    });
    // This device's batches are serialised, so a clash is another device's batch.
    smartticket_store::unique_or(inserted, || FleetError::BatchIdReused {
        batch_id: batch.batch_id.clone(),
        stored: "another device".into(),
    })?;
    Ok(())
}

async fn insert_records(
    tx: &mut Tx,
    batch: &UploadBatch,
    records: &[(i64, &[u8])],
    now: Timestamp,
) -> Result<(), FleetError> {
    for chunk in tx.statement_chunks(records) {
        sql!(tx.conn(), |c| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO validator_records (device_id, sequence, batch_id, payload, received_at_us) ",
            );
            insert.push_values(chunk, |mut row, (sequence, payload)| {
                row.push_bind(batch.device_id.as_str())
                    .push_bind(*sequence)
                    .push_bind(batch.batch_id.as_str())
                    .push_bind(*payload)
                    .push_bind(now.unix_micros());
            });
            insert.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Moves the device's acknowledgement over every stored record that follows it without a
/// gap, and stores it.
async fn advance(tx: &mut Tx, device_id: &str, from: i64) -> Result<u64, FleetError> {
    let mut through = from;
    loop {
        let next: Vec<i64> = sql!(tx.conn(), |c| {
            sqlx::query_scalar(
                "SELECT sequence FROM validator_records WHERE device_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
            )
            .bind(device_id)
            .bind(through)
            .bind(WATERMARK_SCAN_ROWS)
            .fetch_all(c)
            .await
        })?;
        let full = next.len() as i64 == WATERMARK_SCAN_ROWS;
        let before = through;
        for sequence in next {
            if sequence != through + 1 {
                break;
            }
            through = sequence;
        }
        if !full || through - before < WATERMARK_SCAN_ROWS {
            break;
        }
    }
    if through != from {
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE validator_devices SET contiguous_through = $2 WHERE device_id = $1")
                .bind(device_id)
                .bind(through)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
    }
    Ok(u64::try_from(through).unwrap_or(0))
}
