//! One round with the back office: bring both lists up to date, then upload what the journal
//! holds unacknowledged. The validator sits behind a mutex because the gate keeps deciding
//! while a round runs: the lock is held only to read a batch, install a list or acknowledge,
//! never across a network call.

use std::sync::{Mutex, MutexGuard};

use smartticket_acceptance::engine::Validator;
use smartticket_acceptance::lists::{InstalledList, ListKind};

use crate::client::{BackOffice, Fetched};
use crate::{LinkError, StoredLists};

/// Most records per upload: the back office's limit.
pub const BATCH_RECORDS_MAX: u32 = smartticket_acceptance::journal::UPLOAD_BATCH_RECORDS_MAX;
/// Most payload bytes per upload: the back office's limit (4 MiB).
pub const BATCH_PAYLOAD_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Most batches in one round, so a validator back from a long time offline still returns to
/// fetching lists regularly (256 batches: up to a million taps).
const ROUND_BATCHES_MAX: u32 = 256;

/// What a list round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSync {
    /// Lists installed in this round.
    pub installed: Vec<InstalledList>,
    /// Kinds whose latest version the validator already held.
    pub up_to_date: Vec<ListKind>,
    /// Kinds the back office has not published yet.
    pub not_published: Vec<ListKind>,
}

/// What an upload round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Batches acknowledged.
    pub batches: u32,
    /// Records acknowledged.
    pub records: u64,
    /// The journal's acknowledged sequence after the round.
    pub acknowledged_through: u64,
    /// Whether records were left for the next round (the round's batch limit).
    pub more_pending: bool,
}

fn lock(engine: &Mutex<Validator>) -> Result<MutexGuard<'_, Validator>, LinkError> {
    engine.lock().map_err(|_| LinkError::Poisoned)
}

fn held_version(engine: &Mutex<Validator>, kind: ListKind) -> Result<Option<u64>, LinkError> {
    let guard = lock(engine)?;
    let (greenlist, denylist) = guard.lists();
    let held = match kind {
        ListKind::Greenlist => greenlist,
        ListKind::Denylist => denylist,
    };
    Ok(held.map(|list| list.list_version))
}

/// Brings both lists up to date: a delta from the version held (the full list when none is
/// held, when the back office no longer has that version, or when enough deltas are stored
/// already), installed through the engine's checks and then kept in `stored`. A refused
/// file is an error and the list in use stays.
pub async fn sync_lists(
    office: &BackOffice,
    engine: &Mutex<Validator>,
    stored: &StoredLists,
) -> Result<ListSync, LinkError> {
    let mut report = ListSync::default();
    for kind in [ListKind::Greenlist, ListKind::Denylist] {
        let held = held_version(engine, kind)?;
        let mut fetched = match office.fetch_list(kind, held).await {
            Err(LinkError::VersionUnknown(_)) => office.fetch_list(kind, None).await,
            other => other,
        };
        if matches!(fetched, Ok(Fetched::File { base_version, .. }) if base_version != 0) && stored.wants_full(kind)? {
            fetched = office.fetch_list(kind, None).await;
        }
        match fetched {
            Err(LinkError::NotReady) => report.not_published.push(kind),
            Err(error) => return Err(error),
            Ok(Fetched::UpToDate) => report.up_to_date.push(kind),
            Ok(Fetched::File { version, base_version, bytes }) => {
                let installed = lock(engine)?.offer_list(&bytes)?;
                if installed.list_version != version {
                    return Err(LinkError::BadAnswer(format!(
                        "the file says version {}, the answer {version}",
                        installed.list_version
                    )));
                }
                stored.save(kind, version, base_version, &bytes)?;
                tracing::debug!(%kind, version, base_version, entries = installed.entry_count, "list installed");
                report.installed.push(installed);
            }
        }
    }
    Ok(report)
}

/// Uploads the journal's unacknowledged records, batch by batch, acknowledging each in the
/// journal once the back office says it holds it. Stops at the first failure (what was
/// acknowledged stays acknowledged) or after a round's worth of batches.
pub async fn upload_pending(office: &BackOffice, engine: &Mutex<Validator>) -> Result<UploadReport, LinkError> {
    let mut report = UploadReport::default();
    loop {
        let batch = lock(engine)?.journal_mut().next_batch(BATCH_RECORDS_MAX, BATCH_PAYLOAD_BYTES_MAX)?;
        let Some(batch) = batch else {
            break;
        };
        if report.batches == ROUND_BATCHES_MAX {
            report.more_pending = true;
            break;
        }
        let ack = office.upload(&batch).await?;
        // Stored through the batch's end, or the back office lost records we never resend.
        if ack.contiguous_through < batch.id.sequence_last {
            return Err(LinkError::BadAnswer(format!(
                "batch {} taken, but the back office holds records only through {}",
                ack.batch_id, ack.contiguous_through
            )));
        }
        let acknowledgement = lock(engine)?.journal_mut().acknowledge(batch.id.sequence_last)?;
        tracing::debug!(batch = %ack.batch_id, through = batch.id.sequence_last, ?acknowledgement, "batch acknowledged");
        report.batches += 1;
        report.records += batch.records.len() as u64;
    }
    report.acknowledged_through = lock(engine)?.journal_mut().sequence_acknowledged();
    Ok(report)
}
