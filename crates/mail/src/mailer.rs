//! Delivery: claim a bounded batch of due mail, hand each to the transport, and record the
//! outcome, each in its own short transaction so no transaction is held open while a
//! remote server thinks.
//!
//! A claim moves the mails' `not_before` past [`CLAIM_LEASE_SECS`], so a second mailer
//! (another server on the same PostgreSQL) skips them, and a mailer that dies mid-batch
//! leaves them due again once the lease runs out.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use smartticket_core::id::MailId;
use smartticket_core::{Clock, Timestamp};
use smartticket_store::{Db, StoreError, decode_id, decode_time, sql};
use tokio::sync::Notify;

use crate::outbox::{LAST_ERROR_CHARS_MAX, QueuedMail, decode_attempts};
use crate::transport::{MailTransport, TransportError};

/// Mails claimed per batch: small enough that a batch ends well inside the claim lease.
pub const DELIVERY_BATCH_MAILS_MAX: u32 = 20;
/// Longest one delivery may take before it counts as a transient failure.
pub const SEND_TIMEOUT_SECS: u64 = 30;
/// How long a claimed mail is left alone by other mailers.
pub const CLAIM_LEASE_SECS: u64 = 15 * 60;
/// Attempts before a mail is marked `failed`: with the backoff below, about eight hours
/// of trying, enough to ride out a relay's maintenance window.
pub const ATTEMPTS_MAX: u32 = 10;
/// Wait after the first failed attempt; doubles with every further one.
pub const RETRY_BASE_SECS: u64 = 60;
/// Longest wait between two attempts.
pub const RETRY_CAP_SECS: u64 = 4 * 3600;
/// How often [`Mailer::run`] looks for due mail unless told otherwise.
pub const POLL_INTERVAL_MS_DEFAULT: u64 = 5_000;

// A batch whose every mail times out must still end before its lease does, or a second
// mailer could claim and send the batch's last mails a second time.
const _: () = assert!(CLAIM_LEASE_SECS > DELIVERY_BATCH_MAILS_MAX as u64 * SEND_TIMEOUT_SECS);
const _: () = assert!(RETRY_BASE_SECS > 0 && RETRY_BASE_SECS <= RETRY_CAP_SECS);

/// The wait before the next attempt, after `attempts_made` failed ones:
/// `RETRY_BASE_SECS · 2^(attempts_made − 1)`, at most [`RETRY_CAP_SECS`].
pub fn retry_delay_secs(attempts_made: u32) -> u64 {
    let doublings = attempts_made.saturating_sub(1);
    let factor = 2_u64.checked_pow(doublings).unwrap_or(u64::MAX);
    RETRY_BASE_SECS.saturating_mul(factor).min(RETRY_CAP_SECS)
}

/// What one [`Mailer::deliver_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Due mails taken from the outbox.
    pub claimed: u32,
    /// Accepted by the transport.
    pub sent: u32,
    /// Failed this time, scheduled for another attempt.
    pub retrying: u32,
    /// Failed for good.
    pub failed: u32,
    /// Claimed but handed back unattempted, because the mailer is stopping.
    pub released: u32,
}

/// Delivers the outbox through a transport.
#[derive(Debug)]
pub struct Mailer<T> {
    db: Db,
    clock: Arc<dyn Clock>,
    transport: T,
    poll_interval: Duration,
}

impl<T: MailTransport> Mailer<T> {
    /// A mailer over `db` sending through `transport`; [`Mailer::run`] reads time from
    /// `clock`.
    pub fn new(db: Db, clock: Arc<dyn Clock>, transport: T) -> Self {
        Self { db, clock, transport, poll_interval: Duration::from_millis(POLL_INTERVAL_MS_DEFAULT) }
    }

    /// Sets how often [`Mailer::run`] looks for due mail (at least 10 ms).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Sends up to [`DELIVERY_BATCH_MAILS_MAX`] mails due at `now`. A failure is retried
    /// after [`retry_delay_secs`] unless it is permanent or the mail has had
    /// [`ATTEMPTS_MAX`] attempts; then the mail is `failed` with the last error.
    pub async fn deliver_due(&self, now: Timestamp) -> Result<DeliveryReport, StoreError> {
        self.deliver_batch(now, &AtomicBool::new(false)).await
    }

    /// Delivers due mail every poll interval (at once again after a full batch) until
    /// `shutdown` resolves. A database failure is logged and tried again next time. On
    /// shutdown the mail being sent is finished and recorded (at most
    /// [`SEND_TIMEOUT_SECS`]), so a clean stop never sends a mail twice; the rest of the
    /// batch is handed back, due at once for the next start.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let stopping = AtomicBool::new(false);
        let wake = Notify::new();
        let signal = async {
            shutdown.await;
            stopping.store(true, Ordering::Release);
            // Stores a permit when nobody waits yet, so the wake-up cannot be lost.
            wake.notify_one();
        };
        let work = async {
            while !stopping.load(Ordering::Acquire) {
                let full = match self.deliver_batch(self.clock.now(), &stopping).await {
                    Ok(report) => report.claimed >= DELIVERY_BATCH_MAILS_MAX,
                    Err(error) => {
                        tracing::warn!(%error, "cannot deliver mail now; trying again later");
                        false
                    }
                };
                if !full {
                    tokio::select! {
                        () = tokio::time::sleep(self.poll_interval) => {}
                        () = wake.notified() => {}
                    }
                }
            }
        };
        tokio::join!(signal, work);
        tracing::info!("mailer stopped");
    }

    /// Claims a batch and delivers it mail by mail, handing the rest back once `stopping`
    /// is set.
    async fn deliver_batch(&self, now: Timestamp, stopping: &AtomicBool) -> Result<DeliveryReport, StoreError> {
        let batch = self.claim(now).await?;
        let mut report =
            DeliveryReport { claimed: u32::try_from(batch.len()).unwrap_or(u32::MAX), ..Default::default() };
        for (index, mail) in batch.iter().enumerate() {
            if stopping.load(Ordering::Acquire) {
                let rest = batch.get(index..).unwrap_or_default();
                self.release(rest, now).await?;
                report.released = u32::try_from(rest.len()).unwrap_or(u32::MAX);
                break;
            }
            self.deliver_one(mail, now, &mut report).await?;
        }
        debug_assert_eq!(report.sent + report.retrying + report.failed + report.released, report.claimed);
        Ok(report)
    }

    /// One attempt at one claimed mail, and its outcome recorded.
    async fn deliver_one(
        &self,
        mail: &QueuedMail,
        now: Timestamp,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        let sent = tokio::time::timeout(Duration::from_secs(SEND_TIMEOUT_SECS), self.transport.send(mail))
            .await
            .unwrap_or_else(|_| Err(TransportError::Transient(format!("no answer within {SEND_TIMEOUT_SECS} s"))));
        let attempts = mail.attempts().saturating_add(1);
        match sent {
            Ok(()) => {
                self.mark_sent(mail.id(), attempts, now).await?;
                tracing::info!(mail = %mail.id(), attempts, "mail sent");
                report.sent = report.sent.saturating_add(1);
            }
            Err(error) if error.is_permanent() || attempts >= ATTEMPTS_MAX => {
                self.mark_failed(mail.id(), attempts, &error).await?;
                tracing::warn!(mail = %mail.id(), attempts, %error, "mail failed; giving up");
                report.failed = report.failed.saturating_add(1);
            }
            Err(error) => {
                let delay = retry_delay_secs(attempts);
                self.mark_retry(mail.id(), attempts, &error, later(now, delay)).await?;
                tracing::warn!(mail = %mail.id(), attempts, retry_in_secs = delay, %error, "mail not sent; will retry");
                report.retrying = report.retrying.saturating_add(1);
            }
        }
        Ok(())
    }

    /// Hands claimed, unattempted mails back: due at `now` again, for whichever mailer
    /// comes next.
    async fn release(&self, mails: &[QueuedMail], now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for mail in mails {
            sql!(tx.conn(), |c| {
                sqlx::query("UPDATE outbox_mail SET not_before_us = $2 WHERE id = $1 AND status = 'pending'")
                    .bind(mail.id().to_db())
                    .bind(now.unix_micros())
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        tx.commit().await
    }

    /// Takes the due mails, oldest due first, and leases them to this mailer. The outer
    /// conditions repeat the inner ones so that, on PostgreSQL, a row another mailer
    /// claimed while this statement waited for it no longer matches.
    async fn claim(&self, now: Timestamp) -> Result<Vec<QueuedMail>, StoreError> {
        type Row = (String, String, String, String, i64, i64);
        let lease_until = later(now, CLAIM_LEASE_SECS);
        let mut tx = self.db.begin().await?;
        let rows: Vec<Row> = sql!(tx.conn(), |c| {
            sqlx::query_as(
                "UPDATE outbox_mail SET not_before_us = $2 \
                 WHERE status = 'pending' AND not_before_us <= $1 AND id IN (\
                 SELECT id FROM outbox_mail WHERE status = 'pending' AND not_before_us <= $1 \
                 ORDER BY not_before_us, id LIMIT $3) \
                 RETURNING id, to_address, subject, body_text, created_at_us, attempts",
            )
            .bind(now.unix_micros())
            .bind(lease_until.unix_micros())
            .bind(i64::from(DELIVERY_BATCH_MAILS_MAX))
            .fetch_all(c)
            .await
        })?;
        tx.commit().await?;
        let mut batch = rows
            .into_iter()
            .map(|(id, to, subject, body, created_us, attempts)| {
                Ok(QueuedMail {
                    id: decode_id(&id, MailId::from_db)?,
                    to,
                    subject,
                    body,
                    created_at: decode_time(created_us)?,
                    attempts: decode_attempts(attempts)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // RETURNING promises no order; ids are time-ordered, so this is queueing order.
        batch.sort_by_key(|mail| mail.id);
        debug_assert!(batch.len() <= DELIVERY_BATCH_MAILS_MAX as usize);
        Ok(batch)
    }

    /// Marks a mail sent and forgets its body: bodies carry single-use links, and the
    /// outbox must not become a second place to steal them from.
    async fn mark_sent(&self, id: MailId, attempts: u32, now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let changed = sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE outbox_mail SET status = 'sent', sent_at_us = $2, attempts = $3, last_error = NULL, \
                 body_text = '' WHERE id = $1 AND status = 'pending'",
            )
            .bind(id.to_db())
            .bind(now.unix_micros())
            .bind(i64::from(attempts))
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        expect_one_row(id, changed)
    }

    async fn mark_retry(
        &self,
        id: MailId,
        attempts: u32,
        error: &TransportError,
        next: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let changed = sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE outbox_mail SET attempts = $2, last_error = $3, not_before_us = $4 \
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id.to_db())
            .bind(i64::from(attempts))
            .bind(clip(error))
            .bind(next.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        expect_one_row(id, changed)
    }

    /// Marks a mail failed; its body is dropped like a sent one's, since nothing will
    /// send it any more.
    async fn mark_failed(&self, id: MailId, attempts: u32, error: &TransportError) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let changed = sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE outbox_mail SET status = 'failed', attempts = $2, last_error = $3, body_text = '' \
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id.to_db())
            .bind(i64::from(attempts))
            .bind(clip(error))
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        expect_one_row(id, changed)
    }
}

/// A claimed mail is ours until the lease ends; finding it changed means another mailer
/// took it after the lease, which the lease's size is meant to rule out. Worth a warning,
/// not an error: the mail was handled either way.
fn expect_one_row(id: MailId, changed: u64) -> Result<(), StoreError> {
    if changed != 1 {
        tracing::warn!(mail = %id, changed, "mail changed by someone else while being delivered");
    }
    Ok(())
}

fn clip(error: &TransportError) -> String {
    error.to_string().chars().take(LAST_ERROR_CHARS_MAX).collect()
}

/// `now` plus `secs`; `now` itself past the representable range, which only a corrupt
/// clock can reach (the delays here are hours).
fn later(now: Timestamp, secs: u64) -> Timestamp {
    let duration = i64::try_from(secs).ok().and_then(chrono::Duration::try_seconds);
    duration.and_then(|d| now.checked_add(d)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(retry_delay_secs(1), 60);
        assert_eq!(retry_delay_secs(2), 120);
        assert_eq!(retry_delay_secs(3), 240);
        assert_eq!(retry_delay_secs(8), 60 * 128);
        assert_eq!(retry_delay_secs(9), RETRY_CAP_SECS);
        assert_eq!(retry_delay_secs(200), RETRY_CAP_SECS);
        assert_eq!(retry_delay_secs(0), 60);
    }
}
